"""Local fan-out in the hub, and the in-memory broker."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import orjson
import pytest
from pydantic import BaseModel, ConfigDict

from eventwire.brokers.memory import MemoryBroker
from eventwire.catalog import Catalog
from eventwire.catalog.delivery import Accept, parse_accept
from eventwire.envelope import Event
from eventwire.errors import BrokerError
from eventwire.server.hub import EVERYONE, NO_TENANT, Audience, Hub, Outbound, text_frame
from eventwire.server.metrics import Metrics

BODY = (
    b'{"topic":"gift-list:1","event":"UPDATED","data":{"entity_id":"gift-1",'
    b'"payload":{"n":1},"timestamp":"2026-11-25T21:00:00.000Z"}}'
)


class FakeSubscriber:
    def __init__(self, audience: Audience = EVERYONE) -> None:
        self.audience = audience
        self.delivered: list[Outbound] = []
        self.told: set[tuple[str, str]] = set()

    def deliver(self, message: Outbound) -> None:
        self.delivered.append(message)

    def first_unsupported(self, key: tuple[str, str]) -> bool:
        if key in self.told:
            return False
        self.told.add(key)
        return True


def _gauge(metrics: Metrics, name: str) -> float | None:
    return metrics.registry.get_sample_value(name)


def _hub() -> tuple[Hub, Metrics]:
    metrics = Metrics()
    return Hub(metrics), metrics


def test_subscribe_unsubscribe_counts_and_first_last() -> None:
    hub, metrics = _hub()
    a, b = FakeSubscriber(), FakeSubscriber()

    assert hub.subscribe("gift-list:1", a) is True  # first on this node
    assert hub.subscribe("gift-list:1", b) is False
    assert hub.subscribe("gift-list:1", a) is False  # again: no change
    assert hub.subscribe("user:2", a) is True
    assert hub.subscriber_count("gift-list:1") == 2
    assert hub.subscriber_count("user:2") == 1
    assert hub.subscriber_count("nobody:here") == 0
    assert hub.topic_count == 2
    assert _gauge(metrics, "eventwire_subscriptions") == 3
    assert _gauge(metrics, "eventwire_topics") == 2

    assert hub.unsubscribe("gift-list:1", a) is False
    assert hub.subscriber_count("gift-list:1") == 1
    assert hub.unsubscribe("gift-list:1", a) is False  # not subscribed any more: no change
    assert hub.unsubscribe("nobody:here", a) is False
    assert _gauge(metrics, "eventwire_subscriptions") == 2

    assert hub.unsubscribe("gift-list:1", b) is True  # the last one left
    assert hub.subscriber_count("gift-list:1") == 0
    assert hub.topic_count == 1
    assert _gauge(metrics, "eventwire_topics") == 1

    assert hub.subscribe("gift-list:1", b) is True  # first again after the topic emptied


def test_dispatch_encodes_once_for_every_subscriber() -> None:
    hub, metrics = _hub()
    subscribers = [FakeSubscriber() for _ in range(5)]
    for subscriber in subscribers:
        hub.subscribe("gift-list:1", subscriber)
    other = FakeSubscriber()
    hub.subscribe("gift-list:2", other)

    assert hub.dispatch("gift-list:1", 7, BODY) == 5

    message = subscribers[0].delivered[0]
    for subscriber in subscribers:
        assert len(subscriber.delivered) == 1
        assert subscriber.delivered[0] is message
        assert subscriber.delivered[0].data is message.data
        assert subscriber.delivered[0].frame is message.frame
    assert other.delivered == []
    assert message.topic == "gift-list:1"
    decoded = orjson.loads(message.data)
    assert decoded["seq"] == 7
    assert {k: v for k, v in decoded.items() if k != "seq"} == orjson.loads(BODY)
    assert message.frame == text_frame(message.data)
    assert _gauge(metrics, "eventwire_deliveries_total") == 5


def test_dispatch_to_topic_without_subscribers() -> None:
    hub, metrics = _hub()
    a = FakeSubscriber()
    hub.subscribe("gift-list:1", a)
    assert hub.dispatch("gift-list:2", 1, BODY) == 0
    assert a.delivered == []
    assert _gauge(metrics, "eventwire_deliveries_total") == 0


def test_unsubscribed_subscriber_gets_nothing_more() -> None:
    hub, _ = _hub()
    a, b = FakeSubscriber(), FakeSubscriber()
    hub.subscribe("t:1", a)
    hub.subscribe("t:1", b)
    hub.dispatch("t:1", 1, BODY)
    hub.unsubscribe("t:1", a)
    assert hub.dispatch("t:1", 2, BODY) == 1
    assert [orjson.loads(m.data)["seq"] for m in a.delivered] == [1]
    assert [orjson.loads(m.data)["seq"] for m in b.delivered] == [1, 2]


def test_outbound_frame_is_an_unmasked_text_frame() -> None:
    data = b'{"x":1}'
    message = Outbound("t:1", data)
    assert message.frame[0] == 0x81  # FIN + text opcode
    assert message.frame[1] == len(data)  # no mask bit, short length
    assert message.frame[2:] == data


async def test_handlers_receive_matching_events() -> None:
    hub, _ = _hub()
    seen: list[Event] = []
    runner = hub.add_handler("gift-list:*", seen.append)
    hub.add_handler("user:*", seen.append)
    assert {r.pattern for r in hub.handlers()} == {"gift-list:*", "user:*"}

    assert hub.dispatch("gift-list:1", 3, BODY) == 0  # handlers are not counted as recipients
    await runner.drain()
    assert [(e.topic, e.seq, e.payload) for e in seen] == [("gift-list:1", 3, {"n": 1})]

    hub.remove_handler(runner)
    hub.dispatch("gift-list:1", 4, BODY)
    await asyncio.sleep(0)
    assert len(seen) == 1
    assert [r.pattern for r in hub.handlers()] == ["user:*"]


# --- tenant in data ------------------------------------------------------------


def _tagged(tenant: str | None, payload: object = None) -> bytes:
    data: dict[str, object] = {"entity_id": "e", "payload": payload}
    if tenant is not None:
        data["tenant_id"] = tenant
    data["timestamp"] = "2026-11-25T21:00:00.000Z"
    return orjson.dumps({"topic": "room:lobby", "event": "ADDED", "data": data})


def _audiences() -> tuple[Hub, dict[str, FakeSubscriber]]:
    hub, _ = _hub()
    who = {
        "acme": FakeSubscriber("acme"),
        "acme-2": FakeSubscriber("acme"),
        "globex": FakeSubscriber("globex"),
        "no-tenant": FakeSubscriber(NO_TENANT),
        "global-admin": FakeSubscriber(EVERYONE),
    }
    for subscriber in who.values():
        hub.subscribe("room:lobby", subscriber)
    return hub, who


def _got(who: dict[str, FakeSubscriber]) -> set[str]:
    return {name for name, subscriber in who.items() if subscriber.delivered}


def test_a_tenant_tagged_event_reaches_its_tenant_and_global_admins() -> None:
    hub, who = _audiences()
    assert hub.subscriber_count("room:lobby") == 5
    assert hub.dispatch("room:lobby", 1, _tagged("acme")) == 3
    assert _got(who) == {"acme", "acme-2", "global-admin"}
    assert who["acme"].delivered[0] is who["global-admin"].delivered[0]  # one Outbound


def test_an_untagged_event_reaches_everyone() -> None:
    hub, who = _audiences()
    assert hub.dispatch("room:lobby", 1, _tagged(None)) == 5
    assert _got(who) == set(who)


def test_a_tenant_id_in_the_payload_is_not_the_events_tenant() -> None:
    hub, who = _audiences()
    hub.dispatch("room:lobby", 1, _tagged(None, {"tenant_id": "globex"}))
    assert _got(who) == set(who)
    hub2, who2 = _audiences()
    hub2.dispatch("room:lobby", 1, _tagged("globex", {"tenant_id": "acme"}))
    assert _got(who2) == {"globex", "global-admin"}


def test_without_tenants_no_body_is_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    hub, _ = _hub()
    subscribers = [FakeSubscriber() for _ in range(3)]
    for subscriber in subscribers:
        hub.subscribe("room:lobby", subscriber)

    def no_parsing(_: bytes) -> object:
        raise AssertionError("parsed a body no recipient needed parsed")

    monkeypatch.setattr("eventwire.server.hub.orjson.loads", no_parsing)
    assert hub.dispatch("room:lobby", 1, _tagged("acme")) == 3  # auth off: everyone


def test_pattern_watchers_are_filtered_the_same_way() -> None:
    hub, _ = _hub()
    acme, globex, admin = FakeSubscriber("acme"), FakeSubscriber("globex"), FakeSubscriber()
    for watcher in (acme, globex, admin):
        hub.subscribe("room:*", watcher)
    hub.subscribe("room:lobby", acme)  # both kinds: still one copy
    assert hub.dispatch("room:lobby", 1, _tagged("acme")) == 2
    assert [len(s.delivered) for s in (acme, globex, admin)] == [1, 0, 1]
    assert hub.dispatch("room:lobby", 2, _tagged(None)) == 3
    assert [len(s.delivered) for s in (acme, globex, admin)] == [2, 1, 2]


def test_regroup_follows_an_audience_change() -> None:
    hub, metrics = _hub()
    subscriber = FakeSubscriber(NO_TENANT)
    hub.subscribe("room:lobby", subscriber)
    hub.dispatch("room:lobby", 1, _tagged("acme"))
    assert subscriber.delivered == []
    subscriber.audience = "acme"
    hub.regroup(subscriber, ["room:lobby", "room:*"], NO_TENANT)
    hub.dispatch("room:lobby", 2, _tagged("acme"))
    assert len(subscriber.delivered) == 1
    assert hub.unsubscribe("room:lobby", subscriber) is True
    assert _gauge(metrics, "eventwire_subscriptions") == 0
    assert hub.topic_count == 0


# --- versions -----------------------------------------------------------------

CONVERSIONS: Counter[str] = Counter()


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str


class MessageV2(Message):
    mentions: list[str] = []


class MessageV3(MessageV2):
    edited: bool = False


def _versioned_catalog() -> Catalog:
    """room: MESSAGE_POSTED 1 <-> 2 <-> 3 (converters counted); USER_JOINED 1, 2 (none)."""
    catalog = Catalog("hub-test")
    room = catalog.resource("room", strict=True)
    room.event("MESSAGE_POSTED", Message, description="posted")
    room.event("MESSAGE_POSTED", MessageV2, version=2)
    room.event("MESSAGE_POSTED", MessageV3, version=3)
    room.event("USER_JOINED", Message, description="joined")
    room.event("USER_JOINED", MessageV2, version=2)

    def counted(name: str, change: Any) -> Any:
        def convert(payload: dict[str, Any]) -> dict[str, Any]:
            CONVERSIONS[name] += 1
            converted: dict[str, Any] = change(payload)
            return converted

        return convert

    room.converter("MESSAGE_POSTED", 1, 2)(counted("1>2", lambda p: {**p, "mentions": ["bob"]}))
    room.converter("MESSAGE_POSTED", 2, 3)(counted("2>3", lambda p: {**p, "edited": False}))
    room.converter("MESSAGE_POSTED", 3, 2)(
        counted("3>2", lambda p: {k: v for k, v in p.items() if k != "edited"})
    )
    room.converter("MESSAGE_POSTED", 2, 1)(
        counted("2>1", lambda p: {k: v for k, v in p.items() if k != "mentions"})
    )
    return catalog


def _message(event: str = "MESSAGE_POSTED", tenant: str | None = None) -> bytes:
    data: dict[str, Any] = {"entity_id": "m-1", "payload": {"text": "hi @bob"}}
    if tenant is not None:
        data["tenant_id"] = tenant
    data["timestamp"] = "2026-11-25T21:00:00.000Z"
    return orjson.dumps({"topic": "room:lobby", "event": event, "data": data})


def _accept(*versions: int, key: str = "room.MESSAGE_POSTED") -> Accept:
    accept = parse_accept({key: list(versions)})
    assert accept is not None
    return accept


def _versioned_hub() -> tuple[Hub, Metrics]:
    metrics = Metrics()
    CONVERSIONS.clear()
    return Hub(metrics, _versioned_catalog()), metrics


def _decoded(subscriber: FakeSubscriber, at: int = -1) -> dict[str, Any]:
    decoded: dict[str, Any] = orjson.loads(subscriber.delivered[at].data)
    return decoded


def test_each_version_is_converted_once_whatever_the_number_of_subscribers() -> None:
    hub, metrics = _versioned_hub()
    v1 = [FakeSubscriber() for _ in range(3)]
    v2 = [FakeSubscriber() for _ in range(3)]
    v3 = [FakeSubscriber() for _ in range(2)]
    plain = [FakeSubscriber() for _ in range(2)]
    for group, accept in ((v1, _accept(1)), (v2, _accept(1, 2)), (v3, _accept(3))):
        for subscriber in group:
            hub.subscribe("room:lobby", subscriber, accept)
    for subscriber in plain:
        hub.subscribe("room:lobby", subscriber)

    assert hub.dispatch("room:lobby", 9, _message()) == 10
    assert CONVERSIONS == {"1>2": 1, "2>3": 1}  # the chain once, 2 reused on the way to 3
    # Each version is one Outbound (spliced and framed once), shared by its group.
    for group in (v1 + plain, v2, v3):
        assert len({id(s.delivered[0]) for s in group}) == 1
    assert v1[0].delivered[0] is plain[0].delivered[0]  # version 1 is the published body
    assert _decoded(plain[0]) == {**orjson.loads(_message()), "seq": 9}
    assert _decoded(v2[0])["version"] == 2
    assert _decoded(v2[0])["data"]["payload"] == {"text": "hi @bob", "mentions": ["bob"]}
    assert _decoded(v3[0])["version"] == 3
    assert _decoded(v3[0])["data"]["payload"]["edited"] is False
    assert {_decoded(s)["seq"] for s in v1 + v2 + v3} == {9}
    assert v3[0].delivered[0].frame == text_frame(v3[0].delivered[0].data)
    assert _gauge(metrics, "eventwire_deliveries_total") == 10

    hub.dispatch("room:lobby", 10, _message())
    assert CONVERSIONS == {"1>2": 2, "2>3": 2}  # once per event


def test_an_unreachable_version_is_an_error_once_per_topic_and_event() -> None:
    hub, metrics = _versioned_hub()
    wants_v2 = FakeSubscriber()
    fine = FakeSubscriber()
    accept = _accept(2, key="room.*")
    hub.subscribe("room:lobby", wants_v2, accept)
    hub.subscribe("room:kitchen", wants_v2, accept)
    hub.subscribe("room:lobby", fine)

    hub.dispatch("room:lobby", 1, _message("USER_JOINED"))  # v1, no converter to 2
    hub.dispatch("room:lobby", 2, _message("USER_JOINED"))
    assert len(fine.delivered) == 2
    [error] = wants_v2.delivered
    frame = orjson.loads(error.data)
    assert (frame["topic"], frame["event"], frame["data"]["entity_id"]) == (
        "error",
        "ERROR",
        "connection",
    )
    assert frame["data"]["payload"]["code"] == "UNSUPPORTED_VERSION"
    assert frame["data"]["payload"]["details"] == {
        "topic": "room:lobby",
        "event": "USER_JOINED",
        "version": 1,
        "accepted": [2],
        "available": [1],
    }
    hub.dispatch("room:kitchen", 1, _message("USER_JOINED"))  # another topic: told again
    assert len(wants_v2.delivered) == 2
    hub.dispatch("room:lobby", 3, _message())  # MESSAGE_POSTED converts to 2: delivered
    assert _decoded(wants_v2)["version"] == 2
    errors = metrics.registry.get_sample_value(
        "eventwire_errors_total", {"code": "UNSUPPORTED_VERSION"}
    )
    assert errors == 2


def test_tenants_and_versions_group_together() -> None:
    hub, _ = _versioned_hub()
    who = {
        "acme-v1": (FakeSubscriber("acme"), _accept(1)),
        "acme-v2": (FakeSubscriber("acme"), _accept(2)),
        "acme": (FakeSubscriber("acme"), None),
        "globex-v2": (FakeSubscriber("globex"), _accept(2)),
        "admin-v2": (FakeSubscriber(EVERYONE), _accept(2)),
    }
    for subscriber, accept in who.values():
        hub.subscribe("room:lobby", subscriber, accept)
    assert hub.subscriber_count("room:lobby") == 5

    assert hub.dispatch("room:lobby", 1, _message(tenant="acme")) == 4
    got = {name for name, (s, _) in who.items() if s.delivered}
    assert got == {"acme-v1", "acme-v2", "acme", "admin-v2"}
    assert who["acme-v2"][0].delivered[0] is who["admin-v2"][0].delivered[0]
    assert who["acme-v1"][0].delivered[0] is who["acme"][0].delivered[0]
    assert CONVERSIONS == {"1>2": 1}


def test_without_declared_versions_no_body_is_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    hub, _ = _versioned_hub()
    subscribers = [FakeSubscriber() for _ in range(3)]
    for subscriber in subscribers:
        hub.subscribe("room:lobby", subscriber)

    def no_parsing(_: bytes) -> object:
        raise AssertionError("parsed a body no recipient needed parsed")

    monkeypatch.setattr("eventwire.server.hub.orjson.loads", no_parsing)
    monkeypatch.setattr("eventwire.catalog.delivery.orjson.loads", no_parsing)
    assert hub.dispatch("room:lobby", 1, _message()) == 3
    assert CONVERSIONS == {}


def test_subscribing_with_other_versions_moves_the_subscriber() -> None:
    hub, metrics = _versioned_hub()
    subscriber = FakeSubscriber(NO_TENANT)
    assert hub.subscribe("room:lobby", subscriber, _accept(2)) is True
    assert hub.subscribe("room:lobby", subscriber, _accept(2)) is False  # same: nothing changes
    assert hub.subscribe("room:lobby", subscriber, _accept(3)) is False
    assert hub.subscriber_count("room:lobby") == 1
    assert _gauge(metrics, "eventwire_subscriptions") == 1
    hub.dispatch("room:lobby", 1, _message())
    assert _decoded(subscriber)["version"] == 3
    subscriber.audience = "acme"  # signs in: keeps its versions in its new audience
    hub.regroup(subscriber, ["room:lobby"], NO_TENANT)
    hub.dispatch("room:lobby", 2, _message(tenant="acme"))
    assert _decoded(subscriber)["version"] == 3
    hub.subscribe("room:lobby", subscriber)  # no versions any more: as published
    hub.dispatch("room:lobby", 3, _message())
    assert "version" not in _decoded(subscriber)
    assert hub.unsubscribe("room:lobby", subscriber) is True
    assert hub.topic_count == 0
    assert _gauge(metrics, "eventwire_subscriptions") == 0


def test_without_a_catalog_declared_versions_get_what_was_published() -> None:
    hub, _ = _hub()
    subscriber, plain = FakeSubscriber(), FakeSubscriber()
    hub.subscribe("room:lobby", subscriber, _accept(2))
    hub.subscribe("room:lobby", plain)
    assert hub.dispatch("room:lobby", 1, _message()) == 2
    assert subscriber.delivered[0] is plain.delivered[0]


def test_pattern_watchers_get_what_was_published() -> None:
    hub, _ = _versioned_hub()
    watcher, subscriber = FakeSubscriber(), FakeSubscriber()
    hub.subscribe("room:*", watcher, _accept(2))  # patterns ignore versions
    hub.subscribe("room:lobby", subscriber, _accept(2))
    hub.subscribe("room:lobby", watcher, _accept(2))  # both kinds: still one copy
    assert hub.dispatch("room:lobby", 1, _message()) == 2
    assert len(watcher.delivered) == 1
    other = FakeSubscriber()
    hub.subscribe("room:*", other)
    hub.dispatch("room:lobby", 2, _message())
    assert "version" not in _decoded(other)


# --- MemoryBroker -------------------------------------------------------------


async def test_memory_broker_assigns_contiguous_seq_per_topic() -> None:
    broker = MemoryBroker()
    received: list[tuple[str, int, bytes]] = []
    await broker.start(lambda topic, seq, body: received.append((topic, seq, body)))

    assert await broker.position("a:1") == (0, broker.epoch)
    seqs = [await broker.publish(topic, b"x") for topic in ["a:1", "a:1", "b:2", "a:1", "b:2"]]
    assert seqs == [1, 2, 1, 3, 2]
    assert received == [
        ("a:1", 1, b"x"),
        ("a:1", 2, b"x"),
        ("b:2", 1, b"x"),
        ("a:1", 3, b"x"),
        ("b:2", 2, b"x"),
    ]
    position = await broker.position("a:1")
    assert position.seq == 3
    assert position.epoch == broker.epoch
    assert position.to_wire() == {"seq": 3, "epoch": broker.epoch}
    assert (await broker.position("b:2")).seq == 2
    assert (await broker.position("c:3")).seq == 0


async def test_memory_broker_feeds_the_hub() -> None:
    hub, _ = _hub()
    a = FakeSubscriber()
    hub.subscribe("gift-list:1", a)
    broker = MemoryBroker()

    def on_event(topic: str, seq: int, body: bytes) -> None:
        hub.dispatch(topic, seq, body)

    await broker.start(on_event)
    await broker.add_interest("gift-list:1")
    await broker.publish("gift-list:1", BODY)
    await broker.publish("gift-list:1", BODY)
    assert [orjson.loads(m.data)["seq"] for m in a.delivered] == [1, 2]


def test_memory_broker_epochs_differ() -> None:
    first, second = MemoryBroker(), MemoryBroker()
    assert first.epoch != second.epoch
    assert len(first.epoch) == 16


async def test_memory_broker_refuses_publish_unless_started() -> None:
    broker = MemoryBroker()
    with pytest.raises(BrokerError):
        await broker.publish("a:1", b"x")
    await broker.start(lambda topic, seq, body: None)
    assert await broker.publish("a:1", b"x") == 1
    await broker.close()
    with pytest.raises(BrokerError):
        await broker.publish("a:1", b"x")
