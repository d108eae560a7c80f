"""A frozen broker: a publish it never got is a 503, one it got and did not answer a 504.

A client must tell "refused, nothing stored" (503 ``BROKER_UNAVAILABLE``:
retrying is safe) from "sent, no answer in time" (504
``PUBLISH_OUTCOME_UNKNOWN``: the broker may have stored it, and here does,
once resumed). Each test freezes a real server with SIGSTOP at a chosen
point, publishes through a real gateway (HTTP, a WebSocket PUBLISH, a
batch), resumes it, and reads the topic's history to see what was stored.
The brokers run with a short command timeout, so each freeze lasts about
a second.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from eventwire.auth import mint
from eventwire.brokers import Broker
from eventwire.client import Client, Publisher, PublishOutcomeUnknown
from eventwire.server import Gateway, Settings
from tests.integration.conftest import TIMEOUT, event
from tests.integration.natsproc import (  # noqa: F401 (fixture)
    NatsProcess,
    TcpProxy,
    nats_proxy,
    nats_server,
)
from tests.integration.redisproc import RedisProcess
from tests.integration.serverproc import ServerProcess

SHORT = 0.5
"""The brokers' command timeout here, in seconds."""
TOPIC = "room:lobby"
SECRET = "outcome-secret-for-tests-only-0123456789abcdef"


@contextlib.asynccontextmanager
async def gateway_on(broker: Broker) -> AsyncIterator[Gateway]:
    """A gateway on ``broker`` whose clients may publish MESSAGE_POSTED over their socket."""
    settings = Settings(
        host="127.0.0.1",
        port=0,
        shutdown_grace=1.0,
        insecure=True,  # the HTTP API takes no key; sockets need a token
        jwt_secret=SECRET,
        client_publishable=["MESSAGE_POSTED"],
    )
    gateway = Gateway(settings, broker=broker)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


@contextlib.contextmanager
def frozen(server: ServerProcess) -> Iterator[None]:
    """SIGSTOP the server for the block: its sockets stay open, nothing answers."""
    server.freeze()
    try:
        yield
    finally:
        server.thaw()


async def post(http: httpx.AsyncClient, gateway: Gateway, body: dict[str, Any]) -> httpx.Response:
    return await http.post(gateway.url + "/v1/publish", json=body)


def refusal(response: httpx.Response) -> tuple[int, str, dict[str, Any]]:
    body = response.json()
    return response.status_code, body["code"], body["details"]


async def publish_two(publisher: Publisher, first: int) -> None:
    """A batch of two events, ``first`` and the next."""
    async with publisher.batch() as events:
        for n in (first, first + 1):
            events.added(TOPIC, entity_id=f"e{n}", payload={"n": n})


async def stored(http: httpx.AsyncClient, gateway: Gateway, count: int) -> list[int]:
    """The ``n`` of each event in the topic's history, once it holds ``count`` of them."""
    url = f"{gateway.url}/v1/topics/{TOPIC}/history"
    async with asyncio.timeout(TIMEOUT):
        while True:
            response = await http.get(url)
            events = response.json()["events"] if response.status_code == 200 else []
            if len(events) >= count:
                return [e["data"]["payload"]["n"] for e in events]
            await asyncio.sleep(0.02)


async def test_redis_frozen_after_the_publish_was_sent_answers_504_and_stores_it(
    redis_server: RedisProcess,
) -> None:
    from eventwire.brokers.redis import RedisBroker

    broker = RedisBroker(redis_server.url, command_timeout=SHORT)
    async with gateway_on(broker) as gateway, httpx.AsyncClient(timeout=TIMEOUT) as http:
        assert (await post(http, gateway, event(TOPIC, 1))).status_code == 200
        with frozen(redis_server):
            # Written on the command connection that is open: Redis has it, unread.
            sent = await post(http, gateway, event(TOPIC, 2))
            # That connection was dropped with the timeout; a new one gets no answer
            # to its handshake, so this publish is never written.
            never_sent = await post(http, gateway, event(TOPIC, 3))
        assert refusal(sent) == (504, "PUBLISH_OUTCOME_UNKNOWN", {"published": 0, "unknown": 1})
        assert refusal(never_sent)[:2] == (503, "BROKER_UNAVAILABLE")
        assert await stored(http, gateway, 2) == [1, 2]  # Redis ran the 504'd one on SIGCONT
        after = await post(http, gateway, event(TOPIC, 4))
        assert after.json()["seq"] == 3  # and never the 503'd one
        assert await stored(http, gateway, 3) == [1, 2, 4]


