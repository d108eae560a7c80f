"""The broker contract: one suite every broker runs, shipped so that yours can too.

Subclass the contract in a test module and say how to make a broker::

    from eventwire.brokers import MemoryBroker, MemoryBus
    from eventwire.testing.brokers import BrokerContract, BrokerFactory, HistoryContract

    class TestMyBroker(BrokerContract, HistoryContract):
        @pytest.fixture
        def broker_factory(self) -> BrokerFactory:
            def make(*, history_size: int, history_age: float | None) -> Broker:
                return MyBroker(...)  # a new node on this test's own backend
            return make

Within one test, every broker the factory makes is a node of the same
backend (one ``MemoryBus``, one Redis key prefix), so the suite checks what
crosses between nodes; a new test gets a fresh backend. The checks that
nothing arrives publish a marker to a topic the node wants and wait for it:
they assume a node receives one publisher's events in publish order.

``BrokerContract`` covers ``Broker`` (and ``Health`` where implemented);
``HistoryContract`` covers ``History``. Needs pytest and pytest-asyncio.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import pytest
import pytest_asyncio

from eventwire.brokers.base import BatchPublish, Broker, BrokerUnavailable, Health, history_of

__all__ = [
    "BrokerContract",
    "BrokerFactory",
    "Cluster",
    "HistoryContract",
    "Node",
    "Received",
]

_markers = itertools.count(1)


class BrokerFactory(Protocol):
    """Makes a new, unstarted node on the current test's backend."""

    def __call__(self, *, history_size: int, history_age: float | None) -> Broker: ...


class Received:
    """What one node's ``on_event`` was handed, and a way to wait for more."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, bytes]] = []
        self._arrived = asyncio.Event()

    def __call__(self, topic: str, seq: int, body: bytes) -> None:
        self.events.append((topic, seq, body))
        self._arrived.set()

    def seqs(self, topic: str) -> list[int]:
        return [seq for t, seq, _ in self.events if t == topic]

    def topics(self) -> list[str]:
        return [topic for topic, _, _ in self.events]

    async def wait(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        """Return once ``condition()`` holds; fail the test after ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                while not condition():
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            pytest.fail(f"{what} within {timeout}s; received {self.events[-20:]!r}")


@dataclass
class Node:
    """A started broker and what it received."""

    broker: Broker
    received: Received
    timeout: float

    async def expect(self, topic: str, seqs: list[int]) -> None:
        """Wait until ``topic``'s events with exactly ``seqs`` (in order) arrived, no more."""
        await self.received.wait(
            lambda: len(self.received.seqs(topic)) >= len(seqs),
            self.timeout,
            f"expected {topic} seqs {seqs}",
        )
        await self.settle()
        assert self.received.seqs(topic) == seqs

    async def settle(self) -> None:
        """Publish a marker this node wants and wait for it: what was sent before is in."""
        marker = f"contract-marker:m{next(_markers)}"
        await self.broker.add_interest(marker)
        await self.broker.publish(marker, b'{"marker":true}')
        await self.received.wait(
            lambda: marker in self.received.topics(), self.timeout, f"expected marker {marker}"
        )
        await self.broker.remove_interest(marker)
        self.received.events = [e for e in self.received.events if e[0] != marker]


@dataclass
class Cluster:
    """The nodes of one test, all on one backend; closed after the test."""

    factory: BrokerFactory
    timeout: float
    nodes: list[Node] = field(default_factory=list)

    async def node(self, *, history_size: int = 100, history_age: float | None = 60.0) -> Node:
        broker = self.factory(history_size=history_size, history_age=history_age)
        received = Received()
        await broker.start(received)
        node = Node(broker, received, self.timeout)
        self.nodes.append(node)
        return node

    async def close(self) -> None:
        for node in self.nodes:
            await node.broker.close()


