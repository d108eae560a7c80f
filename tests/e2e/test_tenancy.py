"""Authorization and tenants over real sockets: grants, placeholders, both tenant rules, admins."""

from __future__ import annotations

from typing import Any

from websockets.asyncio.client import ClientConnection

from tests.e2e.conftest import (
    StartGateway,
    auth,
    barrier,
    command,
    error_of,
    event,
    open_ws,
    recv,
    token,
)


async def _subscribe_all(ws: ClientConnection, *topics: str) -> tuple[list[str], list[Any]]:
    """SUBSCRIBE; return the accepted topics and the ERROR payloads of the refused ones."""
    await command(ws, "SUBSCRIBE", "s", {"topics": list(topics)})
    errors = []
    while (frame := await recv(ws))["event"] == "ERROR":
        errors.append(error_of(frame))
    assert frame["event"] == "SUBSCRIBED"
    accepted: list[str] = frame["data"]["payload"]["topics"]
    return accepted, errors


async def test_refusals_look_the_same_whatever_the_reason(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(**auth())
    jwt = token(gateway, "u1", tenant="acme", subscribe=["gift-list:*", "tenant:*:x"])
    async with await open_ws(gateway, jwt) as ws:
        refused = ["room:lobby", "tenant:globex:x", "never-used:anywhere", "gifts:1"]
        accepted, errors = await _subscribe_all(ws, "gift-list:1", "tenant:acme:x", *refused)
    assert accepted == ["gift-list:1", "tenant:acme:x"]
    assert errors == [
        {"code": "FORBIDDEN", "message": "not allowed", "details": {"topic": topic}}
        for topic in refused
    ]


async def test_placeholders_fill_in_the_users_own_ids(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(
        **auth(grant_subscribe=["user:{user_id}:*", "tenant:{tenant_id}:announcements"])
    )
    async with await open_ws(gateway, token(gateway, "u1", tenant="acme")) as ws:
        accepted, errors = await _subscribe_all(
            ws,
            "user:u1:inbox",
            "user:u2:inbox",
            "tenant:acme:announcements",
            "tenant:globex:announcements",
        )
    assert accepted == ["user:u1:inbox", "tenant:acme:announcements"]
    assert [e["details"]["topic"] for e in errors] == [
        "user:u2:inbox",
        "tenant:globex:announcements",
    ]
    # Without a tenant, the {tenant_id} grant is dropped, not widened.
    async with await open_ws(gateway, token(gateway, "u3")) as ws:
        accepted, _ = await _subscribe_all(ws, "user:u3:inbox", "tenant:acme:announcements")
    assert accepted == ["user:u3:inbox"]


async def test_tenant_in_topic_both_ways(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(**auth())
    grants = {"subscribe": ["tenant:*"], "publish": ["tenant:*"]}
    acme = token(gateway, "u1", tenant="acme", **grants)
    globex = token(gateway, "u1", tenant="globex", **grants)
    tenant_admin = token(gateway, "boss", tenant="acme", admin=True)
    global_admin = token(gateway, "root", admin=True)
    topics = ("tenant:acme:room", "tenant:globex:room")
    for jwt, allowed in [
        (acme, ["tenant:acme:room"]),
        (globex, ["tenant:globex:room"]),
        (tenant_admin, ["tenant:acme:room"]),
        (global_admin, list(topics)),
        (token(gateway, "nobody", **grants), []),
    ]:
        async with await open_ws(gateway, jwt) as ws:
            accepted, _ = await _subscribe_all(ws, *topics)
        assert accepted == allowed


async def test_tenant_in_data_on_a_shared_topic(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(**auth())
    grants = {"subscribe": ["room:*"]}
    async with (
        await open_ws(gateway, token(gateway, "a", tenant="acme", **grants)) as acme,
        await open_ws(gateway, token(gateway, "b", tenant="globex", **grants)) as globex,
        await open_ws(gateway, token(gateway, "c", **grants)) as tenantless,
        await open_ws(gateway, token(gateway, "root", admin=True)) as admin,
    ):
        everyone = (acme, globex, tenantless, admin)
        for ws in everyone:
            assert (await _subscribe_all(ws, "room:lobby"))[0] == ["room:lobby"]
        await gateway.publish(event("room:lobby", entity_id="for-acme", tenant_id="acme"))
        await gateway.publish(event("room:lobby", entity_id="for-globex", tenant_id="globex"))
        await gateway.publish(event("room:lobby", entity_id="for-all"))
        seen = [[f["data"]["entity_id"] for f in await barrier(ws)] for ws in everyone]
    assert seen == [
        ["for-acme", "for-all"],
        ["for-globex", "for-all"],
        ["for-all"],
        ["for-acme", "for-globex", "for-all"],
    ]


async def test_without_auth_nothing_is_filtered(start_gateway: StartGateway) -> None:
    gateway = await start_gateway()
    async with await open_ws(gateway) as ws:
        await _subscribe_all(ws, "room:lobby")
        await gateway.publish(event("room:lobby", tenant_id="acme"))
        assert len(await barrier(ws)) == 1


async def test_admins_watch_patterns_and_others_may_not(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(**auth(allow_pattern_subscriptions=True))
    async with await open_ws(gateway, token(gateway, "root", admin=True)) as admin:
        accepted, _ = await _subscribe_all(admin, "room:*", "*")
        assert accepted == ["room:*", "*"]
        await gateway.publish(event("room:lobby", tenant_id="acme"))
        assert len(await barrier(admin)) == 1  # once, though two patterns match
    user = token(gateway, "u1", subscribe=["room:*"])
    async with await open_ws(gateway, user) as ws:  # allow_pattern_subscriptions is ignored
        accepted, [error] = await _subscribe_all(ws, "room:*")
    assert (accepted, error["code"]) == ([], "INVALID_TOPIC")
    boss = token(gateway, "boss", tenant="acme", admin=True)
    async with await open_ws(gateway, boss) as ws:
        accepted, errors = await _subscribe_all(ws, "room:*", "tenant:acme:*", "*:messages")
        assert accepted == ["room:*", "tenant:acme:*"]
        assert [e["details"]["topic"] for e in errors] == ["*:messages"]
        await gateway.publish(event("room:lobby", tenant_id="globex"))
        await gateway.publish(event("room:lobby", entity_id="mine", tenant_id="acme"))
        assert [f["data"]["entity_id"] for f in await barrier(ws)] == ["mine"]


async def test_signing_in_moves_subscriptions_into_the_tenant(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(
        **auth(allow_anonymous=True, anonymous_subscribe=["public:*"], grant_subscribe=["public:*"])
    )
    async with await open_ws(gateway) as ws:  # anonymous
        assert (await _subscribe_all(ws, "public:news"))[0] == ["public:news"]
        await gateway.publish(event("public:news", entity_id="acme-before", tenant_id="acme"))
        await gateway.publish(event("public:news", entity_id="everyone-before"))
        assert [f["data"]["entity_id"] for f in await barrier(ws)] == ["everyone-before"]
        await command(ws, "AUTH", "a1", {"token": token(gateway, "u1", tenant="acme")})
        assert (await recv(ws))["event"] == "AUTHENTICATED"
        await gateway.publish(event("public:news", entity_id="acme-after", tenant_id="acme"))
        await gateway.publish(event("public:news", entity_id="globex-after", tenant_id="globex"))
        assert [f["data"]["entity_id"] for f in await barrier(ws)] == ["acme-after"]
    assert gateway.hub.subscriber_count("public:news") == 0
