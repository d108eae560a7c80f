"""The broker and presence contracts, run against a Redis Cluster of three masters.

The contract's topics land on whichever shards their slots hash to (a
test's few topics may share one): what this checks is seq, history and
presence on the topic's slot, live events over sharded Pub/Sub and patterns
over the classic copy. Topics picked to cover every shard, and a shard's
faults, are in tests/integration/test_redis_cluster_gateways.py.
"""

from __future__ import annotations

import itertools

import pytest

from eventwire.brokers import Broker, NotAvailable
from eventwire.testing.brokers import BrokerContract, BrokerFactory, HistoryContract, Received
from eventwire.testing.presence import PresenceContract
from tests.integration.redisclusterproc import RedisClusterProcess

pytest.importorskip("redis", reason="the Redis broker needs redis-py (eventwire[redis])")

_prefixes = itertools.count(1)


def _factory(cluster: RedisClusterProcess, query: str = "") -> BrokerFactory:
    from eventwire.brokers.redis import RedisBroker

    prefix = f"cluster{next(_prefixes)}"

    def make(*, history_size: int, history_age: float | None) -> Broker:
        return RedisBroker(
            cluster.url + query, prefix=prefix, history_size=history_size, history_age=history_age
        )

    return make


class TestRedisClusterBroker(BrokerContract, HistoryContract):
    @pytest.fixture
    def broker_factory(self, redis_cluster: RedisClusterProcess) -> BrokerFactory:
        return _factory(redis_cluster)


class TestRedisClusterPresence(PresenceContract):
    @pytest.fixture
    def broker_factory(self, redis_cluster: RedisClusterProcess) -> BrokerFactory:
        return _factory(redis_cluster)


async def test_patterns_off_refuses_pattern_interest_and_keeps_topics(
    redis_cluster: RedisClusterProcess,
) -> None:
    make = _factory(redis_cluster, "?patterns=off")
    publisher = make(history_size=10, history_age=None)
    node = make(history_size=10, history_age=None)
    received = Received()
    await publisher.start(Received())
    await node.start(received)
    try:
        with pytest.raises(NotAvailable, match="patterns=off"):
            await node.add_interest("gift-list:*")
        await node.add_interest("gift-list:1")
        assert await publisher.publish("gift-list:1", b"{}") == 1
        await received.wait(lambda: received.seqs("gift-list:1") == [1], 5.0, "gift-list:1 seq 1")
    finally:
        await node.close()
        await publisher.close()
