"""A Redis that goes back under the same epoch: a node reports a reset, never drops in silence.

With asynchronous replication a promoted replica may lack the last few
writes of its master, and keeps its epoch; an older snapshot restored does
the same. New publishes then reuse seqs a node already handed on. The
tests roll a topic's meta and history back, as such a failover leaves
them, on one Redis and on a Redis Cluster.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable

import pytest

from eventwire.brokers import Position
from eventwire.testing.brokers import Received
from tests.integration.redisclusterproc import RedisClusterProcess
from tests.integration.redisproc import RedisProcess

pytest.importorskip("redis", reason="the Redis broker needs redis-py (eventwire[redis])")

from redis.asyncio import Redis, RedisCluster
from redis.typing import EncodableT

from eventwire.brokers.redis import RedisBroker

TIMEOUT = 5.0
TOPIC = "gift-list:1"
_prefixes = itertools.count(1)


class Resets:
    def __init__(self) -> None:
        self.seen: list[tuple[str, Position]] = []
        self._told = asyncio.Event()

    def __call__(self, topic: str, position: Position) -> None:
        self.seen.append((topic, position))
        self._told.set()

    async def wait(self) -> None:
        async with asyncio.timeout(TIMEOUT):
            await self._told.wait()


class Deployment:
    """A publisher and a follower on one Redis (or cluster), and a raw client to roll back."""

    def __init__(self, url: str, raw: Redis | RedisCluster, kill_links: Callable[[], None]) -> None:
        prefix = f"lost{next(_prefixes)}"
        self.publisher = RedisBroker(url, prefix=prefix)
        self.follower = RedisBroker(url, prefix=prefix)
        self.received, self.resets = Received(), Resets()
        self.raw = raw
        self.kill_links = kill_links
        keys = self.publisher.keys
        self.meta, self.history = keys.meta(TOPIC), keys.history(TOPIC)

    async def roll_back(self, to: int) -> None:
        """What a failover to a lagging replica leaves: events after ``to`` gone, same epoch."""
        kept = await self.raw.xrange(self.history, max=str(to))
        await self.raw.delete(self.history)  # a stream remembers its last ID: make it anew
        for entry_id, fields in kept or []:
            assert entry_id is not None
            assert fields is not None
            copy: dict[EncodableT, EncodableT] = {k: v for k, v in fields.items()}
            await self.raw.xadd(self.history, copy, id=entry_id)
        await self.raw.hset(self.meta, "seq", to)


def _kill_pubsub(*servers: RedisProcess) -> Callable[[], None]:
    def kill() -> None:
        for server in servers:
            server.command("CLIENT", "KILL", "TYPE", "pubsub")

    return kill


@pytest.fixture(params=["redis", "cluster"])
async def deployment(
    request: pytest.FixtureRequest,
    redis_server: RedisProcess,
    redis_cluster: RedisClusterProcess,
) -> AsyncIterator[Deployment]:
    raw: Redis | RedisCluster
    if request.param == "redis":
        raw = Redis.from_url(redis_server.url)
        made = Deployment(redis_server.url, raw, _kill_pubsub(redis_server))
    else:
        first = redis_cluster.masters[0]
        raw = RedisCluster(host="127.0.0.1", port=first.port)
        made = Deployment(redis_cluster.url, raw, _kill_pubsub(*redis_cluster.masters))
    await made.publisher.start(Received())
    await made.follower.start(made.received, made.resets)
    await made.follower.add_interest(TOPIC)
    for n in range(1, 6):
        assert await made.publisher.publish(TOPIC, b'{"old":%d}' % n) == n
    await made.received.wait(lambda: len(made.received.events) == 5, TIMEOUT, "seqs 1..5")
    try:
        yield made
    finally:
        await made.follower.close()
        await made.publisher.close()
        await raw.aclose()


async def test_new_events_reaching_a_seq_already_seen_are_a_reset(deployment: Deployment) -> None:
    d = deployment
    before = await d.publisher.position(TOPIC)
    await d.roll_back(to=2)
    seqs = [await d.publisher.publish(TOPIC, b'{"new":%d}' % n) for n in range(3)]
    assert seqs == [3, 4, 5]  # the seqs of events the follower already handed on
    await d.resets.wait()
    assert d.resets.seen == [(TOPIC, Position(4, before.epoch))]
    await d.received.wait(
        lambda: (TOPIC, 5, b'{"new":2}') in d.received.events, TIMEOUT, "the new seq 5"
    )
    assert d.follower.counters()["history_regressions"] == 1
    assert d.follower.counters()["epoch_changes"] == 0
    assert await d.publisher.publish(TOPIC, b"{}") == 6
    await d.received.wait(lambda: d.received.seqs(TOPIC)[-1] == 6, TIMEOUT, "seq 6")


async def test_a_link_back_on_a_position_below_its_cursor_is_a_reset(
    deployment: Deployment,
) -> None:
    d = deployment
    before = await d.publisher.position(TOPIC)
    await d.roll_back(to=2)
    assert await d.publisher.publish(TOPIC, b'{"new":3}') == 3
    d.kill_links()  # a failover ends the follower's link; it comes back to where it lost seqs
    await d.resets.wait()
    assert d.resets.seen == [(TOPIC, Position(3, before.epoch))]
    assert d.follower.counters()["history_regressions"] == 1
    assert d.received.seqs(TOPIC) == [1, 2, 3, 4, 5]  # nothing replayed: the subscribers refetch
    assert await d.publisher.publish(TOPIC, b"{}") == 4
    await d.received.wait(lambda: d.received.seqs(TOPIC)[-1] == 4, TIMEOUT, "the next seq 4")
