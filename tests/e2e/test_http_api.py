"""The HTTP API over a real socket: publish, batches, errors with their status codes."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from eventwire.brokers import BrokerUnavailable, MemoryBroker, Position
from eventwire.server import Gateway, Settings
from tests.e2e.conftest import StartGateway, command, event, open_ws, recv, subscribe


def error_of(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"code", "message", "details"}
    return response.status_code, body["code"]


async def test_batch_publish_answers_each_seq_in_order(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    async with await open_ws(gateway) as ws:
        await subscribe(ws, "import:job-456")
        batch = [
            event("import:job-456", "IMPORT_COMPLETED", entity_id=f"job-{i}") for i in range(5)
        ]
        response = await http.post("/v1/publish", json={"events": batch})
        assert response.status_code == 200
        assert [r["seq"] for r in response.json()["results"]] == [1, 2, 3, 4, 5]
        received = [await recv(ws) for _ in range(5)]
    assert [r["data"]["entity_id"] for r in received] == [f"job-{i}" for i in range(5)]


async def test_traceparent_becomes_trace_id_unless_the_event_has_one(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    header = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    async with await open_ws(gateway) as ws:
        await subscribe(ws, "gift-list:1")
        await http.post("/v1/publish", json=event("gift-list:1"), headers=header)
        await http.post(
            "/v1/publish",
            json={**event("gift-list:1"), "trace_id": "a1b2c3d4-e5f6-7890"},
            headers=header,
        )
        first, second = await recv(ws), await recv(ws)
    assert first["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert second["trace_id"] == "a1b2c3d4-e5f6-7890"


async def test_publisher_fields_are_kept(gateway: Gateway, http: httpx.AsyncClient) -> None:
    async with await open_ws(gateway) as ws:
        await subscribe(ws, "tenant:acme:gift-list:123")
        sent = event(
            "tenant:acme:gift-list:123",
            "UPDATED",
            user_id="user-1",
            tenant_id="acme",
            timestamp="2023-01-02T03:04:05.678+02:00",
        )
        await http.post("/v1/publish", json={**sent, "version": 2})
        received = await recv(ws)
    assert received["version"] == 2
    data = received["data"]
    assert (data["user_id"], data["tenant_id"]) == ("user-1", "acme")
    assert data["timestamp"] == "2023-01-02T01:04:05.678Z"  # normalised to UTC


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        (event(kind="update"), 422, "VALIDATION_ERROR", "event"),
        (event(kind="Updated"), 422, "VALIDATION_ERROR", "event"),
        ({**event(), "trace-id": "x"}, 422, "VALIDATION_ERROR", "trace-id"),
        ({**event(), "seq": 3}, 422, "VALIDATION_ERROR", "seq"),
        (event(extra=1), 422, "VALIDATION_ERROR", "data.extra"),
        (event(timestamp="2023-01-01T00:00:00"), 422, "VALIDATION_ERROR", "data.timestamp"),
        (
            {"topic": "gift-list:1", "event": "ADDED", "data": {}},
            422,
            "VALIDATION_ERROR",
            "data.entity_id",
        ),
        ({**event(), "version": 0}, 422, "VALIDATION_ERROR", "version"),
        ([1, 2], 422, "VALIDATION_ERROR", "(root)"),
        ({"events": []}, 422, "VALIDATION_ERROR", "events"),
        ({"events": [event(), event(kind="bad")]}, 422, "VALIDATION_ERROR", "events.1.event"),
    ],
)
async def test_invalid_events_name_the_field(
    http: httpx.AsyncClient, body: Any, status: int, code: str, field: str
) -> None:
    response = await http.post("/v1/publish", json=body)
    assert error_of(response) == (status, code)
    fields = [e["field"] for e in response.json()["details"]["errors"]]
    assert field in fields


@pytest.mark.parametrize(
    ("topic", "code"),
    [
        ("system", "RESERVED_TOPIC"),
        ("error:x", "RESERVED_TOPIC"),
        ("Gift:1", "INVALID_TOPIC"),
        ("gift-list:*", "INVALID_TOPIC"),
        ("single", "INVALID_TOPIC"),
        ("a:" + "b" * 200, "INVALID_TOPIC"),
    ],
)
async def test_bad_topics(http: httpx.AsyncClient, topic: str, code: str) -> None:
    response = await http.post("/v1/publish", json=event(topic))
    assert error_of(response) == (422, code)


async def test_a_bad_event_in_a_batch_publishes_nothing(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/v1/publish", json={"events": [event("gift-list:9"), event("system")]}
    )
    assert error_of(response) == (422, "RESERVED_TOPIC")
    assert response.json()["details"]["index"] == 1
    assert (await http.get("/v1/topics/gift-list:9")).json()["position"]["seq"] == 0


async def test_transport_level_errors(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(
        payload_max=1000, payload_warn=500, max_http_body=20_000, max_batch=3
    )
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        assert error_of(
            await http.post(
                "/v1/publish", content=b"{oops", headers={"content-type": "application/json"}
            )
        ) == (400, "INVALID_JSON")
        assert error_of(
            await http.post("/v1/publish", content=b"{}", headers={"content-type": "text/plain"})
        ) == (415, "UNSUPPORTED_MEDIA_TYPE")
        big = event(payload={"blob": "x" * 2000})
        assert error_of(await http.post("/v1/publish", json=big)) == (413, "PAYLOAD_TOO_LARGE")
        warned = await http.post("/v1/publish", json=event(payload={"blob": "x" * 700}))
        assert warned.status_code == 200
        huge = await http.post(
            "/v1/publish", content=b"x" * 30_000, headers={"content-type": "application/json"}
        )
        assert error_of(huge) == (413, "PAYLOAD_TOO_LARGE")
        many = {"events": [event() for _ in range(4)]}
        assert error_of(await http.post("/v1/publish", json=many)) == (422, "VALIDATION_ERROR")
        assert error_of(await http.get("/v1/publish")) == (405, "METHOD_NOT_ALLOWED")
        assert error_of(await http.get("/nowhere")) == (404, "NOT_FOUND")
        assert error_of(await http.get("/v1/topics/system")) == (422, "RESERVED_TOPIC")


async def test_payload_size_warning_is_logged(
    start_gateway: StartGateway, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = await start_gateway(payload_warn=100)
    await gateway.publish(event(payload={"blob": "x" * 200}))
    assert any("consider a partial" in r.getMessage() for r in caplog.records)


async def test_topic_info_health_and_metrics(gateway: Gateway, http: httpx.AsyncClient) -> None:
    async with await open_ws(gateway) as ws:
        await subscribe(ws, "user:456")
        await http.post("/v1/publish", json=event("user:456"))
        await recv(ws)
        info = (await http.get("/v1/topics/user:456")).json()
        metrics = (await http.get("/metrics")).text
        stats = (await http.get("/v1/stats")).json()
    assert stats == {
        "node": gateway.node_id,
        "pid": os.getpid(),
        "connections": 1,
        "topics": 1,
        "subscriptions": 1,
        "published": 1,
        "deliveries": 1,
    }
    assert info["topic"] == "user:456"
    assert info["subscribers"] == 1
    assert info["position"]["seq"] == 1
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    assert (await http.get("/readyz")).json() == {"status": "ready"}
    assert "eventwire_connections 1.0" in metrics
    assert "eventwire_subscriptions 1.0" in metrics
    assert "eventwire_events_published_total 1.0" in metrics
    assert "eventwire_deliveries_total 1.0" in metrics
    index = (await http.get("/")).json()
    assert index["websocket"] == gateway.ws_url


class _FailingBroker(MemoryBroker):
    """Fault injection: the broker fails on publish."""

    async def publish(self, topic: str, body: bytes) -> int:
        raise RuntimeError("disk on fire")


async def test_an_unexpected_failure_is_internal_error_not_a_crash() -> None:
    gateway = Gateway(Settings(port=0, insecure=True), broker=_FailingBroker())
    async with gateway, httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.post("/v1/publish", json=event())
        assert error_of(response) == (500, "INTERNAL_ERROR")
        assert (await http.get("/healthz")).status_code == 200
        metrics = (await http.get("/metrics")).text
    assert 'eventwire_errors_total{code="INTERNAL_ERROR"} 1.0' in metrics


async def raw_http(gateway: Gateway, request: bytes) -> bytes:
    """Send raw bytes, return everything the server answers before closing."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), 5)
    finally:
        writer.close()
        await writer.wait_closed()


