"""Exports: AsyncAPI 3.0, JSON Schema 2020-12, TypeScript, Zod and the HTML page."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pytest

from eventwire import demo
from eventwire.catalog import Catalog
from eventwire.catalog.export import (
    FORMATS,
    asyncapi_document,
    catalog_schema,
    event_schema,
    event_schemas,
    export_catalog,
    html_page,
    typescript_module,
    zod_module,
)
from eventwire.catalog.export.common import SchemaPool, example_event, messages, pascal
from eventwire.catalog.export.typescript import event_type_name, render_type
from eventwire.catalog.export.zod import render_zod
from eventwire.envelope import format_timestamp, utc_now

from .helpers import gift_catalog

MESSAGE_IDS = [spec.message_id(v) for _, spec, v in messages(demo.catalog)]


def delivered_demo_events(count: int = 50) -> list[dict[str, Any]]:
    """The demo's events as subscribers get them: stamped and numbered."""
    events = []
    for seq, raw in enumerate(itertools.islice(demo.demo_events(), count), 1):
        raw["data"]["timestamp"] = format_timestamp(utc_now())
        events.append({**raw, "seq": seq})
    return events


# -- AsyncAPI --------------------------------------------------------------------------


def test_asyncapi_document_has_channels_operations_and_messages() -> None:
    doc = asyncapi_document(demo.catalog, server_url="ws://127.0.0.1:8000/ws")
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"] == {
        "title": "eventwire demo",
        "version": "1.0.0",
        "description": demo.catalog.description,
    }
    assert doc["servers"] == {
        "gateway": {"host": "127.0.0.1:8000", "protocol": "ws", "pathname": "/ws"}
    }
    assert list(doc["channels"]) == ["gift-list", "room", "import"]
    gifts = doc["channels"]["gift-list"]
    assert gifts["address"] == "gift-list:{id}"
    assert gifts["x-eventwire"]["reference_url"] == "/api/gifts/{entity_id}"
    assert gifts["x-eventwire"]["statuses"] == ["available", "purchased"]
    assert sorted(doc["components"]["messages"]) == sorted(MESSAGE_IDS)
    operation = doc["operations"]["send-room"]
    assert operation["action"] == "send"
    assert operation["channel"] == {"$ref": "#/channels/room"}
    assert {"$ref": "#/channels/room/messages/room.MESSAGE_POSTED.v2"} in operation["messages"]


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_asyncapi_reference_resolves() -> None:
    doc = asyncapi_document(demo.catalog)
    refs = _refs(doc)
    assert refs
    for ref in refs:
        _resolve(doc, ref)
    keys = re.compile(r"^[A-Za-z0-9_.\-]+$")
    assert all(keys.match(k) for k in doc["components"]["messages"])
    assert all(keys.match(k) for k in doc["components"]["schemas"])


def test_asyncapi_messages_carry_examples() -> None:
    doc = asyncapi_document(demo.catalog)
    message = doc["components"]["messages"]["gift-list.STATUS_CHANGED.v1"]
    [example] = message["examples"]
    assert example["payload"]["data"]["payload"]["purchased_by"] == "user-789"
    assert message["contentType"] == "application/json"


# -- JSON Schema -----------------------------------------------------------------------


