"""Publishing events: over HTTP to any gateway, or in-process to the gateway you run.

::

    async with Publisher("http://127.0.0.1:8000") as publisher:
        await publisher.added("gift-list:123", entity_id="gift-456", payload=gift)
        await publisher.status_changed(
            "gift-list:123", entity_id="gift-456", old="available", new="purchased",
            purchased_by="user-789",
        )
        async with publisher.batch() as batch:
            batch.deleted("gift-list:123", entity_id="gift-457")
            batch.deleted("gift-list:123", entity_id="gift-458")
        print(batch.results)

The helpers (``added``, ``updated``, ``deleted``, ``status_changed``,
``emit``) are written once, in ``EventHelpers``: a publisher's helpers
publish at once and return an awaitable ``Published``; a batch's helpers
collect. Either way the gateway's refusals raise ``PublishFailed``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, Self, TypedDict, TypeVar, Unpack

import httpx
import orjson
from pydantic import BaseModel

from eventwire.catalog.modes import PayloadMode, update_payload
from eventwire.client.errors import GatewayUnreachable, publish_failed
from eventwire.errors import BrokerError, ProtocolError, PublishFailed

__all__ = [
    "Batch",
    "EventHelpers",
    "EventSink",
    "InProcessPublisher",
    "Metadata",
    "Published",
    "PublishedLike",
    "Publisher",
    "Sender",
    "envelope",
]

R = TypeVar("R")

_UNSET: Any = object()
_SERVER_FIELDS = len(b',"timestamp":"2026-01-01T00:00:00.000Z","seq":1234567890')
"""What the gateway adds to an event, for sizing ``auto`` payloads as delivered."""


@dataclass(frozen=True, slots=True)
class Published:
    """Where a published event landed: its ``seq`` in its topic."""

    topic: str
    event: str
    seq: int


class Metadata(TypedDict, total=False):
    """The envelope's optional fields; None leaves a field out."""

    user_id: str | None
    tenant_id: str | None
    trace_id: str | None
    version: int | None
    timestamp: datetime | None


def _jsonable(payload: Any) -> Any:
    return payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload


def envelope(
    topic: str, event: str, entity_id: str, payload: Any, meta: Metadata
) -> dict[str, Any]:
    """The seed's event as a publisher sends it; absent metadata is left out, never null."""
    data: dict[str, Any] = {"entity_id": entity_id, "payload": _jsonable(payload)}
    for key in ("user_id", "tenant_id"):
        if (value := meta.get(key)) is not None:
            data[key] = value
    if (timestamp := meta.get("timestamp")) is not None:
        data["timestamp"] = timestamp.isoformat()
    wire: dict[str, Any] = {"topic": topic, "event": event, "data": data}
    for key in ("trace_id", "version"):
        if (value := meta.get(key)) is not None:
            wire[key] = value
    return wire


class EventHelpers(ABC, Generic[R]):
    """The seed's event helpers, once; ``_submit`` decides what each call returns.

    Payloads may be JSON values or Pydantic models (sent as
    ``model_dump(mode="json")``). Metadata keywords: ``user_id``,
    ``tenant_id``, ``trace_id``, ``version``, ``timestamp`` (aware datetime;
    the gateway stamps the time when it is left out).
    """

    @abstractmethod
    def _submit(self, event: dict[str, Any]) -> R: ...

    def emit(
        self,
        topic: str,
        event: str,
        *,
        entity_id: str,
        payload: Any = None,
        **meta: Unpack[Metadata],
    ) -> R:
        """Any event type, such as ``USER_JOINED`` (UPPER_SNAKE_CASE, the seed's convention)."""
        return self._submit(envelope(topic, event, entity_id, payload, meta))

    def added(self, topic: str, *, entity_id: str, payload: Any, **meta: Unpack[Metadata]) -> R:
        """``ADDED``: ``payload`` is the new entity's full DTO."""
        return self.emit(topic, "ADDED", entity_id=entity_id, payload=payload, **meta)

    def updated(
        self,
        topic: str,
        *,
        entity_id: str,
        payload: Any = _UNSET,
        before: Any = None,
        after: Any = None,
        mode: PayloadMode | str = PayloadMode.AUTO,
        **meta: Unpack[Metadata],
    ) -> R:
        """``UPDATED``: give ``payload``, or ``before`` and ``after`` and let ``mode`` choose.

        ``payload`` is the full DTO, only the changed fields, or None
        (reference only). With ``after`` the payload is computed (the seed's
        three modes): ``auto`` sends the full DTO while the whole event stays
        within 10 KB and the RFC 7396 merge patch from ``before`` above it;
        ``full``, ``partial`` and ``reference`` force one.
        """
        if after is not None:
            bare = orjson.dumps(envelope(topic, "UPDATED", entity_id, None, meta))
            overhead = len(bare) - len(b"null") + _SERVER_FIELDS
            payload = update_payload(before, after, mode, overhead=overhead)
        elif payload is _UNSET:
            raise TypeError("updated() needs payload=, or after= (and before=)")
        return self.emit(topic, "UPDATED", entity_id=entity_id, payload=payload, **meta)

    def deleted(self, topic: str, *, entity_id: str, **meta: Unpack[Metadata]) -> R:
        """``DELETED``: the payload is null, as in the seed."""
        return self.emit(topic, "DELETED", entity_id=entity_id, payload=None, **meta)

    def status_changed(
        self,
        topic: str,
        *,
        entity_id: str,
        old: str,
        new: str,
        user_id: str | None = None,
        tenant_id: str | None = None,
        trace_id: str | None = None,
        version: int | None = None,
        **extra: Any,
    ) -> R:
        """``STATUS_CHANGED`` with the seed's payload ``{id, old_status, new_status, **extra}``."""
        payload = {"id": entity_id, "old_status": old, "new_status": new, **extra}
        meta = Metadata(user_id=user_id, tenant_id=tenant_id, trace_id=trace_id, version=version)
        return self.emit(topic, "STATUS_CHANGED", entity_id=entity_id, payload=payload, **meta)


