"""The catalog as TypeScript types: every event a discriminated union member on ``event``.

::

    import type { CatalogEvent } from "./events";

    function handle(e: CatalogEvent) {
      if (e.topic.startsWith("gift-list:") && e.event === "STATUS_CHANGED") {
        e.data.payload.new_status;   // "available" | "purchased"
      }
    }

Per resource, ``GiftListEvent`` is the union of its event versions,
discriminated by ``event`` (and ``version`` where an event has several);
``CatalogEvent`` is the union of them all. Payload types come from the
payload schemas; ``REFERENCE_URLS`` and ``referenceUrl()`` tell clients
where to fetch an entity sent by reference.
"""

from __future__ import annotations

import json
import re
from typing import Any

from eventwire.catalog.events import EventSpec
from eventwire.catalog.export.common import SchemaPool, messages, pascal
from eventwire.catalog.model import TENANT_PREFIX, Catalog

__all__ = ["RESERVED_NAMES", "event_type_name", "render_type", "typescript_module"]

RESERVED_NAMES = frozenset(
    {"EventData", "CatalogEvent", "EVENT_TYPES", "REFERENCE_URLS", "STATUS_TRANSITIONS"}
)
"""Names the generated module defines itself; payload types are renamed around them."""

_PREFIX = "#/$defs/"
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def type_name(def_name: str) -> str:
    """A pooled definition's name as a TypeScript identifier."""
    name = re.sub(r"[^A-Za-z0-9_$]", "_", def_name)
    name = name if _IDENTIFIER.fullmatch(name) else f"T{name}"
    return f"{name}Payload" if name in RESERVED_NAMES else name


def event_type_name(spec: EventSpec, version: int | None = None) -> str:
    """``GiftListAddedEvent``; ``RoomMessagePostedV2Event`` for one of several versions."""
    suffix = f"V{version}" if version is not None and len(spec.versions) > 1 else ""
    return f"{pascal(spec.resource)}{pascal(spec.name)}{suffix}Event"


def _literal(value: Any) -> str:
    return json.dumps(value)


def _key(name: str) -> str:
    return name if _IDENTIFIER.fullmatch(name) else json.dumps(name)


def _doc(schema: dict[str, Any], indent: str) -> str:
    text = schema.get("description")
    if not isinstance(text, str) or not text:
        return ""
    safe = text.replace("*/", "* /")
    return f"{indent}/** {safe} */\n"


def _union(parts: list[str]) -> str:
    unique = list(dict.fromkeys(parts))
    return " | ".join(unique) if unique else "never"


def _object(schema: dict[str, Any], indent: str) -> str:
    properties: dict[str, Any] = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    if not properties:
        value = render_type(extra, indent) if isinstance(extra, dict) else "unknown"
        return f"Record<string, {value}>"
    required = set(schema.get("required", []))
    inner = indent + "  "
    lines = ["{"]
    for name, sub in properties.items():
        mark = "" if name in required else "?"
        lines.append(f"{_doc(sub, inner)}{inner}{_key(name)}{mark}: {render_type(sub, inner)};")
    lines.append(f"{indent}}}")
    return "\n".join(lines)


def render_type(schema: Any, indent: str = "") -> str:
    """A JSON Schema (with refs into ``#/$defs/``) as a TypeScript type expression."""
    if schema is True or schema == {}:
        return "unknown"
    if not isinstance(schema, dict):
        return "never"
    if "$ref" in schema:
        return type_name(str(schema["$ref"]).removeprefix(_PREFIX))
    if "const" in schema:
        return _literal(schema["const"])
    if "enum" in schema:
        return _union([_literal(v) for v in schema["enum"]])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return _union([_wrapped(s, indent) for s in schema[key]])
    if len(schema.get("allOf", [])) == 1:
        return render_type(schema["allOf"][0], indent)
    kind = schema.get("type")
    if isinstance(kind, list):
        return _union([render_type({**schema, "type": k}, indent) for k in kind])
    simple = {"string": "string", "integer": "number", "number": "number", "boolean": "boolean"}
    if kind in simple:
        return simple[kind]
    if kind == "null":
        return "null"
    if kind == "array":
        if "prefixItems" in schema:
            return "[" + ", ".join(render_type(s, indent) for s in schema["prefixItems"]) + "]"
        return f"Array<{render_type(schema.get('items', {}), indent)}>"
    if kind == "object" or "properties" in schema:
        return _object(schema, indent)
    return "unknown"


