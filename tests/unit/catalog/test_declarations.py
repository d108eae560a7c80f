"""Declaring a catalog: the standard events from a DTO, custom events, and what is refused."""

from __future__ import annotations

import enum
from typing import Any

import pytest
from pydantic import BaseModel

from eventwire.catalog import Catalog, CatalogError, NullPayload, PayloadMode

from .helpers import GIFT, Gift, GiftStatus, Purchased, gift_catalog


def test_a_dto_defines_the_standard_events_at_once() -> None:
    catalog = gift_catalog()
    gifts = catalog.resources["gift-list"]
    assert list(gifts.events) == ["ADDED", "UPDATED", "DELETED", "STATUS_CHANGED", "GIFT_PURCHASED"]
    assert {spec.kind for spec in gifts.events.values()} == {"standard", "custom"}
    assert gifts.events["GIFT_PURCHASED"].kind == "custom"
    assert all(spec.description for spec in gifts.events.values())
    assert gifts.statuses == ("available", "purchased")
    assert gifts.transitions == {
        "available": frozenset({"purchased"}),
        "purchased": frozenset({"available"}),
    }


def test_status_changed_needs_statuses() -> None:
    catalog = Catalog("c")
    plain = catalog.resource("gift-list", Gift)
    assert "STATUS_CHANGED" not in plain.events


def test_status_changed_payload_has_the_seeds_fields_first() -> None:
    spec = gift_catalog().resources["gift-list"].events["STATUS_CHANGED"]
    schema = spec.versions[1].payload.json_schema()
    assert list(schema["properties"]) == ["id", "old_status", "new_status", "purchased_by"]
    assert schema["required"] == ["id", "old_status", "new_status"]


def test_statuses_may_be_plain_strings() -> None:
    catalog = Catalog("c")
    orders = catalog.resource("order", statuses=["open", "paid", "shipped"])
    assert orders.statuses == ("open", "paid", "shipped")
    assert orders.status_enum is not None
    assert orders.status_enum.__name__ == "OrderStatus"


def test_standard_examples_are_derived_from_the_dto_example() -> None:
    gifts = gift_catalog().resources["gift-list"]
    assert gifts.events["ADDED"].versions[1].examples == (GIFT,)
    assert gifts.events["DELETED"].versions[1].examples == (None,)
    assert gifts.events["STATUS_CHANGED"].versions[1].examples == (
        {
            "id": "gift-456",
            "old_status": "available",
            "new_status": "purchased",
            "purchased_by": "user-789",
        },
    )


def test_a_resource_without_dto_has_only_custom_events() -> None:
    catalog = Catalog("c")
    room = catalog.resource("room", strict=True)
    room.event("USER_JOINED", Purchased)
    assert list(room.events) == ["USER_JOINED"]


def test_catalog_level_declarations_reach_the_resource() -> None:
    catalog = gift_catalog()
    spec = catalog.event("gift-list", "GIFT_WRAPPED", None, description="Wrapped.")
    assert catalog.spec("gift-list", "GIFT_WRAPPED") is spec
    assert isinstance(spec.versions[1].payload, NullPayload)
    with pytest.raises(CatalogError, match="no resource type 'room'"):
        catalog.event("room", "USER_JOINED", Purchased)


@pytest.mark.parametrize(
    "name", ["Gift-List", "1gift", "gift_list", "gift:list", "system", "", "a" * 65]
)
def test_resource_names_must_be_first_topic_segments(name: str) -> None:
    with pytest.raises(CatalogError, match="resource type"):
        Catalog("c").resource(name)


def test_a_resource_is_declared_once() -> None:
    catalog = Catalog("c")
    catalog.resource("room")
    with pytest.raises(CatalogError, match="declared twice"):
        catalog.resource("room")


@pytest.mark.parametrize("name", ["update", "UserJoined", "USER JOINED", "A" * 65])
def test_event_types_must_be_upper_snake_case(name: str) -> None:
    with pytest.raises(CatalogError, match="UPPER_SNAKE_CASE"):
        Catalog("c").resource("room").event(name, None)


