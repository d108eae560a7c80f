"""The native listener's per-socket protocol: HTTP/1.1 with h11 until a WebSocket upgrade.

A plain request goes to the HTTP API; a WebSocket upgrade on the gateway's
path is checked (Origin, caps) and accepted with websockets' Sans-I/O
server from the request h11 parsed, and the transport is handed to a
WebSocketConnection: an open WebSocket carries no HTTP state.

What a peer sends is bounded before it costs anything:

- the request head: 16 KiB in all (431), its request line 8 KiB (414),
  one header line 8 KiB (431), the whole request within ``http_timeout``;
- the body: a request the API refuses from its head (unknown path, method,
  key) is answered without reading its body, and so is one that announces
  more than ``max_http_body`` (413); such answers close the connection. An
  ``Expect: 100-continue`` is answered 100 only once the head was accepted.
- pipelined requests are read one at a time: reading pauses while a
  response is being made, then the next request is taken from the buffer.

HEAD is answered like GET without its body; a request's failure is logged
once, with the connection's id, and ends that connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, cast

import h11

from eventwire.auth.limits import Ticket
from eventwire.codes import ErrorCode, http_status
from eventwire.errors import ProtocolError
from eventwire.server.guard import HandshakeRefused, origin_of, token_from_query
from eventwire.server.handshake import HandshakeInvalid, switching_protocols
from eventwire.server.http_api import HttpRequest, HttpResponse
from eventwire.server.pages import Headers
from eventwire.server.ws_connection import WebSocketConnection

if TYPE_CHECKING:
    from eventwire.server.gateway import Gateway

__all__ = ["HttpProtocol"]

log = logging.getLogger("eventwire.http")

MAX_HEAD = 16 * 1024
"""Bytes of a request's head (request line and headers)."""
MAX_LINE = 8 * 1024
"""Bytes of the request line, and of one header line."""
_LINGER, _LINGER_BYTES = 2.0, 32 * 1024 * 1024
"""How long, and how much, a refused peer's body is discarded before the socket closes."""
_PER_TURN = 8
"""Pipelined requests answered in one loop turn, before the others get theirs."""
_ids = itertools.count(1)


