"""What the exporters share: one pool of schema definitions, names, example events."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

from eventwire.catalog.events import EventSpec
from eventwire.catalog.model import TENANT_PREFIX, Catalog
from eventwire.catalog.resource import Resource
from eventwire.catalog.schema import PayloadSchema

__all__ = [
    "EXAMPLE_TIMESTAMP",
    "SchemaPool",
    "example_event",
    "messages",
    "pascal",
    "topic_pattern",
]

EXAMPLE_TIMESTAMP = "2023-01-01T00:00:00.000Z"
"""The timestamp of exported example events (the seed's date)."""

_LOCAL_REF = "#/$defs/"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def pascal(text: str) -> str:
    """``gift-list`` → ``GiftList``, ``USER_JOINED`` → ``UserJoined``."""
    words = re.split(r"[^A-Za-z0-9]+", text)
    return "".join(w[:1].upper() + w[1:].lower() for w in words if w)


def topic_pattern(resource: str) -> str:
    """A regex of the resource's topics, with the seed's optional tenant prefix."""
    return f"^({TENANT_PREFIX}:[a-z0-9-]+:)?{resource}(:[a-z0-9-]+)+$"


def messages(catalog: Catalog) -> Iterator[tuple[Resource, EventSpec, int]]:
    """Every ``(resource, event type, version)``, in declaration order."""
    for resource in catalog.resources.values():
        for spec in resource.events.values():
            for version in spec.versions:
                yield resource, spec, version


def _rewrite(node: Any, mapping: dict[str, str], prefix: str) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        out = {k: _rewrite(v, mapping, prefix) for k, v in node.items() if k != "$ref"}
        if isinstance(ref, str) and ref.startswith(_LOCAL_REF):
            name = ref.removeprefix(_LOCAL_REF)
            out = {"$ref": prefix + mapping.get(name, name), **out}
        elif ref is not None:
            out = {"$ref": ref, **out}
        return out
    if isinstance(node, list):
        return [_rewrite(v, mapping, prefix) for v in node]
    return node


class SchemaPool:
    """Schema definitions gathered from many standalone schemas into one namespace.

    Each added schema's ``$defs`` move into the pool; a definition equal to
    one already there is shared, a different one with the same name is
    renamed (``Gift2``), and every ``$ref`` is rewritten to ``prefix + name``
    (``#/$defs/`` for a JSON Schema bundle, ``#/components/schemas/`` for AsyncAPI).
    """

    def __init__(self, prefix: str = _LOCAL_REF) -> None:
        self.prefix = prefix
        self.defs: dict[str, dict[str, Any]] = {}

    def _free_name(
        self, wanted: str, content: dict[str, Any], pending: dict[str, Any]
    ) -> tuple[str, bool]:
        base = _UNSAFE.sub("_", wanted) or "Schema"
        name, n = base, 1
        while name in self.defs or name in pending:
            if self.defs.get(name) == content:
                return name, True
            n += 1
            name = f"{base}{n}"
        return name, False

    def add(self, schema: dict[str, Any], name: str | None = None) -> dict[str, Any]:
        """Pool ``schema``'s definitions; return it with rewritten refs, or a ``$ref`` to it.

        With a ``name`` (or a titled object schema), the schema itself becomes
        a definition and a ``{"$ref": ...}`` is returned.
        """
        schema = copy.deepcopy(schema)
        local: dict[str, Any] = schema.pop("$defs", {})
        mapping: dict[str, str] = {}
        pending: dict[str, Any] = {}
        for local_name, definition in local.items():
            content = _rewrite(definition, {}, self.prefix)
            pooled, shared = self._free_name(local_name, content, pending)
            mapping[local_name] = pooled
            if not shared:
                pending[pooled] = definition
        for pooled, definition in pending.items():
            self.defs[pooled] = _rewrite(definition, mapping, self.prefix)
        body: dict[str, Any] = _rewrite(schema, mapping, self.prefix)
        if name is None and body.get("type") == "object" and isinstance(body.get("title"), str):
            name = body["title"]
        if name is None:
            return body
        pooled, shared = self._free_name(name, body, {})
        if not shared:
            self.defs[pooled] = body
        return {"$ref": self.prefix + pooled}

    def payload(self, schema: PayloadSchema) -> dict[str, Any]:
        """A payload schema, pooled."""
        return self.add(schema.json_schema())


def _entity_id(resource: Resource, payload: Any) -> str:
    if isinstance(payload, dict):
        for key in (resource.id_field or "id", "id", "user_id"):
            if isinstance(payload.get(key), str) and payload[key]:
                return str(payload[key])
    return f"{resource.name}-1"


def example_event(resource: Resource, spec: EventSpec, version: int) -> dict[str, Any] | None:
    """A whole example event of one version, from its first example payload."""
    declared = spec.versions[version]
    if not declared.examples:
        return None
    payload = declared.examples[0]
    event: dict[str, Any] = {
        "topic": f"{resource.name}:123",
        "event": spec.name,
        "data": {
            "entity_id": _entity_id(resource, payload),
            "payload": payload,
            "user_id": "user-789",
            "timestamp": EXAMPLE_TIMESTAMP,
        },
        "trace_id": "a1b2c3d4-e5f6-7890",
    }
    if version != 1:
        event["version"] = version
    return event
