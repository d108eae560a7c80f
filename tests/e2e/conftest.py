"""Fixtures for end-to-end tests: real gateways on free ports, raw WebSocket peers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from eventwire.server import Gateway
from eventwire.testing import running_gateway

StartGateway = Callable[..., Awaitable[Gateway]]
TIMEOUT = 5.0


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


async def open_ws(gateway: Gateway, **kwargs: Any) -> ClientConnection:
    """A connected WebSocket whose CONNECTED frame has been read."""
    ws = await connect(gateway.ws_url, open_timeout=TIMEOUT, **kwargs)
    hello = await recv(ws)
    assert hello["event"] == "CONNECTED"
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