def test_a_version_is_declared_once() -> None:
    room = Catalog("c").resource("room")
    room.event("USER_JOINED", None)
    with pytest.raises(CatalogError, match="declared twice"):
        room.event("USER_JOINED", None)
    with pytest.raises(CatalogError, match="at least 1"):
        room.event("USER_LEFT", None, version=0)


def test_examples_are_checked_when_declared() -> None:
    room = Catalog("c").resource("room")
    with pytest.raises(CatalogError, match=r"room.USER_JOINED.v1: invalid example: payload.id"):
        room.event("USER_JOINED", Purchased, example={"purchased_by": "x"})
    with pytest.raises(CatalogError, match="invalid example"):
        Catalog("c").resource("gift-list", Gift, example={**GIFT, "status": "lost"})


def test_examples_may_be_model_instances() -> None:
    room = Catalog("c").resource("room")
    spec = room.event("USER_JOINED", Purchased, example=Purchased(id="a", purchased_by="b"))
    assert spec.versions[1].examples == ({"id": "a", "purchased_by": "b"},)


def test_transitions_name_declared_statuses_only() -> None:
    with pytest.raises(CatalogError, match="unknown status 'lost'"):
        Catalog("c").resource(
            "gift-list", Gift, statuses=GiftStatus, transitions={"available": ["lost"]}
        )
    with pytest.raises(CatalogError, match="transitions need statuses"):
        Catalog("c").resource("gift-list", Gift, transitions={"available": ["purchased"]})


def test_status_enums_hold_strings() -> None:
    class Numbered(enum.Enum):
        ONE = 1

    with pytest.raises(CatalogError, match="must be strings"):
        Catalog("c").resource("gift-list", Gift, statuses=Numbered)
    with pytest.raises(CatalogError, match="listed twice"):
        Catalog("c").resource("gift-list", Gift, statuses=["a", "a"])


def test_status_extras_cannot_redefine_the_seeds_fields() -> None:
    class Clash(BaseModel):
        new_status: str

    with pytest.raises(CatalogError, match="may not redefine"):
        Catalog("c").resource("gift-list", Gift, statuses=GiftStatus, status_payload=Clash)


def test_reference_urls_use_known_placeholders() -> None:
    gifts = gift_catalog(reference_url="/api/lists/{topic_id}/gifts/{entity_id}")
    resource = gifts.resources["gift-list"]
    assert resource.reference("gift-456", "gift-list:123") == "/api/lists/123/gifts/gift-456"
    with pytest.raises(CatalogError, match="may use"):
        gift_catalog(reference_url="/api/{gift}")
    with pytest.raises(CatalogError, match="bad reference_url"):
        gift_catalog(reference_url="/api/{entity_id")
    assert gift_catalog(reference_url=None).resources["gift-list"].reference("x") is None


def test_payload_modes_shape_added_and_updated() -> None:
    def payloads(mode: str) -> tuple[str, str]:
        events = gift_catalog(mode=mode).resources["gift-list"].events
        return events["ADDED"].versions[1].payload.name, events["UPDATED"].versions[1].payload.name

    assert payloads("full") == ("Gift", "Gift")
    assert payloads("partial") == ("Gift", "GiftPatch")
    assert payloads("auto") == ("Gift", "GiftPatch")
    assert payloads("reference") == ("null", "null")
    assert gift_catalog().resources["gift-list"].payload_mode is PayloadMode.AUTO


def test_partial_modes_need_a_pydantic_dto() -> None:
    with pytest.raises(CatalogError, match="need a Pydantic model"):
        Catalog("c").resource("tag", dict[str, Any], payload_mode="partial")
    full = Catalog("c").resource("tag", dict[str, Any], payload_mode="full")
    assert full.id_field is None  # no `id` property to compare with entity_id


def test_the_catalog_lists_every_event() -> None:
    catalog = gift_catalog()
    assert [spec.key for spec in catalog.events()][:2] == ["gift-list.ADDED", "gift-list.UPDATED"]
    assert catalog.resource_for("tenant:acme:gift-list:1") is catalog.resources["gift-list"]
    assert catalog.resource_for("room:lobby") is None
    assert "gift-list" in repr(catalog)
