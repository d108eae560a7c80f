"""A node on Redis under a burst of commands: a node restart's clients all subscribing at once."""

from __future__ import annotations

import asyncio
import re

from tests.integration.conftest import StartGateway, event
from tests.integration.redisproc import RedisProcess

BURST = 500
"""Commands at once: far more than the node keeps connections to Redis."""


async def test_a_burst_of_commands_waits_for_pooled_connections_instead_of_failing(
    redis_server: RedisProcess, start_gateway: StartGateway
) -> None:
    gateway = await start_gateway()
    topics = [f"room:{i}" for i in range(BURST)]
    published = await asyncio.gather(*(gateway.publish(event(t, 1)) for t in topics))
    positions = await asyncio.gather(*(gateway.broker.position(t) for t in topics))
    assert [p.seq for p in published] == [1] * BURST
    assert [p.seq for p in positions] == [1] * BURST
    clients = re.search(rb"connected_clients:(\d+)", redis_server.command("INFO", "clients"))
    assert clients is not None
    assert int(clients[1]) <= 64  # a bounded pool, not one connection per waiting command
