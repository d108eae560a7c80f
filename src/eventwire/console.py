"""Readable, coloured lines for events on a terminal (``eventwire tail``)."""

from __future__ import annotations

from typing import Any

import orjson

from eventwire.envelope import Event, format_timestamp

__all__ = ["event_json", "format_event"]

_RESET = "\033[0m"
_DIM = "\033[2m"
_BOLD = "\033[1m"
_COLOURS = {
    "ADDED": "\033[32m",  # green
    "UPDATED": "\033[33m",  # yellow
    "DELETED": "\033[31m",  # red
    "STATUS_CHANGED": "\033[35m",  # magenta
}
_CUSTOM = "\033[36m"  # cyan
_MAX_PAYLOAD = 240


def event_json(event: Event) -> str:
    """The event as on the wire: optional fields left out, a null payload kept."""
    data: dict[str, Any] = {"entity_id": event.data.entity_id, "payload": event.data.payload}
    for name in ("user_id", "tenant_id"):
        value = getattr(event.data, name)
        if value is not None:
            data[name] = value
    data["timestamp"] = format_timestamp(event.data.timestamp)
    wire: dict[str, Any] = {"topic": event.topic, "event": event.event, "data": data}
    for name in ("trace_id", "version", "seq"):
        value = getattr(event, name)
        if value is not None:
            wire[name] = value
    return orjson.dumps(wire).decode()


def format_event(event: Event, colour: bool) -> str:
    """``time  topic  EVENT  entity  #seq  payload  user/trace``, coloured when asked."""

    def paint(text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if colour else text

    when = format_timestamp(event.data.timestamp)[11:23]
    payload = orjson.dumps(event.data.payload).decode()
    if len(payload) > _MAX_PAYLOAD:
        payload = payload[: _MAX_PAYLOAD - 1] + "…"
    parts = [
        paint(when, _DIM),
        paint(event.topic, _BOLD),
        paint(f"{event.event:<14}", _COLOURS.get(event.event, _CUSTOM)),
        event.data.entity_id,
    ]
    if event.seq is not None:
        parts.append(paint(f"#{event.seq}", _DIM))
    parts.append(payload)
    extra = [
        f"{n}={getattr(event.data, n)}" for n in ("user_id", "tenant_id") if getattr(event.data, n)
    ]
    extra += [f"trace={event.trace_id}"] if event.trace_id else []
    extra += [f"v{event.version}"] if event.version else []
    if extra:
        parts.append(paint(" ".join(extra), _DIM))
    return "  ".join(parts)
