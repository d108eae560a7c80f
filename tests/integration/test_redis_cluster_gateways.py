"""Gateways on a 3-master Redis Cluster: sharded fan-out, a shard lost or restarted, a slot moved.

The cluster starts once for the module; each test keeps its keys and
channels under a prefix of its own. Topics are picked so that each master
serves some of them, and the shards' own counts show where subscriptions
and messages went.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from eventwire.testing import TestClient
from tests.integration.conftest import (
    TIMEOUT,
    StartGateway,
    counters,
    event,
    eventually,
    expect_seqs,
    gateways_on,
)
from tests.integration.redisclusterproc import ClusterMaster, RedisClusterProcess, running_cluster

_prefixes = itertools.count(1)


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterProcess]:
    with running_cluster(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster


@pytest.fixture
def prefix() -> str:
    return f"gw{next(_prefixes)}"


@pytest.fixture
async def start_gateway(
    redis_cluster: RedisClusterProcess, prefix: str
) -> AsyncIterator[StartGateway]:
    async with gateways_on(f"{redis_cluster.url}?prefix={prefix}") as start:
        yield start


def spread(cluster: RedisClusterProcess, prefix: str, per_master: int) -> dict[str, ClusterMaster]:
    """``per_master`` topics served by each master, and the master of each."""
    candidates = [f"gift-list:{n}" for n in range(64)]
    owners = cluster.masters_of(f"{prefix}:{{{topic}}}" for topic in candidates)
    picked: dict[str, ClusterMaster] = {}
    for master in cluster.masters:
        mine = [t for t in candidates if owners[f"{prefix}:{{{t}}}"] is master]
        picked.update((topic, master) for topic in mine[:per_master])
    assert len(picked) == per_master * len(cluster.masters)
    return picked


def shard_subscribers(master: ClusterMaster, channel: str) -> int:
    """``PUBSUB SHARDNUMSUB`` of ``channel`` on ``master``."""
    reply = master.command("PUBSUB", "SHARDNUMSUB", channel)
    return int(reply.rsplit(b":", 1)[1].strip())


async def test_events_on_every_shard_cross_nodes_in_order(
    redis_cluster: RedisClusterProcess, prefix: str, start_gateway: StartGateway
) -> None:
    topics = spread(redis_cluster, prefix, per_master=2)
    a, b = await start_gateway(), await start_gateway()
    async with TestClient(b.ws_url) as client:
        await client.subscribe(*topics)
        for topic, master in topics.items():
            # Node B's link to the topic's own shard holds the topic's one subscription.
            assert shard_subscribers(master, f"{prefix}:{{{topic}}}") == 1
        for n in range(1, 21):
            for topic in topics:
                assert (await a.publish(event(topic, n))).seq == n
        for topic in topics:
            await expect_seqs(client, topic, list(range(1, 21)))
        for topic in topics:
            await client.expect_nothing(topic)
    assert counters(b)["link_losses"] == 0
    assert counters(b)["events_recovered"] == 0


async def test_a_shard_whose_pubsub_connections_are_killed_is_caught_up(
    redis_cluster: RedisClusterProcess, prefix: str, start_gateway: StartGateway
) -> None:
    topics = spread(redis_cluster, prefix, per_master=1)
    (hit, shard), (spared, _) = list(topics.items())[:2]
    a, b = await start_gateway(), await start_gateway()
    async with TestClient(b.ws_url) as client, httpx.AsyncClient(timeout=TIMEOUT) as http:
        await client.subscribe(hit, spared)
        await a.publish(event(hit, 1))
        await expect_seqs(client, hit, [1])
        shard.command("CLIENT", "KILL", "TYPE", "pubsub")
        # Node B's link to this shard is gone; it cannot be back within its
        # first backoff, so this event misses its live channel.
        await a.publish(event(hit, 2))
        shard.command("CLIENT", "PAUSE", "500", "ALL")  # so the window can be seen
        await eventually(lambda: not b.ready, "node B notices the lost shard")
        assert (await http.get(b.url + "/readyz")).status_code == 503
        await a.publish(event(spared, 1))  # another shard's link is untouched meanwhile
        await expect_seqs(client, spared, [1])
        await eventually(lambda: b.ready, "node B is subscribed to the shard again")
        assert (await http.get(b.url + "/readyz")).status_code == 200
        await a.publish(event(hit, 3))
        await expect_seqs(client, hit, [2, 3])
    assert counters(b)["link_losses"] == 1  # the one shard's link, not the others
    assert counters(b)["events_recovered"] == 1


async def test_a_node_follows_a_topic_whose_slot_moves_to_another_master(
    redis_cluster: RedisClusterProcess, prefix: str, start_gateway: StartGateway
) -> None:
    topics = spread(redis_cluster, prefix, per_master=1)
    (topic, source), (_, target) = list(topics.items())[:2]
    channel = f"{prefix}:{{{topic}}}"
    a, b = await start_gateway(), await start_gateway()
    async with TestClient(b.ws_url) as client:
        await client.subscribe(topic)
        await a.publish(event(topic, 1))
        await expect_seqs(client, topic, [1])
        redis_cluster.move_slot(channel, target)  # the topic's seq and history go along
        assert (await a.publish(event(topic, 2))).seq == 2
        await expect_seqs(client, topic, [2])
        await eventually(lambda: b.ready, "node B is subscribed on the new master")
        assert shard_subscribers(target, channel) == 1
        assert shard_subscribers(source, channel) == 0
        assert (await a.publish(event(topic, 3))).seq == 3
        await expect_seqs(client, topic, [3])
        assert counters(b)["link_losses"] == 1  # one rebuild of every shard's link
        redis_cluster.move_slot(channel, source)  # and back: a second move, a second rebuild
        assert (await a.publish(event(topic, 4))).seq == 4
        await expect_seqs(client, topic, [4])
        await eventually(lambda: b.ready, "node B is subscribed on the first master again")
        await client.expect_nothing(topic)
    assert counters(b)["link_losses"] == 2
    assert counters(b)["epoch_changes"] == 0


async def test_a_restarted_shard_is_noticed_and_its_topics_start_a_new_epoch(
    redis_cluster: RedisClusterProcess, prefix: str, start_gateway: StartGateway
) -> None:
    topics = spread(redis_cluster, prefix, per_master=1)
    (hit, shard), (spared, _) = list(topics.items())[:2]
    a, b = await start_gateway(), await start_gateway()
    async with TestClient(b.ws_url) as client:
        await client.subscribe(hit, spared)
        await a.publish(event(hit, 1))
        await a.publish(event(spared, 1))
        await expect_seqs(client, hit, [1])
        await expect_seqs(client, spared, [1])
        kept = await a.broker.position(spared)
        shard.kill()
        try:
            await eventually(lambda: not b.ready, "node B notices the shard is gone")
        finally:
            shard.start()  # same port and slots (nodes.conf), no data: a new epoch
            redis_cluster.wait_ok()
        await eventually(lambda: b.ready, "node B is subscribed to the shard again")
        assert await a.broker.position(spared) == kept  # the other shards kept their epoch
        assert (await a.publish(event(spared, 2))).seq == 2
        await expect_seqs(client, spared, [2])
    assert counters(b)["link_losses"] >= 1
    assert counters(b)["epoch_changes"] == 1  # the restarted shard's topic, not the other
    assert (await a.broker.position(hit)).seq == 0


async def test_the_first_commands_after_a_shard_restart_do_not_fail_on_closed_connections(
    redis_cluster: RedisClusterProcess, prefix: str, start_gateway: StartGateway
) -> None:
    # redis-py's cluster client hands out a pooled connection without looking at it: one
    # the restart closed would fail the first command on it, a publish included.
    topics = spread(redis_cluster, prefix, per_master=1)
    hit, shard = next(iter(topics.items()))
    a = await start_gateway()
    await a.publish(event(hit, 1))  # node A holds a connection to the shard
    shard.kill()
    shard.start()  # blocking: the loop has not read the close of that connection
    redis_cluster.wait_ok()
    assert (await a.publish(event(hit, 1))).seq == 1  # a new epoch: the shard restarted empty
    shard.kill()
    shard.start()
    redis_cluster.wait_ok()
    assert (await a.broker.position(hit)).seq == 0
    await eventually(lambda: a.ready, "node A is subscribed to the shard again")
