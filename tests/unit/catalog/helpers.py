"""A small catalog of the seed's gift list for the catalog tests, and event builders."""

from __future__ import annotations

import enum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from eventwire.catalog import Catalog, PayloadMode
from eventwire.envelope import decode_new_event
from eventwire.errors import FieldError, ValidationFailed

__all__ = ["GIFT", "Gift", "GiftStatus", "errors_of", "event", "gift_catalog"]


class GiftStatus(enum.StrEnum):
    AVAILABLE = "available"
    PURCHASED = "purchased"


class Gift(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    price: float | None = None
    notes: str | None = None
    status: GiftStatus
    created_at: AwareDatetime
    updated_at: AwareDatetime


class StatusExtra(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purchased_by: str | None = None


class Purchased(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    purchased_by: str


GIFT: dict[str, Any] = {
    "id": "gift-456",
    "name": "Board game",
    "price": 29.99,
    "status": "available",
    "created_at": "2023-01-01T00:00:00Z",
    "updated_at": "2023-01-02T00:00:00Z",
}


def gift_catalog(
    *,
    mode: PayloadMode | str = "auto",
    strict: bool = True,
    catalog_strict: bool = False,
    reference_url: str | None = "/api/gifts/{entity_id}",
) -> Catalog:
    """The seed's gift list: Gift DTO, statuses with transitions, GIFT_PURCHASED."""
    catalog = Catalog("gifts", strict=catalog_strict)
    gifts = catalog.resource(
        "gift-list",
        Gift,
        statuses=GiftStatus,
        transitions={"available": ["purchased"], "purchased": ["available"]},
        status_payload=StatusExtra,
        strict=strict,
        payload_mode=mode,
        reference_url=reference_url,
        example=GIFT,
        status_example={"purchased_by": "user-789"},
    )
    gifts.event(
        "GIFT_PURCHASED",
        Purchased,
        description="Someone bought a gift.",
        example={"id": "gift-456", "purchased_by": "user-789"},
    )
    return catalog


def event(
    name: str,
    payload: Any,
    *,
    topic: str = "gift-list:123",
    entity_id: str = "gift-456",
    **extra: Any,
) -> dict[str, Any]:
    """A published event in the seed's envelope."""
    return {
        "topic": topic,
        "event": name,
        "data": {"entity_id": entity_id, "payload": payload},
        **extra,
    }


def errors_of(catalog: Catalog, raw: dict[str, Any]) -> list[FieldError]:
    """The fields the catalog refuses in ``raw``; empty when it is accepted."""
    try:
        catalog.validate(decode_new_event(raw))
    except ValidationFailed as exc:
        return exc.errors
    return []
