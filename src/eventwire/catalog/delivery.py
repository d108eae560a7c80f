"""Delivering each subscriber the versions it understands: once per version, not per subscriber.

A subscriber declares what it understands with an :class:`Accept`, parsed
from SUBSCRIBE's ``versions`` argument::

    {"topics": ["gift-list:123"],
     "versions": {"gift-list.UPDATED": [1, 2], "room.*": [1], "*": [1]}}

The most specific key wins: ``resource.EVENT``, then ``resource.*``, then
``*``. Event types it names nothing for are delivered as published.

The hub groups a topic's subscribers by their ``Accept`` (a hashable value;
connections that sent the same ``versions`` share one), and for each event
calls :func:`route_versions` with the distinct groups. The body is decoded
once, each needed version converted once and encoded once; every group gets
bytes to send, or an :class:`UnsupportedVersion` to turn into one ERROR per
event type and topic.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from eventwire.catalog.errors import ConversionError
from eventwire.catalog.schema import dump_json
from eventwire.catalog.versions import plan_versions
from eventwire.envelope import is_event_type
from eventwire.errors import FieldError, ValidationFailed

if TYPE_CHECKING:
    from eventwire.catalog.events import EventSpec
    from eventwire.catalog.model import Catalog

__all__ = ["UNSUPPORTED_VERSION", "Accept", "UnsupportedVersion", "parse_accept", "route_versions"]

UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
"""The error code sent when no accepted version can be produced."""

_RESOURCE_RE = re.compile(r"[a-z][a-z0-9-]*")


class Accept:
    """The versions one subscriber understands, per event type; hashable."""

    __slots__ = ("_hash", "_rules")

    def __init__(self, rules: Mapping[str, Iterable[int]]) -> None:
        self._rules = {key: frozenset(versions) for key, versions in rules.items()}
        self._hash = hash(frozenset(self._rules.items()))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Accept) and self._rules == other._rules

    def __repr__(self) -> str:
        shown = {k: sorted(v) for k, v in sorted(self._rules.items())}
        return f"Accept({shown})"

    def for_event(self, resource: str, event: str) -> frozenset[int] | None:
        """The versions accepted for ``resource``'s ``event``; None if nothing was said."""
        rules = self._rules
        found = rules.get(f"{resource}.{event}")
        if found is None:
            found = rules.get(f"{resource}.*")
        if found is None:
            found = rules.get("*")
        return found

    def to_wire(self) -> dict[str, list[int]]:
        """The ``versions`` argument that parses back to this Accept."""
        return {key: sorted(versions) for key, versions in sorted(self._rules.items())}


def _key_error(key: str) -> str | None:
    if key == "*":
        return None
    resource, dot, event = key.partition(".")
    if not dot or _RESOURCE_RE.fullmatch(resource) is None:
        return "expected '*', 'resource.*' or 'resource.EVENT', such as 'gift-list.UPDATED'"
    if event != "*" and not is_event_type(event):
        return "the event type must be UPPER_SNAKE_CASE or '*'"
    return None


def parse_accept(raw: object, field: str = "data.payload.versions") -> Accept | None:
    """SUBSCRIBE's ``versions`` argument as an Accept; None when absent.

    Raises ValidationFailed naming every bad key and list.
    """
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ValidationFailed([(field, "expected an object of event keys to version lists")])
    errors: list[FieldError] = []
    for key, versions in raw.items():
        where = f"{field}.{key}"
        problem = _key_error(key)
        if problem is not None:
            errors.append((where, problem))
        elif (
            not isinstance(versions, list)
            or not versions
            or not all(type(v) is int and v >= 1 for v in versions)
        ):
            errors.append((where, "expected a non-empty list of versions (integers of at least 1)"))
    if errors:
        raise ValidationFailed(errors)
    return Accept(raw)


@dataclass(frozen=True, slots=True)
class UnsupportedVersion:
    """No version a subscriber accepts can be produced for this event."""

    topic: str
    event: str
    version: int
    accepted: tuple[int, ...]
    available: tuple[int, ...]
    reason: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """``(topic, event)``: a subscriber is told once per event type and topic."""
        return self.topic, self.event

    def to_payload(self) -> dict[str, Any]:
        """The ``{code, message, details}`` payload of the ERROR event."""
        message = (
            f"{self.event} on {self.topic} is published at version {self.version};"
            f" you accept {list(self.accepted)} and it converts to {list(self.available)}"
        )
        details: dict[str, Any] = {
            "topic": self.topic,
            "event": self.event,
            "version": self.version,
            "accepted": list(self.accepted),
            "available": list(self.available),
        }
        return {"code": UNSUPPORTED_VERSION, "message": message, "details": details}


def _convert(
    spec: EventSpec, payload: Any, published: int, targets: frozenset[int]
) -> dict[int, Any]:
    """Each target once; a failing converter costs only the targets behind it."""
    try:
        done = spec.chain.convert_many(payload, published, targets)
    except ConversionError:
        done = {}
        for target in targets:
            try:
                done[target] = spec.chain.convert(
                    orjson.loads(dump_json(payload)), published, target
                )
            except ConversionError:
                continue
    for version, converted in list(done.items()):
        if spec.versions[version].payload.check(dump_json(converted)):
            del done[version]  # a converter that breaks its own target schema
    return done


def route_versions(
    catalog: Catalog, topic: str, body: bytes, groups: Iterable[Accept | None]
) -> dict[Accept | None, bytes | UnsupportedVersion]:
    """What each group of subscribers gets for one encoded event ``body`` (without ``seq``).

    Groups that declared nothing for this event type get ``body`` itself;
    others get it re-encoded at their version, or an UnsupportedVersion.
    Without any Accept in ``groups`` the body is not even decoded.
    """
    distinct = set(groups)
    if all(group is None for group in distinct):
        return dict.fromkeys(distinct, body)
    head = orjson.loads(body)
    event = head.get("event")
    resource = catalog.resource_name(topic)
    spec = catalog.spec(resource, event) if isinstance(event, str) else None
    wanted = {
        g: None if g is None or spec is None else g.for_event(resource, spec.name) for g in distinct
    }
    if spec is None or all(w is None for w in wanted.values()):
        return dict.fromkeys(distinct, body)
    published = head.get("version") or 1
    plan = plan_versions(spec.chain, published, wanted.values())
    converted = (
        _convert(spec, head["data"]["payload"], published, plan.produce) if plan.produce else {}
    )
    bodies: dict[int, bytes] = {published: body}
    for version, payload in converted.items():
        bodies[version] = orjson.dumps(
            {**head, "data": {**head["data"], "payload": payload}, "version": version}
        )
    available = tuple(sorted(spec.chain.reachable(published))) if published in spec.versions else ()
    routed: dict[Accept | None, bytes | UnsupportedVersion] = {}
    for group, accepted in wanted.items():
        target = plan.targets[accepted]
        if target is not None and target in bodies:
            routed[group] = bodies[target]
            continue
        reason = "" if target is None else f"converting to version {target} failed"
        shown = tuple(sorted(accepted or ()))
        routed[group] = UnsupportedVersion(topic, spec.name, published, shown, available, reason)
    return routed
