"""The resume feed when a broker goes back under the same epoch (lost writes).

A failover to a replica that had not received the last writes, or a
restore from an older snapshot, keeps the epoch and hands out again seqs a
node already handed on. The feed must report a reset, not drop the new
events as duplicates.
"""

from __future__ import annotations

from eventwire.brokers.base import Position
from tests.unit.test_broker_parts import FakeHistory, feed_of


def went_back(history: FakeHistory, to: int) -> None:
    """The broker lost every event after ``to``; its epoch stays."""
    history.seq = to
    history.kept = [e for e in history.kept if e[0] <= to]


def publish_new(history: FakeHistory, count: int) -> None:
    for _ in range(count):
        history.seq += 1
        history.kept.append((history.seq, b"new %d" % history.seq))


async def test_catching_up_below_the_cursor_is_a_reset() -> None:
    history = FakeHistory()
    feed, received, resets = feed_of(history)
    feed.track("t:1", Position(0, "e1"))
    history.publish(5)
    for seq in range(1, 6):
        await feed.message("t:1", seq, "e1", b"%d" % seq)
    went_back(history, 2)
    await feed.catch_up("t:1")  # the link came back to the new master
    assert resets == [("t:1", Position(2, "e1"))]
    assert (feed.regressions, feed.epoch_changes) == (1, 0)
    publish_new(history, 1)
    await feed.message("t:1", 3, "e1", b"new 3")  # not a duplicate any more
    assert received.seqs("t:1") == [1, 2, 3, 4, 5, 3]


async def test_new_events_that_reached_the_cursor_are_told_by_their_body() -> None:
    history = FakeHistory()
    feed, received, resets = feed_of(history)
    feed.track("t:1", Position(0, "e1"))
    history.publish(5)
    for seq in range(1, 6):
        await feed.message("t:1", seq, "e1", b"%d" % seq)
    went_back(history, 2)
    publish_new(history, 4)  # 3..6 again, the position is past the cursor by now
    await feed.catch_up("t:1")
    assert resets == [("t:1", Position(6, "e1"))]
    assert feed.regressions == 1
    assert received.seqs("t:1") == [1, 2, 3, 4, 5]  # the subscribers refetch on the reset


async def test_a_live_event_at_the_cursor_with_another_body_is_a_reset() -> None:
    history = FakeHistory()
    feed, received, resets = feed_of(history)
    feed.track("t:1", Position(0, "e1"))
    history.publish(3)
    for seq in (1, 2, 3):
        await feed.message("t:1", seq, "e1", b"%d" % seq)
    await feed.message("t:1", 3, "e1", b"3")  # a true duplicate: dropped, no reset
    assert (resets, feed.regressions) == ([], 0)
    went_back(history, 2)
    publish_new(history, 1)
    await feed.message("t:1", 3, "e1", b"new 3")
    assert resets == [("t:1", Position(2, "e1"))]
    assert received.seqs("t:1") == [1, 2, 3, 3]
    await feed.message("t:1", 3, "e1", b"new 3")  # and now a duplicate again
    assert feed.regressions == 1


async def test_an_unchanged_history_is_no_reset_when_catching_up() -> None:
    history = FakeHistory()
    feed, received, resets = feed_of(history)
    feed.track("t:1", Position(0, "e1"))
    history.publish(3)
    for seq in (1, 2, 3):
        await feed.message("t:1", seq, "e1", b"%d" % seq)
    history.publish(2)
    await feed.catch_up("t:1")
    history.trim(first=6)  # the event at the cursor trimmed: nothing to compare, no reset
    await feed.catch_up("t:1")
    assert (resets, feed.regressions) == ([], 0)
    assert received.seqs("t:1") == [1, 2, 3, 4, 5]
