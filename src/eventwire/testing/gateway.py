"""A gateway for tests and scripts: started on a free local port, stopped afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from eventwire.server import Gateway, Settings

__all__ = ["running_gateway"]


@asynccontextmanager
async def running_gateway(**settings: Any) -> AsyncIterator[Gateway]:
    """Run a ``Gateway`` for the duration of an ``async with`` block.

    ``settings`` are ``eventwire.server.Settings`` fields; by default the
    gateway listens on ``127.0.0.1`` on a free port (``gateway.port``,
    ``gateway.url``, ``gateway.ws_url`` tell where) and shuts down within a
    second. It is ``insecure`` unless told otherwise: without a JWT key
    every connection may subscribe to anything, and without an API key the
    HTTP API is open; configure keys to test authentication. Pass ``port=``
    to take a given port, such as the one of a gateway just stopped, to test
    reconnection::

        async with running_gateway() as gateway:
            async with TestClient(gateway.ws_url) as client: ...
    """
    options: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "shutdown_grace": 1.0,
        "insecure": True,
    }
    gateway = Gateway(Settings(**{**options, **settings}))
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()