async def test_redis_frozen_under_a_socket_publish_and_a_batch_they_learn_it(
    redis_server: RedisProcess,
) -> None:
    from eventwire.brokers.redis import RedisBroker

    broker = RedisBroker(redis_server.url, command_timeout=SHORT)
    async with (
        gateway_on(broker) as gateway,
        httpx.AsyncClient(timeout=TIMEOUT) as http,
        Publisher(gateway.url, http=http) as publisher,
        Client(gateway.ws_url, token=_token(gateway)) as client,
    ):
        # Both scripts loaded (a script Redis does not know yet would be refused on SIGCONT,
        # not run: an honest "maybe" too, but nothing to see), and the connection open.
        await publisher.added(TOPIC, entity_id="e1", payload={"n": 1})
        await publish_two(publisher, 2)
        with frozen(redis_server), pytest.raises(PublishOutcomeUnknown) as over_socket:
            await client.publisher.emit(TOPIC, "MESSAGE_POSTED", entity_id="e4", payload={"n": 4})
        assert over_socket.value.code == "PUBLISH_OUTCOME_UNKNOWN"
        assert await stored(http, gateway, 4) == [1, 2, 3, 4]

        await publisher.added(TOPIC, entity_id="e5", payload={"n": 5})  # connected again
        with frozen(redis_server), pytest.raises(PublishOutcomeUnknown) as batch:
            await publish_two(publisher, 6)
        # One script for the whole batch on one Redis: none surely stored, both maybe.
        assert batch.value.details == {"published": 0, "unknown": 2}
        assert await stored(http, gateway, 7) == [1, 2, 3, 4, 5, 6, 7]


async def test_nats_frozen_after_the_publish_was_sent_answers_504_and_stores_it(
    nats_server: NatsProcess,  # noqa: F811
    nats_proxy: TcpProxy,  # noqa: F811
) -> None:
    from eventwire.brokers.nats import NatsBroker

    broker = NatsBroker(nats_proxy.url, command_timeout=SHORT)
    store = b"HPUB " + broker.names.stored(TOPIC).encode() + b" "
    async with gateway_on(broker) as gateway, httpx.AsyncClient(timeout=TIMEOUT) as http:
        assert (await post(http, gateway, event(TOPIC, 1))).status_code == 200
        # A NATS publish reads the topic's last message, then stores the next one:
        # freeze the server as the store goes out, after the read was answered.
        nats_proxy.before_sending(store, nats_server.freeze)
        try:
            sent = await post(http, gateway, event(TOPIC, 2))
            never_sent = await post(http, gateway, event(TOPIC, 3))  # its read times out
        finally:
            nats_server.thaw()
        assert refusal(sent) == (504, "PUBLISH_OUTCOME_UNKNOWN", {"published": 0, "unknown": 1})
        assert refusal(never_sent)[:2] == (503, "BROKER_UNAVAILABLE")
        assert await stored(http, gateway, 2) == [1, 2]

        # A batch goes one event at a time: the first is sent, the second never is.
        nats_proxy.before_sending(store, nats_server.freeze)
        try:
            batch = await post(http, gateway, {"events": [event(TOPIC, 4), event(TOPIC, 5)]})
        finally:
            nats_server.thaw()
        assert refusal(batch) == (504, "PUBLISH_OUTCOME_UNKNOWN", {"published": 0, "unknown": 1})
        assert await stored(http, gateway, 3) == [1, 2, 4]
        after = await post(http, gateway, event(TOPIC, 6))
        assert after.json()["seq"] == 4
        assert await stored(http, gateway, 4) == [1, 2, 4, 6]


def _token(gateway: Gateway) -> str:
    return mint(gateway.settings, sub="u1", subscribe=["room:*"], publish=["room:*"])
