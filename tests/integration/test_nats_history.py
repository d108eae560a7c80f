"""History on a real NATS: pages found by walking back or by bisection, bounds far back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from eventwire.brokers import HistoryPage
from eventwire.testing.brokers import Received
from tests.integration.natsproc import NatsProcess, nats_server  # noqa: F401 (fixture)

pytest.importorskip("nats", reason="the NATS broker needs nats-py (eventwire[nats])")

from eventwire.brokers.nats import NatsBroker

MakeBroker = Callable[..., Awaitable[NatsBroker]]


@pytest.fixture
async def make_broker(nats_server: NatsProcess) -> AsyncIterator[MakeBroker]:  # noqa: F811
    made: list[NatsBroker] = []

    async def make(**options: Any) -> NatsBroker:
        broker = NatsBroker(nats_server.url, **options)
        await broker.start(Received())
        made.append(broker)
        return broker

    yield make
    for broker in made:
        await broker.close()


async def publish_interleaved(broker: NatsBroker, topic: str, count: int) -> None:
    """``count`` events of ``topic``, each between events of two other topics."""
    for n in range(1, count + 1):
        await broker.publish("noise:a", b"{}")
        assert await broker.publish(topic, b'{"n":%d}' % n) == n
        await broker.publish("noise:b", b"{}")


def seqs(page: HistoryPage) -> list[int]:
    return [seq for seq, _ in page.events]


async def test_pages_far_back_are_found_by_bisection(make_broker: MakeBroker) -> None:
    broker = await make_broker()
    await publish_interleaved(broker, "gift-list:1", 60)
    for since in (0, 1, 20, 43, 44, 59, 60):
        for limit in (1, 7, 100):
            page = await broker.history("gift-list:1", since, limit)
            wanted = list(range(since + 1, min(since + limit, 60) + 1))
            assert (seqs(page), page.truncated) == (wanted, False), (since, limit)
            assert all(body == b'{"n":%d}' % seq for seq, body in page.events)
            assert page.position.seq == 60


async def test_the_count_bound_holds_far_back(make_broker: MakeBroker) -> None:
    broker = await make_broker(history_size=40)
    await publish_interleaved(broker, "gift-list:1", 100)
    lost = await broker.history("gift-list:1", 0, 10)
    assert (seqs(lost), lost.truncated, lost.has_more) == (list(range(61, 71)), True, True)
    kept = await broker.history("gift-list:1", 60, 10)
    assert (seqs(kept), kept.truncated) == (list(range(61, 71)), False)
    rest = await broker.history("gift-list:1", 70, 100)
    assert (seqs(rest), rest.has_more) == (list(range(71, 101)), False)


async def test_the_age_bound_holds_far_back(make_broker: MakeBroker) -> None:
    broker = await make_broker(history_age=0.4)
    await publish_interleaved(broker, "gift-list:1", 30)
    await asyncio.sleep(0.6)  # the condition under test is time passing
    for n in range(31, 51):
        assert await broker.publish("gift-list:1", b'{"n":%d}' % n) == n
    page = await broker.history("gift-list:1", 0, 100)
    assert (seqs(page), page.truncated) == (list(range(31, 51)), True)
    kept = await broker.history("gift-list:1", 30, 5)
    assert (seqs(kept), kept.truncated) == ([31, 32, 33, 34, 35], False)


async def test_a_page_stops_at_the_position_it_reports(make_broker: MakeBroker) -> None:
    broker = await make_broker()
    await publish_interleaved(broker, "gift-list:1", 20)
    page = await broker.history("gift-list:1", 0, 100)
    assert seqs(page) == list(range(1, 21))
    assert (page.position.seq, page.has_more, page.next_since) == (20, False, 20)