class _Contract:
    timeout: ClassVar[float] = 5.0
    """Seconds any one expectation may take."""

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio]

    @pytest.fixture
    def broker_factory(self) -> BrokerFactory:
        """Override: return a factory of nodes on a backend of this test's own."""
        pytest.fail("override the broker_factory fixture in your contract test class")

    @pytest_asyncio.fixture
    async def cluster(self, broker_factory: BrokerFactory) -> AsyncIterator[Cluster]:
        cluster = Cluster(broker_factory, self.timeout)
        try:
            yield cluster
        finally:
            await cluster.close()


class BrokerContract(_Contract):
    """What every broker guarantees: seq, positions, interest, once-per-node delivery."""

    async def test_seq_is_contiguous_per_topic_from_one(self, cluster: Cluster) -> None:
        node = await cluster.node()
        topics = ["gift-list:1", "gift-list:1", "room:a", "gift-list:1", "room:a"]
        assert [await node.broker.publish(t, b"{}") for t in topics] == [1, 2, 1, 3, 2]

    async def test_position_follows_publishes_under_one_stable_epoch(
        self, cluster: Cluster
    ) -> None:
        a, b = await cluster.node(), await cluster.node()
        before = await a.broker.position("gift-list:1")
        assert before.seq == 0
        for _ in range(3):
            await b.broker.publish("gift-list:1", b"{}")
        after = await a.broker.position("gift-list:1")
        assert after == (3, before.epoch)
        assert await b.broker.position("gift-list:1") == after
        assert after.to_wire() == {"seq": 3, "epoch": before.epoch}

    async def test_events_reach_each_interested_node_once(self, cluster: Cluster) -> None:
        publisher, b, c = await cluster.node(), await cluster.node(), await cluster.node()
        await b.broker.add_interest("gift-list:1")
        await c.broker.add_interest("gift-list:1")
        await publisher.broker.publish("gift-list:1", b'{"n":1}')
        await publisher.broker.publish("gift-list:2", b'{"n":2}')
        await b.expect("gift-list:1", [1])
        await c.expect("gift-list:1", [1])
        await publisher.settle()
        assert publisher.received.events == []
        assert b.received.topics() == c.received.topics() == ["gift-list:1"]

    async def test_the_publishing_node_hears_its_own_interests(self, cluster: Cluster) -> None:
        node = await cluster.node()
        await node.broker.add_interest("room:lobby")
        await node.broker.publish("room:lobby", b'{"n":1}')
        await node.expect("room:lobby", [1])
        assert node.received.events == [("room:lobby", 1, b'{"n":1}')]

    async def test_overlapping_interests_deliver_an_event_once(self, cluster: Cluster) -> None:
        publisher, node = await cluster.node(), await cluster.node()
        for interest in ("room:lobby:messages", "room:*", "*:messages"):
            await node.broker.add_interest(interest)
        for _ in range(3):
            await publisher.broker.publish("room:lobby:messages", b"{}")
            await publisher.broker.publish("room:hall:messages", b"{}")  # two patterns only
        await node.expect("room:lobby:messages", [1, 2, 3])
        assert node.received.seqs("room:hall:messages") == [1, 2, 3]

    async def test_patterns_match_whole_segments(self, cluster: Cluster) -> None:
        publisher, node = await cluster.node(), await cluster.node()
        await node.broker.add_interest("gift-list:*")
        await node.broker.add_interest("*:messages")
        topics = [
            "gift-list:1",
            "gift-list:1:items",
            "gift-lists:1",
            "user:gift-list",
            "room:lobby:messages",
            "room:messages-archive",
            "room:messages:old",
        ]
        for topic in topics:
            await publisher.broker.publish(topic, b"{}")
        await node.settle()
        assert node.received.topics() == ["gift-list:1", "gift-list:1:items", "room:lobby:messages"]

    async def test_removed_interest_stops_delivery(self, cluster: Cluster) -> None:
        publisher, node = await cluster.node(), await cluster.node()
        await node.broker.add_interest("gift-list:1")
        await node.broker.add_interest("room:*")
        await publisher.broker.publish("gift-list:1", b"{}")
        await publisher.broker.publish("room:a", b"{}")
        await node.expect("room:a", [1])
        await node.broker.remove_interest("gift-list:1")
        await node.broker.remove_interest("room:*")
        await publisher.broker.publish("gift-list:1", b"{}")
        await publisher.broker.publish("room:a", b"{}")
        await node.settle()
        assert node.received.events == [("gift-list:1", 1, b"{}"), ("room:a", 1, b"{}")]

    async def test_interest_is_a_set(self, cluster: Cluster) -> None:
        publisher, node = await cluster.node(), await cluster.node()
        await node.broker.add_interest("gift-list:1")
        await node.broker.add_interest("gift-list:1")
        await publisher.broker.publish("gift-list:1", b"{}")
        await node.expect("gift-list:1", [1])
        await node.broker.remove_interest("gift-list:1")
        await node.broker.remove_interest("gift-list:1")  # removing what is gone is harmless
        await publisher.broker.publish("gift-list:1", b"{}")
        await node.settle()
        assert node.received.seqs("gift-list:1") == [1]

    async def test_concurrent_publishes_get_unique_contiguous_seqs_in_order(
        self, cluster: Cluster
    ) -> None:
        a, b, listener = await cluster.node(), await cluster.node(), await cluster.node()
        await listener.broker.add_interest("room:busy")
        publishes = [
            n.broker.publish("room:busy", b'{"n":%d}' % i) for i in range(50) for n in (a, b)
        ]
        seqs = await asyncio.gather(*publishes)
        assert sorted(seqs) == list(range(1, 101))
        await listener.expect("room:busy", list(range(1, 101)))

    async def test_bodies_cross_byte_for_byte(self, cluster: Cluster) -> None:
        publisher, node = await cluster.node(), await cluster.node()
        await node.broker.add_interest("room:a")
        bodies = [b"{}", '{"name":"Zoë 🎁","path":"a:b:c"}'.encode(), b'{"x":"}\\n\\u0000"}']
        for body in bodies:
            await publisher.broker.publish("room:a", body)
        await node.expect("room:a", [1, 2, 3])
        assert [body for _, _, body in node.received.events] == bodies

    async def test_publish_after_close_raises_broker_unavailable(self, cluster: Cluster) -> None:
        node = await cluster.node()
        await node.broker.close()
        with pytest.raises(BrokerUnavailable):
            await node.broker.publish("gift-list:1", b"{}")

    async def test_a_closed_node_can_start_again(self, cluster: Cluster) -> None:
        node, publisher = await cluster.node(), await cluster.node()
        await publisher.broker.publish("gift-list:1", b"{}")
        epoch = (await node.broker.position("gift-list:1")).epoch
        await node.broker.close()
        await node.broker.start(node.received)
        await node.broker.add_interest("gift-list:1")
        assert await publisher.broker.publish("gift-list:1", b"{}") == 2
        await node.expect("gift-list:1", [2])
        assert await node.broker.position("gift-list:1") == (2, epoch)

    async def test_a_batch_keeps_order_and_seqs_where_offered(self, cluster: Cluster) -> None:
        publisher, node = await cluster.node(), await cluster.node()
        if not isinstance(publisher.broker, BatchPublish):
            pytest.skip("this broker publishes a batch one event at a time")
        await node.broker.add_interest("room:a")
        await node.broker.add_interest("room:b")
        await publisher.broker.publish("room:a", b"{}")
        batch = [("room:a" if n % 3 else "room:b", b'{"n":%d}' % n) for n in range(30)]
        seqs = await publisher.broker.publish_batch(batch)
        expected: dict[str, int] = {"room:a": 1, "room:b": 0}
        for (topic, _), seq in zip(batch, seqs, strict=True):
            expected[topic] += 1
            assert seq == expected[topic]
        await node.expect("room:a", list(range(1, expected["room:a"] + 1)))
        await node.expect("room:b", list(range(1, expected["room:b"] + 1)))
        bodies = [body for topic, _, body in node.received.events if topic == "room:b"]
        assert bodies == [body for topic, body in batch if topic == "room:b"]
        await publisher.broker.close()
        with pytest.raises(BrokerUnavailable) as refused:
            await publisher.broker.publish_batch(batch)
        assert refused.value.published == 0

    async def test_health_where_offered(self, cluster: Cluster) -> None:
        node = await cluster.node()
        if not isinstance(node.broker, Health):
            pytest.skip("this broker does not report its health")
        assert node.broker.ready
        assert await node.broker.ping() >= 0
        assert all(value >= 0 for value in node.broker.counters().values())
        await node.broker.close()
        assert not node.broker.ready


