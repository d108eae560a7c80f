"""The native listener's per-socket protocol: HTTP/1.1 with h11 until a WebSocket upgrade.

A plain request goes to the HTTP API. A WebSocket upgrade on the gateway's
path is handed, raw bytes and all, to websockets' Sans-I/O handshake; on 101
the transport is given to a WebSocketConnection and this object is dropped,
so an open WebSocket carries no HTTP state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, cast

import h11
from websockets.http11 import Request as WsRequest

from eventwire.auth.limits import Ticket
from eventwire.codes import ErrorCode
from eventwire.errors import ProtocolError
from eventwire.server.guard import HandshakeRefused, origin_of, token_from_query
from eventwire.server.http_api import HttpRequest, HttpResponse
from eventwire.server.ws_connection import FrameParser, WebSocketConnection

if TYPE_CHECKING:
    from eventwire.server.gateway import Gateway

__all__ = ["HttpProtocol"]

log = logging.getLogger("eventwire.http")

_MAX_HEAD = 16 * 1024


def _is_upgrade(request: h11.Request) -> bool:
    for name, value in request.headers:
        if name == b"upgrade" and value.lower() == b"websocket":
            return True
    return False


class HttpProtocol(asyncio.Protocol):
    """One TCP connection while it speaks HTTP."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD)
        self._transport: asyncio.Transport | None = None
        self._head: bytearray | None = bytearray()  # this request's raw bytes, for a handshake
        self._request: h11.Request | None = None
        self._body = bytearray()
        self._busy = False
        self._task: asyncio.Task[None] | None = None
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self._gateway.http_connections.add(self)
        self._arm_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._gateway.http_connections.discard(self)
        self._disarm_deadline()
        if self._task is not None:
            self._task.cancel()

    def close_if_idle(self) -> None:
        """Shutdown: end a kept-alive connection now, or a busy one after its response."""
        if self._transport is not None and not self._busy:
            self._transport.close()

    def _arm_deadline(self) -> None:
        """A whole request must arrive within ``http_timeout``: idle or trickling peers go."""
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self._gateway.settings.http_timeout, self._expire)

    def _disarm_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        if self._transport is not None and not self._busy:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        if self._head is not None:
            self._head += data
        self._h11.receive_data(data)
        self._advance()

    def eof_received(self) -> bool | None:
        self._h11.receive_data(b"")
        self._advance()
        return None

    def _advance(self) -> None:
        limit = self._gateway.settings.max_http_body
        while not self._busy and self._transport is not None:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                self._fail(exc.error_status_hint, str(exc))
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                if _is_upgrade(event):
                    self._upgrade(event)
                    return
                self._head = None
                self._request = event
                self._body.clear()
                length = h11_content_length(event)
                if length is not None and length > limit:
                    self._reject_body(limit)
                    return
            elif isinstance(event, h11.Data):
                self._body += event.data
                if len(self._body) > limit:
                    self._reject_body(limit)
                    return
            elif isinstance(event, h11.EndOfMessage):
                self._disarm_deadline()
                self._busy = True
                self._transport.pause_reading()
                self._task = asyncio.get_running_loop().create_task(self._respond())
            elif isinstance(event, h11.ConnectionClosed):
                self._transport.close()
                return

    async def _respond(self) -> None:
        request = self._request
        assert request is not None
        path, _, query = request.target.decode("latin-1").partition("?")
        headers = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in request.headers
        }
        method = request.method.decode("ascii")
        api_request = HttpRequest(method, path, headers, bytes(self._body), query)
        response = await self._gateway.http_api.handle(api_request)
        self._send(response)
        if self._transport is None or self._transport.is_closing():
            return
        if self._h11.our_state is h11.MUST_CLOSE or self._gateway.stopping:
            self._transport.close()
            return
        self._h11.start_next_cycle()
        # The next request may be a WebSocket handshake on this kept-alive
        # connection (Node's fetch and WebSocket share a pool): keep its bytes.
        self._head = bytearray(self._h11.trailing_data[0])
        self._arm_deadline()
        self._busy = False
        self._task = None
        self._transport.resume_reading()
        self._advance()

    def _send(self, response: HttpResponse, close: bool = False) -> None:
        assert self._transport is not None
        headers = [
            ("content-type", response.content_type),
            ("content-length", str(len(response.body))),
            ("server", "eventwire"),
            *response.headers,
        ]
        if close:
            headers.append(("connection", "close"))
        out = self._h11.send(h11.Response(status_code=response.status, headers=headers))
        out += self._h11.send(h11.Data(data=response.body)) or b""
        out += self._h11.send(h11.EndOfMessage()) or b""
        self._transport.write(out)

    def _reject_body(self, limit: int) -> None:
        error = ProtocolError(
            ErrorCode.PAYLOAD_TOO_LARGE, f"request body over {limit} bytes", {"limit": limit}
        )
        self._gateway.metrics.errors.labels(error.code.value).inc()
        self._send(HttpResponse.error(error), close=True)
        assert self._transport is not None
        self._transport.close()

    def _fail(self, status: int, message: str) -> None:
        assert self._transport is not None
        body = ProtocolError(ErrorCode.BAD_REQUEST, message)
        if self._h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            with contextlib.suppress(h11.LocalProtocolError):
                self._send(HttpResponse(status, HttpResponse.error(body).body), close=True)
        self._transport.close()

    def _upgrade(self, request: h11.Request) -> None:
        self._disarm_deadline()
        transport = self._transport
        assert transport is not None
        gateway = self._gateway
        ws = FrameParser(max_size=gateway.settings.max_frame)
        assert self._head is not None  # kept from the start of every request
        ws.receive_data(bytes(self._head))
        self._head = None
        handshake = [e for e in ws.events_received() if isinstance(e, WsRequest)]
        # The target may carry ?token=: it is never logged, nor echoed in an answer.
        path, _, query = request.target.decode("latin-1").partition("?")
        token = token_from_query(query)
        ticket: Ticket | None = None
        if not handshake:
            response = ws.reject(400, "malformed WebSocket handshake\n")
        elif path != gateway.ws_path:
            response = ws.reject(404, f"WebSockets are served on {gateway.ws_path}\n")
        elif gateway.stopping:
            response = ws.reject(503, "the gateway is shutting down\n")
        else:
            try:
                origin = origin_of(handshake[0].headers.get_all("Origin"))
                ticket = gateway.admit(origin, _peer_ip(transport), token)
            except HandshakeRefused as refusal:
                response = ws.reject(refusal.status, refusal.message + "\n")
            else:
                response = ws.accept(handshake[0])
        ws.send_response(response)
        for chunk in ws.data_to_send():
            if chunk:
                transport.write(chunk)
            else:
                transport.close()
        if response.status_code != 101:
            gateway.guard.release(ticket)
            return
        connection = WebSocketConnection(
            gateway, transport, ws, gateway.write_batcher, ticket, token
        )
        gateway.http_connections.discard(self)
        transport.set_protocol(connection)
        connection.start()


def _peer_ip(transport: asyncio.BaseTransport) -> str | None:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else None


def h11_content_length(request: h11.Request) -> int | None:
    for name, value in request.headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
