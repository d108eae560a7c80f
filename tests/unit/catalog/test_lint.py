"""Lint: every rule fires on its anti-pattern and stays quiet on good events."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from eventwire.catalog import Catalog
from eventwire.catalog.lint import (
    RULES,
    Finding,
    LintConfig,
    Severity,
    exit_status,
    format_findings,
    lint_catalog,
    lint_event,
    lint_lines,
    lint_published,
    report,
    to_validation_error,
)
from eventwire.catalog.lint.names import casing_fix, is_opaque, is_past_tense, nested_entity
from eventwire.envelope import decode_new_event

from .helpers import GIFT, Gift, GiftStatus, gift_catalog

GOOD: dict[str, Any] = {
    "topic": "gift-list:123",
    "event": "ADDED",
    "data": {
        "entity_id": "gift-456",
        "payload": GIFT,
        "user_id": "user-789",
        "timestamp": "2023-01-01T00:00:00.000Z",
    },
    "trace_id": "a1b2c3d4-e5f6-7890",
    "seq": 4,
}


def changed(**changes: Any) -> dict[str, Any]:
    """GOOD with dotted paths replaced (a value of ... removes the field)."""
    raw = copy.deepcopy(GOOD)
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = raw
        for part in parents:
            node = node[part]
        if value is ...:
            node.pop(last, None)
        else:
            node[last] = value
    return raw


def rules(raw: object, catalog: Catalog | None = None, **options: Any) -> set[str]:
    return {f.rule for f in lint_event(raw, catalog=catalog or gift_catalog(), **options)}


def test_a_good_event_has_no_finding() -> None:
    assert rules(GOOD) == set()


CASES: list[tuple[str, object]] = [
    ("EW001", [1, 2]),
    ("EW002", changed(data__entity_id=...)),
    ("EW101", changed(topic="Gift-List")),
    ("EW102", changed(topic="gift-list:123:gift:456")),
    ("EW103", changed(topic="order:789")),
    ("EW201", changed(event="update")),
    ("EW202", changed(event="E001")),
    ("EW203", changed(event="GIFT_PURCHASE")),
    ("EW204", changed(event="GIFT_WRAPPED")),
    ("EW206", changed(version=7)),
    ("EW301", changed(data__timestamp=...)),
    ("EW302", changed(data__timestamp="yesterday")),
    ("EW303", changed(data__user_id=...)),
    ("EW304", changed(trace_id=...)),
    ("EW401", changed(data__payload={**GIFT, "price": "free"})),
    ("EW402", changed(data__payload={**GIFT, "notes": "x" * 11_000})),
    ("EW403", changed(data__payload={**GIFT, "notes": "x" * 110_000})),
    ("EW404", changed(data__payload={**GIFT, "list": {"id": "l1", "owner": "u", "title": "t"}})),
]


@pytest.mark.parametrize(("rule", "raw"), CASES, ids=[c[0] for c in CASES])
def test_each_event_rule_fires_on_its_anti_pattern(rule: str, raw: object) -> None:
    assert rule in rules(raw)


def test_custom_events_on_open_resources_are_information() -> None:
    found = lint_event(changed(event="GIFT_WRAPPED"), catalog=gift_catalog(strict=False))
    assert [(f.rule, f.severity) for f in found] == [("EW205", Severity.INFO)]
    assert "EW205" not in rules(GOOD, gift_catalog(strict=False))


def test_missing_version_on_a_multi_version_event() -> None:
    catalog = gift_catalog()
    catalog.event("gift-list", "GIFT_PURCHASED", None, version=2)
    purchase = {"id": "gift-456", "purchased_by": "user-789"}
    raw = changed(event="GIFT_PURCHASED", data__payload=purchase)
    assert "EW207" in rules(raw, catalog)
    assert rules({**raw, "version": 1}, catalog) == set()


def test_unknown_resources_are_errors_in_a_strict_catalog() -> None:
    [finding] = lint_event(changed(topic="order:789"), catalog=gift_catalog(catalog_strict=True))
    assert (finding.rule, finding.severity, finding.path) == ("EW103", Severity.ERROR, "topic")
    assert rules(changed(topic="order:789"), Catalog("empty")) == {"EW103"}


def test_without_a_catalog_only_the_seeds_conventions_are_checked() -> None:
    found = lint_event(changed(topic="order:789", event="GIFT_WRAPPED"), catalog=None)
    assert found == []


def test_the_seeds_good_hierarchies_are_not_nested_topics() -> None:
    for topic in ("org:acme:team:dev", "user:123:notifications", "room:lobby:messages"):
        raw = changed(topic=topic)
        assert "EW102" not in rules(raw, Catalog("empty")), topic
    assert "EW102" not in rules(changed(topic="tenant:acme:gift-list:123"))


def test_nested_entities_are_recognised() -> None:
    assert nested_entity(["gift-list", "123", "gift", "456"], None) == ("gift", "456")
    assert nested_entity(["list", "1", "item", "9"], "item-9") == ("item", "9")
    assert nested_entity(["org", "acme", "team", "dev"], "team-dev") == ("team", "dev")
    assert nested_entity(["org", "acme", "team", "dev"], "dev") is None
    assert nested_entity(["a", "1", "room", "2"], None, frozenset({"room"})) == ("room", "2")
    assert nested_entity(["gift-list", "123"], "gift-456") is None


@pytest.mark.parametrize(
    ("name", "opaque", "past"),
    [
        ("E001", True, False),
        ("EVT_42", True, False),
        ("GIFT_PURCHASED", False, True),
        ("USER_LEFT", False, True),
        ("IMPORT_COMPLETED", False, True),
        ("MESSAGE_SENT", False, True),
        ("USER_TYPING", False, False),
        ("NEWS_FEED", False, False),
        ("GIFT_PURCHASE", False, False),
    ],
)
def test_name_heuristics(name: str, opaque: bool, past: bool) -> None:
    assert is_opaque(name) is opaque
    assert is_past_tense(name) is past


def test_casing_fixes_suggest_the_seeds_names() -> None:
    assert casing_fix("update") == "UPDATED"
    assert casing_fix("created") == "ADDED"
    assert casing_fix("remove") == "DELETED"
    assert casing_fix("userJoined") == "USER_JOINED"
    assert casing_fix("gift purchased") == "GIFT_PURCHASED"


def test_findings_say_where_and_what() -> None:
    [finding] = lint_event(
        changed(data__user_id=...), catalog=gift_catalog(), source="t.jsonl", line=3
    )
    assert finding.to_dict() == {
        "rule": "EW303",
        "name": "missing-user",
        "severity": "warning",
        "message": "no user_id: who caused this event?",
        "source": "t.jsonl",
        "line": 3,
        "path": "data.user_id",
    }
    assert str(finding).startswith("t.jsonl:3 data.user_id: warning EW303 missing-user")


# -- traffic -------------------------------------------------------------------


def test_malformed_lines_are_reported_and_linting_goes_on() -> None:
    lines: list[bytes | str] = [
        orjson.dumps(GOOD),
        b"{not json",
        b"\xff\xfe\x00",
        "",
        "   ",
        "[1]",
        "null",
        orjson.dumps(changed(data__user_id=...)),
    ]
    found = lint_lines(lines, catalog=gift_catalog(), source="t.jsonl")
    assert [(f.rule, f.line) for f in found] == [
        ("EW001", 2),
        ("EW001", 3),
        ("EW001", 6),
        ("EW001", 7),
        ("EW303", 8),
    ]
    assert found[0].message.startswith("not JSON")
    assert found[1].message.startswith("not UTF-8")


def test_batches_are_linted_event_by_event() -> None:
    batch = {"events": [GOOD, changed(event="E001")]}
    found = lint_lines([orjson.dumps(batch)], catalog=gift_catalog())
    assert [(f.rule, f.path) for f in found] == [
        ("EW202", "events.1.event"),
        ("EW204", "events.1.event"),  # and the strict gift list does not declare it
    ]


def test_server_frames_in_recorded_traffic_are_skipped() -> None:
    connected = {"topic": "system", "event": "CONNECTED", "data": {"entity_id": "s", "payload": {}}}
    assert lint_lines([orjson.dumps(connected)]) == []


def test_publishes_may_leave_the_timestamp_to_the_server() -> None:
    raw = orjson.dumps(changed(data__timestamp=...))
    assert [f.rule for f in lint_lines([raw], catalog=gift_catalog())] == ["EW301"]
    assert lint_lines([raw], catalog=gift_catalog(), stamped_by_server=True) == []


def test_report_and_exit_status() -> None:
    found = lint_lines([b"nope", orjson.dumps(changed(trace_id=...))], catalog=gift_catalog())
    assert exit_status(found) == 1
    assert report(found)["summary"] == {"error": 1, "warning": 0, "info": 1}
    assert report(found)["findings"][0]["rule"] == "EW001"
    assert format_findings(found).endswith("1 error(s), 0 warning(s), 1 info(s)\n")
    assert exit_status(f for f in found if f.severity is not Severity.ERROR) == 0


# -- configuration and publish time ----------------------------------------------


def test_config_changes_severities_and_turns_rules_off() -> None:
    config = LintConfig.parse(["EW303=off", "missing-trace=error"])
    found = lint_event(changed(data__user_id=..., trace_id=...), config=config)
    assert [(f.rule, f.severity) for f in found] == [("EW304", Severity.ERROR)]
    with pytest.raises(ValueError, match="unknown lint rule"):
        LintConfig.parse(["EW999=off"])
    with pytest.raises(ValueError, match="expected RULE="):
        LintConfig.parse(["EW303=loud"])


def test_publish_time_lint_runs_the_same_rules() -> None:
    raw = changed(topic="gift-list:123:gift:456", data__user_id=..., data__timestamp=...)
    raw.pop("seq")
    event = decode_new_event(raw)
    found = lint_published(event, orjson.dumps(event.data.payload), catalog=gift_catalog())
    assert [f.rule for f in found] == ["EW102", "EW303"]
    assert to_validation_error(found) is None
    strict = LintConfig.parse(["nested-topic=error"])
    found = lint_published(event, orjson.dumps(GIFT), catalog=gift_catalog(), config=strict)
    refusal = to_validation_error(found)
    assert refusal is not None
    assert refusal.details["field"] == "topic"
    assert refusal.details["error"].endswith("[EW102]")


# -- the catalog -----------------------------------------------------------------


def catalog_rules(catalog: Catalog) -> set[str]:
    return {f.rule for f in lint_catalog(catalog)}


def test_a_well_declared_catalog_has_no_finding() -> None:
    assert lint_catalog(gift_catalog()) == []


class Owner(BaseModel):
    id: str
    name: str


class Listing(BaseModel):
    id: str
    status: str
    owner: Owner
    tags: list[Owner] = []


def test_catalog_rules_fire_on_their_anti_patterns() -> None:
    catalog = Catalog("bad")
    catalog.resource("order", Listing, payload_mode="reference")
    room = catalog.resource("room")
    room.event("E001", None, description="?", example=None)
    room.event("USER_TYPING", None, example=None)
    room.event("USER_TYPING", None, version=2, example=None)
    room.event("USER_WAVED", None, description="Someone waved.")
    found = lint_catalog(catalog)
    by_rule = {f.rule: f for f in found}
    assert set(by_rule) == {"EW202", "EW203", "EW501", "EW502", "EW503", "EW504", "EW505", "EW506"}
    assert by_rule["EW202"].path == "room.E001"
    assert {f.message[:26] for f in found if f.rule == "EW506"} == {
        "no converter from v1 to v2",
        "no converter from v2 to v1",
    }
    assert {(f.message[:16], f.path) for f in found if f.rule == "EW505"} == {
        ("DTO field 'owner", "order.dto.v1"),
        ("DTO field 'tags'", "order.dto.v1"),
    }
    assert by_rule["EW502"].path == "room.USER_WAVED.v1"
    assert all(f.source == "catalog:bad" for f in found)


def test_a_free_text_status_with_declared_statuses_is_flagged() -> None:
    catalog = Catalog("c")
    catalog.resource("listing", Listing, statuses=["open"], payload_mode="full")
    assert "EW503" in catalog_rules(catalog)
    good = Catalog("c")
    good.resource("gift-list", Gift, statuses=GiftStatus)
    assert "EW503" not in catalog_rules(good)


def test_every_rule_is_documented_with_the_seeds_words() -> None:
    assert all(rule.seed and rule.name for rule in RULES.values())
    assert len({rule.name for rule in RULES.values()}) == len(RULES)
    assert isinstance(Finding("EW001", Severity.ERROR, "m", "s").location, str)
