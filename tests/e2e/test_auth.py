"""Authentication over real sockets: tokens, AUTH, timeouts, expiry, refresh, caps, Origin."""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from eventwire.auth import AuthSettings, mint
from eventwire.auth.errors import AuthConfigError
from eventwire.server import Gateway, Settings
from tests.e2e.conftest import (
    SECRET,
    TIMEOUT,
    StartGateway,
    auth,
    authenticate,
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

GRANTS = {"subscribe": ["gift-list:*", "room:*"]}


async def test_a_token_in_the_url_authenticates_the_connection(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(**auth())
    jwt = token(gateway, "u1", tenant="acme", **GRANTS)
    async with await connect_ws(gateway, jwt) as ws:
        hello = await recv(ws)
        assert hello["event"] == "CONNECTED"
        assert hello["data"]["entity_id"] == "u1"
        assert hello["data"]["payload"]["user_id"] == "u1"
        assert hello["data"]["payload"]["tenant_id"] == "acme"
        assert "expires_at" in hello["data"]["payload"]
        await subscribe(ws, "gift-list:1")
        await gateway.publish(event("gift-list:1"))
        assert (await recv(ws))["topic"] == "gift-list:1"


async def test_auth_as_the_first_frame_authenticates(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(**auth())
    async with await open_ws(gateway) as ws:
        reply = await authenticate(ws, token(gateway, "u1", **GRANTS), "a1")
        assert reply["data"]["entity_id"] == "a1"
        assert reply["data"]["payload"]["user_id"] == "u1"
        await subscribe(ws, "room:lobby")
        await gateway.publish(event("room:lobby"))
        assert (await recv(ws))["topic"] == "room:lobby"


@pytest.mark.parametrize(
    ("kind", "code", "close"),
    [
        ("missing", "UNAUTHORIZED", 4501),
        ("forged", "UNAUTHORIZED", 4501),
        ("garbage", "UNAUTHORIZED", 4501),
        ("expired", "TOKEN_EXPIRED", 4001),
    ],
)
@pytest.mark.parametrize("where", ["url", "auth"])
async def test_refused_tokens_close_with_their_code(
    start_gateway: StartGateway, kind: str, code: str, close: int, where: str
) -> None:
    gateway = await start_gateway(**auth(jwt_leeway=0))
    forger = AuthSettings.model_validate({"jwt_secret": "not-" + SECRET})
    jwt = {
        "missing": "",
        "forged": mint(forger, sub="u1"),
        "garbage": "eyJ.not.a-token",
        "expired": token(gateway, "u1", now=time.time() - 120, ttl=60),
    }[kind]
    if where == "url" and kind != "missing":
        ws = await connect_ws(gateway, jwt)
    else:
        ws = await open_ws(gateway)
        if kind == "missing":
            await command(ws, "SUBSCRIBE", "s1", {"topics": ["room:lobby"]})
        else:
            await command(ws, "AUTH", "a1", {"token": jwt})
    code_closed, frames = await closed(ws)
    assert code_closed == close
    [refusal] = frames
    assert error_of(refusal)["code"] == code
    if jwt:
        assert jwt not in str(refusal)


async def test_no_auth_in_time_closes_with_4003(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(**auth(auth_timeout=0.2))
    async with await open_ws(gateway) as ws:
        await command(ws, "PING", "p")  # answered, but it is not AUTH
        code, frames = await closed(ws)
    assert code == 4003
    assert [f["event"] for f in frames] == ["PONG"]


async def test_expiry_sends_token_expired_then_closes_after_the_grace(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(**auth(jwt_leeway=0, token_expiry_grace=0.2))
    async with await open_ws(gateway, token(gateway, "u1", ttl=1, **GRANTS)) as ws:
        await subscribe(ws, "room:lobby")
        expired = await recv(ws, timeout=3)  # within a second: exp is the next whole second
        assert error_of(expired)["code"] == "TOKEN_EXPIRED"
        assert expired["data"]["entity_id"] == "connection"
        assert error_of(expired)["details"] == {"reason": "expired", "grace": 0.2}
        # Until the close, events still flow; new subscriptions are refused.
        await gateway.publish(event("room:lobby"))
        assert (await recv(ws))["topic"] == "room:lobby"
        await command(ws, "SUBSCRIBE", "s2", {"topics": ["room:dev"]})
        assert error_of(await recv(ws))["code"] == "TOKEN_EXPIRED"
        code, _ = await closed(ws)
    assert code == 4001


async def test_refresh_within_the_grace_keeps_the_connection_and_subscriptions(
    start_gateway: StartGateway,
) -> None:
    grace = 0.3
    gateway = await start_gateway(**auth(jwt_leeway=0, token_expiry_grace=grace))
    async with await open_ws(gateway, token(gateway, "u1", ttl=1, **GRANTS)) as ws:
        await subscribe(ws, "room:lobby")
        assert error_of(await recv(ws, timeout=3))["code"] == "TOKEN_EXPIRED"
        reply = await authenticate(ws, token(gateway, "u1", ttl=3600, **GRANTS), "refresh")
        assert reply["data"]["payload"]["user_id"] == "u1"
        await asyncio.sleep(grace + 0.1)  # past the old deadline: nothing can be awaited
        await gateway.publish(event("room:lobby"))
        [delivered] = await barrier(ws)
        assert delivered["topic"] == "room:lobby"
        await subscribe(ws, "room:dev")  # no longer expiring


async def test_refresh_before_expiry_applies_the_new_grants(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(**auth())
    async with await open_ws(gateway, token(gateway, "u1", **GRANTS)) as ws:
        await subscribe(ws, "gift-list:1", "room:lobby")
        await command(ws, "AUTH", "a2", {"token": token(gateway, "u1", subscribe=["room:*"])})
        dropped, reply = await recv(ws), await recv(ws)
        assert error_of(dropped) == {
            "code": "FORBIDDEN",
            "message": "not allowed",
            "details": {"topic": "gift-list:1"},
        }
        assert dropped["data"]["entity_id"] == "a2"
        assert reply["event"] == "AUTHENTICATED"
        await gateway.publish(event("gift-list:1"))
        await gateway.publish(event("room:lobby"))
        assert [f["topic"] for f in await barrier(ws)] == ["room:lobby"]


async def test_refresh_to_another_user_is_refused(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(**auth())
    async with await open_ws(gateway, token(gateway, "u1", **GRANTS)) as ws:
        await subscribe(ws, "room:lobby")
        await command(ws, "AUTH", "a2", {"token": token(gateway, "u2", **GRANTS)})
        refusal = error_of(await recv(ws))
        assert (refusal["code"], refusal["details"]) == (
            "UNAUTHORIZED",
            {"reason": "other_principal"},
        )
        await gateway.publish(event("room:lobby"))  # still u1, still subscribed
        assert [f["topic"] for f in await barrier(ws)] == ["room:lobby"]


async def test_anonymous_connections_hold_only_anonymous_grants(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(allow_anonymous=True, anonymous_subscribe=["public:*"])
    async with await open_ws(gateway) as ws:
        await command(ws, "SUBSCRIBE", "s1", {"topics": ["public:news", "room:lobby"]})
        assert error_of(await recv(ws))["details"] == {"topic": "room:lobby"}
        assert (await recv(ws))["data"]["payload"]["topics"] == ["public:news"]


# --- handshake checks -----------------------------------------------------------------


async def test_origin_allow_list(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(allowed_origins=["https://app.example.com"])
    with pytest.raises(InvalidStatus) as refused:
        await connect_ws(gateway, origin="https://evil.example.com")
    assert refused.value.response.status_code == 403
    async with await open_ws(gateway, origin="https://app.example.com") as ws:
        await barrier(ws)
    async with await open_ws(gateway) as ws:  # no Origin: not a browser
        await barrier(ws)


async def test_a_doubled_origin_is_refused(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(allowed_origins=["https://app.example.com"])
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(
        b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"Origin: https://app.example.com\r\nOrigin: https://evil.example.com\r\n\r\n"
    )
    status = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    assert status.startswith(b"HTTP/1.1 403 ")
    async with await open_ws(gateway, origin="https://app.example.com") as ws:
        await barrier(ws)


async def test_per_user_connection_cap_closes_with_4009(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(**auth(max_connections_per_user=1))
    jwt = token(gateway, "u1")
    async with await open_ws(gateway, jwt) as first:
        second = await connect_ws(gateway, jwt)
        code, [refusal] = await closed(second)
        assert code == 4009
        assert error_of(refusal)["code"] == "TOO_MANY_CONNECTIONS"
        assert error_of(refusal)["details"] == {"scope": "user", "limit": 1}
        # AUTH counts the same way.
        third = await open_ws(gateway)
        await command(third, "AUTH", "a1", {"token": jwt})
        code, _ = await closed(third)
        assert code == 4009
        await barrier(first)
    async with await open_ws(gateway, jwt) as again:  # the slot was given back
        await barrier(again)
    assert gateway.guard.conn_limits.count(user=(None, "u1")) == 0


async def test_per_ip_and_pending_caps_refuse_the_handshake(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(**auth(max_unauthenticated=1))
    async with await open_ws(gateway):
        with pytest.raises(InvalidStatus) as refused:
            await connect_ws(gateway)
        assert refused.value.response.status_code == 429
        async with await open_ws(gateway, token(gateway, "u1")) as with_token:
            await barrier(with_token)
    by_ip = await start_gateway(max_connections_per_ip=1)
    async with await open_ws(by_ip):
        with pytest.raises(InvalidStatus) as refused:
            await connect_ws(by_ip)
        assert refused.value.response.status_code == 429
    assert by_ip.metrics.registry.get_sample_value(
        "eventwire_errors_total", {"code": "TOO_MANY_CONNECTIONS"}
    )


# --- client publishing -------------------------------------------------------------------


async def test_client_publish_is_stamped_with_the_publisher(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(**auth(client_publishable=["MESSAGE_POSTED"]))
    writer_jwt = token(gateway, "u1", tenant="acme", publish=["room:*"], subscribe=["room:*"])
    async with (
        await open_ws(gateway, token(gateway, "u2", tenant="acme", subscribe=["room:*"])) as reader,
        await open_ws(gateway, writer_jwt) as writer,
    ):
        await subscribe(reader, "room:lobby")
        forged = event("room:lobby", "MESSAGE_POSTED", user_id="admin", tenant_id="globex")
        await command(writer, "PUBLISH", "pub-1", {"event": forged})
        published = await recv(writer)
        assert (published["event"], published["data"]["entity_id"]) == ("PUBLISHED", "pub-1")
        assert published["data"]["payload"] == {
            "topic": "room:lobby",
            "event": "MESSAGE_POSTED",
            "seq": 1,
        }
        delivered = await recv(reader)
        assert (delivered["data"]["user_id"], delivered["data"]["tenant_id"]) == ("u1", "acme")
        assert delivered["seq"] == 1

        await command(writer, "PUBLISH", "pub-2", {"event": event("gift-list:1", "ADDED")})
        refusal = await recv(writer)
        assert refusal["data"]["entity_id"] == "pub-2"
        assert error_of(refusal) == {
            "code": "FORBIDDEN",
            "message": "not allowed",
            "details": {"topic": "gift-list:1"},
        }


async def test_client_publish_stays_off_without_publishable_types(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(**auth())
    async with await open_ws(gateway, token(gateway, "u1", publish=["room:*"])) as ws:
        await command(ws, "PUBLISH", "p", {"event": event("room:lobby", "MESSAGE_POSTED")})
        assert error_of(await recv(ws))["code"] == "NOT_SUPPORTED"


# --- configuration --------------------------------------------------------------------


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTWIRE_JWT_SECRET", SECRET)
    monkeypatch.setenv("EVENTWIRE_GRANT_SUBSCRIBE", '["user:{user_id}:*"]')
    monkeypatch.setenv("EVENTWIRE_ALLOWED_ORIGINS", '["https://App.example.com"]')
    settings = Settings()
    assert settings.auth_enabled
    assert settings.grant_subscribe == ["user:{user_id}:*"]
    assert settings.allowed_origins == ["https://app.example.com"]


def test_an_unusable_key_file_stops_the_gateway() -> None:
    with pytest.raises(AuthConfigError, match="jwt_public_key_file"):
        Gateway(Settings(jwt_public_key_file="/nonexistent/key.pem"))


async def test_an_open_gateway_says_so_at_start(
    start_gateway: StartGateway, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="eventwire.auth"):
        await start_gateway()
    assert "insecure: every WebSocket may subscribe" in caplog.text
    assert "insecure: the HTTP API takes no key" in caplog.text


def test_a_gateway_without_credentials_refuses_to_start_unless_insecure() -> None:
    with pytest.raises(AuthConfigError, match="no way to authenticate WebSocket connections"):
        Gateway(Settings())
    assert not Gateway(Settings(insecure=True)).guard.enabled


async def test_without_api_keys_the_http_api_is_closed_outside_insecure_mode(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(jwt_secret=SECRET, insecure=False)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=TIMEOUT) as http:
        response = await http.post("/v1/publish", json=event())
    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHORIZED"
    assert "no API key configured" in response.json()["message"]
