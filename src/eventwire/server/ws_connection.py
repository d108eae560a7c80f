"""A native WebSocket connection: websockets' Sans-I/O parser in, shared frames out.

Inbound frames go through ``websockets.ServerProtocol`` (masking,
fragmentation, control frames, the close handshake, the size limit) and then
to the I/O-free Session. Outbound events bypass the parser: the hub hands
over a frame serialized once for every subscriber, and ``deliver`` queues it.

Frames queued during one turn of the event loop leave in one system call
(``writelines``) at the end of that turn: under load, when many events are
published per turn, a subscriber costs one ``send()`` per turn instead of
one per event; when idle, a frame waits only for the current turn to end.

The transport's write buffer is the connection's outbound queue. When it
holds more than ``max_outbound_buffer`` bytes the peer is a slow consumer:
it is closed with 4008 and, if it does not finish the close handshake
quickly, aborted, so its buffer can never grow past one event over the limit.
A replay is written at the pace the peer reads it instead (``_write_paced``,
with the transport's flow control), so a long one is not mistaken for that.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING

from websockets.exceptions import ProtocolError as WsProtocolError
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from eventwire.auth.limits import Ticket
from eventwire.codes import CloseCode
from eventwire.server.connection import ConnectionBase
from eventwire.server.hub import Outbound, text_frame

if TYPE_CHECKING:
    from eventwire.server.gateway import Gateway

__all__ = ["PING_FRAME", "WebSocketConnection"]

log = logging.getLogger("eventwire.connection")

PING_FRAME = Frame(Opcode.PING, b"").serialize(mask=False)
"""One server ping, shared by every connection."""

_CLOSE_TIMEOUT = 2.0
"""Seconds a peer has to answer our close frame before the socket is aborted."""
_MAX_INBOX = 32
"""Commands queued before reading pauses; the rate limit answers the rest."""


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


class WriteBatcher:
    """Flushes, once per loop turn, every connection that queued frames in it."""

    __slots__ = ("_dirty", "_scheduled")

    def __init__(self) -> None:
        self._dirty: list[WebSocketConnection] = []
        self._scheduled = False

    def mark(self, connection: WebSocketConnection) -> None:
        self._dirty.append(connection)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        dirty, self._dirty = self._dirty, []
        for connection in dirty:
            connection.write_pending()


class WebSocketConnection(ConnectionBase, asyncio.Protocol):
    """One open WebSocket, from the 101 response to the socket's end."""

    __slots__ = (
        "_abort_timer",
        "_batcher",
        "_fragments",
        "_inbox",
        "_max_buffer",
        "_paused",
        "_pending",
        "_pending_bytes",
        "_text",
        "_transport",
        "_worker",
        "_writable",
        "_ws",
        "last_seen",
    )

    def __init__(
        self,
        gateway: Gateway,
        transport: asyncio.Transport,
        ws: ServerProtocol,
        batcher: WriteBatcher,
        ticket: Ticket | None = None,
        token: str | None = None,
    ) -> None:
        super().__init__(gateway, ticket, token)
        self._transport = transport
        self._ws = ws
        self._batcher = batcher
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._max_buffer = gateway.settings.max_outbound_buffer
        transport.set_write_buffer_limits(high=self._pace)
        self._writable = asyncio.Event()
        self._writable.set()
        self._paused = False
        self._text = True
        self._fragments: list[bytes] = []
        self._inbox: deque[bytes] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._abort_timer: asyncio.TimerHandle | None = None
        self.last_seen = gateway.clock.monotonic()

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        """Called once the 101 response is written: greet the peer."""
        self._greet()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """The transport was handed over after the handshake; nothing to do."""

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._writable.set()  # a paced replay waiting for the peer: it ends
        if self._abort_timer is not None:
            self._abort_timer.cancel()
        if self._worker is not None:
            self._worker.cancel()
        self._release()

    def eof_received(self) -> bool | None:
        self._ws.receive_eof()
        self._flush()
        return None

    def close(self, code: int, reason: str = "") -> None:
        """Start the close handshake; abort the socket if the peer does not answer."""
        if self._closing:
            return
        if code == CloseCode.SLOW_CONSUMER:
            self._pending.clear()  # the peer cannot take them; the close goes first
        self._closing = True
        self._gateway.metrics.disconnects.labels(str(code)).inc()
        if self._ws.state is State.OPEN:
            self._ws.send_close(code, reason)
            self._flush()
        loop = asyncio.get_running_loop()
        self._abort_timer = loop.call_later(_CLOSE_TIMEOUT, self._transport.abort)
        # Never leave the hub here: we may be inside its fan-out loop.
        loop.call_soon(self._leave)

    # -- outbound --------------------------------------------------------------

    def deliver(self, message: Outbound) -> None:
        """Queue one event; the hot path of fan-out."""
        if self._recovering and self._hold(message):
            return
        if not self._closing:
            self._queue(message.frame)

    def _queue(self, frame: bytes) -> None:
        if not self._pending:
            self._batcher.mark(self)
        self._pending.append(frame)
        self._pending_bytes += len(frame)
        if self._pending_bytes > self._max_buffer:
            self._slow_consumer()

    def write_pending(self) -> None:
        """Write every queued frame in one call; close the peer if its buffer overflows."""
        pending = self._pending
        if not pending:
            return
        transport = self._transport
        if len(pending) == 1:
            transport.write(pending[0])
        else:
            transport.writelines(pending)
        pending.clear()
        self._pending_bytes = 0
        if transport.get_write_buffer_size() > self._max_buffer:
            self._slow_consumer()

    async def _write_paced(self, message: Outbound) -> bool:
        if self._pending_bytes >= self._pace:  # a slice is queued: hand it over, let it drain
            self.write_pending()
            await self._writable.wait()
        if self._closing:
            return False
        self._queue(message.frame)
        return True

    def pause_writing(self) -> None:
        """The transport holds more than ``_pace`` bytes the peer has not taken."""
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def heartbeat(self, now: float, deadline: float) -> None:
        """Ping the peer, or close it if it has been silent since ``deadline``."""
        if self._closing:
            return
        if self.last_seen < deadline:
            self.close(CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout")
        else:
            self._transport.write(PING_FRAME)

    def _send(self, data: bytes) -> None:
        if not self._closing:
            self._queue(text_frame(data))  # behind the events queued before it

    def _flush(self) -> None:
        """Write what the WebSocket protocol has to send, after the queued frames."""
        self.write_pending()
        for chunk in self._ws.data_to_send():
            if chunk:
                self._transport.write(chunk)
            else:
                self._transport.close()  # the WebSocket is closed: end TCP after the buffer

    # -- inbound ---------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.last_seen = self._gateway.clock.monotonic()
        self._ws.receive_data(data)
        for frame in self._ws.events_received():
            if isinstance(frame, Frame):
                self._frame(frame)
        self._flush()
        if self._ws.parser_exc is not None and not self._closing:
            # websockets has already sent the close frame: 1009 for a frame
            # over max_frame, 1002 for broken framing, 1007 for bad UTF-8.
            sent = self._ws.close_sent
            code = sent.code if sent is not None else CloseCode.PROTOCOL_ERROR
            self._gateway.metrics.disconnects.labels(str(code)).inc()
            self._closing = True
            asyncio.get_running_loop().call_soon(self._leave)
            self._abort_timer = asyncio.get_running_loop().call_later(
                _CLOSE_TIMEOUT, self._transport.abort
            )

    def _frame(self, frame: Frame) -> None:
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            if frame.opcode is not Opcode.CONT:
                self._text = frame.opcode is Opcode.TEXT
            self._fragments.append(bytes(frame.data))
            if not frame.fin:
                return
            message = b"".join(self._fragments) if len(self._fragments) > 1 else self._fragments[0]
            self._fragments.clear()
            if self._closing:
                return
            if self._text and not _is_utf8(message):
                # RFC 6455 8.1: a text message that is not UTF-8 fails the connection.
                self.close(CloseCode.INVALID_DATA, "text frame is not UTF-8")
                return
            self._inbox.append(message)
            if len(self._inbox) >= _MAX_INBOX and not self._paused:
                self._paused = True
                self._transport.pause_reading()
            if self._worker is None:
                self._worker = asyncio.get_running_loop().create_task(self._work())
        elif frame.opcode is Opcode.CLOSE and not self._closing:
            self._closing = True
            asyncio.get_running_loop().call_soon(self._leave)

    async def _work(self) -> None:
        """Carry out queued commands in order; the task ends when the inbox is empty."""
        try:
            while self._inbox and not self._closing:
                await self._handle(self._inbox.popleft())
                if self._paused and len(self._inbox) < _MAX_INBOX // 2:
                    self._paused = False
                    self._transport.resume_reading()
        except (asyncio.CancelledError, WsProtocolError):
            raise
        except Exception:
            log.exception("command failed on %s", self.session.session_id)
            self.close(CloseCode.INTERNAL_ERROR, "internal error")
        finally:
            self._worker = None
