"""Declarative converters: the operations, their inverses, JSON, and chains of them."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict

from eventwire.catalog import (
    Add,
    Catalog,
    CatalogError,
    CatalogLoadError,
    Drop,
    Evolution,
    MapValues,
    Operation,
    Rename,
)
from eventwire.catalog.delivery import Accept, route_versions
from eventwire.catalog.evolution import MISSING, operation_from_json
from eventwire.catalog.export.serialize import dump_catalog, dumps, loads
from eventwire.catalog.lint import lint_catalog

from .helpers import GIFT, Gift

pytest.importorskip("jsonschema")

Payload = dict[str, Any]


# -- the operations ----------------------------------------------------------------


def test_rename_moves_a_field_in_its_object() -> None:
    payload = {"notes": "deluxe", "info": {"town": "Oslo", "zip": "0150"}}
    assert Evolution(Rename("notes", "comment"))(payload) == {
        "comment": "deluxe",
        "info": {"town": "Oslo", "zip": "0150"},
    }
    assert Evolution(Rename("info.town", "info.city"))(payload)["info"] == {
        "city": "Oslo",
        "zip": "0150",
    }
    with pytest.raises(CatalogError, match="changes a field's name in its object"):
        Rename("info.town", "city")


def test_rename_refuses_to_overwrite() -> None:
    with pytest.raises(ValueError, match="'b' is already there"):
        Evolution(Rename("a", "b"))({"a": 1, "b": 2})


def test_add_fills_only_what_is_absent_with_a_fresh_copy() -> None:
    add = Evolution(Add("tags", []), Add("info.country", "NO"))
    first, second = add({"info": {}}), add({"info": {}})
    assert first == {"tags": [], "info": {"country": "NO"}}
    first["tags"].append("x")
    assert second["tags"] == []  # the default is never shared between payloads
    assert add({"tags": ["a"]}) == {"tags": ["a"]}  # no object to add info.country to
    with pytest.raises(CatalogError, match="add 'when': the default must be a JSON value"):
        Add("when", object())


def test_drop_and_map_values() -> None:
    evolution = Evolution(Drop("price"), MapValues("status", {"available": "open"}))
    assert evolution({"price": 3, "status": "available"}) == {"status": "open"}
    assert evolution({"status": "purchased"}) == {"status": "purchased"}  # not listed
    assert evolution({"status": 4}) == {"status": 4}
    with pytest.raises(CatalogError, match="strings"):
        MapValues("status", {"a": 1})  # type: ignore[dict-item]
    with pytest.raises(CatalogError, match="non-empty"):
        MapValues("status", {})


def test_absent_fields_and_other_payloads_change_nothing() -> None:
    evolution = Evolution(Rename("a", "b"), Drop("c"), MapValues("d.e", {"x": "y"}))
    assert evolution({"z": 1}) == {"z": 1}
    assert evolution({"d": None}) == {"d": None}
    assert evolution(None) is None
    assert evolution([1, 2]) == [1, 2]


def test_the_argument_is_never_modified() -> None:
    payload: Payload = {"a": 1, "n": {"m": {"k": "x"}, "keep": [1]}, "drop": 2}
    before = copy.deepcopy(payload)
    converted = Evolution(
        Rename("a", "b"), Drop("drop"), MapValues("n.m.k", {"x": "y"}), Add("n.m.new", 0)
    )(payload)
    assert payload == before
    assert converted == {"b": 1, "n": {"m": {"k": "y", "new": 0}, "keep": [1]}}
    assert converted["n"]["keep"] is payload["n"]["keep"]  # untouched values are shared


def test_paths_are_checked_when_declared() -> None:
    for bad in ("", "a..b", ".a", 3):
        with pytest.raises(CatalogError, match="a field name or a dotted path"):
            Drop(bad)  # type: ignore[arg-type]


# -- inverses ------------------------------------------------------------------------


def test_inverses() -> None:
    assert Rename("a", "b").inverse() == Rename("b", "a")
    assert Add("a", 0).inverse() == Drop("a", 0)
    assert Drop("a").inverse() is None
    assert Drop("a", default=0).inverse() == Add("a", 0)
    assert MapValues("s", {"a": "x", "b": "y"}).inverse() == MapValues("s", {"x": "a", "y": "b"})
    assert MapValues("s", {"a": "x", "b": "x"}).inverse() is None
    evolution = Evolution(Rename("a", "b"), Add("c", 1))
    assert evolution.inverse() == Evolution(Drop("c", 1), Rename("b", "a"))
    assert evolution.exact
    assert Evolution(Drop("a", 0)).inverse() == Evolution(Add("a", 0))
    assert not Evolution(Drop("a", 0)).exact
    assert Evolution(Add("a", 0), Drop("b")).inverse() is None


def test_add_leaves_merge_patches_alone() -> None:
    """A patch that does not mention a field keeps the client's value of it."""
    evolution = Evolution(Add("tags", []), Rename("notes", "comment"))
    patch = {"notes": None, "name": "New"}
    assert evolution.for_patches()(patch) == {"comment": None, "name": "New"}
    assert evolution(patch) == {"comment": None, "name": "New", "tags": []}


