"""Who a connection counts as on a topic, what a reader may see of it, and the events (no I/O).

A member is a user within a tenant: the same ``user_id`` under two tenants
is two people. Connections without a user (anonymous, or any connection
while authentication is off) count together as the topic's anonymous
connections: counted, never listed, never announced. Its key is what the
broker stores, ``["<tenant or null>", "<user or null>"]`` as JSON.

What a reader sees follows the rule that decides who receives an event
tagged with a tenant (``hub.admits``): a tenant's reader sees its tenant's
members and those without a tenant, exactly the members whose USER_JOINED
it could have received; a global reader sees everyone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from eventwire.server.hub import Audience, admits
from eventwire.topics import PatternIndex, is_pattern, validate_pattern

__all__ = ["USER_JOINED", "USER_LEFT", "Member", "PresenceTopics", "listing", "presence_event"]

USER_JOINED = "USER_JOINED"
USER_LEFT = "USER_LEFT"


@dataclass(frozen=True, slots=True)
class Member:
    """A user of a tenant, or (``user_id`` None) the anonymous connections of one."""

    tenant_id: str | None
    user_id: str | None

    @property
    def key(self) -> str:
        return orjson.dumps([self.tenant_id, self.user_id]).decode()

    @classmethod
    def from_key(cls, key: str) -> Member:
        """The member a broker key names; ValueError for a key that is not one of ours."""
        try:
            tenant_id, user_id = orjson.loads(key)
        except (orjson.JSONDecodeError, TypeError, ValueError):
            raise ValueError(f"not a presence member key: {key[:100]!r}") from None
        if not all(value is None or isinstance(value, str) for value in (tenant_id, user_id)):
            raise ValueError(f"not a presence member key: {key[:100]!r}")
        return cls(tenant_id, user_id)


class PresenceTopics:
    """Which topics track presence, and on which of them joins and leaves are announced.

    A topic that matches ``announced`` is tracked too. No pattern: nothing
    is tracked and presence costs nothing.
    """

    def __init__(self, tracked: Iterable[str] = (), announced: Iterable[str] = ()) -> None:
        self._tracked: PatternIndex[bool] = PatternIndex()
        self._announced: PatternIndex[bool] = PatternIndex()
        for pattern in announced:
            self._announced.add(validate_pattern(pattern), True)
            self._tracked.add(pattern, True)
        for pattern in tracked:
            self._tracked.add(validate_pattern(pattern), True)

    def __bool__(self) -> bool:
        return len(self._tracked) > 0

    def tracks(self, topic: str) -> bool:
        return bool(self._tracked) and not is_pattern(topic) and bool(self._tracked.match(topic))

    def announces(self, topic: str) -> bool:
        return bool(self._announced) and bool(self._announced.match(topic))


def listing(topic: str, counts: Mapping[str, int], audience: Audience) -> dict[str, Any]:
    """The presence of ``topic`` as ``audience`` may see it (the HTTP body, PRESENCE_STATE)."""
    users: list[dict[str, Any]] = []
    anonymous = 0
    for key, connections in counts.items():
        try:
            member = Member.from_key(key)
        except ValueError:
            continue  # not written by a gateway: never shown
        if connections <= 0 or not admits(audience, member.tenant_id):
            continue
        if member.user_id is None:
            anonymous += connections
            continue
        user: dict[str, Any] = {"user_id": member.user_id, "connections": connections}
        if member.tenant_id is not None:
            user["tenant_id"] = member.tenant_id
        users.append(user)
    users.sort(key=lambda u: (u["user_id"], u.get("tenant_id", "")))
    return {
        "topic": topic,
        "count": len(users),
        "users": users,
        "connections": anonymous + sum(user["connections"] for user in users),
        "anonymous": anonymous,
    }


def presence_event(
    topic: str, member: Member, joined: bool, reason: str = "left"
) -> dict[str, Any]:
    """USER_JOINED or USER_LEFT of ``member`` on ``topic``, in the seed's envelope.

    ``data.entity_id`` and ``data.user_id`` are the user; ``data.tenant_id``
    their tenant, so only that tenant (and global admins) hears of them.
    USER_LEFT says why: ``left`` (their last connection went) or
    ``timeout`` (the node holding it stopped answering).
    """
    assert member.user_id is not None, "anonymous connections are never announced"
    payload: dict[str, Any] = {"user_id": member.user_id}
    if not joined:
        payload["reason"] = reason
    data: dict[str, Any] = {
        "entity_id": member.user_id,
        "payload": payload,
        "user_id": member.user_id,
    }
    if member.tenant_id is not None:
        data["tenant_id"] = member.tenant_id
    return {"topic": topic, "event": USER_JOINED if joined else USER_LEFT, "data": data}
