"""Presence over real sockets on one gateway: tabs, USER_JOINED / USER_LEFT, tenants, the routes.

Announcements are published by the gateway after a broker round trip, so
no test can PING its way past them. Instead a test that must show that
something was *not* announced lets one more user join after it: one topic's
announcements leave a node in the order of their transitions, so when that
user's USER_JOINED arrives, anything owed before it would have arrived first.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from eventwire.auth import hash_api_key
from eventwire.brokers import presence_of
from eventwire.client import CommandFailed
from eventwire.server import Gateway
from eventwire.server.presence import Member
from eventwire.testing import TestClient
from tests.e2e.conftest import (
    ADMIN_KEY,
    TIMEOUT,
    StartGateway,
    auth,
    barrier,
    command,
    error_of,
    open_ws,
    recv,
    subscribe,
    token,
)

ACME_KEY = "ew_acme-presence-key-0123456789abcdef"
ROOMS_KEY = "ew_rooms-presence-key-0123456789abcdef"
GIFTS_KEY = "ew_gifts-presence-key-0123456789abcdef"
KEYS = [
    {"name": "acme", "hash": hash_api_key(ACME_KEY), "patterns": ["room:*"], "tenant_id": "acme"},
    {"name": "rooms", "hash": hash_api_key(ROOMS_KEY), "patterns": ["room:*"]},
    {"name": "gifts", "hash": hash_api_key(GIFTS_KEY), "patterns": ["gift-list:*"]},
]


def presence(**settings: Any) -> dict[str, Any]:
    """Authentication, keys, and presence announced on ``room:*``."""
    defaults: dict[str, Any] = {
        "grant_subscribe": ["room:*", "doc:*", "gift-list:*"],
        "presence_events": ["room:*"],
        "presence_topics": ["doc:*"],
        "admin_key": ADMIN_KEY,
        "api_keys": KEYS,
    }
    return auth(**{**defaults, **settings})


async def user(gateway: Gateway, sub: str, *topics: str, **claims: Any) -> ClientConnection:
    """A connection of user ``sub``, subscribed to ``topics``."""
    ws = await open_ws(gateway, token(gateway, sub, **claims))
    if topics:
        await subscribe(ws, *topics)
    return ws


async def next_event(ws: ClientConnection) -> dict[str, Any]:
    """The next frame that is a topic's event (not a reply)."""
    while (frame := await recv(ws))["topic"] in ("system", "error"):
        pass
    return frame


async def expect(ws: ClientConnection, kind: str, user_id: str) -> dict[str, Any]:
    frame = await next_event(ws)
    assert (frame["event"], frame["data"]["entity_id"]) == (kind, user_id), frame
    return frame


async def read(gateway: Gateway, topic: str, key: str = ADMIN_KEY) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=TIMEOUT) as http:
        headers = {"authorization": f"Bearer {key}"}
        return await http.get(f"/v1/topics/{topic}/presence", headers=headers)


def users(body: dict[str, Any]) -> dict[str, int]:
    return {entry["user_id"]: entry["connections"] for entry in body["users"]}


