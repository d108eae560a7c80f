"""The catalog as JSON and back, and loading catalogs by import path or file."""

from __future__ import annotations

import itertools
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventwire import demo
from eventwire.catalog import Catalog, CatalogLoadError, load_catalog
from eventwire.catalog.export.serialize import dump_catalog, dumps, load_catalog_data, loads
from eventwire.catalog.schema import JsonSchemaPayload

from .helpers import GIFT, Gift, errors_of, event, gift_catalog

pytest.importorskip("jsonschema")

EVENTS: list[dict[str, Any]] = [
    event("ADDED", GIFT),
    event("ADDED", {**GIFT, "price": "29.99", "status": "lost", "color": "red", "id": "x"}),
    event("ADDED", {k: v for k, v in GIFT.items() if k != "name"}),
    event("ADDED", {**GIFT, "created_at": "2023-01-01T00:00:00"}),  # no timezone
    event("UPDATED", {"name": None, "price": None}),
    event("UPDATED", {"name": "", "notes": 4}),
    event("DELETED", None),
    event("DELETED", {}),
    event("STATUS_CHANGED", {"id": "gift-456", "old_status": "available", "new_status": "gone"}),
    event(
        "STATUS_CHANGED", {"id": "gift-456", "old_status": "purchased", "new_status": "purchased"}
    ),
    event("STATUS_CHANGED", {"id": "gift-1", "old_status": "available"}),
    event("GIFT_PURCHASED", {"id": "gift-456", "purchased_by": "user-789"}),
    event("GIFT_PURCHASED", {"id": 4}),
    event("GIFT_PURCHASED", None),
    event("GIFT_WRAPPED", {}),
    event("DELETED", None, version=2),
    event("ADDED", {}, topic="order:1"),
]

SAME_WORDS = ("required", "unknown field", "must")