class HistoryContract(_Contract):
    """What a broker with history guarantees: pages, bounds by count and age."""

    async def test_history_pages_forward(self, cluster: Cluster) -> None:
        node = await cluster.node()
        for i in range(10):
            await node.broker.publish("gift-list:1", b'{"n":%d}' % i)
        history = history_of(node.broker)
        first = await history.history("gift-list:1", 0, 4)
        assert [seq for seq, _ in first.events] == [1, 2, 3, 4]
        assert first.events[0][1] == b'{"n":0}'
        assert first.has_more
        assert not first.truncated
        second = await history.history("gift-list:1", first.next_since, 4)
        assert [seq for seq, _ in second.events] == [5, 6, 7, 8]
        last = await history.history("gift-list:1", second.next_since, 4)
        assert [seq for seq, _ in last.events] == [9, 10]
        assert not last.has_more
        assert last.position == await node.broker.position("gift-list:1")

    async def test_history_of_an_unknown_topic_is_empty(self, cluster: Cluster) -> None:
        node = await cluster.node()
        page = await history_of(node.broker).history("gift-list:404", 0, 10)
        assert (list(page.events), page.position.seq, page.truncated) == ([], 0, False)
        assert page.position == await node.broker.position("gift-list:404")

    async def test_history_is_bounded_by_count(self, cluster: Cluster) -> None:
        node = await cluster.node(history_size=5)
        for _ in range(8):
            await node.broker.publish("gift-list:1", b"{}")
        history = history_of(node.broker)
        lost = await history.history("gift-list:1", 0, 100)
        assert ([seq for seq, _ in lost.events], lost.truncated) == ([4, 5, 6, 7, 8], True)
        kept = await history.history("gift-list:1", 3, 100)
        assert ([seq for seq, _ in kept.events], kept.truncated) == ([4, 5, 6, 7, 8], False)
        ahead = await history.history("gift-list:1", 8, 100)
        assert (list(ahead.events), ahead.truncated) == ([], False)

    async def test_history_is_bounded_by_age(self, cluster: Cluster) -> None:
        node = await cluster.node(history_age=0.3)
        await node.broker.publish("gift-list:1", b"{}")
        await node.broker.publish("gift-list:1", b"{}")
        await asyncio.sleep(0.5)  # the condition under test is time passing
        await node.broker.publish("gift-list:1", b"{}")
        page = await history_of(node.broker).history("gift-list:1", 0, 100)
        assert ([seq for seq, _ in page.events], page.truncated) == ([3], True)

    async def test_no_history_kept_when_its_size_is_zero(self, cluster: Cluster) -> None:
        node = await cluster.node(history_size=0)
        assert await node.broker.publish("gift-list:1", b"{}") == 1
        page = await history_of(node.broker).history("gift-list:1", 0, 10)
        assert (list(page.events), page.position.seq, page.truncated) == ([], 1, True)

    async def test_history_refuses_a_bad_page(self, cluster: Cluster) -> None:
        history = history_of((await cluster.node()).broker)
        with pytest.raises(ValueError, match="since"):
            await history.history("gift-list:1", -1, 10)
        with pytest.raises(ValueError, match="limit"):
            await history.history("gift-list:1", 0, 0)
