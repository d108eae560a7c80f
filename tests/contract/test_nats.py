"""The broker contract, run against NATS JetStream: nodes on one stream of a test's own."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from eventwire.brokers import Broker
from eventwire.testing.brokers import BrokerContract, BrokerFactory, HistoryContract
from tests.integration.natsproc import NatsProcess
from tests.integration.serverproc import running

pytest.importorskip("nats", reason="the NATS broker needs nats-py (eventwire[nats])")

_streams = itertools.count(1)


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsProcess]:
    with running(NatsProcess(tmp_path_factory.mktemp("nats"))) as server:
        yield server


class TestNatsBroker(BrokerContract, HistoryContract):
    @pytest.fixture
    def broker_factory(self, nats_server: NatsProcess) -> BrokerFactory:
        from eventwire.brokers.nats import NatsBroker

        n = next(_streams)

        def make(*, history_size: int, history_age: float | None) -> Broker:
            return NatsBroker(
                nats_server.url,
                stream=f"CONTRACT{n}",
                prefix=f"contract{n}",
                history_size=history_size,
                history_age=history_age,
            )

        return make
