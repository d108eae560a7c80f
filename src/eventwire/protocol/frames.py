"""Frames of wire protocol v1: decode client commands, build server frames.

Every frame is one JSON text frame holding one envelope. Commands use topic
``system``, the command as ``event``, a client-chosen request id as
``data.entity_id`` and the arguments as ``data.payload``. Replies echo the
request id. The server and the Python client both use these builders.

A client publishes an event with the PUBLISH command, the event in
``data.payload.event``: the event's own ``data.entity_id`` names its entity,
so the request id needs the command's. A bare event frame (a topic other
than ``system``) is not a command and is refused.

PRESENCE asks who is on a topic the connection is subscribed to; the
server answers PRESENCE_STATE.

SUBSCRIBE may say which versions of each event type the subscriber
understands (``versions``, parsed into an ``Accept`` by
:func:`eventwire.catalog.delivery.parse_accept`, imported only when a
frame carries it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictStr, ValidationError

from eventwire.codes import ErrorCode
from eventwire.envelope import field_errors, format_timestamp
from eventwire.errors import ProtocolError, ValidationFailed

if TYPE_CHECKING:
    from eventwire.catalog.delivery import Accept

__all__ = [
    "CONNECTION",
    "ERROR_TOPIC",
    "MAX_REQUEST_ID",
    "PROTOCOL_VERSION",
    "PUBLISHED_EVENT",
    "SYSTEM_TOPIC",
    "Auth",
    "Command",
    "Ping",
    "Presence",
    "Publish",
    "Rejected",
    "Subscribe",
    "Unsubscribe",
    "batch_error",
    "command_frame",
    "decode_command",
    "error_frame",
    "errors_at",
    "system_frame",
]

PROTOCOL_VERSION = 1
SYSTEM_TOPIC = "system"
ERROR_TOPIC = "error"
CONNECTION = "connection"
"""The ``entity_id`` of an ERROR that answers no particular request."""
MAX_REQUEST_ID = 64
PUBLISHED_EVENT = "data.payload.event"
"""Where PUBLISH carries its event: the event's failed fields are named from here."""

RequestId = Annotated[StrictStr, Field(min_length=1, max_length=MAX_REQUEST_ID)]


class _CommandData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entity_id: RequestId
    payload: Any = None
    timestamp: AwareDatetime | None = None


