"""The gateway as an ASGI application, to mount inside FastAPI or Starlette.

::

    gateway = Gateway(Settings())
    app = FastAPI(lifespan=lambda app: gateway.lifespan())
    app.mount("/realtime", gateway.asgi)   # ws://host/realtime/ws, /realtime/v1/publish

ASGI's ``send`` is a coroutine, so each WebSocket has one long-lived writer
task draining a byte-bounded queue; fan-out still only appends to queues and
creates nothing per recipient. Pings and pongs belong to the ASGI server
(uvicorn's ``--ws-ping-interval``); this path is for convenience, the native
listener for throughput.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson

from eventwire.auth.limits import Ticket
from eventwire.codes import CloseCode, ErrorCode
from eventwire.errors import ProtocolError
from eventwire.server.connection import ConnectionBase
from eventwire.server.guard import HandshakeRefused, origin_of, token_from_query
from eventwire.server.http_api import HttpRequest

if TYPE_CHECKING:
    from eventwire.server.gateway import Gateway
    from eventwire.server.hub import Outbound

__all__ = ["AsgiApp"]

log = logging.getLogger("eventwire.asgi")

_CLOSE_TIMEOUT = 2.0

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class AsgiApp:
    """ASGI 3 application serving the gateway's HTTP API and WebSocket endpoint."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    def _local_path(self, scope: Scope) -> str:
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        return path.removeprefix(root) if root and path.startswith(root) else path

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self._gateway.start(listen=False)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._gateway.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        head = self._request(scope)
        api = self._gateway.http_api
        response = api.precheck(head)  # refused from its head: its body is never read
        if response is None:
            try:
                body = await _body(receive, self._gateway.settings.max_http_body)
            except ProtocolError as too_large:
                response = api.refuse(head, too_large)
            except _Disconnected:
                return
            else:
                response = await api.handle(replace(head, body=body))
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
        if response.status != 204:  # RFC 9110 8.6: no Content-Length with a 204
            headers += [
                (b"content-type", response.content_type.encode()),
                (b"content-length", str(len(response.body)).encode()),
            ]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        body_out = b"" if head.method == "HEAD" else response.body
        await send({"type": "http.response.body", "body": body_out})

    def _request(self, scope: Scope) -> HttpRequest:
        """The request's head, as the HTTP API takes it (its body comes later)."""
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        query = scope.get("query_string", b"").decode("latin-1")
        path, root = self._local_path(scope), scope.get("root_path", "")
        return HttpRequest(scope["method"], path, headers, b"", query, root, _server_url(scope))

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        gateway = self._gateway
        if await receive() != {"type": "websocket.connect"}:
            return
        if self._local_path(scope) != gateway.ws_path or gateway.stopping:
            await send(
                {
                    "type": "websocket.close",
                    "code": CloseCode.GOING_AWAY if gateway.stopping else 1008,
                }
            )
            return
        # The same checks as the native listener, before accepting; the token
        # (never logged) is verified by the session once the socket is open.
        token = token_from_query(bytes(scope.get("query_string", b"")).decode("latin-1"))
        try:
            origin = origin_of(_header_values(scope, b"origin"))
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            ip = gateway.guard.client_addresses.client_of(_client_ip(scope), headers)
            ticket = gateway.admit(origin, ip, token)
        except HandshakeRefused as refusal:
            await _refuse(scope, send, refusal)
            return
        try:
            await send({"type": "websocket.accept"})
        except BaseException:
            gateway.guard.release(ticket)
            raise
        connection = AsgiConnection(gateway, send, ticket, token)
        connection.start()
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    break
                data = message.get("text")
                if data is None:
                    data = message.get("bytes") or b""
                if len(data) > gateway.settings.max_frame:
                    connection.close(CloseCode.MESSAGE_TOO_BIG, "frame too big")
                    break
                await connection.handle(data)
        finally:
            await connection.finish()


def _header_values(scope: Scope, name: bytes) -> list[str]:
    return [
        bytes(value).decode("latin-1")
        for key, value in scope.get("headers", ())
        if bytes(key).lower() == name
    ]


def _server_url(scope: Scope) -> str | None:
    """``scheme://host:port`` of the socket the request came in on; None on a Unix socket."""
    server = scope.get("server")
    if not server or server[1] is None:
        return None
    host = str(server[0])
    shown = f"[{host}]" if ":" in host else host
    return f"{scope.get('scheme', 'http')}://{shown}:{server[1]}"


