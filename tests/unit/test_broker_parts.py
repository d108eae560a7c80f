"""The pure parts the brokers are built of, tested without a loop's worth of I/O.

Interest bookkeeping, Redis key names and message format, the resume feed
(with history as a plain list), the memory bus's bounds under a fake clock,
and broker URLs.
"""

from __future__ import annotations

import sys

import pytest

from eventwire.brokers import MemoryBroker, MemoryBus, NotAvailable, create_broker, history_of
from eventwire.brokers._interest import Interests
from eventwire.brokers._redis_lua import RedisKeys, parse_message
from eventwire.brokers._resume import Feed
from eventwire.brokers.base import HistoryPage, Position
from eventwire.testing.brokers import Received

# -- Interests ---------------------------------------------------------------------


def test_interests_are_sets_of_topics_and_patterns() -> None:
    interests = Interests()
    assert interests.add("gift-list:1")
    assert not interests.add("gift-list:1")
    assert interests.add("room:*")
    assert (interests.topics, interests.patterns, len(interests)) == (
        {"gift-list:1"},
        frozenset({"room:*"}),
        2,
    )
    assert interests.wants("gift-list:1")
    assert interests.wants("room:a:b")
    assert not interests.wants("gift-list:2")
    assert interests.remove("room:*")
    assert not interests.remove("room:*")
    assert not interests.wants("room:a:b")


def test_one_copy_of_an_event_is_kept_whatever_matches_it() -> None:
    interests = Interests()
    interests.add("room:*")
    interests.add("*:messages")
    # Two patterns match: the smallest one's copy is kept.
    assert interests.pattern_copy_wanted("*:messages", "room:lobby:messages")
    assert not interests.pattern_copy_wanted("room:*", "room:lobby:messages")
    # A topic that is an interest by name keeps its own copy, never a pattern's.
    interests.add("room:lobby:messages")
    assert not interests.pattern_copy_wanted("*:messages", "room:lobby:messages")
    # A pattern that does not match exactly (a looser broker glob) is dropped.
    assert not interests.pattern_copy_wanted("room:*", "rooms:a")


# -- Redis names -------------------------------------------------------------------


def test_redis_names_keep_a_topic_in_one_hash_slot() -> None:
    keys = RedisKeys("shop")
    assert keys.meta("gift-list:1") == "shop:{gift-list:1}:meta"
    assert keys.history("gift-list:1") == "shop:{gift-list:1}:history"
    assert keys.channel("gift-list:1") == b"shop:{gift-list:1}"
    assert keys.glob("gift-list:*") == b"shop:{gift-list:*}"
    assert keys.name_of(b"shop:{gift-list:1}") == "gift-list:1"
    assert keys.name_of(b"shop:{gift-list:*}") == "gift-list:*"
    assert keys.name_of(b"other:{gift-list:1}") is None
    with pytest.raises(ValueError, match="prefix"):
        RedisKeys("bad*prefix")


def test_a_live_message_keeps_colons_in_its_body() -> None:
    assert parse_message(b'12:abcd:{"a":"b:c"}') == (12, "abcd", b'{"a":"b:c"}')
    with pytest.raises(ValueError, match="not enough values"):
        parse_message(b"not a message")


# -- Feed ----------------------------------------------------------------------------


class FakeHistory:
    """A topic's history as a list, as the feed would read it from a broker."""

    def __init__(self, epoch: str = "e1") -> None:
        self.epoch = epoch
        self.seq = 0
        self.kept: list[tuple[int, bytes]] = []
        self.reads = 0

    def publish(self, count: int = 1) -> None:
        for _ in range(count):
            self.seq += 1
            self.kept.append((self.seq, b"%d" % self.seq))

    def trim(self, first: int) -> None:
        self.kept = [e for e in self.kept if e[0] >= first]

    async def __call__(self, topic: str, since: int, limit: int) -> HistoryPage:
        self.reads += 1
        events = [e for e in self.kept if e[0] > since][:limit]
        first = events[0][0] if events else self.seq + 1
        return HistoryPage(
            events, Position(self.seq, self.epoch), since < self.seq and first > since + 1
        )


def feed_of(history: FakeHistory) -> tuple[Feed, Received, list[tuple[str, Position]]]:
    received, resets = Received(), []
    feed = Feed(received, history, lambda topic, position: resets.append((topic, position)))
    return feed, received, resets


async def test_feed_drops_duplicates_and_fills_jumps_from_history() -> None:
    history = FakeHistory()
    feed, received, _ = feed_of(history)
    feed.track("t:1", Position(0, "e1"))
    history.publish(4)
    await feed.message("t:1", 1, "e1", b"1")
    await feed.message("t:1", 1, "e1", b"1")  # the pattern's copy, say
    await feed.message("t:1", 4, "e1", b"4")  # 2 and 3 were missed live
    assert received.seqs("t:1") == [1, 2, 3, 4]
    assert (feed.recovered, feed.missed) == (2, 0)


