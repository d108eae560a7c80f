"""The I/O-free protocol session, driven with a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from eventwire.auth import (
    Authorizer,
    AuthSettings,
    RevokeRequest,
    TokenVerifier,
    UsageLimiter,
    mint,
)
from eventwire.catalog.delivery import parse_accept
from eventwire.codes import CloseCode, ErrorCode
from eventwire.envelope import format_timestamp
from eventwire.protocol import (
    Action,
    Authenticated,
    Clock,
    Close,
    Limits,
    PublishEvent,
    Reply,
    Session,
    SessionAuth,
    SessionState,
    SubscribeTopics,
    UnsubscribeTopics,
    command_frame,
)

NOW = datetime(2026, 11, 25, 21, 0, 0, 123456, tzinfo=UTC)
NOW_TEXT = "2026-11-25T21:00:00.123Z"


class FakeClock:
    """A wall clock and a monotonic clock the test advances by hand.

    ``advance`` moves only the monotonic clock (rate limits), so frames keep
    the fixed NOW timestamp; ``later`` moves both (token times, deadlines).
    """

    def __init__(self) -> None:
        self.t = 1000.0
        self.wall = NOW.timestamp()

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def later(self, seconds: float) -> None:
        self.t += seconds
        self.wall += seconds

    def clock(self) -> Clock:
        return Clock(now=lambda: datetime.fromtimestamp(self.wall, UTC), monotonic=lambda: self.t)


def _session(limits: Limits | None = None) -> tuple[Session, FakeClock]:
    fake = FakeClock()
    return Session("sess-1", fake.clock(), limits or Limits()), fake


def _subscribe(rid: str, *topics: Any, **extra: Any) -> bytes:
    return command_frame("SUBSCRIBE", rid, {"topics": list(topics), **extra})


def _ping(rid: str = "p") -> bytes:
    return command_frame("PING", rid)


def _state(session: Session) -> SessionState:
    """The session's state, read through a call so that mypy does not narrow it."""
    return session.state


def _frame(action: Action) -> dict[str, Any]:
    assert isinstance(action, Reply), action
    decoded = orjson.loads(action.frame)
    assert isinstance(decoded, dict)
    return decoded


def _error(action: Action) -> dict[str, Any]:
    """The ERROR frame of ``action``, checked for shape; returns its data."""
    frame = _frame(action)
    assert frame["topic"] == "error"
    assert frame["event"] == "ERROR"
    assert frame["data"]["timestamp"][:11] == NOW_TEXT[:11]  # the fake clock's day
    assert isinstance(action, Reply)
    assert action.error is not None
    assert frame["data"]["payload"]["code"] == action.error.value
    data: dict[str, Any] = frame["data"]
    return data


# --- CONNECTED ------------------------------------------------------------------


def test_connected_frame() -> None:
    session, _ = _session()
    frame = orjson.loads(session.connected(25.0))
    assert frame == {
        "topic": "system",
        "event": "CONNECTED",
        "data": {
            "entity_id": "sess-1",
            "payload": {
                "session_id": "sess-1",
                "server_time": NOW_TEXT,
                "protocol": 1,
                "heartbeat_interval": 25.0,
            },
            "timestamp": NOW_TEXT,
        },
    }


def test_start_without_auth_greets_and_opens() -> None:
    session, _ = _session()
    [greeting] = session.start(25.0)
    assert isinstance(greeting, Reply)
    assert greeting.frame == session.connected(25.0)
    assert session.state is SessionState.OPEN
    assert session.next_deadline() is None


# --- SUBSCRIBE / UNSUBSCRIBE ----------------------------------------------------------


def test_subscribe_returns_subscribe_action() -> None:
    session, _ = _session()
    actions = session.receive(_subscribe("s1", "gift-list:123", "user:456"))
    assert actions == [
        SubscribeTopics("s1", ("gift-list:123", "user:456"), ("gift-list:123", "user:456"))
    ]
    assert session.subscriptions == {"gift-list:123", "user:456"}


def test_duplicate_topics_in_one_request_are_collapsed() -> None:
    session, _ = _session()
    actions = session.receive(_subscribe("s1", "a:1", "a:1", "b:2"))
    assert actions == [SubscribeTopics("s1", ("a:1", "b:2"), ("a:1", "b:2"))]


def test_resubscribe_is_idempotent() -> None:
    session, _ = _session()
    session.receive(_subscribe("s1", "gift-list:123"))
    actions = session.receive(_subscribe("s2", "gift-list:123", "user:456"))
    assert actions == [SubscribeTopics("s2", ("gift-list:123", "user:456"), ("user:456",))]
    actions = session.receive(_subscribe("s3", "gift-list:123"))
    assert actions == [SubscribeTopics("s3", ("gift-list:123",), ())]
    assert session.subscriptions == {"gift-list:123", "user:456"}


