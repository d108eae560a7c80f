"""Gateways on a real NATS: events cross nodes, and the link survives what NATS does to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from eventwire.codes import CloseCode
from eventwire.server import Gateway
from eventwire.testing import TestClient
from tests.integration.conftest import (
    TIMEOUT,
    StartGateway,
    assert_back_and_delivering,
    assert_gateway_does_not_start,
    assert_new_topic_starts_at_1,
    assert_publish_refused,
    counters,
    event,
    eventually,
    expect_seqs,
    gateways_on,
)
from tests.integration.natsproc import (  # noqa: F401 (fixtures)
    NatsProcess,
    TcpProxy,
    nats_proxy,
    nats_server,
)
from tests.integration.serverproc import free_port

pytest.importorskip("nats", reason="the NATS broker needs nats-py (eventwire[nats])")


@pytest.fixture
async def start_gateway(nats_server: NatsProcess) -> AsyncIterator[StartGateway]:  # noqa: F811
    """Start gateways on ``nats_server`` (settings may be given); stop them after the test."""
    async with gateways_on(nats_server.url) as start:
        yield start


async def publish_http(http: httpx.AsyncClient, gateway: Gateway, topic: str, n: int) -> int:
    response = await http.post(gateway.url + "/v1/publish", json=event(topic, n))
    assert response.status_code == 200, response.text
    seq: int = response.json()["seq"]
    return seq


async def test_an_event_published_on_one_node_reaches_subscribers_of_another(
    start_gateway: StartGateway,
) -> None:
    a, b = await start_gateway(), await start_gateway()
    async with (
        TestClient(b.ws_url) as on_b,
        TestClient(a.ws_url) as on_a,
        httpx.AsyncClient(timeout=TIMEOUT) as http,
    ):
        await on_b.subscribe("gift-list:1")
        await on_a.subscribe("gift-list:1")
        for n in range(1, 6):
            assert await publish_http(http, a, "gift-list:1", n) == n
        await expect_seqs(on_b, "gift-list:1", [1, 2, 3, 4, 5])
        await expect_seqs(on_a, "gift-list:1", [1, 2, 3, 4, 5])
        await on_b.expect_nothing("gift-list:1")


async def test_concurrent_publishers_on_two_nodes_get_one_contiguous_sequence(
    start_gateway: StartGateway,
) -> None:
    a, b = await start_gateway(), await start_gateway()
    async with TestClient(b.ws_url) as client, httpx.AsyncClient(timeout=TIMEOUT) as http:
        await client.subscribe("room:busy")
        seqs = await asyncio.gather(
            *(publish_http(http, node, "room:busy", 0) for _ in range(25) for node in (a, b))
        )
        assert sorted(seqs) == list(range(1, 51))
        received = [(await client.expect("room:busy", timeout=TIMEOUT)).seq for _ in range(50)]
        assert received == list(range(1, 51))
        await client.expect_nothing("room:busy")


async def test_a_dropped_link_is_noticed_resubscribed_and_caught_up(
    nats_proxy: TcpProxy,  # noqa: F811
    start_gateway: StartGateway,
) -> None:
    a, b = await start_gateway(), await start_gateway(broker=nats_proxy.url)
    async with TestClient(b.ws_url) as client:
        await client.subscribe("room:lobby")
        await a.publish(event("room:lobby", 1))
        await expect_seqs(client, "room:lobby", [1])
        nats_proxy.refusing = True
        nats_proxy.cut()
        await eventually(lambda: not b.ready, "node B notices")
        await a.publish(event("room:lobby", 2))  # node B cannot hear this one live
        nats_proxy.refusing = False
        await eventually(lambda: b.ready, "node B is subscribed and caught up again")
        await a.publish(event("room:lobby", 3))
        await expect_seqs(client, "room:lobby", [2, 3])
    assert counters(b)["link_losses"] == 1
    assert counters(b)["events_recovered"] == 1


async def test_a_frozen_link_is_detected_by_its_pings(
    nats_proxy: TcpProxy,  # noqa: F811
    start_gateway: StartGateway,
) -> None:
    b = await start_gateway(broker=nats_proxy.url)
    async with TestClient(b.ws_url) as client:
        await client.subscribe("room:lobby")
        nats_proxy.freeze()  # connections stay open, nothing answers
        try:
            took = await eventually(lambda: not b.ready, "node B notices", timeout=6.0)
            assert took < 4.5  # a ping a second, two may go unanswered
        finally:
            nats_proxy.thaw()
        await assert_back_and_delivering(b, client)


async def test_a_nats_restart_fails_publishes_fast_and_nodes_resume(
    nats_server: NatsProcess,  # noqa: F811
    start_gateway: StartGateway,
) -> None:
    a, b = await start_gateway(), await start_gateway()
    async with TestClient(b.ws_url) as client:
        await client.subscribe("gift-list:1")
        await a.publish(event("gift-list:1", 1))
        await expect_seqs(client, "gift-list:1", [1])
        nats_server.kill()
        await eventually(lambda: not a.ready and not b.ready, "both nodes report not ready")
        await assert_publish_refused(a, within=0.1)
        nats_server.start()  # same port, same storage: the history is still there
        await eventually(lambda: a.ready and b.ready, "both nodes are subscribed again")
        assert (await a.publish(event("gift-list:1", 2))).seq == 2
        await expect_seqs(client, "gift-list:1", [2])
    assert counters(b)["epoch_changes"] == 0


async def test_a_restart_without_storage_gives_topics_a_new_epoch(
    nats_server: NatsProcess,  # noqa: F811
    start_gateway: StartGateway,
) -> None:
    a, b = await start_gateway(), await start_gateway()
    async with TestClient(b.ws_url) as client:
        await client.subscribe("gift-list:1", "gift-list:2")
        await a.publish(event("gift-list:1", 1))
        await expect_seqs(client, "gift-list:1", [1])
        since = client.reconnects
        nats_server.kill()
        await eventually(lambda: not a.ready and not b.ready, "both nodes report not ready")
        nats_server.wipe()
        nats_server.start()  # empty: the stream and every topic's history are gone
        await eventually(lambda: a.ready and b.ready, "both nodes are back, stream made again")
        assert counters(b)["epoch_changes"] >= 1  # seen while catching gift-list:1 up
        # The reset closed the client (4010); it is back, and told the history was lost.
        reconnected = await client.reconnected(since, timeout=10)
        assert reconnected.close_code == CloseCode.HISTORY_RESET
        assert any(gap.history_lost for gap in reconnected.gaps)
        await assert_new_topic_starts_at_1(a, client)


async def test_a_gateway_does_not_start_without_its_nats() -> None:
    await assert_gateway_does_not_start(f"nats://127.0.0.1:{free_port()}")
