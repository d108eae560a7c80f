"""The broker contract, run against the in-memory broker: nodes of one MemoryBus."""

from __future__ import annotations

import pytest

from eventwire.brokers import Broker, MemoryBroker, MemoryBus
from eventwire.testing.brokers import BrokerContract, BrokerFactory, HistoryContract


class TestMemoryBroker(BrokerContract, HistoryContract):
    @pytest.fixture
    def broker_factory(self) -> BrokerFactory:
        bus: MemoryBus | None = None

        def make(*, history_size: int, history_age: float | None) -> Broker:
            nonlocal bus
            if bus is None:
                bus = MemoryBus(history_size=history_size, history_age=history_age)
            return MemoryBroker(bus, all_topics=False)

        return make
