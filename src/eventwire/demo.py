"""A small, endless stream of the seed's events, for `make run` and first looks.

It walks one gift through its life on ``gift-list:demo`` (ADDED, UPDATED,
STATUS_CHANGED, GIFT_PURCHASED, DELETED) and has people come and go on
``room:lobby``, one event every ``interval`` seconds.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

__all__ = ["DEMO_TOPICS", "demo_events", "run_demo"]

DEMO_TOPICS = ("gift-list:demo", "room:lobby")

Publish = Callable[[dict[str, Any]], Awaitable[object]]


def _event(topic: str, event: str, entity_id: str, payload: Any, **meta: Any) -> dict[str, Any]:
    return {
        "topic": topic,
        "event": event,
        "data": {"entity_id": entity_id, "payload": payload, **meta},
    }


def demo_events() -> Iterator[dict[str, Any]]:
    """The demo's events, forever."""
    names = itertools.cycle(["Alice", "Bob", "Chen", "Dana"])
    for n in itertools.count(1):
        gift_id = f"gift-{n}"
        gift = {"id": gift_id, "name": f"Board game #{n}", "price": 29.99, "status": "available"}
        person = next(names)
        user_id = f"user-{person.lower()}"
        yield _event("gift-list:demo", "ADDED", gift_id, gift, user_id=user_id)
        yield _event("room:lobby", "USER_JOINED", user_id, {"user_id": user_id, "username": person})
        yield _event("gift-list:demo", "UPDATED", gift_id, {"name": f"Board game #{n} (deluxe)"})
        yield _event(
            "gift-list:demo",
            "STATUS_CHANGED",
            gift_id,
            {
                "id": gift_id,
                "old_status": "available",
                "new_status": "purchased",
                "purchased_by": user_id,
            },
        )
        yield _event(
            "gift-list:demo", "GIFT_PURCHASED", gift_id, {"id": gift_id, "purchased_by": user_id}
        )
        yield _event("room:lobby", "USER_LEFT", user_id, {"user_id": user_id, "username": person})
        yield _event("gift-list:demo", "DELETED", gift_id, None)


async def run_demo(publish: Publish, interval: float = 2.0) -> None:
    """Publish the demo stream until cancelled."""
    for event in demo_events():
        await publish(event)
        await asyncio.sleep(interval)
