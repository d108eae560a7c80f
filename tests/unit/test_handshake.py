"""The server side of RFC 6455's opening handshake, from parsed headers."""

from __future__ import annotations

import pytest

from eventwire.server.handshake import HandshakeInvalid, switching_protocols

VALID = {
    "host": "gateway",
    "upgrade": "websocket",
    "connection": "keep-alive, Upgrade",
    "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
    "sec-websocket-version": "13",
}


def test_the_rfc_example_is_accepted_with_its_accept_key() -> None:
    answer = switching_protocols("GET", "1.1", VALID)
    assert answer.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in answer  # RFC 6455 1.3
    assert answer.endswith(b"\r\n\r\n")


@pytest.mark.parametrize(
    ("method", "version", "changes", "status", "header"),
    [
        ("POST", "1.1", {}, 405, ("allow", "GET")),
        ("GET", "1.0", {}, 400, None),
        ("GET", "1.1", {"upgrade": "h2c"}, 426, ("upgrade", "websocket")),
        ("GET", "1.1", {"connection": "keep-alive"}, 400, None),
        ("GET", "1.1", {"sec-websocket-version": "8"}, 426, ("sec-websocket-version", "13")),
        ("GET", "1.1", {"sec-websocket-key": "c2hvcnQ="}, 400, None),  # 5 bytes
        ("GET", "1.1", {"sec-websocket-key": "not base64!"}, 400, None),
        ("GET", "1.1", {"sec-websocket-key": ""}, 400, None),
    ],
)
def test_a_handshake_the_gateway_cannot_take_is_refused(
    method: str,
    version: str,
    changes: dict[str, str],
    status: int,
    header: tuple[str, str] | None,
) -> None:
    with pytest.raises(HandshakeInvalid) as refused:
        switching_protocols(method, version, VALID | changes)
    assert refused.value.status == status
    assert refused.value.headers == (() if header is None else (header,))


def test_tokens_are_case_insensitive_and_lists() -> None:
    headers = VALID | {"upgrade": "WebSocket", "connection": "Upgrade, HTTP2-Settings"}
    assert switching_protocols("GET", "1.1", headers).startswith(b"HTTP/1.1 101 ")
