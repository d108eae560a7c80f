"""The native listener's per-socket protocol: HTTP/1.1 with httptools until a WebSocket upgrade.

A plain request goes to the HTTP API; a WebSocket upgrade on the gateway's
path is checked (Origin, caps, RFC 6455's handshake) and the transport is
handed to a WebSocketConnection: an open WebSocket carries no HTTP state.

httptools (llhttp) parses; what a peer sends is bounded before it costs anything:

- the request head: 16 KiB in all, 100 header lines and 8 KiB a line (431),
  its request line 8 KiB (414), the whole request within ``http_timeout``;
- the body: a request the API refuses from its head (unknown path, method,
  key) is answered without reading its body, and so is one that announces
  more than ``max_http_body`` (413); such answers close the connection. An
  ``Expect: 100-continue`` is answered 100 only once the head was accepted.
- pipelined requests are answered in order, one at a time, at most
  ``_PER_TURN`` in one loop turn; reading pauses while one is being made.

HEAD is answered like GET without its body; a request's failure is logged
once, with the connection's id, and ends that connection.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import TYPE_CHECKING, cast

import httptools

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
MAX_HEADERS = 100
"""Header lines of one request."""
_LINGER, _LINGER_BYTES = 2.0, 32 * 1024 * 1024
"""How long, and how much, a refused peer's body is discarded before the socket closes."""
_PER_TURN = 8
"""Pipelined requests answered in one loop turn, before the others get theirs."""
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_ids = itertools.count(1)


class _Refused(Exception):
    """A request answered, and the connection ended, before the request was read whole."""

    def __init__(self, response: HttpResponse) -> None:
        super().__init__(response.status)
        self.response = response


@dataclass(frozen=True, slots=True)
class _Read:
    """A request read whole, waiting for its answer: its own, if its head decided it."""

    request: HttpRequest
    answer: HttpResponse | None
    keep_alive: bool


