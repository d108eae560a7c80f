"""Fuzzing the HTTP side of a live gateway's port while a normal client watches.

Each example opens a TCP connection and writes generated requests: methods,
targets and versions from a list of the plausible and the absurd, request
and header lines of 8-16 KiB, floods of headers, Content-Length and
Transfer-Encoding that disagree, chunked bodies that are not, pipelined
requests, HEAD and OPTIONS, WebSocket upgrades with broken headers, or
plain garbage; then it half-closes, or waits for the server to end the idle
connection. What comes back must parse, with h11 as the client, as one
well-formed response per complete request (h11 as the server decides which
are complete), and end within a bound: never a hang, never a 500, never an
ERROR logged, and the bystander keeps receiving every event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import h11
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from eventwire.server import Gateway
from eventwire.testing import running_gateway
from tests.adversarial.live import (
    ROUND_TRIP,
    Bystander,
    Probe,
    Traffic,
    fuzz_settings,
    fuzz_timeout,
    server_errors,
)
from tests.adversarial.wire import ParsedResponse, h11_requests, http_exchange, http_responses
from tests.e2e.conftest import ADMIN_KEY, auth

EXAMPLES = 80
HTTP_TIMEOUT = 0.5
"""The gateway's http_timeout: how long an idle or trickling connection may stay."""
KIB = 1024
LONG = [8 * KIB, 12 * KIB, 16 * KIB + 1]

METHODS = [b"GET", b"HEAD", b"POST", b"OPTIONS", b"PUT", b"DELETE", b"CONNECT", b"TRACE"]
ODD_METHODS = [b"get", b"G ET", b"", b"\x00", b"X" * 100]
TARGETS = [
    b"/healthz",
    b"/",
    b"/ws",
    b"/v1/publish",
    b"/v1/topics/a:b",
    b"/v1/topics/a:b/history?since=-1&limit=x",
    b"/v1/stats",
    b"/readyz",
    b"/metrics",
    b"/v1/catalog",
    b"*",
    b"http://gateway/healthz",
    b"/%ff%00",
    b"",
    b"/ws?token=x.y.z",
]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1.1x", b"", b"http/1.1"]
KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
HEADERS = [
    (b"Host", b"gateway"),
    (b"Content-Length", b"0"),
    (b"Content-Length", b"5"),
    (b"Content-Length", b"-1"),
    (b"Content-Length", b"99999999999999999999"),
    (b"Content-Length", b"abc"),
    (b"Content-Length", b"1, 2"),
    (b"Transfer-Encoding", b"chunked"),
    (b"Transfer-Encoding", b"gzip, chunked"),
    (b"Transfer-Encoding", b"chunked, identity"),
    (b"Connection", b"close"),
    (b"Connection", b"keep-alive"),
    (b"Connection", b"Upgrade"),
    (b"Upgrade", b"websocket"),
    (b"Upgrade", b"h2c"),
    (b"Sec-WebSocket-Key", KEY),
    (b"Sec-WebSocket-Key", b"short"),
    (b"Sec-WebSocket-Version", b"13"),
    (b"Sec-WebSocket-Version", b"8"),
    (b"Expect", b"100-continue"),
    (b"Authorization", b"Bearer nope"),
    (b"Authorization", b"Bearer " + ADMIN_KEY.encode()),
    (b"Origin", b"http://evil.example"),
    (b"Content-Type", b"application/json"),
    (b"X Bad", b"a space in the name"),
    (b"Host", b"nul\x00inside"),
]
UPGRADE = [
    (b"Host", b"gateway"),
    (b"Connection", b"Upgrade"),
    (b"Upgrade", b"websocket"),
    (b"Sec-WebSocket-Key", KEY),
    (b"Sec-WebSocket-Version", b"13"),
]
BODIES = [
    b"",
    b"{}",
    b'{"topic":"watch:other","event":"ADDED","data":{"entity_id":"x","payload":null}}',
    b"5\r\nhello\r\n0\r\n\r\n",
    b"zz\r\nhello\r\n",
    b"5\r\nhel",
    b"ffffffffffffffffffff\r\n",
    b"5;ext=\x00\r\nhello\r\n0\r\n\r\n",
    b"0\r\n",
]


