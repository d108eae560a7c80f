"""What one presence write owes, in order, and the warnings said once for many topics (no I/O)."""

from __future__ import annotations

import logging
import time

import pytest

from eventwire.server.presence import Member
from eventwire.server.presence.outage import Outage, Throttled
from eventwire.server.presence.tracker import transitions

ALICE = Member("acme", "alice")
BOB = Member(None, "bob")
CAROL = Member(None, "carol")
DAVE = Member(None, "dave")


def test_a_write_tells_who_went_with_a_dead_node_before_its_joins_and_leaves() -> None:
    counts = {CAROL.key: (0, 1), DAVE.key: (1, 0), ALICE.key: (0, 2)}
    owed = transitions(counts, [BOB.key], [CAROL, DAVE, ALICE])
    assert owed == [
        (BOB, False, "timeout"),
        (CAROL, True, ""),
        (DAVE, False, "left"),
        (ALICE, True, ""),
    ]


def test_a_user_back_in_the_write_that_drops_their_dead_node_is_told_joined_only() -> None:
    owed = transitions({ALICE.key: (0, 1)}, [ALICE.key, BOB.key, "junk"], [ALICE])
    assert owed == [(BOB, False, "timeout"), (ALICE, True, "")]


def test_changes_that_cross_no_zero_owe_nothing() -> None:
    assert transitions({ALICE.key: (1, 2), BOB.key: (2, 1), CAROL.key: (0, 0)}, [], []) == []


def test_an_outage_is_told_once_and_its_end_once_with_the_topics_it_held_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="test.outage")
    outage = Outage(logging.getLogger("test.outage"))
    for topic in ("room:1", "room:2", "room:1", "room:3"):
        outage.failed(topic, ConnectionError("refused"), tracked=5)
    outage.answered("room:1")
    outage.gave_up("room:2")
    outage.answered("room:9")  # never waited: changes nothing
    assert [r.getMessage() for r in caplog.records] == [
        "presence: the broker is unreachable (refused); 5 topics wait for it, retried with backoff"
    ]
    outage.answered("room:3")
    assert caplog.records[-1].getMessage().endswith("; 3 topics were held up")
    outage.failed("room:1", ConnectionError("again"), tracked=1)  # a new outage: told again
    assert len(caplog.records) == 3


def test_a_throttled_warning_is_said_once_per_period_then_counts_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    throttled = Throttled(logging.getLogger("test.throttled"), period=0.05)
    for topic in ("a", "b", "c"):
        throttled.warn("lost %s", topic)
    assert [r.getMessage() for r in caplog.records] == ["lost a"]
    time.sleep(0.06)  # the period passing: time, not an event
    throttled.warn("lost %s", "d")
    assert caplog.records[-1].getMessage() == ("lost d (2 more like it were held back)")
