"""The seed's ``WebSocketEvent`` as Pydantic models, and its wire encoding.

Two shapes of one envelope:

- ``NewEvent`` is what a publisher sends: strict, unknown fields rejected
  (a typo such as ``trace-id`` must not vanish), ``timestamp`` optional
  because the server stamps it, ``seq`` forbidden because the server assigns it.
  Its ``topic`` is publishable by construction: an exact topic, no pattern,
  nothing in the server's reserved namespaces, however the event is built.
- ``Event`` is what a subscriber receives: ``timestamp`` always present and
  ``seq``, the event's position in its topic, added by the server. Unknown
  fields are ignored so that older clients keep working as the server grows.

Absent optional fields are left out on the wire, never sent as ``null``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

from eventwire.errors import FieldError, ProtocolError, ValidationFailed
from eventwire.topics import validate_topic

__all__ = [
    "STANDARD_EVENTS",
    "Event",
    "EventData",
    "NewEvent",
    "NewEventData",
    "decode_new_event",
    "encode_event",
    "field_errors",
    "format_timestamp",
    "is_event_type",
    "splice_seq",
    "utc_now",
]

STANDARD_EVENTS = ("ADDED", "UPDATED", "DELETED", "STATUS_CHANGED")
"""The seed's CRUD and status events; any other UPPER_SNAKE_CASE name is a custom event."""

# The seed's anti-pattern: `event: "update"` (inconsistent casing); use `UPDATED`.
_EVENT_TYPE_RE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")
_MAX_EVENT_TYPE = 64

Identifier = Annotated[StrictStr, Field(min_length=1, max_length=256)]


def is_event_type(name: object) -> bool:
    """Whether ``name`` is a valid event type (UPPER_SNAKE_CASE, at most 64 chars)."""
    return (
        isinstance(name, str)
        and len(name) <= _MAX_EVENT_TYPE
        and _EVENT_TYPE_RE.fullmatch(name) is not None
    )


def _check_event_type(name: str) -> str:
    if not is_event_type(name):
        raise ValueError(
            "must be UPPER_SNAKE_CASE of at most 64 characters, such as UPDATED or USER_JOINED"
        )
    return name


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds: ``2026-11-25T21:00:00.123Z``."""
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    return utc.isoformat(timespec="milliseconds").removesuffix("+00:00") + "Z"


class _DataFields(BaseModel):
    entity_id: Identifier
    payload: Any = None
    user_id: Identifier | None = None
    tenant_id: Identifier | None = None


class NewEventData(_DataFields):
    """``data`` of a published event; the server stamps a missing timestamp."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timestamp: AwareDatetime | None = None

    @field_validator("timestamp", mode="before")
    @classmethod
    def _iso_text(cls, value: object) -> object:
        # The seed: "timestamp: string; // ISO 8601". Numbers are not timestamps.
        if value is not None and not isinstance(value, str | datetime):
            raise ValueError("expected an ISO 8601 string with a timezone")
        return value

    @field_validator("timestamp")
    @classmethod
    def _in_utc_range(cls, value: datetime | None) -> datetime | None:
        if value is not None:
            try:
                value.astimezone(UTC)
            except OverflowError:
                raise ValueError("out of range once converted to UTC") from None
        return value


class EventData(_DataFields):
    """``data`` of a delivered event."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    timestamp: datetime


class _EventFields(BaseModel):
    topic: StrictStr
    event: StrictStr
    trace_id: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = None
    version: Annotated[StrictInt, Field(gt=0)] | None = None


_TOPIC_REFUSED = "topic_refused"
"""The pydantic error type of a topic ``validate_topic`` refused; its ctx keeps the refusal."""


class NewEvent(_EventFields):
    """An event as a publisher sends it.

    Building one with an unpublishable topic raises ValidationError whose
    ``topic`` error carries the INVALID_TOPIC or RESERVED_TOPIC refusal;
    ``decode_new_event`` raises that refusal itself.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    data: NewEventData

    @field_validator("topic", mode="before")  # before StrictStr: a number is INVALID_TOPIC too
    @classmethod
    def _publishable(cls, topic: object) -> object:
        try:
            return validate_topic(topic)
        except ProtocolError as exc:  # pydantic wraps only its own errors and ValueError
            raise PydanticCustomError(_TOPIC_REFUSED, "{refusal}", {"refusal": exc}) from None

    @field_validator("event")
    @classmethod
    def _event_type(cls, name: str) -> str:
        return _check_event_type(name)