FLAWS = [None, None, None, "method", "target", "version", "eol", "line", "flood", "long", "chaos"]
"""At most one part of a request is odd, so that most reach the API and some go deeper."""


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    """One request, more or less: well-formed but for the flaw drawn (all of them: ``chaos``)."""
    flaw = draw(st.sampled_from(FLAWS))
    chaos = flaw == "chaos"
    method = draw(st.sampled_from(METHODS))
    if flaw == "method" or chaos:
        method = draw(st.sampled_from(ODD_METHODS))
    target = draw(st.sampled_from(TARGETS))
    if flaw == "target" or chaos:
        target = b"/" + b"a" * draw(st.sampled_from(LONG))
    version = draw(st.sampled_from(VERSIONS[:2] if flaw != "version" and not chaos else VERSIONS))
    eol = b"\n" if flaw == "eol" or chaos else b"\r\n"
    base = UPGRADE if draw(st.booleans()) else [(b"Host", b"gateway")]
    drawn = draw(st.lists(st.sampled_from(HEADERS), max_size=3))
    headers = [name + b": " + value for name, value in [*base, *drawn]]
    if flaw == "line" or chaos:
        headers += draw(st.sampled_from([[b"NoColon"], [b" folded"], [b": no name"]]))
    if flaw == "flood" or chaos:
        headers += [b"X-Flood-%d: %d" % (i, i) for i in range(draw(st.sampled_from([100, 2000])))]
    if flaw == "long" or chaos:
        headers.append(b"X-Long: " + b"v" * draw(st.sampled_from(LONG)))
    head = method + b" " + target + b" " + version + eol + b"".join(h + eol for h in headers)
    return head + eol + draw(st.sampled_from(BODIES) | st.binary(max_size=32))


@st.composite
def exchanges(draw: st.DrawFn) -> tuple[bytes, bool, int]:
    """Pipelined requests (or garbage), whether we half-close after, and the write size."""
    data = draw(st.lists(requests(), min_size=1, max_size=3).map(b"".join) | st.binary(max_size=64))
    half_close = draw(st.sampled_from([True, True, True, False]))
    return data, half_close, draw(st.sampled_from([0, 0, 3, 512]))


@pytest.fixture
async def target() -> AsyncIterator[Gateway]:
    settings = auth(admin_key=ADMIN_KEY, http_timeout=HTTP_TIMEOUT)
    async with running_gateway(**settings) as gateway:
        yield gateway


async def attack(target: Gateway, traffic: Traffic, exchange: tuple[bytes, bool, int]) -> None:
    data, half_close, chunk = exchange
    sent = asyncio.get_running_loop().create_task(traffic.publish(5, pause=0.01))
    bound = 3.0 if half_close else HTTP_TIMEOUT + 3.0
    answer = await http_exchange(
        target.port, data, half_close=half_close, timeout=bound, chunk=chunk
    )
    await sent
    assert answer.closed, f"no end within {bound} s; got {answer.data[:300]!r}"
    requests, _ = h11_requests(data, eof=half_close)
    try:
        responses, rest = http_responses(answer.data, [r.method for r in requests])
    except h11.RemoteProtocolError as exc:
        raise AssertionError(f"malformed response ({exc}): {answer.data[:500]!r}") from exc
    upgraded = any(response.status == 101 for response in responses)
    event(f"{len(requests)} complete, {[r.status for r in responses]}, reset={answer.reset}")
    assert rest == b"" or upgraded, f"a partial response: {rest[:300]!r}"
    assert all(response.status != 500 for response in responses), responses
    # A reset may take responses in flight with it; so may early data, which ends the handshake.
    # A 400 ends the exchange: our parser is stricter than h11 (bare LF, duplicate lengths),
    # so what h11 reads as later requests may be past a refused one; so does an answer
    # that says it is the last (Connection: close, to HTTP/1.0 or HTTP/2.0, say).
    last = responses[-1] if responses else None
    refused = last is not None and (last.status == 400 or _closes(last))
    if not answer.reset and not refused and not any(r.early_data for r in requests):
        assert len(responses) >= len(requests), (requests, answer.data[:500])
    assert len(responses) <= len(requests) + 1, answer.data[:500]


def _closes(response: ParsedResponse) -> bool:
    return b"close" in (response.header(b"connection") or b"").lower()


@pytest.mark.timeout(fuzz_timeout(EXAMPLES))
@fuzz_settings(EXAMPLES)
@given(exchange=exchanges())
async def test_hostile_http_gets_well_formed_answers_and_spares_others(
    target: Gateway,
    bystander: Bystander,
    traffic: Traffic,
    caplog: pytest.LogCaptureFixture,
    exchange: tuple[bytes, bool, int],
) -> None:
    logged = len(caplog.records)
    probe = Probe(bystander, target.url)
    work = asyncio.get_running_loop().create_task(attack(target, traffic, exchange))
    await probe.during(work)
    await work
    assert await bystander.received(traffic.sent) == traffic.expected()
    assert bystander.unexpected == []
    worst_round_trip, worst_health = probe.worst()
    assert worst_round_trip < ROUND_TRIP, probe.round_trips
    assert worst_health < ROUND_TRIP, probe.health
    assert server_errors(caplog.records[logged:]) == []
