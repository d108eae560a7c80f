"""Three gateway processes on one broker: every event reaches every node's clients, counted.

The nodes are real ``eventwire serve`` processes, the broker a real
redis-server or nats-server; clients and publishers are in the test. Every
event is numbered, and ``check_delivery`` counts what each client got
against what the publishers were told.
"""

from __future__ import annotations

import asyncio
import contextlib

import httpx

from tests.integration.brokerprocs import BrokerServer, broker_server  # noqa: F401 (fixture)
from tests.integration.gatewayproc import GatewayProcess, StartNode, start_node  # noqa: F401
from tests.integration.traffic import Ledger, Recorder, SteadyPublisher, check_delivery

TOPICS = ["room:one", "room:two"]
CLIENTS_PER_NODE = 2


async def three_nodes(start: StartNode, server: BrokerServer) -> list[GatewayProcess]:
    return list(await asyncio.gather(*(start(server.url) for _ in range(3))))


async def test_clients_on_every_node_get_every_event_published_through_any_node(
    broker_server: BrokerServer,  # noqa: F811
    start_node: StartNode,  # noqa: F811
) -> None:
    cluster = await three_nodes(start_node, broker_server)
    ledger = Ledger()
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
        clients = [
            await stack.enter_async_context(Recorder(node.ws_url))
            for node in cluster
            for _ in range(CLIENTS_PER_NODE)
        ]
        for client in clients:
            await client.subscribe(*TOPICS)
        # One publisher per node, all at once: the nodes race for each topic's seq.
        publishers = [SteadyPublisher(http, [node.url], TOPICS, ledger) for node in cluster]
        await asyncio.gather(*(publisher.run(100, interval=0.004) for publisher in publishers))

        assert not ledger.refused
        assert ledger.count_accepted() == 300
        for client in clients:
            for topic in TOPICS:
                await client.has(topic, ledger.accepted[topic])
        delivered = sum(check_delivery(c, ledger, topic) for c in clients for topic in TOPICS)
        assert delivered == 300 * len(clients)  # each event once to each client: 1,800


async def test_a_killed_node_loses_its_clients_to_the_others_and_they_miss_nothing(
    broker_server: BrokerServer,  # noqa: F811
    start_node: StartNode,  # noqa: F811
) -> None:
    cluster = await three_nodes(start_node, broker_server)
    doomed = cluster[2]
    ledger = Ledger()
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
        # Each client knows every node, starting with its own; the doomed node's
        # clients go on to the next one in their list when it dies.
        clients: dict[Recorder, GatewayProcess] = {}
        for i, node in enumerate(cluster):
            urls = [n.ws_url for n in cluster[i:] + cluster[:i]]
            for _ in range(CLIENTS_PER_NODE):
                clients[await stack.enter_async_context(Recorder(urls))] = node
        for client in clients:
            await client.subscribe(*TOPICS)
        # The publisher rotates over every node too: publishes to the dead one are refused.
        publisher = SteadyPublisher(http, [n.url for n in cluster], TOPICS, ledger)
        load = asyncio.create_task(publisher.run(600, interval=0.005))  # 200/s for 3 s
        await ledger.accepted_at_least(150)
        await doomed.kill()
        await load
        markers = {topic: await publisher.until_accepted(topic) for topic in TOPICS}

        for client in clients:
            for topic in TOPICS:
                await client.has(topic, [markers[topic]])
        delivered = sum(check_delivery(c, ledger, topic) for c in clients for topic in TOPICS)
        accepted = ledger.count_accepted()
        assert accepted >= 400  # about two thirds of 600, and the markers
        assert delivered >= accepted * len(clients)  # plus any whose answer died with the node
        assert ledger.refused["ConnectError"] > 0  # the dead node refused, nobody lost them
        for client, node in clients.items():
            if node is doomed:
                assert client.reconnects == 1
                assert client.url != doomed.ws_url
                assert client.last_reconnect is not None
                assert client.last_reconnect.gaps == ()  # recovered from the broker's history
            else:
                assert client.reconnects == 0
