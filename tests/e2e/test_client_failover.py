"""A client given several gateway URLs connects to one that answers, and moves on when it dies."""

from __future__ import annotations

import socket

import pytest

from eventwire.client import Client, GatewayUnreachable, InProcessPublisher
from eventwire.client.connection import open_connection, with_token
from eventwire.codes import CloseCode
from eventwire.errors import ConnectionLost
from eventwire.testing import TestClient
from tests.e2e.conftest import TIMEOUT, StartGateway, auth


def dead_url() -> str:
    """The URL of a port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"ws://127.0.0.1:{probe.getsockname()[1]}/ws"


async def test_connect_skips_a_gateway_that_does_not_answer(start_gateway: StartGateway) -> None:
    gateway = await start_gateway()
    async with TestClient([dead_url(), gateway.ws_url]) as client:
        assert client.url == gateway.ws_url
        sub = await client.subscribe("room:lobby")
        await InProcessPublisher(gateway).emit("room:lobby", "USER_JOINED", entity_id="u1")
        assert (await client.expect("room:lobby", timeout=TIMEOUT)).entity_id == "u1"
        assert sub.active


async def test_no_gateway_answering_is_one_error_naming_each() -> None:
    urls = [dead_url(), dead_url()]
    with pytest.raises(GatewayUnreachable, match="no gateway answered") as refused:
        await Client(urls, connect_timeout=TIMEOUT).connect()
    assert all(url in str(refused.value) for url in urls)


async def test_a_refusal_for_good_is_not_tried_elsewhere(start_gateway: StartGateway) -> None:
    guarded, other = await start_gateway(**auth()), await start_gateway()
    with pytest.raises(ConnectionLost) as refused:
        await Client([guarded.ws_url, other.ws_url], token="not-a-token").connect()
    assert refused.value.code == CloseCode.UNAUTHORIZED  # another node would refuse it too


async def test_when_its_node_stops_the_client_resumes_on_the_next_one(
    start_gateway: StartGateway,
) -> None:
    first, second = await start_gateway(), await start_gateway()
    async with TestClient([first.ws_url, second.ws_url]) as client:
        sub = await client.subscribe("room:lobby")
        await first.stop()  # closes every client with 1001
        notice = await client.reconnected(since=0, timeout=TIMEOUT)
        assert notice.close_code == CloseCode.GOING_AWAY
        assert client.url == second.ws_url
        # Each node here has a memory broker of its own: other history, other epoch,
        # so the client says what it cannot recover rather than mix two sequences up.
        assert [(gap.topic, gap.history_lost) for gap in notice.gaps] == [("room:lobby", True)]
        await InProcessPublisher(second).emit("room:lobby", "USER_JOINED", entity_id="u2")
        assert (await client.expect("room:lobby", timeout=TIMEOUT)).entity_id == "u2"
        assert sub.active


async def test_an_unreachable_gateway_is_reported_without_the_token() -> None:
    url = with_token(dead_url(), "secret.jwt.value")
    with pytest.raises(GatewayUnreachable) as unreachable:
        await open_connection(url, timeout=1.0)
    assert "secret" not in str(unreachable.value)
    assert "token=***" in str(unreachable.value)