def test_mixed_valid_and_invalid_topics() -> None:
    session, _ = _session()
    actions = session.receive(_subscribe("s1", "gift-list:1", "Bad", "system:x", "user:2", "a:*"))
    assert len(actions) == 4
    errors = [_error(a) for a in actions[:3]]
    assert [e["entity_id"] for e in errors] == ["s1", "s1", "s1"]
    assert [e["payload"]["code"] for e in errors] == [
        "INVALID_TOPIC",
        "RESERVED_TOPIC",
        "INVALID_TOPIC",
    ]
    assert [e["payload"]["details"]["topic"] for e in errors] == ["Bad", "system:x", "a:*"]
    assert actions[3] == SubscribeTopics("s1", ("gift-list:1", "user:2"), ("gift-list:1", "user:2"))
    assert session.subscriptions == {"gift-list:1", "user:2"}


def test_all_topics_refused_still_ends_with_an_empty_subscribed() -> None:
    session, _ = _session()
    actions = session.receive(_subscribe("s1", "Bad", "error"))
    assert len(actions) == 3
    assert all(isinstance(a, Reply) and a.error is not None for a in actions[:2])
    assert actions[2] == SubscribeTopics("s1", (), ())
    assert session.subscriptions == set()


def test_too_many_subscriptions() -> None:
    session, _ = _session(Limits(max_subscriptions=2))
    actions = session.receive(_subscribe("s1", "a:1", "a:2", "a:3"))
    assert len(actions) == 2
    error = _error(actions[0])
    assert error["entity_id"] == "s1"
    assert error["payload"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
    assert error["payload"]["details"] == {"topic": "a:3"}
    assert actions[1] == SubscribeTopics("s1", ("a:1", "a:2"), ("a:1", "a:2"))
    # Already-held topics are still accepted at the limit.
    actions = session.receive(_subscribe("s2", "a:2", "a:4"))
    assert _error(actions[0])["payload"]["details"] == {"topic": "a:4"}
    assert actions[1] == SubscribeTopics("s2", ("a:2",), ())
    assert len(session.subscriptions) == 2


def test_unsubscribe() -> None:
    session, _ = _session()
    session.receive(_subscribe("s1", "a:1", "a:2"))
    actions = session.receive(command_frame("UNSUBSCRIBE", "u1", {"topics": ["a:1", "a:9", "a:1"]}))
    assert actions == [UnsubscribeTopics("u1", ("a:1", "a:9"), ("a:1",))]
    assert session.subscriptions == {"a:2"}
    # A slot was freed: subscribing again adds it back.
    assert session.receive(_subscribe("s2", "a:1")) == [SubscribeTopics("s2", ("a:1",), ("a:1",))]


def test_subscribed_and_unsubscribed_replies() -> None:
    session, _ = _session()
    positions: dict[str, object] = {"a:1": {"seq": 3, "epoch": "e"}}
    sub = orjson.loads(session.subscribed("s1", ("a:1",), positions))
    assert sub["topic"] == "system"
    assert sub["event"] == "SUBSCRIBED"
    assert sub["data"]["entity_id"] == "s1"
    assert sub["data"]["payload"] == {"topics": ["a:1"], "positions": positions}
    unsub = orjson.loads(session.unsubscribed("u1", ("a:1",)))
    assert unsub["event"] == "UNSUBSCRIBED"
    assert unsub["data"]["payload"] == {"topics": ["a:1"]}


# --- SUBSCRIBE versions ----------------------------------------------------------------


V1_ROOMS = {"room.MESSAGE_POSTED": [1]}


def test_versions_are_kept_per_subscribed_topic() -> None:
    session, _ = _session()
    actions = session.receive(_subscribe("s1", "room:lobby", "room:kitchen", versions=V1_ROOMS))
    topics = ("room:lobby", "room:kitchen")
    assert actions == [SubscribeTopics("s1", topics, topics)]  # new topics: added, not regrouped
    accept = parse_accept(V1_ROOMS)
    assert session.accepts == {"room:lobby": accept, "room:kitchen": accept}
    assert accept is not None
    assert accept.for_event("room", "MESSAGE_POSTED") == frozenset({1})
    session.receive(_subscribe("s2", "gift-list:1"))  # no versions: as published
    assert "gift-list:1" not in session.accepts


def test_a_new_subscribe_replaces_the_versions_of_held_topics() -> None:
    session, _ = _session()
    session.receive(_subscribe("s1", "room:lobby", "room:kitchen", versions=V1_ROOMS))
    # The same versions again: nothing to move.
    assert session.receive(_subscribe("s2", "room:lobby", versions=V1_ROOMS)) == [
        SubscribeTopics("s2", ("room:lobby",), (), ())
    ]
    # Other versions, and none at all: both held topics move to their new group.
    [action] = session.receive(_subscribe("s3", "room:lobby", versions={"*": [2]}))
    assert action == SubscribeTopics("s3", ("room:lobby",), (), ("room:lobby",))
    assert session.accepts["room:lobby"] == parse_accept({"*": [2]})
    [action] = session.receive(_subscribe("s4", "room:kitchen", "user:1"))
    assert action == SubscribeTopics(
        "s4", ("room:kitchen", "user:1"), ("user:1",), ("room:kitchen",)
    )
    assert set(session.accepts) == {"room:lobby"}


def test_versions_are_forgotten_with_their_subscription() -> None:
    session, _ = _session()
    session.receive(_subscribe("s1", "room:lobby", "room:kitchen", versions=V1_ROOMS))
    session.receive(command_frame("UNSUBSCRIBE", "u1", {"topics": ["room:lobby"]}))
    assert set(session.accepts) == {"room:kitchen"}
    session.close()
    assert session.accepts == {}


def test_pattern_subscriptions_keep_no_versions() -> None:
    fake = FakeClock()
    session = Session("sess-1", fake.clock(), Limits(), may_watch=True)
    [action] = session.receive(_subscribe("s1", "room:*", versions=V1_ROOMS))
    assert action == SubscribeTopics("s1", ("room:*",), ("room:*",))
    assert session.accepts == {}


@pytest.mark.parametrize(
    ("versions", "field"),
    [
        ([1, 2], "data.payload.versions"),
        ({"room": [1]}, "data.payload.versions.room"),
        ({"room.message": [1]}, "data.payload.versions.room.message"),
        ({"*": []}, "data.payload.versions.*"),
        ({"*": [0]}, "data.payload.versions.*"),
        ({"*": ["1"]}, "data.payload.versions.*"),
    ],
)
def test_bad_versions_refuse_the_whole_subscribe(versions: object, field: str) -> None:
    session, _ = _session()
    [error] = session.receive(_subscribe("s1", "room:lobby", versions=versions))
    data = _error(error)
    assert data["entity_id"] == "s1"
    assert data["payload"]["code"] == "VALIDATION_ERROR"
    assert data["payload"]["details"]["field"] == field
    assert session.subscriptions == set()


def test_every_bad_versions_key_is_named() -> None:
    session, _ = _session()
    [error] = session.receive(
        _subscribe("s1", "room:lobby", versions={"Room.X": [1], "room.*": [1], "*": "all"})
    )
    fields = [e["field"] for e in _error(error)["payload"]["details"]["errors"]]
    assert fields == ["data.payload.versions.Room.X", "data.payload.versions.*"]


# --- PING, unsupported and bad frames -----------------------------------------------


def test_ping_pong() -> None:
    session, _ = _session()
    [action] = session.receive(_ping("ping-7"))
    assert isinstance(action, Reply)
    assert action.error is None
    frame = _frame(action)
    assert frame["topic"] == "system"
    assert frame["event"] == "PONG"
    assert frame["data"]["entity_id"] == "ping-7"
    assert frame["data"]["payload"] == {"server_time": NOW_TEXT}


@pytest.mark.parametrize(
    "raw",
    [
        command_frame("AUTH", "r1", {"token": "t"}),
        orjson.dumps({"topic": "gift-list:1", "event": "UPDATED", "data": {"entity_id": "r1"}}),
    ],
    ids=["auth", "publish"],
)
def test_not_supported(raw: bytes) -> None:
    session, _ = _session()
    [action] = session.receive(raw)
    error = _error(action)
    assert error["entity_id"] == "r1"
    assert error["payload"]["code"] == "NOT_SUPPORTED"
    assert session.subscriptions == set()


# --- SUBSCRIBE's since (recovery) ---------------------------------------------------


def test_since_is_carried_for_accepted_topics() -> None:
    session, _ = _session()
    since = {"a:1": {"seq": 4, "epoch": "e1"}, "b:2": {"seq": 0, "epoch": "e2"}}
    [action] = session.receive(_subscribe("r1", "a:1", "b:2", "c:3", since=since))
    assert action == SubscribeTopics(
        "r1", ("a:1", "b:2", "c:3"), ("a:1", "b:2", "c:3"), (), (("a:1", 4, "e1"), ("b:2", 0, "e2"))
    )


def test_empty_since_recovers_nothing() -> None:
    session, _ = _session()
    [action] = session.receive(_subscribe("r1", "a:1", since={}))
    assert isinstance(action, SubscribeTopics)
    assert action.since == ()


def test_since_of_a_refused_topic_is_dropped() -> None:
    session, _ = _session()
    since = {"a:1": {"seq": 1, "epoch": "e"}, "bad topic": {"seq": 1, "epoch": "e"}}
    refusal, action = session.receive(_subscribe("r1", "a:1", "bad topic", since=since))
    assert _error(refusal)["payload"]["details"]["topic"] == "bad topic"
    assert isinstance(action, SubscribeTopics)
    assert action.since == (("a:1", 1, "e"),)


@pytest.mark.parametrize(
    ("since", "field"),
    [
        ({"b:2": {"seq": 1, "epoch": "e"}}, "since.b:2"),
        ({"a:1": 3}, "since.a:1"),
        ({"a:1": {"seq": 1}}, "since.a:1"),
        ({"a:1": {"seq": 1, "epoch": "e", "x": 1}}, "since.a:1"),
        ({"a:1": {"seq": -1, "epoch": "e"}}, "since.a:1.seq"),
        ({"a:1": {"seq": "1", "epoch": "e"}}, "since.a:1.seq"),
        ({"a:1": {"seq": True, "epoch": "e"}}, "since.a:1.seq"),
        ({"a:1": {"seq": 1.5, "epoch": "e"}}, "since.a:1.seq"),
        ({"a:1": {"seq": 1, "epoch": ""}}, "since.a:1.epoch"),
        ({"a:1": {"seq": 1, "epoch": 7}}, "since.a:1.epoch"),
    ],
)
def test_malformed_since_is_refused(since: Any, field: str) -> None:
    session, _ = _session()
    [action] = session.receive(_subscribe("r1", "a:1", since=since))
    error = _error(action)
    assert error["entity_id"] == "r1"
    assert error["payload"]["code"] == "VALIDATION_ERROR"
    assert error["payload"]["details"] == {"field": field}
    assert session.subscriptions == set()


def test_since_must_be_an_object() -> None:
    session, _ = _session()
    [action] = session.receive(_subscribe("r1", "a:1", since=[1]))
    assert _error(action)["payload"]["code"] == "VALIDATION_ERROR"
    assert session.subscriptions == set()


def test_since_may_not_name_a_pattern() -> None:
    fake = FakeClock()
    session = Session("sess-1", fake.clock(), Limits(), may_watch=True)
    [action] = session.receive(_subscribe("r1", "a:*", since={"a:*": {"seq": 1, "epoch": "e"}}))
    assert _error(action)["payload"]["details"] == {"field": "since.a:*"}


def test_subscribed_and_recovery_failed_frames() -> None:
    session, _ = _session()
    frame = orjson.loads(
        session.subscribed("r1", ("a:1",), {"a:1": {"seq": 3, "epoch": "e"}}, {"a:1": False})
    )
    assert frame["data"]["payload"]["recovered"] == {"a:1": False}
    plain = orjson.loads(session.subscribed("r1", ("a:1",), {}))
    assert "recovered" not in plain["data"]["payload"]
    failed = orjson.loads(
        session.recovery_failed("r1", "a:1", {"seq": 3, "epoch": "e"}, "epoch_changed")
    )
    assert failed["topic"] == "system"
    assert failed["event"] == "RECOVERY_FAILED"
    assert failed["data"]["entity_id"] == "r1"
    assert failed["data"]["payload"] == {
        "topic": "a:1",
        "position": {"seq": 3, "epoch": "e"},
        "reason": "epoch_changed",
    }


def test_bad_frames_answer_with_their_code() -> None:
    session, _ = _session()
    [invalid_json] = session.receive(b"{oops")
    assert isinstance(invalid_json, Reply)
    assert invalid_json.error is ErrorCode.INVALID_JSON
    assert _error(invalid_json)["entity_id"] == "connection"
    [unknown] = session.receive(command_frame("FROB", "f1"))
    assert isinstance(unknown, Reply)
    assert unknown.error is ErrorCode.UNKNOWN_COMMAND
    assert _error(unknown)["entity_id"] == "f1"
    assert session.state is SessionState.OPEN


# --- rate limiting -------------------------------------------------------------


def test_rate_limit_burst_then_refill() -> None:
    session, clock = _session(Limits(command_burst=3, commands_per_second=2.0, flood_threshold=100))
    for i in range(3):
        [ok] = session.receive(_ping(f"p{i}"))
        assert isinstance(ok, Reply)
        assert ok.error is None
    [limited] = session.receive(_ping("p3"))
    error = _error(limited)
    assert error["entity_id"] == "p3"
    assert error["payload"]["code"] == "RATE_LIMITED"

    clock.advance(0.25)  # half a token
    [still_limited] = session.receive(_ping("p4"))
    assert isinstance(still_limited, Reply)
    assert still_limited.error is ErrorCode.RATE_LIMITED

    clock.advance(0.5)  # 1.5 tokens: a refused attempt does not spend the half token
    [ok] = session.receive(_ping("p5"))
    assert isinstance(ok, Reply)
    assert ok.error is None
    [limited] = session.receive(_ping("p6"))
    assert isinstance(limited, Reply)
    assert limited.error is ErrorCode.RATE_LIMITED


def test_refill_is_capped_at_burst() -> None:
    session, clock = _session(
        Limits(command_burst=2, commands_per_second=10.0, flood_threshold=100)
    )
    clock.advance(3600)
    results = [session.receive(_ping(f"p{i}"))[0] for i in range(3)]
    assert [r.error if isinstance(r, Reply) else r for r in results] == [
        None,
        None,
        ErrorCode.RATE_LIMITED,
    ]


def test_rate_limited_subscribe_changes_nothing() -> None:
    session, _ = _session(Limits(command_burst=1, commands_per_second=1.0, flood_threshold=100))
    session.receive(_ping())
    [action] = session.receive(_subscribe("s1", "a:1"))
    assert isinstance(action, Reply)
    assert action.error is ErrorCode.RATE_LIMITED
    assert session.subscriptions == set()


def test_flood_closes_with_4029_and_then_ignores_input() -> None:
    session, clock = _session(Limits(command_burst=1, commands_per_second=1.0, flood_threshold=3))
    session.receive(_subscribe("s1", "a:1"))
    for _ in range(3):
        [action] = session.receive(_ping())
        assert isinstance(action, Reply)
        assert action.error is ErrorCode.RATE_LIMITED
    assert session.state is SessionState.OPEN
    actions = session.receive(_ping())
    assert len(actions) == 1
    assert isinstance(actions[0], Close)
    assert actions[0].code == CloseCode.FLOODING
    assert actions[0].code == 4029
    assert _state(session) is SessionState.CLOSED

    clock.advance(60)
    assert session.receive(_ping()) == []
    assert session.receive(_subscribe("s2", "a:2")) == []
    assert session.subscriptions == {"a:1"}


def test_accepted_command_resets_the_flood_count() -> None:
    session, clock = _session(Limits(command_burst=1, commands_per_second=1.0, flood_threshold=2))
    session.receive(_ping())
    for _ in range(2):
        [action] = session.receive(_ping())
        assert isinstance(action, Reply)
    clock.advance(1.0)
    [ok] = session.receive(_ping())
    assert isinstance(ok, Reply)
    assert ok.error is None
    for _ in range(2):
        [action] = session.receive(_ping())
        assert isinstance(action, Reply)
        assert action.error is ErrorCode.RATE_LIMITED
    assert session.state is SessionState.OPEN
    [close] = session.receive(_ping())
    assert isinstance(close, Close)


def test_rejected_frames_count_against_the_rate_limit() -> None:
    session, _ = _session(Limits(command_burst=2, commands_per_second=1.0, flood_threshold=100))
    session.receive(b"not json")
    session.receive(b"not json")
    [action] = session.receive(_ping())
    assert isinstance(action, Reply)
    assert action.error is ErrorCode.RATE_LIMITED


# --- close ---------------------------------------------------------------------


def test_close_returns_every_subscription() -> None:
    session, _ = _session()
    session.receive(_subscribe("s1", "a:1", "b:2", "c:3"))
    action = session.close()
    assert action.request_id is None
    assert set(action.topics) == {"a:1", "b:2", "c:3"}
    assert set(action.removed) == {"a:1", "b:2", "c:3"}
    assert len(action.removed) == 3
    assert session.subscriptions == set()
    assert session.state is SessionState.CLOSED
    assert session.receive(_ping()) == []


def test_close_without_subscriptions() -> None:
    session, _ = _session()
    assert session.close() == UnsubscribeTopics(None, (), ())


# --- authentication ------------------------------------------------------------------

SECRET = "s3cret-for-tests-only-0123456789abcdef"


class AuthRig:
    """A session with authentication on, its fake clock, and tokens minted at its time."""

    def __init__(self, limits: Limits | None = None, **settings: Any) -> None:
        self.fake = FakeClock()
        options = {"jwt_secret": SECRET, "jwt_leeway": 0, "auth_timeout": 5.0}
        self.settings = AuthSettings.model_validate({**options, **settings})
        wall = self.wall
        self.auth = SessionAuth(
            TokenVerifier(self.settings, clock=wall),
            Authorizer.from_settings(self.settings, clock=wall),
            UsageLimiter.from_settings(self.settings),
            auth_timeout=self.settings.auth_timeout,
            expiry_grace=self.settings.token_expiry_grace,
        )
        self.session = Session("sess-1", self.fake.clock(), limits or Limits(), auth=self.auth)

    def wall(self) -> float:
        return self.fake.wall

    def token(self, sub: str = "u1", **claims: Any) -> str:
        return mint(self.settings, sub=sub, now=self.fake.wall, **claims)

    def signed_in(self, sub: str = "u1", **claims: Any) -> Session:
        self.session.start(25.0)
        actions = self.session.receive(_auth("a0", self.token(sub, **claims)))
        assert isinstance(actions[0], Authenticated), actions
        return self.session


def _auth(rid: str, token: str) -> bytes:
    return command_frame("AUTH", rid, {"token": token})


def _publish(rid: str, event: object) -> bytes:
    return command_frame("PUBLISH", rid, {"event": event})


def _payload(action: Action) -> Any:
    return _frame(action)["data"]["payload"]


def _codes(actions: list[Action]) -> list[object]:
    """Each action as the code of its ERROR, the event of its frame, or itself."""
    shown: list[object] = []
    for action in actions:
        if isinstance(action, Reply):
            frame = _frame(action)
            shown.append(frame["data"]["payload"]["code"] if action.error else frame["event"])
        else:
            shown.append(action)
    return shown


def test_without_a_token_the_session_awaits_auth() -> None:
    rig = AuthRig()
    [greeting] = rig.session.start(25.0)
    assert "user_id" not in _payload(greeting)
    assert rig.session.state is SessionState.AWAITING_AUTH
    assert rig.session.next_deadline() == rig.fake.wall + 5.0


def test_auth_opens_the_session_and_answers_authenticated() -> None:
    rig = AuthRig()
    session = rig.session
    session.start(25.0)
    actions = session.receive(_auth("a1", rig.token("u1", tenant="acme", ttl=60)))
    assert len(actions) == 2
    assert isinstance(actions[0], Authenticated)
    assert actions[0].request_id == "a1"
    assert actions[0].identity.user_id == "u1"
    authenticated = _frame(actions[1])
    assert (authenticated["event"], authenticated["data"]["entity_id"]) == ("AUTHENTICATED", "a1")
    expires = int(rig.fake.wall) + 60
    assert authenticated["data"]["payload"] == {
        "user_id": "u1",
        "tenant_id": "acme",
        "expires_at": format_timestamp(datetime.fromtimestamp(expires, UTC)),
    }
    assert session.state is SessionState.OPEN
    assert session.user_id == "u1"
    assert session.next_deadline() == expires


@pytest.mark.parametrize(
    ("token", "code", "close"),
    [
        ("not-a-jwt", "UNAUTHORIZED", 4501),
        ("forged", "UNAUTHORIZED", 4501),
        ("expired", "TOKEN_EXPIRED", 4001),
    ],
)
def test_a_refused_auth_closes(token: str, code: str, close: int) -> None:
    rig = AuthRig()
    if token == "forged":
        other = AuthSettings.model_validate(
            {"jwt_secret": "another-secret-for-tests-0123456789abcdef"}
        )
        token = mint(other, sub="u1", now=rig.fake.wall)
    elif token == "expired":
        token = mint(rig.settings, sub="u1", now=rig.fake.wall - 120, ttl=60)
    rig.session.start(25.0)
    error, closing = rig.session.receive(_auth("a1", token))
    assert _error(error)["entity_id"] == "a1"
    assert _error(error)["payload"]["code"] == code
    assert closing == Close(close, code)
    assert rig.session.state is SessionState.CLOSED
    assert token not in str(_error(error))


def test_before_auth_only_ping_is_answered() -> None:
    rig = AuthRig()
    rig.session.start(25.0)
    [pong] = rig.session.receive(_ping("p"))
    assert _frame(pong)["event"] == "PONG"
    error, closing = rig.session.receive(_subscribe("s1", "gift-list:1"))
    assert _error(error)["payload"]["code"] == "UNAUTHORIZED"
    assert closing == Close(CloseCode.UNAUTHORIZED, "not authenticated")
    assert rig.session.subscriptions == set()


def test_an_unreadable_frame_before_auth_is_answered_then_closed() -> None:
    rig = AuthRig()
    rig.session.start(25.0)
    error, closing = rig.session.receive(b"{oops")
    assert _error(error)["payload"]["code"] == "INVALID_JSON"
    assert closing == Close(4501, "not authenticated")


def test_no_auth_in_time_closes_with_4003() -> None:
    rig = AuthRig()
    rig.session.start(25.0)
    rig.fake.later(4.9)
    assert rig.session.tick(rig.fake.wall) == []
    rig.fake.later(0.1)
    assert rig.session.tick(rig.fake.wall) == [Close(4003, "authentication timeout")]
    assert rig.session.next_deadline() is None


def test_url_token_authenticates_before_the_greeting() -> None:
    rig = AuthRig()
    authenticated, greeting = rig.session.start(25.0, rig.token("u1"))
    assert isinstance(authenticated, Authenticated)
    assert authenticated.request_id == "connection"
    hello = _frame(greeting)
    assert hello["event"] == "CONNECTED"
    assert hello["data"]["entity_id"] == "u1"
    assert next(iter(hello["data"]["payload"])) == "user_id"
    assert rig.session.state is SessionState.OPEN


def test_refused_url_token_gets_an_error_instead_of_the_greeting() -> None:
    rig = AuthRig()
    error, closing = rig.session.start(25.0, "garbage")
    assert _error(error)["entity_id"] == "connection"
    assert _error(error)["payload"]["details"]["reason"] == "malformed"
    assert closing == Close(4501, "UNAUTHORIZED")


def test_subscribe_is_authorized_topic_by_topic() -> None:
    rig = AuthRig()
    session = rig.signed_in("u1", tenant="acme", subscribe=["gift-list:*", "user:{user_id}:*"])
    topics = ["gift-list:1", "user:u1:inbox", "user:u2:inbox", "room:lobby", "tenant:globex:x"]
    actions = session.receive(_subscribe("s1", *topics))
    errors = [_error(a) for a in actions[:-1]]
    assert [e["payload"]["details"] for e in errors] == [
        {"topic": "user:u2:inbox"},
        {"topic": "room:lobby"},
        {"topic": "tenant:globex:x"},
    ]
    # One answer whatever the reason: grants, placeholders, another tenant.
    assert {(e["payload"]["code"], e["payload"]["message"]) for e in errors} == {
        ("FORBIDDEN", "not allowed")
    }
    assert actions[-1] == SubscribeTopics(
        "s1", ("gift-list:1", "user:u1:inbox"), ("gift-list:1", "user:u1:inbox")
    )


def test_patterns_are_for_admins() -> None:
    user = AuthRig().signed_in("u1", subscribe=["gift-list:*"])
    refused, done = user.receive(_subscribe("s1", "gift-list:*"))
    assert _error(refused)["payload"]["code"] == "INVALID_TOPIC"
    assert done == SubscribeTopics("s1", (), ())
    admin = AuthRig().signed_in("root", admin=True)
    assert admin.receive(_subscribe("s1", "gift-list:*")) == [
        SubscribeTopics("s1", ("gift-list:*",), ("gift-list:*",))
    ]


# --- expiry and refresh -------------------------------------------------------------------


def test_expiry_warns_then_closes_after_the_grace() -> None:
    rig = AuthRig(token_expiry_grace=10)
    session = rig.signed_in("u1", subscribe=["gift-list:*"], ttl=60)
    session.receive(_subscribe("s1", "gift-list:1"))
    expires = session.next_deadline()
    assert expires is not None
    rig.fake.later(expires - rig.fake.wall)
    [warning] = session.tick(rig.fake.wall)
    error = _error(warning)
    assert error["entity_id"] == "connection"
    assert error["payload"]["code"] == "TOKEN_EXPIRED"
    assert error["payload"]["details"] == {"reason": "expired", "grace": 10}
    assert session.state is SessionState.EXPIRING
    assert session.next_deadline() == expires + 10

    # While expiring: no new subscriptions or publishes; the rest works.
    assert _codes(session.receive(_subscribe("s2", "gift-list:2"))) == ["TOKEN_EXPIRED"]
    assert _codes(session.receive(_ping())) == ["PONG"]
    assert session.subscriptions == {"gift-list:1"}

    rig.fake.later(10)
    assert session.tick(rig.fake.wall) == [Close(4001, "token expired")]
    assert _state(session) is SessionState.CLOSED


def test_without_grace_expiry_closes_at_once() -> None:
    rig = AuthRig(token_expiry_grace=0)
    session = rig.signed_in("u1", ttl=60)
    rig.fake.later(60)
    warning, closing = session.tick(rig.fake.wall)
    assert _error(warning)["payload"]["code"] == "TOKEN_EXPIRED"
    assert closing == Close(4001, "token expired")


def test_refresh_keeps_subscriptions_and_moves_the_expiry() -> None:
    rig = AuthRig()
    session = rig.signed_in("u1", subscribe=["gift-list:*"], ttl=60)
    session.receive(_subscribe("s1", "gift-list:1"))
    rig.fake.later(60)
    session.tick(rig.fake.wall)
    assert session.state is SessionState.EXPIRING
    actions = session.receive(_auth("a2", rig.token("u1", subscribe=["gift-list:*"], ttl=600)))
    assert [type(a) for a in actions] == [Authenticated, Reply]
    assert _frame(actions[1])["event"] == "AUTHENTICATED"
    assert _state(session) is SessionState.OPEN
    assert session.subscriptions == {"gift-list:1"}
    assert session.next_deadline() == int(rig.fake.wall) + 600


def test_refresh_drops_what_the_new_grants_do_not_allow() -> None:
    rig = AuthRig()
    session = rig.signed_in("u1", subscribe=["gift-list:*", "room:*"])
    session.receive(_subscribe("s1", "gift-list:1", "room:lobby", "room:dev"))
    actions = session.receive(_auth("a2", rig.token("u1", subscribe=["gift-list:*"])))
    assert actions[0] == UnsubscribeTopics(
        None, ("room:dev", "room:lobby"), ("room:dev", "room:lobby")
    )
    assert [_error(a)["payload"]["details"] for a in actions[1:3]] == [
        {"topic": "room:dev"},
        {"topic": "room:lobby"},
    ]
    assert [_error(a)["entity_id"] for a in actions[1:3]] == ["a2", "a2"]
    assert isinstance(actions[3], Authenticated)
    assert _frame(actions[4])["event"] == "AUTHENTICATED"
    assert session.subscriptions == {"gift-list:1"}


@pytest.mark.parametrize(
    ("sub", "tenant", "reason"),
    [("u2", None, "other_principal"), ("u1", "acme", "other_principal")],
)
def test_refresh_to_someone_else_is_refused(sub: str, tenant: str | None, reason: str) -> None:
    rig = AuthRig()
    session = rig.signed_in("u1", subscribe=["gift-list:*"])
    before = session.identity
    [error] = session.receive(_auth("a2", rig.token(sub, tenant=tenant)))
    assert _error(error)["payload"]["code"] == "UNAUTHORIZED"
    assert _error(error)["payload"]["details"] == {"reason": reason}
    assert session.identity is before
    assert session.state is SessionState.OPEN


def test_a_failed_refresh_keeps_the_connection() -> None:
    rig = AuthRig()
    session = rig.signed_in("u1")
    [error] = session.receive(_auth("a2", "garbage"))
    assert _error(error)["payload"]["code"] == "UNAUTHORIZED"
    assert session.state is SessionState.OPEN
    assert session.user_id == "u1"


def test_anonymous_connections_open_at_once_and_may_sign_in() -> None:
    rig = AuthRig(allow_anonymous=True, anonymous_subscribe=["public:*"])
    authenticated, greeting = rig.session.start(25.0)
    assert isinstance(authenticated, Authenticated)
    assert authenticated.identity.anonymous
    assert _payload(greeting)["anonymous"] is True
    session = rig.session
    assert _codes(session.receive(_subscribe("s1", "public:news", "gift-list:1"))) == [
        "FORBIDDEN",
        SubscribeTopics("s1", ("public:news",), ("public:news",)),
    ]
    actions = session.receive(_auth("a1", rig.token("u1", subscribe=["public:*"])))
    assert [type(a) for a in actions] == [Authenticated, Reply]
    assert session.user_id == "u1"


# --- client publishing ----------------------------------------------------------------


def _event(topic: str = "room:lobby", kind: str = "MESSAGE_POSTED", **data: Any) -> dict[str, Any]:
    return {"topic": topic, "event": kind, "data": {"entity_id": "m1", "payload": "hi", **data}}


def test_publish_is_not_supported_unless_enabled() -> None:
    session = AuthRig().signed_in("u1", publish=["room:*"])
    [error] = session.receive(_publish("p1", _event()))
    assert _error(error)["payload"]["code"] == "NOT_SUPPORTED"
    plain, _ = _session()
    [error] = plain.receive(_publish("p1", _event()))
    assert _error(error)["payload"]["code"] == "NOT_SUPPORTED"


def test_publish_overwrites_who_published_it() -> None:
    rig = AuthRig(client_publishable=["MESSAGE_POSTED"])
    session = rig.signed_in("u1", tenant="acme", publish=["room:*"])
    forged = _event(user_id="admin", tenant_id="globex", timestamp="2020-01-01T00:00:00Z")
    [action] = session.receive(_publish("p1", forged))
    assert isinstance(action, PublishEvent)
    assert action.request_id == "p1"
    data = action.event.data
    assert (data.user_id, data.tenant_id, data.timestamp) == ("u1", "acme", None)
    assert (action.event.topic, data.entity_id, data.payload) == ("room:lobby", "m1", "hi")


def test_publish_without_a_tenant_clears_the_claimed_one() -> None:
    session = AuthRig(client_publishable=["MESSAGE_POSTED"]).signed_in("u1", publish=["room:*"])
    [action] = session.receive(_publish("p1", _event(tenant_id="globex")))
    assert isinstance(action, PublishEvent)
    assert action.event.data.tenant_id is None


@pytest.mark.parametrize(
    "event",
    [_event("gift-list:1"), _event(kind="DELETED"), _event("tenant:globex:room")],
    ids=["ungranted topic", "type not publishable", "other tenant"],
)
def test_publish_refusals_are_forbidden(event: dict[str, Any]) -> None:
    rig = AuthRig(client_publishable=["MESSAGE_POSTED"])
    session = rig.signed_in("u1", tenant="acme", publish=["room:*", "tenant:*:room"])
    [error] = session.receive(_publish("p1", event))
    assert _error(error)["entity_id"] == "p1"
    assert _error(error)["payload"] == {
        "code": "FORBIDDEN",
        "message": "not allowed",
        "details": {"topic": event["topic"]},
    }


def test_an_invalid_published_event_names_its_field() -> None:
    session = AuthRig(client_publishable=["MESSAGE_POSTED"]).signed_in("u1", publish=["room:*"])
    [error] = session.receive(_publish("p1", {"topic": "room:lobby", "event": "MESSAGE_POSTED"}))
    assert _error(error)["payload"]["details"]["field"] == "data.payload.event.data"
    [error] = session.receive(_publish("p2", "not an object"))
    assert _error(error)["payload"]["details"]["field"] == "data.payload.event"


# --- per-user rates and revocation ---------------------------------------------------------


def test_the_user_bucket_refuses_and_counts_toward_the_flood() -> None:
    rig = AuthRig(Limits(flood_threshold=2), user_commands_per_second=1, user_command_burst=2)
    session = rig.signed_in("u1")  # AUTH itself took no user token: no identity yet
    assert _codes(session.receive(_ping())) == ["PONG"]
    assert _codes(session.receive(_ping())) == ["PONG"]
    [limited] = session.receive(_ping())
    assert _error(limited)["payload"]["details"] == {"scope": "user"}
    assert _codes(session.receive(_ping())) == ["RATE_LIMITED"]
    assert session.receive(_ping()) == [Close(4029, "command flood")]


def test_revoking_the_user_closes_with_4503() -> None:
    rig = AuthRig()
    session = rig.signed_in("u1")
    assert session.revoke(RevokeRequest(user_id="u2")) == []
    error, closing = session.revoke(RevokeRequest(user_id="u1"))
    assert _error(error)["payload"]["code"] == "REVOKED"
    assert closing == Close(4503, "revoked")
    assert session.state is SessionState.CLOSED


def test_revoking_a_pattern_ends_matching_subscriptions_only() -> None:
    rig = AuthRig()
    session = rig.signed_in("u1", subscribe=["gift-list:*", "room:*"])
    session.receive(_subscribe("s1", "gift-list:1", "gift-list:2", "room:lobby"))
    ended, error = session.revoke(RevokeRequest(pattern="gift-list:*"))
    assert ended == UnsubscribeTopics(
        None, ("gift-list:1", "gift-list:2"), ("gift-list:1", "gift-list:2")
    )
    assert _error(error)["payload"]["details"] == {"topics": ["gift-list:1", "gift-list:2"]}
    assert session.subscriptions == {"room:lobby"}
    assert session.state is SessionState.OPEN


def test_a_revoked_user_cannot_sign_in_with_an_older_token() -> None:
    rig = AuthRig()
    token = rig.token("u1")
    rig.auth.authorizer.revoke(RevokeRequest(user_id="u1"))
    rig.session.start(25.0)
    error, closing = rig.session.receive(_auth("a1", token))
    assert _error(error)["payload"]["code"] == "REVOKED"
    assert closing == Close(4503, "REVOKED")


def test_auth_is_not_supported_when_authentication_is_off() -> None:
    session, _ = _session()
    [error] = session.receive(_auth("a1", "t"))
    assert _error(error)["payload"]["code"] == "NOT_SUPPORTED"
    assert session.state is SessionState.OPEN
