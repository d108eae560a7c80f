"""A replay larger than the outbound buffer is written at the pace the peer reads it.

A client that missed more bytes of events than ``max_outbound_buffer`` (1 MiB
by default; a slow consumer closed with 4008 always has) must still get them
back from history, rather than be closed as a slow consumer by its own
replay, again at every reconnection. Both transports: the gateway's own
server and the gateway mounted in an ASGI app.
"""

from __future__ import annotations

import asyncio

from websockets.asyncio.client import ClientConnection, connect

from eventwire.server import Gateway
from tests.e2e.conftest import StartGateway, barrier, command, event, open_ws, recv
from tests.e2e.test_asgi import gateway as mounted_gateway
from tests.e2e.test_asgi import served_app  # noqa: F401 (fixture)

MISSED = 160
PADDING = "x" * 8000
"""160 events of 8 KB: 1.3 MB, more than the default outbound buffer."""


async def publish_missed(gateway: Gateway, topic: str) -> str:
    """Publish one event, then MISSED more while nobody listens; the topic's epoch."""
    for n in range(MISSED + 1):
        await gateway.publish(event(topic, payload={"n": n, "padding": PADDING}))
    return (await gateway.broker.position(topic)).epoch


async def assert_replayed(ws: ClientConnection, topic: str, epoch: str) -> None:
    """SUBSCRIBE after seq 1: every missed event arrives, in order, and the socket stays open."""
    since = {topic: {"seq": 1, "epoch": epoch}}
    await command(ws, "SUBSCRIBE", "s", {"topics": [topic], "since": since})
    reply = await recv(ws)
    assert reply["event"] == "SUBSCRIBED", reply
    assert reply["data"]["payload"]["recovered"] == {topic: True}
    frames = await barrier(ws)
    assert [frame["seq"] for frame in frames] == list(range(2, MISSED + 2))
    assert ws.close_code is None


async def test_a_replay_larger_than_the_outbound_buffer_reaches_the_client(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(max_outbound_buffer=256 * 1024)
    epoch = await publish_missed(gateway, "gift-list:1")
    async with await open_ws(gateway, max_size=None) as ws:
        await assert_replayed(ws, "gift-list:1", epoch)


async def test_live_events_wait_behind_a_long_replay_and_none_is_lost(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(max_outbound_buffer=256 * 1024)
    topic = "gift-list:2"
    epoch = await publish_missed(gateway, topic)

    async def publish_live() -> None:
        for n in range(50):
            await gateway.publish(event(topic, payload={"live": n}))
            await asyncio.sleep(0.001)

    async with await open_ws(gateway, max_size=None) as ws:
        live = asyncio.create_task(publish_live())
        since = {topic: {"seq": 1, "epoch": epoch}}
        await command(ws, "SUBSCRIBE", "s", {"topics": [topic], "since": since})
        assert (await recv(ws))["event"] == "SUBSCRIBED"
        await live
        seqs = [(await recv(ws))["seq"] for _ in range(MISSED + 50)]
    assert seqs == list(range(2, MISSED + 52))


async def test_a_mounted_gateway_paces_its_replay_too(served_app: str) -> None:  # noqa: F811
    topic = "gift-list:backlog"
    epoch = await publish_missed(mounted_gateway, topic)
    ws_url = "ws" + served_app.removeprefix("http") + "/realtime/ws"
    async with connect(ws_url, max_size=None) as ws:
        assert (await recv(ws))["event"] == "CONNECTED"
        await assert_replayed(ws, topic, epoch)
