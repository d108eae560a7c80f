"""Hostile bytes and how to read what comes back: raw WebSocket frames, raw HTTP.

``ws_frame`` writes any frame RFC 6455 allows and many it forbids: reserved
opcodes, RSV bits, unmasked, a declared length that lies, a 16- or 64-bit
length for a tiny payload. ``http_exchange`` writes raw request bytes and
reads until the server closes (or a deadline), and ``http_responses`` parses
what came back with h11 as a client, so a malformed response fails the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

import h11
import orjson

__all__ = [
    "MASK",
    "HttpAnswer",
    "HttpPeer",
    "HttpRequestSeen",
    "ParsedResponse",
    "command",
    "h11_requests",
    "http_exchange",
    "http_responses",
    "server_frames",
    "text_frame",
    "ws_frame",
]

MASK = b"\x37\xfa\x21\x3d"
"""The masking key of every client frame here; RFC 6455 only needs it to be sent."""

HTTP_HEAD_LIMIT = 16 * 1024
"""The gateway's h11 limit on a request's head (``server/http_protocol.py``)."""


def _masked(payload: bytes, key: bytes) -> bytes:
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        len(payload), "big"
    )


def ws_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = MASK,
    length: int | None = None,
    width: int | None = None,
) -> bytes:
    """One frame as written on the wire, correct or not.

    ``rsv``: the three RSV bits (0-7). ``mask``: a 4-byte key, None for an
    unmasked frame. ``length``: the declared payload length (default: the
    real one). ``width``: 7, 16 or 64 bits for it, the smallest by default.
    """
    declared = len(payload) if length is None else length
    if width is None:
        width = 7 if declared < 126 else 16 if declared < 65536 else 64
    head = bytes([(0x80 if fin else 0) | (rsv & 7) << 4 | opcode & 0x0F])
    bit = 0x80 if mask is not None else 0
    if width == 7:
        head += bytes([bit | declared & 0x7F])
    elif width == 16:
        head += bytes([bit | 126]) + struct.pack("!H", declared & 0xFFFF)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", declared & (2**64 - 1))
    if mask is None:
        return head + payload
    return head + mask + _masked(payload, mask)


def server_frames(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Take the complete (unmasked) server frames off ``buffer``: (opcode, payload) each.

    Much cheaper than a full parser, for a flooder that reads thousands of
    pongs a second only to notice the close frame among them.
    """
    frames, at = [], 0
    while len(buffer) - at >= 2:
        size, start = buffer[at + 1] & 0x7F, at + 2
        if size >= 126:
            width = 2 if size == 126 else 8
            if len(buffer) - start < width:
                break
            size, start = int.from_bytes(buffer[start : start + width], "big"), start + width
        if len(buffer) - start < size:
            break
        frames.append((buffer[at] & 0x0F, bytes(buffer[start : start + size])))
        at = start + size
    del buffer[:at]
    return frames


def text_frame(data: bytes) -> bytes:
    """A valid, final, masked text frame: what a correct client sends."""
    return ws_frame(0x1, data)


def command(event: str, request_id: str, payload: Any = None) -> bytes:
    """A protocol command's JSON (docs/protocol.md, "Commands")."""
    data = {"entity_id": request_id, "payload": payload}
    return orjson.dumps({"topic": "system", "event": event, "data": data})


# --- HTTP --------------------------------------------------------------------------


@dataclass
class HttpAnswer:
    """What a raw HTTP connection got: bytes until EOF, or until the deadline."""

    data: bytes = b""
    closed: bool = False
    """The server closed (EOF or reset) before the deadline."""
    reset: bool = False


