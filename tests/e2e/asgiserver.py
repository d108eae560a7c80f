"""An ASGI app served by uvicorn on a free port, for the tests of the mounted gateway."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from fastapi import FastAPI

from eventwire.server import Gateway, Settings
from tests.e2e.conftest import TIMEOUT

__all__ = ["PREFIX", "mounted_gateway", "served"]

PREFIX = "/realtime"


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """Serve ``app`` (with its lifespan) on 127.0.0.1; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, ws="websockets-sansio", lifespan="on", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:  # uvicorn offers no awaitable for this
            await asyncio.sleep(0.01)
            assert not task.done(), "uvicorn failed to start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, TIMEOUT)
        sock.close()


@contextlib.asynccontextmanager
async def mounted_gateway(**settings: Any) -> AsyncIterator[tuple[str, Gateway]]:
    """A gateway with ``settings`` (insecure by default) mounted at ``PREFIX`` in a FastAPI app.

    Yields the app's base URL and the gateway.
    """
    gateway = Gateway(Settings(**{"insecure": True, **settings}))
    app = FastAPI(lifespan=gateway.lifespan)
    app.mount(PREFIX, gateway.asgi)
    async with served(app) as url:
        yield url, gateway
