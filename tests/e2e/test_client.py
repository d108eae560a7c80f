"""The Python client against real gateways: subscriptions, handlers, refusals, reconnection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.server import ServerConnection, serve

from eventwire.client import (
    Client,
    Gap,
    GatewayUnreachable,
    InProcessPublisher,
    Reconnected,
    RequestTimeout,
    ServerError,
    SubscribeRefused,
    Subscription,
    TopicPosition,
    TopicStream,
    backoff_delay,
)
from eventwire.codes import CloseCode
from eventwire.envelope import Event, utc_now
from eventwire.errors import ClientError, ConnectionLost
from eventwire.protocol.frames import system_frame
from eventwire.server import Gateway
from eventwire.testing import TestClient, running_gateway
from eventwire.testing.client import ClientFactory

TIMEOUT = 5.0


async def take(sub: Subscription, count: int) -> list[Event]:
    """The next ``count`` events of ``sub``, each within the timeout."""
    return [await asyncio.wait_for(anext(sub), TIMEOUT) for _ in range(count)]


async def subscribers(gateway: Gateway, topic: str) -> int:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=TIMEOUT) as http:
        count: int = (await http.get(f"/v1/topics/{topic}")).json()["subscribers"]
        return count


# -- subscriptions -------------------------------------------------------------


async def test_subscription_yields_typed_events_of_its_topics_in_order(
    eventwire_gateway: Gateway, eventwire_client: ClientFactory
) -> None:
    client = await eventwire_client()
    sub = await client.subscribe("gift-list:123", "room:lobby")
    publisher = InProcessPublisher(eventwire_gateway)
    for n in range(3):
        await publisher.added("gift-list:123", entity_id=f"gift-{n}", payload={"n": n})
    await publisher.emit("room:lobby", "USER_JOINED", entity_id="user-1", payload={"name": "Al"})
    await publisher.added("user:456", entity_id="elsewhere", payload={})

    events = await take(sub, 4)

    assert all(isinstance(e, Event) for e in events)
    assert [(e.topic, e.event, e.seq) for e in events] == [
        ("gift-list:123", "ADDED", 1),
        ("gift-list:123", "ADDED", 2),
        ("gift-list:123", "ADDED", 3),
        ("room:lobby", "USER_JOINED", 1),
    ]
    assert [e.payload for e in events[:3]] == [{"n": 0}, {"n": 1}, {"n": 2}]
    await client.expect_nothing("user:456")
    assert client.positions["gift-list:123"].seq == 3
    assert sub.gaps == []


async def test_handlers_sync_async_and_catch_all(
    eventwire_gateway: Gateway, eventwire_client: ClientFactory
) -> None:
    client = await eventwire_client()
    sub = await client.subscribe("gift-list:123")
    added: asyncio.Queue[Event] = asyncio.Queue()
    everything: list[str] = []
    all_seen = asyncio.Event()

    async def on_added(event: Event) -> None:
        await added.put(event)

    sub.on("ADDED", on_added)

    @sub.on()
    def catch_all(event: Event) -> None:
        everything.append(event.event)
        if len(everything) == 3:
            all_seen.set()

    publisher = InProcessPublisher(eventwire_gateway)
    await publisher.added("gift-list:123", entity_id="gift-1", payload={})
    await publisher.deleted("gift-list:123", entity_id="gift-1")
    await publisher.added("gift-list:123", entity_id="gift-2", payload={})

    first = await asyncio.wait_for(added.get(), TIMEOUT)
    second = await asyncio.wait_for(added.get(), TIMEOUT)
    await asyncio.wait_for(all_seen.wait(), TIMEOUT)
    assert (first.entity_id, second.entity_id) == ("gift-1", "gift-2")
    assert everything == ["ADDED", "DELETED", "ADDED"]


async def test_handler_that_raises_does_not_stop_the_next_event(
    eventwire_gateway: Gateway, eventwire_client: ClientFactory
) -> None:
    client = await eventwire_client()
    sub = await client.subscribe("room:lobby")
    handled: asyncio.Queue[str] = asyncio.Queue()

    def flaky(event: Event) -> None:
        if event.entity_id == "bad":
            raise RuntimeError("handler bug")
        handled.put_nowait(event.entity_id)

    sub.on("USER_JOINED", flaky)
    publisher = InProcessPublisher(eventwire_gateway)
    await publisher.emit("room:lobby", "USER_JOINED", entity_id="bad")
    await publisher.emit("room:lobby", "USER_JOINED", entity_id="good")
    assert await asyncio.wait_for(handled.get(), TIMEOUT) == "good"


async def test_client_on_subscribes_its_topics_on_connect(eventwire_gateway: Gateway) -> None:
    client = Client(eventwire_gateway.ws_url)
    joined: asyncio.Queue[Event] = asyncio.Queue()

    @client.on("room:lobby", "USER_JOINED")
    async def on_joined(event: Event) -> None:
        await joined.put(event)

    async with client:
        assert await subscribers(eventwire_gateway, "room:lobby") == 1
        publisher = InProcessPublisher(eventwire_gateway)
        await publisher.emit("room:lobby", "USER_LEFT", entity_id="user-0")
        await publisher.emit("room:lobby", "USER_JOINED", entity_id="user-1")
        event = await asyncio.wait_for(joined.get(), TIMEOUT)
    assert (event.event, event.entity_id) == ("USER_JOINED", "user-1")
    assert joined.empty()


async def test_client_on_while_connected_subscribes_in_the_background(
    eventwire_client: ClientFactory,
) -> None:
    reported: asyncio.Queue[ServerError] = asyncio.Queue()
    client = await eventwire_client(on_error=reported.put_nowait)

    @client.on("Not A Topic")
    def never(event: Event) -> None:
        raise AssertionError("no event can arrive on a refused topic")

    error = await asyncio.wait_for(reported.get(), TIMEOUT)
    assert (error.code, error.details["topic"]) == ("INVALID_TOPIC", "Not A Topic")
    assert client.errors == [error]
    assert "Not A Topic" not in client._router.topics


async def test_unsubscribe_stops_delivery_and_ends_iteration(
    eventwire_gateway: Gateway, eventwire_client: ClientFactory
) -> None:
    client = await eventwire_client()
    leaving = await client.subscribe("room:lobby")
    staying = await client.subscribe("room:lobby")
    publisher = InProcessPublisher(eventwire_gateway)
    await publisher.emit("room:lobby", "USER_JOINED", entity_id="user-1")
    await client.expect("room:lobby", "USER_JOINED")

    await leaving.unsubscribe()
    assert await subscribers(eventwire_gateway, "room:lobby") == 1  # `staying` keeps the topic
    await publisher.emit("room:lobby", "USER_LEFT", entity_id="user-1")

    rest = await asyncio.wait_for(_drain(leaving), TIMEOUT)
    assert [e.event for e in rest] == ["USER_JOINED"]  # queued before, then the end
    assert [e.event for e in await take(staying, 2)] == ["USER_JOINED", "USER_LEFT"]

    await staying.unsubscribe()
    assert await subscribers(eventwire_gateway, "room:lobby") == 0
    await publisher.emit("room:lobby", "USER_JOINED", entity_id="user-2")
    await client.expect_nothing("room:lobby", "USER_JOINED", where=lambda e: e.seq == 3)


async def _drain(sub: Subscription) -> list[Event]:
    return [event async for event in sub]


@pytest.mark.parametrize(
    ("topic", "code"),
    [("bad", "INVALID_TOPIC"), ("gift-list:*", "INVALID_TOPIC"), ("system:x", "RESERVED_TOPIC")],
)
async def test_refused_topic_raises_and_nothing_stays_subscribed(
    eventwire_gateway: Gateway, eventwire_client: ClientFactory, topic: str, code: str
) -> None:
    client = await eventwire_client()
    with pytest.raises(SubscribeRefused) as refused:
        await client.subscribe("room:lobby", topic)
    assert refused.value.code == code
    assert refused.value.details["topic"] == topic
    assert set(refused.value.refused) == {topic}
    assert isinstance(refused.value, ClientError)
    assert await subscribers(eventwire_gateway, "room:lobby") == 0
    sub = await client.subscribe("room:lobby")  # the client is still usable
    assert sub.active


async def test_every_topic_refused_raises_without_waiting_for_subscribed(
    eventwire_client: ClientFactory,
) -> None:
    client = await eventwire_client(request_timeout=TIMEOUT)
    with pytest.raises(SubscribeRefused) as refused:
        await asyncio.wait_for(client.subscribe("bad", "error:x"), 1.0)
    assert {t: e.code for t, e in refused.value.refused.items()} == {
        "bad": "INVALID_TOPIC",
        "error:x": "RESERVED_TOPIC",
    }


async def test_error_answering_no_command_is_recorded(eventwire_client: ClientFactory) -> None:
    reported: asyncio.Queue[ServerError] = asyncio.Queue()
    client = await eventwire_client(on_error=reported.put_nowait)
    assert client._ws is not None
    await client._ws.send("not json")
    error = await asyncio.wait_for(reported.get(), TIMEOUT)
    assert (error.code, error.request_id) == ("INVALID_JSON", "connection")
    assert client.errors == [error]


async def test_ping_measures_a_round_trip(eventwire_client: ClientFactory) -> None:
    client = await eventwire_client()
    assert 0 < await client.ping() < TIMEOUT


# -- reconnection --------------------------------------------------------------


async def test_reconnects_to_a_restarted_gateway_and_resubscribes(
    eventwire_gateway: Gateway, eventwire_client: ClientFactory
) -> None:
    notices: list[Reconnected] = []
    client = await eventwire_client(on_reconnect=notices.append)
    sub = await client.subscribe("room:lobby")
    await InProcessPublisher(eventwire_gateway).emit("room:lobby", "USER_JOINED", entity_id="u1")
    [before_restart] = await take(sub, 1)
    old_epoch = client.positions["room:lobby"].epoch
    port, count = eventwire_gateway.port, client.reconnects

    await eventwire_gateway.stop()  # closes every client with 1001
    async with running_gateway(port=port) as restarted:
        notice = await client.reconnected(since=count, timeout=TIMEOUT)
        assert notice.close_code == CloseCode.GOING_AWAY
        assert notices == [notice]
        assert client.reconnects == count + 1
        assert await subscribers(restarted, "room:lobby") == 1
        # A restarted in-memory broker has lost the topic's history: a new epoch.
        [gap] = notice.gaps
        assert (gap.topic, gap.history_lost, gap.count) == ("room:lobby", True, 0)
        assert sub.gaps == [gap]

        await InProcessPublisher(restarted).emit("room:lobby", "USER_JOINED", entity_id="u2")
        [after_restart] = await take(sub, 1)

    assert (before_restart.entity_id, before_restart.seq) == ("u1", 1)
    assert (after_restart.entity_id, after_restart.seq) == ("u2", 1)
    assert client.positions["room:lobby"].epoch != old_epoch


async def test_without_recovery_events_missed_while_disconnected_are_a_gap(
    eventwire_gateway: Gateway, eventwire_client: ClientFactory
) -> None:
    client = await eventwire_client(recover=False)  # with recovery: see test_recovery.py
    sub = await client.subscribe("order:789")
    publisher = InProcessPublisher(eventwire_gateway)
    await publisher.updated("order:789", entity_id="order-789", payload={"n": 1})
    await take(sub, 1)
    epoch, count = client.positions["order:789"].epoch, client.reconnects

    for connection in list(eventwire_gateway.connections):
        connection.close(CloseCode.SLOW_CONSUMER, "slow consumer")
    await publisher.updated("order:789", entity_id="order-789", payload={"n": 2})
    await publisher.updated("order:789", entity_id="order-789", payload={"n": 3})

    notice = await client.reconnected(since=count, timeout=TIMEOUT)
    assert notice.close_code == CloseCode.SLOW_CONSUMER
    assert notice.gaps == (Gap("order:789", 2, 3, epoch),)
    assert sub.gaps == list(notice.gaps)
    await publisher.updated("order:789", entity_id="order-789", payload={"n": 4})
    [after] = await take(sub, 1)
    assert (after.seq, after.payload) == (4, {"n": 4})
    assert client.positions["order:789"] == TopicPosition(4, epoch)


@dataclass
class FakeGateway:
    url: str
    connections: int = 0


@asynccontextmanager
async def fake_gateway(
    close_code: int | None, *, answer: bool = True
) -> AsyncIterator[FakeGateway]:
    """A WebSocket server that greets every connection and ends the first one with ``close_code``.

    Before closing it answers one SUBSCRIBE (unless ``answer`` is false); later
    connections, and all of them when ``close_code`` is None, are greeted and
    left open with their commands unanswered.
    """
    fake = FakeGateway("")

    async def handle(ws: ServerConnection) -> None:
        fake.connections += 1
        await ws.send(system_frame("CONNECTED", "s1", {"session_id": "s1"}, utc_now()), text=True)
        if close_code is not None and fake.connections == 1:
            if answer:
                request: dict[str, Any] = orjson.loads(await ws.recv())
                topics, rid = request["data"]["payload"]["topics"], request["data"]["entity_id"]
                reply = {"topics": topics, "positions": {}}
                await ws.send(system_frame("SUBSCRIBED", rid, reply, utc_now()), text=True)
            await ws.close(close_code, "test")
        await ws.wait_closed()

    async with serve(handle, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        fake.url = f"ws://127.0.0.1:{port}/ws"
        yield fake


async def test_close_code_in_the_4500_range_is_final() -> None:
    async with fake_gateway(4501) as fake, TestClient(fake.url) as client:
        sub = await client.subscribe("room:lobby")
        with pytest.raises(ConnectionLost) as lost:
            await asyncio.wait_for(anext(sub), TIMEOUT)
        assert lost.value.code == 4501
        with pytest.raises(ConnectionLost):
            await client.reconnected(timeout=TIMEOUT)
        with pytest.raises(ConnectionLost):
            await client.subscribe("room:lobby")
        assert fake.connections == 1
        assert not client.connected


async def test_close_code_in_the_4000_range_reconnects() -> None:
    async with fake_gateway(4000, answer=False) as fake, TestClient(fake.url) as client:
        notice = await client.reconnected(since=0, timeout=TIMEOUT)
        assert (notice.count, notice.close_code) == (1, 4000)
        assert fake.connections == 2


async def test_reconnect_disabled_means_the_first_close_is_final() -> None:
    async with fake_gateway(1001) as fake, TestClient(fake.url, reconnect=False) as client:
        sub = await client.subscribe("room:lobby")
        with pytest.raises(ConnectionLost) as lost:
            await asyncio.wait_for(anext(sub), TIMEOUT)
        assert lost.value.code == CloseCode.GOING_AWAY
        assert fake.connections == 1


async def test_gives_up_after_max_reconnect_attempts(
    eventwire_gateway: Gateway, eventwire_client: ClientFactory
) -> None:
    client = await eventwire_client(max_reconnect_attempts=2, backoff_initial=0.01)
    sub = await client.subscribe("room:lobby")
    await eventwire_gateway.stop()
    with pytest.raises(ConnectionLost, match="gave up after 2 reconnection attempts") as lost:
        await asyncio.wait_for(anext(sub), TIMEOUT)
    assert lost.value.code == CloseCode.GOING_AWAY
    with pytest.raises(ConnectionLost):
        await client.reconnected(timeout=TIMEOUT)


async def test_unanswered_command_times_out() -> None:
    async with fake_gateway(None) as fake, TestClient(fake.url, request_timeout=0.2) as client:
        with pytest.raises(RequestTimeout):
            await client.subscribe("room:lobby")
        assert client.connected


async def test_unreachable_gateway_raises_at_connect(eventwire_gateway: Gateway) -> None:
    port = eventwire_gateway.port
    await eventwire_gateway.stop()
    with pytest.raises(GatewayUnreachable):
        await Client(f"ws://127.0.0.1:{port}/ws", connect_timeout=TIMEOUT).connect()


def test_http_base_url_points_at_the_websocket_path() -> None:
    assert Client("http://127.0.0.1:8000").url == "ws://127.0.0.1:8000/ws"
    assert Client("https://example.test/").url == "wss://example.test/ws"
    with pytest.raises(ValueError, match="WebSocket URL"):
        Client("ftp://example.test")


# -- the rules of a topic's stream, without a network -------------------------


def event(seq: int, topic: str = "room:lobby") -> Event:
    data = {"entity_id": f"e{seq}", "payload": None, "timestamp": "2026-01-01T00:00:00Z"}
    return Event.model_validate({"topic": topic, "event": "ADDED", "data": data, "seq": seq})


def seqs(judged: tuple[list[Event], list[Gap]]) -> list[int | None]:
    return [e.seq for e in judged[0]]


def test_stream_never_delivers_a_seq_twice_and_notices_jumps() -> None:
    stream = TopicStream("room:lobby")
    stream.subscribing(resume=False)
    assert stream.subscribed(5, "e1") == ([], [])
    assert seqs(stream.receive(event(6))) == [6]
    assert stream.receive(event(6)) == ([], [])
    delivered, gaps = stream.receive(event(9))
    assert [e.seq for e in delivered] == [9]
    assert gaps == [Gap("room:lobby", 7, 8, "e1")]
    assert stream.position == TopicPosition(9, "e1")


def test_stream_holds_events_until_subscribed_reports_the_epoch() -> None:
    stream = TopicStream("room:lobby")
    stream.subscribing(resume=False)
    assert stream.receive(event(3)) == ([], [])  # published after the server joined us
    delivered, gaps = stream.subscribed(3, "e1")
    assert ([e.seq for e in delivered], gaps) == ([3], [])


def test_stream_resumed_in_the_same_epoch_reports_what_was_missed() -> None:
    stream = TopicStream("room:lobby")
    stream.subscribing(resume=False)
    stream.subscribed(0, "e1")
    stream.receive(event(1))
    stream.subscribing(resume=True)
    assert stream.subscribed(4, "e1") == ([], [Gap("room:lobby", 2, 4, "e1")])
    stream.subscribing(resume=True)
    assert stream.subscribed(4, "e2") == ([], [Gap("room:lobby", 1, 4, "e2", history_lost=True)])


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    assert [backoff_delay(n, 0.25, 1.0, rand=lambda: 1.0) for n in range(5)] == [
        0.25,
        0.5,
        1.0,
        1.0,
        1.0,
    ]
    assert backoff_delay(3, 0.25, 30.0, rand=lambda: 0.0) == 0.0
    assert backoff_delay(10_000, 0.25, 30.0, rand=lambda: 0.5) == 15.0


async def test_pattern_subscription_receives_matching_topics() -> None:
    from eventwire.client import Client
    from eventwire.testing import running_gateway

    async with (
        running_gateway(allow_pattern_subscriptions=True) as gateway,
        Client(gateway.ws_url) as client,
    ):
        watching = await client.subscribe("gift-list:*")
        direct = await client.subscribe("gift-list:1")
        for topic in ["gift-list:1", "room:lobby", "gift-list:2:items"]:
            await gateway.publish(
                {"topic": topic, "event": "ADDED", "data": {"entity_id": "g", "payload": None}}
            )
        seen = [await anext(aiter(watching)) for _ in range(2)]
        assert [(e.topic, e.seq) for e in seen] == [("gift-list:1", 1), ("gift-list:2:items", 1)]
        assert (await anext(aiter(direct))).topic == "gift-list:1"


async def test_subscribers_on_different_versions_and_a_reconnect_keeps_them() -> None:
    from eventwire.client import Client
    from eventwire.testing import running_gateway

    message: dict[str, Any] = {
        "topic": "room:lobby", "event": "MESSAGE_POSTED", "version": 2,
        "data": {"entity_id": "m1", "user_id": "u1", "payload": {
            "message_id": "m1", "user_id": "u1", "username": "Ann", "text": "hi @bo",
            "mentions": ["bo"],
        }},
    }  # fmt: skip
    async with (
        running_gateway(catalog="eventwire.demo:catalog") as gateway,
        Client(gateway.ws_url) as old,
        Client(gateway.ws_url) as new,
    ):
        v1 = await old.subscribe("room:lobby", versions={"room.MESSAGE_POSTED": [1]})
        v2 = await new.subscribe("room:lobby")  # as published
        await gateway.publish(message)
        first, second = await anext(aiter(v1)), await anext(aiter(v2))
        assert (first.version, "mentions" in first.data.payload) == (1, False)
        assert (second.version, second.data.payload["mentions"]) == (2, ["bo"])
        since = old.reconnects
        for connection in list(gateway.connections):  # a node restart, seen by the clients
            connection.close(1012, "restart")
        await old.reconnected(since, timeout=10)
        await gateway.publish({**message, "data": {**message["data"], "entity_id": "m2"}})
        again = await anext(aiter(v1))
        assert (again.data.entity_id, again.version) == ("m2", 1)  # still converted


async def test_typed_payloads_from_the_catalog_by_event_and_version() -> None:
    from eventwire.client import Client
    from eventwire.demo import Gift, MessagePosted, MessagePostedV2, catalog
    from eventwire.testing import running_gateway

    posted: dict[str, Any] = {
        "message_id": "m1", "user_id": "u1", "username": "Ann", "text": "hi", "mentions": ["bo"]
    }  # fmt: skip
    async with (
        running_gateway(catalog="eventwire.demo:catalog") as gateway,
        Client(gateway.ws_url, catalog=catalog) as client,
    ):
        gifts = aiter(await client.subscribe("gift-list:1"))
        old = aiter(await client.subscribe("room:lobby", versions={"room.MESSAGE_POSTED": [1]}))
        new = aiter(await client.subscribe("room:hall"))
        await gateway.publish(
            {"topic": "gift-list:1", "event": "ADDED",
             "data": {"entity_id": "g1", "payload": {"id": "g1", "name": "Kite"}}}
        )  # fmt: skip
        await gateway.publish(
            {"topic": "gift-list:1", "event": "UPDATED",
             "data": {"entity_id": "g1", "payload": {"name": "Red kite"}}}
        )  # fmt: skip
        for room in ("room:lobby", "room:hall"):
            await gateway.publish(
                {"topic": room, "event": "MESSAGE_POSTED", "version": 2,
                 "data": {"entity_id": "m1", "user_id": "u1", "payload": posted}}
            )  # fmt: skip
        added = client.typed(await anext(gifts))
        assert isinstance(added, Gift)
        assert (added.name, added.status) == ("Kite", "available")
        patch = client.typed(await anext(gifts))  # UPDATED: the DTO's partial model
        assert patch.model_dump(exclude_unset=True) == {"name": "Red kite"}
        v1 = client.typed(await anext(old))
        assert type(v1) is MessagePosted  # converted to v1, typed as v1
        v2 = client.typed(await anext(new))
        assert isinstance(v2, MessagePostedV2)
        assert v2.mentions == ["bo"]
