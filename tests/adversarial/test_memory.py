"""What a peer can make the server hold in memory: bounded by settings, or it is an attack.

Each test runs the gateway as a process (``proc.py``) and watches its
resident memory while a peer that never reads, or never stops sending, does
its worst. The bound is the one the settings promise; a little slack covers
the allocator and the interpreter, far below what the attack would cost if
nothing stopped it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import orjson
import pytest

from tests.adversarial.proc import MIB, MemoryWatch, counter, gateway_process, logged_errors
from tests.adversarial.wire import command, text_frame, ws_frame
from tests.e2e.conftest import ADMIN_KEY
from tests.e2e.rawpeer import RawPeer
from tests.integration.gatewayproc import GatewayProcess

BUFFER = 256 * 1024
"""max_outbound_buffer of every gateway here."""
SLACK = 16 * MIB
"""Memory the interpreter and allocator may take on top of a bound while busy."""
NOISE = 4 * MIB
"""Growth of a busy gateway that keeps nothing: 1.5 MiB measured over 64 MiB of pings read."""
SMALL_RECEIVE = 4096
"""SO_RCVBUF of the peers that never read: the kernel keeps little for them."""


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[GatewayProcess]:
    options = ("--max-outbound-buffer", str(BUFFER))
    async with gateway_process(tmp_path, {"EVENTWIRE_ADMIN_KEY": ADMIN_KEY}, *options) as node:
        yield node


async def _send_for(peer: RawPeer, block: bytes, seconds: float, most: int) -> int:
    """Write ``block`` again and again for ``seconds`` or ``most`` bytes; the bytes taken."""
    sent, deadline = 0, time.monotonic() + seconds
    with contextlib.suppress(TimeoutError, ConnectionError):
        while sent < most and (left := deadline - time.monotonic()) > 0:
            peer.writer.write(block)
            await asyncio.wait_for(peer.writer.drain(), left)
            sent += len(block)
    return sent


async def test_pings_never_read_cost_bounded_memory(node: GatewayProcess) -> None:
    """Each ping owes a pong, counted in the peer's outbound buffer; only the latest of a
    burst is answered, the frame budget pauses the flood, and a flood that keeps at it
    is closed (4029; 4008 had its unread pongs filled the buffer first)."""
    peer = await RawPeer.connect(node.ws_url, receive_buffer=SMALL_RECEIVE)
    try:
        async with MemoryWatch(node.pid) as memory:
            sent = await _send_for(peer, ws_frame(0x9, b"p" * 125) * 500, 8.0, 64 * MIB)
            closed = await _eventually(lambda: _closed_for_flood(node.url), 3.0)
    finally:
        peer.writer.transport.abort()
    seen = f"{sent / MIB:.0f} MiB of pings taken, server grew {memory.growth / MIB:.1f} MiB"
    print(seen)
    assert memory.growth < BUFFER + SLACK, seen
    assert sent < 64 * MIB, f"reading never paused: {seen}"
    assert closed >= 1, f"the flood was not closed (4029 or 4008): {seen}"
    assert logged_errors(node) == []


async def test_endless_empty_fragments_take_no_memory(node: GatewayProcess) -> None:
    """A message that never ends, in 2 million fragments of nothing: no bytes, nothing kept."""
    fragment = ws_frame(0x0, b"", fin=False)
    peer = await RawPeer.connect(node.ws_url)
    try:
        async with MemoryWatch(node.pid) as memory:
            await peer.send_raw(ws_frame(0x1, b"", fin=False))
            sent = await _send_for(peer, fragment * 10000, 8.0, 2_000_000 * len(fragment))
    finally:
        peer.writer.transport.abort()
    seen = (
        f"{sent // len(fragment)} empty fragments taken, server grew {memory.growth / MIB:.1f} MiB"
    )
    print(seen)
    assert memory.growth < NOISE, seen


async def test_bodies_without_a_key_are_refused_unread(node: GatewayProcess) -> None:
    """12 x 16 MiB to POST /v1/publish with no key: 401 each, and no body held."""
    async with MemoryWatch(node.pid) as memory:
        statuses = await asyncio.gather(*(_post_unauthorized(node.url) for _ in range(12)))
    seen = f"statuses {statuses}, server grew {memory.growth / MIB:.1f} MiB"
    print(seen)
    assert statuses == [401] * 12, seen
    assert memory.growth < SLACK, seen
    assert logged_errors(node) == []


async def _post_unauthorized(url: str, size: int = 16 * MIB) -> int | str:
    """POST ``size`` bytes without a key, reading the answer as it comes; its status."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    head = b"POST /v1/publish HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
    writer.write(head + b"Content-Length: %d\r\n\r\n" % size)
    answer = asyncio.get_running_loop().create_task(reader.readuntil(b"\r\n"))
    chunk = b" " * (256 * 1024)
    try:
        with contextlib.suppress(ConnectionError):
            for _ in range(size // len(chunk)):
                if answer.done():
                    break  # answered before the body was all sent
                writer.write(chunk)
                await writer.drain()
        line = await asyncio.wait_for(answer, 10.0)
        return int(line.split()[1])
    except (ConnectionError, asyncio.IncompleteReadError, TimeoutError) as exc:
        return type(exc).__name__
    finally:
        answer.cancel()
        writer.transport.abort()


TOPICS, EVENTS, PAGE = 50, 1000, 500
"""Topics and events a topic of the replay test; PAGE: events a history read returns."""


async def test_replays_to_peers_that_never_read_stay_within_their_buffers(
    node: GatewayProcess,
) -> None:
    """4 peers SUBSCRIBE with since seq 0 on 50 topics x 1,000 events and read nothing.

    Bound: 4 x (max_outbound_buffer + one history page), where a page is
    PAGE events of the largest event's size: what each peer may have written
    and waiting for it, plus the page being turned into frames.
    """
    topics = [f"replay:{index}" for index in range(TOPICS)]
    event_size = await _fill(node.url, topics)
    since = await _since_zero(node.url, topics)
    frame = text_frame(command("SUBSCRIBE", "s", {"topics": topics, "since": since}))
    peers = [await RawPeer.connect(node.ws_url, SMALL_RECEIVE) for _ in range(4)]
    bound = 4 * (BUFFER + PAGE * event_size)
    try:
        async with MemoryWatch(node.pid) as memory:
            for peer in peers:
                await peer.send_raw(frame)
            await asyncio.sleep(3.0)  # the replays start at once; nothing is read, ever
    finally:
        for peer in peers:
            peer.writer.transport.abort()
    seen = f"server grew {memory.growth / MIB:.1f} MiB; bound {bound / MIB:.1f} MiB + slack"
    print(seen)
    assert memory.growth < bound + SLACK, seen
    assert logged_errors(node) == []


async def _fill(url: str, topics: list[str]) -> int:
    """Publish EVENTS events of about 1 KiB to each topic; the size of the largest, stored."""
    auth = {"authorization": f"Bearer {ADMIN_KEY}", "content-type": "application/json"}
    async with httpx.AsyncClient(base_url=url, headers=auth, timeout=30.0) as client:
        for topic in topics:
            events = [
                {
                    "topic": topic,
                    "event": "ADDED",
                    "data": {"entity_id": f"e{n}", "payload": "x" * 1000},
                }
                for n in range(EVENTS)
            ]
            response = await client.post("/v1/publish", content=orjson.dumps({"events": events}))
            assert response.status_code == 200, response.text
        page = (await client.get(f"/v1/topics/{topics[0]}/history", params={"limit": 10})).json()
    return max(len(orjson.dumps(event)) for event in page["events"]) + 16


async def _since_zero(url: str, topics: list[str]) -> dict[str, dict[str, object]]:
    """``since`` at seq 0 of each topic's current epoch: replay everything kept."""
    auth = {"authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(base_url=url, headers=auth, timeout=10.0) as client:
        epoch = (await client.get(f"/v1/topics/{topics[0]}")).json()["position"]["epoch"]
    return {topic: {"seq": 0, "epoch": epoch} for topic in topics}


async def _closed_for_flood(url: str) -> float:
    """Connections closed as a flood (4029) or as a slow consumer (4008)."""
    disconnects = "eventwire_disconnects_total"
    return await counter(url, disconnects, code="4029") + await counter(
        url, disconnects, code="4008"
    )


async def _eventually(read: Callable[[], Awaitable[float]], timeout: float = 5.0) -> float:
    """Poll ``read`` until it is positive or ``timeout`` passed; its last value."""
    deadline = time.monotonic() + timeout
    while (value := await read()) <= 0:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    return value
