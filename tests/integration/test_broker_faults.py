"""The broker restarted, frozen, or its links killed while events flow: nothing lost in silence.

Two gateway processes share one broker; clients on both count every event
(``check_delivery``). Publishes the gateway refuses while the broker is away
(503 BROKER_UNAVAILABLE, or 504 PUBLISH_OUTCOME_UNKNOWN for one sent and not
answered) are fine; what a publisher was told was accepted must reach every
client, or the client must have been told that the topic's history was lost
(``recovered: false``), so that it refetches. And no publish outlasts the
broker's command timeout, nor is slow once the broker answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from tests.integration.brokerprocs import (  # noqa: F401 (fixture)
    BrokerServer,
    broker_server,
)
from tests.integration.gatewayproc import GatewayProcess, StartNode, start_node  # noqa: F401
from tests.integration.redisproc import RedisProcess
from tests.integration.traffic import Ledger, Recorder, SteadyPublisher, check_delivery

TOPICS = ["gift-list:1", "gift-list:2"]
CLIENTS_PER_NODE = 2
NOTICED = 10.0
"""Seconds a node may take to report its link down, or up again."""
COMMAND_TIMEOUT = 2.0
"""The brokers' default ``command_timeout``: no publish may take (much) longer."""
REFUSED = ("503 BROKER_UNAVAILABLE", "504 PUBLISH_OUTCOME_UNKNOWN")
FROZEN = COMMAND_TIMEOUT + 1.0
"""Seconds a broker stays frozen: longer than a command may wait for it."""


@dataclass
class Cluster:
    nodes: list[GatewayProcess]
    clients: list[Recorder]
    http: httpx.AsyncClient
    ledger: Ledger
    publisher: SteadyPublisher

    async def ready(self, node: GatewayProcess) -> bool:
        return (await self.http.get(node.url + "/readyz")).status_code == 200

    async def until(self, ready: bool) -> None:
        """Poll every node's ``/readyz`` until it says ``ready`` (another process: no event)."""
        async with asyncio.timeout(NOTICED):
            for node in self.nodes:
                while await self.ready(node) is not ready:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)

    async def everything_delivered(self) -> int:
        """After the faults: a last event per topic reaches every client; then count them all."""
        markers = {topic: await self.publisher.until_accepted(topic) for topic in TOPICS}
        for client in self.clients:
            for topic in TOPICS:
                await client.has(topic, [markers[topic]])
        return sum(check_delivery(c, self.ledger, t) for c in self.clients for t in TOPICS)


@contextlib.asynccontextmanager
async def two_nodes(start: StartNode, server: BrokerServer) -> AsyncIterator[Cluster]:
    """Two nodes on ``server``, clients subscribed on both, a publisher rotating over both."""
    pair = list(await asyncio.gather(start(server.url), start(server.url)))
    ledger = Ledger()
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
        clients = [
            await stack.enter_async_context(Recorder(node.ws_url))
            for node in pair
            for _ in range(CLIENTS_PER_NODE)
        ]
        for client in clients:
            await client.subscribe(*TOPICS)
        publisher = SteadyPublisher(http, [node.url for node in pair], TOPICS, ledger)
        yield Cluster(pair, clients, http, ledger, publisher)


@pytest.mark.parametrize("broker_server", ["redis-aof", "redis", "nats"], indirect=True)
async def test_a_broker_restart_under_load_loses_nothing_in_silence(
    broker_server: BrokerServer,  # noqa: F811
    start_node: StartNode,  # noqa: F811
) -> None:
    async with two_nodes(start_node, broker_server) as cluster:
        ledger = cluster.ledger
        load = asyncio.create_task(cluster.publisher.run(500, interval=0.005))
        await ledger.accepted_at_least(100)
        broker_server.kill()
        await ledger.refused_at_least(10)  # refused at once while it is down, not accepted
        await asyncio.to_thread(broker_server.start)
        await load
        delivered = await cluster.everything_delivered()

    told = [client for client in cluster.clients if any(g.history_lost for g in client.gaps)]
    if type(broker_server) is RedisProcess:
        # Restarted empty: every topic's history is gone, and every client was told so
        # (4010, then recovered: false) rather than left with a silent hole.
        assert told == cluster.clients
    else:
        # Restarted with its data (append-only file, JetStream's store): nothing is lost,
        # and what the nodes missed live they caught up from history.
        assert told == []
        assert delivered >= ledger.count_accepted() * len(cluster.clients)
    assert ledger.refused["503 BROKER_UNAVAILABLE"] >= 10


