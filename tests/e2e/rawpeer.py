"""A WebSocket peer with its hands on the socket, for misbehaving on purpose.

Built on websockets' Sans-I/O ClientProtocol, so the handshake and frame
parsing are real; the test decides when to read, what raw bytes to write,
and how small the receive buffer is.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

import orjson
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

__all__ = ["RawPeer"]


class RawPeer:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, protocol: ClientProtocol
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol = protocol
        self.frames: list[Frame] = []
        self.mute = False
        """When set, nothing is written back: pings go unanswered, as from a dead peer."""

    @classmethod
    async def connect(cls, url: str, receive_buffer: int | None = None) -> RawPeer:
        uri = parse_uri(url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (uri.host, uri.port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=2**20)
        protocol = ClientProtocol(uri, max_size=None)
        peer = cls(reader, writer, protocol)
        protocol.send_request(protocol.connect())
        await peer.flush()
        while True:
            data = await asyncio.wait_for(reader.read(65536), 5.0)
            if not data:
                raise EOFError("closed during the handshake")
            protocol.receive_data(data)
            events = protocol.events_received()
            peer.frames += [e for e in events if isinstance(e, Frame) and e.opcode is Opcode.TEXT]
            if any(isinstance(e, Response) for e in events):
                if protocol.handshake_exc is not None:
                    raise protocol.handshake_exc
                return peer

    async def flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            if chunk and not self.mute:
                self.writer.write(chunk)
        await self.writer.drain()

    async def send_json(self, value: Any) -> None:
        self.protocol.send_text(orjson.dumps(value))
        await self.flush()

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def next_frame(self, timeout: float = 5.0) -> Frame:
        """The next data or close frame (pings are answered by the protocol)."""
        while True:
            for event in self.protocol.events_received():
                if isinstance(event, Frame) and event.opcode in (Opcode.TEXT, Opcode.CLOSE):
                    self.frames.append(event)
            await self.flush()
            if self.frames:
                return self.frames.pop(0)
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                self.protocol.receive_eof()
                raise EOFError("connection closed without a close frame")
            self.protocol.receive_data(data)

    async def next_json(self, timeout: float = 5.0) -> dict[str, Any]:
        frame = await self.next_frame(timeout)
        assert frame.opcode is Opcode.TEXT, frame
        decoded: dict[str, Any] = orjson.loads(frame.data)
        return decoded

    async def close_code(self, timeout: float = 5.0) -> int:
        """Read until the server's close frame and return its code."""
        while True:
            frame = await self.next_frame(timeout)
            if frame.opcode is Opcode.CLOSE:
                return Close.parse(frame.data).code

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()

    async def __aenter__(self) -> RawPeer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
