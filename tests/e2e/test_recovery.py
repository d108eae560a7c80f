"""Recovery on reconnect over real sockets: SUBSCRIBE's since, recovered, RECOVERY_FAILED."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from eventwire.brokers import history_of
from eventwire.client import Gap, InProcessPublisher, Subscription, TopicPosition, TopicStream
from eventwire.envelope import Event
from eventwire.server import Gateway
from eventwire.testing import TestClient
from eventwire.testing.client import ClientFactory
from tests.e2e.conftest import (
    StartGateway,
    auth,
    barrier,
    command,
    event,
    open_ws,
    recv,
    token,
)

TIMEOUT = 5.0
TOPIC = "order:789"
RESTART = 1012


async def take(sub: Subscription, count: int) -> list[Event]:
    return [await asyncio.wait_for(anext(sub), TIMEOUT) for _ in range(count)]


def restart(gateway: Gateway) -> None:
    """Close every connection as a node restart would (1012): clients reconnect."""
    for connection in list(gateway.connections):
        connection.close(RESTART, "restart")


async def _subscribe_since(
    ws: ClientConnection, topic: str, since: dict[str, Any], request_id: str = "s"
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """SUBSCRIBE with ``since``; the SUBSCRIBED payload and every frame up to a PONG after it."""
    await command(ws, "SUBSCRIBE", request_id, {"topics": [topic], "since": {topic: since}})
    reply = await recv(ws)
    assert reply["event"] == "SUBSCRIBED", reply
    return reply["data"]["payload"], await barrier(ws)


async def test_missed_events_are_replayed_exactly_once_in_order(
    eventwire_gateway: Gateway, eventwire_client: ClientFactory
) -> None:
    client = await eventwire_client()
    sub = await client.subscribe(TOPIC)
    publisher = InProcessPublisher(eventwire_gateway)
    await publisher.updated(TOPIC, entity_id="o", payload={"n": 1})
    await take(sub, 1)
    count = client.reconnects

    restart(eventwire_gateway)
    for n in range(2, 12):
        await publisher.updated(TOPIC, entity_id="o", payload={"n": n})

    notice = await client.reconnected(since=count, timeout=TIMEOUT)
    assert notice.close_code == RESTART
    assert notice.gaps == ()
    await publisher.updated(TOPIC, entity_id="o", payload={"n": 12})
    events = await take(sub, 11)
    assert [e.seq for e in events] == list(range(2, 13))
    assert [e.payload for e in events] == [{"n": n} for n in range(2, 13)]
    assert client.gaps == []
    assert sub.gaps == []
    assert client.positions[TOPIC].seq == 12


def slow_reads(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make position and history reads wait, so that publishing goes on during a replay.

    Returns the list where each history read records how many events it returned.
    """
    broker: Any = gateway.broker
    position, history = broker.position, broker.history
    pages: list[int] = []

    async def slow_position(topic: str) -> Any:
        await asyncio.sleep(0.005)
        return await position(topic)

    async def slow_history(topic: str, since: int, limit: int) -> Any:
        await asyncio.sleep(0.005)
        page = await history(topic, since, limit)
        pages.append(len(page.events))
        await asyncio.sleep(0.005)
        return page

    monkeypatch.setattr(broker, "position", slow_position)
    monkeypatch.setattr(broker, "history", slow_history)
    return pages


