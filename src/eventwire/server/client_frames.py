"""Client frames, read whole: their size from their header, the parser, a pool of parsers.

The connection hands websockets' parser one whole frame at a time, so that
every frame is paid for (``FrameBudget``) before any work is done on it,
and so that between frames the parser holds nothing of its connection's:
it goes back to a pool, and an idle subscriber keeps none.
"""

from __future__ import annotations

import logging

from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

__all__ = ["FrameParser", "MalformedFrame", "ParserPool", "frame_size"]

_WS_LOG = logging.getLogger("eventwire.websocket")
"""websockets' own logging (its closing handshake), under our name."""
_POOLED = 256
"""Idle frame parsers kept for the next connections to read a frame."""


def frame_size(data: bytes, at: int, max_payload: int) -> int | None:
    """Bytes of the frame that starts at ``data[at]`` to hand the parser, None until whole.

    Raises MalformedFrame for a header refused whatever follows.

    RFC 6455 5.2: a 7-bit payload length, or 126 and 16 more bits, or 127
    and 64 more; then a 4-byte masking key when the MASK bit is set. A
    payload announced over ``max_payload`` counts as its header alone, so
    that the parser sees it, and refuses it (1009), without our waiting
    for bytes that would never be taken.
    """
    available = len(data) - at
    if available < 2:
        return None
    refusal = _header_refusal(data[at], data[at + 1])
    if refusal is not None:
        raise MalformedFrame(refusal)
    second = data[at + 1]
    length, lengths = second & 0x7F, 2
    if length >= 126:
        lengths += 2 if length == 126 else 8
        if available < lengths:
            return None
        length = int.from_bytes(data[at + 2 : at + lengths], "big")
    if length > max_payload:
        return lengths  # all the parser reads before it refuses the frame
    header = lengths + (4 if second & 0x80 else 0)
    return header + length if available >= header else None


_OPCODES = frozenset(int(opcode) for opcode in Opcode)


class MalformedFrame(Exception):
    """A client frame refused from its first two bytes, whatever follows: close with 1002."""


def _header_refusal(first: int, second: int) -> str | None:
    """Why a client frame's first two bytes are refused whatever follows (RFC 6455 5.2, 5.5).

    websockets makes the same checks, some only once the whole payload is in;
    refused here, the connection need not wait for bytes it will not take.
    """
    opcode = first & 0x0F
    if first & 0x70:
        return "reserved bits must be 0"
    if opcode not in _OPCODES:
        return "invalid opcode"
    if not second & 0x80:
        return "incorrect masking"
    if opcode >= 0x8 and not first & 0x80:
        return "fragmented control frame"
    if opcode >= 0x8 and second & 0x7F > 125:
        return "control frame too long"
    return None


class FrameParser(ServerProtocol):
    """websockets' server protocol, leaving pings to the connection to answer.

    RFC 6455 5.5.3: an endpoint that has not yet answered earlier pings may
    answer only the most recent one. The connection answers the last ping
    of each loop turn, so a burst of pings costs one pong, counted in its
    outbound buffer like every other byte it is sent.
    """

    def recv_frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.PING:
            self.events.append(frame)
            return
        super().recv_frame(frame)


class ParserPool:
    """Idle frame parsers, handed from connection to connection.

    A parser between whole messages holds no state of its connection's, so
    a connection that has nothing to read gives it back, and the next one
    to receive a frame takes it: an idle subscriber costs no parser, and a
    reconnect storm builds few.
    """

    __slots__ = ("_idle",)

    def __init__(self) -> None:
        self._idle: list[FrameParser] = []

    def take(self, max_size: int) -> FrameParser:
        idle = self._idle
        while idle:
            parser = idle.pop()
            if parser.max_message_size == max_size:
                return parser
        return FrameParser(max_size=max_size, state=State.OPEN, logger=_WS_LOG)

    def give(self, parser: FrameParser) -> None:
        if len(self._idle) < _POOLED:
            self._idle.append(parser)
