"""The presence contract, run against every broker: memory, Redis and NATS JetStream."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from eventwire.brokers import Broker, MemoryBroker, MemoryBus
from eventwire.testing.brokers import BrokerFactory
from eventwire.testing.presence import PresenceContract
from tests.integration.natsproc import NatsProcess
from tests.integration.redisproc import RedisProcess
from tests.integration.serverproc import running

_names = itertools.count(1)


class TestMemoryPresence(PresenceContract):
    @pytest.fixture
    def broker_factory(self) -> BrokerFactory:
        bus = MemoryBus()

        def make(*, history_size: int, history_age: float | None) -> Broker:
            return MemoryBroker(bus, all_topics=False)

        return make


class TestRedisPresence(PresenceContract):
    @pytest.fixture
    def broker_factory(self, redis_server: RedisProcess) -> BrokerFactory:
        pytest.importorskip("redis", reason="the Redis broker needs redis-py (eventwire[redis])")
        from eventwire.brokers.redis import RedisBroker

        prefix = f"presence{next(_names)}"

        def make(*, history_size: int, history_age: float | None) -> Broker:
            return RedisBroker(redis_server.url, prefix=prefix)

        return make


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsProcess]:
    with running(NatsProcess(tmp_path_factory.mktemp("nats"))) as server:
        yield server


class TestNatsPresence(PresenceContract):
    @pytest.fixture
    def broker_factory(self, nats_server: NatsProcess) -> BrokerFactory:
        pytest.importorskip("nats", reason="the NATS broker needs nats-py (eventwire[nats])")
        from eventwire.brokers.nats import NatsBroker

        n = next(_names)

        def make(*, history_size: int, history_age: float | None) -> Broker:
            return NatsBroker(nats_server.url, stream=f"PRESENCE{n}", prefix=f"presence{n}")

        return make
