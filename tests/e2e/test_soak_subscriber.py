"""The soak's raw subscriber against a real gateway: it follows, resumes and stops as it claims.

The soak judges the server by what these subscribers saw, so a subscriber
that reconnected late would be reported as the server's silence: these
tests hold it to reconnecting at once when the server closes, resuming
with ``since``, and stopping promptly.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

from bench.soak.ledger import LatencyLog, SeqBook
from bench.soak.subscribers import Subscriber
from bench.soak.wire import SubscriberLedger

from eventwire.server import Gateway
from eventwire.testing import running_gateway

TOPIC = "room:1"
TIMEOUT = 5.0


async def eventually(condition: Callable[[], bool], what: str) -> float:
    """Poll ``condition`` (another task's state: nothing to await); the seconds it took."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < TIMEOUT, f"{what}: not within {TIMEOUT}s"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


def numbered(n: int) -> dict[str, Any]:
    payload = {"n": n, "t": time.monotonic()}
    return {"topic": TOPIC, "event": "ADDED", "data": {"entity_id": f"e{n}", "payload": payload}}


async def publish(gateway: Gateway, *numbers: int) -> None:
    for n in numbers:
        await gateway.publish(numbered(n))


def subscriber(url: list[str]) -> Subscriber:
    """A subscriber to the gateway at ``url[0]``, which drops its connection only after a minute."""
    ledger = SubscriberLedger(1, (TOPIC,), latencies=LatencyLog(), seqs=SeqBook())
    return Subscriber(
        ledger, lambda: [("gw", url[0])], drop_every=(60.0, 60.0), rng=random.Random(1)
    )


async def test_it_hands_over_every_event_once_and_stops_at_once() -> None:
    async with running_gateway() as gateway:
        sub, stop = subscriber([gateway.ws_url]), asyncio.Event()
        task = asyncio.create_task(sub.run(stop))
        cursor = sub.ledger.cursors[TOPIC]
        await eventually(lambda: cursor.first is not None, "subscribed")
        await publish(gateway, 1, 2, 3)
        await eventually(lambda: sub.ledger.caught_up({TOPIC: 3}), "events 1-3 handed over")
        stop.set()
        await asyncio.wait_for(task, 2.0)
    assert [sub.ledger.handed(n) for n in (1, 2, 3)] == [True, True, True]
    assert sub.ledger.counts["handed"] == 3
    assert sub.ledger.close_codes == {}  # the close was the subscriber's own


async def test_it_reconnects_at_once_when_the_server_closes_and_resumes_with_since() -> None:
    url: list[str] = []
    async with running_gateway() as first:
        url.append(first.ws_url)
        sub, stop = subscriber(url), asyncio.Event()
        task = asyncio.create_task(sub.run(stop))
        await eventually(lambda: sub.ledger.cursors[TOPIC].first is not None, "subscribed")
        await publish(first, 1, 2)
        await eventually(lambda: sub.ledger.caught_up({TOPIC: 2}), "events 1-2 handed over")
        port = first.port
    async with running_gateway(port=port) as second:  # in-memory: a new epoch
        took = await eventually(lambda: sub.ledger.counts["connections"] == 2, "reconnected")
        await eventually(lambda: sub.ledger.cursors[TOPIC].held is None, "subscribed again")
        await publish(second, 3)
        await eventually(lambda: sub.ledger.handed(3), "event 3 handed over")
        stop.set()
        await asyncio.wait_for(task, 2.0)
    assert took < 2.0  # not at its drop timer, a minute later
    assert sub.ledger.close_codes == {1001: 1}  # the first gateway's shutdown
    assert sub.ledger.counts["since_topics"] == 1
    assert sub.ledger.counts["history_resets"] == 1  # told: the in-memory history is gone