class _CommandFrame(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic: StrictStr
    event: StrictStr
    data: _CommandData


class _TopicsArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topics: Annotated[list[StrictStr], Field(min_length=1, max_length=1000)]


class _SubscribeArgs(_TopicsArgs):
    since: dict[str, Any] | None = None
    versions: Any = None  # checked by parse_accept, which names every bad key


class _AuthArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: StrictStr


class _PublishArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: Any


class _PresenceArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic: StrictStr


@dataclass(frozen=True, slots=True)
class Subscribe:
    request_id: str
    topics: tuple[str, ...]
    since: dict[str, Any] | None = None
    accept: Accept | None = None
    """The event versions the subscriber understands on these topics; None: as published."""


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    request_id: str
    topics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Ping:
    request_id: str


@dataclass(frozen=True, slots=True)
class Auth:
    request_id: str
    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Publish:
    """PUBLISH: a client-published event, still undecoded (``decode_new_event`` checks it)."""

    request_id: str
    event: Any


@dataclass(frozen=True, slots=True)
class Presence:
    """PRESENCE: who is on ``topic`` (one the connection is subscribed to), on every node."""

    request_id: str
    topic: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """A frame that could not be understood; answer with ``error``."""

    request_id: str
    error: ProtocolError


Command = Subscribe | Unsubscribe | Ping | Auth | Publish | Presence


def _request_id_of(raw: dict[str, Any]) -> str:
    data = raw.get("data")
    if isinstance(data, dict):
        rid = data.get("entity_id")
        if isinstance(rid, str) and 0 < len(rid) <= MAX_REQUEST_ID:
            return rid
    return CONNECTION


def _args(model: type[BaseModel], payload: Any) -> Any:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise ValidationFailed(field_errors(exc, prefix="data.payload")) from None


def decode_command(data: str | bytes) -> Command | Rejected:
    """Turn one inbound frame into a command, or into the error that answers it."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return Rejected(CONNECTION, ProtocolError(ErrorCode.INVALID_JSON, f"invalid JSON: {exc}"))
    if not isinstance(raw, dict):
        return Rejected(CONNECTION, ValidationFailed([("(root)", "expected a JSON object")]))
    request_id = _request_id_of(raw)
    try:
        if raw.get("topic") != SYSTEM_TOPIC:
            raise ProtocolError(
                ErrorCode.NOT_SUPPORTED,
                "a frame on a topic other than 'system' is not a command;"
                " clients publish with the PUBLISH command where the gateway allows it",
                {"field": "topic"},
            )
        try:
            frame = _CommandFrame.model_validate(raw)
        except ValidationError as exc:
            raise ValidationFailed(field_errors(exc)) from None
        return _command(frame)
    except ProtocolError as exc:
        return Rejected(request_id, exc)


def _command(frame: _CommandFrame) -> Command:
    rid, payload = frame.data.entity_id, frame.data.payload
    match frame.event:
        case "SUBSCRIBE":
            sub = _args(_SubscribeArgs, payload)
            return Subscribe(rid, tuple(sub.topics), sub.since, _accept(sub.versions))
        case "UNSUBSCRIBE":
            return Unsubscribe(rid, tuple(_args(_TopicsArgs, payload).topics))
        case "PING":
            return Ping(rid)
        case "AUTH":
            return Auth(rid, _args(_AuthArgs, payload).token)
        case "PUBLISH":
            return Publish(rid, _args(_PublishArgs, payload).event)
        case "PRESENCE":
            return Presence(rid, _args(_PresenceArgs, payload).topic)
        case other:
            raise ProtocolError(
                ErrorCode.UNKNOWN_COMMAND,
                f"unknown command {other[:64]!r};"
                " expected SUBSCRIBE, UNSUBSCRIBE, PING, AUTH, PUBLISH or PRESENCE",
                {"event": other[:64]},
            )


def _accept(versions: Any) -> Accept | None:
    if versions is None:
        return None
    from eventwire.catalog.delivery import parse_accept

    return parse_accept(versions)


def errors_at(error: ValidationFailed, where: str) -> ValidationFailed:
    """``error`` with its fields named from ``where`` (``events.3``, ``data.payload.event``)."""
    return ValidationFailed(
        [
            (where if name == "(root)" else f"{where}.{name}", problem)
            for name, problem in error.errors
        ]
    )


def batch_error(error: ProtocolError, index: int) -> ProtocolError:
    """The refusal of a batch's ``index``-th event: fields named ``events.{index}.*``.

    Errors without fields say which event in ``details.index``.
    """
    if isinstance(error, ValidationFailed):
        return errors_at(error, f"events.{index}")
    error.details = {**error.details, "index": index}
    return error


def system_frame(event: str, entity_id: str, payload: Any, now: datetime) -> bytes:
    """A server frame on the ``system`` topic (CONNECTED, SUBSCRIBED, PONG, ...)."""
    return orjson.dumps(
        {
            "topic": SYSTEM_TOPIC,
            "event": event,
            "data": {
                "entity_id": entity_id,
                "payload": payload,
                "timestamp": format_timestamp(now),
            },
        }
    )


def error_frame(request_id: str, error: ProtocolError, now: datetime) -> bytes:
    """The seed's error event: ``{topic: "error", event: "ERROR", data: {...}}``."""
    return orjson.dumps(
        {
            "topic": ERROR_TOPIC,
            "event": "ERROR",
            "data": {
                "entity_id": request_id,
                "payload": error.to_payload(),
                "timestamp": format_timestamp(now),
            },
        }
    )


def command_frame(command: str, request_id: str, payload: Any = None) -> bytes:
    """A client command frame; what the Python client sends."""
    return orjson.dumps(
        {
            "topic": SYSTEM_TOPIC,
            "event": command,
            "data": {"entity_id": request_id, "payload": payload},
        }
    )