async def test_events_published_during_the_replay_arrive_once_in_order(
    eventwire_gateway: Gateway, eventwire_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages = slow_reads(eventwire_gateway, monkeypatch)
    client = await eventwire_client()
    sub = await client.subscribe(TOPIC)
    publisher = InProcessPublisher(eventwire_gateway)
    await publisher.updated(TOPIC, entity_id="o", payload={"n": 1})
    await take(sub, 1)
    total = 300

    async def publish_all() -> None:
        for n in range(2, total + 1):
            await publisher.updated(TOPIC, entity_id="o", payload={"n": n})
            await asyncio.sleep(0.0005)  # let the reconnection and its replay interleave

    count = client.reconnects
    restart(eventwire_gateway)
    publishing = asyncio.create_task(publish_all())
    await client.reconnected(since=count, timeout=TIMEOUT)
    assert not publishing.done()  # the replay overlapped with publishing
    await publishing
    assert pages
    assert pages[0] > 0
    events = await take(sub, total - 1)
    assert [e.seq for e in events] == list(range(2, total + 1))
    assert [e.payload for e in events] == [{"n": n} for n in range(2, total + 1)]
    assert client.gaps == []
    await client.ping()  # nothing more is pending: no duplicate after the last one
    assert sub._queue.qsize() == 0


async def test_another_epoch_is_not_recovered(gateway: Gateway) -> None:
    async with await open_ws(gateway) as ws:
        await gateway.publish(event(TOPIC, entity_id="a"))
        payload, frames = await _subscribe_since(ws, TOPIC, {"seq": 0, "epoch": "not-this-one"})
    position = payload["positions"][TOPIC]
    assert payload["recovered"] == {TOPIC: False}
    [failed] = frames
    assert failed["topic"] == "system"
    assert failed["event"] == "RECOVERY_FAILED"
    assert failed["data"]["entity_id"] == "s"
    assert failed["data"]["payload"] == {
        "topic": TOPIC,
        "position": position,
        "reason": "epoch_changed",
    }


async def test_recovery_replays_after_since_then_goes_live(gateway: Gateway) -> None:
    for n in range(1, 6):
        await gateway.publish(event(TOPIC, entity_id=f"e{n}"))
    epoch = (await gateway.broker.position(TOPIC)).epoch
    async with await open_ws(gateway) as ws:
        payload, frames = await _subscribe_since(ws, TOPIC, {"seq": 2, "epoch": epoch})
        assert payload["recovered"] == {TOPIC: True}
        assert payload["positions"][TOPIC] == {"seq": 5, "epoch": epoch}
        assert [(f["seq"], f["data"]["entity_id"]) for f in frames] == [
            (3, "e3"),
            (4, "e4"),
            (5, "e5"),
        ]
        await gateway.publish(event(TOPIC, entity_id="e6"))
        assert [f["seq"] for f in await barrier(ws)] == [6]
        # Already at the position: recovered, nothing replayed.
        payload, frames = await _subscribe_since(ws, "order:1", {"seq": 0, "epoch": epoch})
    assert payload["recovered"] == {"order:1": True}
    assert frames == []


async def test_positions_beyond_the_topic_or_too_many_missed_are_not_recovered(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(max_recovery=3)
    for n in range(1, 6):
        await gateway.publish(event(TOPIC, entity_id=f"e{n}"))
    epoch = (await gateway.broker.position(TOPIC)).epoch
    async with await open_ws(gateway) as ws:
        payload, frames = await _subscribe_since(ws, TOPIC, {"seq": 9, "epoch": epoch})
        assert payload["recovered"] == {TOPIC: False}
        assert [f["data"]["payload"]["reason"] for f in frames] == ["position_ahead"]
        payload, frames = await _subscribe_since(ws, TOPIC, {"seq": 1, "epoch": epoch}, "t")
        assert payload["recovered"] == {TOPIC: False}
        assert [f["data"]["payload"]["reason"] for f in frames] == ["too_many_missed"]
        payload, frames = await _subscribe_since(ws, TOPIC, {"seq": 2, "epoch": epoch}, "u")
    assert payload["recovered"] == {TOPIC: True}
    assert [f["seq"] for f in frames] == [3, 4, 5]


async def test_trimmed_history_is_not_recovered(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(history_size=3)
    for n in range(1, 8):
        await gateway.publish(event(TOPIC, entity_id=f"e{n}"))
    epoch = (await gateway.broker.position(TOPIC)).epoch
    async with await open_ws(gateway) as ws:
        payload, frames = await _subscribe_since(ws, TOPIC, {"seq": 1, "epoch": epoch})
        assert payload["recovered"] == {TOPIC: False}
        assert [f["event"] for f in frames] == ["RECOVERY_FAILED"]
        assert frames[0]["data"]["payload"]["reason"] == "history_truncated"
        # What is still kept can be recovered.
        payload, frames = await _subscribe_since(ws, TOPIC, {"seq": 4, "epoch": epoch}, "t")
    assert payload["recovered"] == {TOPIC: True}
    assert [f["seq"] for f in frames] == [5, 6, 7]


async def test_client_reports_a_lost_history_gap_when_recovery_fails(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(history_size=2)
    async with TestClient(gateway.ws_url) as client:
        sub = await client.subscribe(TOPIC)
        publisher = InProcessPublisher(gateway)
        await publisher.updated(TOPIC, entity_id="o", payload={"n": 1})
        await take(sub, 1)
        epoch, count = client.positions[TOPIC].epoch, client.reconnects

        restart(gateway)
        for n in range(2, 7):
            await publisher.updated(TOPIC, entity_id="o", payload={"n": n})
        notice = await client.reconnected(since=count, timeout=TIMEOUT)
        assert notice.gaps == (Gap(TOPIC, 2, 6, epoch, history_lost=True),)
        assert sub.gaps == list(notice.gaps)
        await client.ping()  # RECOVERY_FAILED came too: reported once, not twice
        assert client.gaps == list(notice.gaps)
        await publisher.updated(TOPIC, entity_id="o", payload={"n": 7})
        [after] = await take(sub, 1)
    assert after.seq == 7


async def test_client_without_recover_reports_the_gap_as_before(
    eventwire_gateway: Gateway, eventwire_client: ClientFactory
) -> None:
    client = await eventwire_client(recover=False)
    sub = await client.subscribe(TOPIC)
    publisher = InProcessPublisher(eventwire_gateway)
    await publisher.updated(TOPIC, entity_id="o", payload={"n": 1})
    await take(sub, 1)
    epoch, count = client.positions[TOPIC].epoch, client.reconnects
    restart(eventwire_gateway)
    await publisher.updated(TOPIC, entity_id="o", payload={"n": 2})
    notice = await client.reconnected(since=count, timeout=TIMEOUT)
    assert notice.gaps == (Gap(TOPIC, 2, 2, epoch),)


async def test_a_tenant_gets_no_other_tenants_events_from_history(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(**auth())
    grants = {"subscribe": ["room:*"]}
    for entity, tenant in [("acme-1", "acme"), ("globex-1", "globex"), ("all-1", None)]:
        data: dict[str, Any] = {"entity_id": entity}
        if tenant is not None:
            data["tenant_id"] = tenant
        await gateway.publish(event("room:lobby", **data))
    epoch = (await gateway.broker.position("room:lobby")).epoch
    since = {"seq": 0, "epoch": epoch}
    seen = {}
    for name, jwt in [
        ("acme", token(gateway, "a", tenant="acme", **grants)),
        ("tenantless", token(gateway, "c", **grants)),
        ("admin", token(gateway, "root", admin=True)),
    ]:
        async with await open_ws(gateway, jwt) as ws:
            payload, frames = await _subscribe_since(ws, "room:lobby", since)
            assert payload["recovered"] == {"room:lobby": True}
            seen[name] = [f["data"]["entity_id"] for f in frames]
    assert seen == {
        "acme": ["acme-1", "all-1"],
        "tenantless": ["all-1"],
        "admin": ["acme-1", "globex-1", "all-1"],
    }


async def test_replay_honours_the_declared_versions(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(catalog="eventwire.demo:catalog")
    message = {"message_id": "m1", "user_id": "u1", "username": "Ann", "text": "hi @bob"}
    v2 = {**message, "mentions": ["bob"]}
    data = {"entity_id": "m1", "payload": v2, "user_id": "u1"}
    await gateway.publish(
        {"topic": "room:lobby", "event": "MESSAGE_POSTED", "version": 2, "data": data}
    )
    epoch = (await gateway.broker.position("room:lobby")).epoch
    async with await open_ws(gateway) as ws:
        payload = {
            "topics": ["room:lobby"],
            "since": {"room:lobby": {"seq": 0, "epoch": epoch}},
            "versions": {"room.MESSAGE_POSTED": [1]},
        }
        await command(ws, "SUBSCRIBE", "s", payload)
        reply = await recv(ws)
        frames = await barrier(ws)
    assert reply["data"]["payload"]["recovered"] == {"room:lobby": True}
    [replayed] = frames
    assert (replayed["seq"], replayed["version"]) == (1, 1)
    assert replayed["data"]["payload"] == message


async def test_a_broker_without_history_recovers_only_what_was_not_missed(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eventwire.server.connection import ConnectionBase

    monkeypatch.setattr(ConnectionBase, "_history", property(lambda self: None))
    await gateway.publish(event(TOPIC, entity_id="e1"))
    epoch = (await gateway.broker.position(TOPIC)).epoch
    async with await open_ws(gateway) as ws:
        payload, frames = await _subscribe_since(ws, TOPIC, {"seq": 0, "epoch": epoch})
        assert payload["recovered"] == {TOPIC: False}
        assert [f["data"]["payload"]["reason"] for f in frames] == ["no_history"]
        payload, frames = await _subscribe_since(ws, TOPIC, {"seq": 1, "epoch": epoch}, "t")
    assert payload["recovered"] == {TOPIC: True}
    assert frames == []


def _event(seq: int) -> Event:
    data = {"entity_id": f"e{seq}", "payload": None, "timestamp": "2026-01-01T00:00:00Z"}
    return Event.model_validate({"topic": TOPIC, "event": "ADDED", "data": data, "seq": seq})


def test_stream_recovered_keeps_its_position_and_takes_the_replay() -> None:
    stream = TopicStream(TOPIC)
    stream.subscribing(resume=False)
    stream.subscribed(3, "e1")
    stream.subscribing(resume=True)
    assert stream.subscribed(6, "e1", recovered=True) == ([], [])
    assert stream.position == TopicPosition(3, "e1")
    delivered = [stream.receive(_event(seq))[0] for seq in (3, 4, 5, 6, 7)]
    assert [[e.seq for e in d] for d in delivered] == [[], [4], [5], [6], [7]]


def test_stream_not_recovered_reports_lost_history_once() -> None:
    stream = TopicStream(TOPIC)
    stream.subscribing(resume=False)
    stream.subscribed(3, "e1")
    stream.subscribing(resume=True)
    lost = Gap(TOPIC, 4, 9, "e1", history_lost=True)
    assert stream.subscribed(9, "e1", recovered=False) == ([], [lost])
    assert stream.recovery_failed(9, "e1") == []  # RECOVERY_FAILED after it: told already
    assert stream.recovery_failed(12, "e2") == [Gap(TOPIC, 1, 12, "e2", history_lost=True)]
    assert stream.position == TopicPosition(12, "e2")


async def test_events_given_in_a_replay_are_never_repeated_on_the_wire(gateway: Gateway) -> None:
    """After a broker outage, the node's own catch-up hands its subscribers the events
    it missed; one that recovered those events meanwhile from history gets none twice."""
    for n in range(1, 6):
        await gateway.publish(event(TOPIC, entity_id=f"e{n}"))
    epoch = (await gateway.broker.position(TOPIC)).epoch
    page = await history_of(gateway.broker).history(TOPIC, 2, 3)  # seqs 3, 4, 5
    async with await open_ws(gateway) as ws:
        _, frames = await _subscribe_since(ws, TOPIC, {"seq": 2, "epoch": epoch})
        assert [f["seq"] for f in frames] == [3, 4, 5]
        for seq, body in page.events:  # as the node's catch-up would deliver them
            gateway.hub.dispatch(TOPIC, seq, body)
        await gateway.publish(event(TOPIC, entity_id="e6"))
        assert [f["seq"] for f in await barrier(ws)] == [6]