def _wrapped(schema: Any, indent: str) -> str:
    text = render_type(schema, indent)
    return f"({text})" if " | " in text and not text.startswith("{") else text


def _definitions(pool: SchemaPool) -> list[str]:
    out = []
    for name, schema in pool.defs.items():
        doc = _doc(schema, "")
        rendered = render_type(schema)
        if rendered.startswith("{"):
            out.append(f"{doc}export interface {type_name(name)} {rendered}\n")
        else:
            out.append(f"{doc}export type {type_name(name)} = {rendered};\n")
    return out


def _topic(resource: str) -> str:
    return f"`{resource}:${{string}}` | `{TENANT_PREFIX}:${{string}}:{resource}:${{string}}`"


def _event_interface(spec: EventSpec, version: int, payload: str) -> str:
    version_field = "version?: 1" if version == 1 else f"version: {version}"
    shown = (
        f"{spec.description} (version {version})" if len(spec.versions) > 1 else spec.description
    )
    doc = _doc({"description": shown.strip()}, "")
    return (
        f"{doc}export interface {event_type_name(spec, version)} {{\n"
        f"  topic: {_topic(spec.resource)};\n"
        f"  event: {_literal(spec.name)};\n"
        f"  data: EventData<{payload}>;\n"
        f"  trace_id?: string;\n"
        f"  {version_field};\n"
        f"  seq?: number;\n"
        f"}}\n"
    )


_HEADER = """\
// Generated by eventwire from the catalog {name!r} {version}. Do not edit by hand.

/** The seed's event data: the affected entity and the event's DTO. */
export interface EventData<P> {{
  entity_id: string;
  payload: P;
  user_id?: string;
  tenant_id?: string;
  /** ISO 8601, UTC */
  timestamp: string;
}}
"""


def typescript_module(catalog: Catalog) -> str:
    """A TypeScript module of the catalog's payload types and event unions."""
    pool = SchemaPool(_PREFIX)
    events: list[str] = []
    members: dict[str, list[str]] = {name: [] for name in catalog.resources}
    for resource, spec, version in messages(catalog):
        payload = render_type(pool.payload(spec.versions[version].payload))
        events.append(_event_interface(spec, version, payload))
        members[resource.name].append(event_type_name(spec, version))
    unions = [
        f"export type {pascal(name)}Event =\n  | " + "\n  | ".join(names) + ";\n"
        for name, names in members.items()
        if names
    ]
    every = [f"{pascal(name)}Event" for name, names in members.items() if names]
    event_types = {name: list(r.events) for name, r in catalog.resources.items()}
    urls = {n: r.reference_url for n, r in catalog.resources.items() if r.reference_url}
    transitions = {
        n: {k: sorted(v) for k, v in r.transitions.items()}
        for n, r in catalog.resources.items()
        if r.transitions is not None
    }
    parts = [
        _HEADER.format(name=catalog.name, version=catalog.version),
        *_definitions(pool),
        *events,
        *unions,
        f"export type CatalogEvent = {_union(every)};\n",
        f"export const EVENT_TYPES = {json.dumps(event_types, indent=2)} as const;\n",
        f"export const REFERENCE_URLS = {json.dumps(urls, indent=2)} as const;\n",
        f"export const STATUS_TRANSITIONS = {json.dumps(transitions, indent=2)} as const;\n",
        _REFERENCE_URL_FUNCTION if urls else "",
    ]
    return "\n".join(parts)


_REFERENCE_URL_FUNCTION = """\
/** Where to fetch an entity that was sent by reference (payload null). */
export function referenceUrl(
  resource: keyof typeof REFERENCE_URLS,
  entityId: string,
  topicId = "",
): string {
  return REFERENCE_URLS[resource]
    .replace("{entity_id}", encodeURIComponent(entityId))
    .replace("{topic_id}", encodeURIComponent(topicId));
}
"""
