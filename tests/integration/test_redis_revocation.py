"""A revocation sent to one node ends the user's connections on every node."""

from __future__ import annotations

import asyncio

import httpx
import orjson
from websockets.asyncio.client import connect

from eventwire.auth import mint
from eventwire.codes import CloseCode
from tests.integration.conftest import StartGateway

SECRET = "integration-secret-0123456789abcdefghij"
ADMIN_KEY = "integration-admin-key-0123456789abcdefghij"


async def test_revoking_on_node_a_closes_the_user_on_node_b(start_gateway: StartGateway) -> None:
    settings = {"jwt_secret": SECRET, "admin_key": ADMIN_KEY}
    a, b = await start_gateway(**settings), await start_gateway(**settings)
    token = mint(b.settings, sub="u1", subscribe=["room:*"], ttl=600)
    async with connect(f"{b.ws_url}?token={token}") as ws:
        hello = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        assert hello["event"] == "CONNECTED"
        async with httpx.AsyncClient(base_url=a.url) as http:
            answer = await http.post(
                "/v1/revoke",
                json={"user_id": "u1"},
                headers={"authorization": f"Bearer {ADMIN_KEY}"},
            )
        assert answer.status_code == 200
        assert answer.json() == {"connections": 0, "subscriptions": 0}  # none on node A
        async with asyncio.timeout(1.0):  # "within a second", on the other node
            revoked = orjson.loads(await ws.recv())
            await ws.wait_closed()
    assert revoked["data"]["payload"]["code"] == "REVOKED"
    assert ws.close_code == CloseCode.REVOKED


async def test_a_node_that_starts_later_still_refuses_a_revoked_token(
    start_gateway: StartGateway,
) -> None:
    """A node started (or a worker restarted) after a revocation learns it from history."""
    settings = {"jwt_secret": SECRET, "admin_key": ADMIN_KEY}
    a = await start_gateway(**settings)
    revoked_token = mint(a.settings, sub="u1", subscribe=["room:*"], ttl=600)
    other_token = mint(a.settings, sub="u2", subscribe=["room:*"], ttl=600)
    async with httpx.AsyncClient(base_url=a.url) as http:
        answer = await http.post(
            "/v1/revoke",
            json={"user_id": "u1", "block_for": 300},
            headers={"authorization": f"Bearer {ADMIN_KEY}"},
        )
    assert answer.status_code == 200
    late = await start_gateway(**settings)
    async with connect(f"{late.ws_url}?token={revoked_token}") as ws:
        refused = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        await asyncio.wait_for(ws.wait_closed(), 5)
    assert refused["data"]["payload"]["code"] == "REVOKED"
    assert ws.close_code == CloseCode.REVOKED
    async with connect(f"{late.ws_url}?token={other_token}") as ws:
        hello = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
    assert hello["event"] == "CONNECTED"
