"""The NATS broker against a real server: epochs, the stream, the link, foreign messages."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from eventwire.brokers import Position
from eventwire.errors import BrokerError
from eventwire.testing.brokers import Received
from tests.integration.conftest import TIMEOUT, eventually
from tests.integration.natsproc import (  # noqa: F401 (fixtures)
    NatsProcess,
    TcpProxy,
    nats_proxy,
    nats_server,
)

nats = pytest.importorskip("nats", reason="the NATS broker needs nats-py (eventwire[nats])")

from nats.aio.client import Client as NatsClient  # noqa: E402
from nats.js import JetStreamContext  # noqa: E402

from eventwire.brokers.nats import NatsBroker  # noqa: E402


class Resets:
    def __init__(self) -> None:
        self.seen: list[tuple[str, Position]] = []

    def __call__(self, topic: str, position: Position) -> None:
        self.seen.append((topic, position))


class Node:
    """A started broker with what it received and the resets it was told of."""

    def __init__(self, broker: NatsBroker) -> None:
        self.broker = broker
        self.received = Received()
        self.resets = Resets()


MakeNode = Callable[..., Awaitable[Node]]


@pytest.fixture
async def make_node(nats_server: NatsProcess) -> AsyncIterator[MakeNode]:  # noqa: F811
    made: list[Node] = []

    async def make(url: str | None = None, **options: Any) -> Node:
        node = Node(NatsBroker(url or nats_server.url, **options))
        await node.broker.start(node.received, node.resets)
        made.append(node)
        return node

    yield make
    for node in made:
        await node.broker.close()


@pytest.fixture
async def admin(nats_server: NatsProcess) -> AsyncIterator[tuple[NatsClient, JetStreamContext]]:  # noqa: F811
    """A plain nats-py connection, to do to the stream what an operator (or a bug) might."""
    nc = await nats.connect(nats_server.url)
    yield nc, nc.jetstream()
    await nc.close()


async def test_a_deleted_stream_is_made_again_under_a_new_epoch(
    make_node: MakeNode, admin: tuple[NatsClient, JetStreamContext]
) -> None:
    node = await make_node()
    for _ in range(3):
        await node.broker.publish("gift-list:1", b"{}")
    before = await node.broker.position("gift-list:1")
    await admin[1].delete_stream("EVENTWIRE")
    assert await node.broker.publish("gift-list:1", b'{"after":1}') == 1
    after = await node.broker.position("gift-list:1")
    assert after.seq == 1
    assert after.epoch != before.epoch
    page = await node.broker.history("gift-list:1", 0, 10)
    assert (list(page.events), page.position) == ([(1, b'{"after":1}')], after)


async def test_a_purge_gives_followers_a_new_epoch_and_tells_them(
    make_node: MakeNode, admin: tuple[NatsClient, JetStreamContext]
) -> None:
    publisher, follower = await make_node(), await make_node()
    await follower.broker.add_interest("gift-list:1")
    for _ in range(3):
        await publisher.broker.publish("gift-list:1", b"{}")
    await publisher.broker.publish("gift-list:2", b"{}")
    before = await publisher.broker.position("gift-list:1")
    await admin[1].purge_stream("EVENTWIRE", subject="ew.gift-list.1")
    assert await publisher.broker.publish("gift-list:1", b'{"after":1}') == 1
    after = await publisher.broker.position("gift-list:1")
    assert after.epoch != before.epoch
    assert (await publisher.broker.position("gift-list:2")).seq == 1  # untouched
    await follower.received.wait(
        lambda: len(follower.received.events) == 4, TIMEOUT, "the event after the purge"
    )
    assert follower.received.seqs("gift-list:1") == [1, 2, 3, 1]
    assert follower.resets.seen == [("gift-list:1", Position(0, after.epoch))]
    assert follower.broker.counters()["epoch_changes"] == 1


async def test_the_epoch_of_an_empty_topic_holds_through_its_first_publish(
    make_node: MakeNode,
) -> None:
    a, b = await make_node(), await make_node()
    seen = await a.broker.position("room:new")
    assert seen.seq == 0
    assert await b.broker.publish("room:new", b"{}") == 1
    assert await a.broker.position("room:new") == (1, seen.epoch)


async def test_a_topic_quiet_past_its_retention_starts_a_new_epoch(make_node: MakeNode) -> None:
    node = await make_node(history_age=0.2, retention=0.5)
    await node.broker.publish("room:quiet", b"{}")
    first = await node.broker.position("room:quiet")
    deadline = time.monotonic() + TIMEOUT
    while (now := await node.broker.position("room:quiet")).epoch == first.epoch:
        assert time.monotonic() < deadline, "the stream never expired the topic"
        await asyncio.sleep(0.02)  # polling: the server's expiry cannot be awaited
    assert now.seq == 0
    assert await node.broker.publish("room:quiet", b"{}") == 1


async def test_the_stream_follows_the_nodes_limits(
    make_node: MakeNode, admin: tuple[NatsClient, JetStreamContext]
) -> None:
    await make_node(history_size=10, history_age=60.0)
    config = (await admin[1].stream_info("EVENTWIRE")).config
    assert (config.max_msgs_per_subject, config.max_age) == (10, 60.0 + 86400.0)
    assert config.subjects == ["ew.>"]
    assert config.republish is not None
    assert (config.republish.src, config.republish.dest) == ("ew.>", "ew-live.>")
    await make_node(history_size=20, history_age=60.0)
    config = (await admin[1].stream_info("EVENTWIRE")).config
    assert config.max_msgs_per_subject == 20


async def test_foreign_messages_are_ignored_live_and_refused_in_the_stream(
    make_node: MakeNode, admin: tuple[NatsClient, JetStreamContext]
) -> None:
    node = await make_node()
    await node.broker.add_interest("room:a")
    await admin[0].publish("ew-live.room.a", b"not ours")
    await node.broker.publish("room:a", b'{"ours":1}')
    await node.received.wait(lambda: bool(node.received.events), TIMEOUT, "our event")
    assert node.received.events == [("room:a", 1, b'{"ours":1}')]
    await admin[1].publish("ew.room.b", b"not ours either")
    with pytest.raises(BrokerError, match="not an eventwire message"):
        await node.broker.publish("room:b", b"{}")


async def test_a_connection_closed_under_the_broker_is_replaced(make_node: MakeNode) -> None:
    publisher, node = await make_node(), await make_node()
    await node.broker.add_interest("room:lobby")
    nc = node.broker._nc
    assert nc is not None
    await nc.close()  # what nats-py does when it gives up on a server
    await eventually(lambda: node.broker._nc is not nc and node.broker.ready, "a new connection")
    assert node.broker.counters()["link_losses"] == 1
    await publisher.broker.publish("room:lobby", b"{}")
    await node.received.wait(lambda: bool(node.received.events), TIMEOUT, "the event")
    assert node.received.seqs("room:lobby") == [1]


async def test_an_interest_added_while_down_is_subscribed_once_on_reconnection(
    make_node: MakeNode,
    nats_proxy: TcpProxy,  # noqa: F811
) -> None:
    publisher, node = await make_node(), await make_node(nats_proxy.url)
    nats_proxy.refusing = True
    nats_proxy.cut()
    await eventually(lambda: not node.broker.ready, "the node notices")
    await node.broker.add_interest("room:x")  # recorded; subscribed when the link is back
    await node.broker.add_interest("room:*")
    nats_proxy.refusing = False
    await eventually(lambda: node.broker.ready, "the node is back")
    for _ in range(3):
        await publisher.broker.publish("room:x", b"{}")
        await publisher.broker.publish("room:y", b"{}")
    await node.received.wait(
        lambda: len(node.received.events) >= 6, TIMEOUT, "the events after the reconnection"
    )
    await node.broker.add_interest("room:marker")
    await publisher.broker.publish("room:marker", b"{}")
    await node.received.wait(lambda: "room:marker" in node.received.topics(), TIMEOUT, "the marker")
    assert node.received.seqs("room:x") == [1, 2, 3]
    assert node.received.seqs("room:y") == [1, 2, 3]


async def test_closing_is_not_a_lost_link(
    make_node: MakeNode, caplog: pytest.LogCaptureFixture
) -> None:
    node = await make_node()
    await node.broker.add_interest("room:x")
    await node.broker.close()
    assert node.broker.counters()["link_losses"] == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
