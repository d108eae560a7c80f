"""Fixtures for integration tests: a redis-server of each test's own, gateways on it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from eventwire.brokers import BrokerUnavailable, Health
from eventwire.server import Gateway
from eventwire.testing import TestClient, running_gateway
from tests.integration.redisproc import RedisProcess
from tests.integration.serverproc import running

pytest.importorskip("redis", reason="the Redis broker needs redis-py (eventwire[redis])")

StartGateway = Callable[..., Awaitable[Gateway]]
TIMEOUT = 5.0
"""Seconds any one condition may take to hold."""


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server on a free port, killed after the test (whatever the test did to it)."""
    with running(RedisProcess(tmp_path)) as server:
        yield server


@contextlib.asynccontextmanager
async def gateways_on(broker: str) -> AsyncIterator[StartGateway]:
    """Start gateways on ``broker`` (settings may be given); stop them on the way out."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**settings: Any) -> Gateway:
            settings.setdefault("broker", broker)
            return await stack.enter_async_context(running_gateway(**settings))

        yield start


@pytest.fixture
async def start_gateway(redis_server: RedisProcess) -> AsyncIterator[StartGateway]:
    """Start gateways on ``redis_server`` (settings may be given); stop them after the test."""
    async with gateways_on(redis_server.url) as start:
        yield start


def event(topic: str, n: int) -> dict[str, Any]:
    return {"topic": topic, "event": "ADDED", "data": {"entity_id": f"e{n}", "payload": {"n": n}}}


def counters(gateway: Gateway) -> Mapping[str, int]:
    """The gateway's broker link counters (a Redis or NATS broker reports its health)."""
    assert isinstance(gateway.broker, Health)
    return gateway.broker.counters()


async def expect_seqs(client: TestClient, topic: str, seqs: list[int]) -> None:
    for seq in seqs:
        received = await client.expect(topic, timeout=TIMEOUT)
        assert (received.seq, received.payload) == (seq, {"n": seq})


async def eventually(
    condition: Callable[[], bool], what: str, timeout: float = TIMEOUT, interval: float = 0.005
) -> float:
    """Poll ``condition`` until it holds (nothing to await); return the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"{what}: not within {timeout}s")
        await asyncio.sleep(interval)
    return time.monotonic() - started


async def assert_publish_refused(gateway: Gateway, within: float) -> None:
    """A publish on ``gateway`` raises BrokerUnavailable within ``within`` seconds."""
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable):
        await gateway.broker.publish("gift-list:1", b"{}")
    assert time.monotonic() - started < within  # refused at once, not accepted and lost


async def assert_new_topic_starts_at_1(publisher: Gateway, client: TestClient) -> None:
    """A first publish to ``gift-list:2`` gets seq 1 and reaches ``client``."""
    published = await publisher.publish(event("gift-list:2", 1))
    assert published.seq == 1
    await expect_seqs(client, "gift-list:2", [1])


async def assert_gateway_does_not_start(broker: str) -> None:
    """A gateway on an unreachable ``broker`` fails to start, and fast."""
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="unreachable"):
        async with running_gateway(broker=broker):
            pass
    assert time.monotonic() - started < 2.0


async def assert_back_and_delivering(gateway: Gateway, client: TestClient) -> None:
    """``gateway`` gets ready again and delivers ``room:lobby`` to ``client``."""
    await eventually(lambda: gateway.ready, "node B is subscribed again")
    await gateway.publish(event("room:lobby", 1))
    await expect_seqs(client, "room:lobby", [1])
