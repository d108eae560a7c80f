"""What misbehaving peers and shutdowns do to the gateway: close codes and isolation."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

from eventwire.codes import ErrorCode
from eventwire.errors import ProtocolError
from eventwire.server import Gateway
from tests.e2e.conftest import StartGateway, event, open_ws, recv, subscribe
from tests.e2e.rawpeer import RawPeer

SUBSCRIBE = {
    "topic": "system",
    "event": "SUBSCRIBE",
    "data": {"entity_id": "s", "payload": {"topics": ["gift-list:1"]}},
}


async def raw_subscriber(gateway: Gateway, receive_buffer: int | None = None) -> RawPeer:
    peer = await RawPeer.connect(gateway.ws_url, receive_buffer)
    assert (await peer.next_json())["event"] == "CONNECTED"
    await peer.send_json(SUBSCRIBE)
    assert (await peer.next_json())["event"] == "SUBSCRIBED"
    return peer


async def test_oversized_frame_closes_with_1009(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(max_frame=1024)
    async with await open_ws(gateway, max_size=None) as ws:
        await ws.send("x" * 2000)
        with pytest.raises(ConnectionClosed):
            await recv(ws)
        assert ws.close_code == 1009


async def test_unmasked_frame_closes_with_1002(gateway: Gateway) -> None:
    async with await RawPeer.connect(gateway.ws_url) as peer:
        await peer.send_raw(Frame(Opcode.TEXT, b"{}").serialize(mask=False))
        assert await peer.close_code() == 1002


async def test_invalid_utf8_closes_with_1007(gateway: Gateway) -> None:
    async with await RawPeer.connect(gateway.ws_url) as peer:
        await peer.send_raw(Frame(Opcode.TEXT, b"\xff\xfe").serialize(mask=True))
        assert await peer.close_code() == 1007


async def test_silent_peer_is_closed_by_heartbeat(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(heartbeat_interval=0.1, heartbeat_timeout=0.1)
    async with await RawPeer.connect(gateway.ws_url) as peer:
        peer.mute = True  # play dead: pings go unanswered
        assert await peer.close_code(timeout=5) == 4002


async def test_a_peer_that_pings_but_never_pongs_is_closed_by_heartbeat(
    start_gateway: StartGateway,
) -> None:
    """Liveness is a pong or a whole message, not any byte: its own pings prove nothing."""
    gateway = await start_gateway(heartbeat_interval=0.1, heartbeat_timeout=0.1)
    async with await RawPeer.connect(gateway.ws_url) as peer:
        peer.mute = True

        async def ping_forever() -> None:
            while True:
                await peer.send_raw(Frame(Opcode.PING, b"alive?").serialize(mask=True))
                await asyncio.sleep(0.02)  # a steady trickle of frames, never a pong

        pinging = asyncio.create_task(ping_forever())
        try:
            assert await peer.close_code(timeout=5) == 4002
        finally:
            pinging.cancel()


async def test_responsive_peer_survives_heartbeats(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(heartbeat_interval=0.05, heartbeat_timeout=0.05)
    async with await open_ws(gateway) as ws:  # the websockets client answers pings
        for _ in range(10):
            await asyncio.sleep(0.05)  # let several heartbeat rounds pass
        await gateway.publish(event("gift-list:2"))
        await subscribe(ws, "gift-list:2")


async def test_slow_consumer_is_closed_and_never_slows_the_others(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(max_outbound_buffer=64 * 1024)
    slow = await raw_subscriber(gateway, receive_buffer=4096)
    async with slow, await open_ws(gateway) as fast:
        await subscribe(fast, "gift-list:1")
        count, blob = 300, "x" * 50_000
        received = 0
        for i in range(count):
            await gateway.publish(event("gift-list:1", payload={"i": i, "blob": blob}))
            frame = await recv(fast)
            assert frame["seq"] == i + 1
            received += 1
        assert received == count
        assert gateway.hub.subscriber_count("gift-list:1") == 1  # the slow one has left
        metrics = gateway.metrics.render().decode()
        assert 'eventwire_drops_total{reason="slow_consumer"} 1.0' in metrics
        assert 'eventwire_disconnects_total{code="4008"} 1.0' in metrics
        assert await slow.close_code() == 4008


async def test_graceful_shutdown_closes_clients_with_1001(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(shutdown_grace=2)
    async with await open_ws(gateway) as ws:
        await subscribe(ws, "gift-list:1")
        await gateway.publish(event("gift-list:1"))
        assert gateway.ready
        await gateway.stop()
        assert not gateway.ready
        assert (await recv(ws))["seq"] == 1  # delivered before the close
        with pytest.raises(ConnectionClosed):
            await recv(ws)
        assert ws.close_code == 1001
    with pytest.raises(ProtocolError) as refused:
        await gateway.publish(event())
    assert refused.value.code is ErrorCode.SHUTTING_DOWN
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as http:
            await http.get(gateway.url + "/healthz")


async def test_server_side_handlers_receive_matching_events(gateway: Gateway) -> None:
    seen: list[tuple[str, int | None]] = []
    done = asyncio.Event()

    @gateway.on("gift-list:*")
    async def audit(received: object) -> None:
        from eventwire.envelope import Event

        assert isinstance(received, Event)
        seen.append((received.topic, received.seq))
        if len(seen) == 2:
            done.set()

    @gateway.on("*:messages")
    def broken(received: object) -> None:
        raise RuntimeError("a failing handler must not hurt anyone")

    await gateway.publish(event("gift-list:1"))
    await gateway.publish(event("room:lobby:messages", "MESSAGE_POSTED"))
    await gateway.publish(event("gift-list:2:items"))
    await asyncio.wait_for(done.wait(), 5)
    assert seen == [("gift-list:1", 1), ("gift-list:2:items", 1)]


async def test_thousand_clients_receive_every_event_in_order(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(commands_per_second=10_000, command_burst=10_000)
    clients = 1000
    events = 20
    peers = await asyncio.gather(*(open_ws(gateway) for _ in range(clients)))
    try:
        await asyncio.gather(*(subscribe(ws, "room:lobby") for ws in peers))
        assert gateway.hub.subscriber_count("room:lobby") == clients
        for i in range(events):
            await gateway.publish(event("room:lobby", "MESSAGE_POSTED", entity_id=f"m{i}"))

        async def collect(ws: object) -> list[int]:
            seqs = []
            for _ in range(events):
                seqs.append((await recv(ws, timeout=30))["seq"])  # type: ignore[arg-type]
            return seqs

        results = await asyncio.gather(*(collect(ws) for ws in peers))
    finally:
        await asyncio.gather(*(ws.close() for ws in peers))
    assert all(seqs == list(range(1, events + 1)) for seqs in results)
