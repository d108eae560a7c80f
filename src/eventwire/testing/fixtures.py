"""The plugin's fixtures, declared with pytest-asyncio (imported only when it is active)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from eventwire.server import Gateway
from eventwire.testing.client import ClientFactory, TestClient
from eventwire.testing.gateway import running_gateway

__all__ = ["eventwire_client", "eventwire_gateway"]


@pytest_asyncio.fixture
async def eventwire_gateway(request: pytest.FixtureRequest) -> AsyncIterator[Gateway]:
    """A started gateway on a free port of 127.0.0.1, stopped after the test.

    ``@pytest.mark.eventwire(payload_max=1024)`` passes settings to it.
    """
    marker = request.node.get_closest_marker("eventwire")
    settings: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    async with running_gateway(**settings) as gateway:
        yield gateway


@pytest_asyncio.fixture
async def eventwire_client(eventwire_gateway: Gateway) -> AsyncIterator[ClientFactory]:
    """A factory of connected TestClients (of ``eventwire_gateway`` by default), closed after."""
    clients: list[TestClient] = []

    async def connect(url: str | None = None, **options: Any) -> TestClient:
        client = TestClient(url or eventwire_gateway.ws_url, **options)
        await client.connect()
        clients.append(client)
        return client

    yield connect
    for client in clients:
        await client.close()
