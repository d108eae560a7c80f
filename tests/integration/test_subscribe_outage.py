"""SUBSCRIBE while the broker is unreachable: that request fails, the connection stays.

The node cannot ask the broker for the topic, nor read its position, so it
answers the SUBSCRIBE with ERROR BROKER_UNAVAILABLE (its request id, no
``details.topic``: the whole command failed) and keeps nothing of it. The
connection stays open and usable; once the broker is back, the same
SUBSCRIBE succeeds and events flow. Never a 1011 close, never a traceback.
"""

from __future__ import annotations

import logging
import os
import signal

import pytest

from eventwire.codes import CloseCode
from eventwire.testing import TestClient
from tests.e2e.conftest import barrier, command, connect_ws, recv
from tests.integration.conftest import StartGateway, event, eventually
from tests.integration.redisproc import RedisProcess

TOPIC = "gift-list:9"


async def _subscribe(ws: object, request_id: str) -> dict[str, object]:
    await command(ws, "SUBSCRIBE", request_id, {"topics": [TOPIC]})  # type: ignore[arg-type]
    reply: dict[str, object] = await recv(ws, timeout=10)  # type: ignore[arg-type]
    return reply


@pytest.mark.parametrize("outage", ["stopped", "frozen"])
async def test_subscribe_during_an_outage_is_refused_and_the_connection_stays(
    outage: str,
    redis_server: RedisProcess,
    start_gateway: StartGateway,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gateway = await start_gateway()
    async with await connect_ws(gateway) as ws:
        await recv(ws)  # CONNECTED
        if outage == "stopped":
            redis_server.kill()
        else:
            assert redis_server.pid is not None
            os.kill(redis_server.pid, signal.SIGSTOP)
        try:
            with caplog.at_level(logging.WARNING):
                reply = await _subscribe(ws, "s1")
            assert reply["event"] == "ERROR", reply
            data = reply["data"]
            assert isinstance(data, dict)
            assert data["entity_id"] == "s1"
            assert data["payload"]["code"] == "BROKER_UNAVAILABLE"
            assert "topic" not in data["payload"]["details"]  # the whole SUBSCRIBE failed
            assert await barrier(ws) == []  # the connection is open and answers
            assert gateway.hub.subscriber_count(TOPIC) == 0
        finally:
            if outage == "stopped":
                redis_server.start()
            else:
                assert redis_server.pid is not None
                os.kill(redis_server.pid, signal.SIGCONT)
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        for attempt in range(100):  # the node's link comes back on its own schedule
            reply = await _subscribe(ws, f"s{attempt + 2}")
            if reply["event"] == "SUBSCRIBED":
                break
        assert reply["event"] == "SUBSCRIBED", reply
        await gateway.publish(event(TOPIC, 1))
        delivered = await recv(ws, timeout=10)
        assert (delivered["topic"], delivered["data"]["payload"]) == (TOPIC, {"n": 1})
        assert ws.close_code is None


async def test_a_client_resubscribing_during_an_outage_retries_until_the_broker_is_back(
    redis_server: RedisProcess, start_gateway: StartGateway
) -> None:
    gateway = await start_gateway()
    async with TestClient(gateway.ws_url) as client:
        await client.subscribe(TOPIC)
        count = client.reconnects
        redis_server.kill()
        try:
            for connection in list(gateway.connections):
                connection.close(CloseCode.GOING_AWAY, "a restart, say")
            # Resubscribing is refused as a whole (BROKER_UNAVAILABLE): the client
            # drops that connection and tries again, with backoff.
            await eventually(
                lambda: any(e.code == "BROKER_UNAVAILABLE" for e in client.errors),
                "a resubscribe refused while the broker is away",
            )
            assert client.reconnects == count  # not resumed yet
        finally:
            redis_server.start()
        await client.reconnected(since=count, timeout=15)
        await gateway.publish(event(TOPIC, 1))
        assert (await client.expect(TOPIC, timeout=10)).payload == {"n": 1}
