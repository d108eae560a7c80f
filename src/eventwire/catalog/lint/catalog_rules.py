"""Lint rules for a catalog's declarations.

Declaring already refuses what cannot work (bad resource names, event types
that are not UPPER_SNAKE_CASE, invalid examples). These rules catch what
works but goes against the seed: opaque or present-tense event names,
undocumented events, free-text statuses, reference-only resources without
a URL, DTOs that embed related records, versions without converters.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from eventwire.catalog.events import EventSpec
from eventwire.catalog.lint.findings import Finding, LintConfig
from eventwire.catalog.lint.names import is_opaque, is_past_tense
from eventwire.catalog.model import Catalog
from eventwire.catalog.modes import PayloadMode
from eventwire.catalog.resource import Resource
from eventwire.catalog.standard import STANDARD_EVENTS

__all__ = ["embedded_properties", "lint_catalog"]

_REF = "#/$defs/"


def _resolve(schema: Any, defs: dict[str, Any]) -> Any:
    if isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
        return defs.get(schema["$ref"].removeprefix(_REF), {})
    return schema


def _is_record(schema: Any, defs: dict[str, Any]) -> bool:
    schema = _resolve(schema, defs)
    return isinstance(schema, dict) and "id" in schema.get("properties", {})


def _variants(schema: Any, defs: dict[str, Any]) -> Iterator[Any]:
    schema = _resolve(schema, defs)
    if not isinstance(schema, dict):
        return
    yield schema
    for key in ("anyOf", "oneOf"):
        for option in schema.get(key, []):
            yield from _variants(option, defs)


def embedded_properties(schema: dict[str, Any]) -> list[str]:
    """Top-level properties of a payload schema that hold related records (objects with ``id``)."""
    defs = schema.get("$defs", {})
    found = []
    for name, prop in schema.get("properties", {}).items():
        for variant in _variants(prop, defs):
            items = variant.get("items") if variant.get("type") == "array" else None
            if _is_record(variant, defs) or (items is not None and _is_record(items, defs)):
                found.append(name)
                break
    return found


class _Out:
    def __init__(self, catalog: Catalog, config: LintConfig) -> None:
        self.source = f"catalog:{catalog.name}"
        self.config = config
        self.found: list[Finding] = []

    def add(self, rule: str, message: str, path: str) -> None:
        severity = self.config.severity(rule)
        if severity is not None:
            self.found.append(Finding(rule, severity, message, self.source, None, path))


def _event(out: _Out, spec: EventSpec) -> None:
    if is_opaque(spec.name):
        out.add("EW202", f"{spec.name!r} says nothing; name what happened", spec.key)
    elif spec.name not in STANDARD_EVENTS and not is_past_tense(spec.name):
        out.add("EW203", f"{spec.name!r} does not end in a past-tense verb", spec.key)
    if spec.kind == "custom" and not spec.description:
        out.add("EW501", "no description: say when this event is sent", spec.key)
    for version, declared in spec.versions.items():
        if not declared.examples:
            out.add("EW502", "no example payload", spec.message_id(version))
        for name in embedded_properties(declared.payload.json_schema()):
            out.add(
                "EW505",
                f"payload field {name!r} embeds related records; send their ids",
                spec.message_id(version),
            )
    for lower, upper in zip(spec.chain.versions, spec.chain.versions[1:], strict=False):
        for a, b, table in ((lower, upper, spec.chain.up), (upper, lower, spec.chain.down)):
            if a not in table:
                out.add(
                    "EW506",
                    f"no converter from v{a} to v{b}: subscribers accepting only v{b}"
                    f" get UNSUPPORTED_VERSION for events published at v{a}",
                    spec.key,
                )


def _resource(out: _Out, resource: Resource) -> None:
    if resource.payload_mode is PayloadMode.REFERENCE and resource.reference_url is None:
        out.add(
            "EW504", "reference-only payloads but no reference_url to fetch from", resource.name
        )
    for version, dto in resource.dtos.items():
        schema = dto.json_schema()
        for name in embedded_properties(schema):
            out.add(
                "EW505",
                f"DTO field {name!r} embeds related records; send their ids",
                f"{resource.name}.dto.v{version}",
            )
        status = schema.get("properties", {}).get("status")
        if status is not None and resource.status_enum is None:
            out.add(
                "EW503",
                "the DTO has a status but the resource declares no statuses:"
                " STATUS_CHANGED is neither defined nor checked",
                resource.name,
            )
        elif isinstance(status, dict) and status.get("type") == "string" and "enum" not in status:
            out.add(
                "EW503",
                "the DTO's status is free text; type it with the statuses enum",
                resource.name,
            )
    for spec in resource.events.values():
        _event(out, spec)


def lint_catalog(catalog: Catalog, config: LintConfig | None = None) -> list[Finding]:
    """Every finding about a catalog's declarations."""
    out = _Out(catalog, config or LintConfig())
    for resource in catalog.resources.values():
        _resource(out, resource)
    return out.found
