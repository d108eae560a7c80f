"""Gateways on a real Redis: events cross nodes, and the link survives what Redis does to it."""

from __future__ import annotations

import os
import signal

import httpx

from eventwire.brokers.redis import RedisBroker
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
)
from tests.integration.redisproc import RedisProcess
from tests.integration.serverproc import free_port


async def publish_http(gateway: Gateway, topic: str, n: int) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=TIMEOUT) as http:
        return await http.post("/v1/publish", json=event(topic, n))


async def test_an_event_published_on_one_node_reaches_subscribers_of_another(
    start_gateway: StartGateway,
) -> None:
    a, b = await start_gateway(), await start_gateway()
    async with TestClient(b.ws_url) as on_b, TestClient(a.ws_url) as on_a:
        await on_b.subscribe("gift-list:1")
        await on_a.subscribe("gift-list:1")
        for n in range(1, 6):
            response = await publish_http(a, "gift-list:1", n)
            assert response.json()["seq"] == n
        await expect_seqs(on_b, "gift-list:1", [1, 2, 3, 4, 5])
        await expect_seqs(on_a, "gift-list:1", [1, 2, 3, 4, 5])
        await on_b.expect_nothing("gift-list:1")


async def test_a_killed_pubsub_connection_is_noticed_resubscribed_and_caught_up(
    redis_server: RedisProcess, start_gateway: StartGateway
) -> None:
    a, b = await start_gateway(), await start_gateway()
    async with TestClient(b.ws_url) as client:
        await client.subscribe("room:lobby")
        await a.publish(event("room:lobby", 1))
        await expect_seqs(client, "room:lobby", [1])
        redis_server.command("CLIENT", "KILL", "TYPE", "pubsub")
        # Node B's subscription is gone; it cannot be back within its first
        # backoff (50 ms at least), so this event misses its live channel.
        await a.publish(event("room:lobby", 2))
        await eventually(lambda: counters(b)["link_losses"] == 1, "node B notices")
        await eventually(lambda: b.ready, "node B is subscribed again")
        await a.publish(event("room:lobby", 3))
        await expect_seqs(client, "room:lobby", [2, 3])
    assert counters(b)["events_recovered"] == 1


async def test_a_node_is_not_ready_while_its_link_is_down(
    redis_server: RedisProcess, start_gateway: StartGateway
) -> None:
    b = await start_gateway()
    async with TestClient(b.ws_url) as client, httpx.AsyncClient(timeout=TIMEOUT) as http:
        await client.subscribe("room:lobby")
        assert (await http.get(b.url + "/readyz")).status_code == 200
        # Kill the Pub/Sub connection, then hold Redis for half a second so
        # that the window in which node B is not subscribed can be seen.
        redis_server.command("CLIENT", "KILL", "TYPE", "pubsub")
        redis_server.command("CLIENT", "PAUSE", "500", "ALL")
        took = await eventually(lambda: not b.ready, "node B reports not ready")
        assert took < 1.0
        assert (await http.get(b.url + "/readyz")).status_code == 503
        await eventually(lambda: b.ready, "node B is subscribed again")
        assert (await http.get(b.url + "/readyz")).status_code == 200
        await b.publish(event("room:lobby", 1))
        await expect_seqs(client, "room:lobby", [1])


async def test_a_redis_restart_fails_publishes_fast_and_nodes_resume(
    redis_server: RedisProcess, start_gateway: StartGateway
) -> None:
    a, b = await start_gateway(), await start_gateway()
    async with TestClient(b.ws_url) as client:
        await client.subscribe("gift-list:1", "gift-list:2")
        await a.publish(event("gift-list:1", 1))
        await expect_seqs(client, "gift-list:1", [1])
        since = client.reconnects
        redis_server.kill()
        await assert_publish_refused(a, within=1.0)
        await eventually(lambda: not a.ready and not b.ready, "both nodes report not ready")
        redis_server.start()  # same port, empty: every topic's history is gone
        await eventually(lambda: a.ready and b.ready, "both nodes are subscribed again")
        # The reset closed the client (4010); it is back, and told the history was lost.
        reconnected = await client.reconnected(since, timeout=10)
        assert reconnected.close_code == CloseCode.HISTORY_RESET
        await assert_new_topic_starts_at_1(a, client)
    assert counters(b)["epoch_changes"] >= 1  # gift-list:1 now lives in a new epoch


