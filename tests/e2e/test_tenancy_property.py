"""Property: through one real server, nobody receives an event they may not see, and
everybody receives every event they may see, exactly once.

Hypothesis draws tenants, users, admins, grants (with placeholders), what each
connection asks to subscribe to (topics at several depths, and patterns) and
tenant-tagged or untagged events. A small model here, written from the rules
in docs/security.md and not from the code, says which subscriptions must be
accepted and which events must arrive; PING round trips are the barriers that
say every delivery is in.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection

from eventwire.server import Gateway
from eventwire.topics import is_pattern, pattern_matches
from tests.e2e.conftest import (
    StartGateway,
    auth,
    barrier,
    command,
    event,
    open_ws,
    recv,
    token,
)

TENANTS = (None, "acme", "globex")
USERS = ("u1", "u2")
TOPICS = (
    "room:lobby",
    "room:lobby:chat",
    "gift-list:1",
    "tenant:acme:room",
    "tenant:globex:room",
    "tenant:acme:room:chat",
    "user:u1:inbox",
    "user:u2:inbox",
)
PATTERNS = ("room:*", "*", "tenant:acme:*", "tenant:*", "*:inbox", "user:*:inbox")
GRANTS = ("room:*", "gift-list:*", "user:{user_id}:*", "tenant:{tenant_id}:*", "tenant:*", "*")


@dataclass(frozen=True)
class Peer:
    user: str
    tenant: str | None
    admin: bool
    grants: tuple[str, ...]
    wants: tuple[str, ...]

    @property
    def global_admin(self) -> bool:
        return self.admin and self.tenant is None


# -- the model ---------------------------------------------------------------------------


def _expanded(peer: Peer) -> list[str]:
    values = {"{user_id}": peer.user, "{tenant_id}": peer.tenant}
    kept = []
    for grant in peer.grants:
        for placeholder, value in values.items():
            if placeholder in grant:
                grant = grant.replace(placeholder, value) if value else ""
        if grant:
            kept.append(grant)
    return kept


def _tenant_allows(peer: Peer, name: str) -> bool:
    if peer.global_admin:
        return True
    first, _, rest = name.partition(":")
    if first == "*":  # could stand for tenant:<another>
        return False
    return first != "tenant" or (peer.tenant is not None and rest.split(":")[0] == peer.tenant)


def may_subscribe(peer: Peer, name: str) -> bool:
    if is_pattern(name) and not peer.admin:
        return False
    if not _tenant_allows(peer, name):
        return False
    return peer.admin or any(pattern_matches(grant, name) for grant in _expanded(peer))


def may_see(peer: Peer, subscribed: list[str], topic: str, tenant: str | None) -> bool:
    if not any(pattern_matches(name, topic) for name in subscribed):
        return False
    return tenant is None or peer.global_admin or peer.tenant == tenant


# -- the property ------------------------------------------------------------------------

peers = st.builds(
    Peer,
    user=st.sampled_from(USERS),
    tenant=st.sampled_from(TENANTS),
    admin=st.booleans(),
    grants=st.lists(st.sampled_from(GRANTS), unique=True, max_size=3).map(tuple),
    wants=st.lists(st.sampled_from(TOPICS + PATTERNS), unique=True, min_size=1, max_size=4).map(
        tuple
    ),
)
events = st.lists(st.tuples(st.sampled_from(TOPICS), st.sampled_from(TENANTS)), max_size=6)
_examples = itertools.count()


@pytest.fixture
async def shared(start_gateway: StartGateway) -> Gateway:
    """One server for every example (user buckets off: the examples come fast)."""
    return await start_gateway(**auth(user_commands_per_second=0))


async def _subscribe(ws: ClientConnection, wants: tuple[str, ...]) -> list[str]:
    await command(ws, "SUBSCRIBE", "s", {"topics": list(wants)})
    while (frame := await recv(ws))["event"] == "ERROR":
        pass
    accepted: list[str] = frame["data"]["payload"]["topics"]
    return accepted


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(drawn=st.lists(peers, min_size=1, max_size=4), published=events)
async def test_every_connection_sees_exactly_what_it_may(
    shared: Gateway, drawn: list[Peer], published: list[tuple[str, str | None]]
) -> None:
    gateway, run = shared, next(_examples)
    sockets = []
    try:
        for peer in drawn:
            jwt = token(
                gateway,
                peer.user,
                tenant=peer.tenant,
                admin=peer.admin,
                subscribe=list(peer.grants),
            )
            sockets.append(await open_ws(gateway, jwt))
        accepted = [
            await _subscribe(ws, peer.wants) for ws, peer in zip(sockets, drawn, strict=True)
        ]
        for peer, names in zip(drawn, accepted, strict=True):
            assert names == [name for name in peer.wants if may_subscribe(peer, name)], peer

        ids = [f"r{run}-e{i}" for i in range(len(published))]
        for entity_id, (topic, tenant) in zip(ids, published, strict=True):
            await gateway.publish(event(topic, entity_id=entity_id, tenant_id=tenant))

        for ws, peer, names in zip(sockets, drawn, accepted, strict=True):
            received = [frame["data"]["entity_id"] for frame in await barrier(ws)]
            expected = [
                entity_id
                for entity_id, (topic, tenant) in zip(ids, published, strict=True)
                if may_see(peer, names, topic, tenant)
            ]
            assert received == expected, (peer, names, published)
    finally:
        for ws in sockets:
            await ws.close()
