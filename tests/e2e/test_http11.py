"""HTTP/1.1 done right on the native listener: HEAD, 405 with Allow, 426, pipelining,
keep-alive, 100-continue, CORS, and the client address behind trusted proxies.

Requests are written as raw bytes and answers read with h11 as a client, so
the test sees exactly what went over the wire.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import httpx
import pytest

from eventwire.server import Gateway
from tests.e2e.conftest import ADMIN_KEY, StartGateway

TIMEOUT = 5.0
GET_ROUTES = ["/healthz", "/readyz", "/metrics", "/", "/inspector", "/favicon.ico"]


class RawHttp:
    """One TCP connection: write request bytes, read the answers h11 parses one by one."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self._unread = b""

    @classmethod
    async def open(cls, gateway: Gateway) -> RawHttp:
        reader, writer = await asyncio.open_connection(gateway.settings.host, gateway.port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        """The next response to a ``method`` request: status, headers, body."""
        parser = h11.Connection(h11.CLIENT)  # one per answer: pipelined answers follow each other
        parser.send(h11.Request(method=method, target="/", headers=[("Host", "test")]))
        parser.send(h11.EndOfMessage())
        if self._unread:
            parser.receive_data(self._unread)  # b"" would be the end of the stream
        response: h11.Response | h11.InformationalResponse | None = None
        body = b""
        async with asyncio.timeout(TIMEOUT):
            while True:
                event = parser.next_event()
                if event is h11.NEED_DATA:
                    parser.receive_data(await self.reader.read(65536))
                elif isinstance(event, h11.InformationalResponse):
                    response = event
                    break
                elif isinstance(event, h11.Response):
                    response = event
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
        self._unread = bytes(parser.trailing_data[0])
        assert response is not None, "no answer"
        headers = {k.decode(): v.decode() for k, v in response.headers}
        return response.status_code, headers, body

    async def closed(self) -> bool:
        async with asyncio.timeout(TIMEOUT):
            return await self.reader.read(65536) == b""

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def request(method: str, target: str, *headers: str, body: bytes = b"") -> bytes:
    """The bytes of a request: its line, Host, ``headers`` (``"Name: value"``), its body."""
    lines = [f"{method} {target} HTTP/1.1", "Host: test", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _get(gateway: Gateway, path: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=TIMEOUT) as http:
        return await http.get(path, **kwargs)


async def test_head_answers_every_get_route_with_its_headers_and_no_body(
    gateway: Gateway,
) -> None:
    conn = await RawHttp.open(gateway)
    try:
        for path in GET_ROUTES:
            full = await _get(gateway, path)
            await conn.send(request("HEAD", path))
            status, headers, body = await conn.answer("HEAD")
            assert (status, body) == (full.status_code, b""), path
            assert headers["content-type"] == full.headers["content-type"], path
            if path != "/metrics":  # its figures move between the two requests
                assert headers["content-length"] == str(len(full.content)), path
        await conn.send(request("GET", "/healthz"))  # the connection is still usable
        assert (await conn.answer())[2] == b'{"status":"ok"}'
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/healthz", "GET, HEAD"),
        ("DELETE", "/v1/topics/gift-list:1", "GET, HEAD"),
        ("GET", "/v1/publish", "POST"),
        ("PUT", "/v1/revoke", "POST"),
    ],
)
async def test_a_wrong_method_is_405_with_allow(
    gateway: Gateway, method: str, path: str, allowed: str
) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=TIMEOUT) as http:
        response = await http.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.json()["details"] == {"allowed": allowed}


async def test_the_websocket_path_without_an_upgrade_is_426(gateway: Gateway) -> None:
    response = await _get(gateway, "/ws")
    assert response.status_code == 426
    assert response.headers["upgrade"] == "websocket"
    assert response.json()["code"] == "UPGRADE_REQUIRED"


async def test_pipelined_requests_are_answered_in_order(gateway: Gateway) -> None:
    conn = await RawHttp.open(gateway)
    paths = ["/healthz", "/nope", "/readyz", *(f"/missing-{n}" for n in range(30)), "/healthz"]
    try:
        await conn.send(b"".join(request("GET", path) for path in paths))
        statuses = [(await conn.answer())[0] for _ in paths]
    finally:
        await conn.close()
    assert statuses == [200, 404, 200, *[404] * 30, 200]