class Sender(EventHelpers[Coroutine[Any, Any, Published]]):
    """Helpers that publish at once; subclasses say how a list of events travels."""

    @abstractmethod
    async def send(self, events: list[dict[str, Any]]) -> list[Published]:
        """Publish ``events`` (envelopes) in order, all or none; return each one's seq."""

    def _submit(self, event: dict[str, Any]) -> Coroutine[Any, Any, Published]:
        return self._send_one(event)

    async def _send_one(self, event: dict[str, Any]) -> Published:
        [published] = await self.send([event])
        return published

    def batch(self) -> Batch:
        """Collect events in an ``async with`` block; publish them in one request at its end."""
        return Batch(self)


class Batch(EventHelpers[None]):
    """Events collected by the helpers and published together when the block ends.

    Nothing is sent if the block raises. ``results`` holds each event's
    ``Published``, in order, once the block has ended.
    """

    def __init__(self, sender: Sender) -> None:
        self._sender = sender
        self.events: list[dict[str, Any]] = []
        self.results: list[Published] = []

    def _submit(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    async def __aenter__(self) -> Self:
        return self

    async def publish(self) -> list[Published]:
        """Publish the collected events in one request (what the block's end does)."""
        if self.events:
            self.results = await self._sender.send(self.events)
        return self.results

    async def __aexit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:
            await self.publish()


class Publisher(Sender):
    """Publishes through a gateway's HTTP API, ``POST {base_url}/v1/publish``.

    Pass ``http`` to share an ``httpx.AsyncClient`` (it is then not closed
    here); otherwise one is created with ``timeout`` and closed by
    ``aclose()`` or ``async with``. Raises ``PublishFailed`` with the
    gateway's code (``VALIDATION_ERROR``, ``PAYLOAD_TOO_LARGE``, ...),
    ``BROKER_UNAVAILABLE`` when nothing was stored (safe to retry), its
    subclass ``PublishOutcomeUnknown`` when the gateway's broker did not
    answer in time (the event may be stored: a retry may store it twice),
    and ``GatewayUnreachable`` when the request never got an answer. ``api_key``
    is sent as ``Authorization: Bearer`` when the gateway requires keys.
    """

    def __init__(
        self,
        base_url: str,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        api_key: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"content-type": "application/json"}
        if api_key is not None:  # the gateway's API keys: `Authorization: Bearer <key>`
            self._headers["authorization"] = f"Bearer {api_key}"
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout)

    async def send(self, events: list[dict[str, Any]]) -> list[Published]:
        body = events[0] if len(events) == 1 else {"events": events}
        try:
            content = orjson.dumps(body, default=_model_to_json)
        except TypeError as exc:
            raise PublishFailed("VALIDATION_ERROR", f"not JSON-serializable: {exc}") from None
        url = f"{self.base_url}/v1/publish"
        try:
            response = await self._http.post(url, content=content, headers=self._headers)
        except httpx.TransportError as exc:
            raise GatewayUnreachable(f"POST {url} failed: {exc!r}") from exc
        if response.is_error:
            raise _failure(response)
        answer = response.json()
        results = [answer] if len(events) == 1 else answer["results"]
        return [Published(r["topic"], r["event"], r["seq"]) for r in results]

    async def aclose(self) -> None:
        """Close the HTTP client if this publisher created it."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class PublishedLike(Protocol):
    """What a sink answers per event: the server's ``Published`` has this shape."""

    @property
    def topic(self) -> str: ...

    @property
    def event(self) -> str: ...

    @property
    def seq(self) -> int: ...


class EventSink(Protocol):
    """Anything that publishes a list of events in-process; ``Gateway`` is one."""

    async def publish_many(self, events: list[dict[str, Any]]) -> Sequence[PublishedLike]: ...


class InProcessPublisher(Sender):
    """The same helpers for code running inside the gateway: no HTTP, no socket.

    ``InProcessPublisher(gateway)`` publishes through ``gateway.publish_many``;
    its refusals raise ``PublishFailed`` with the same codes as over HTTP.
    """

    def __init__(self, sink: EventSink) -> None:
        self._sink = sink

    async def send(self, events: list[dict[str, Any]]) -> list[Published]:
        try:
            results = await self._sink.publish_many(events)
        except ProtocolError as exc:
            raise publish_failed(str(exc.code), exc.message, exc.details) from exc
        except BrokerError as exc:
            raise PublishFailed("INTERNAL_ERROR", str(exc)) from exc
        return [Published(r.topic, r.event, r.seq) for r in results]


def _model_to_json(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _failure(response: httpx.Response) -> PublishFailed:
    """The gateway's ``{code, message, details}`` body as PublishFailed."""
    try:
        body = response.json()
        return publish_failed(body["code"], body["message"], body.get("details"))
    except (ValueError, KeyError, TypeError):
        return PublishFailed(f"HTTP_{response.status_code}", response.text[:500])
