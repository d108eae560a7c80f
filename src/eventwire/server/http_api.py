"""The HTTP API, written once as request → response; both transports call it.

Routes, and the key each needs once API keys are configured::

    POST /v1/publish          one event, or {"events": [...]}   a key matching every topic
    GET  /v1/topics/{topic}   subscriber count and position     a key matching the topic
    GET  /v1/topics/{topic}/history?since=SEQ&limit=N           a key matching the topic
    GET  /v1/topics/{topic}/presence   who is on it, every node   a key matching the topic
    GET  /v1/stats            live counts for dashboards        the admin key
    POST /v1/revoke           end a user's, tenant's or topics' access   the admin key
    GET  /healthz             liveness: the process serves
    GET  /readyz              readiness: started, not stopping, broker link up
    GET  /metrics             Prometheus exposition
    GET  /inspector           the operators' page: live counts, a live tail, a test publish
    GET  /demo                the demo's gift list page (only with ``demo`` on, as its API)
    GET  /v1/catalog          the event catalog as JSON          (open; 404 without a catalog)
    GET  /asyncapi.json       the catalog as AsyncAPI 3.0        (open; 404 without a catalog)
    GET  /catalog             the catalog as a readable page     (open; 404 without a catalog)
    GET  /static/{file}       the gateway's static files (pages, the browser client)
    GET  /favicon.ico         the gateway's icon
    GET  /                    what this gateway is and where its endpoints are

Keys arrive as ``Authorization: Bearer <key>``: 401 UNAUTHORIZED without a
known key, 403 FORBIDDEN for a key without the right. Every answer carries
the security headers of ``server/pages.py``.
"""

from __future__ import annotations

import enum
import logging
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

import orjson
from pydantic import ValidationError

from eventwire import __version__
from eventwire.auth.apikeys import ApiPrincipal
from eventwire.auth.authorizer import forbidden
from eventwire.auth.errors import AuthError
from eventwire.auth.revocation import RevokeRequest
from eventwire.brokers import BrokerUnavailable, NotAvailable, history_of
from eventwire.codes import ErrorCode, http_status
from eventwire.envelope import decode_new_event, field_errors, splice_seq
from eventwire.errors import ProtocolError, ValidationFailed, broker_unavailable
from eventwire.protocol.frames import batch_error
from eventwire.server.cors import Cors
from eventwire.server.hub import EVERYONE, visible_to
from eventwire.server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from eventwire.server.pages import (
    CONTENT_TYPES,
    Headers,
    page_of,
    secured,
    static_file,
    style_policy,
)
from eventwire.topics import validate_topic

if TYPE_CHECKING:
    from eventwire.envelope import NewEvent
    from eventwire.server.demo_app import DemoApp
    from eventwire.server.gateway import Gateway

__all__ = ["HttpApi", "HttpRequest", "HttpResponse", "trace_id_from_traceparent"]

log = logging.getLogger("eventwire.http")

JSON = "application/json"
# W3C Trace Context: version "-" trace-id "-" parent-id "-" flags.
_TRACEPARENT_RE = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    """Names in lower case."""
    body: bytes = b""
    query: str = ""
    """The raw query string, without ``?``."""
    root_path: str = ""
    """Where the gateway is mounted (ASGI's ``root_path``, such as ``/realtime``), or ``""``."""
    server: str | None = None
    """``scheme://host:port`` the request came in on, if the transport knows; else the settings'."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes
    content_type: str = JSON
    headers: Headers = ()
    """More headers, names in lower case; both transports send them."""

    @classmethod
    def json(cls, value: Any, status: int = 200) -> HttpResponse:
        return cls(status, orjson.dumps(value))

    @classmethod
    def error(cls, error: ProtocolError | AuthError) -> HttpResponse:
        if isinstance(error, AuthError):
            return cls(error.http_status, orjson.dumps(error.to_payload()))
        headers: Headers = ()
        if error.code is ErrorCode.METHOD_NOT_ALLOWED:
            headers = (("allow", str(error.details.get("allowed", ""))),)
        elif error.code is ErrorCode.UPGRADE_REQUIRED:
            headers = (("upgrade", "websocket"),)
        return cls(http_status(error.code), orjson.dumps(error.to_payload()), headers=headers)


def trace_id_from_traceparent(header: str | None) -> str | None:
    """The trace id of a W3C ``traceparent`` header, or None when absent or malformed."""
    if header is None:
        return None
    match = _TRACEPARENT_RE.fullmatch(header.strip().lower())
    if match is None:
        return None
    version, trace_id, parent_id = match.groups()
    if version == "ff" or trace_id == "0" * 32 or parent_id == "0" * 16:
        return None  # invalid by the W3C rules
    return trace_id


class Access(enum.Enum):
    """What a route asks of a request's key, once API keys are configured."""

    OPEN = "open"
    KEY = "key"  # a known key; the handler checks its topics
    ADMIN = "admin"


