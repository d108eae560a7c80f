"""The demo that `make run` serves: a real catalog, and a stream that follows it."""

from __future__ import annotations

import itertools

import orjson

from eventwire import demo
from eventwire.catalog import PayloadMode
from eventwire.catalog.lint import lint_catalog, lint_lines
from eventwire.envelope import decode_new_event


def test_the_first_50_demo_events_validate_under_the_demo_catalog() -> None:
    events = list(itertools.islice(demo.demo_events(), 50))
    assert {e["topic"] for e in events} == set(demo.DEMO_TOPICS)
    for raw in events:
        demo.catalog.validate(decode_new_event(raw))


def test_the_demo_stream_and_catalog_are_lint_clean() -> None:
    lines = [orjson.dumps(e) for e in itertools.islice(demo.demo_events(), 50)]
    assert lint_lines(lines, catalog=demo.catalog, stamped_by_server=True) == []
    assert lint_catalog(demo.catalog) == []


def test_the_demo_catalog_is_the_seeds_running_example() -> None:
    gifts = demo.catalog.resources["gift-list"]
    assert list(gifts.events) == ["ADDED", "UPDATED", "DELETED", "STATUS_CHANGED", "GIFT_PURCHASED"]
    assert gifts.strict
    assert gifts.payload_mode is PayloadMode.AUTO
    assert gifts.reference_url == "/api/gifts/{entity_id}"
    assert gifts.statuses == ("available", "purchased")
    status = gifts.events["STATUS_CHANGED"].versions[1].payload.json_schema()
    assert "purchased_by" in status["properties"]
    assert list(demo.catalog.resources["room"].events) == [
        "USER_JOINED",
        "USER_LEFT",
        "MESSAGE_POSTED",
    ]
    imported = demo.catalog.resources["import"].events["IMPORT_COMPLETED"]
    assert list(imported.versions[1].payload.json_schema()["properties"]) == [
        "total",
        "imported",
        "errors",
    ]


def test_message_posted_converts_between_its_versions() -> None:
    spec = demo.catalog.resources["room"].events["MESSAGE_POSTED"]
    v1 = {"message_id": "m", "user_id": "u", "username": "A", "text": "hi @bob and @chen"}
    v2 = spec.convert(v1, 1, 2)
    assert v2["mentions"] == ["bob", "chen"]
    assert spec.convert(v2, 2, 1) == v1
