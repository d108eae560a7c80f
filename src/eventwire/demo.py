"""The demo: a real event catalog and a small, endless stream of events it declares.

``eventwire.demo:catalog`` is the seed's running example as a catalog:

- ``gift-list``: the ``Gift`` DTO (ADDED, UPDATED, DELETED, STATUS_CHANGED
  between ``available`` and ``purchased``, carrying ``purchased_by``), and
  the custom ``GIFT_PURCHASED``; strict, ``auto`` payloads, reference URL
  ``/api/gifts/{entity_id}``;
- ``room``: USER_JOINED, USER_LEFT and MESSAGE_POSTED (versions 1 and 2,
  with converters both ways: a Python function up, :func:`add_mentions`,
  and a declarative ``Drop("mentions")`` down);
- ``import``: IMPORT_COMPLETED with ``total``, ``imported`` and ``errors``.

:func:`demo_events` walks one gift through its life on ``gift-list:demo``
while people come and go on ``room:lobby``; :func:`run_demo` publishes it,
one event every ``interval`` seconds (what ``make run`` shows).
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, HttpUrl

from eventwire.catalog import Catalog, Drop
from eventwire.envelope import format_timestamp, utc_now

__all__ = [
    "DEMO_TOPICS",
    "Gift",
    "GiftPurchased",
    "GiftStatus",
    "GiftStatusChange",
    "ImportCompleted",
    "MessagePosted",
    "MessagePostedV2",
    "RoomMember",
    "add_mentions",
    "catalog",
    "demo_events",
    "run_demo",
]

DEMO_TOPICS = ("gift-list:demo", "room:lobby", "import:demo")

Publish = Callable[[dict[str, Any]], Awaitable[object]]

_STRICT = ConfigDict(extra="forbid")


# -- the catalog ---------------------------------------------------------------


class GiftStatus(enum.StrEnum):
    """Where a gift stands."""

    AVAILABLE = "available"
    PURCHASED = "purchased"


class Gift(BaseModel):
    """A gift on a shared gift list: the seed's full DTO."""

    model_config = _STRICT

    id: str = Field(min_length=1, description="the gift's id, also the event's entity_id")
    name: str = Field(min_length=1, max_length=200)
    price: float | None = Field(None, ge=0, description="in the list's currency")
    url: str | None = Field(None, max_length=2000, description="where to buy it")
    notes: str | None = Field(None, max_length=2000)
    # A new gift is available; timestamps are the store's when it has them.
    # With these defaults the seed's minimal ADDED (`{"id", "name"}`) is valid.
    status: GiftStatus = GiftStatus.AVAILABLE
    created_at: AwareDatetime | None = None
    updated_at: AwareDatetime | None = None


class GiftStatusChange(BaseModel):
    """STATUS_CHANGED's extra fields on a gift list."""

    model_config = _STRICT

    purchased_by: str | None = Field(None, description="who bought it, when it becomes purchased")


class GiftPurchased(BaseModel):
    """Someone bought a gift."""

    model_config = _STRICT

    id: str = Field(min_length=1)
    purchased_by: str = Field(min_length=1, description="the buyer's user id")


class RoomMember(BaseModel):
    """Someone in a room."""

    model_config = _STRICT

    user_id: str = Field(min_length=1)
    username: str = Field(min_length=1, max_length=100)
    avatar_url: HttpUrl | None = None


class MessagePosted(BaseModel):
    """A chat message in a room (version 1)."""

    model_config = _STRICT

    message_id: str = Field(min_length=1)
    user_id: str = Field(min_length=1)
    username: str = Field(min_length=1, max_length=100)
    text: str = Field(max_length=4000)


class MessagePostedV2(MessagePosted):
    """A chat message in a room (version 2): with the user names it mentions."""

    mentions: list[str] = Field(default_factory=list, description="names after '@' in the text")


class ImportCompleted(BaseModel):
    """A batch import finished."""

    model_config = _STRICT

    total: int = Field(ge=0, description="records in the file")
    imported: int = Field(ge=0, description="records imported")
    errors: int = Field(ge=0, description="records refused")


_EXAMPLE_GIFT = {
    "id": "gift-456",
    "name": "Board game",
    "price": 29.99,
    "url": "https://example.com/board-game",
    "notes": "The deluxe edition",
    "status": "available",
    "created_at": "2023-01-01T00:00:00Z",
    "updated_at": "2023-01-02T00:00:00Z",
}

catalog = Catalog(
    "eventwire-demo",
    title="eventwire demo",
    description="The seed's gift lists, a chat room and batch imports.",
)