Handler = Callable[[HttpRequest, "ApiPrincipal | None", str], Awaitable[HttpResponse]]


@dataclass(frozen=True, slots=True)
class Route:
    """Where a path leads: its methods, the key it needs, and ``argument`` (a topic, a file)."""

    methods: tuple[str, ...]
    access: Access
    handler: Handler
    argument: str = ""

    @property
    def allow(self) -> str:
        """The ``Allow`` header: GET routes answer HEAD too."""
        return ", ".join(m for method in self.methods for m in _WITH_HEAD.get(method, (method,)))


_WITH_HEAD = {"GET": ("GET", "HEAD")}


class HttpApi:
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._demo: DemoApp | None = None
        if gateway.settings.demo:
            from eventwire.server.demo_app import DemoApp

            self._demo = DemoApp(gateway)
        self._cors = Cors(gateway.settings.cors_origins)

    async def handle(self, request: HttpRequest) -> HttpResponse:
        """Answer ``request``; never raises. HEAD as GET (the transport drops the body)."""
        try:
            if self._cors.is_preflight(request.method, request.headers):
                response = self._preflight(request)
            else:
                route, principal = self._admit(request)
                response = await route.handler(request, principal, route.argument)
        except Exception as exc:
            response = self._failure(request, exc)
        return self._finish(request, response)

    def precheck(self, request: HttpRequest) -> HttpResponse | None:
        """The answer to ``request`` before its body is read, when it needs none.

        Unknown paths (404), wrong methods (405), the WebSocket path without an
        upgrade (426), missing or unknown keys (401, 403 where the admin key is
        needed) and CORS preflights are answered from the request's head alone,
        so a transport need not read, nor buffer, a body it will refuse.
        """
        try:
            if not self._cors.is_preflight(request.method, request.headers):
                self._admit(request)
                return None
            response = self._preflight(request)
        except Exception as exc:
            response = self._failure(request, exc)
        return self._finish(request, response)

    def refuse(self, request: HttpRequest, error: ProtocolError) -> HttpResponse:
        """The answer to a request a transport refuses itself (too large, malformed), counted."""
        return self._finish(request, self._failure(request, error))

    def _admit(self, request: HttpRequest) -> tuple[Route, ApiPrincipal | None]:
        """The request's route and who its key is; raises what refuses it (404, 405, 401, 403)."""
        route = self._resolve(request.path)
        method = "GET" if request.method == "HEAD" else request.method
        if method not in route.methods:
            raise ProtocolError(
                ErrorCode.METHOD_NOT_ALLOWED,
                f"use {route.allow}, not {request.method[:20]}",
                {"allowed": route.allow},
            )
        return route, self._principal(request, route.access)

    def _preflight(self, request: HttpRequest) -> HttpResponse:
        route = self._resolve(request.path)
        return HttpResponse(204, b"", headers=self._cors.preflight(_origin(request), route.allow))

    def _finish(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        headers = (*response.headers, *self._cors.headers_for(_origin(request)))
        return replace(response, headers=secured(headers))

    def _failure(self, request: HttpRequest, exc: Exception) -> HttpResponse:
        metrics = self._gateway.metrics
        if isinstance(exc, ProtocolError | AuthError):
            metrics.errors.labels(exc.code.value).inc()
            return HttpResponse.error(exc)
        if isinstance(exc, BrokerUnavailable):
            metrics.errors.labels(ErrorCode.BROKER_UNAVAILABLE.value).inc()
            return HttpResponse.error(broker_unavailable(exc))
        log.error("HTTP %s %s failed", request.method[:20], request.path[:200], exc_info=exc)
        metrics.errors.labels(ErrorCode.INTERNAL_ERROR.value).inc()
        return HttpResponse.error(ProtocolError(ErrorCode.INTERNAL_ERROR, "internal error"))

    def _resolve(self, path: str) -> Route:
        """The route of ``path``; ProtocolError NOT_FOUND when there is none."""
        route = _EXACT.get(path)
        if route is not None:
            methods, access, name = route
            return Route(methods, access, getattr(self, name))
        if path.startswith("/v1/topics/"):
            topic, kind = _topic_path(path.removeprefix("/v1/topics/"))
            return Route(("GET",), Access.KEY, getattr(self, kind), unquote(topic))
        if path == self._gateway.ws_path:
            return Route(("GET",), Access.OPEN, self._upgrade_required)
        if self._demo is not None and self._demo.handles(path):
            return Route(_DEMO_METHODS, Access.OPEN, self._demo_route)
        page = page_of(path, demo=self._demo is not None)
        if page is not None:
            return Route(("GET",), Access.OPEN, self._static, page)
        if path.startswith("/static/"):
            return Route(("GET",), Access.OPEN, self._static, path.removeprefix("/static/"))
        raise ProtocolError(
            ErrorCode.NOT_FOUND, f"no route for {path[:200]!r}", {"path": path[:200]}
        )

    def _principal(self, request: HttpRequest, access: Access) -> ApiPrincipal | None:
        """Who the request's bearer key is (None for open routes, or an open API).

        Raises AuthError: 401 without a known key, 403 for a key that is not the admin's.
        """
        keys = self._gateway.guard.api_keys
        if access is Access.OPEN or keys.open:
            return None
        header = request.headers.get("authorization")
        if access is Access.ADMIN:
            keys.authenticate_admin(header)
            return None
        return keys.authenticate(header)

    # -- handlers: (request, principal, argument) -> response ----------------------------

    async def _healthz(self, request: HttpRequest, _: ApiPrincipal | None, __: str) -> HttpResponse:
        return HttpResponse.json({"status": "ok"})

    async def _readyz(self, request: HttpRequest, _: ApiPrincipal | None, __: str) -> HttpResponse:
        if not self._gateway.ready:
            raise ProtocolError(ErrorCode.NOT_READY, "not ready to serve events")
        return HttpResponse.json({"status": "ready"})

    async def _metrics(self, request: HttpRequest, _: ApiPrincipal | None, __: str) -> HttpResponse:
        return HttpResponse(200, self._gateway.metrics.render(), METRICS_CONTENT_TYPE)

    async def _static(
        self, request: HttpRequest, _: ApiPrincipal | None, name: str
    ) -> HttpResponse:
        return HttpResponse(200, *static_file(name))

    async def _demo_route(
        self, request: HttpRequest, _: ApiPrincipal | None, __: str
    ) -> HttpResponse:
        assert self._demo is not None
        return await self._demo.handle(request)

    async def _upgrade_required(
        self, request: HttpRequest, _: ApiPrincipal | None, __: str
    ) -> HttpResponse:
        raise ProtocolError(
            ErrorCode.UPGRADE_REQUIRED,
            "this is the WebSocket endpoint: connect with a WebSocket client",
        )

    async def _publish(
        self, request: HttpRequest, principal: ApiPrincipal | None, _: str
    ) -> HttpResponse:
        body = _json_body(request)
        trace_id = trace_id_from_traceparent(request.headers.get("traceparent"))
        gateway = self._gateway
        if isinstance(body, dict) and "events" in body and "topic" not in body:
            raw_events = body["events"]
            if not isinstance(raw_events, list) or not raw_events:
                raise ValidationFailed([("events", "expected a non-empty list of events")])
            if len(raw_events) > gateway.settings.max_batch:
                raise ValidationFailed(
                    [("events", f"at most {gateway.settings.max_batch} events per request")]
                )
            events = [_decode_at(raw, i, trace_id) for i, raw in enumerate(raw_events)]
            # Every event is checked before any is published: a batch is refused whole.
            events = [_scoped(principal, e, i) for i, e in enumerate(events)]
            results = await gateway.publish_many(events, batch=True)
            return HttpResponse.json({"results": [r.to_wire() for r in results]})
        event = _scoped(principal, _decode_at(body, None, trace_id), None)
        return HttpResponse.json((await gateway.publish(event)).to_wire())

    async def _topic(
        self, request: HttpRequest, principal: ApiPrincipal | None, topic: str
    ) -> HttpResponse:
        validate_topic(topic)
        if principal is not None and not principal.can_read(topic):
            raise forbidden(topic)
        gateway = self._gateway
        position = await gateway.broker.position(topic)
        return HttpResponse.json(
            {
                "topic": topic,
                "subscribers": gateway.hub.subscriber_count(topic),
                "position": position.to_wire(),
            }
        )

    async def _history(
        self, request: HttpRequest, principal: ApiPrincipal | None, topic: str
    ) -> HttpResponse:
        validate_topic(topic)
        if principal is not None and not principal.can_read(topic):
            raise forbidden(topic)
        params = parse_qs(request.query)
        since = _int_param(params, "since", default=0, low=0, high=2**63)
        limit = _int_param(params, "limit", default=100, low=1, high=_MAX_HISTORY_PAGE)
        try:
            page = await history_of(self._gateway.broker).history(topic, since, limit)
        except NotAvailable as exc:
            raise ProtocolError(ErrorCode.NOT_SUPPORTED, str(exc)) from None
        audience = principal.tenant_id if principal is not None else EVERYONE
        events = [  # tenant in data: the same rule as live delivery and replay
            orjson.Fragment(splice_seq(body, seq))
            for seq, body in page.events
            if visible_to(audience, body)
        ]
        return HttpResponse.json(
            {
                "topic": topic,
                "position": page.position.to_wire(),
                "truncated": page.truncated,
                "has_more": page.has_more,
                "next_since": page.next_since,
                "events": events,
            }
        )

    async def _presence(
        self, request: HttpRequest, principal: ApiPrincipal | None, topic: str
    ) -> HttpResponse:
        validate_topic(topic)
        if principal is not None and not principal.can_read(topic):
            raise forbidden(topic)
        # A tenant's key sees its tenant's users and untagged ones: whose USER_JOINED it could read.
        audience = principal.tenant_id if principal is not None else EVERYONE
        return HttpResponse.json(await self._gateway.presence.state_of(topic, audience))

    async def _revoke(self, request: HttpRequest, _: ApiPrincipal | None, __: str) -> HttpResponse:
        body = _json_body(request)
        try:
            revocation = RevokeRequest.model_validate(body)
        except ValidationError as exc:
            raise ValidationFailed(field_errors(exc)) from None
        return HttpResponse.json((await self._gateway.revoke_everywhere(revocation)).to_wire())

    async def _stats(self, request: HttpRequest, _: ApiPrincipal | None, __: str) -> HttpResponse:
        return HttpResponse.json(self._stats_now())

    def _stats_now(self) -> dict[str, Any]:
        gateway = self._gateway
        sample = gateway.metrics.registry.get_sample_value
        return {
            "node": gateway.node_id,
            "pid": os.getpid(),
            "connections": len(gateway.connections),
            "topics": gateway.hub.topic_count,
            "subscriptions": int(sample("eventwire_subscriptions") or 0),
            "published": int(sample("eventwire_events_published_total") or 0),
            "deliveries": int(sample("eventwire_deliveries_total") or 0),
        }

    def _base_url(self, request: HttpRequest) -> str:
        """This gateway's URL as ``request`` reached it: its server, then its mount prefix."""
        return (request.server or self._gateway.url) + request.root_path

    def _ws_url(self, request: HttpRequest) -> str:
        return "ws" + self._base_url(request).removeprefix("http") + self._gateway.ws_path

    async def _index(self, request: HttpRequest, _: ApiPrincipal | None, __: str) -> HttpResponse:
        return HttpResponse.json(self._endpoints(request))

    def _endpoints(self, request: HttpRequest) -> dict[str, Any]:
        base = self._base_url(request)
        index = {
            "name": "eventwire",
            "version": __version__,
            "websocket": self._ws_url(request),
            "publish": f"{base}/v1/publish",
            "metrics": f"{base}/metrics",
            "inspector": f"{base}/inspector",
        }
        if self._demo is not None:
            index["demo"] = f"{base}/demo"
        if self._gateway.catalog is not None:
            index |= {"catalog": f"{base}/v1/catalog", "asyncapi": f"{base}/asyncapi.json"}
        return index

    async def _catalog(self, request: HttpRequest, _: ApiPrincipal | None, __: str) -> HttpResponse:
        """The loaded catalog as JSON, AsyncAPI (with this gateway's WebSocket URL) or HTML."""
        path, service = request.path, self._gateway.catalog_service
        if service is None or service.catalog is None:
            raise ProtocolError(
                ErrorCode.NOT_FOUND, "no event catalog is loaded on this gateway", {"path": path}
            )
        if path == "/v1/catalog":
            return HttpResponse(200, service.json_document())
        if path == "/asyncapi.json":
            return HttpResponse(200, service.asyncapi_document(self._ws_url(request)))
        from eventwire.catalog.export.html import STYLE_SOURCE

        page = service.html_page()
        return HttpResponse(200, page, CONTENT_TYPES[".html"], style_policy(STYLE_SOURCE))


_EXACT: dict[str, tuple[tuple[str, ...], Access, str]] = {
    "/v1/publish": (("POST",), Access.KEY, "_publish"),
    "/v1/revoke": (("POST",), Access.ADMIN, "_revoke"),
    "/v1/stats": (("GET",), Access.ADMIN, "_stats"),
    "/healthz": (("GET",), Access.OPEN, "_healthz"),
    "/readyz": (("GET",), Access.OPEN, "_readyz"),
    "/metrics": (("GET",), Access.OPEN, "_metrics"),
    "/v1/catalog": (("GET",), Access.OPEN, "_catalog"),
    "/asyncapi.json": (("GET",), Access.OPEN, "_catalog"),
    "/catalog": (("GET",), Access.OPEN, "_catalog"),
    "/": (("GET",), Access.OPEN, "_index"),
}
"""Paths served as they are: methods, key, and the name of the handler."""
_DEMO_METHODS = ("GET", "POST", "PATCH", "DELETE")


def _topic_path(rest: str) -> tuple[str, str]:
    """``{topic}``, ``{topic}/history`` or ``{topic}/presence``: the topic and its handler."""
    for suffix, handler in (("/history", "_history"), ("/presence", "_presence")):
        if rest.endswith(suffix):
            return rest.removesuffix(suffix), handler
    return rest, "_topic"


def _origin(request: HttpRequest) -> str | None:
    return request.headers.get("origin")


_MAX_HISTORY_PAGE = 1000


def _int_param(
    params: dict[str, list[str]], name: str, *, default: int, low: int, high: int
) -> int:
    values = params.get(name)
    if not values:
        return default
    try:
        value = int(values[-1])
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ValidationFailed([(name, f"expected an integer from {low} to {high}")])
    return value


def _json_body(request: HttpRequest) -> Any:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != JSON:
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            f"expected Content-Type: {JSON}, got {content_type or 'none'!r}",
        )
    try:
        return orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(ErrorCode.INVALID_JSON, f"invalid JSON: {exc}") from None


def _scoped(principal: ApiPrincipal | None, event: NewEvent, index: int | None) -> NewEvent:
    """``event`` as ``principal`` may publish it: tagged with a tenant-bound key's tenant.

    FORBIDDEN (with ``details.index`` in a batch) for a topic or tenant outside the key.
    """
    if principal is None:
        return event
    tenant = event.data.tenant_id
    if tenant is None and principal.tenant_id is not None:
        tenant = principal.tenant_id
        event = event.model_copy(
            update={"data": event.data.model_copy(update={"tenant_id": tenant})}
        )
    if not principal.can_publish(event.topic, tenant):
        refusal = forbidden(event.topic)
        if index is not None:
            refusal.details["index"] = index
        raise refusal
    return event


def _decode_at(raw: object, index: int | None, trace_id: str | None) -> NewEvent:
    """Decode one event of a request; in a batch, its errors name its place (``events.3``)."""
    if trace_id is not None and isinstance(raw, dict) and "trace_id" not in raw:
        raw = {**raw, "trace_id": trace_id}
    try:
        return decode_new_event(raw)
    except ProtocolError as exc:
        if index is None:
            raise
        raise batch_error(exc, index) from None