async def test_the_first_commands_after_a_redis_restart_do_not_fail_on_closed_connections(
    redis_server: RedisProcess, start_gateway: StartGateway
) -> None:
    a = await start_gateway()
    await a.publish(event("gift-list:1", 1))  # a pooled connection is open
    redis_server.kill()
    redis_server.start()  # blocking: the loop has not read the close of that connection
    # Found closed before the publish is written: it goes on a new connection, once.
    assert (await a.publish(event("gift-list:1", 1))).seq == 1  # a new epoch: Redis restarted
    redis_server.kill()
    redis_server.start()
    assert (await a.broker.position("gift-list:1")).seq == 0


async def test_an_unresponsive_redis_is_detected_by_the_health_check(
    redis_server: RedisProcess, start_gateway: StartGateway
) -> None:
    b = await start_gateway()
    async with TestClient(b.ws_url) as client:
        await client.subscribe("room:lobby")
        assert redis_server.pid is not None
        os.kill(redis_server.pid, signal.SIGSTOP)  # connections stay open, nothing answers
        try:
            took = await eventually(lambda: not b.ready, "node B notices", timeout=5.0)
            assert took < 3.0  # health_interval + health_timeout, with some slack
        finally:
            os.kill(redis_server.pid, signal.SIGCONT)
        await assert_back_and_delivering(b, client)


async def test_a_gateway_does_not_start_without_its_redis() -> None:
    await assert_gateway_does_not_start(f"redis://127.0.0.1:{free_port()}/0")


async def test_an_http_batch_through_redis_keeps_seqs_and_order_across_nodes(
    redis_server: RedisProcess, start_gateway: StartGateway
) -> None:
    """A batch is one pipeline, and still goes through after Redis forgot its script."""
    a, b = await start_gateway(), await start_gateway()
    batch = [event("room:a" if n % 2 else "room:b", n) for n in range(1, 21)]
    async with TestClient(b.ws_url) as client:
        await client.subscribe("room:a", "room:b")
        async with httpx.AsyncClient(base_url=a.url, timeout=TIMEOUT) as http:
            for rounds, flush in enumerate([False, True]):
                if flush:
                    redis_server.command("SCRIPT", "FLUSH")
                response = await http.post("/v1/publish", json={"events": batch})
                assert response.status_code == 200, response.text
                seqs = [p["seq"] for p in response.json()["results"]]
                assert seqs == [10 * rounds + (n + 1) // 2 for n in range(1, 21)]
                for n in range(1, 21):
                    received = await client.expect("room:a" if n % 2 else "room:b")
                    assert received.payload == {"n": n}
        await client.expect_nothing("room:a")


async def test_a_batch_refused_midway_stores_exactly_the_events_before_it(
    redis_server: RedisProcess, start_gateway: StartGateway
) -> None:
    gateway = await start_gateway()
    assert isinstance(gateway.broker, RedisBroker)
    redis_server.command("SET", gateway.broker.keys.meta("room:b"), "not a hash")
    batch = [event("room:a", 1), event("room:b", 2), event("room:c", 3)]
    async with httpx.AsyncClient(base_url=gateway.url, timeout=TIMEOUT) as http:
        response = await http.post("/v1/publish", json={"events": batch})
    assert response.status_code == 500
    assert response.json()["code"] == "INTERNAL_ERROR"
    assert response.json()["details"] == {"published": 1}
    assert (await gateway.broker.position("room:a")).seq == 1
    assert (await gateway.broker.position("room:c")).seq == 0  # after the refusal: not stored
