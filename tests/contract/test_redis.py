"""The broker contract, run against Redis: nodes under one key prefix of a test's own."""

from __future__ import annotations

import itertools

import pytest

from eventwire.brokers import Broker
from eventwire.testing.brokers import BrokerContract, BrokerFactory, HistoryContract
from tests.integration.redisproc import RedisProcess

pytest.importorskip("redis", reason="the Redis broker needs redis-py (eventwire[redis])")

_prefixes = itertools.count(1)


class TestRedisBroker(BrokerContract, HistoryContract):
    @pytest.fixture
    def broker_factory(self, redis_server: RedisProcess) -> BrokerFactory:
        from eventwire.brokers.redis import RedisBroker

        prefix = f"contract{next(_prefixes)}"

        def make(*, history_size: int, history_age: float | None) -> Broker:
            return RedisBroker(
                redis_server.url, prefix=prefix, history_size=history_size, history_age=history_age
            )

        return make