# -- JSON -------------------------------------------------------------------------------


def test_operations_round_trip_through_json() -> None:
    evolution = Evolution(
        Rename("a", "b"),
        Add("c", {"x": [1, None]}),
        Add("d", None),
        Drop("e"),
        Drop("f", default=None),
        MapValues("g", {"a": "b"}),
    )
    dumped = orjson.loads(orjson.dumps(evolution.to_json()))
    assert dumped[4] == {"op": "drop", "field": "f", "default": None}
    assert dumped[3] == {"op": "drop", "field": "e"}
    assert Evolution.from_json(dumped) == evolution
    assert Evolution.from_json(dumped).ops[3] == Drop("e", MISSING)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"op": "move", "field": "a"}, "expected an operation"),
        ("rename", "expected an operation"),
        ({"op": "rename", "from": "a"}, r"expected the keys \['from', 'to'\], got \['from'\]"),
        ({"op": "add", "field": "a", "value": 1}, r"\['field', 'default\?'\]"),
        ({"op": "map", "field": "a", "values": []}, "non-empty table"),
        ({"op": "drop", "field": ""}, "a field name or a dotted path"),
    ],
)
def test_bad_operations_in_json_say_what_is_wrong(data: object, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        operation_from_json(data)
    with pytest.raises(CatalogError, match="operation 1: "):
        Evolution.from_json([{"op": "drop", "field": "x"}, data])


# -- in a catalog -------------------------------------------------------------------------


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MessageV1(Strict):
    text: str
    author: str
    kind: str = "chat"


class MessageV2(Strict):
    text: str
    user: str
    kind: str = "chat"
    tags: list[str] = []


class MessageV3(Strict):
    body: str
    user: str
    kind: str = "chat"
    tags: list[str] = []


def messages() -> Catalog:
    """``room.POSTED`` v1 -> v2 -> v3, declared with operations only."""
    catalog = Catalog("chat")
    room = catalog.resource("room", strict=True)
    room.event("POSTED", MessageV1, description="A message.")
    room.event("POSTED", MessageV2, version=2)
    room.event("POSTED", MessageV3, version=3)
    room.evolve("POSTED", 1, 2, Rename("author", "user"), Add("tags", []))
    room.evolve("POSTED", 2, 3, Rename("text", "body"), MapValues("kind", {"chat": "message"}))
    return catalog


V1 = {"text": "hi", "author": "ann", "kind": "chat"}
V3 = {"body": "hi", "user": "ann", "kind": "message", "tags": []}


def test_a_declared_chain_converts_both_ways() -> None:
    spec = messages().resources["room"].events["POSTED"]
    assert spec.convert(V1, 1, 3) == V3
    assert spec.convert(V3, 3, 1) == V1
    assert spec.chain.reachable(2) == {1, 2, 3}


def test_evolve_registers_the_inverse_only_when_there_is_one() -> None:
    catalog = Catalog("c")
    room = catalog.resource("room")
    room.event("POSTED", MessageV2, description="A message.")
    room.event("POSTED", MessageV1, version=2)
    room.evolve("POSTED", 1, 2, Rename("user", "author"), Drop("tags"))
    spec = room.events["POSTED"]
    assert spec.chain.reachable(1) == {1, 2}
    assert spec.chain.reachable(2) == {2}
    assert [f.rule for f in lint_catalog(catalog) if f.path == "room.POSTED"] == ["EW506"]
    room.add_converter("POSTED", 2, 1, Evolution(Rename("author", "user"), Add("tags", [])))
    assert spec.convert({"text": "t", "author": "a", "kind": "chat"}, 2, 1) == {
        "text": "t",
        "user": "a",
        "kind": "chat",
        "tags": [],
    }


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        ((Rename("autor", "user"), Add("tags", [])), "rename: no field 'autor'"),
        ((Rename("author", "text"),), "rename: 'text' is already a field"),
        ((Rename("author", "user"), Add("text", "")), "add: 'text' is already a field"),
        ((Rename("author", "user"), Drop("tag")), "drop: no field 'tag'"),
        ((MapValues("knd", {"a": "b"}),), "map: no field 'knd'"),
        ((Add("tags", []),), r"the target requires \['user'\]"),
        (
            (Rename("author", "user"), Add("tags", []), Add("extra", 1)),
            r"the target has no field \['extra'\]",
        ),
    ],
)
def test_declarations_are_checked_against_both_versions(
    ops: tuple[Operation, ...], message: str
) -> None:
    room = Catalog("c").resource("room")
    room.event("POSTED", MessageV1, description="A message.")
    room.event("POSTED", MessageV2, version=2)
    with pytest.raises(
        CatalogError, match=f"room.POSTED: converter from version 1 to 2: {message}"
    ):
        room.evolve("POSTED", 1, 2, *ops)


