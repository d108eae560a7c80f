"""Fixtures for end-to-end tests: real gateways on free ports, raw WebSocket peers.

With authentication: ``auth()`` gives settings with a JWT secret, ``token()``
mints a real token for a gateway, ``open_ws(gateway, token)`` passes it as
``?token=``, and ``closed()`` / ``barrier()`` wait for a close or for every
frame before a PONG, so that no test sleeps to learn what did not arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from eventwire.auth import mint
from eventwire.server import Gateway
from eventwire.testing import running_gateway

StartGateway = Callable[..., Awaitable[Gateway]]
TIMEOUT = 5.0
SECRET = "e2e-secret-for-tests-only-0123456789abcdef"
ADMIN_KEY = "admin-key-for-tests-only-0123456789abcdef"


@pytest.fixture
async def start_gateway() -> AsyncIterator[StartGateway]:
    """Start gateways with given settings on free ports; stop them after the test."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**settings: Any) -> Gateway:
            return await stack.enter_async_context(running_gateway(**settings))

        yield start


@pytest.fixture
async def gateway(start_gateway: StartGateway) -> Gateway:
    return await start_gateway()


@pytest.fixture
async def http(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=TIMEOUT) as client:
        yield client


async def recv(ws: ClientConnection, timeout: float = TIMEOUT) -> dict[str, Any]:
    """The next frame, decoded."""
    frame = await asyncio.wait_for(ws.recv(), timeout)
    decoded: dict[str, Any] = orjson.loads(frame)
    return decoded


async def command(
    ws: ClientConnection, event: str, request_id: str = "r1", payload: Any = None
) -> None:
    await ws.send(
        orjson.dumps(
            {
                "topic": "system",
                "event": event,
                "data": {"entity_id": request_id, "payload": payload},
            }
        ).decode()
    )


async def connect_ws(gateway: Gateway, token: str | None = None, **kwargs: Any) -> ClientConnection:
    """A connected WebSocket, nothing read yet; ``token`` goes in ``?token=``."""
    url = gateway.ws_url if token is None else f"{gateway.ws_url}?token={token}"
    return await connect(url, open_timeout=TIMEOUT, **kwargs)


async def open_ws(gateway: Gateway, token: str | None = None, **kwargs: Any) -> ClientConnection:
    """A connected WebSocket whose CONNECTED frame has been read."""
    ws = await connect_ws(gateway, token, **kwargs)
    hello = await recv(ws)
    assert hello["event"] == "CONNECTED", hello
    return ws


async def subscribe(ws: ClientConnection, *topics: str, request_id: str = "sub") -> dict[str, Any]:
    """Subscribe and return the SUBSCRIBED frame."""
    await command(ws, "SUBSCRIBE", request_id, {"topics": list(topics)})
    reply = await recv(ws)
    assert reply["event"] == "SUBSCRIBED", reply
    return reply


def event(topic: str = "gift-list:123", kind: str = "ADDED", **data: Any) -> dict[str, Any]:
    """A publishable event with the seed's shape."""
    body: dict[str, Any] = {
        "entity_id": "gift-456",
        "payload": {"id": "gift-456", "name": "New Gift"},
    }
    body.update(data)
    return {"topic": topic, "event": kind, "data": body}


# --- authentication --------------------------------------------------------------


def auth(**settings: Any) -> dict[str, Any]:
    """Gateway settings with authentication on (an HS256 secret), plus ``settings``."""
    return {"jwt_secret": SECRET, **settings}


def token(gateway: Gateway, sub: str = "u1", **claims: Any) -> str:
    """A real token the gateway accepts (unless the claims say otherwise)."""
    return mint(gateway.settings, sub=sub, **claims)


async def authenticate(ws: ClientConnection, jwt: str, request_id: str = "auth") -> dict[str, Any]:
    """Send AUTH and return the AUTHENTICATED frame."""
    await command(ws, "AUTH", request_id, {"token": jwt})
    reply = await recv(ws)
    assert reply["event"] == "AUTHENTICATED", reply
    return reply


async def closed(ws: ClientConnection, timeout: float = TIMEOUT) -> tuple[int | None, list[Any]]:
    """Wait for the server to close ``ws``; return the close code and the frames before it."""
    frames: list[Any] = []
    try:
        while True:
            frames.append(await recv(ws, timeout))
    except ConnectionClosed:
        pass
    return ws.close_code, frames


async def barrier(ws: ClientConnection, request_id: str = "barrier") -> list[dict[str, Any]]:
    """PING, and return every frame that arrived before its PONG.

    Frames are handled in order, so once the PONG is in, every event the
    server had queued for this connection before it is in too.
    """
    await command(ws, "PING", request_id)
    frames: list[dict[str, Any]] = []
    while True:
        frame = await recv(ws)
        if frame["event"] == "PONG" and frame["data"]["entity_id"] == request_id:
            return frames
        frames.append(frame)


def error_of(frame: dict[str, Any]) -> dict[str, Any]:
    """The ``{code, message, details}`` of an ERROR frame."""
    assert (frame["topic"], frame["event"]) == ("error", "ERROR"), frame
    payload: dict[str, Any] = frame["data"]["payload"]
    return payload
