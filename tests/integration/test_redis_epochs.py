"""Epochs on a real Redis: a flush can never bring back seq 1 under the old epoch."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from eventwire.brokers import Position
from eventwire.brokers.redis import RedisBroker
from eventwire.testing.brokers import Received
from tests.integration.conftest import TIMEOUT
from tests.integration.redisproc import RedisProcess


class Resets:
    def __init__(self) -> None:
        self.seen: list[tuple[str, Position]] = []

    def __call__(self, topic: str, position: Position) -> None:
        self.seen.append((topic, position))


@pytest.fixture
async def brokers(redis_server: RedisProcess) -> AsyncIterator[list[RedisBroker]]:
    made = [RedisBroker(redis_server.url), RedisBroker(redis_server.url)]
    yield made
    for broker in made:
        await broker.close()


async def test_flushall_gives_a_topic_a_new_epoch_and_followers_are_told(
    redis_server: RedisProcess, brokers: list[RedisBroker]
) -> None:
    publisher, follower = brokers
    received, resets = Received(), Resets()
    await publisher.start(Received())
    await follower.start(received, resets)
    await follower.add_interest("gift-list:1")
    for _ in range(3):
        await publisher.publish("gift-list:1", b"{}")
    before = await publisher.position("gift-list:1")
    assert before.seq == 3

    assert redis_server.command("FLUSHALL") == b"+OK\r\n"
    assert await publisher.publish("gift-list:1", b'{"after":1}') == 1
    after = await publisher.position("gift-list:1")
    assert after.seq == 1
    assert after.epoch != before.epoch

    await received.wait(lambda: len(received.events) == 4, TIMEOUT, "the event after the flush")
    assert received.seqs("gift-list:1") == [1, 2, 3, 1]
    assert resets.seen == [("gift-list:1", Position(0, after.epoch))]
    assert follower.counters()["epoch_changes"] == 1
    page = await follower.history("gift-list:1", 0, 10)
    assert (list(page.events), page.position) == ([(1, b'{"after":1}')], after)


async def test_the_epoch_of_an_empty_topic_holds_through_its_first_publish(
    brokers: list[RedisBroker],
) -> None:
    broker, _ = brokers
    await broker.start(Received())
    seen = await broker.position("room:new")
    assert seen.seq == 0
    await broker.publish("room:new", b"{}")
    assert await broker.position("room:new") == (1, seen.epoch)