async def test_malformed_http_is_bad_request(gateway: Gateway) -> None:
    answer = await raw_http(gateway, b"NOT HTTP AT ALL\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b'"code":"BAD_REQUEST"' in answer


async def test_websocket_upgrade_elsewhere_is_404(gateway: Gateway) -> None:
    handshake = (
        b"GET /socket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    answer = await raw_http(gateway, handshake)
    assert answer.startswith(b"HTTP/1.1 404 ")
    assert b"/ws" in answer


class _PositionlessBroker(MemoryBroker):
    """Fault injection: the broker cannot tell a topic's position."""

    async def position(self, topic: str) -> Position:
        raise RuntimeError("position store unavailable")


async def test_a_failing_command_closes_with_1011(caplog: pytest.LogCaptureFixture) -> None:
    async with Gateway(Settings(port=0, insecure=True), broker=_PositionlessBroker()) as gateway:
        async with await open_ws(gateway) as ws:
            await command(ws, "SUBSCRIBE", "s", {"topics": ["gift-list:1"]})
            with pytest.raises(ConnectionClosed):
                await recv(ws)
            assert ws.close_code == 1011
        assert gateway.hub.subscriber_count("gift-list:1") == 0
    assert any("command failed" in r.getMessage() for r in caplog.records)


async def test_idle_or_trickling_http_connections_are_closed(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(http_timeout=0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    try:
        writer.write(b"POST /v1/publish HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
    finally:
        writer.close()
        await writer.wait_closed()


async def test_static_files_are_served_and_confined(http: httpx.AsyncClient) -> None:
    page = await http.get("/static/index.html")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert b"eventwire" in page.content
    escapes = ["/static/../http_api.py", "/static/%2e%2e/http_api.py", "/static/.x", "/static/"]
    for escape in escapes:
        assert (await http.get(escape)).status_code == 404


class _UnreadyBroker(MemoryBroker):
    """A broker whose link to its server is down."""

    ready = False


async def test_readyz_fails_while_the_broker_link_is_down() -> None:
    gateway = Gateway(Settings(port=0, insecure=True), broker=_UnreadyBroker())
    async with gateway, httpx.AsyncClient(base_url=gateway.url) as http:
        readyz = await http.get("/readyz")
        assert error_of(readyz) == (503, "NOT_READY")
        assert (await http.get("/healthz")).status_code == 200  # alive, just not ready


async def test_websocket_upgrade_on_a_kept_alive_connection(gateway: Gateway) -> None:
    handshake = (
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # like Node's fetch, then...
        await writer.drain()
        first = await asyncio.wait_for(reader.readuntil(b'{"status":"ok"}'), 5)
        assert first.startswith(b"HTTP/1.1 200 ")
        writer.write(handshake)  # ...its WebSocket, on the same pooled connection
        await writer.drain()
        switched = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert switched.startswith(b"HTTP/1.1 101 ")
        greeting = await asyncio.wait_for(reader.read(1024), 5)
        assert b'"event":"CONNECTED"' in greeting
    finally:
        writer.close()
        await writer.wait_closed()


async def test_shutdown_closes_kept_alive_http_connections(start_gateway: StartGateway) -> None:
    gateway = await start_gateway()
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        await asyncio.wait_for(reader.readuntil(b'{"status":"ok"}'), 5)
        await gateway.stop()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, not left serving
    finally:
        writer.close()
        await writer.wait_closed()


async def test_history_pages_through_a_topic(gateway: Gateway, http: httpx.AsyncClient) -> None:
    for i in range(5):
        await gateway.publish(event("gift-list:7", entity_id=f"gift-{i}"))
    page = (await http.get("/v1/topics/gift-list:7/history?since=1&limit=2")).json()
    assert [e["seq"] for e in page["events"]] == [2, 3]
    assert page["events"][0]["data"]["entity_id"] == "gift-1"  # the delivered envelope
    assert (page["has_more"], page["next_since"], page["truncated"]) == (True, 3, False)
    assert page["position"]["seq"] == 5
    rest = (await http.get("/v1/topics/gift-list:7/history?since=3")).json()
    assert [e["seq"] for e in rest["events"]] == [4, 5]
    assert rest["has_more"] is False
    bad = await http.get("/v1/topics/gift-list:7/history?limit=0")
    assert error_of(bad) == (422, "VALIDATION_ERROR")
    assert bad.json()["details"]["field"] == "limit"


class _DownBroker(MemoryBroker):
    """A broker whose server went away after start."""

    async def publish(self, topic: str, body: bytes) -> int:
        raise BrokerUnavailable("connection refused")

    async def position(self, topic: str) -> Position:
        raise BrokerUnavailable("connection refused")


async def test_an_unreachable_broker_is_503_not_a_lost_event() -> None:
    gateway = Gateway(Settings(port=0, insecure=True), broker=_DownBroker())
    async with gateway, httpx.AsyncClient(base_url=gateway.url) as http:
        published = await http.post("/v1/publish", json=event())
        assert error_of(published) == (503, "BROKER_UNAVAILABLE")
        batch = await http.post("/v1/publish", json={"events": [event(), event()]})
        assert batch.json()["details"] == {"published": 0}
        assert error_of(await http.get("/v1/topics/gift-list:1")) == (503, "BROKER_UNAVAILABLE")