class HttpProtocol(asyncio.Protocol):
    """One TCP connection while it speaks HTTP; also httptools' callbacks for it."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._id = next(_ids)
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._peer: str | None = None
        self._read: deque[_Read] = deque()  # read whole, not answered yet
        self._busy = False  # an answer is being made (the API awaits)
        self._task: asyncio.Task[None] | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._later: asyncio.Handle | None = None  # pipelined requests left for the next turn
        self._lingering: int | None = None  # bytes discarded since the answer that ends us
        self._eof = False  # the peer ended its side: close once its requests are answered
        self._final: _Read | None = None  # the answer that ends the connection, owed last
        self._in_head = True  # a request's head is being read (or the next one awaited)
        self._head_read = 0  # bytes of it read so far
        self._begin()

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
        for pending in (self._task, self._later):
            if pending is not None:
                pending.cancel()

    def close_if_idle(self) -> None:
        """Shutdown: end a kept-alive connection now, or a busy one after its response."""
        if self._transport is not None and not self._busy and not self._read:
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
        """Feed the parser; while a head is being read, no more of it than MAX_HEAD.

        httptools keeps an unfinished header line whole, however long: the
        bytes of a head are counted here, before they reach it.
        """
        while data and self._lingering is None:
            piece, data = data, b""
            if self._in_head:
                room = MAX_HEAD + 1 - self._head_read
                if room <= 0:
                    error = _head_error("request head too large")
                    self._fail(self._refusal(431, error), head=self._method == b"HEAD")
                    break
                piece, data = piece[:room], piece[room:]
                self._head_read += len(piece)
            try:
                self._parser.feed_data(piece)
            except httptools.HttpParserUpgrade as upgrade:
                self._upgrade(piece[int(upgrade.args[0]) :] + data)
                return
            except httptools.HttpParserCallbackError as failed:
                refused = failed.__context__
                if not isinstance(refused, _Refused):
                    raise
                self._fail(refused.response, head=self._method == b"HEAD")
            except httptools.HttpParserError as malformed:
                error = ProtocolError(ErrorCode.BAD_REQUEST, f"malformed HTTP request: {malformed}")
                self._fail(self._refusal(400, error), head=self._method == b"HEAD")
        if self._lingering is not None and self._final is None:
            self._linger(data)
            return
        self._serve()

    def _fail(self, response: HttpResponse, *, head: bool) -> None:
        """End with ``response`` (to a HEAD: ``head``), after the answers owed to the
        requests read before it; what else the peer sends is discarded from now on."""
        self._final = _Read(HttpRequest("HEAD" if head else "GET", "/"), response, False)
        self._lingering = 0

    def eof_received(self) -> bool | None:
        """The peer ended its side: answer what it asked, then close (True: keep writing)."""
        self._eof = True
        return True if self._busy or self._read or self._final is not None else None

    # httptools calls these while it parses a request.

    def _begin(self) -> None:
        self._method: bytes | None = None  # once read (its URL follows it)
        self._url = b""
        self._headers: dict[str, str] = {}
        self._origins: list[str] = []
        self._head_size = 0
        self._head: HttpRequest | None = None
        self._body = bytearray()
        self._decided: HttpResponse | None = None  # the answer its head alone decided

    def on_message_begin(self) -> None:
        self._begin()

    def on_url(self, url: bytes) -> None:
        self._method = self._parser.get_method()
        self._url += url
        if len(self._url) > MAX_LINE:
            raise _Refused(self._refusal(414, _head_error("request line too long")))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        if (
            len(name) + len(value) + 2 > MAX_LINE
            or self._head_size > MAX_HEAD
            or len(self._headers) >= MAX_HEADERS
        ):
            raise _Refused(self._refusal(431, _head_error("request head too large")))
        key, text = name.lower().decode("latin-1"), value.decode("latin-1")
        if key == "host" and key in self._headers:  # RFC 9112 3.2: a 400, not a guess
            raise _Refused(self._refusal(400, _head_error("more than one Host header")))
        if key == "origin":
            self._origins.append(text)
        headers = self._headers
        headers[key] = f"{headers[key]}, {text}" if key in headers else text

    def on_headers_complete(self) -> None:
        """The head is whole: decide what needs no body, get ready for the body."""
        self._in_head, self._head_read = False, 0
        if "host" not in self._headers and self._parser.get_http_version() != "1.0":
            raise _Refused(self._refusal(400, _head_error("no Host header")))  # RFC 9112 3.2
        path, _, query = self._url.decode("latin-1").partition("?")
        method = self._parser.get_method().decode("ascii")
        self._head = head = HttpRequest(method, path, self._headers, b"", query)
        if self._parser.should_upgrade():
            return  # httptools raises HttpParserUpgrade once the head is read
        decided = self._gateway.http_api.precheck(head)
        if decided is not None and _has_body(self._headers):
            raise _Refused(decided)  # its body is never read
        self._decided = decided
        length = _content_length(self._headers)
        if length is not None and length > self._gateway.settings.max_http_body:
            raise _Refused(self._too_large())
        if decided is None and self._headers.get("expect", "").lower() == "100-continue":
            self._write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        self._body += body
        if len(self._body) > self._gateway.settings.max_http_body:
            raise _Refused(self._too_large())

    def on_message_complete(self) -> None:
        self._in_head = True  # the next request's head, if any, comes next
        head = self._head
        if head is None or self._parser.should_upgrade():
            return
        request = replace(head, body=bytes(self._body)) if self._body else head
        self._read.append(_Read(request, self._decided, self._parser.should_keep_alive()))
        self._disarm_deadline()

    def _refusal(self, status: int, error: ProtocolError, headers: Headers = ()) -> HttpResponse:
        """``status`` with ``error`` and the API's headers, for a request the transport refuses."""
        request = self._head or HttpRequest("GET", "/")
        response = self._gateway.http_api.refuse(request, error)
        return replace(response, status=status, headers=(*response.headers, *headers))

    def _too_large(self) -> HttpResponse:
        limit = self._gateway.settings.max_http_body
        error = ProtocolError(
            ErrorCode.PAYLOAD_TOO_LARGE, f"request body over {limit} bytes", {"limit": limit}
        )
        return self._refusal(413, error)

    # -- answering ---------------------------------------------------------------------

    def _serve(self) -> None:
        """Answer the requests read, in order: at once those their head decided, others
        through the API (one at a time, reading paused meanwhile), ``_PER_TURN`` a turn."""
        answered = 0
        while self._read and not self._busy and self._transport is not None:
            if answered == _PER_TURN:
                self._pause()
                self._later = asyncio.get_running_loop().call_soon(self._resume)
                return
            read = self._read.popleft()
            if read.answer is not None:
                self._answer(read, read.answer)
                answered += 1
                continue
            self._busy = True
            self._pause()
            self._task = asyncio.get_running_loop().create_task(self._respond(read))
            self._task.add_done_callback(self._responded)
        if self._busy or self._later is not None:
            return
        if self._final is not None:
            self._answer_and_close(self._final)
        else:
            self._idle()

    def _resume(self) -> None:
        self._later = None
        self._serve()

    async def _respond(self, read: _Read) -> None:
        response = await self._gateway.http_api.handle(read.request)
        self._busy = False
        self._task = None
        self._answer(read, response)
        self._serve()

    def _responded(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or (error := task.exception()) is None:
            return
        log.error("HTTP connection %d failed", self._id, exc_info=error)
        if self._transport is not None:
            self._transport.abort()

    def _answer(self, read: _Read, response: HttpResponse) -> None:
        """Write the answer; close after it unless the connection is kept alive."""
        close = not read.keep_alive or self._gateway.stopping or self._eof
        self._write(_serialize(response, head=read.request.method == "HEAD", close=close))
        if close and self._transport is not None:
            self._read.clear()
            self._transport.close()

    def _idle(self) -> None:
        """Every request read is answered: read the next, within ``http_timeout``."""
        transport = self._transport
        if transport is None or transport.is_closing() or self._lingering is not None:
            return
        if self._eof:
            transport.close()
            return
        if self._deadline is None:
            self._arm_deadline()
        transport.resume_reading()

    def _pause(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()

    def _answer_and_close(self, final: _Read) -> None:
        """Answer and close: what else the peer sent is never parsed.

        A peer may still be sending a body we refused. Closing a socket with
        unread bytes resets it, and a reset can destroy our answer before the
        peer reads it; so we end our side, then discard what arrives for up to
        ``_LINGER`` seconds and ``_LINGER_BYTES`` bytes before closing.
        """
        transport = self._transport
        self._final = None
        if transport is None or transport.is_closing() or final.answer is None:
            return
        head = final.request.method == "HEAD"
        self._write(_serialize(final.answer, head=head, close=True))
        self._read.clear()
        self._disarm_deadline()
        self._lingering = 0
        transport.resume_reading()
        if transport.can_write_eof():
            transport.write_eof()
        self._deadline = asyncio.get_running_loop().call_later(_LINGER, transport.close)

    def _linger(self, data: bytes) -> None:
        """Discard what a refused peer still sends, within bounds."""
        self._lingering = (self._lingering or 0) + len(data)
        if self._lingering > _LINGER_BYTES and self._transport is not None:
            self._transport.close()

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    # -- the WebSocket upgrade -------------------------------------------------------

    def _upgrade(self, leftover: bytes) -> None:
        """Accept or refuse a WebSocket handshake; on 101, hand the socket over."""
        self._disarm_deadline()
        gateway, head = self._gateway, self._head
        assert head is not None
        if "websocket" not in head.headers.get("upgrade", "").lower():
            # Another protocol proposed (h2c): ignored (RFC 9110 7.8), answered as HTTP/1.1.
            self._read.append(_Read(head, gateway.http_api.precheck(head), keep_alive=False))
            self._serve()
            return
        # The target may carry ?token=: it is never logged, nor echoed in an answer.
        token = token_from_query(head.query)
        try:
            transport, ticket, switching = self._handshake(head, token)
        except (HandshakeInvalid, HandshakeRefused, ProtocolError) as refusal:
            self._fail(self._handshake_refusal(refusal), head=head.method == "HEAD")
            self._serve()
            return
        connection = WebSocketConnection(gateway, transport, gateway.write_batcher, ticket, token)
        gateway.http_connections.discard(self)
        transport.set_protocol(connection)
        self._transport = None  # the socket is the WebSocket's now
        connection.start(switching)
        if leftover:  # frames the client sent right behind its handshake
            connection.data_received(leftover)

    def _handshake(
        self, head: HttpRequest, token: str | None
    ) -> tuple[asyncio.Transport, Ticket, bytes]:
        """Check the handshake and admit the connection; the 101 to send. Raises if refused."""
        gateway, transport = self._gateway, self._transport
        assert transport is not None
        if self._read or self._busy:
            raise HandshakeInvalid(400, "a WebSocket handshake may not follow pipelined requests")
        if head.path != gateway.ws_path:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"WebSockets are served on {gateway.ws_path}")
        if gateway.stopping:
            raise ProtocolError(ErrorCode.SHUTTING_DOWN, "the gateway is shutting down")
        if _has_body(head.headers):  # its bytes would be read as frames
            raise HandshakeInvalid(400, "a WebSocket handshake has no body")
        version = self._parser.get_http_version()
        answer = switching_protocols(head.method, version, head.headers)
        ip = gateway.guard.client_addresses.client_of(self._peer, head.headers)
        return transport, gateway.admit(origin_of(self._origins), ip, token), answer

    def _handshake_refusal(
        self, refusal: HandshakeInvalid | HandshakeRefused | ProtocolError
    ) -> HttpResponse:
        if isinstance(refusal, ProtocolError):
            return self._refusal(http_status(refusal.code), refusal)
        if isinstance(refusal, HandshakeRefused):
            return self._refusal(refusal.status, ProtocolError(refusal.code, refusal.message))
        code = _HANDSHAKE_CODES.get(refusal.status, ErrorCode.BAD_REQUEST)
        return self._refusal(refusal.status, ProtocolError(code, refusal.message), refusal.headers)


_HANDSHAKE_CODES = {405: ErrorCode.METHOD_NOT_ALLOWED, 426: ErrorCode.UPGRADE_REQUIRED}


def _head_error(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_REQUEST, message)


def _serialize(response: HttpResponse, *, head: bool, close: bool) -> bytes:
    """The answer on the wire: status line, headers, body (none for HEAD or 204)."""
    status = response.status
    lines = [f"HTTP/1.1 {status} {_reason(status)}", "server: eventwire"]
    lines += [f"{name}: {value}" for name, value in response.headers if _clean(name, value)]
    if status != 204:  # RFC 9110 8.6: no Content-Length with a 204
        lines += [f"content-type: {response.content_type}", f"content-length: {len(response.body)}"]
    if close:
        lines.append("connection: close")
    wire = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return wire if head or status == 204 else wire + response.body


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _clean(name: str, value: str) -> bool:
    """Whether a header may be written as is: no line break smuggled into the answer."""
    return not any(c in name or c in value for c in "\r\n")


def _content_length(headers: dict[str, str]) -> int | None:
    try:
        return int(headers["content-length"])
    except (KeyError, ValueError):
        return None


def _has_body(headers: dict[str, str]) -> bool:
    """Whether the request announces a body (httptools has checked how it is framed)."""
    return "transfer-encoding" in headers or headers.get("content-length", "0") != "0"