@pytest.mark.parametrize("broker_server", ["redis", "nats"], indirect=True)
async def test_a_frozen_broker_under_load_loses_nothing(
    broker_server: BrokerServer,  # noqa: F811
    start_node: StartNode,  # noqa: F811
) -> None:
    async with two_nodes(start_node, broker_server) as cluster:
        ledger = cluster.ledger
        load = asyncio.create_task(cluster.publisher.run(600, interval=0.005))
        await ledger.accepted_at_least(100)
        assert broker_server.pid is not None
        os.kill(broker_server.pid, signal.SIGSTOP)  # connections stay open, nothing answers
        try:
            # Frozen until both nodes' health checks noticed (2 to 3 s) and publishes timed out.
            await cluster.until(False)
            await ledger.refused_at_least(1)
        finally:
            os.kill(broker_server.pid, signal.SIGCONT)
        await cluster.until(True)
        await load
        delivered = await cluster.everything_delivered()

    assert delivered >= ledger.count_accepted() * len(cluster.clients)
    assert sum(ledger.refused[why] for why in REFUSED) >= 1


@pytest.mark.parametrize("broker_server", ["redis", "nats"], indirect=True)
async def test_publishes_are_quick_again_a_second_after_a_frozen_broker_resumes(
    broker_server: BrokerServer,  # noqa: F811
    start_node: StartNode,  # noqa: F811
) -> None:
    loop = asyncio.get_running_loop()
    pair = await asyncio.gather(start_node(broker_server.url), start_node(broker_server.url))
    ledger = Ledger()
    # Open loop, no cap: a frozen broker meets every publish sent meanwhile.
    publisher = SteadyPublisher(None, [node.url for node in pair], TOPICS, ledger)
    load = asyncio.create_task(publisher.run(1050, interval=1 / 150, in_flight=1050))
    await ledger.accepted_at_least(150)
    frozen = loop.time()
    broker_server.freeze()
    try:
        await asyncio.sleep(FROZEN)  # the fault itself, under load
    finally:
        broker_server.thaw()
    resumed = loop.time()
    await load

    timings = publisher.timings
    before = [took for started, took in timings if started < frozen]
    late = [took for started, took in timings if started >= resumed + 1.0]
    assert len(before) >= 100, ledger
    assert len(late) >= 200, ledger
    usual = max(0.2, 3 * _p90(before))  # the machine may be busy: as slow as before, no slower
    assert _p90(late) < usual, sorted(late)[-20:]  # nothing left queued from the freeze
    longest = max(took for _, took in timings)
    assert longest < COMMAND_TIMEOUT + 0.5  # waits (a lock, a pool) are inside the timeout


def _p90(seconds: list[float]) -> float:
    return statistics.quantiles(seconds, n=10)[-1]


async def test_killed_pubsub_links_under_load_are_noticed_and_caught_up(
    redis_server: RedisProcess,
    start_node: StartNode,  # noqa: F811
) -> None:
    async with two_nodes(start_node, redis_server) as cluster:
        ledger = cluster.ledger
        load = asyncio.create_task(cluster.publisher.run(600, interval=0.004))
        await ledger.accepted_at_least(100)
        # Refuse SUBSCRIBE for a while, so that the window in which the nodes are
        # deaf stays open while events keep being published (and accepted).
        redis_server.command("ACL", "SETUSER", "default", "-subscribe", "-psubscribe")
        redis_server.command("CLIENT", "KILL", "TYPE", "pubsub")
        await cluster.until(False)  # not ready: out of a load balancer's rotation
        deaf_from = ledger.count_accepted()
        await ledger.accepted_at_least(deaf_from + 100)  # a hundred events nobody hears live
        redis_server.command("ACL", "SETUSER", "default", "+subscribe", "+psubscribe")
        await cluster.until(True)
        await load
        delivered = await cluster.everything_delivered()

    assert delivered >= ledger.count_accepted() * len(cluster.clients)
    for node in cluster.nodes:
        assert "link lost" in node.log_path.read_text(), node.log_tail()
