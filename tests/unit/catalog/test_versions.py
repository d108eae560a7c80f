"""Versions: converter chains, who gets which version, and conversion once per version."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from eventwire.catalog import Catalog, CatalogError, ConversionError
from eventwire.catalog.delivery import Accept, UnsupportedVersion, parse_accept, route_versions
from eventwire.catalog.versions import VersionChain, choose_version, plan_versions
from eventwire.errors import ValidationFailed


class V1(BaseModel):
    n: int


class V2(BaseModel):
    n: int
    double: int


class V3(BaseModel):
    total: int


calls: Counter[str] = Counter()


def _counted(name: str, function: Any) -> Any:
    def converter(payload: Any) -> Any:
        calls[name] += 1
        return function(payload)

    return converter


def _down_from_3(payload: dict[str, int]) -> dict[str, int]:
    third = payload["total"] // 3
    return {"n": third, "double": 2 * third}


def three_versions() -> Catalog:
    """``room.SCORED``: v1 {n}, v2 {n, double}, v3 {total}; converters both ways."""
    catalog = Catalog("c")
    room = catalog.resource("room")
    room.event("SCORED", V1, description="A score.")
    room.event("SCORED", V2, version=2)
    room.event("SCORED", V3, version=3)
    room.add_converter("SCORED", 1, 2, _counted("1>2", lambda p: {**p, "double": 2 * p["n"]}))
    room.add_converter("SCORED", 2, 1, _counted("2>1", lambda p: {"n": p["n"]}))
    room.add_converter("SCORED", 2, 3, _counted("2>3", lambda p: {"total": p["n"] + p["double"]}))
    room.add_converter("SCORED", 3, 2, _counted("3>2", _down_from_3))
    return catalog


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    calls.clear()


def chain() -> VersionChain:
    spec = three_versions().resources["room"].events["SCORED"]
    return spec.chain


@settings(max_examples=60, deadline=None)
@given(st.integers(-1000, 1000))
def test_conversions_compose(n: int) -> None:
    versions = chain()
    direct = versions.convert({"n": n}, 1, 3)
    stepwise = versions.convert(versions.convert({"n": n}, 1, 2), 2, 3)
    assert direct == stepwise == {"total": 3 * n}
    assert versions.convert(direct, 3, 1) == versions.convert(versions.convert(direct, 3, 2), 2, 1)


def test_convert_many_runs_each_converter_at_most_once() -> None:
    versions = chain()
    produced = versions.convert_many({"n": 3, "double": 6}, 2, {1, 3})
    assert produced == {1: {"n": 3}, 3: {"total": 9}}
    assert calls == Counter({"2>1": 1, "2>3": 1})
    calls.clear()
    assert versions.convert_many({"n": 1}, 1, {2, 3}) == {2: {"n": 1, "double": 2}, 3: {"total": 3}}
    assert calls == Counter({"1>2": 1, "2>3": 1})


def test_converters_link_adjacent_declared_versions_only() -> None:
    room = three_versions().resources["room"]
    with pytest.raises(CatalogError, match="not adjacent"):
        room.add_converter("SCORED", 1, 3, lambda p: p)
    with pytest.raises(CatalogError, match="version 4 is not declared"):
        room.add_converter("SCORED", 3, 4, lambda p: p)
    with pytest.raises(CatalogError, match="already exists"):
        room.add_converter("SCORED", 1, 2, lambda p: p)
    with pytest.raises(CatalogError, match="no event type"):
        room.add_converter("SCORED_TWICE", 1, 2, lambda p: p)


def test_the_decorator_registers_for_several_event_types() -> None:
    catalog = Catalog("c")
    room = catalog.resource("room")
    for name in ("USER_JOINED", "USER_LEFT"):
        room.event(name, V1)
        room.event(name, V2, version=2)

    @catalog.converter("room", ["USER_JOINED", "USER_LEFT"], 1, 2)
    def up(payload: dict[str, Any]) -> dict[str, Any]:
        return {**payload, "double": 0}

    assert room.events["USER_LEFT"].convert({"n": 1}, 1, 2) == {"n": 1, "double": 0}
    assert room.events["USER_JOINED"].chain.up[1] is up


def test_a_missing_link_is_a_conversion_error() -> None:
    room = Catalog("c").resource("room")
    room.event("SCORED", V1)
    room.event("SCORED", V2, version=2)
    with pytest.raises(ConversionError, match="no converter from version 1"):
        room.events["SCORED"].convert({"n": 1}, 1, 2)
    assert room.events["SCORED"].chain.reachable(1) == {1}


def test_a_failing_converter_is_a_conversion_error() -> None:
    versions = chain()
    with pytest.raises(ConversionError, match="converter from version 1 to 2 failed") as info:
        versions.convert({"missing": 1}, 1, 2)
    assert (info.value.from_version, info.value.to_version) == (1, 2)


def test_dto_versions_define_the_standard_events_again() -> None:
    class GiftV1(BaseModel):
        id: str
        price: float

    class GiftV2(BaseModel):
        id: str
        price_cents: int

    catalog = Catalog("c")
    gifts = catalog.resource("gift-list", GiftV1, statuses=["open", "done"], payload_mode="full")
    gifts.dto_version(2, GiftV2)

    @gifts.converter(["ADDED", "UPDATED"], 1, 2)
    def cents(payload: dict[str, Any]) -> dict[str, Any]:
        return {"id": payload["id"], "price_cents": round(payload["price"] * 100)}

    assert set(gifts.dtos) == {1, 2}
    assert gifts.events["ADDED"].convert({"id": "g", "price": 1.5}, 1, 2) == {
        "id": "g",
        "price_cents": 150,
    }
    # DELETED and an unchanged STATUS_CHANGED convert by themselves, both ways
    assert gifts.events["DELETED"].chain.reachable(2) == {1, 2}
    assert gifts.events["STATUS_CHANGED"].chain.reachable(1) == {1, 2}
    assert gifts.events["ADDED"].chain.reachable(2) == {2}


def test_choose_the_highest_accepted_reachable_version() -> None:
    reachable = frozenset({1, 2, 3})
    assert choose_version(2, None, reachable) == 2
    assert choose_version(2, frozenset({1, 3}), reachable) == 3
    assert choose_version(2, frozenset({1}), reachable) == 1
    assert choose_version(2, frozenset({4, 5}), reachable) is None


def test_plan_produces_each_version_once_whatever_the_subscribers() -> None:
    sets = [None, frozenset({1}), frozenset({1, 2}), frozenset({3}), frozenset({9})] * 100
    plan = plan_versions(chain(), 2, sets)
    assert plan.produce == {1, 3}
    assert plan.targets[None] == 2
    assert plan.targets[frozenset({1, 2})] == 2
    assert plan.targets[frozenset({9})] is None


# -- delivery ------------------------------------------------------------------


def body(version: int | None, payload: Any) -> bytes:
    wire: dict[str, Any] = {
        "topic": "room:lobby",
        "event": "SCORED",
        "data": {"entity_id": "u", "payload": payload, "timestamp": "2023-01-01T00:00:00.000Z"},
    }
    if version is not None:
        wire["version"] = version
    return orjson.dumps(wire)


def test_route_converts_once_per_version_for_many_subscribers() -> None:
    catalog = three_versions()
    published = body(2, {"n": 3, "double": 6})
    groups: list[Accept | None] = [
        None,
        Accept({"room.SCORED": [1]}),
        Accept({"room.*": [3, 1]}),
        Accept({"*": [2]}),
    ]
    subscribers = groups * 250  # a thousand subscribers, four distinct groups
    routed = route_versions(catalog, "room:lobby", published, subscribers)
    assert calls == Counter({"2>1": 1, "2>3": 1})
    assert routed[None] is published
    assert routed[Accept({"*": [2]})] is published
    as_v1 = orjson.loads(routed[Accept({"room.SCORED": [1]})])  # type: ignore[arg-type]
    assert as_v1["version"] == 1
    assert as_v1["data"]["payload"] == {"n": 3}
    as_v3 = orjson.loads(routed[Accept({"room.*": [1, 3]})])  # type: ignore[arg-type]
    assert (as_v3["version"], as_v3["data"]["payload"]) == (3, {"total": 9})
    assert as_v3["data"]["timestamp"] == "2023-01-01T00:00:00.000Z"


def test_route_reports_unsupported_versions() -> None:
    catalog = three_versions()
    catalog.resources["room"].events["SCORED"].chain.down.clear()
    wants_v1 = Accept({"room.SCORED": [1]})
    routed = route_versions(catalog, "room:lobby", body(3, {"total": 9}), [wants_v1])
    refusal = routed[wants_v1]
    assert isinstance(refusal, UnsupportedVersion)
    assert refusal.key == ("room:lobby", "SCORED")
    payload = refusal.to_payload()
    assert payload["code"] == "UNSUPPORTED_VERSION"
    assert payload["details"] == {
        "topic": "room:lobby",
        "event": "SCORED",
        "version": 3,
        "accepted": [1],
        "available": [3],
    }


def test_route_treats_a_converter_producing_an_invalid_payload_as_unsupported() -> None:
    catalog = three_versions()
    catalog.resources["room"].events["SCORED"].chain.up[2] = lambda p: {"wrong": True}
    wants = Accept({"*": [3]})
    routed = route_versions(catalog, "room:lobby", body(2, {"n": 1, "double": 2}), [wants])
    refusal = routed[wants]
    assert isinstance(refusal, UnsupportedVersion)
    assert refusal.reason == "converting to version 3 failed"


def test_route_leaves_events_alone_when_no_one_asks() -> None:
    catalog = three_versions()
    raw = body(None, {"n": 1})
    assert route_versions(catalog, "room:lobby", raw, [None, None]) == {None: raw}
    other = Accept({"gift-list.*": [2]})
    assert route_versions(catalog, "room:lobby", raw, [other]) == {other: raw}
    undeclared = orjson.dumps({"topic": "room:1", "event": "WAVED", "data": {}})
    assert route_versions(catalog, "room:1", undeclared, [Accept({"*": [5]})]) == {
        Accept({"*": [5]}): undeclared
    }
    assert calls == Counter()


def test_an_event_without_version_is_version_1() -> None:
    routed = route_versions(
        three_versions(), "room:lobby", body(None, {"n": 2}), [Accept({"*": [3]})]
    )
    converted = orjson.loads(routed[Accept({"*": [3]})])  # type: ignore[arg-type]
    assert converted["data"]["payload"] == {"total": 6}


def test_accept_prefers_the_most_specific_key() -> None:
    accept = Accept({"*": [1], "room.*": [2], "room.SCORED": [3]})
    assert accept.for_event("room", "SCORED") == frozenset({3})
    assert accept.for_event("room", "WAVED") == frozenset({2})
    assert accept.for_event("gift-list", "ADDED") == frozenset({1})
    assert Accept({"room.*": [1]}).for_event("gift-list", "ADDED") is None
    assert hash(Accept({"*": [1, 2]})) == hash(Accept({"*": [2, 1]}))
    assert parse_accept(accept.to_wire()) == accept


def test_parse_accept_names_every_bad_entry() -> None:
    assert parse_accept(None) is None
    with pytest.raises(ValidationFailed) as info:
        parse_accept({"room": [1], "room.update": [1], "room.*": [], "*": [0, True], "ok.*": [1]})
    assert [field for field, _ in info.value.errors] == [
        "data.payload.versions.room",
        "data.payload.versions.room.update",
        "data.payload.versions.room.*",
        "data.payload.versions.*",
    ]
    with pytest.raises(ValidationFailed):
        parse_accept([1, 2])
