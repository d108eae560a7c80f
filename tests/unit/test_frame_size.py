"""Where a client frame ends, read from its header, so that frames are parsed whole."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode

from eventwire.server.client_frames import MalformedFrame, frame_size

MAX = 65536


def client_frame(opcode: Opcode, payload: bytes, fin: bool = True) -> bytes:
    return Frame(opcode, payload, fin).serialize(mask=True)


@given(st.binary(max_size=70_000), st.sampled_from([Opcode.TEXT, Opcode.BINARY, Opcode.CONT]))
def test_the_size_of_a_whole_frame_is_its_length_on_the_wire(payload: bytes, op: Opcode) -> None:
    data = client_frame(op, payload)
    expected = len(data) if len(payload) <= MAX else len(data) - len(payload) - 4
    assert frame_size(b"xx" + data, 2, MAX) == expected


@given(st.binary(min_size=1, max_size=300), st.integers(min_value=1))
def test_an_unfinished_header_has_no_size_yet(payload: bytes, cut: int) -> None:
    data = client_frame(Opcode.TEXT, payload)
    header = len(data) - len(payload)
    assert frame_size(data[: cut % header], 0, MAX) is None


def test_a_non_minimal_length_is_read_as_sent() -> None:
    payload = b"hi"
    data = bytes([0x81, 0x80 | 127]) + (2).to_bytes(8, "big") + b"\0\0\0\0" + payload
    assert frame_size(data, 0, MAX) == len(data)


def test_a_payload_over_the_limit_is_handed_over_after_its_lengths() -> None:
    data = bytes([0x82, 0x80 | 127]) + (2**40).to_bytes(8, "big")
    assert frame_size(data, 0, MAX) == 10


@pytest.mark.parametrize(
    "head",
    [
        bytes([0xC1, 0x85]),  # RSV1 without an extension
        bytes([0x83, 0x85]),  # reserved opcode 3
        bytes([0x81, 0x05]),  # not masked
        bytes([0x09, 0x85]),  # a fragmented ping
        bytes([0x89, 0xFE]),  # a ping of more than 125 bytes
    ],
)
def test_a_header_refused_whatever_follows_is_refused_at_once(head: bytes) -> None:
    with pytest.raises(MalformedFrame):
        frame_size(head + b"\0\0", 0, MAX)
