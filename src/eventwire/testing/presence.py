"""The presence contract: what every broker with ``Presence`` guarantees, shipped for yours.

Mix it into a contract test class beside ``BrokerContract``::

    class TestMyBroker(BrokerContract, HistoryContract, PresenceContract): ...

Nodes are named ``node-a``, ``node-b``…; each node of a test is a broker
of the same backend, so the suite checks what one node's writes do to what
another reads: counts summed over nodes, joins and leaves cluster-wide,
leases that pass, and the one node that reports a dead node's members.
Leases in these tests are fractions of a second, so a few sleep: time
passing is the condition under test.
"""

from __future__ import annotations

import asyncio

import pytest

from eventwire.brokers.base import BrokerUnavailable, Presence, presence_of
from eventwire.testing.brokers import Cluster, _Contract

__all__ = ["PresenceContract"]

LONG = 30.0
"""A lease that does not pass during a test."""
SHORT = 0.3
"""A lease a test waits out."""


async def _two(cluster: Cluster) -> tuple[Presence, Presence]:
    return presence_of((await cluster.node()).broker), presence_of((await cluster.node()).broker)


class PresenceContract(_Contract):
    """Presence: per-node counts under leases, joins and leaves across nodes, expiry."""

    async def test_a_member_counts_once_per_connection_across_nodes(self, cluster: Cluster) -> None:
        a, b = await _two(cluster)
        first = await a.presence_update("node-a", "room:1", {"u1": 1}, LONG)
        assert (dict(first.counts), list(first.expired), first.known) == ({"u1": (0, 1)}, [], False)
        second = await b.presence_update("node-b", "room:1", {"u1": 2, "u2": 1}, LONG)
        assert dict(second.counts) == {"u1": (1, 3), "u2": (0, 1)}
        assert (await a.presence_update("node-a", "room:1", {"u1": 1}, LONG)).known
        assert dict((await a.presence_read("node-a", "room:1")).counts) == {"u1": 3, "u2": 1}
        assert dict((await b.presence_read("node-b", "room:1", ["u2", "u9"])).counts) == {"u2": 1}
        assert dict((await b.presence_read("node-b", "room:2")).counts) == {}

    async def test_a_member_leaves_when_its_last_connection_anywhere_goes(
        self, cluster: Cluster
    ) -> None:
        a, b = await _two(cluster)
        await a.presence_update("node-a", "room:1", {"u1": 1}, LONG)
        await b.presence_update("node-b", "room:1", {"u1": 1}, LONG)
        gone_here = await a.presence_update("node-a", "room:1", {"u1": 0}, 0)
        assert dict(gone_here.counts) == {"u1": (2, 1)}
        gone = await b.presence_update("node-b", "room:1", {"u1": 0}, 0)
        assert dict(gone.counts) == {"u1": (1, 0)}
        assert dict((await a.presence_read("node-a", "room:1")).counts) == {}
        again = await a.presence_update("node-a", "room:1", {"u1": 1}, LONG)
        assert (dict(again.counts), again.known) == ({"u1": (0, 1)}, False)

    async def test_a_dead_nodes_members_go_and_one_reader_is_told(self, cluster: Cluster) -> None:
        dead, a = await cluster.node(), await cluster.node()
        gone, live = presence_of(dead.broker), presence_of(a.broker)
        await gone.presence_update("node-dead", "room:1", {"u1": 1, "u2": 1}, SHORT)
        await live.presence_update("node-a", "room:1", {"u2": 1}, LONG)
        assert dict((await live.presence_read("node-a", "room:1")).counts) == {"u1": 1, "u2": 2}
        await asyncio.sleep(SHORT + 0.2)
        read = await live.presence_read("node-a", "room:1")
        assert (dict(read.counts), sorted(read.expired)) == ({"u2": 1}, ["u1"])
        again = await live.presence_read("node-a", "room:1")
        assert (dict(again.counts), list(again.expired)) == ({"u2": 1}, [])
        back = await gone.presence_update("node-dead", "room:1", {}, LONG)
        assert not back.known  # it was dropped: it must write its members again

    async def test_a_write_also_reports_a_dead_nodes_members(self, cluster: Cluster) -> None:
        dead, a = await cluster.node(), await cluster.node()
        await presence_of(dead.broker).presence_update("node-dead", "room:1", {"u1": 1}, SHORT)
        await asyncio.sleep(SHORT + 0.2)
        update = await presence_of(a.broker).presence_update("node-a", "room:1", {"u1": 1}, LONG)
        assert (dict(update.counts), list(update.expired)) == ({"u1": (0, 1)}, ["u1"])

    async def test_renewing_a_lease_keeps_a_node(self, cluster: Cluster) -> None:
        a, b = await _two(cluster)
        await a.presence_update("node-a", "room:1", {"u1": 1}, SHORT)
        for _ in range(4):
            await asyncio.sleep(SHORT / 3)
            assert (await a.presence_update("node-a", "room:1", {}, SHORT)).known
        read = await b.presence_read("node-b", "room:1")
        assert (dict(read.counts), list(read.expired)) == ({"u1": 1}, [])

    async def test_a_node_is_never_expired_by_itself(self, cluster: Cluster) -> None:
        a = presence_of((await cluster.node()).broker)
        await a.presence_update("node-a", "room:1", {"u1": 1}, SHORT)
        await asyncio.sleep(SHORT + 0.2)  # late, but no one else noticed
        read = await a.presence_read("node-a", "room:1")
        assert (dict(read.counts), list(read.expired)) == ({"u1": 1}, [])
        assert (await a.presence_update("node-a", "room:1", {}, LONG)).known

    async def test_topics_are_apart(self, cluster: Cluster) -> None:
        a = presence_of((await cluster.node()).broker)
        await a.presence_update("node-a", "room:1", {"u1": 1}, LONG)
        update = await a.presence_update("node-a", "room:2", {"u1": 1}, LONG)
        assert dict(update.counts) == {"u1": (0, 1)}
        await a.presence_update("node-a", "room:1", {"u1": 0}, 0)
        assert dict((await a.presence_read("node-a", "room:2")).counts) == {"u1": 1}

    async def test_members_are_opaque_strings(self, cluster: Cluster) -> None:
        a = presence_of((await cluster.node()).broker)
        members = {'["acme","Zoë 🎁"]': 1, "[null,null]": 3, "a\nb": 1}
        await a.presence_update("node-a", "room:1", members, LONG)
        assert dict((await a.presence_read("node-a", "room:1")).counts) == members

    async def test_presence_after_close_raises_broker_unavailable(self, cluster: Cluster) -> None:
        node = await cluster.node()
        await node.broker.close()
        with pytest.raises(BrokerUnavailable):
            await presence_of(node.broker).presence_update("node-a", "room:1", {"u1": 1}, LONG)