async def test_a_user_with_two_tabs_stays_present_until_the_last_closes(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(**presence())
    async with await user(gateway, "watcher", "room:lobby") as watcher:
        await expect(watcher, "USER_JOINED", "watcher")
        tab1 = await user(gateway, "alice", "room:lobby")
        joined = await expect(watcher, "USER_JOINED", "alice")
        assert joined["topic"] == "room:lobby"
        assert joined["data"]["payload"] == {"user_id": "alice"}
        assert joined["data"]["user_id"] == "alice"
        assert isinstance(joined["seq"], int)  # published like any event: seq and history
        tab2 = await user(gateway, "alice", "room:lobby")
        assert users((await read(gateway, "room:lobby")).json()) == {"alice": 2, "watcher": 1}
        await tab1.close()
        async with await user(gateway, "bob", "room:lobby"):
            # Nothing of alice came between: her second tab keeps her here.
            await expect(watcher, "USER_JOINED", "bob")
            assert users((await read(gateway, "room:lobby")).json()) == {
                "alice": 1,
                "bob": 1,
                "watcher": 1,
            }
            await tab2.close()
            left = await expect(watcher, "USER_LEFT", "alice")
            assert left["data"]["payload"] == {"user_id": "alice", "reason": "left"}
            assert left["seq"] > joined["seq"]
        await expect(watcher, "USER_LEFT", "bob")
        body = (await read(gateway, "room:lobby")).json()
        assert body == {
            "topic": "room:lobby",
            "count": 1,
            "users": [{"user_id": "watcher", "connections": 1}],
            "connections": 1,
            "anonymous": 0,
        }


async def test_unsubscribing_leaves_and_the_history_keeps_the_announcements(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(**presence())
    async with await user(gateway, "watcher", "room:lobby") as watcher:
        await expect(watcher, "USER_JOINED", "watcher")
        async with await user(gateway, "alice", "room:lobby") as alice:
            await expect(watcher, "USER_JOINED", "alice")
            await command(alice, "UNSUBSCRIBE", "u", {"topics": ["room:lobby"]})
            await expect(watcher, "USER_LEFT", "alice")
        async with httpx.AsyncClient(base_url=gateway.url, timeout=TIMEOUT) as http:
            response = await http.get(
                "/v1/topics/room:lobby/history", headers={"authorization": f"Bearer {ADMIN_KEY}"}
            )
        kept = [(e["event"], e["data"]["entity_id"]) for e in response.json()["events"]]
        assert kept == [
            ("USER_JOINED", "watcher"),
            ("USER_JOINED", "alice"),
            ("USER_LEFT", "alice"),
        ]


async def test_a_dead_nodes_users_leave_before_the_next_join(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(**presence())
    # What a node that died holding alice and bob leaves behind: entries under a passing lease.
    dead = {Member(None, "alice").key: 1, Member(None, "bob").key: 1}
    await presence_of(gateway.broker).presence_update("dead-node", "room:lobby", dead, 0.01)
    await asyncio.sleep(0.02)  # the lease passing: time, not an event
    async with await user(gateway, "alice", "room:lobby") as alice:
        # One write drops the dead node and counts alice: bob's leave is told first, and
        # alice, back in the same step, is told joined, never gone and back.
        left = await expect(alice, "USER_LEFT", "bob")
        assert left["data"]["payload"] == {"user_id": "bob", "reason": "timeout"}
        await expect(alice, "USER_JOINED", "alice")
        async with await user(gateway, "carol", "room:lobby"):
            await expect(alice, "USER_JOINED", "carol")  # nothing of alice came between
            assert users((await read(gateway, "room:lobby")).json()) == {"alice": 1, "carol": 1}


async def test_tracked_topics_without_events_count_silently(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(**presence())
    async with await user(gateway, "alice", "doc:1", "room:lobby") as alice:
        await expect(alice, "USER_JOINED", "alice")  # room:lobby announces; doc:1 does not
        async with await user(gateway, "bob", "doc:1"):
            body = (await read(gateway, "doc:1")).json()
            assert (users(body), body["count"]) == ({"alice": 1, "bob": 1}, 2)
        async with await user(gateway, "carol", "room:lobby"):
            await expect(alice, "USER_JOINED", "carol")  # and nothing on doc:1 before it


async def test_tenants_see_only_their_own_people(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(**presence())
    async with await user(gateway, "a1", "room:shared", tenant="acme") as acme:
        joined = await expect(acme, "USER_JOINED", "a1")
        assert joined["data"]["tenant_id"] == "acme"
        async with await user(gateway, "root", "room:shared", admin=True) as root:
            await expect(acme, "USER_JOINED", "root")  # no tenant: everyone hears of it
            await expect(root, "USER_JOINED", "root")
            async with (
                await user(gateway, "g1", "room:shared", tenant="globex"),
                await user(gateway, "a2", "room:shared", tenant="acme"),
            ):
                assert (await expect(root, "USER_JOINED", "g1"))["data"]["tenant_id"] == "globex"
                assert (await expect(root, "USER_JOINED", "a2"))["data"]["tenant_id"] == "acme"
                await expect(acme, "USER_JOINED", "a2")  # globex's g1 never reached acme
                everyone = (await read(gateway, "room:shared")).json()
                assert users(everyone) == {"a1": 1, "a2": 1, "g1": 1, "root": 1}
                assert {u["user_id"]: u.get("tenant_id") for u in everyone["users"]} == {
                    "a1": "acme",
                    "a2": "acme",
                    "g1": "globex",
                    "root": None,
                }
                own = (await read(gateway, "room:shared", ACME_KEY)).json()
                assert (users(own), own["connections"]) == ({"a1": 1, "a2": 1, "root": 1}, 3)
                await command(acme, "PRESENCE", "p", {"topic": "room:shared"})
                frames = await barrier(acme)
                state = next(f for f in frames if f["event"] == "PRESENCE_STATE")
                assert state["data"]["entity_id"] == "p"
                assert state["data"]["payload"] == own


async def test_the_same_user_id_in_two_tenants_is_two_people(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(**presence())
    async with await user(gateway, "root", "room:x", admin=True) as root:
        await expect(root, "USER_JOINED", "root")
        async with await user(gateway, "u1", "room:x", tenant="acme"):
            await expect(root, "USER_JOINED", "u1")
            async with await user(gateway, "u1", "room:x", tenant="globex"):
                await expect(root, "USER_JOINED", "u1")  # another person, another join
                body = (await read(gateway, "room:x")).json()
                assert body["users"] == [
                    {"user_id": "root", "connections": 1},
                    {"user_id": "u1", "connections": 1, "tenant_id": "acme"},
                    {"user_id": "u1", "connections": 1, "tenant_id": "globex"},
                ]
                assert body["count"] == 3


async def test_anonymous_connections_are_counted_not_named(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(**presence(allow_anonymous=True, anonymous_subscribe=["room:*"]))
    async with await open_ws(gateway) as anonymous, await open_ws(gateway) as other:
        await subscribe(anonymous, "room:lobby")
        await subscribe(other, "room:lobby")
        async with await user(gateway, "alice", "room:lobby"):
            await expect(anonymous, "USER_JOINED", "alice")  # the first announcement there
            body = (await read(gateway, "room:lobby")).json()
            assert (users(body), body["anonymous"], body["connections"]) == ({"alice": 1}, 2, 3)
            # An anonymous connection that signs in becomes its user, there and then.
            await command(other, "AUTH", "a", {"token": token(gateway, "bob")})
            await expect(anonymous, "USER_JOINED", "bob")
            body = (await read(gateway, "room:lobby")).json()
            assert (users(body), body["anonymous"]) == ({"alice": 1, "bob": 1}, 1)


async def test_presence_route_keys_and_refusals(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(**presence())
    async with await user(gateway, "alice", "room:lobby") as alice:
        await expect(alice, "USER_JOINED", "alice")
        async with httpx.AsyncClient(base_url=gateway.url, timeout=TIMEOUT) as http:
            assert (await http.get("/v1/topics/room:lobby/presence")).status_code == 401
            wrong = await http.get(
                "/v1/topics/room:lobby/presence", headers={"authorization": "Bearer nope"}
            )
            assert wrong.status_code == 401
            post = await http.post(
                "/v1/topics/room:lobby/presence", headers={"authorization": f"Bearer {ADMIN_KEY}"}
            )
            assert (post.status_code, post.json()["code"]) == (405, "METHOD_NOT_ALLOWED")
        forbidden = await read(gateway, "room:lobby", GIFTS_KEY)
        assert (forbidden.status_code, forbidden.json()["code"]) == (403, "FORBIDDEN")
        assert users((await read(gateway, "room:lobby", ROOMS_KEY)).json()) == {"alice": 1}
        untracked = await read(gateway, "gift-list:1")
        assert (untracked.status_code, untracked.json()["code"]) == (501, "NOT_SUPPORTED")
        bad = await read(gateway, "Room:1")
        assert (bad.status_code, bad.json()["code"]) == (422, "INVALID_TOPIC")


async def test_presence_command_refusals(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(**presence())
    async with await user(gateway, "alice", "room:lobby", "gift-list:1") as alice:
        await expect(alice, "USER_JOINED", "alice")
        await command(alice, "PRESENCE", "p1", {"topic": "room:other"})
        refused = error_of(await recv(alice))
        assert refused["code"] == "VALIDATION_ERROR"
        assert refused["details"]["field"] == "data.payload.topic"
        await command(alice, "PRESENCE", "p2", {"topic": "gift-list:1"})
        assert error_of(await recv(alice))["code"] == "NOT_SUPPORTED"
        await command(alice, "PRESENCE", "p3", {})
        assert error_of(await recv(alice))["details"]["field"] == "data.payload.topic"


async def test_without_presence_settings_nothing_is_tracked(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(**auth(grant_subscribe=["room:*"], admin_key=ADMIN_KEY))
    async with await user(gateway, "alice", "room:lobby") as alice:
        response = await read(gateway, "room:lobby")
        assert (response.status_code, response.json()["code"]) == (501, "NOT_SUPPORTED")
        assert await barrier(alice) == []
    assert not gateway.presence.topics


async def test_the_python_client_asks_presence(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(**presence())
    async with (
        TestClient(gateway.ws_url, token=token(gateway, "alice", tenant="acme")) as alice,
        await user(gateway, "bob", "room:lobby"),
    ):
        await alice.subscribe("room:lobby")
        await alice.expect("room:lobby", "USER_JOINED", where=lambda e: e.entity_id == "alice")
        state = await alice.presence("room:lobby")
        assert (users(state), state["count"]) == ({"alice": 1, "bob": 1}, 2)
        with pytest.raises(CommandFailed) as refused:
            await alice.presence("room:other")
        assert refused.value.code == "VALIDATION_ERROR"
