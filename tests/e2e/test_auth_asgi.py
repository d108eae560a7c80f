"""The ASGI path makes the same handshake and token checks as the native listener."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from eventwire.server import Gateway, Settings
from tests.e2e.conftest import (
    TIMEOUT,
    auth,
    authenticate,
    closed,
    error_of,
    event,
    recv,
    subscribe,
    token,
)

Serve = Callable[..., Awaitable[tuple[Gateway, str]]]


@pytest.fixture
async def serve_asgi() -> AsyncIterator[Serve]:
    """Serve ``Gateway(Settings(**settings)).asgi`` with uvicorn; yields its ws:// URL."""
    servers: list[tuple[uvicorn.Server, asyncio.Task[None], socket.socket]] = []

    async def serve(**settings: Any) -> tuple[Gateway, str]:
        gateway = Gateway(Settings(shutdown_grace=1.0, insecure=True, **settings))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(
            gateway.asgi, ws="websockets-sansio", lifespan="on", log_level="warning"
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        servers.append((server, task, sock))
        while not server.started:  # uvicorn offers no awaitable for this
            await asyncio.sleep(0.01)
            assert not task.done(), "uvicorn failed to start"
        return gateway, f"ws://127.0.0.1:{sock.getsockname()[1]}/ws"

    yield serve
    for server, task, sock in servers:
        server.should_exit = True
        await asyncio.wait_for(task, TIMEOUT)
        sock.close()


async def _open(url: str, jwt: str | None = None, **kwargs: Any) -> ClientConnection:
    return await connect(url if jwt is None else f"{url}?token={jwt}", **kwargs)


async def test_asgi_token_in_the_url(serve_asgi: Serve) -> None:
    gateway, url = await serve_asgi(**auth())
    async with await _open(url, token(gateway, "u1", subscribe=["room:*"])) as ws:
        hello = await recv(ws)
        assert hello["data"]["payload"]["user_id"] == "u1"
        await subscribe(ws, "room:lobby")
        await gateway.publish(event("room:lobby"))
        assert (await recv(ws))["topic"] == "room:lobby"
    async with await _open(url, "garbage") as refused:
        code, [refusal] = await closed(refused)
    assert (code, error_of(refusal)["code"]) == (4501, "UNAUTHORIZED")


async def test_asgi_auth_and_timeout(serve_asgi: Serve) -> None:
    gateway, url = await serve_asgi(**auth(auth_timeout=0.2))
    async with await _open(url) as ws:
        assert (await recv(ws))["event"] == "CONNECTED"
        await authenticate(ws, token(gateway, "u1"))
    async with await _open(url) as idle:
        assert (await recv(idle))["event"] == "CONNECTED"
        assert (await closed(idle))[0] == 4003


async def test_asgi_origin_and_caps_refuse_the_handshake(serve_asgi: Serve) -> None:
    _, url = await serve_asgi(allowed_origins=["https://app.example.com"], max_connections_per_ip=1)
    with pytest.raises(InvalidStatus) as refused:
        await _open(url, origin="https://evil.example.com")
    assert refused.value.response.status_code == 403
    async with await _open(url, origin="https://app.example.com") as ws:
        assert (await recv(ws))["event"] == "CONNECTED"
        with pytest.raises(InvalidStatus) as over:
            await _open(url)
        assert over.value.response.status_code == 429
