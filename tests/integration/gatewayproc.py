"""Gateway nodes as real processes: ``python -m eventwire serve`` on a port of their own.

A test starts several on one broker, then kills one (SIGKILL: a crash, to
its clients and to the broker) or stops it (SIGTERM: a graceful shutdown).
Each node listens on a port the kernel picks (``--port 0``) and announces
it in the first line of its banner, so no port is ever raced for. Its log
goes to a file; ``log_tail()`` puts it in failure messages, and the
``start_node`` fixture prints every node's log after a test, which pytest shows
only when the test failed. The process itself is ``bench.servers.GatewayProcess``,
which the soak shares.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from bench.servers import GatewayProcess

__all__ = ["GatewayProcess", "StartNode", "start_node"]

StartNode = Callable[..., Awaitable["GatewayProcess"]]
"""``await start_node(broker_url, *serve_options)``: a node, stopped after the test."""


@pytest.fixture
async def start_node(tmp_path: Path) -> AsyncIterator[StartNode]:
    """Start gateway processes; after the test, stop them all and print their logs."""
    started: list[GatewayProcess] = []

    async def start(broker: str, *options: str) -> GatewayProcess:
        node = GatewayProcess(f"node-{len(started) + 1}", broker, tmp_path, *options)
        started.append(node)
        await node.start()
        return node

    try:
        yield start
    finally:
        for node in started:
            with contextlib.suppress(ProcessLookupError):
                await node.kill()
        for node in started:
            print(node.log_tail())
