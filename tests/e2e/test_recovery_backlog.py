"""A replay larger than the outbound buffer is written at the pace the peer reads it.

A client that missed more bytes of events than ``max_outbound_buffer`` (1 MiB
by default; a slow consumer closed with 4008 always has) must still get them
back from history, rather than be closed as a slow consumer by its own
replay, again at every reconnection. Both transports: the gateway's own
server and the gateway mounted in an ASGI app.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from eventwire.server import Gateway
from eventwire.server.connection import ConnectionBase
from tests.e2e.conftest import StartGateway, barrier, command, event, open_ws, recv
from tests.e2e.test_asgi import gateway as mounted_gateway
from tests.e2e.test_asgi import served_app  # noqa: F401 (fixture)

MISSED = 160
PADDING = "x" * 8000
"""160 events of 8 KB: 1.3 MB, more than the default outbound buffer."""


def kernel_send_buffer_max() -> int:
    """The most the kernel may buffer for one socket's sends (it grows them up to that)."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as limits:
            return int(limits.read().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 * 1024 * 1024


STALLING_PADDING = "x" * 32_000
STALLING = 2 * kernel_send_buffer_max() // len(STALLING_PADDING)
"""Missed events more than the kernel can buffer: a replay that waits for its reader."""


async def publish_missed(
    gateway: Gateway, topic: str, missed: int = MISSED, padding: str = PADDING
) -> str:
    """Publish one event, then ``missed`` more while nobody listens; the topic's epoch."""
    for n in range(missed + 1):
        await gateway.publish(event(topic, payload={"n": n, "padding": padding}))
    return (await gateway.broker.position(topic)).epoch


async def assert_replayed(ws: ClientConnection, topic: str, epoch: str) -> None:
    """SUBSCRIBE after seq 1: every missed event arrives, in order, and the socket stays open."""
    since = {topic: {"seq": 1, "epoch": epoch}}
    await command(ws, "SUBSCRIBE", "s", {"topics": [topic], "since": since})
    reply = await recv(ws)
    assert reply["event"] == "SUBSCRIBED", reply
    assert reply["data"]["payload"]["recovered"] == {topic: True}
    frames = [await recv(ws) for _ in range(MISSED)]
    assert [frame["seq"] for frame in frames] == list(range(2, MISSED + 2))
    assert await barrier(ws) == []  # nothing more
    assert ws.close_code is None


async def test_a_replay_larger_than_the_outbound_buffer_reaches_the_client(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(max_outbound_buffer=256 * 1024)
    epoch = await publish_missed(gateway, "gift-list:1")
    async with await open_ws(gateway, max_size=None) as ws:
        await assert_replayed(ws, "gift-list:1", epoch)


async def unhurried_client(gateway: Gateway) -> ClientConnection:
    """A client that reads only when asked to: a small socket buffer, one frame queued.

    While it does not read, a replay of STALLING events cannot finish, so the
    live events of the topic are held for as long as it waits.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (gateway.settings.host, gateway.port))
    ws = await connect(gateway.ws_url, sock=sock, max_size=None, max_queue=1)
    assert (await recv(ws))["event"] == "CONNECTED"
    return ws


async def subscribe_since_1(ws: ClientConnection, topic: str, epoch: str) -> None:
    since = {topic: {"seq": 1, "epoch": epoch}}
    await command(ws, "SUBSCRIBE", "s", {"topics": [topic], "since": since})
    reply = await recv(ws)
    assert reply["event"] == "SUBSCRIBED", reply
    assert reply["data"]["payload"]["recovered"] == {topic: True}


async def close_code_after_the_rest(ws: ClientConnection) -> int | None:
    """Read what was sent before the close, then return the close code."""
    for _ in range(10 * STALLING):
        try:
            await recv(ws)
        except ConnectionClosed:
            return ws.close_code
    raise AssertionError("never closed")


def the_connection(gateway: Gateway) -> ConnectionBase:
    (connection,) = gateway.connections
    assert isinstance(connection, ConnectionBase)
    return connection


async def test_live_events_wait_behind_a_long_replay_and_none_is_lost(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(max_outbound_buffer=256 * 1024, max_recovery=STALLING)
    topic = "gift-list:2"
    epoch = await publish_missed(gateway, topic, STALLING, STALLING_PADDING)
    live = 50
    async with await unhurried_client(gateway) as ws:
        await subscribe_since_1(ws, topic, epoch)
        for n in range(live):  # the replay waits for the client: these are held
            await gateway.publish(event(topic, payload={"live": n}))
        seqs = [(await recv(ws))["seq"] for _ in range(STALLING + live)]
        assert seqs == list(range(2, STALLING + live + 2))  # each once, in order
        assert await barrier(ws) == []  # and nothing after them
        assert the_connection(gateway).held_events == live
        await gateway.publish(event(topic, payload={"live": live}))
        assert (await recv(ws))["seq"] == STALLING + live + 2  # the topic is live again


@pytest.mark.parametrize(
    ("cap", "padding", "most_held"),
    [
        ("max_recovery", "", STALLING),  # events of a few bytes: the count is crossed first
        ("max_outbound_buffer", PADDING, 256 * 1024 // len(PADDING)),  # 8 KB ones: the bytes
    ],
)
async def test_a_client_that_stops_reading_during_a_replay_is_closed_at_the_cap(
    start_gateway: StartGateway, cap: str, padding: str, most_held: int
) -> None:
    gateway = await start_gateway(max_outbound_buffer=256 * 1024, max_recovery=STALLING)
    topic = "gift-list:3"
    epoch = await publish_missed(gateway, topic, STALLING, STALLING_PADDING)
    async with await unhurried_client(gateway) as ws:
        await subscribe_since_1(ws, topic, epoch)
        connection = the_connection(gateway)
        published = 0
        while not connection.held_events > most_held and published < 2 * most_held + 10:
            await gateway.publish(event(topic, payload={"live": published, "p": padding}))
            published += 1
        # Closed the moment the cap was crossed, long before any heartbeat.
        assert connection.held_events == most_held + 1, cap
        for n in range(20):  # it holds nothing more: it has left the topic
            await gateway.publish(event(topic, payload={"late": n, "p": padding}))
        assert connection.held_events == most_held + 1
        assert await close_code_after_the_rest(ws) == 4008
    metrics = gateway.metrics.render().decode()
    assert 'eventwire_drops_total{reason="slow_consumer"} 1.0' in metrics


async def test_a_mounted_gateway_paces_its_replay_too(served_app: str) -> None:  # noqa: F811
    topic = "gift-list:backlog"
    epoch = await publish_missed(mounted_gateway, topic)
    ws_url = "ws" + served_app.removeprefix("http") + "/realtime/ws"
    async with connect(ws_url, max_size=None) as ws:
        assert (await recv(ws))["event"] == "CONNECTED"
        await assert_replayed(ws, topic, epoch)


async def test_commands_are_answered_while_a_replay_waits_for_its_reader(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(max_outbound_buffer=256 * 1024, max_recovery=STALLING)
    topic, other = "gift-list:4", "gift-list:5"
    epoch = await publish_missed(gateway, topic, STALLING, STALLING_PADDING)
    async with await unhurried_client(gateway) as ws:
        since = {topic: {"seq": 1, "epoch": epoch}}
        await command(ws, "SUBSCRIBE", "s", {"topics": [topic], "since": since})
        await command(ws, "SUBSCRIBE", "o", {"topics": [other]})
        frames = [await recv(ws) for _ in range(STALLING + 2)]
        names = [frame["event"] if frame["topic"] == "system" else "event" for frame in frames]
        # The second SUBSCRIBE did not wait for the whole replay of the first.
        assert names[0] == "SUBSCRIBED"
        assert "SUBSCRIBED" in names[1:-1], names
        replayed = [frame["seq"] for frame in frames if frame["topic"] == topic]
        assert replayed == list(range(2, STALLING + 2))
        await gateway.publish(event(other))
        assert (await recv(ws))["topic"] == other


async def test_each_topic_of_a_subscribe_turns_live_after_its_own_replay(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(max_outbound_buffer=256 * 1024, max_recovery=STALLING)
    long, short = "gift-list:6", "gift-list:7"
    long_epoch = await publish_missed(gateway, long, STALLING, STALLING_PADDING)
    short_epoch = await publish_missed(gateway, short, 3)
    async with await unhurried_client(gateway) as ws:
        since = {long: {"seq": 1, "epoch": long_epoch}, short: {"seq": 1, "epoch": short_epoch}}
        await command(ws, "SUBSCRIBE", "s", {"topics": [long, short], "since": since})
        assert (await recv(ws))["event"] == "SUBSCRIBED"
        frames: list[dict[str, Any]] = []
        while [f["seq"] for f in frames if f["topic"] == short] != [2, 3, 4]:
            assert len(frames) < STALLING + 3, "the short replay waited for the long one"
            frames.append(await recv(ws))
        await gateway.publish(event(short, payload={"live": 1}))
        while frames[-1]["topic"] != short or frames[-1]["seq"] != 5:
            frames.append(await recv(ws))
        replayed = [f["seq"] for f in frames if f["topic"] == long]
        assert replayed == list(range(2, len(replayed) + 2))
        assert len(replayed) < STALLING  # live before the long replay was out
        replayed += [(await recv(ws))["seq"] for _ in range(STALLING - len(replayed))]
        assert replayed == list(range(2, STALLING + 2))


async def test_history_trimmed_under_a_long_replay_ends_it_with_recovery_failed(
    start_gateway: StartGateway,
) -> None:
    """The replay reads history a page at a time: what was trimmed meanwhile is reported lost."""
    gateway = await start_gateway(
        max_outbound_buffer=256 * 1024, max_recovery=2 * STALLING, history_size=STALLING + 1
    )
    topic = "gift-list:8"
    epoch = await publish_missed(gateway, topic, STALLING, STALLING_PADDING)
    async with await unhurried_client(gateway) as ws:
        await subscribe_since_1(ws, topic, epoch)
        for n in range(STALLING):  # held behind the stalled replay; history trims its events
            await gateway.publish(event(topic, payload={"live": n}))
        frames = [await recv(ws)]
        while frames[-1].get("seq") != 2 * STALLING + 1:
            assert len(frames) <= 2 * STALLING + 1, "some live event is missing"
            frames.append(await recv(ws))
        assert await barrier(ws) == []
    events = [f["seq"] for f in frames if f["topic"] == topic]
    [failed] = [i for i, f in enumerate(frames) if f["event"] == "RECOVERY_FAILED"]
    payload = frames[failed]["data"]["payload"]
    assert (payload["reason"], payload["position"]["seq"]) == ("history_truncated", STALLING + 1)
    replayed = [f["seq"] for f in frames[:failed] if f["topic"] == topic]
    assert 2 < len(replayed) + 2 < STALLING + 1  # some, not all, of the missed events
    assert replayed == list(range(2, len(replayed) + 2))
    assert events[len(replayed) :] == list(range(STALLING + 2, 2 * STALLING + 2))  # then live
