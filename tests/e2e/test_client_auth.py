"""The Python client with tokens: ?token=, refresh by get_token, refusals that end it."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from eventwire.client import Client
from eventwire.errors import ConnectionLost, PublishFailed
from tests.e2e.conftest import SECRET, StartGateway, auth, event, token

GRANTS = {"subscribe": ["room:*"]}


async def test_token_in_the_url_and_subscriptions_by_grant(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(**auth())
    async with Client(gateway.ws_url, token=token(gateway, "u1", **GRANTS)) as client:
        lobby = await client.subscribe("room:lobby")
        await gateway.publish(event("room:lobby"))
        assert (await anext(aiter(lobby))).topic == "room:lobby"


async def test_a_refused_token_ends_the_client_at_connect(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(**auth())
    with pytest.raises(ConnectionLost) as refused:
        await Client(gateway.ws_url, token="not-a-token").connect()
    assert refused.value.code == 4501
    assert "UNAUTHORIZED" in str(refused.value)


async def test_get_token_refreshes_before_the_grace_runs_out(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(**auth(jwt_leeway=0, token_expiry_grace=2))
    issued: list[str] = []
    refreshed = asyncio.Event()

    def get_token() -> str:
        ttl = 1 if not issued else 3600  # the first one lapses at once
        issued.append(token(gateway, "u1", ttl=ttl, **GRANTS))
        if len(issued) == 2:
            refreshed.set()
        return issued[-1]

    async with Client(gateway.ws_url, get_token=get_token) as client:
        lobby = await client.subscribe("room:lobby")
        await asyncio.wait_for(refreshed.wait(), 5)  # TOKEN_EXPIRED came; a new token was asked
        await asyncio.sleep(2.2)  # past the grace, when an unrefreshed client is closed
        await gateway.publish(event("room:lobby"))
        assert (await anext(aiter(lobby))).topic == "room:lobby"
        assert client.reconnects == 0


async def test_cli_mints_a_token_the_gateway_accepts(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(**auth())
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eventwire", "token", "create", "--sub", "user-1",
        "--subscribe", "room:*", "--ttl", "60",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "EVENTWIRE_JWT_SECRET": SECRET},
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err
    async with Client(gateway.ws_url, token=out.decode().strip()) as client:
        await client.subscribe("room:lobby")
        assert client.session_id is not None


async def test_client_publishes_over_its_socket_as_itself(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(**auth(client_publishable=["MESSAGE_POSTED"]))
    jwt = token(gateway, "u1", tenant="acme", subscribe=["room:*"], publish=["room:*"])
    async with Client(gateway.ws_url, token=jwt) as client:
        lobby = await client.subscribe("room:lobby")
        published = await client.publisher.emit(
            "room:lobby", "MESSAGE_POSTED", entity_id="m1", payload={"text": "hi"},
            user_id="someone-else",
        )  # fmt: skip
        assert (published.topic, published.seq) == ("room:lobby", 1)
        received = await anext(aiter(lobby))
        assert (received.data.user_id, received.data.tenant_id) == ("u1", "acme")  # overwritten
        with pytest.raises(PublishFailed) as refused:
            await client.publisher.emit("gift-list:1", "MESSAGE_POSTED", entity_id="m2")
        assert refused.value.code == "FORBIDDEN"
        with pytest.raises(PublishFailed) as not_allowed:
            await client.publisher.added("room:lobby", entity_id="m3", payload={})
        assert not_allowed.value.code == "FORBIDDEN"  # ADDED is not client-publishable


async def run_cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eventwire", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_cli_with_credentials(start_gateway: StartGateway) -> None:
    admin_key = "admin-key-for-tests-0123456789abcdefghij"
    gateway = await start_gateway(**auth(admin_key=admin_key))
    args = ["publish", "gift-list:1", "ADDED", "--entity-id", "g", "--url", gateway.url]
    code, _, err = await run_cli(*args)
    assert code == 1
    assert "UNAUTHORIZED" in err
    code, out, _ = await run_cli(*args, "--key", admin_key)
    assert (code, out.strip()) == (0, "published gift-list:1 ADDED seq=1")
    code, _, err = await run_cli("tail", "gift-list:*", "--token", "forged", "--url", gateway.url)
    assert code == 2
    assert "UNAUTHORIZED" in err
    user = token(gateway, "u1", subscribe=["gift-list:*"])  # grants are not admin rights
    code, _, err = await run_cli("tail", "gift-list:*", "--token", user, "--url", gateway.url)
    assert code == 2
    assert "INVALID_TOPIC" in err
