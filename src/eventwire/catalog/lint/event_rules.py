"""Lint rules for one event: recorded traffic, or a publish at the gateway.

:func:`lint_event` takes a decoded JSON value (a line of recorded traffic)
and never raises on bad input: everything wrong becomes a finding.
:func:`lint_published` takes an event the gateway has already decoded and
validated, and runs only the rules validation does not cover (naming,
nesting, metadata, size, embedded records), so the gateway can apply the
same rules at publish time as warnings or errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eventwire.catalog.lint.findings import Finding, LintConfig, Severity
from eventwire.catalog.lint.names import casing_fix, is_opaque, is_past_tense, nested_entity
from eventwire.catalog.model import TENANT_PREFIX
from eventwire.catalog.modes import FULL_DTO_LIMIT, PAYLOAD_MAX
from eventwire.catalog.schema import dump_json
from eventwire.catalog.standard import STANDARD_EVENTS
from eventwire.envelope import decode_new_event, is_event_type
from eventwire.errors import ProtocolError, ValidationFailed
from eventwire.topics import RESERVED_NAMESPACES, validate_topic

if TYPE_CHECKING:
    from eventwire.catalog.model import Catalog
    from eventwire.envelope import NewEvent

__all__ = ["embedded_records", "lint_event", "lint_published"]

_DEFAULT = LintConfig()
_PAYLOAD = "data.payload"


@dataclass(slots=True)
class _Context:
    catalog: Catalog | None
    config: LintConfig
    source: str
    line: int | None
    prefix: str
    found: list[Finding]

    def add(
        self, rule: str, message: str, path: str | None = None, raise_to: Severity | None = None
    ) -> None:
        severity = self.config.severity(rule)
        if severity is None:
            return
        if raise_to is not None and rule not in self.config.overrides:
            severity = raise_to
        where = None if path is None else f"{self.prefix}{path}"
        self.found.append(Finding(rule, severity, message, self.source, self.line, where))


def embedded_records(payload: Any, path: str = "data.payload", depth: int = 0) -> Iterator[str]:
    """Paths of related records embedded in a payload: nested objects with their own ``id``.

    The payload's own root (``{id, ...}``) is the DTO itself and does not count.
    """
    if isinstance(payload, dict):
        if depth >= 1 and "id" in payload and len(payload) >= 3:
            yield path
            return
        for key, value in payload.items():
            yield from embedded_records(value, f"{path}.{key}", depth + 1)
    elif isinstance(payload, list):
        if any(isinstance(v, dict) and "id" in v and len(v) >= 3 for v in payload[:100]):
            yield f"{path}[]"
            return
        for at, value in enumerate(payload[:100]):
            yield from embedded_records(value, f"{path}.{at}", depth + 1)


def _topic_rules(ctx: _Context, topic: str, entity_id: str | None) -> None:
    segments = topic.split(":")
    if segments[0] == TENANT_PREFIX and len(segments) >= 4:
        segments = segments[2:]  # the seed's "Tenant in Topic": tenant:acme:gift-list:123
    resources = frozenset(ctx.catalog.resources) if ctx.catalog is not None else frozenset()
    nested = nested_entity(segments, entity_id, resources)
    if nested is not None:
        kind, ident = nested
        base = ":".join(segments[: segments.index(kind)])
        ctx.add(
            "EW102",
            f"topic nests the entity {kind}:{ident}; publish on {base!r} with"
            f" entity_id {f'{kind}-{ident}'!r}",
            "topic",
        )
    if ctx.catalog is not None and ctx.catalog.resource_for(topic) is None:
        name = ctx.catalog.resource_name(topic)
        strict = Severity.ERROR if ctx.catalog.strict else None
        ctx.add("EW103", f"resource type {name!r} is not in the catalog", "topic", strict)


def _name_rules(ctx: _Context, event: str) -> None:
    if is_opaque(event):
        message = f"{event!r} says nothing; name what happened, such as GIFT_PURCHASED"
        ctx.add("EW202", message, "event")
    elif event not in STANDARD_EVENTS and not is_past_tense(event):
        ctx.add(
            "EW203",
            f"{event!r} does not end in a past-tense verb; events state facts: USER_JOINED",
            "event",
        )


def _catalog_rules(ctx: _Context, topic: str, event: str, version: object) -> None:
    if ctx.catalog is None:
        return
    resource = ctx.catalog.resource_for(topic)
    if resource is None:
        return
    spec = resource.events.get(event)
    if spec is None:
        if resource.strict:
            message = f"{event} is not declared for the strict resource {resource.name}"
            ctx.add("EW204", message, "event")
        else:
            ctx.add(
                "EW205", f"{event} is a custom event that {resource.name} does not declare", "event"
            )
        return
    if version is None and len(spec.versions) > 1:
        ctx.add("EW207", f"{spec.key} has versions {list(spec.versions)}; say which", "version")
    elif version is not None and version not in spec.versions:
        message = f"{spec.key} has no version {version!r}; declared: {list(spec.versions)}"
        ctx.add("EW206", message, "version")


def _meta_rules(ctx: _Context, data: dict[str, Any], trace_id: object, stamped: bool) -> None:
    if data.get("timestamp") is None and not stamped:
        ctx.add("EW301", "no timestamp; always include an ISO 8601 timestamp", "data.timestamp")
    if not data.get("user_id"):
        ctx.add("EW303", "no user_id: who caused this event?", "data.user_id")
    if not trace_id:
        ctx.add("EW304", "no trace_id to link the event to its request", "trace_id")


def _payload_rules(ctx: _Context, payload: Any, size: int) -> None:
    if size > PAYLOAD_MAX:
        ctx.add("EW403", f"payload is {size} bytes, over the {PAYLOAD_MAX} maximum", _PAYLOAD)
    elif size > FULL_DTO_LIMIT:
        message = f"payload is {size} bytes, over {FULL_DTO_LIMIT}: send a partial or a reference"
        ctx.add("EW402", message, _PAYLOAD)
    for path in embedded_records(payload):
        ctx.add("EW404", "embeds a related record; send its id and let the client fetch it", path)


def _structure(ctx: _Context, raw: dict[str, Any], topic_ok: bool) -> NewEvent | None:
    candidate = {k: v for k, v in raw.items() if k != "seq"}
    if not topic_ok:
        candidate["topic"] = "placeholder:topic"  # EW101 reported it; check the rest
    try:
        return decode_new_event(candidate)
    except ValidationFailed as exc:
        for field, problem in exc.errors:
            if field in ("topic", "event"):
                continue  # EW101, EW201 and EW002 said it already
            ctx.add("EW302" if field == "data.timestamp" else "EW002", problem, field)
    except ProtocolError:
        pass  # the topic: reported by EW101
    return None


def lint_event(
    raw: object,
    *,
    catalog: Catalog | None = None,
    config: LintConfig | None = None,
    source: str = "event",
    line: int | None = None,
    prefix: str = "",
    stamped_by_server: bool = False,
) -> list[Finding]:
    """Every finding about one decoded event; never raises on bad input.

    ``stamped_by_server``: the event is a publish the gateway will stamp,
    so a missing timestamp is fine. Events on the server's own ``system``
    and ``error`` topics are not linted.
    """
    ctx = _Context(catalog, config or _DEFAULT, source, line, prefix, [])
    if not isinstance(raw, dict):
        ctx.add("EW001", f"expected a JSON object, got {type(raw).__name__}", None)
        return ctx.found
    topic, event, data = raw.get("topic"), raw.get("event"), raw.get("data")
    if isinstance(topic, str) and topic.split(":", 1)[0] in RESERVED_NAMESPACES:
        return ctx.found
    entity_id = data.get("entity_id") if isinstance(data, dict) else None
    topic_ok = False
    try:
        validate_topic(topic)
        topic_ok = True
    except ProtocolError as exc:
        ctx.add("EW101", exc.message, "topic")
    if topic_ok:
        _topic_rules(ctx, str(topic), entity_id if isinstance(entity_id, str) else None)
    if not isinstance(event, str):
        ctx.add("EW002", "required" if event is None else "expected a string", "event")
    elif not is_event_type(event):
        ctx.add("EW201", f"{event!r} is not UPPER_SNAKE_CASE; use {casing_fix(event)!r}", "event")
    else:
        _name_rules(ctx, event)
        if topic_ok:
            _catalog_rules(ctx, str(topic), event, raw.get("version"))
    if isinstance(data, dict):
        _meta_rules(ctx, data, raw.get("trace_id"), stamped_by_server)
        if "payload" in data:
            _payload_rules(ctx, data["payload"], len(dump_json(data["payload"])))
    checked = _structure(ctx, raw, topic_ok)
    if checked is not None and topic_ok and catalog is not None:
        _payload_validation(ctx, catalog, checked)
    return ctx.found


def _payload_validation(ctx: _Context, catalog: Catalog, event: NewEvent) -> None:
    from eventwire.catalog.validate import check_event

    _, errors = check_event(catalog, event)
    for field, problem in errors:
        if field not in ("topic", "event", "version"):
            ctx.add("EW401", problem, field)


def lint_published(
    event: NewEvent,
    payload_json: bytes,
    *,
    catalog: Catalog | None = None,
    config: LintConfig | None = None,
) -> list[Finding]:
    """The publish-time rules for an event the gateway decoded and validated.

    Naming, nesting, undeclared custom events and versions, user and trace
    context, payload size and embedded records; not the envelope, the
    timestamp (the gateway stamps it) or the payload's schema (validation
    checks it).
    """
    ctx = _Context(catalog, config or _DEFAULT, "publish", None, "", [])
    data = event.data
    _topic_rules(ctx, event.topic, data.entity_id)
    _name_rules(ctx, event.event)
    _catalog_rules(ctx, event.topic, event.event, event.version)
    meta = {"user_id": data.user_id, "timestamp": "stamped"}
    _meta_rules(ctx, meta, event.trace_id, True)
    _payload_rules(ctx, data.payload, len(payload_json))
    return ctx.found
