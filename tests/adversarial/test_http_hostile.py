"""Hostile HTTP on the native listener, one case at a time, with the answer RFC 9110 asks for.

Each case is a request a client or a scanner really sends: HEAD, an
over-long request or header line on a WebSocket upgrade, ``GET /ws``
without the upgrade, a handshake that h11 reads but websockets' stricter
parser does not, a body announced with ``Expect: 100-continue`` to a route
the client may not use. The answer must be a well-formed response, and
the gateway must log no traceback.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator

import pytest

from eventwire.server import Gateway
from eventwire.testing import running_gateway
from tests.adversarial.live import server_errors
from tests.adversarial.wire import HttpPeer, http_exchange, http_responses
from tests.e2e.conftest import ADMIN_KEY

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
UPGRADE = [
    b"Host: gateway",
    b"Connection: Upgrade",
    b"Upgrade: websocket",
    b"Sec-WebSocket-Key: " + KEY,
    b"Sec-WebSocket-Version: 13",
]
LONG = 12 * 1024
"""Between websockets' 8 KiB line limit and h11's 16 KiB head limit: where both disagree."""


def upgrade(
    target: bytes = b"/ws", extra: list[bytes] | None = None, eol: bytes = b"\r\n"
) -> bytes:
    lines = [b"GET " + target + b" HTTP/1.1", *UPGRADE, *(extra or [])]
    return b"".join(line + eol for line in lines) + eol


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    async with running_gateway(admin_key=ADMIN_KEY, http_timeout=1.0) as gateway:
        yield gateway
    gc.collect()  # what the server leaked is reported in this test, not in a later one


async def answer_to(gateway: Gateway, data: bytes) -> list[int]:
    """The statuses of the responses to ``data``; the connection must end within 3 s."""
    answer = await http_exchange(gateway.port, data, half_close=False, timeout=3.0)
    assert answer.closed, f"still open after 3 s, having sent {answer.data[:200]!r}"
    responses, rest = http_responses(answer.data, [b"GET"])
    assert rest == b"" or (responses[-1:] and responses[-1].status == 101), rest[:200]
    return [response.status for response in responses]


async def test_head_answers_headers_only_and_keeps_the_connection(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    peer = await HttpPeer.open(gateway.port)
    try:
        head = await peer.request(b"HEAD", b"/healthz")
        get = await peer.request(b"GET", b"/healthz")  # h11 fails the test if HEAD had a body
    finally:
        peer.close()
    assert (head.status, head.body) == (200, b"")
    assert (get.status, get.body) == (200, b'{"status":"ok"}')
    assert server_errors(caplog.records) == []


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (upgrade(b"/ws?pad=" + b"a" * LONG), 414),
        (upgrade(extra=[b"X-Pad: " + b"a" * LONG]), 431),
    ],
    ids=["request-line", "header-line"],
)
async def test_an_over_long_line_on_an_upgrade_is_refused_with_its_status(
    gateway: Gateway, caplog: pytest.LogCaptureFixture, data: bytes, status: int
) -> None:
    assert await answer_to(gateway, data) == [status]
    assert server_errors(caplog.records) == []


@pytest.mark.parametrize(
    "data",
    [
        b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Pad: " + b"a" * (1024 * 1024),
        b"GET /" + b"a" * (1024 * 1024),
    ],
    ids=["endless-header-line", "endless-request-line"],
)
async def test_a_head_that_never_ends_is_refused_after_16_kib(
    gateway: Gateway, caplog: pytest.LogCaptureFixture, data: bytes
) -> None:
    """A line with no end is not kept whole: the head's bytes are counted as they come."""
    answer = await http_exchange(gateway.port, data, half_close=False, timeout=3.0, chunk=4096)
    responses, _ = http_responses(answer.data, [b"GET"])
    assert [r.status for r in responses] in ([431], [414]), answer.data[:200]
    assert server_errors(caplog.records) == []


@pytest.mark.parametrize(
    "data",
    [
        upgrade(eol=b"\n"),
        upgrade(extra=[b"X-Flood-%d: 1" % i for i in range(200)]),
        upgrade(extra=[b"Content-Length: 3"]) + b"abc",
        upgrade(b"/healthz") + b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n",
    ],
    ids=["bare-lf", "200-headers", "with-a-body", "refused-then-pipelined"],
)
async def test_a_handshake_the_gateway_cannot_take_gets_a_4xx(
    gateway: Gateway, caplog: pytest.LogCaptureFixture, data: bytes
) -> None:
    """Bare line feeds (400: the parser is strict, as RFC 9112 2.2 allows), too many
    headers (431), a body whose bytes would be read as frames (400), an upgrade of a
    path that is no WebSocket's (refused, with bytes behind it; found by test_fuzz_http)."""
    statuses = await answer_to(gateway, data)
    assert len(statuses) == 1, statuses
    assert 400 <= statuses[0] < 500, statuses
    assert server_errors(caplog.records) == []


async def test_get_ws_without_upgrade_is_426_naming_websocket(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    peer = await HttpPeer.open(gateway.port)
    try:
        response = await peer.request(b"GET", b"/ws")
    finally:
        peer.close()
    assert response.status == 426, response
    assert (response.header(b"upgrade") or b"").lower() == b"websocket", response.headers
    assert server_errors(caplog.records) == []


async def test_expect_100_continue_without_a_key_is_401_before_any_body(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    headers = [(b"content-length", b"%d" % (16 * 1024 * 1024)), (b"expect", b"100-continue")]
    peer = await HttpPeer.open(gateway.port)
    try:
        await peer.send_head(b"POST", b"/v1/publish", headers)
        response = await peer.response()  # the body is never sent
    finally:
        peer.close()
    assert (response.status, response.informational) == (401, [])
    assert server_errors(caplog.records) == []
