"""Either broker server, for the tests that run the same scenario on Redis and on NATS.

``broker_server`` is parametrized: ``redis`` (a redis-server that keeps
nothing), ``redis-aof`` (one that writes every command to its append-only
file before answering, so a restart keeps every acknowledged publish) and
``nats`` (nats-server -js; JetStream keeps its files across a restart).
A test picks the kinds it runs with ``@pytest.mark.parametrize("broker_server",
[...], indirect=True)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.natsproc import NatsProcess
from tests.integration.redisproc import RedisProcess
from tests.integration.serverproc import running

__all__ = ["BrokerServer", "DurableRedisProcess", "broker_server"]

BrokerServer = RedisProcess | NatsProcess


class DurableRedisProcess(RedisProcess):
    """A redis-server whose append-only file is written and synced before every reply."""

    def args(self) -> list[str]:
        return [*super().args(), "--appendonly", "yes", "--appendfsync", "always"]


@pytest.fixture(params=["redis", "nats"])
def broker_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BrokerServer]:
    """A broker server of the kind the test is parametrized with, killed after the test."""
    kind: str = request.param
    server: BrokerServer
    if kind == "nats":
        pytest.importorskip("nats", reason="the NATS broker needs nats-py (eventwire[nats])")
        server = NatsProcess(tmp_path)
    elif kind == "redis-aof":
        server = DurableRedisProcess(tmp_path)
    else:
        server = RedisProcess(tmp_path)
    with running(server):
        yield server
