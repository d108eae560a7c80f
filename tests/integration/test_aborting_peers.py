"""Peers that vanish mid-fan-out never hold up the others' deliveries.

Under uvloop, writing to a transport whose peer has just reset it raises;
the write of one connection's batch must not end the flush of the others
queued in the same loop turn. The node runs as ``eventwire serve`` (uvloop),
150 subscribers reset their connections one by one while events flow, and
30 that only read must get every event with no long silence.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import struct
import time

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect

from tests.integration.gatewayproc import StartNode, start_node  # noqa: F401

TOPIC = "room:lobby"
READERS, ABORTERS = 30, 150
EVENTS = 600
RATE = 200.0
"""Events per second: the run lasts EVENTS / RATE seconds."""
MAX_SILENCE = 1.0
"""Seconds a reader may go without an event while events are published every 5 ms."""


def _event(n: int) -> dict[str, object]:
    return {"topic": TOPIC, "event": "ADDED", "data": {"entity_id": f"e{n}", "payload": {"n": n}}}


async def _subscribed(url: str) -> ClientConnection:
    ws = await connect(url, open_timeout=10, max_queue=None)
    await ws.recv()  # CONNECTED
    command = {"topics": [TOPIC]}
    frame = {
        "topic": "system",
        "event": "SUBSCRIBE",
        "data": {"entity_id": "s", "payload": command},
    }
    await ws.send(orjson.dumps(frame).decode())
    while orjson.loads(await ws.recv())["event"] != "SUBSCRIBED":
        pass
    return ws


def _reset(ws: ClientConnection) -> None:
    """Close with a TCP reset: SO_LINGER 0, as a crashing peer or a dropped NAT entry does."""
    sock: socket.socket = ws.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.transport.abort()


async def _read(ws: ClientConnection, arrivals: list[float]) -> None:
    while len(arrivals) < EVENTS:
        frame = orjson.loads(await ws.recv())
        if frame["topic"] == TOPIC:
            arrivals.append(time.monotonic())


async def _publish(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        started = time.monotonic()
        for n in range(EVENTS):
            await asyncio.sleep(max(0.0, started + n / RATE - time.monotonic()))
            (await http.post("/v1/publish", json=_event(n))).raise_for_status()


async def _reset_one_by_one(aborters: list[ClientConnection]) -> None:
    for ws in aborters:
        await asyncio.sleep(EVENTS / RATE / (ABORTERS + 1))
        _reset(ws)


async def test_peers_that_reset_do_not_silence_the_others(start_node: StartNode) -> None:  # noqa: F811
    node = await start_node("memory://", "--max-outbound-buffer", str(64 * 1024 * 1024))
    # Subscribed first, the aborters come first in each fan-out: the readers' frames
    # are queued behind theirs in the same batch.
    aborters = [await _subscribed(node.ws_url) for _ in range(ABORTERS)]
    readers = [await _subscribed(node.ws_url) for _ in range(READERS)]
    arrivals: list[list[float]] = [[] for _ in readers]
    reading = [
        asyncio.create_task(_read(ws, got)) for ws, got in zip(readers, arrivals, strict=True)
    ]
    async with asyncio.timeout(30):
        await asyncio.gather(_publish(node.url), _reset_one_by_one(aborters))
        await asyncio.gather(*reading)
    for ws in readers:
        await ws.close()
    worst = max(max(b - a for a, b in itertools.pairwise(got)) for got in arrivals)
    assert worst < MAX_SILENCE, f"a reader went {worst:.2f}s without an event\n{node.log_tail()}"
    assert "unable to perform operation" not in node.log_tail(400)
