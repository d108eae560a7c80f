"""Decoding client commands and building server frames."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from eventwire.codes import ErrorCode
from eventwire.errors import ProtocolError, ValidationFailed
from eventwire.protocol.frames import (
    CONNECTION,
    MAX_REQUEST_ID,
    Auth,
    Command,
    Ping,
    Publish,
    Rejected,
    Subscribe,
    Unsubscribe,
    command_frame,
    decode_command,
    error_frame,
    system_frame,
)

NOW = datetime(2026, 11, 25, 21, 0, 0, 123456, tzinfo=UTC)


def _frame(event: str, request_id: Any = "req-1", payload: Any = None, **extra: Any) -> bytes:
    data: dict[str, Any] = {"entity_id": request_id, "payload": payload}
    return orjson.dumps({"topic": "system", "event": event, "data": data, **extra})


def _rejected(result: Command | Rejected) -> Rejected:
    assert isinstance(result, Rejected), result
    return result


def test_subscribe() -> None:
    result = decode_command(_frame("SUBSCRIBE", payload={"topics": ["gift-list:123", "user:456"]}))
    assert result == Subscribe("req-1", ("gift-list:123", "user:456"), None)


def test_subscribe_with_since_keeps_it() -> None:
    since = {"gift-list:123": {"seq": 4, "epoch": "e"}}
    result = decode_command(
        _frame("SUBSCRIBE", payload={"topics": ["gift-list:123"], "since": since})
    )
    assert isinstance(result, Subscribe)
    assert result.since == since


def test_unsubscribe() -> None:
    result = decode_command(_frame("UNSUBSCRIBE", "r2", {"topics": ["gift-list:123"]}))
    assert result == Unsubscribe("r2", ("gift-list:123",))


def test_ping_ignores_payload() -> None:
    assert decode_command(_frame("PING", "p1")) == Ping("p1")
    assert decode_command(_frame("PING", "p2", {"anything": 1})) == Ping("p2")


def test_auth() -> None:
    result = decode_command(_frame("AUTH", "a1", {"token": "secret"}))
    assert result == Auth("a1", "secret")
    assert "secret" not in repr(result)


def test_str_and_bytes_are_both_accepted() -> None:
    raw = _frame("PING", "p1")
    assert decode_command(raw.decode()) == decode_command(raw) == Ping("p1")


def test_command_frame_round_trips() -> None:
    raw = command_frame("SUBSCRIBE", "s1", {"topics": ["room:lobby"]})
    assert decode_command(raw) == Subscribe("s1", ("room:lobby",), None)
    assert orjson.loads(command_frame("PING", "p")) == {
        "topic": "system",
        "event": "PING",
        "data": {"entity_id": "p", "payload": None},
    }


def test_publish_carries_the_event_undecoded() -> None:
    event = {"topic": "gift-list:1", "event": "UPDATED", "data": {"entity_id": "gift-1"}}
    result = decode_command(_frame("PUBLISH", "pub-1", {"event": event}))
    assert result == Publish("pub-1", event)


@pytest.mark.parametrize("payload", [None, {}, {"event": {}, "extra": 1}])
def test_publish_needs_exactly_an_event(payload: Any) -> None:
    rejected = _rejected(decode_command(_frame("PUBLISH", "pub-1", payload)))
    assert rejected.request_id == "pub-1"
    assert rejected.error.code is ErrorCode.VALIDATION_ERROR
    assert rejected.error.details["field"].startswith("data.payload")


def test_a_bare_event_frame_is_not_a_command() -> None:
    raw = {"topic": "gift-list:1", "event": "UPDATED", "data": {"entity_id": "gift-1"}}
    rejected = _rejected(decode_command(orjson.dumps(raw)))
    assert rejected.request_id == "gift-1"
    assert rejected.error.code is ErrorCode.NOT_SUPPORTED
    assert "PUBLISH" in rejected.error.message


@pytest.mark.parametrize("data", [b"{not json", b"", b"\xff\xfe", "{'single': 'quotes'}"])
def test_invalid_json(data: str | bytes) -> None:
    rejected = _rejected(decode_command(data))
    assert rejected.request_id == CONNECTION == "connection"
    assert rejected.error.code is ErrorCode.INVALID_JSON


@pytest.mark.parametrize("data", [b"[]", b"1", b'"system"', b"null"])
def test_non_object(data: bytes) -> None:
    rejected = _rejected(decode_command(data))
    assert rejected.request_id == "connection"
    assert rejected.error.code is ErrorCode.VALIDATION_ERROR


def test_unknown_command_echoes_request_id() -> None:
    rejected = _rejected(decode_command(_frame("SUBSCRIBE_ALL", "req-9")))
    assert rejected.request_id == "req-9"
    assert rejected.error.code is ErrorCode.UNKNOWN_COMMAND
    assert rejected.error.details == {"event": "SUBSCRIBE_ALL"}


def test_unknown_command_name_is_truncated_in_details() -> None:
    rejected = _rejected(decode_command(_frame("X" * 500, "r")))
    assert rejected.error.details == {"event": "X" * 64}
    assert len(rejected.error.message) < 200


@pytest.mark.parametrize(
    "payload",
    [
        {"topics": "gift-list:123"},
        {"topics": []},
        {"topics": None},
        {"topics": {"gift-list:123": True}},
    ],
)
def test_bad_topics_payload(payload: dict[str, Any]) -> None:
    rejected = _rejected(decode_command(_frame("SUBSCRIBE", "s1", payload)))
    assert rejected.request_id == "s1"
    assert rejected.error.code is ErrorCode.VALIDATION_ERROR
    assert rejected.error.details["field"] == "data.payload.topics"


def test_non_string_topic_in_list_is_named_by_index() -> None:
    rejected = _rejected(decode_command(_frame("UNSUBSCRIBE", "u1", {"topics": ["a:b", 3]})))
    assert rejected.error.code is ErrorCode.VALIDATION_ERROR
    assert rejected.error.details["field"] == "data.payload.topics.1"


def test_missing_topics_is_required() -> None:
    rejected = _rejected(decode_command(_frame("SUBSCRIBE", "s1", {})))
    assert rejected.error.details["field"] == "data.payload.topics"
    assert rejected.error.details["error"] == "required"


def test_unknown_argument_is_named() -> None:
    payload = {"topics": ["a:b"], "topic": "a:b"}
    rejected = _rejected(decode_command(_frame("SUBSCRIBE", "s1", payload)))
    assert rejected.error.details["field"] == "data.payload.topic"
    assert rejected.error.details["error"] == "unknown field"


def test_auth_without_token() -> None:
    rejected = _rejected(decode_command(_frame("AUTH", "a1", {})))
    assert rejected.request_id == "a1"
    assert rejected.error.details["field"] == "data.payload.token"


def test_request_id_over_limit_falls_back_to_connection() -> None:
    long_id = "r" * (MAX_REQUEST_ID + 1)
    rejected = _rejected(decode_command(_frame("PING", long_id)))
    assert rejected.request_id == "connection"
    assert rejected.error.code is ErrorCode.VALIDATION_ERROR
    assert rejected.error.details["field"] == "data.entity_id"


def test_request_id_at_limit_is_echoed() -> None:
    rid = "r" * MAX_REQUEST_ID
    assert decode_command(_frame("PING", rid)) == Ping(rid)


@pytest.mark.parametrize("request_id", [None, 7, ""])
def test_bad_request_id_types(request_id: object) -> None:
    rejected = _rejected(decode_command(_frame("PING", request_id)))
    assert rejected.request_id == "connection"
    assert rejected.error.details["field"] == "data.entity_id"


def test_unknown_envelope_field_is_rejected_with_request_id() -> None:
    rejected = _rejected(decode_command(_frame("PING", "p1", trace="x")))
    assert rejected.request_id == "p1"
    assert rejected.error.details["field"] == "trace"


def test_system_frame_shape() -> None:
    frame = orjson.loads(system_frame("PONG", "p1", {"server_time": "t"}, NOW))
    assert frame == {
        "topic": "system",
        "event": "PONG",
        "data": {
            "entity_id": "p1",
            "payload": {"server_time": "t"},
            "timestamp": "2026-11-25T21:00:00.123Z",
        },
    }


def test_error_frame_matches_the_seed() -> None:
    error = ValidationFailed([("name", "required")], "Invalid gift name")
    frame = orjson.loads(error_frame("request-123", error, NOW))
    assert frame == {
        "topic": "error",
        "event": "ERROR",
        "data": {
            "entity_id": "request-123",
            "payload": {
                "code": "VALIDATION_ERROR",
                "message": "Invalid gift name",
                "details": {
                    "field": "name",
                    "error": "required",
                    "errors": [{"field": "name", "error": "required"}],
                },
            },
            "timestamp": "2026-11-25T21:00:00.123Z",
        },
    }


def test_error_frame_without_details_sends_empty_object() -> None:
    frame = orjson.loads(error_frame("c", ProtocolError(ErrorCode.INTERNAL_ERROR, "boom"), NOW))
    assert frame["data"]["payload"] == {"code": "INTERNAL_ERROR", "message": "boom", "details": {}}
