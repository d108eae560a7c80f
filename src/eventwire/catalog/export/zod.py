"""The catalog as Zod (version 4) schemas, the seed's "Validate on receive" for TypeScript.

::

    import { CatalogEvent, GiftListEvent } from "./events.zod";

    const result = GiftListEvent.safeParse(JSON.parse(frame));
    if (result.success && result.data.event === "STATUS_CHANGED") { ... }

Per resource, ``GiftListEvent`` is a ``z.discriminatedUnion("event", ...)``;
an event type with several versions is itself a discriminated union on
``version`` (version 1 may leave ``version`` out). ``CatalogEvent`` accepts
any declared event. Each schema has a type of the same name (``z.infer``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from eventwire.catalog.events import EventSpec
from eventwire.catalog.export.common import SchemaPool, messages, pascal, topic_pattern
from eventwire.catalog.export.typescript import event_type_name, type_name
from eventwire.catalog.model import Catalog

__all__ = ["render_zod", "zod_module"]

_PREFIX = "#/$defs/"


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {str(node["$ref"]).removeprefix(_PREFIX)} if "$ref" in node else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node)) if node else set()
    return set()


def _ordered(defs: dict[str, Any]) -> list[str]:
    """Definitions in dependency order, so that each is declared before its use."""
    done: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in done or name in visiting or name not in defs:
            return
        visiting.add(name)
        for dependency in sorted(_refs(defs[name])):
            visit(dependency)
        visiting.discard(name)
        done.append(name)

    for name in defs:
        visit(name)
    return done


def _string(schema: dict[str, Any]) -> str:
    fmt = schema.get("format")
    if fmt == "date-time":
        text = "z.iso.datetime({ offset: true })"
    elif fmt == "uri":
        text = "z.url()"
    elif fmt == "uuid":
        text = "z.uuid()"
    else:
        text = "z.string()"
    if "minLength" in schema:
        text += f".min({schema['minLength']})"
    if "maxLength" in schema:
        text += f".max({schema['maxLength']})"
    if "pattern" in schema:
        text += f".regex(new RegExp({json.dumps(schema['pattern'])}))"
    return text


def _number(schema: dict[str, Any]) -> str:
    text = "z.number().int()" if schema.get("type") == "integer" else "z.number()"
    for key, method in (
        ("minimum", "gte"),
        ("maximum", "lte"),
        ("exclusiveMinimum", "gt"),
        ("exclusiveMaximum", "lt"),
    ):
        if key in schema:
            text += f".{method}({schema[key]})"
    return text


def _object(schema: dict[str, Any], defined: set[str], indent: str) -> str:
    properties: dict[str, Any] = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    if not properties:
        value = render_zod(extra, defined, indent) if isinstance(extra, dict) else "z.unknown()"
        return f"z.record(z.string(), {value})"
    required = set(schema.get("required", []))
    inner = indent + "  "
    lines = []
    for name, sub in properties.items():
        rendered = render_zod(sub, defined, inner)
        optional = "" if name in required else ".optional()"
        lines.append(f"{inner}{_key(name)}: {rendered}{optional},\n")
    kind = "z.strictObject" if extra is False else "z.object"
    return f"{kind}({{\n" + "".join(lines) + f"{indent}}})"


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$]*", name) else json.dumps(name)


def _union(members: list[Any], defined: set[str], indent: str) -> str:
    nullable = any(isinstance(m, dict) and m.get("type") == "null" for m in members)
    others = [
        render_zod(m, defined, indent)
        for m in members
        if not (isinstance(m, dict) and m.get("type") == "null")
    ]
    if not others:
        return "z.null()"
    text = others[0] if len(others) == 1 else f"z.union([{', '.join(others)}])"
    return f"{text}.nullable()" if nullable else text


def render_zod(schema: Any, defined: set[str] | None = None, indent: str = "") -> str:
    """A JSON Schema (with refs into ``#/$defs/``) as a Zod expression.

    A ``$ref`` to a definition not in ``defined`` yet is wrapped in ``z.lazy``.
    """
    defined = set() if defined is None else defined
    if schema is True or schema == {}:
        return "z.unknown()"
    if not isinstance(schema, dict):
        return "z.never()"
    if "$ref" in schema:
        name = type_name(str(schema["$ref"]).removeprefix(_PREFIX))
        return name if name in defined else f"z.lazy(() => {name})"
    if "const" in schema:
        return f"z.literal({json.dumps(schema['const'])})"
    if "enum" in schema:
        values = schema["enum"]
        if values and all(isinstance(v, str) for v in values):
            return f"z.enum({json.dumps(values)})"
        return _union([{"const": v} for v in values], defined, indent)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return _union(schema[key], defined, indent)
    if len(schema.get("allOf", [])) == 1:
        return render_zod(schema["allOf"][0], defined, indent)
    kind = schema.get("type")
    if isinstance(kind, list):
        return _union([{**schema, "type": k} for k in kind], defined, indent)
    if kind == "string":
        return _string(schema)
    if kind in ("integer", "number"):
        return _number(schema)
    if kind == "boolean":
        return "z.boolean()"
    if kind == "null":
        return "z.null()"
    if kind == "array":
        items = render_zod(schema.get("items", {}), defined, indent)
        text = f"z.array({items})"
        if "minItems" in schema:
            text += f".min({schema['minItems']})"
        return text
    if kind == "object" or "properties" in schema:
        return _object(schema, defined, indent)
    return "z.unknown()"


def _event(spec: EventSpec, version: int, payload: str) -> str:
    name = event_type_name(spec, version)
    version_field = "z.literal(1).optional()" if version == 1 else f"z.literal({version})"
    pattern = json.dumps(topic_pattern(spec.resource))
    indented = payload.replace("\n", "\n  ")
    return (
        f"export const {name} = z.object({{\n"
        f"  topic: z.string().regex(new RegExp({pattern})),\n"
        f"  event: z.literal({json.dumps(spec.name)}),\n"
        f"  data: eventData({indented}),\n"
        f"  trace_id: z.string().min(1).max(128).optional(),\n"
        f"  version: {version_field},\n"
        f"  seq: z.number().int().gte(1).optional(),\n"
        f"}});\n"
        f"export type {name} = z.infer<typeof {name}>;\n"
    )


def _member(spec: EventSpec) -> str:
    if len(spec.versions) == 1:
        return event_type_name(spec, next(iter(spec.versions)))
    names = ", ".join(event_type_name(spec, v) for v in spec.versions)
    return f'z.discriminatedUnion("version", [{names}])'


_HEADER = """\
// Generated by eventwire from the catalog {name!r} {version}. Do not edit by hand.
// Zod 4 schemas of every event: the seed's "Validate on receive".
import {{ z }} from "zod";

/** The seed's event data around a payload schema. */
const eventData = <P extends z.ZodType>(payload: P) =>
  z.object({{
    entity_id: z.string().min(1).max(256),
    payload,
    user_id: z.string().min(1).max(256).optional(),
    tenant_id: z.string().min(1).max(256).optional(),
    timestamp: z.iso.datetime({{ offset: true }}),
  }});
"""


def zod_module(catalog: Catalog) -> str:
    """A TypeScript module of Zod schemas for the catalog's payloads and events."""
    pool = SchemaPool(_PREFIX)
    payloads = {
        (spec.key, version): pool.payload(spec.versions[version].payload)
        for _, spec, version in messages(catalog)
    }
    defined: set[str] = set()
    parts = [_HEADER.format(name=catalog.name, version=catalog.version)]
    for name in _ordered(pool.defs):
        rendered = render_zod(pool.defs[name], defined)
        ts_name = type_name(name)
        defined.add(ts_name)
        parts.append(
            f"export const {ts_name} = {rendered};\n"
            f"export type {ts_name} = z.infer<typeof {ts_name}>;\n"
        )
    for _, spec, version in messages(catalog):
        parts.append(_event(spec, version, render_zod(payloads[spec.key, version], defined)))
    unions = []
    for name, resource in catalog.resources.items():
        if not resource.events:
            continue
        members = ", ".join(_member(spec) for spec in resource.events.values())
        union = f"{pascal(name)}Event"
        unions.append(union)
        parts.append(
            f'export const {union} = z.discriminatedUnion("event", [{members}]);\n'
            f"export type {union} = z.infer<typeof {union}>;\n"
        )
    every = ", ".join(unions)
    catalog_union = (
        f"z.union([{every}])" if len(unions) > 1 else (unions[0] if unions else "z.never()")
    )
    parts.append(
        f"export const CatalogEvent = {catalog_union};\n"
        "export type CatalogEvent = z.infer<typeof CatalogEvent>;\n"
    )
    return "\n".join(parts)