def test_every_event_version_has_a_2020_12_document() -> None:
    schemas = event_schemas(demo.catalog)
    assert list(schemas) == MESSAGE_IDS
    added = schemas["gift-list.ADDED.v1"]
    assert added["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert added["properties"]["event"] == {"const": "ADDED"}
    assert added["properties"]["data"]["properties"]["payload"] == {"$ref": "#/$defs/Gift"}
    assert "GiftStatus" in added["$defs"]
    assert schemas["room.MESSAGE_POSTED.v2"]["required"] == ["topic", "event", "data", "version"]
    with pytest.raises(KeyError):
        event_schema(demo.catalog, "room", "NOPE", 1)


def test_json_schemas_validate_the_examples_and_the_demo_events() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    documents = {
        message_id: jsonschema.Draft202012Validator(schema, format_checker=checker)
        for message_id, schema in event_schemas(demo.catalog).items()
    }
    for message_id, validator in documents.items():
        jsonschema.Draft202012Validator.check_schema(validator.schema)
        for example in validator.schema.get("examples", []):
            validator.validate(example)
        assert validator.schema.get("examples"), message_id
    bundle = jsonschema.Draft202012Validator(catalog_schema(demo.catalog), format_checker=checker)
    for delivered in delivered_demo_events():
        version = delivered.get("version", 1)
        topic = delivered["topic"].split(":")[0]
        documents[f"{topic}.{delivered['event']}.v{version}"].validate(delivered)
        bundle.validate(delivered)


def test_json_schemas_refuse_what_the_catalog_refuses() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = event_schema(demo.catalog, "gift-list", "STATUS_CHANGED", 1)
    validator = jsonschema.Draft202012Validator(schema)
    good = example_event(
        demo.catalog.resources["gift-list"],
        demo.catalog.resources["gift-list"].events["STATUS_CHANGED"],
        1,
    )
    assert good is not None
    assert validator.is_valid(good)
    bad = json.loads(json.dumps(good))
    bad["data"]["payload"]["new_status"] = "stolen"
    assert not validator.is_valid(bad)
    assert not validator.is_valid({**good, "topic": "room:lobby"})
    assert not validator.is_valid({**good, "event": "DELETED"})


# -- TypeScript and Zod ----------------------------------------------------------------


def test_typescript_has_every_event_as_a_union_member() -> None:
    text = typescript_module(demo.catalog)
    for resource, spec, version in messages(demo.catalog):
        name = event_type_name(spec, version)
        assert f"export interface {name} {{" in text
        assert re.search(rf"export type {pascal(resource.name)}Event =[^;]*\| {name}\b", text)
        assert f'event: "{spec.name}";' in text
    assert "export type CatalogEvent = GiftListEvent | RoomEvent | ImportEvent;" in text
    assert 'export type GiftStatus = "available" | "purchased";' in text
    assert "version: 2;" in text
    assert '"gift-list": "/api/gifts/{entity_id}"' in text
    assert "export function referenceUrl(" in text


def test_zod_has_every_event_in_a_discriminated_union() -> None:
    text = zod_module(demo.catalog)
    assert 'import { z } from "zod";' in text
    for _, spec, version in messages(demo.catalog):
        assert f"export const {event_type_name(spec, version)} = z.object({{" in text
    assert (
        'export const RoomEvent = z.discriminatedUnion("event", [RoomUserJoinedEvent,'
        ' RoomUserLeftEvent, z.discriminatedUnion("version", [RoomMessagePostedV1Event,'
        " RoomMessagePostedV2Event])]);"
    ) in text
    assert "export const CatalogEvent = z.union([GiftListEvent, RoomEvent, ImportEvent]);" in text
    assert 'export const GiftStatus = z.enum(["available", "purchased"]);' in text
    # each definition comes before its first use
    assert text.index("export const GiftStatus") < text.index("status: GiftStatus")


@pytest.mark.parametrize(
    ("schema", "typescript", "zod"),
    [
        ({}, "unknown", "z.unknown()"),
        ({"type": "integer", "minimum": 0}, "number", "z.number().int().gte(0)"),
        ({"type": ["string", "null"]}, "string | null", "z.string().nullable()"),
        ({"const": "x"}, '"x"', 'z.literal("x")'),
        ({"enum": [1, "a"]}, '1 | "a"', 'z.union([z.literal(1), z.literal("a")])'),
        ({"type": "array", "items": {"type": "boolean"}}, "Array<boolean>", "z.array(z.boolean())"),
        (
            {"type": "object", "additionalProperties": {"type": "number"}},
            "Record<string, number>",
            "z.record(z.string(), z.number())",
        ),
        ({"$ref": "#/$defs/Thing"}, "Thing", "z.lazy(() => Thing)"),
        ({"type": "string", "pattern": "^a$"}, "string", 'z.string().regex(new RegExp("^a$"))'),
    ],
)
def test_schema_fragments_render(schema: dict[str, Any], typescript: str, zod: str) -> None:
    assert render_type(schema) == typescript
    assert render_zod(schema) == zod


# -- the rest ------------------------------------------------------------------------


def test_schema_pool_shares_equal_definitions_and_renames_different_ones() -> None:
    pool = SchemaPool()
    first = {"$defs": {"S": {"enum": ["a"]}}, "properties": {"s": {"$ref": "#/$defs/S"}}}
    second = {"$defs": {"S": {"enum": ["b"]}}, "properties": {"s": {"$ref": "#/$defs/S"}}}
    assert pool.add(first) == {"properties": {"s": {"$ref": "#/$defs/S"}}}
    assert pool.add(first) == {"properties": {"s": {"$ref": "#/$defs/S"}}}
    assert pool.add(second) == {"properties": {"s": {"$ref": "#/$defs/S2"}}}
    assert pool.defs == {"S": {"enum": ["a"]}, "S2": {"enum": ["b"]}}
    assert pool.add({"type": "object", "title": "Thing"}) == {"$ref": "#/$defs/Thing"}


def test_html_page_shows_every_resource_and_event() -> None:
    page = html_page(demo.catalog)
    assert page.startswith("<!doctype html>")
    for _, spec, _ in messages(demo.catalog):
        assert f'id="{spec.key}"' in page
    assert "/api/gifts/{entity_id}" in page
    assert "available → purchased" in page


def test_html_escapes_what_it_shows() -> None:
    catalog = Catalog("x", description="<script>alert(1)</script>")
    catalog.resource("room", description="a & b").event("WAVED", None, description="<b>")
    page = html_page(catalog)
    assert "<script>" not in page
    assert "&lt;b&gt;" in page


def test_export_catalog_writes_every_format() -> None:
    for fmt in FORMATS:
        text = export_catalog(gift_catalog(), fmt)
        assert text.endswith("\n")
        if fmt in ("json", "asyncapi", "jsonschema"):
            json.loads(text)
    with pytest.raises(ValueError, match="unknown catalog format"):
        export_catalog(gift_catalog(), "yaml")