async def test_a_refused_request_with_a_body_is_answered_unread_and_closed(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(admin_key=ADMIN_KEY, insecure=False, allow_anonymous=True)
    conn = await RawHttp.open(gateway)
    try:
        await conn.send(request("POST", "/v1/publish", "Content-Length: 1000000"))
        status, headers, _ = await conn.answer("POST")
        assert (status, headers["connection"]) == (401, "close")
        assert await conn.closed()
    finally:
        await conn.close()


async def test_100_continue_only_for_a_request_the_api_takes(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(admin_key=ADMIN_KEY, insecure=False, allow_anonymous=True)
    body = b'{"topic": "gift-list:1", "event": "ADDED", "data": {"entity_id": "g1"}}'
    for key, expected in [(None, [401]), (ADMIN_KEY, [100, 200])]:
        conn = await RawHttp.open(gateway)
        head = [
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            "Expect: 100-continue",
            *([f"Authorization: Bearer {key}"] if key else []),
        ]
        try:
            await conn.send(request("POST", "/v1/publish", *head))
            statuses = [(await conn.answer("POST"))[0]]
            if statuses == [100]:
                await conn.send(body)
                statuses.append((await conn.answer("POST"))[0])
        finally:
            await conn.close()
        assert statuses == expected, key


async def test_cors_for_the_configured_origins_only(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(cors_origins=["https://app.example.com"])
    preflight = {
        "Origin": "https://app.example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    async with httpx.AsyncClient(base_url=gateway.url, timeout=TIMEOUT) as http:
        allowed = await http.options("/v1/publish", headers=preflight)
        assert allowed.status_code == 204
        assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
        assert allowed.headers["access-control-allow-methods"] == "POST"
        assert "authorization" in allowed.headers["access-control-allow-headers"]
        assert "access-control-allow-credentials" not in allowed.headers
        foreign = await http.options(
            "/v1/publish", headers={**preflight, "Origin": "https://evil.example"}
        )
        assert foreign.status_code == 403
        assert "access-control-allow-origin" not in foreign.headers
        read = await http.get("/healthz", headers={"Origin": "https://app.example.com"})
        assert read.headers["access-control-allow-origin"] == "https://app.example.com"
        assert read.headers["vary"] == "origin"
        other = await http.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


async def test_no_cors_without_configured_origins(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=TIMEOUT) as http:
        read = await http.get("/healthz", headers={"Origin": "https://app.example.com"})
        assert "access-control-allow-origin" not in read.headers
        preflight = await http.options(
            "/v1/publish",
            headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
        )
    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers


async def _handshake(gateway: Gateway, forwarded_for: str) -> int:
    conn = await RawHttp.open(gateway)
    _OPEN.append(conn)
    handshake = [
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        f"X-Forwarded-For: {forwarded_for}",
    ]
    await conn.send(request("GET", "/ws", *handshake))
    status_line = await asyncio.wait_for(conn.reader.readline(), TIMEOUT)
    return int(status_line.split()[1])


_OPEN: list[RawHttp] = []


@pytest.fixture(autouse=True)
async def _close_handshakes() -> Any:
    yield
    while _OPEN:
        await _OPEN.pop().close()


async def test_per_ip_caps_count_the_client_behind_a_trusted_proxy(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(max_connections_per_ip=1, trusted_proxies=["127.0.0.1"])
    assert await _handshake(gateway, "203.0.113.7") == 101
    assert await _handshake(gateway, "198.51.100.1, 203.0.113.8") == 101  # the nearest counts
    assert await _handshake(gateway, "203.0.113.7") == 429


async def test_forwarding_headers_of_an_untrusted_peer_are_ignored(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(max_connections_per_ip=1)
    assert await _handshake(gateway, "203.0.113.7") == 101
    assert await _handshake(gateway, "203.0.113.8") == 429  # both are 127.0.0.1


async def test_an_upgrade_to_another_protocol_is_answered_as_http_1_1(gateway: Gateway) -> None:
    """RFC 9110 7.8: a server may ignore an Upgrade it does not take (h2c here)."""
    conn = await RawHttp.open(gateway)
    try:
        h2c = ["Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQ"]
        await conn.send(request("GET", "/healthz", *h2c))
        status, _, body = await conn.answer()
        assert (status, body) == (200, b'{"status":"ok"}')
    finally:
        await conn.close()


async def test_a_peer_that_ends_its_side_still_gets_its_answers(gateway: Gateway) -> None:
    conn = await RawHttp.open(gateway)
    try:
        await conn.send(request("GET", "/healthz") + request("GET", "/readyz"))
        conn.writer.write_eof()  # done sending: the answers must come all the same
        assert [(await conn.answer())[0] for _ in range(2)] == [200, 200]
        assert await conn.closed()
    finally:
        await conn.close()
