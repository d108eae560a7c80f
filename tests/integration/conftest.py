"""Fixtures for integration tests: a redis-server of each test's own, gateways on it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from eventwire.server import Gateway
from eventwire.testing import running_gateway
from tests.integration.redisproc import RedisProcess

pytest.importorskip("redis", reason="the Redis broker needs redis-py (eventwire[redis])")

StartGateway = Callable[..., Awaitable[Gateway]]
TIMEOUT = 5.0
"""Seconds any one condition may take to hold."""


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server on a free port, killed after the test (whatever the test did to it)."""
    server = RedisProcess(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
async def start_gateway(redis_server: RedisProcess) -> AsyncIterator[StartGateway]:
    """Start gateways on ``redis_server`` (settings may be given); stop them after the test."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**settings: Any) -> Gateway:
            settings.setdefault("broker", redis_server.url)
            return await stack.enter_async_context(running_gateway(**settings))

        yield start


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