class GiftV2(Strict):
    id: str
    name: str
    price: float | None = None
    comment: str | None = None
    status: str
    created_at: str
    updated_at: str
    wrapped: bool = False


def test_updated_converts_merge_patches_on_partial_resources() -> None:
    catalog = Catalog("c")
    gifts = catalog.resource("gift-list", Gift, payload_mode="auto")
    gifts.dto_version(2, GiftV2)
    gifts.evolve(["ADDED", "UPDATED"], 1, 2, Rename("notes", "comment"), Add("wrapped", False))
    added, updated = gifts.events["ADDED"], gifts.events["UPDATED"]
    assert added.convert({**GIFT, "notes": "n"}, 1, 2) == {**GIFT, "comment": "n", "wrapped": False}
    assert updated.convert({"notes": None}, 1, 2) == {"comment": None}  # no `wrapped` added
    assert updated.convert({"comment": "c", "wrapped": True}, 2, 1) == {"notes": "c"}

    full = Catalog("d").resource("gift-list", Gift, payload_mode="full")
    full.dto_version(2, GiftV2)
    full.evolve("UPDATED", 1, 2, Rename("notes", "comment"), Add("wrapped", False))
    assert full.events["UPDATED"].convert(GIFT, 1, 2) == {**GIFT, "wrapped": False}  # a full DTO


def test_the_json_export_carries_declared_converters() -> None:
    catalog = messages()
    dumped = dump_catalog(catalog)["resources"]["room"]["events"]["POSTED"]["converters"]
    assert dumped[0] == {
        "from": 1,
        "to": 2,
        "ops": [
            {"op": "rename", "from": "author", "to": "user"},
            {"op": "add", "field": "tags", "default": []},
        ],
    }
    loaded = loads(dumps(catalog))
    assert dump_catalog(loaded) == dump_catalog(catalog)
    spec = loaded.resources["room"].events["POSTED"]
    assert spec.convert(V1, 1, 3) == V3
    assert spec.convert(V3, 3, 1) == V1


def test_delivery_from_a_json_catalog_converts_once_per_version() -> None:
    loaded = loads(dumps(messages()))
    body = orjson.dumps(
        {
            "topic": "room:1",
            "event": "POSTED",
            "version": 1,
            "data": {"entity_id": "m", "payload": V1, "timestamp": "2023-01-01T00:00:00.000Z"},
        }
    )
    old, new = Accept({"room.POSTED": [1]}), Accept({"*": [3]})
    routed = route_versions(loaded, "room:1", body, [old, new, None])
    assert routed[old] == routed[None] == body
    converted = routed[new]
    assert isinstance(converted, bytes)
    assert orjson.loads(converted)["data"]["payload"] == V3
    assert orjson.loads(converted)["version"] == 3


def test_a_json_catalog_with_bad_operations_does_not_load() -> None:
    dumped = dump_catalog(messages())
    converters = dumped["resources"]["room"]["events"]["POSTED"]["converters"]
    converters[0]["ops"][0]["from"] = "autor"
    with pytest.raises(CatalogLoadError, match="rename: no field 'autor'"):
        loads(orjson.dumps(dumped))
    converters[0] = {"from": 1, "to": 2, "ops": [], "identity": True}
    with pytest.raises(
        CatalogLoadError, match="expected one of 'identity': true, 'ops' or 'python'"
    ):
        loads(orjson.dumps(dumped))


# -- properties ---------------------------------------------------------------------------

NAMES = [f"f{n}" for n in range(6)]
VALUES = ["a", "b", "c"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=2), inner, max_size=2)
    ),
    max_leaves=4,
)