class HttpProtocol(asyncio.Protocol):
    """One TCP connection while it speaks HTTP."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._id = next(_ids)
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self._transport: asyncio.Transport | None = None
        self._peer: str | None = None
        self._request: HttpRequest | None = None
        self._body = bytearray()
        self._busy = False
        self._task: asyncio.Task[None] | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._later: asyncio.Handle | None = None  # pipelined requests left for the next turn
        self._answered = 0  # requests answered in this turn
        self._refusal: HttpResponse | None = None  # this request's answer, from its head
        self._lingering: int | None = None  # bytes discarded since the answer that ends us
        self._received = 0  # bytes read since this request began (at least)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        peer = transport.get_extra_info("peername")
        self._peer = str(peer[0]) if isinstance(peer, tuple) and peer else None
        self._gateway.http_connections.add(self)
        self._arm_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._gateway.http_connections.discard(self)
        self._disarm_deadline()
        self._transport = None
        if self._task is not None:
            self._task.cancel()
        if self._later is not None:
            self._later.cancel()

    def close_if_idle(self) -> None:
        """Shutdown: end a kept-alive connection now, or a busy one after its response."""
        if self._transport is not None and not self._busy:
            self._transport.close()

    # -- the request deadline --------------------------------------------------------

    def _arm_deadline(self) -> None:
        """A whole request must arrive within ``http_timeout``: idle or trickling peers go."""
        self._disarm_deadline()
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self._gateway.settings.http_timeout, self._expire)

    def _disarm_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        if self._transport is not None and not self._busy:
            self._transport.close()

    # -- reading ---------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._lingering is not None:
            self._linger(data)
            return
        self._received += len(data)
        self._h11.receive_data(data)
        self._advance()

    def eof_received(self) -> bool | None:
        if self._lingering is not None:
            return None  # closes the transport: the answer was written first
        self._h11.receive_data(b"")
        self._advance()
        return None

    def _advance(self) -> None:
        """Act on the events h11 has, until it needs more bytes or a response is being made.

        At most ``_PER_TURN`` requests are answered at once; pipelined ones
        past that wait for the next loop turn, with reading paused.
        """
        self._answered = 0
        while not self._busy and self._transport is not None and self._lingering is None:
            if self._answered >= _PER_TURN:
                self._transport.pause_reading()
                self._later = asyncio.get_running_loop().call_soon(self._resume)
                return
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                self._refuse_head(exc)
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self._begin(event)
            elif isinstance(event, h11.Data):
                self._body += event.data
                if len(self._body) > self._gateway.settings.max_http_body:
                    self._too_large()
            elif isinstance(event, h11.EndOfMessage):
                if self._refusal is not None:
                    self._respond_now(self._refusal)
                else:
                    self._respond_soon()
            elif isinstance(event, h11.ConnectionClosed):
                self._transport.close()
                return

    def _resume(self) -> None:
        self._later = None
        if self._transport is not None:
            self._transport.resume_reading()
            self._advance()

    def _begin(self, event: h11.Request) -> None:
        """A request's head arrived: refuse it, upgrade it, or get ready for its body."""
        self._request = request = _http_request(event)
        self._body = bytearray()
        status = _head_status(event, long_lines=self._received > MAX_LINE)
        if status is not None:
            self._refuse(status, ProtocolError(ErrorCode.BAD_REQUEST, _HEAD_ERRORS[status]))
            return
        if request.headers.get("upgrade", "").lower() == "websocket":
            if _has_body(request.headers):  # its bytes would be read as frames
                error = ProtocolError(ErrorCode.BAD_REQUEST, "a WebSocket handshake has no body")
                self._refuse(400, error)
            else:
                self._upgrade(event, request)
            return
        refusal = self._gateway.http_api.precheck(request)
        if refusal is not None:
            if _has_body(request.headers):
                self._answer_and_close(refusal)  # its body is never read
            else:
                self._refusal = refusal  # answered at its end, right behind
            return
        length = _content_length(request.headers)
        if length is not None and length > self._gateway.settings.max_http_body:
            self._too_large()
        elif self._h11.they_are_waiting_for_100_continue:
            self._write(self._h11.send(h11.InformationalResponse(status_code=100, headers=[])))

    def _refuse_head(self, exc: h11.RemoteProtocolError) -> None:
        """h11 could not read the request: too long (414, 431), or malformed (400)."""
        self._request = None
        status = exc.error_status_hint
        if status == 431 and b"\r\n" not in bytes(self._h11.trailing_data[0][: MAX_LINE + 2]):
            status = 414  # the request line alone is too long
        message = _HEAD_ERRORS.get(status, str(exc)[:200])
        self._refuse(status, ProtocolError(ErrorCode.BAD_REQUEST, message))

    def _too_large(self) -> None:
        limit = self._gateway.settings.max_http_body
        error = ProtocolError(
            ErrorCode.PAYLOAD_TOO_LARGE, f"request body over {limit} bytes", {"limit": limit}
        )
        self._refuse(413, error)

    def _refuse(self, status: int, error: ProtocolError, headers: Headers = ()) -> None:
        """Answer ``status`` with ``error`` (and the API's headers), then close."""
        request = self._request or HttpRequest("GET", "/")
        response = self._gateway.http_api.refuse(request, error)
        headers = (*response.headers, *headers)
        self._answer_and_close(replace(response, status=status, headers=headers))

    # -- responding ------------------------------------------------------------------

    def _respond_soon(self) -> None:
        """The request is whole: answer it in a task, reading nothing more meanwhile."""
        assert self._transport is not None
        self._disarm_deadline()
        self._busy = True
        self._transport.pause_reading()
        self._task = asyncio.get_running_loop().create_task(self._respond())
        self._task.add_done_callback(self._responded)

    async def _respond(self) -> None:
        request = self._request
        assert request is not None
        request = replace(request, body=bytes(self._body))
        self._body = bytearray()
        self._send(await self._gateway.http_api.handle(request))
        if self._next_cycle():
            self._advance()

    def _responded(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or (error := task.exception()) is None:
            return
        log.error("HTTP connection %d failed", self._id, exc_info=error)
        if self._transport is not None:
            self._transport.abort()

    def _respond_now(self, response: HttpResponse) -> None:
        """Answer a request refused from its head (``_advance`` reads on)."""
        self._refusal = None
        self._send(response)
        self._answered += 1
        self._next_cycle()

    def _next_cycle(self) -> bool:
        """After a response: close, or get ready for the next request; True if ready."""
        self._busy = False
        self._task = None
        transport = self._transport
        if transport is None or transport.is_closing():
            return False
        if self._h11.our_state is not h11.DONE or self._gateway.stopping:
            transport.close()
            return False
        try:
            self._h11.start_next_cycle()
        except h11.LocalProtocolError:  # the request's body was left unread
            transport.close()
            return False
        self._received = len(self._h11.trailing_data[0])  # the next request's, read already
        self._arm_deadline()
        transport.resume_reading()
        return True

    def _send(self, response: HttpResponse, close: bool = False) -> None:
        headers = [("server", "eventwire"), *response.headers]
        if response.status != 204:  # RFC 9110 8.6: no Content-Length with a 204
            headers += [
                ("content-type", response.content_type),
                ("content-length", str(len(response.body))),
            ]
        if close:
            headers.append(("connection", "close"))
        h11_conn = self._h11
        out = h11_conn.send(h11.Response(status_code=response.status, headers=headers))
        request = self._request
        if response.body and not (request is not None and request.method == "HEAD"):
            out += h11_conn.send(h11.Data(data=response.body)) or b""
        out += h11_conn.send(h11.EndOfMessage()) or b""
        self._write(out)

    def _answer_and_close(self, response: HttpResponse) -> None:
        """Answer (if h11 still may) and close: what else the peer sent is never parsed.

        A peer may still be sending a body we refused. Closing a socket with
        unread bytes resets it, and a reset can destroy our answer before the
        peer reads it; so we end our side, then discard what arrives for up to
        ``_LINGER`` seconds and ``_LINGER_BYTES`` bytes before closing.
        """
        if self._h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            with contextlib.suppress(h11.LocalProtocolError):
                self._send(response, close=True)
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        self._disarm_deadline()
        self._lingering = 0
        if transport.can_write_eof():
            transport.write_eof()
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(_LINGER, transport.close)

    def _linger(self, data: bytes) -> None:
        """Discard what a refused peer still sends, within bounds."""
        self._lingering = (self._lingering or 0) + len(data)
        if self._lingering > _LINGER_BYTES and self._transport is not None:
            self._transport.close()

    def _write(self, data: bytes | None) -> None:
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    # -- the WebSocket upgrade -------------------------------------------------------

    def _upgrade(self, event: h11.Request, request: HttpRequest) -> None:
        """Accept or refuse a WebSocket handshake; on 101, hand the socket over."""
        self._disarm_deadline()
        gateway = self._gateway
        # The target may carry ?token=: it is never logged, nor echoed in an answer.
        token = token_from_query(request.query)
        try:
            answer = self._handshake(event, request, token)
        except (HandshakeInvalid, HandshakeRefused, ProtocolError) as refusal:
            self._refuse_handshake(request, refusal)
            return
        transport, ticket, switching = answer
        connection = WebSocketConnection(gateway, transport, gateway.write_batcher, ticket, token)
        gateway.http_connections.discard(self)
        transport.set_protocol(connection)
        self._transport = None  # the socket is the WebSocket's now
        leftover = self._h11.trailing_data[0]
        connection.start(switching)
        if leftover:  # frames the client sent right behind its handshake
            connection.data_received(bytes(leftover))

    def _handshake(
        self, event: h11.Request, request: HttpRequest, token: str | None
    ) -> tuple[asyncio.Transport, Ticket, bytes]:
        """Check the handshake and admit the connection; the 101 to send. Raises if refused."""
        gateway, transport = self._gateway, self._transport
        assert transport is not None
        if request.path != gateway.ws_path:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"WebSockets are served on {gateway.ws_path}")
        if gateway.stopping:
            raise ProtocolError(ErrorCode.SHUTTING_DOWN, "the gateway is shutting down")
        version = event.http_version.decode("ascii")
        answer = switching_protocols(request.method, version, request.headers)
        origin = origin_of([v.decode("latin-1") for k, v in event.headers if k == b"origin"])
        ip = gateway.guard.client_addresses.client_of(self._peer, request.headers)
        return transport, gateway.admit(origin, ip, token), answer

    def _refuse_handshake(
        self, request: HttpRequest, refusal: HandshakeInvalid | HandshakeRefused | ProtocolError
    ) -> None:
        if isinstance(refusal, ProtocolError):
            self._refuse(http_status(refusal.code), refusal)
            return
        if isinstance(refusal, HandshakeRefused):
            self._refuse(refusal.status, ProtocolError(refusal.code, refusal.message))
            return
        code = _HANDSHAKE_CODES.get(refusal.status, ErrorCode.BAD_REQUEST)
        self._refuse(refusal.status, ProtocolError(code, refusal.message), refusal.headers)


