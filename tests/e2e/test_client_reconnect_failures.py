"""Reconnection that fails: a token provider down, a handshake forbidden, a node that flaps.

Each ends one of two ways, never a third: the client keeps retrying (and
comes back), or it gives up for good, with its failure raised to every
waiter and every subscription ended. A client that looks alive but no
longer reconnects is the bug these tests guard against.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from websockets.asyncio.server import ServerConnection, serve

from eventwire.client import Client, GatewayUnreachable, HandshakeForbidden, InProcessPublisher
from eventwire.envelope import Event, utc_now
from eventwire.errors import ConnectionLost
from eventwire.protocol.frames import system_frame
from eventwire.server import Gateway
from tests.e2e.conftest import TIMEOUT, StartGateway

ALLOWED = "https://app.example.com"


def restart(gateway: Gateway) -> None:
    """Close every client connection as a restarting node does (1012: come back)."""
    for connection in list(gateway.connections):
        connection.close(1012, "restart")


async def test_a_failing_get_token_is_retried_until_it_answers(start_gateway: StartGateway) -> None:
    gateway = await start_gateway()
    calls = 0
    provider_down = True
    failed_several_times = asyncio.Event()

    def get_token() -> str:
        nonlocal calls
        calls += 1
        if calls > 1 and provider_down:
            if calls >= 4:
                failed_several_times.set()
            raise RuntimeError("identity provider down")
        return "token"

    client = Client(gateway.ws_url, get_token=get_token, backoff_initial=0.01, backoff_max=0.05)
    await client.connect()
    try:
        sub = await client.subscribe("room:a")
        restart(gateway)
        await asyncio.wait_for(failed_several_times.wait(), TIMEOUT)
        assert sub.active  # several attempts failed on the provider, none ended the client
        assert not client.connected
        provider_down = False
        notice = await client.reconnected(since=0, timeout=TIMEOUT)
        assert notice.close_code == 1012
        await InProcessPublisher(gateway).emit("room:a", "USER_JOINED", entity_id="u1")
        assert (await asyncio.wait_for(anext(sub), TIMEOUT)).entity_id == "u1"
    finally:
        await client.close()


async def test_a_get_token_failure_on_connect_is_unreachable_naming_the_cause(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway()

    def get_token() -> str:
        raise RuntimeError("identity provider down")

    with pytest.raises(GatewayUnreachable, match="identity provider down") as failed:
        await Client(gateway.ws_url, get_token=get_token).connect()
    assert isinstance(failed.value.__cause__, RuntimeError)


class BrokenClient(Client):
    """A client whose own code fails on the first event: a bug, not a network failure."""

    def _deliver(self, event: Event) -> None:
        raise RuntimeError("bug in the client")


async def test_a_failure_of_the_client_itself_ends_it_for_good(start_gateway: StartGateway) -> None:
    gateway = await start_gateway()
    async with BrokenClient(gateway.ws_url) as client:
        sub = await client.subscribe("room:a")
        waiting = asyncio.ensure_future(client.reconnected())
        await InProcessPublisher(gateway).emit("room:a", "USER_JOINED", entity_id="u1")
        with pytest.raises(ConnectionLost, match="bug in the client"):
            await asyncio.wait_for(anext(sub), TIMEOUT)
        with pytest.raises(ConnectionLost, match="bug in the client"):
            await asyncio.wait_for(waiting, TIMEOUT)
        assert not sub.active
        assert not client.connected
        with pytest.raises(ConnectionLost, match="bug in the client"):
            await client.subscribe("room:b")


async def test_a_forbidden_origin_is_refused_for_good_on_no_other_node(
    start_gateway: StartGateway,
) -> None:
    guarded = await start_gateway(allowed_origins=[ALLOWED])
    other = await start_gateway()
    client = Client([guarded.ws_url, other.ws_url], origin="https://evil.example.org")
    with pytest.raises(HandshakeForbidden) as refused:
        await client.connect()
    assert refused.value.status == 403
    assert refused.value.code is None
    assert client.url == guarded.ws_url  # the other node was not tried
    async with Client(guarded.ws_url, origin=ALLOWED) as allowed:
        assert allowed.connected


async def test_a_forbidden_handshake_on_reconnection_ends_the_client(
    start_gateway: StartGateway,
) -> None:
    open_node = await start_gateway()
    guarded = await start_gateway(allowed_origins=[ALLOWED])
    client = Client(
        [open_node.ws_url, guarded.ws_url], origin="https://evil.example.org", backoff_initial=0.01
    )
    await client.connect()
    try:
        sub = await client.subscribe("room:a")
        restart(open_node)  # the next attempt goes to the guarded node
        with pytest.raises(HandshakeForbidden):
            await client.reconnected(since=0, timeout=TIMEOUT)
        with pytest.raises(HandshakeForbidden):
            await asyncio.wait_for(anext(sub), TIMEOUT)
        assert client.url == guarded.ws_url
    finally:
        await client.close()


async def test_a_connection_cap_stays_retryable(start_gateway: StartGateway) -> None:
    capped = await start_gateway(max_connections_per_ip=1)
    other = await start_gateway()
    async with Client(capped.ws_url), Client([capped.ws_url, other.ws_url]) as second:
        assert second.url == other.ws_url  # HTTP 429 on the first: the next node was tried


@asynccontextmanager
async def flapping_node(connections: list[float]) -> AsyncIterator[str]:
    """A node that greets each connection, then closes it with 1011 at once."""

    async def handle(ws: ServerConnection) -> None:
        connections.append(time.monotonic())
        await ws.send(system_frame("CONNECTED", "s1", {"session_id": "s1"}, utc_now()), text=True)
        await ws.close(1011, "internal error")

    async with serve(handle, "127.0.0.1", 0) as server:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ws"


async def connections_in_a_second(stable_after: float) -> int:
    connections: list[float] = []
    async with flapping_node(connections) as url:
        client = Client(url, backoff_initial=0.01, backoff_max=30.0, stable_after=stable_after)
        await client.connect()
        await asyncio.sleep(1.0)  # the measurement window itself
        await client.close()
    return len(connections)


async def test_a_node_that_closes_at_once_is_retried_ever_more_slowly() -> None:
    slowed = await connections_in_a_second(stable_after=5.0)
    # Ceilings 10, 20, 40 ... ms: about 8 attempts fit in a second; without
    # the rule each would wait at most 10 ms, a hundred connections a second.
    assert 2 <= slowed <= 15
    reset_every_time = await connections_in_a_second(stable_after=0.0)
    assert reset_every_time > 2 * slowed
