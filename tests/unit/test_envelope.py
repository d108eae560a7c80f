"""Published-event validation and the delivered wire encoding."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from eventwire.codes import ErrorCode
from eventwire.envelope import (
    Event,
    NewEvent,
    NewEventData,
    decode_new_event,
    encode_event,
    format_timestamp,
    is_event_type,
    splice_seq,
)
from eventwire.errors import ProtocolError, ValidationFailed

NOW = datetime(2026, 11, 25, 21, 0, 0, 123456, tzinfo=UTC)
TIMESTAMP_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def _encode(event: NewEvent, now: datetime = NOW) -> bytes:
    return encode_event(event, orjson.dumps(event.data.payload), now)


def _failed(raw: object) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as info:
        decode_new_event(raw)
    assert info.value.code is ErrorCode.VALIDATION_ERROR
    return info.value


def _error_for(failed: ValidationFailed, field: str) -> str:
    for entry in failed.details["errors"]:
        if entry["field"] == field:
            return str(entry["error"])
    raise AssertionError(f"no error for {field!r} in {failed.details['errors']!r}")


def _event(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "topic": "gift-list:123",
        "event": "UPDATED",
        "data": {"entity_id": "gift-456", "payload": {"id": "gift-456"}},
    }
    raw.update(overrides)
    return raw


# --- the seed's examples are accepted ----------------------------------------

SEED_EXAMPLES: list[dict[str, Any]] = [
    {
        "topic": "gift-list:123",
        "event": "ADDED",
        "data": {"entity_id": "gift-456", "payload": {"id": "gift-456", "name": "New Gift"}},
    },
    {
        "topic": "gift-list:123",
        "event": "UPDATED",
        "data": {
            "entity_id": "gift-456",
            "payload": {
                "id": "gift-456",
                "name": "Updated Gift",
                "price": 29.99,
                "url": "https://...",
                "notes": "...",
                "created_at": "2023-01-01T00:00:00Z",
                "updated_at": "2023-01-02T00:00:00Z",
            },
        },
    },
    {
        "topic": "gift-list:123",
        "event": "DELETED",
        "data": {"entity_id": "gift-456", "payload": None},
    },
    {
        "topic": "gift-list:123",
        "event": "STATUS_CHANGED",
        "data": {
            "entity_id": "gift-456",
            "payload": {
                "id": "gift-456",
                "old_status": "available",
                "new_status": "purchased",
                "purchased_by": "user-789",
            },
        },
    },
    {
        "topic": "room:lobby",
        "event": "USER_JOINED",
        "data": {
            "entity_id": "user-123",
            "payload": {"user_id": "user-123", "username": "Alice", "avatar_url": "https://..."},
        },
    },
    {
        "topic": "import:job-456",
        "event": "IMPORT_COMPLETED",
        "data": {"entity_id": "job-456", "payload": {"total": 1000, "imported": 950, "errors": 50}},
    },
    {
        "topic": "tenant:acme:gift-list:123",
        "event": "UPDATED",
        "data": {"entity_id": "gift-456", "tenant_id": "acme", "payload": {}},
    },
    {
        "topic": "gift-list:123",
        "event": "UPDATED",
        "data": {"entity_id": "gift-456", "payload": None},
        "trace_id": "a1b2c3d4-e5f6-7890",
    },
    {
        "topic": "gift-list:123",
        "event": "UPDATED",
        "data": {"entity_id": "gift-456", "payload": None},
        "version": 2,
    },
]


@pytest.mark.parametrize("raw", SEED_EXAMPLES, ids=lambda raw: f"{raw['event']}")
def test_seed_examples_are_accepted(raw: dict[str, Any]) -> None:
    event = decode_new_event(raw)
    assert event.topic == raw["topic"]
    assert event.event == raw["event"]
    assert event.data.entity_id == raw["data"]["entity_id"]
    assert event.data.payload == raw["data"]["payload"]
    assert event.data.tenant_id == raw["data"].get("tenant_id")
    assert event.trace_id == raw.get("trace_id")
    assert event.version == raw.get("version")
    assert event.data.timestamp is None


def test_payload_may_be_omitted_and_defaults_to_null() -> None:
    event = decode_new_event(_event(data={"entity_id": "x"}))
    assert event.data.payload is None


def test_publisher_timestamp_with_offset_is_kept_aware() -> None:
    event = decode_new_event(
        _event(data={"entity_id": "x", "timestamp": "2026-11-25T23:00:00.5+02:00"})
    )
    assert event.data.timestamp == datetime(2026, 11, 25, 21, 0, 0, 500000, tzinfo=UTC)


# --- rejections -----------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["update", "Updated", "updated", "UPDATED_", "_UPDATED", "1UP", "E" * 65]
)
def test_badly_cased_event_types_are_rejected(name: str) -> None:
    failed = _failed(_event(event=name))
    assert failed.details["field"] == "event"
    assert "UPPER_SNAKE_CASE" in failed.details["error"]
    assert not is_event_type(name)


@pytest.mark.parametrize(
    "name", ["ADDED", "USER_JOINED", "GIFT_PURCHASED", "E001", "V2_DONE", "E" * 64]
)
def test_is_event_type_accepts_upper_snake_case(name: str) -> None:
    assert is_event_type(name)


def test_is_event_type_rejects_non_strings() -> None:
    assert not is_event_type(None)
    assert not is_event_type(1)


def test_unknown_top_level_field_is_named() -> None:
    failed = _failed(_event(**{"trace-id": "abc"}))
    assert _error_for(failed, "trace-id") == "unknown field"
    assert failed.details["field"] == "trace-id"


def test_unknown_data_field_is_named() -> None:
    failed = _failed(_event(data={"entity_id": "x", "payload": None, "userId": "u"}))
    assert _error_for(failed, "data.userId") == "unknown field"


def test_seq_is_assigned_by_the_server() -> None:
    failed = _failed(_event(seq=3))
    assert _error_for(failed, "seq") == "assigned by the server"


def test_missing_entity_id_is_required() -> None:
    failed = _failed(_event(data={"payload": {}}))
    assert failed.details["field"] == "data.entity_id"
    assert failed.details["error"] == "required"


def test_missing_data_and_event_are_all_reported() -> None:
    failed = _failed({"topic": "gift-list:1"})
    fields = {entry["field"] for entry in failed.details["errors"]}
    assert fields == {"event", "data"}
    assert all(entry["error"] == "required" for entry in failed.details["errors"])


def test_naive_timestamp_is_rejected() -> None:
    failed = _failed(_event(data={"entity_id": "x", "timestamp": "2026-11-25T21:00:00"}))
    assert failed.details["field"] == "data.timestamp"


@pytest.mark.parametrize("version", [0, -1, "2", True, 1.5])
def test_bad_versions_are_rejected(version: object) -> None:
    failed = _failed(_event(version=version))
    assert failed.details["field"] == "version"


def test_entity_id_must_be_a_string() -> None:
    failed = _failed(_event(data={"entity_id": 456, "payload": None}))
    assert failed.details["field"] == "data.entity_id"


def test_empty_entity_id_is_rejected() -> None:
    failed = _failed(_event(data={"entity_id": "", "payload": None}))
    assert failed.details["field"] == "data.entity_id"


@pytest.mark.parametrize("raw", [None, [], "gift-list:1", 3])
def test_non_object_is_rejected(raw: object) -> None:
    failed = _failed(raw)
    assert failed.details["field"] == "(root)"


def test_bad_topic_raises_invalid_topic_not_validation_error() -> None:
    with pytest.raises(ProtocolError) as info:
        decode_new_event(_event(topic="Gift-List:1"))
    assert info.value.code is ErrorCode.INVALID_TOPIC


def test_reserved_topic_is_refused_for_publishing() -> None:
    with pytest.raises(ProtocolError) as info:
        decode_new_event(_event(topic="system"))
    assert info.value.code is ErrorCode.RESERVED_TOPIC


@pytest.mark.parametrize(
    ("topic", "code", "shown"),
    [
        ("Not A Topic", ErrorCode.INVALID_TOPIC, "Not A Topic"),
        ("gift-list:*", ErrorCode.INVALID_TOPIC, "gift-list:*"),
        ("*", ErrorCode.INVALID_TOPIC, "*"),
        ("gift-list", ErrorCode.INVALID_TOPIC, "gift-list"),
        (123, ErrorCode.INVALID_TOPIC, "<int>"),
        ("system:revocations", ErrorCode.RESERVED_TOPIC, "system:revocations"),
        ("error:x", ErrorCode.RESERVED_TOPIC, "error:x"),
    ],
)
def test_a_new_event_cannot_be_built_on_an_unpublishable_topic(
    topic: object, code: ErrorCode, shown: str
) -> None:
    with pytest.raises(ValidationError) as built:
        NewEvent(topic=topic, event="ADDED", data=NewEventData(entity_id="e"))
    [error] = built.value.errors()
    refusal = error["ctx"]["refusal"]
    assert (error["loc"], error["msg"]) == (("topic",), refusal.message)
    assert (refusal.code, refusal.details) == (code, {"topic": shown})
    # Decoding gives the same refusal, not VALIDATION_ERROR.
    with pytest.raises(ProtocolError) as decoded:
        decode_new_event(_event(topic=topic))
    assert (decoded.value.code, decoded.value.message) == (code, refusal.message)
    assert decoded.value.details == {"topic": shown}


def test_the_topic_refusal_comes_before_other_field_errors() -> None:
    with pytest.raises(ProtocolError) as info:
        decode_new_event(_event(topic="system", event="update", extra=1))
    assert info.value.code is ErrorCode.RESERVED_TOPIC
    assert info.value.details == {"topic": "system"}
    assert info.value.message == "topic 'system' is reserved for the server's own events"


def test_each_decode_gives_its_own_refusal_to_add_details_to() -> None:
    first, second = (_refusal({"topic": "gift-list:*"}) for _ in range(2))
    first.details["index"] = 3  # what batch_error does
    assert second.details == {"topic": "gift-list:*"}


def _refusal(fields: dict[str, Any]) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode_new_event(_event(**fields))
    return info.value


def test_every_failed_field_is_listed() -> None:
    failed = _failed(_event(event="update", version=0, extra=1))
    fields = [entry["field"] for entry in failed.details["errors"]]
    assert set(fields) == {"event", "version", "extra"}
    assert failed.details["field"] == fields[0]
    assert failed.errors == [(e["field"], e["error"]) for e in failed.details["errors"]]


# --- encoding --------------------------------------------------------------------


def test_encode_full_event_key_order_and_utc_timestamp() -> None:
    event = decode_new_event(
        {
            "version": 2,
            "trace_id": "t-1",
            "data": {
                "timestamp": "2026-11-25T23:00:00.987654+02:00",
                "tenant_id": "acme",
                "user_id": "user-1",
                "payload": {"id": "gift-456", "price": 29.99},
                "entity_id": "gift-456",
            },
            "event": "UPDATED",
            "topic": "gift-list:123",
        }
    )
    assert _encode(event) == (
        b'{"topic":"gift-list:123","event":"UPDATED","data":{"entity_id":"gift-456",'
        b'"payload":{"id":"gift-456","price":29.99},"user_id":"user-1","tenant_id":"acme",'
        b'"timestamp":"2026-11-25T21:00:00.987Z"},"trace_id":"t-1","version":2}'
    )


def test_encode_minimal_event_omits_absent_optionals() -> None:
    event = decode_new_event(
        {"topic": "gift-list:123", "event": "DELETED", "data": {"entity_id": "gift-456"}}
    )
    assert _encode(event) == (
        b'{"topic":"gift-list:123","event":"DELETED","data":{"entity_id":"gift-456",'
        b'"payload":null,"timestamp":"2026-11-25T21:00:00.123Z"}}'
    )
    decoded = orjson.loads(_encode(event))
    assert set(decoded) == {"topic", "event", "data"}
    assert set(decoded["data"]) == {"entity_id", "payload", "timestamp"}


def test_encode_uses_server_time_only_when_publisher_gave_none() -> None:
    stamped = decode_new_event(_event(data={"entity_id": "x", "timestamp": "2020-01-01T00:00:00Z"}))
    assert orjson.loads(_encode(stamped))["data"]["timestamp"] == "2020-01-01T00:00:00.000Z"
    unstamped = decode_new_event(_event())
    assert orjson.loads(_encode(unstamped))["data"]["timestamp"] == "2026-11-25T21:00:00.123Z"


def test_encode_embeds_payload_json_verbatim() -> None:
    event = decode_new_event(_event())
    body = encode_event(event, b'{"pre":"encoded"}', NOW)
    assert orjson.loads(body)["data"]["payload"] == {"pre": "encoded"}


def test_splice_seq_produces_valid_json() -> None:
    event = decode_new_event(_event(trace_id="t", version=1))
    body = _encode(event)
    spliced = splice_seq(body, 42)
    assert spliced.endswith(b',"seq":42}')
    decoded = orjson.loads(spliced)
    assert decoded["seq"] == 42
    assert {k: v for k, v in decoded.items() if k != "seq"} == orjson.loads(body)


def test_event_round_trip() -> None:
    new = decode_new_event(
        _event(
            data={"entity_id": "gift-456", "payload": {"n": 1}, "user_id": "u", "tenant_id": "t"},
            trace_id="trace",
            version=3,
        )
    )
    event = Event.model_validate_json(splice_seq(_encode(new), 7))
    assert event.topic == new.topic
    assert event.event == new.event
    assert event.seq == 7
    assert event.trace_id == "trace"
    assert event.version == 3
    assert event.entity_id == "gift-456"
    assert event.payload == {"n": 1}
    assert event.data.user_id == "u"
    assert event.data.tenant_id == "t"
    assert event.data.timestamp == datetime(2026, 11, 25, 21, 0, 0, 123000, tzinfo=UTC)


def test_event_ignores_unknown_fields() -> None:
    event = Event.model_validate_json(
        b'{"topic":"a:b","event":"X","data":{"entity_id":"e","payload":null,'
        b'"timestamp":"2026-01-01T00:00:00.000Z","future":1},"future":2,"seq":1}'
    )
    assert event.seq == 1
    assert event.payload is None


# --- format_timestamp ------------------------------------------------------------


def test_format_timestamp_truncates_to_milliseconds() -> None:
    assert format_timestamp(datetime(2026, 1, 2, 3, 4, 5, 999999, tzinfo=UTC)) == (
        "2026-01-02T03:04:05.999Z"
    )
    assert format_timestamp(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000Z"


def test_format_timestamp_converts_offsets_to_utc() -> None:
    tz = timezone(timedelta(hours=-5, minutes=-30))
    moment = datetime(2026, 12, 31, 20, 0, 0, 1000, tzinfo=tz)
    text = format_timestamp(moment)
    assert text == "2027-01-01T01:30:00.001Z"
    assert TIMESTAMP_RE.fullmatch(text)


# --- known bugs (see the report) ----------------------------------------------------


def test_format_timestamp_pads_years_below_1000() -> None:
    assert format_timestamp(datetime(999, 1, 2, tzinfo=UTC)) == "0999-01-02T00:00:00.000Z"


def test_accepted_early_timestamp_round_trips() -> None:
    new = decode_new_event(_event(data={"entity_id": "x", "timestamp": "0999-01-02T00:00:00Z"}))
    event = Event.model_validate_json(splice_seq(_encode(new), 1))
    assert event.data.timestamp == datetime(999, 1, 2, tzinfo=UTC)


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_timestamp_outside_utc_range_is_rejected(stamp: str) -> None:
    # Neither moment exists in UTC (year 0 / year 10000), so only rejection is correct.
    with pytest.raises(ValidationFailed) as info:
        decode_new_event(_event(data={"entity_id": "x", "timestamp": stamp}))
    assert info.value.details["field"] == "data.timestamp"