async def http_exchange(
    port: int, data: bytes, *, half_close: bool, timeout: float, chunk: int = 0
) -> HttpAnswer:
    """Write ``data`` (in ``chunk``-byte writes, 0: at once), then read until EOF or ``timeout``.

    ``half_close`` shuts our side for writing afterwards, as a client that
    has said everything; otherwise the server must end the idle connection.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = HttpAnswer()
    try:
        await asyncio.wait_for(_talk(reader, writer, data, half_close, chunk, answer), timeout)
    except TimeoutError:
        pass
    finally:
        writer.transport.abort()
    return answer


async def _talk(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    data: bytes,
    half_close: bool,
    chunk: int,
    answer: HttpAnswer,
) -> None:
    try:
        step = chunk or len(data) or 1
        for start in range(0, len(data), step):
            writer.write(data[start : start + step])
            await writer.drain()
        if half_close:
            with contextlib.suppress(OSError):
                writer.transport.get_extra_info("socket").shutdown(socket.SHUT_WR)
    except (ConnectionResetError, BrokenPipeError):
        pass  # the server may answer and close before reading everything
    try:
        while chunk_read := await reader.read(65536):
            answer.data += chunk_read
    except ConnectionResetError:
        answer.reset = True
    answer.closed = True


@dataclass
class HttpRequestSeen:
    """A request h11 (as the server) read in full from the bytes sent."""

    method: bytes
    target: bytes
    upgrade: bool
    early_data: bool = False
    """An upgrade followed by bytes sent before the 101 (RFC 6455 4.1 forbids it)."""


@dataclass
class _Oracle:
    requests: list[HttpRequestSeen] = field(default_factory=list)
    error: bool = False


def h11_requests(data: bytes, eof: bool) -> tuple[list[HttpRequestSeen], bool]:
    """The complete requests an HTTP/1.1 server must answer, in order, and whether the
    bytes then turned malformed. Parsed by h11 as the gateway parses them; a request
    after one whose answer ends the connection (HTTP/1.0, ``Connection: close``) is
    not counted, nor anything after an upgrade."""
    server = h11.Connection(h11.SERVER, max_incomplete_event_size=HTTP_HEAD_LIMIT)
    if data:  # b"" would mean EOF to h11
        server.receive_data(data)
    if eof:
        server.receive_data(b"")
    seen = _Oracle()
    try:
        _read_requests(server, seen)
    except h11.RemoteProtocolError:
        seen.error = True
    return seen.requests, seen.error


def _read_requests(server: h11.Connection, seen: _Oracle) -> None:
    request: h11.Request | None = None
    while True:
        event = server.next_event()
        if isinstance(event, h11.Request):
            request = event
            upgrade = any(n == b"upgrade" for n, _ in event.headers)
            if upgrade or event.method == b"CONNECT":  # what follows may not be HTTP
                while (rest := server.next_event()) not in (h11.PAUSED, h11.NEED_DATA):
                    if isinstance(rest, h11.ConnectionClosed):
                        break
                early = bool(server.trailing_data[0])
                seen.requests.append(HttpRequestSeen(event.method, event.target, True, early))
                return
        elif isinstance(event, h11.EndOfMessage) and request is not None:
            seen.requests.append(HttpRequestSeen(request.method, request.target, False))
            server.send(h11.Response(status_code=204, headers=[]))
            server.send(h11.EndOfMessage())
            if server.our_state is not h11.DONE or server.their_state is not h11.DONE:
                return
            server.start_next_cycle()
        elif (
            event is h11.NEED_DATA or event is h11.PAUSED or isinstance(event, h11.ConnectionClosed)
        ):
            return


@dataclass
class ParsedResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    informational: list[int] = field(default_factory=list)
    """Statuses of the 1xx responses that came before this one (100 Continue)."""

    def header(self, name: bytes) -> bytes | None:
        return next((value for key, value in self.headers if key == name.lower()), None)


def http_responses(data: bytes, methods: list[bytes]) -> tuple[list[ParsedResponse], bytes]:
    """Parse ``data`` as responses to requests of ``methods`` (GET past the list).

    Returns the complete responses and the bytes left after them; raises
    h11.RemoteProtocolError if the server wrote something that is not HTTP.
    A 101 ends the HTTP part: what follows it is WebSocket and is returned.
    Every response must carry its length: one that runs to EOF is left over.
    """
    client = h11.Connection(h11.CLIENT)
    if data:  # b"" would mean EOF to h11
        client.receive_data(data)
    parsed: list[ParsedResponse] = []
    while True:
        method = methods[len(parsed)] if len(parsed) < len(methods) else b"GET"
        method = b"GET" if method == b"CONNECT" else method  # no tunnel: a plain answer
        headers = [(b"host", b"gateway"), (b"connection", b"upgrade"), (b"upgrade", b"websocket")]
        client.send(h11.Request(method=method, target=b"/", headers=headers))
        client.send(h11.EndOfMessage())
        response = _one_response(client)
        if response is None:
            return parsed, client.trailing_data[0]
        parsed.append(response)
        if response.status == 101 or client.our_state is not h11.DONE:
            return parsed, client.trailing_data[0]
        if client.their_state is not h11.DONE:
            return parsed, client.trailing_data[0]
        client.start_next_cycle()


@dataclass
class _Partial:
    """A response read so far: h11 hands each part over once."""

    head: h11.Response | None = None
    body: bytes = b""
    informational: list[int] = field(default_factory=list)


def _one_response(client: h11.Connection, partial: _Partial | None = None) -> ParsedResponse | None:
    """The next complete response, or None when h11 needs more (kept in ``partial``)."""
    part = _Partial() if partial is None else partial
    while True:
        event = client.next_event()
        if isinstance(event, h11.InformationalResponse):
            if event.status_code == 101:
                return ParsedResponse(101, list(event.headers), b"", part.informational)
            part.informational.append(event.status_code)  # 100 Continue precedes the answer
        elif isinstance(event, h11.Response):
            part.head = event
        elif isinstance(event, h11.Data):
            part.body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert part.head is not None
            head, body, informational = part.head, part.body, part.informational
            return ParsedResponse(head.status_code, list(head.headers), body, informational)
        else:  # NEED_DATA, PAUSED, ConnectionClosed: no complete response yet
            return None


class HttpPeer:
    """One raw HTTP/1.1 connection with h11 as the client: requests in turn, answers parsed."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.client = h11.Connection(h11.CLIENT)

    @classmethod
    async def open(cls, port: int) -> HttpPeer:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send_head(
        self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        """Start a request: its head only; a body, if any, is the caller's to write."""
        if self.client.our_state is h11.DONE and self.client.their_state is h11.DONE:
            self.client.start_next_cycle()
        request = h11.Request(method=method, target=target, headers=[(b"host", b"gw"), *headers])
        self.writer.write(self.client.send(request) or b"")
        await self.writer.drain()

    async def request(
        self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]] | None = None
    ) -> ParsedResponse:
        """A request without a body, and its response."""
        await self.send_head(method, target, headers or [])
        self.writer.write(self.client.send(h11.EndOfMessage()) or b"")
        return await self.response()

    async def response(self, timeout: float = 2.0) -> ParsedResponse:
        """The next response; TimeoutError when none is complete in time, EOFError at EOF."""
        partial = _Partial()
        async with asyncio.timeout(timeout):
            while True:
                parsed = _one_response(self.client, partial)
                if parsed is not None:
                    return parsed
                data = await self.reader.read(65536)
                if not data:
                    raise EOFError("the server closed without a complete response")
                self.client.receive_data(data)

    def close(self) -> None:
        self.writer.transport.abort()
