"""The I/O-free protocol session, driven with a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from eventwire.codes import CloseCode, ErrorCode
from eventwire.protocol import (
    Action,
    Clock,
    Close,
    Limits,
    Reply,
    Session,
    SessionState,
    SubscribeTopics,
    UnsubscribeTopics,
    command_frame,
)

NOW = datetime(2026, 11, 25, 21, 0, 0, 123456, tzinfo=UTC)
NOW_TEXT = "2026-11-25T21:00:00.123Z"


class FakeClock:
    """A fixed wall clock and a monotonic clock the test advances by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def clock(self) -> Clock:
        return Clock(now=lambda: NOW, monotonic=lambda: self.t)


def _session(limits: Limits | None = None, user_id: str | None = None) -> tuple[Session, FakeClock]:
    fake = FakeClock()
    return Session("sess-1", fake.clock(), limits or Limits(), user_id), fake


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
    assert frame["data"]["timestamp"] == NOW_TEXT
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


def test_connected_frame_with_user() -> None:
    session, _ = _session(user_id="user-123")
    data = orjson.loads(session.connected(10))["data"]
    assert data["entity_id"] == "user-123"
    assert data["payload"]["user_id"] == "user-123"
    assert data["payload"]["session_id"] == "sess-1"
    assert next(iter(data["payload"])) == "user_id"


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
        _subscribe("r1", "a:1", since={"a:1": {"seq": 1, "epoch": "e"}}),
    ],
    ids=["auth", "publish", "since"],
)
def test_not_supported(raw: bytes) -> None:
    session, _ = _session()
    [action] = session.receive(raw)
    error = _error(action)
    assert error["entity_id"] == "r1"
    assert error["payload"]["code"] == "NOT_SUPPORTED"
    assert session.subscriptions == set()


def test_since_is_named_in_details() -> None:
    session, _ = _session()
    [action] = session.receive(_subscribe("r1", "a:1", since={}))
    assert _error(action)["payload"]["details"] == {"field": "since"}


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
