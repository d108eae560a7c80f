"""Check one published event against the catalog: once per publish, every field named.

The gateway calls :func:`validate_event` after the envelope is decoded and
the payload encoded (it needs the encoded size anyway), so the payload is
checked as the JSON that will be sent. A refusal is one
:class:`~eventwire.errors.ValidationFailed` (VALIDATION_ERROR) whose details
follow the seed's error example, ``{field: "name", error: "required"}``,
for every field that failed, with paths relative to the event:
``data.payload.name``.

What is checked, in order:

1. the resource type (the topic's first segment): unknown ones are refused
   by a strict catalog, let through by an open one;
2. the event type: undeclared ones are refused by a strict resource, let
   through by an open one;
3. the version (absent means 1): it must be declared;
4. the payload against that version's schema;
5. for the standard events: ``payload.<id_field>`` equals ``data.entity_id``;
   STATUS_CHANGED's ``old_status → new_status`` is an allowed transition.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from eventwire.catalog.events import EventSpec, EventVersion
from eventwire.catalog.schema import dump_json
from eventwire.errors import FieldError, ValidationFailed

if TYPE_CHECKING:
    from eventwire.catalog.model import Catalog
    from eventwire.catalog.resource import Resource
    from eventwire.envelope import NewEvent

__all__ = ["check_event", "validate_event"]

_PAYLOAD = "data.payload"


def _listed(names: Iterable[object]) -> str:
    shown = sorted(str(n) for n in names)
    return ", ".join(shown) if shown else "none"


def _member(payload: Any, name: str) -> Any:
    if isinstance(payload, dict):
        return payload.get(name)
    return getattr(payload, name, None)


def _status(value: Any) -> Any:
    return getattr(value, "value", value)


def _lookup(catalog: Catalog, event: NewEvent) -> tuple[Resource, EventSpec] | list[FieldError]:
    resource = catalog.resource_for(event.topic)
    if resource is None:
        if not catalog.strict:
            return []
        name = catalog.resource_name(event.topic)
        known = _listed(catalog.resources)
        return [("topic", f"no resource type {name!r} in the catalog; declared: {known}")]
    spec = resource.events.get(event.event)
    if spec is None:
        if not resource.strict:
            return []
        known = _listed(resource.events)
        return [("event", f"{event.event} is not declared for {resource.name}; declared: {known}")]
    return resource, spec


def _standard_checks(resource: Resource, spec: EventSpec, event: NewEvent) -> list[FieldError]:
    payload = event.data.payload
    entity_id = event.data.entity_id
    found: list[FieldError] = []
    id_field = "id" if spec.name == "STATUS_CHANGED" else resource.id_field
    if id_field is not None and spec.name != "DELETED":
        value = _member(payload, id_field)
        if value is not None and value != entity_id:
            found.append((f"{_PAYLOAD}.{id_field}", f"must equal data.entity_id ({entity_id!r})"))
    if spec.name == "STATUS_CHANGED" and resource.transitions is not None:
        old = _status(_member(payload, "old_status"))
        new = _status(_member(payload, "new_status"))
        if old in resource.statuses and new in resource.statuses:
            allowed = resource.transitions.get(old, frozenset())
            if new not in allowed:
                shown = ", ".join(repr(s) for s in sorted(allowed))
                problem = (
                    f"{old!r} -> {new!r} is not an allowed transition; from {old!r}: {shown}"
                    if allowed
                    else f"{old!r} is final: no transition from it is allowed"
                )
                found.append((f"{_PAYLOAD}.new_status", problem))
    return found


def check_event(
    catalog: Catalog, event: NewEvent, payload_json: bytes | None = None
) -> tuple[EventVersion | None, list[FieldError]]:
    """The declared version ``event`` matches (None if undeclared) and every problem found."""
    found = _lookup(catalog, event)
    if isinstance(found, list):
        return None, found
    resource, spec = found
    version = event.version or 1
    declared = spec.versions.get(version)
    if declared is None:
        known = _listed(spec.versions)
        return None, [("version", f"{spec.key} has no version {version}; declared: {known}")]
    if payload_json is None:
        payload_json = dump_json(event.data.payload)
    errors = declared.payload.check(payload_json, _PAYLOAD)
    if spec.kind == "standard":
        errors += [e for e in _standard_checks(resource, spec, event) if e not in errors]
    return declared, errors


def validate_event(
    catalog: Catalog, event: NewEvent, payload_json: bytes | None = None
) -> EventVersion | None:
    """Check one published event; raise ValidationFailed naming every failed field.

    ``payload_json`` is the payload as the gateway encoded it (encoded here
    when left out). Returns the declared version the event matched, or None
    for an event the catalog lets through undeclared (an open catalog or
    resource).
    """
    declared, errors = check_event(catalog, event, payload_json)
    if errors:
        raise ValidationFailed(errors)
    return declared