def comparable(errors: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Fields, and the words where Pydantic and JSON Schema are made to agree."""
    return {(field, problem if problem.startswith(SAME_WORDS) else "") for field, problem in errors}


@pytest.mark.parametrize("raw", EVENTS)
def test_a_loaded_catalog_validates_the_same_way(raw: dict[str, Any]) -> None:
    catalog = gift_catalog()
    loaded = loads(dumps(catalog))
    assert comparable(errors_of(loaded, raw)) == comparable(errors_of(catalog, raw))


def test_the_demo_round_trips() -> None:
    loaded = loads(dumps(demo.catalog))
    for raw in itertools.islice(demo.demo_events(), 50):
        assert errors_of(loaded, raw) == []
    assert dump_catalog(loaded) == dump_catalog(demo.catalog)
    converters = dump_catalog(demo.catalog)["resources"]["room"]["events"]["MESSAGE_POSTED"]
    assert converters["converters"] == [
        {"from": 1, "to": 2, "python": "eventwire.demo:add_mentions"},
        {"from": 2, "to": 1, "ops": [{"op": "drop", "field": "mentions"}]},
    ]
    spec = loaded.resources["room"].events["MESSAGE_POSTED"]
    posted = {"message_id": "m", "user_id": "u", "username": "Ann", "text": "hi @bob"}
    assert spec.convert(posted, 1, 2) == {**posted, "mentions": ["bob"]}
    assert spec.convert({**posted, "mentions": ["x"]}, 2, 1) == posted


def test_loaded_payloads_are_json_schema() -> None:
    loaded = loads(dumps(gift_catalog()))
    payload = loaded.resources["gift-list"].events["ADDED"].versions[1].payload
    assert isinstance(payload, JsonSchemaPayload)
    assert payload.name == "Gift"
    assert loaded.resources["gift-list"].reference("g-1") == "/api/gifts/g-1"
    assert (
        loaded.resources["gift-list"].transitions
        == gift_catalog().resources["gift-list"].transitions
    )


def test_identity_converters_come_back() -> None:
    catalog = gift_catalog()
    catalog.resources["gift-list"].dto_version(2, Gift)
    loaded = loads(dumps(catalog))
    assert loaded.resources["gift-list"].events["DELETED"].chain.reachable(1) == {1, 2}


aware = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1)).map(
    lambda moment: moment.replace(tzinfo=UTC).isoformat()
)
gifts = st.fixed_dictionaries(
    {
        "id": st.just("gift-456"),
        "name": st.text(min_size=1, max_size=12),
        "status": st.sampled_from(["available", "purchased"]),
        "created_at": aware,
        "updated_at": aware,
    },
    optional={
        "price": st.none() | st.floats(min_value=0, allow_nan=False, allow_infinity=False),
        "notes": st.none() | st.text(max_size=12),
    },
)
PYTHON, LOADED = gift_catalog(), loads(dumps(gift_catalog()))


@settings(max_examples=60, deadline=None)
@given(gifts)
def test_random_valid_dtos_round_trip(dto: dict[str, Any]) -> None:
    for catalog in (PYTHON, LOADED):
        assert errors_of(catalog, event("ADDED", dto)) == []
        assert errors_of(catalog, event("UPDATED", dto)) == []
    parsed = Gift.model_validate_json(orjson.dumps(dto))
    again = parsed.model_dump(mode="json")
    assert Gift.model_validate_json(orjson.dumps(again)) == parsed
    assert errors_of(LOADED, event("ADDED", again)) == []


# -- the file format ---------------------------------------------------------------


def test_bad_files_name_what_is_wrong() -> None:
    with pytest.raises(CatalogLoadError, match="not valid JSON"):
        loads(b"{")
    with pytest.raises(CatalogLoadError, match="eventwire_catalog: required"):
        load_catalog_data({"name": "x"})
    with pytest.raises(CatalogLoadError, match=r"resources.room.strict"):
        load_catalog_data(
            {"eventwire_catalog": 1, "name": "x", "resources": {"room": {"strict": 3}}}
        )
    bad_schema = {
        "eventwire_catalog": 1,
        "name": "x",
        "resources": {"room": {"events": {"WAVED": {"versions": {"1": {"payload": {"type": 7}}}}}}},
    }
    with pytest.raises(CatalogLoadError, match="invalid JSON Schema"):
        load_catalog_data(bad_schema)
    bad_example = dump_catalog(gift_catalog())
    bad_example["resources"]["gift-list"]["events"]["ADDED"]["versions"]["1"]["examples"] = [{}]
    with pytest.raises(CatalogLoadError, match="invalid example"):
        load_catalog_data(bad_example)
    with pytest.raises(CatalogLoadError, match="not a topic's first segment"):
        load_catalog_data({"eventwire_catalog": 1, "name": "x", "resources": {"Room": {}}})


# -- loading -------------------------------------------------------------------------


def test_load_by_import_path() -> None:
    assert load_catalog("eventwire.demo:catalog") is demo.catalog


def test_load_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_bytes(dumps(demo.catalog))
    loaded = load_catalog(str(path))
    assert list(loaded.resources) == ["gift-list", "room", "import"]
    assert load_catalog(path).name == demo.catalog.name


def test_load_from_a_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "myapp_events.py").write_text(
        "from eventwire.catalog import Catalog\n"
        "def make():\n    return Catalog('made')\n"
        "class namespace:\n    catalog = Catalog('nested')\n"
        "not_a_catalog = 3\n"
    )
    (tmp_path / "broken_events.py").write_text("import does_not_exist_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert load_catalog("myapp_events:make").name == "made"
        assert load_catalog("myapp_events:namespace.catalog").name == "nested"
        with pytest.raises(
            CatalogLoadError, match=r"expected an eventwire\.catalog\.Catalog, got int"
        ):
            load_catalog("myapp_events:not_a_catalog")
        with pytest.raises(CatalogLoadError, match="has no attribute 'missing'"):
            load_catalog("myapp_events:missing")
        with pytest.raises(CatalogLoadError, match="importing broken_events failed"):
            load_catalog("broken_events:catalog")
    finally:
        for name in ("myapp_events", "broken_events"):
            sys.modules.pop(name, None)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module_here:catalog", "no module named 'no_such_module_here'"),
        ("eventwire.demo", "expected 'module:attribute'"),
        ("eventwire.demo:", "expected 'module:attribute'"),
        ("missing.json", "cannot read catalog file 'missing.json'"),
    ],
)
def test_load_errors_say_what_was_expected(spec: str, message: str) -> None:
    with pytest.raises(CatalogLoadError, match=message):
        load_catalog(spec)


def test_the_catalog_type_is_what_loads() -> None:
    assert isinstance(load_catalog("eventwire.demo:catalog"), Catalog)
