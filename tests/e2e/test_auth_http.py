"""The HTTP API with keys, and revocation: POST /v1/revoke ends access on live sockets."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from eventwire.auth import hash_api_key
from eventwire.server import Gateway
from tests.e2e.conftest import (
    ADMIN_KEY,
    TIMEOUT,
    StartGateway,
    auth,
    barrier,
    closed,
    command,
    connect_ws,
    error_of,
    event,
    open_ws,
    recv,
    subscribe,
    token,
)

ORDERS_KEY = "ew_orders-key-for-tests-0123456789abcdef"
ACME_KEY = "ew_acme-key-for-tests-0123456789abcdef"
KEYS = [
    {"name": "orders", "hash": hash_api_key(ORDERS_KEY), "patterns": ["gift-list:*"]},
    {
        "name": "acme",
        "hash": hash_api_key(ACME_KEY),
        "patterns": ["room:*", "tenant:acme:*"],
        "tenant_id": "acme",
    },
]


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@pytest.fixture
async def keyed(start_gateway: StartGateway) -> Gateway:
    return await start_gateway(**auth(admin_key=ADMIN_KEY, api_keys=KEYS))


async def _http(gateway: Gateway) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=gateway.url, timeout=TIMEOUT)


async def test_routes_need_a_key(keyed: Gateway) -> None:
    async with await _http(keyed) as http:
        for method, path in [
            ("POST", "/v1/publish"),
            ("GET", "/v1/topics/gift-list:1"),
            ("GET", "/v1/stats"),
            ("POST", "/v1/revoke"),
        ]:
            response = await http.request(method, path, json={})
            assert response.status_code == 401, path
            assert response.json()["code"] == "UNAUTHORIZED"
            wrong = await http.request(method, path, json={}, headers=bearer("ew_nope"))
            assert wrong.status_code == 401
            assert wrong.json()["details"] == {"reason": "unknown_key"}
        for path in ["/healthz", "/readyz", "/metrics", "/"]:
            assert (await http.get(path)).status_code == 200, path


async def test_a_key_publishes_within_its_patterns(keyed: Gateway) -> None:
    async with await _http(keyed) as http:
        ok = await http.post("/v1/publish", json=event("gift-list:1"), headers=bearer(ORDERS_KEY))
        assert ok.status_code == 200
        assert ok.json()["seq"] == 1
        refused = await http.post(
            "/v1/publish", json=event("room:lobby"), headers=bearer(ORDERS_KEY)
        )
        assert refused.status_code == 403
        assert refused.json() == {
            "code": "FORBIDDEN",
            "message": "not allowed",
            "details": {"topic": "room:lobby"},
        }
        batch = {"events": [event("gift-list:2"), event("room:lobby"), event("gift-list:3")]}
        whole = await http.post("/v1/publish", json=batch, headers=bearer(ORDERS_KEY))
        assert whole.status_code == 403
        assert whole.json()["details"] == {"topic": "room:lobby", "index": 1}
        topic = await http.get("/v1/topics/gift-list:2", headers=bearer(ORDERS_KEY))
        assert topic.json()["position"]["seq"] == 0  # refused whole: nothing published
        other = await http.get("/v1/topics/room:lobby", headers=bearer(ORDERS_KEY))
        assert other.status_code == 403
        assert (await http.get("/v1/stats", headers=bearer(ORDERS_KEY))).status_code == 403
        assert (await http.get("/v1/stats", headers=bearer(ADMIN_KEY))).status_code == 200
        admin = await http.post("/v1/publish", json=event("room:1"), headers=bearer(ADMIN_KEY))
        assert admin.status_code == 200
    errors = keyed.metrics.registry.get_sample_value
    assert errors("eventwire_errors_total", {"code": "FORBIDDEN"}) == 4
    assert errors("eventwire_errors_total", {"code": "UNAUTHORIZED"}) is None


async def test_a_tenant_bound_key_tags_and_stays_in_its_tenant(keyed: Gateway) -> None:
    admin = token(keyed, "root", admin=True)
    async with await open_ws(keyed, admin) as ws, await _http(keyed) as http:
        await subscribe(ws, "room:lobby")
        published = await http.post(
            "/v1/publish", json=event("room:lobby"), headers=bearer(ACME_KEY)
        )
        assert published.status_code == 200
        assert (await recv(ws))["data"]["tenant_id"] == "acme"  # filled in
        for refused in [event("room:lobby", tenant_id="globex"), event("tenant:globex:room")]:
            response = await http.post("/v1/publish", json=refused, headers=bearer(ACME_KEY))
            assert response.status_code == 403, refused
        own = await http.post(
            "/v1/publish", json=event("tenant:acme:room"), headers=bearer(ACME_KEY)
        )
        assert own.status_code == 200


# --- revocation ------------------------------------------------------------------------


async def _revoke(gateway: Gateway, body: dict[str, Any]) -> dict[str, Any]:
    async with await _http(gateway) as http:
        response = await http.post("/v1/revoke", json=body, headers=bearer(ADMIN_KEY))
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer


async def test_revoking_a_user_closes_their_connections_and_refuses_the_token(
    keyed: Gateway,
) -> None:
    grants = {"subscribe": ["room:*"]}
    u1 = token(keyed, "u1", **grants)
    async with (
        await open_ws(keyed, u1) as first,
        await open_ws(keyed, u1) as second,
        await open_ws(keyed, token(keyed, "u2", **grants)) as bystander,
    ):
        await subscribe(bystander, "room:lobby")
        assert await _revoke(keyed, {"user_id": "u1"}) == {"connections": 2, "subscriptions": 0}
        for ws in (first, second):
            code, [notice] = await asyncio.wait_for(closed(ws), 1.0)  # within a second
            assert code == 4503
            assert error_of(notice)["code"] == "REVOKED"
        await keyed.publish(event("room:lobby"))
        assert len(await barrier(bystander)) == 1
    again = await connect_ws(keyed, u1)  # the same token stays refused
    code, [refusal] = await closed(again)
    assert (code, error_of(refusal)["code"]) == (4503, "REVOKED")
    # A token issued after the revocation (same-second ones count as before it) is accepted.
    async with await open_ws(keyed, token(keyed, "u1", now=time.time() + 2)) as fresh:
        await barrier(fresh)


async def test_revoking_a_tenant(keyed: Gateway) -> None:
    async with (
        await open_ws(keyed, token(keyed, "u1", tenant="acme")) as acme,
        await open_ws(keyed, token(keyed, "u1", tenant="globex")) as globex,
    ):
        answer = await _revoke(keyed, {"tenant_id": "acme", "block_for": 0})
        assert answer == {"connections": 1, "subscriptions": 0}
        assert (await closed(acme, timeout=1.0))[0] == 4503
        await barrier(globex)


async def test_revoking_a_pattern_ends_matching_subscriptions(keyed: Gateway) -> None:
    grants = {"subscribe": ["gift-list:*", "room:*"]}
    async with (
        await open_ws(keyed, token(keyed, "u1", **grants)) as ws,
        await open_ws(keyed, token(keyed, "root", admin=True)) as admin,
    ):
        await subscribe(ws, "gift-list:1", "gift-list:2", "room:lobby")
        await subscribe(admin, "gift-list:*", "room:lobby")
        answer = await _revoke(keyed, {"pattern": "gift-list:*"})
        assert answer == {"connections": 0, "subscriptions": 3}
        notice = error_of(await recv(ws, timeout=1.0))
        assert (notice["code"], notice["details"]) == (
            "REVOKED",
            {"topics": ["gift-list:1", "gift-list:2"]},
        )
        assert error_of(await recv(admin, timeout=1.0))["details"] == {"topics": ["gift-list:*"]}
        for topic in ["gift-list:1", "room:lobby"]:
            await keyed.publish(event(topic))
        assert [f["topic"] for f in await barrier(ws)] == ["room:lobby"]
        assert [f["topic"] for f in await barrier(admin)] == ["room:lobby"]
        # While the revocation lasts, subscribing again is refused.
        await subscribe_refused(ws, "gift-list:1")


async def subscribe_refused(ws: ClientConnection, topic: str) -> None:
    await command(ws, "SUBSCRIBE", "again", {"topics": [topic]})
    assert error_of(await recv(ws))["code"] == "FORBIDDEN"
    assert (await recv(ws))["data"]["payload"]["topics"] == []


async def test_revoke_validates_its_body(keyed: Gateway) -> None:
    async with await _http(keyed) as http:
        empty = await http.post("/v1/revoke", json={}, headers=bearer(ADMIN_KEY))
        assert empty.status_code == 422
        assert empty.json()["code"] == "VALIDATION_ERROR"
        bad = await http.post("/v1/revoke", json={"pattern": "Bad"}, headers=bearer(ADMIN_KEY))
        assert bad.json()["details"]["field"] == "pattern"
        key = await http.post("/v1/revoke", json={"user_id": "u"}, headers=bearer(ORDERS_KEY))
        assert key.status_code == 403


async def test_history_shows_a_tenant_key_only_its_tenant_and_untagged_events(
    keyed: Gateway,
) -> None:
    for tenant in ("acme", "globex", None):
        data = {"tenant_id": tenant} if tenant else {}
        await keyed.publish(event("room:lobby", **data))
    async with await _http(keyed) as http:
        path = "/v1/topics/room:lobby/history"
        acme = (await http.get(path, headers=bearer(ACME_KEY))).json()["events"]
        admin = (await http.get(path, headers=bearer(ADMIN_KEY))).json()["events"]
    assert [e["data"].get("tenant_id") for e in acme] == ["acme", None]
    assert [e["seq"] for e in admin] == [1, 2, 3]