_HANDSHAKE_CODES = {405: ErrorCode.METHOD_NOT_ALLOWED, 426: ErrorCode.UPGRADE_REQUIRED}
_HEAD_ERRORS = {414: "request line too long", 431: "request head too large"}
MAX_HEADERS = 100
"""Header lines of one request."""


def _head_status(event: h11.Request, *, long_lines: bool) -> int | None:
    """414 for a request line over MAX_LINE; 431 for a header line over it, or too many.

    ``long_lines``: whether more than MAX_LINE bytes were read (else no line is longer).
    (The whole head fit MAX_HEAD, or h11 would have refused it.)
    """
    if len(event.headers) > MAX_HEADERS:
        return 431
    if not long_lines:
        return None
    if len(event.target) + len(event.method) + 10 > MAX_LINE:
        return 414
    if any(len(name) + len(value) + 2 > MAX_LINE for name, value in event.headers.raw_items()):
        return 431
    return None


def _http_request(event: h11.Request) -> HttpRequest:
    """The request's head for the HTTP API: names in lower case, repeated values joined."""
    path, _, query = event.target.decode("latin-1").partition("?")
    headers: dict[str, str] = {}
    for raw_name, raw_value in event.headers.raw_items():
        name, value = raw_name.lower().decode("latin-1"), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return HttpRequest(event.method.decode("ascii"), path, headers, b"", query)


def _content_length(headers: dict[str, str]) -> int | None:
    try:
        return int(headers["content-length"])
    except (KeyError, ValueError):
        return None


def _has_body(headers: dict[str, str]) -> bool:
    """Whether the request announces a body (h11 has checked that it frames one properly)."""
    return "transfer-encoding" in headers or headers.get("content-length", "0") != "0"
