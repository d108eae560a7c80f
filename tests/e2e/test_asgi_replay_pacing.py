"""A mounted gateway's replay goes on while other topics' live events keep its queue busy.

The ASGI server's ``send`` waits while its peer has much unread, and live
events of another topic arrive meanwhile, so the connection's queue is
seldom empty; the replay must go on whenever it is short, not only once empty.
"""

from __future__ import annotations

from websockets.asyncio.client import connect

from tests.e2e.conftest import barrier, command, event, recv
from tests.e2e.test_asgi import gateway as mounted_gateway
from tests.e2e.test_asgi import served_app  # noqa: F401 (fixture)
from tests.e2e.test_recovery_backlog import STALLING, STALLING_PADDING, publish_missed


async def test_a_replay_is_not_stalled_by_live_events_of_another_topic(
    served_app: str,  # noqa: F811
) -> None:
    topic, busy = "gift-list:replayed", "gift-list:busy"
    epoch = await publish_missed(mounted_gateway, topic, STALLING, STALLING_PADDING)
    ws_url = "ws" + served_app.removeprefix("http") + "/realtime/ws"
    replayed: list[int] = []
    busy_seqs: list[int] = []
    live = 0
    async with connect(ws_url, max_size=None, max_queue=1) as ws:
        assert (await recv(ws))["event"] == "CONNECTED"
        await command(ws, "SUBSCRIBE", "b", {"topics": [busy]})
        assert (await recv(ws))["event"] == "SUBSCRIBED"
        since = {topic: {"seq": 1, "epoch": epoch}}
        await command(ws, "SUBSCRIBE", "s", {"topics": [topic], "since": since})
        assert (await recv(ws))["event"] == "SUBSCRIBED"
        for _ in range(4 * STALLING):  # bounded: the replay is in long before
            if len(replayed) == STALLING:
                break
            frame = await recv(ws)
            if frame["topic"] == topic:
                replayed.append(frame["seq"])
            else:
                busy_seqs.append(frame["seq"])
            live += 1  # one live event of the other topic for every frame read
            await mounted_gateway.publish(event(busy, payload={"n": live}))
        busy_seqs += [frame["seq"] for frame in await barrier(ws)]
    assert replayed == list(range(2, STALLING + 2))
    assert busy_seqs == list(range(busy_seqs[0], busy_seqs[0] + live))  # none lost meanwhile