@st.composite
def evolutions(
    draw: st.DrawFn, fields: set[str], *, exact: bool, fresh: itertools.count[int]
) -> Evolution:
    """Operations valid on payloads with top-level ``fields`` (and ``inner``, an object).

    New names (``g<n>``) and mapped values (``mapped-<n>``) are fresh, never
    in a payload. With ``exact``, only operations whose inverse gives back
    their input: no ``drop``.
    """
    kinds = ["rename", "add", "map"] + ([] if exact else ["drop"])
    ops: list[Operation] = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(kinds))
        prefix = draw(st.sampled_from(["", "inner."]))
        present = sorted(fields) if prefix == "" else NAMES[:2]
        absent = [f"g{next(fresh)}"]
        if kind == "rename" and present:
            source = draw(st.sampled_from(present))
            ops.append(Rename(prefix + source, prefix + absent[0]))
            if prefix == "":
                fields.discard(source)
                fields.add(absent[0])
        elif kind == "add":
            ops.append(Add(prefix + absent[0], draw(json_values)))
            if prefix == "":
                fields.add(absent[0])
        elif kind == "map" and present:
            chosen = draw(st.sets(st.sampled_from(VALUES), min_size=1))
            table = {value: f"mapped-{next(fresh)}" for value in sorted(chosen)}
            ops.append(MapValues(prefix + draw(st.sampled_from(present)), table))
        elif kind == "drop" and present and prefix == "":
            gone = draw(st.sampled_from(present))
            ops.append(Drop(gone, draw(st.none() | st.just(MISSING))))
            fields.discard(gone)
    return Evolution(*ops)


@st.composite
def payloads(draw: st.DrawFn) -> Payload:
    flat = st.dictionaries(
        st.sampled_from(NAMES), st.sampled_from(VALUES) | json_values, max_size=6
    )
    payload: Payload = draw(flat)
    if draw(st.booleans()):
        payload["inner"] = draw(
            st.dictionaries(st.sampled_from(NAMES[:2]), st.sampled_from(VALUES))
        )
    return payload


def _declare(evolutions_: list[Evolution]) -> Catalog:
    """``room.THING`` with a version per step, payloads any object, the steps as converters."""
    catalog = Catalog("c")
    room = catalog.resource("room")
    for version in range(1, len(evolutions_) + 2):
        room.event("THING", dict[str, Any], version=version, description="Anything.")
    for version, evolution in enumerate(evolutions_, 1):
        room.add_converter("THING", version, version + 1, evolution)
        undone = evolution.inverse()
        if undone is not None:
            room.add_converter("THING", version + 1, version, undone)
    return catalog


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_declarative_conversions_compose(data: st.DataObject) -> None:
    """Along a chain 1 -> 2 -> 3 -> 4, step by step = all at once = one evolution of every op."""
    payload = data.draw(payloads())
    fields, fresh = set(payload) - {"inner"}, itertools.count()
    steps = [data.draw(evolutions(fields, exact=False, fresh=fresh)) for _ in range(3)]
    spec = _declare(steps).resources["room"].events["THING"]
    stepwise = payload
    for version in (1, 2, 3):
        stepwise = spec.convert(stepwise, version, version + 1)
    composed = steps[0].then(steps[1]).then(steps[2])
    assert spec.convert(payload, 1, 4) == stepwise == composed(payload)
    assert spec.chain.convert_many(payload, 1, {2, 3, 4})[4] == stepwise
    loaded = loads(dumps(_declare(steps))).resources["room"].events["THING"]  # JSON: the same
    assert loaded.convert(payload, 1, 4) == stepwise


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_up_then_down_gives_back_the_original_when_every_op_is_exact(data: st.DataObject) -> None:
    payload = data.draw(payloads())
    fields, fresh = set(payload) - {"inner"}, itertools.count()
    steps = [data.draw(evolutions(fields, exact=True, fresh=fresh)) for _ in range(3)]
    assert all(step.exact for step in steps)
    spec = _declare(steps).resources["room"].events["THING"]
    top = spec.convert(payload, 1, 4)
    assert spec.convert(top, 4, 1) == payload
    composed = steps[0].then(steps[1]).then(steps[2])
    inverse = composed.inverse()
    assert inverse is not None
    assert inverse(composed(payload)) == payload
    undone = [step.inverse() for step in reversed(steps)]
    assert None not in undone
    assert inverse == Evolution(*(op for step in undone if step is not None for op in step.ops))
