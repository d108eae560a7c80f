"""Who a connection counts as, what a reader sees, the announcements, and the PRESENCE command."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from eventwire.codes import ErrorCode
from eventwire.envelope import decode_new_event
from eventwire.protocol import Limits, ReadPresence, Reply, Session, command_frame
from eventwire.server import Settings
from eventwire.server.hub import EVERYONE, NO_TENANT
from eventwire.server.presence import Member, PresenceTopics, listing, presence_event
from tests.unit.test_session import AuthRig, FakeClock

ALICE = Member("acme", "alice")
BOB = Member(None, "bob")
GLOBEX_ALICE = Member("globex", "alice")
ANONYMOUS = Member(None, None)


def test_member_keys_round_trip_and_refuse_what_is_not_a_key() -> None:
    for member in (ALICE, BOB, ANONYMOUS, Member("t:1", 'we"ird\nname')):
        assert Member.from_key(member.key) == member
    assert ALICE.key != GLOBEX_ALICE.key
    for bad in ("u1", "[1, 2]", '["a"]', "{}"):
        with pytest.raises(ValueError, match="not a presence member key"):
            Member.from_key(bad)


COUNTS = {ALICE.key: 2, BOB.key: 1, GLOBEX_ALICE.key: 1, ANONYMOUS.key: 3, "junk": 9}


def test_a_global_reader_sees_everyone_once_per_tenant() -> None:
    assert listing("room:1", COUNTS, EVERYONE) == {
        "topic": "room:1",
        "count": 3,
        "users": [
            {"user_id": "alice", "connections": 2, "tenant_id": "acme"},
            {"user_id": "alice", "connections": 1, "tenant_id": "globex"},
            {"user_id": "bob", "connections": 1},
        ],
        "connections": 7,
        "anonymous": 3,
    }


def test_a_tenants_reader_sees_its_tenant_and_the_untagged() -> None:
    seen = listing("room:1", COUNTS, "acme")
    assert [(u["user_id"], u.get("tenant_id")) for u in seen["users"]] == [
        ("alice", "acme"),
        ("bob", None),
    ]
    assert (seen["count"], seen["connections"], seen["anonymous"]) == (2, 6, 3)
    unbound = listing("room:1", COUNTS, NO_TENANT)
    assert [u["user_id"] for u in unbound["users"]] == ["bob"]


def test_announcements_are_valid_events_in_the_seeds_shape() -> None:
    joined = presence_event("room:lobby", ALICE, joined=True)
    assert joined == {
        "topic": "room:lobby",
        "event": "USER_JOINED",
        "data": {
            "entity_id": "alice",
            "payload": {"user_id": "alice"},
            "user_id": "alice",
            "tenant_id": "acme",
        },
    }
    left = decode_new_event(presence_event("room:lobby", BOB, joined=False, reason="timeout"))
    assert (left.event, left.data.payload, left.data.tenant_id) == (
        "USER_LEFT",
        {"user_id": "bob", "reason": "timeout"},
        None,
    )


def test_presence_topics_match_patterns_and_announced_ones_are_tracked() -> None:
    topics = PresenceTopics(["doc:*"], ["room:*"])
    assert [topics.tracks(t) for t in ("doc:1", "room:1", "gift-list:1", "room:*")] == [
        True,
        True,
        False,
        False,
    ]
    assert (topics.announces("room:1"), topics.announces("doc:1")) == (True, False)
    assert not PresenceTopics()


def test_settings_refuse_a_bad_presence_pattern() -> None:
    with pytest.raises(ValidationError, match="presence_topics"):
        Settings(presence_topics=["Room:*"], insecure=True)
    with pytest.raises(ValidationError, match="presence_ttl"):
        Settings(presence_ttl=0, insecure=True)
    assert Settings(presence_events=["room:*"], insecure=True).presence_ttl == 30.0


# --- the PRESENCE command in the session -------------------------------------------------


def _presence(rid: str, payload: Any) -> bytes:
    return command_frame("PRESENCE", rid, payload)


def _error(actions: list[Any]) -> dict[str, Any]:
    [reply] = actions
    assert isinstance(reply, Reply)
    assert reply.error is not None
    payload: dict[str, Any] = orjson.loads(reply.frame)["data"]["payload"]
    return payload


def test_presence_of_a_subscribed_topic_is_read_by_the_transport() -> None:
    session = Session("s", FakeClock().clock(), Limits())
    session.receive(command_frame("SUBSCRIBE", "s1", {"topics": ["room:1"]}))
    assert session.receive(_presence("p1", {"topic": "room:1"})) == [ReadPresence("p1", "room:1")]
    frame = orjson.loads(session.presence_state("p1", {"topic": "room:1", "count": 0}))
    assert (frame["topic"], frame["event"], frame["data"]["entity_id"]) == (
        "system",
        "PRESENCE_STATE",
        "p1",
    )


def test_presence_of_another_topic_is_refused() -> None:
    session = Session("s", FakeClock().clock(), Limits())
    refused = _error(session.receive(_presence("p1", {"topic": "room:2"})))
    assert (refused["code"], refused["details"]["field"], refused["details"]["topic"]) == (
        ErrorCode.VALIDATION_ERROR.value,
        "data.payload.topic",
        "room:2",
    )
    assert _error(session.receive(_presence("p2", {"topic": "room:*"})))["code"] == (
        ErrorCode.INVALID_TOPIC.value
    )
    assert _error(session.receive(_presence("p3", {"topics": ["room:1"]})))["code"] == (
        ErrorCode.VALIDATION_ERROR.value
    )


def test_presence_before_auth_closes_and_while_expiring_still_answers() -> None:
    rig = AuthRig()
    rig.session.start(25.0)
    codes = [type(a).__name__ for a in rig.session.receive(_presence("p", {"topic": "room:1"}))]
    assert codes == ["Reply", "Close"]
    rig = AuthRig(grant_subscribe=["room:*"])
    session = rig.signed_in("u1", ttl=60)
    session.receive(command_frame("SUBSCRIBE", "s1", {"topics": ["room:1"]}))
    rig.fake.later(61)
    session.tick(rig.fake.wall)
    assert session.receive(_presence("p", {"topic": "room:1"})) == [ReadPresence("p", "room:1")]