async def test_feed_counts_what_history_no_longer_holds() -> None:
    history = FakeHistory()
    feed, received, _ = feed_of(history)
    feed.track("t:1", Position(0, "e1"))
    history.publish(6)
    history.trim(first=4)
    await feed.message("t:1", 6, "e1", b"6")
    assert received.seqs("t:1") == [4, 5, 6]
    assert feed.missed == 3


async def test_feed_catches_up_after_a_resubscription() -> None:
    history = FakeHistory()
    feed, received, _ = feed_of(history)
    history.publish(2)
    feed.track("t:1", Position(2, "e1"))
    history.publish(1200)  # more than one page
    await feed.catch_up("t:1")
    assert received.seqs("t:1") == list(range(3, 1203))
    await feed.catch_up("t:1")  # nothing new: nothing handed on twice
    assert len(received.events) == 1200
    await feed.message("t:1", 1202, "e1", b"1202")
    assert len(received.events) == 1200


async def test_feed_starts_again_on_a_new_epoch_and_says_so() -> None:
    history = FakeHistory()
    feed, received, resets = feed_of(history)
    feed.track("t:1", Position(0, "e1"))
    history.publish(3)
    for seq in (1, 2, 3):
        await feed.message("t:1", seq, "e1", b"%d" % seq)
    history.epoch, history.seq, history.kept = "e2", 0, []  # flushed
    history.publish(2)
    await feed.message("t:1", 2, "e2", b"2")
    assert received.seqs("t:1") == [1, 2, 3, 1, 2]
    assert resets == [("t:1", Position(0, "e2"))]
    assert feed.epoch_changes == 1


async def test_feed_without_a_start_follows_from_the_first_event() -> None:
    history = FakeHistory()
    feed, received, _ = feed_of(history)
    feed.track("t:1", None)  # the broker could not be asked where the topic stood
    await feed.catch_up("t:1")
    history.publish(7)
    await feed.message("t:1", 7, "e1", b"7")
    await feed.message("t:1", 7, "e1", b"7")
    assert received.seqs("t:1") == [7]
    assert history.reads == 0


async def test_feed_hands_on_untracked_topics_as_they_come() -> None:
    feed, received, _ = feed_of(FakeHistory())
    await feed.message("t:9", 5, "e1", b"5")
    await feed.message("t:9", 5, "e1", b"5")
    assert received.seqs("t:9") == [5, 5]  # patterns only: nothing to judge them by
    feed.track("t:9", Position(5, "e1"))
    feed.forget("t:9")
    assert not feed.tracks("t:9")


# -- MemoryBus -----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_memory_history_ages_out_and_idle_topics_are_dropped() -> None:
    clock = Clock()
    bus = MemoryBus(history_size=10, history_age=60, clock=clock)
    bus.append("idle:1", b"{}")
    bus.append("busy:1", b"{}")
    clock.now += 61
    bus.append("busy:1", b"{}")
    assert "idle:1" not in bus._history  # swept without being read
    page = bus.history("busy:1", 0, 10)
    assert ([seq for seq, _ in page.events], page.truncated) == ([2], True)
    assert bus.history("idle:1", 0, 10).position.seq == 1  # the counter stays: same epoch


def test_memory_bus_refuses_bad_bounds() -> None:
    with pytest.raises(ValueError, match="history_size"):
        MemoryBus(history_size=-1)
    with pytest.raises(ValueError, match="history_age"):
        MemoryBus(history_age=0)
    with pytest.raises(ValueError, match="MemoryBus"):
        MemoryBroker(MemoryBus(), history_size=5)


# -- URLs and capabilities -----------------------------------------------------------


def test_create_broker_by_url() -> None:
    memory = create_broker("memory://", history_size=7, history_age=None)
    assert isinstance(memory, MemoryBroker)
    assert (memory.bus.history_size, memory.bus.history_age) == (7, None)
    with pytest.raises(ValueError, match="unsupported broker URL"):
        create_broker("kafka://localhost")


def test_redis_url_options_are_ours_or_redis_pys() -> None:
    pytest.importorskip("redis")
    from eventwire.brokers.redis import RedisBroker

    broker = create_broker("redis://:s3cret@127.0.0.1:6390/2?prefix=shop&socket_keepalive=1")
    assert isinstance(broker, RedisBroker)
    assert broker.keys.prefix == "shop"
    assert broker.url == "redis://:s3cret@127.0.0.1:6390/2?socket_keepalive=1"
    assert "s3cret" not in broker.shown_url


def test_a_missing_redis_py_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in sys.modules if n == "redis" or n.startswith("redis.")] or ["redis"]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "eventwire.brokers.redis", raising=False)
    with pytest.raises(ModuleNotFoundError, match=r"eventwire\[redis\]"):
        create_broker("redis://127.0.0.1:6379/0")


def test_a_missing_capability_fails_loudly() -> None:
    assert history_of(MemoryBroker()) is not None
    with pytest.raises(NotAvailable, match="keeps no history"):
        history_of(object())