class Event(_EventFields):
    """An event as a subscriber receives it, with its ``seq`` in its topic."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    data: EventData
    seq: StrictInt | None = None

    @property
    def entity_id(self) -> str:
        return self.data.entity_id

    @property
    def payload(self) -> Any:
        return self.data.payload


def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    """Pydantic's errors as ``(dotted field, problem)`` pairs, in the seed's words."""
    found: list[FieldError] = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in (prefix, *error["loc"]) if part != "")
        kind = error["type"]
        if kind == "missing":
            problem = "required"
        elif kind == "extra_forbidden":
            problem = "assigned by the server" if field == "seq" else "unknown field"
        else:
            problem = str(error["msg"]).removeprefix("Value error, ")
        found.append((field or "(root)", problem))
    return found


def decode_new_event(raw: object) -> NewEvent:
    """Validate one published event (a decoded JSON value).

    Raises ProtocolError: INVALID_TOPIC or RESERVED_TOPIC for the topic,
    VALIDATION_ERROR naming every other field that failed.
    """
    if not isinstance(raw, dict):
        raise ValidationFailed([("(root)", "expected a JSON object")])
    try:
        return NewEvent.model_validate(raw)
    except ValidationError as exc:
        raise _refusal_of(exc) from None


def _refusal_of(exc: ValidationError) -> ProtocolError:
    """The ProtocolError for a NewEvent that failed to build.

    The topic's refusal comes first, as it is (INVALID_TOPIC or RESERVED_TOPIC
    with ``details.topic``); otherwise VALIDATION_ERROR names every field.
    """
    for error in exc.errors(include_url=False):
        refusal = error.get("ctx", {}).get("refusal") if error["type"] == _TOPIC_REFUSED else None
        if isinstance(refusal, ProtocolError):  # a copy: batch_error adds to its details
            return ProtocolError(refusal.code, refusal.message, dict(refusal.details))
    return ValidationFailed(field_errors(exc))


def encode_event(event: NewEvent, payload_json: bytes, now: datetime) -> bytes:
    """The delivered JSON of ``event``, without ``seq``, with ``payload_json`` embedded as is.

    The payload is encoded by the caller (who needs its size anyway) and
    embedded with ``orjson.Fragment``, so the event is encoded exactly once.
    """
    data = event.data
    wire_data: dict[str, Any] = {
        "entity_id": data.entity_id,
        "payload": orjson.Fragment(payload_json),
    }
    if data.user_id is not None:
        wire_data["user_id"] = data.user_id
    if data.tenant_id is not None:
        wire_data["tenant_id"] = data.tenant_id
    wire_data["timestamp"] = format_timestamp(data.timestamp or now)
    wire: dict[str, Any] = {"topic": event.topic, "event": event.event, "data": wire_data}
    if event.trace_id is not None:
        wire["trace_id"] = event.trace_id
    if event.version is not None:
        wire["version"] = event.version
    return orjson.dumps(wire)


def splice_seq(body: bytes, seq: int) -> bytes:
    """Add ``"seq": seq`` to an encoded event by rewriting its closing brace.

    Brokers store and move the body without ``seq``; this turns it into the
    delivered event with one copy of bytes instead of a second encoding.
    """
    return b'%b,"seq":%d}' % (body[:-1], seq)