class _Disconnected(Exception):
    """The client went away before its request's body was whole."""


async def _body(receive: Receive, limit: int) -> bytes:
    """The request's body; ProtocolError PAYLOAD_TOO_LARGE past ``limit``."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        body += message.get("body", b"")
        if len(body) > limit:
            raise ProtocolError(ErrorCode.PAYLOAD_TOO_LARGE, f"request body over {limit} bytes")
        if not message.get("more_body", False):
            return bytes(body)


def _client_ip(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


async def _refuse(scope: Scope, send: Send, refusal: HandshakeRefused) -> None:
    """Refuse a handshake with its HTTP status where the server allows it, else 403."""
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008})  # the server answers 403
        return
    body = orjson.dumps(ProtocolError(refusal.code, refusal.message).to_payload())
    await send(
        {
            "type": "websocket.http.response.start",
            "status": refusal.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "websocket.http.response.body", "body": body})


class AsgiConnection(ConnectionBase):
    """One WebSocket served through ASGI, with a byte-bounded outbound queue."""

    __slots__ = ("_drained", "_queue", "_queued_bytes", "_send_asgi", "_wake", "_writer")

    def __init__(
        self, gateway: Gateway, send: Send, ticket: Ticket | None = None, token: str | None = None
    ) -> None:
        super().__init__(gateway, ticket, token)
        self._send_asgi = send
        self._queue: deque[str | int] = deque()  # text frames, or a close code last
        self._queued_bytes = 0
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()  # the writer brought the queue under the pace
        self._writer: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._writer = asyncio.get_running_loop().create_task(self._write())
        self._greet()

    async def handle(self, data: str | bytes) -> None:
        await self._handle(data)

    def deliver(self, message: Outbound) -> None:
        if self._closing:
            return
        if self._recovering and self._hold(message):
            return
        if self._floors and self._below_floor(message):
            return
        self._enqueue(message.text)
        if self._queued_bytes > self._gateway.settings.max_outbound_buffer:
            self._slow_consumer()

    async def _write_paced(self, message: Outbound) -> bool:
        while self._queued_bytes >= self._pace and not self._closing:
            if self._writer is None or self._writer.done():
                return False  # the peer is gone
            self._drained.clear()
            await self._drained.wait()  # the server took enough: the peer is reading
        if self._closing:
            return False
        self._enqueue(message.text)
        return True

    def heartbeat(self, now: float, deadline: float) -> None:
        """The ASGI server pings; nothing to do here."""

    def abort(self) -> None:
        """The ASGI server owns the socket: stop writing to it."""
        if self._writer is not None:
            self._writer.cancel()

    def close(self, code: int, reason: str = "") -> None:
        if self._closing:
            return
        self._closing = True
        self._gateway.metrics.disconnects.labels(str(code)).inc()
        if code == CloseCode.SLOW_CONSUMER:  # the peer cannot take them; the close goes first
            self._queue.clear()
            self._queued_bytes = 0
        self._queue.append(code)
        self._wake.set()
        self._drained.set()  # a paced replay: it ends
        asyncio.get_running_loop().call_soon(self._leave)

    async def finish(self) -> None:
        """The session is over: leave the hub, flush a pending close, stop the writer."""
        closing_by_us = self._closing
        self._closing = True
        self._release()
        writer = self._writer
        if writer is None:
            return
        if closing_by_us:  # let the writer send our close frame
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(writer), _CLOSE_TIMEOUT)
        writer.cancel()

    def _send(self, data: bytes) -> None:
        if not self._closing:
            self._enqueue(data.decode())

    def _enqueue(self, text: str) -> None:
        self._queue.append(text)
        self._queued_bytes += len(text)
        self._wake.set()

    async def _write(self) -> None:
        send = self._send_asgi
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._queue:
                    item = self._queue.popleft()
                    if isinstance(item, int):
                        await send({"type": "websocket.close", "code": item})
                        return
                    self._queued_bytes -= len(item)
                    await send({"type": "websocket.send", "text": item})
                    # Not only once empty: live events of other topics may keep it from that.
                    if self._queued_bytes < self._pace:
                        self._drained.set()
        except asyncio.CancelledError:
            raise
        except Exception:  # the peer vanished mid-send; the reader will see the disconnect
            log.debug("ASGI send failed", exc_info=True)
        finally:
            self._drained.set()  # nothing more will be sent
