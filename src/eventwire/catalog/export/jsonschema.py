"""JSON Schema 2020-12 for every event and version of a catalog.

Each schema describes a whole event as a subscriber receives it: the seed's
envelope with ``event`` fixed, the topic's resource type in its pattern, the
payload of that version, ``version`` fixed (optional for version 1, since an
event without ``version`` is version 1), and ``seq``. Unknown envelope
fields are allowed, as the protocol tells receivers to ignore them.

- :func:`event_schema`: one standalone document per event version;
- :func:`catalog_schema`: one document whose ``$defs`` hold every payload
  type and every event version, and which accepts any declared event.
"""

from __future__ import annotations

from typing import Any

from eventwire.catalog.events import EventSpec
from eventwire.catalog.export.common import SchemaPool, example_event, messages, topic_pattern
from eventwire.catalog.model import Catalog
from eventwire.catalog.resource import Resource

__all__ = ["DIALECT", "catalog_schema", "envelope_schema", "event_schema", "event_schemas"]

DIALECT = "https://json-schema.org/draft/2020-12/schema"

_IDENTIFIER = {"type": "string", "minLength": 1, "maxLength": 256}


def envelope_schema(
    resource: Resource, spec: EventSpec, version: int, payload: dict[str, Any]
) -> dict[str, Any]:
    """The event schema of one version around an already prepared ``payload`` schema."""
    required = ["topic", "event", "data"] + (["version"] if version != 1 else [])
    schema: dict[str, Any] = {
        "title": f"{spec.resource} {spec.name} v{version}",
        "description": spec.description,
        "type": "object",
        "required": required,
        "properties": {
            "topic": {"type": "string", "pattern": topic_pattern(resource.name)},
            "event": {"const": spec.name},
            "data": {
                "type": "object",
                "required": ["entity_id", "payload", "timestamp"],
                "properties": {
                    "entity_id": _IDENTIFIER,
                    "payload": payload,
                    "user_id": _IDENTIFIER,
                    "tenant_id": _IDENTIFIER,
                    "timestamp": {"type": "string", "format": "date-time"},
                },
            },
            "trace_id": {"type": "string", "minLength": 1, "maxLength": 128},
            "version": {"const": version},
            "seq": {"type": "integer", "minimum": 1},
        },
    }
    example = example_event(resource, spec, version)
    if example is not None:
        schema["examples"] = [example]
    return schema


def _lookup(catalog: Catalog, resource: str, event: str) -> tuple[Resource, EventSpec]:
    found = catalog.resources.get(resource)
    spec = None if found is None else found.events.get(event)
    if found is None or spec is None:
        raise KeyError(f"{resource}.{event} is not in catalog {catalog.name!r}")
    return found, spec


def event_schema(catalog: Catalog, resource: str, event: str, version: int) -> dict[str, Any]:
    """A standalone JSON Schema document of one event version."""
    found, spec = _lookup(catalog, resource, event)
    pool = SchemaPool()
    payload = pool.payload(spec.versions[version].payload)
    schema = envelope_schema(found, spec, version, payload)
    document: dict[str, Any] = {
        "$schema": DIALECT,
        "$id": f"urn:eventwire:{catalog.name}:{spec.message_id(version)}",
        **schema,
    }
    if pool.defs:
        document["$defs"] = pool.defs
    return document


def event_schemas(catalog: Catalog) -> dict[str, dict[str, Any]]:
    """Every event version's standalone document, by message id (``gift-list.ADDED.v1``)."""
    return {
        spec.message_id(version): event_schema(catalog, resource.name, spec.name, version)
        for resource, spec, version in messages(catalog)
    }


def catalog_schema(catalog: Catalog) -> dict[str, Any]:
    """One document: every payload type and event version in ``$defs``; any event validates.

    ``$defs`` holds each event version under its message id, so a single
    event version is ``{"$ref": "<document>#/$defs/gift-list.ADDED.v1"}``.
    """
    pool = SchemaPool()
    events: dict[str, Any] = {}
    for resource, spec, version in messages(catalog):
        payload = pool.payload(spec.versions[version].payload)
        events[spec.message_id(version)] = envelope_schema(resource, spec, version, payload)
    return {
        "$schema": DIALECT,
        "$id": f"urn:eventwire:{catalog.name}",
        "title": catalog.title,
        "description": catalog.description,
        "anyOf": [{"$ref": f"#/$defs/{message_id}"} for message_id in events],
        "$defs": {**pool.defs, **events},
    }