gifts = catalog.resource(
    "gift-list",
    Gift,
    description="A shared gift list; the topic names the list, entity_id the gift.",
    statuses=GiftStatus,
    transitions={GiftStatus.AVAILABLE: [GiftStatus.PURCHASED], GiftStatus.PURCHASED: []},
    status_payload=GiftStatusChange,
    strict=True,
    payload_mode="auto",
    reference_url="/api/gifts/{entity_id}",
    example=_EXAMPLE_GIFT,
    status_example={"purchased_by": "user-789"},
)
gifts.event(
    "GIFT_PURCHASED",
    GiftPurchased,
    description="Someone bought a gift from the list.",
    example={"id": "gift-456", "purchased_by": "user-789"},
)

room = catalog.resource(
    "room", description="A chat room; entity_id is the user or the message.", strict=True
)
_member_example = {"user_id": "user-123", "username": "Alice"}
room.event("USER_JOINED", RoomMember, description="Someone entered.", example=_member_example)
room.event("USER_LEFT", RoomMember, description="Someone left.", example=_member_example)
_message_example = {
    "message_id": "msg-1",
    "user_id": "user-123",
    "username": "Alice",
    "text": "Hello @bob",
}
room.event(
    "MESSAGE_POSTED",
    MessagePosted,
    description="Someone posted a message.",
    example=_message_example,
)
room.event(
    "MESSAGE_POSTED",
    MessagePostedV2,
    version=2,
    example={**_message_example, "mentions": ["bob"]},
)

_MENTION = re.compile(r"@([A-Za-z0-9_-]+)")


@room.converter("MESSAGE_POSTED", 1, 2)
def add_mentions(payload: dict[str, Any]) -> dict[str, Any]:
    """MESSAGE_POSTED 1 -> 2: the names after '@' in the text (Python: data cannot say it).

    Exported to the catalog's JSON by its import path, ``eventwire.demo:add_mentions``.
    """
    return {**payload, "mentions": _MENTION.findall(payload.get("text", ""))}


# 2 -> 1 is data: it travels in the catalog's JSON as {"op": "drop", "field": "mentions"}.
room.evolve("MESSAGE_POSTED", 2, 1, Drop("mentions"))


imports = catalog.resource(
    "import", description="A batch import job; entity_id is the job.", strict=True
)
imports.event(
    "IMPORT_COMPLETED",
    ImportCompleted,
    description="A batch import finished.",
    example={"total": 1000, "imported": 950, "errors": 50},
)


# -- the stream ----------------------------------------------------------------


def _event(topic: str, event: str, entity_id: str, payload: Any, **meta: Any) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "topic": topic,
        "event": event,
        "data": {"entity_id": entity_id, "payload": payload, "user_id": meta.pop("user_id")},
        "trace_id": uuid.uuid4().hex,
    }
    wire.update(meta)
    return wire


def demo_events() -> Iterator[dict[str, Any]]:
    """The demo's events, forever; every one valid under :data:`catalog`."""
    people = ("Alice", "Bob", "Chen", "Dana")
    for n in itertools.count(1):
        now = format_timestamp(utc_now())
        gift_id = f"gift-{n}"
        gift = {
            "id": gift_id,
            "name": f"Board game #{n}",
            "price": 29.99,
            "status": "available",
            "created_at": now,
            "updated_at": now,
        }
        person, other = people[(n - 1) % 4], people[n % 4]
        user_id = f"user-{person.lower()}"
        member = {"user_id": user_id, "username": person}
        message = {
            "message_id": f"msg-{n}",
            **member,
            "text": f"I'll get #{n}, @{other.lower()}",
            "mentions": [other.lower()],
        }
        gift_list, lobby = "gift-list:demo", "room:lobby"
        yield _event(gift_list, "ADDED", gift_id, gift, user_id=user_id)
        yield _event(lobby, "USER_JOINED", user_id, member, user_id=user_id)
        renamed = {"name": f"Board game #{n} (deluxe)", "updated_at": now}
        yield _event(gift_list, "UPDATED", gift_id, renamed, user_id=user_id)
        yield _event(lobby, "MESSAGE_POSTED", f"msg-{n}", message, user_id=user_id, version=2)
        yield _event(
            gift_list,
            "STATUS_CHANGED",
            gift_id,
            {
                "id": gift_id,
                "old_status": "available",
                "new_status": "purchased",
                "purchased_by": user_id,
            },
            user_id=user_id,
        )
        purchase = {"id": gift_id, "purchased_by": user_id}
        yield _event(gift_list, "GIFT_PURCHASED", gift_id, purchase, user_id=user_id)
        counts = {"total": 10 * n, "imported": 10 * n - n % 3, "errors": n % 3}
        yield _event("import:demo", "IMPORT_COMPLETED", f"job-{n}", counts, user_id=user_id)
        yield _event(lobby, "USER_LEFT", user_id, member, user_id=user_id)
        yield _event(gift_list, "DELETED", gift_id, None, user_id=user_id)


async def run_demo(publish: Publish, interval: float = 2.0) -> None:
    """Publish the demo stream until cancelled."""
    for event in demo_events():
        await publish(event)
        await asyncio.sleep(interval)
