"""A native WebSocket connection: websockets' Sans-I/O parser in, shared frames out.

Inbound frames go through websockets' Sans-I/O parser (masking,
fragmentation, the close handshake, the size limit; ``client_frames.py``)
and then to the I/O-free Session. Reading is fair: a connection's frames
are handed to the parser whole, at most ``_TURN_BYTES`` of them per loop
turn, and each frame, control frames and fragments included, is paid for
from its ``FrameBudget`` before it is parsed. A connection over budget
stops being read; one that keeps at it is closed. A frame (or fragmented
message) must be finished within ``frame_timeout``, and only a pong or a
whole message proves the peer alive.

Outbound events bypass the parser: the hub hands over a frame serialized
once for every subscriber, and ``deliver`` queues it. Frames queued during
one turn of the event loop leave in one system call (``writelines``) at
the end of that turn: under load a subscriber costs one ``send()`` per turn
instead of one per event; when idle a frame waits only for the turn's end.

The transport's write buffer is the connection's outbound queue, and every
byte we write goes through ``_write``: events, replies, pongs, pings and
the close frame. When it holds more than ``max_outbound_buffer`` bytes the
peer is a slow consumer: closed with 4008, no longer read, and aborted if
it does not finish the close handshake quickly, so its buffer can never
grow past one frame over the limit. A replay is written at the pace the
peer reads it instead (``_write_paced``), so a long one is not mistaken
for that.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING

from websockets.exceptions import ProtocolError as WsProtocolError
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from eventwire.auth.limits import Ticket
from eventwire.codes import CloseCode
from eventwire.protocol.session import SessionState
from eventwire.server.client_frames import FrameParser, MalformedFrame, frame_size
from eventwire.server.connection import ConnectionBase
from eventwire.server.frame_budget import FrameBudget
from eventwire.server.hub import Outbound, text_frame

if TYPE_CHECKING:
    from eventwire.server.gateway import Gateway

__all__ = ["PING_FRAME", "WebSocketConnection", "WriteBatcher"]

log = logging.getLogger("eventwire.connection")

PING_FRAME = Frame(Opcode.PING, b"").serialize(mask=False)
"""One server ping, shared by every connection."""

_CLOSE_TIMEOUT = 2.0
"""Seconds a peer has to answer our close frame before the socket is aborted."""
_MAX_INBOX = 32
"""Commands queued before reading pauses; the rate limit answers the rest."""
_TURN_BYTES = 16 * 1024
"""Bytes of one connection parsed per loop turn; the rest waits for the next turn."""
_STRIKES = 5
"""Times in a row a connection may run its frame budget dry before it is closed (4029)."""


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
            connection.write_pending()  # never raises: one peer's failure is its own


class WebSocketConnection(ConnectionBase, asyncio.Protocol):
    """One open WebSocket, from the 101 response to the socket's end."""

    __slots__ = (
        "_abort_timer",
        "_batcher",
        "_blocked",
        "_budget",
        "_deaf",
        "_digesting",
        "_fragments",
        "_frame_timer",
        "_inbound",
        "_inbound_at",
        "_inbox",
        "_max_buffer",
        "_partial_since",
        "_paused",
        "_pending",
        "_pending_bytes",
        "_text",
        "_throttled",
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
        batcher: WriteBatcher,
        ticket: Ticket | None = None,
        token: str | None = None,
    ) -> None:
        super().__init__(gateway, ticket, token)
        settings = gateway.settings
        now = gateway.clock.monotonic()
        self._transport = transport
        self._ws: FrameParser | None = None
        """The frame parser, while a frame is being read or the connection closes (``_parser``)."""
        self._batcher = batcher
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._max_buffer = settings.max_outbound_buffer
        transport.set_write_buffer_limits(high=self._pace)
        self._writable: asyncio.Event | None = None  # made by a paced replay that must wait
        self._blocked = False  # the transport asked us to stop writing (pause_writing)
        self._text = True
        self._fragments: list[bytes] = []
        self._inbox: deque[bytes] | None = None  # commands read, not yet carried out
        self._worker: asyncio.Task[None] | None = None
        self._abort_timer: asyncio.TimerHandle | None = None
        self._budget = FrameBudget(
            rate=settings.frame_rate,
            burst=settings.frame_burst,
            before_auth=settings.unauthenticated_frames,
            strikes=_STRIKES,
            now=now,
        )
        self._inbound = b""
        """Bytes read but not parsed yet (from ``_inbound_at``): parsed a turn's worth at a time."""
        self._inbound_at = 0
        self._digesting = False  # a later turn will parse more of _inbound
        self._throttled = False  # the frame budget is dry: not reading until it refills
        self._deaf = False  # closing a peer that floods or stalls a frame: nothing more is read
        self._paused = False  # the transport's reading is paused
        self._partial_since: float | None = None  # a frame or message is unfinished since then
        self._frame_timer: asyncio.TimerHandle | None = None
        self.last_seen = now
        """When the peer last proved alive: a pong or a whole message (not any byte)."""

    # -- lifecycle -------------------------------------------------------------

    def start(self, handshake: bytes) -> None:
        """Answer the handshake (``handshake``: the 101) and greet the peer, in one write."""
        self._queue(handshake)
        self._greet()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """The transport was handed over after the handshake; nothing to do."""

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._pending.clear()
        self._inbound = b""
        if self._writable is not None:
            self._writable.set()  # a paced replay waiting for the peer: it ends
        for timer in (self._abort_timer, self._frame_timer):
            if timer is not None:
                timer.cancel()
        if self._worker is not None:
            self._worker.cancel()
        self._release()

    def eof_received(self) -> bool | None:
        """The peer ended its side; without a close frame first, that is the end (1006)."""
        self._inbound = b""  # what was left unparsed is moot
        if self._ws is not None:
            self._ws.receive_eof()
            self._flush()
        return None  # asyncio closes the transport

    def close(self, code: int, reason: str = "") -> None:
        """Start the close handshake; abort the socket if the peer does not answer."""
        if self._closing:
            return
        if code == CloseCode.SLOW_CONSUMER:
            self._pending.clear()  # the peer cannot take them; the close goes first
        self._closing = True
        self._gateway.metrics.disconnects.labels(str(code)).inc()
        ws = self._parser()
        if ws.state is State.OPEN:
            ws.send_close(code, reason)
            self._flush()
        self._end_soon()

    def abort(self) -> None:
        """Drop the socket now, without a close handshake (the gateway's stop is out of time)."""
        self._transport.abort()

    def _end_soon(self) -> None:
        """Leave the hub on the next turn, abort the socket after the close timeout."""
        loop = asyncio.get_running_loop()
        if self._abort_timer is None:
            self._abort_timer = loop.call_later(_CLOSE_TIMEOUT, self._transport.abort)
        # Never leave the hub here: we may be inside its fan-out loop.
        loop.call_soon(self._leave)

    # -- outbound --------------------------------------------------------------

    def deliver(self, message: Outbound) -> None:
        """Queue one event; the hot path of fan-out."""
        if self._recovering and self._hold(message):
            return
        if self._floors and self._below_floor(message):
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
        self._write(pending[0] if len(pending) == 1 else pending)
        pending.clear()
        self._pending_bytes = 0

    def _write(self, data: bytes | list[bytes]) -> None:
        """Every byte this connection sends goes here, and counts against its buffer.

        A transport closed under us (the peer reset it within this loop turn)
        takes nothing more, and raises for nobody else.
        """
        transport = self._transport
        if transport.is_closing():
            return
        try:
            if isinstance(data, bytes):
                transport.write(data)
            else:
                transport.writelines(data)
        except (RuntimeError, OSError) as exc:  # uvloop: "unable to perform operation"
            log.debug("writing to %s failed: %s", self.session.session_id, exc)
            transport.abort()
            return
        if transport.get_write_buffer_size() > self._max_buffer and not self._closing:
            self._slow_consumer()

    async def _write_paced(self, message: Outbound) -> bool:
        if self._pending_bytes >= self._pace:  # a slice is queued: hand it over, let it drain
            self.write_pending()
            if self._blocked and not self._closing:
                if self._writable is None:
                    self._writable = asyncio.Event()
                self._writable.clear()
                await self._writable.wait()
        if self._closing:
            return False
        self._queue(message.frame)
        return True

    def pause_writing(self) -> None:
        """The transport holds more than ``_pace`` bytes the peer has not taken."""
        self._blocked = True

    def resume_writing(self) -> None:
        self._blocked = False
        if self._writable is not None:
            self._writable.set()

    def heartbeat(self, now: float, deadline: float) -> None:
        """Ping the peer, or close it if it has not proved alive since ``deadline``."""
        if self._closing:
            return
        if self.last_seen < deadline:
            self.close(CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout")
        else:
            self._write(PING_FRAME)

    def _send(self, data: bytes) -> None:
        if not self._closing:
            self._queue(text_frame(data))  # behind the events queued before it

    def _flush(self) -> None:
        """Write what the WebSocket protocol has to send, after the queued frames."""
        self.write_pending()
        if self._ws is None:
            return
        for chunk in self._ws.data_to_send():
            if chunk:
                self._write(chunk)
            else:
                self._transport.close()  # the WebSocket is closed: end TCP after the buffer

    # -- inbound ---------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._inbound_at < len(self._inbound):
            self._inbound = self._inbound[self._inbound_at :] + data
        else:
            self._inbound = data
        self._inbound_at = 0
        self._digest()

    def _digest(self) -> None:
        """Parse the whole frames read so far, within budget and a turn's worth of bytes.

        Frames are handed to the parser one whole frame at a time, so that
        each is paid for before it is parsed, and the parser is between
        frames whenever we are done with it. What is left is the start of
        an unfinished frame (read on), or frames for a later turn (paused).
        """
        self._digesting = False
        inbound, at, end = self._inbound, self._inbound_at, len(self._inbound)
        stop, more, ping = at + _TURN_BYTES, False, None
        while at < end and not self._held():
            try:
                size = frame_size(inbound, at, self._gateway.settings.max_frame)
            except MalformedFrame as malformed:
                self._malformed(str(malformed))
                break
            if size is None or at + size > end:
                break  # unfinished: wait for the rest
            if at >= stop:
                more = True  # whole frames are left: the next turn's
                break
            if not self._spend():
                break
            ping = self._parse(inbound[at : at + size]) or ping
            at += size
        self._inbound_at = at
        self._answer(ping)
        self._watch_partial()
        self._steer_reading(more)
        self._drop_idle_parser()

    def _malformed(self, reason: str) -> None:
        """A frame refused from its header: close (1002), and read nothing more."""
        self.close(CloseCode.PROTOCOL_ERROR, reason)
        self._deaf = True
        self._inbound, self._inbound_at = b"", 0

    def _parser(self) -> FrameParser:
        """The frame parser, taken when a frame begins (or a close) and given back when idle."""
        if self._ws is None:
            self._ws = self._gateway.parsers.take(self._gateway.settings.max_frame)
        return self._ws

    def _drop_idle_parser(self) -> None:
        """Between whole messages an open connection has no parser state worth its memory:
        an idle subscriber keeps none (about 1 KiB less each), the next frame takes one."""
        ws = self._ws
        if (
            ws is not None
            and ws.state is State.OPEN
            and not ws.reader.buffer  # whole frames only were fed: it is between two
            and not ws.writes
            and not self._fragments  # its own record of a fragmented message is empty too
            and not self._closing
        ):
            self._gateway.parsers.give(ws)
            self._ws = None

    def _held(self) -> bool:
        """Whether reading must wait: deaf, over budget, or too many commands queued."""
        inbox = self._inbox
        return self._deaf or self._throttled or (inbox is not None and len(inbox) >= _MAX_INBOX)

    def _steer_reading(self, more: bool) -> None:
        """Read from the socket only while nothing holds us and no whole frame waits.

        ``more``: whole frames are left for the next turn.
        """
        if more or self._held():
            if not self._paused:
                self._paused = True
                self._transport.pause_reading()
            if more and not self._held() and not self._digesting:
                self._digesting = True
                asyncio.get_running_loop().call_soon(self._digest)
            return
        if self._inbound_at >= len(self._inbound):
            self._inbound, self._inbound_at = b"", 0
        if self._paused and not self._transport.is_closing():
            self._paused = False
            self._transport.resume_reading()

    def _parse(self, frame_bytes: bytes) -> Frame | None:
        """Parse one whole frame and act on it; a ping is returned, to answer later."""
        ws = self._parser()
        ws.receive_data(frame_bytes)
        ping: Frame | None = None
        for frame in ws.events_received():
            if not isinstance(frame, Frame):
                continue
            if not self._fragments:
                self._partial_since = None  # a frame ended, and no message is half-read
            if frame.opcode is Opcode.PING:
                ping = frame
            elif not self._closing:
                self._frame(frame)
        if ws.parser_exc is not None and not self._closing:
            # websockets has queued the close frame: 1009 for a frame over
            # max_frame, 1002 for broken framing, 1007 for bad UTF-8.
            sent = ws.close_sent
            code = sent.code if sent is not None else CloseCode.PROTOCOL_ERROR
            self._gateway.metrics.disconnects.labels(str(code)).inc()
            self._closing = True
            self._end_soon()
        return ping

    def _answer(self, ping: Frame | None) -> None:
        """Pong the latest ping of the turn (RFC 6455 5.5.3), then write what the parser owes."""
        ws = self._ws
        if ping is not None and ws is not None and ws.state is State.OPEN and not self._closing:
            ws.send_pong(ping.data)
        self._flush()

    def _spend(self) -> bool:
        """Pay for one frame; False when it must be ignored (the flood is being closed)."""
        if self._deaf:
            return False
        budget, now = self._budget, self._gateway.clock.monotonic()
        if budget.take(now, self.session.state is not SessionState.AWAITING_AUTH):
            return True
        if budget.flooding:
            self._gateway.metrics.drops.labels("frame_flood").inc()
            self.close(CloseCode.FLOODING, "frame flood")
            self._deaf = True
            return False
        if not self._throttled:
            self._throttled = True
            asyncio.get_running_loop().call_later(budget.pause_for(now), self._unthrottle)
        return True  # this frame is paid for, in debt; reading stops after this slice

    def _unthrottle(self) -> None:
        self._throttled = False
        if not self._transport.is_closing():
            self._digest()

    def _watch_partial(self) -> None:
        """Time an unfinished frame or fragmented message: ``frame_timeout`` from its start."""
        unfed = self._inbound_at < len(self._inbound)
        if not (unfed or self._fragments) or self._deaf:
            self._partial_since = None
            return
        if self._partial_since is None:
            self._partial_since = self._gateway.clock.monotonic()
        if self._frame_timer is None:
            self._arm_frame_timer(self._partial_since)

    def _arm_frame_timer(self, since: float) -> None:
        left = since + self._gateway.settings.frame_timeout - self._gateway.clock.monotonic()
        loop = asyncio.get_running_loop()
        self._frame_timer = loop.call_later(max(0.0, left), self._frame_deadline, since)

    def _frame_deadline(self, since: float) -> None:
        self._frame_timer = None
        started = self._partial_since
        if started is None or self._transport.is_closing():
            return
        if started == since:  # the same frame or message, unfinished all along
            self.close(CloseCode.FRAME_TIMEOUT, "frame not finished in time")
            self._deaf = True
            return
        self._arm_frame_timer(started)  # a later one is unfinished: time it instead

    def _frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.PONG:
            self.last_seen = self._gateway.clock.monotonic()
        elif frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            self._fragment(frame)
        elif frame.opcode is Opcode.CLOSE:
            self._closing = True
            self._end_soon()

    def _fragment(self, frame: Frame) -> None:
        if frame.opcode is not Opcode.CONT:
            self._text = frame.opcode is Opcode.TEXT
        self._fragments.append(bytes(frame.data))
        if not frame.fin:
            return
        message = b"".join(self._fragments) if len(self._fragments) > 1 else self._fragments[0]
        self._fragments.clear()
        self._partial_since = None
        self.last_seen = self._gateway.clock.monotonic()
        if self._text and not _is_utf8(message):
            # RFC 6455 8.1: a text message that is not UTF-8 fails the connection.
            self.close(CloseCode.INVALID_DATA, "text frame is not UTF-8")
            return
        if self._inbox is None:
            self._inbox = deque()
        self._inbox.append(message)
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._work())

    async def _work(self) -> None:
        """Carry out queued commands in order; the task ends when the inbox is empty."""
        try:
            inbox = self._inbox
            while inbox and not self._closing:
                await self._handle(inbox.popleft())
                if len(inbox) == _MAX_INBOX - 1 and not self._digesting:
                    self._digest()  # room again: read on
        except (asyncio.CancelledError, WsProtocolError):
            raise
        except Exception:
            log.exception("command failed on %s", self.session.session_id)
            self.close(CloseCode.INTERNAL_ERROR, "internal error")
        finally:
            self._worker = None
            if not self._inbox:
                self._inbox = None  # an idle connection keeps no queue
