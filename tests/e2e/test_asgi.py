"""The gateway mounted inside a FastAPI app, served by uvicorn: the documented example, run."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from eventwire.server import Gateway
from tests.e2e.asgiserver import served
from tests.e2e.conftest import command, recv

with pytest.MonkeyPatch.context() as environment:
    environment.setenv("EVENTWIRE_INSECURE", "1")  # the example reads its settings from there
    example = importlib.import_module("examples.fastapi_app")
app: FastAPI = example.app
gateway: Gateway = example.gateway


@pytest.fixture
async def served_app() -> AsyncIterator[str]:
    """The example app on a free port; yields its base URL."""
    async with served(app) as url:
        yield url


async def test_app_endpoint_publishes_in_process_to_mounted_websocket(served_app: str) -> None:
    ws_url = "ws" + served_app.removeprefix("http") + "/realtime/ws"
    async with connect(ws_url) as ws, httpx.AsyncClient(base_url=served_app) as http:
        assert (await recv(ws))["event"] == "CONNECTED"
        await command(ws, "SUBSCRIBE", "s", {"topics": ["gift-list:123"]})
        assert (await recv(ws))["event"] == "SUBSCRIBED"

        response = await http.post("/lists/123/gifts", json={"id": "gift-456", "name": "New Gift"})
        assert response.status_code == 200
        assert response.json()["seq"] == 1
        added = await recv(ws)
        assert (added["event"], added["seq"]) == ("ADDED", 1)
        assert added["data"]["payload"] == {"id": "gift-456", "name": "New Gift", "price": None}

        published = await http.post(
            "/realtime/v1/publish",
            json={"topic": "gift-list:123", "event": "DELETED", "data": {"entity_id": "gift-456"}},
        )
        assert published.json()["seq"] == 2
        deleted = await recv(ws)
        assert (deleted["event"], deleted["data"]["payload"]) == ("DELETED", None)

        refused = await http.post("/realtime/v1/publish", json={"topic": "system", "event": "X"})
        assert (refused.status_code, refused.json()["code"]) == (422, "RESERVED_TOPIC")
        assert (await http.get("/realtime/v1/topics/gift-list:123")).json()["subscribers"] == 1


async def test_mounted_websocket_errors_and_limits(served_app: str) -> None:
    ws_url = "ws" + served_app.removeprefix("http") + "/realtime/ws"
    async with connect(ws_url, max_size=None) as ws:
        await recv(ws)
        await ws.send("{nope")
        error = await recv(ws)
        assert error["data"]["payload"]["code"] == "INVALID_JSON"
        await ws.send("x" * (gateway.settings.max_frame + 1))
        with pytest.raises(ConnectionClosed):
            await recv(ws)
        assert ws.close_code == 1009


async def test_mounted_gateway_recovers_with_since_while_events_are_published(
    served_app: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.e2e.test_recovery import slow_reads

    topic = "gift-list:recovery"
    pages = slow_reads(gateway, monkeypatch)
    for n in range(1, 4):
        await gateway.publish({"topic": topic, "event": "DELETED", "data": {"entity_id": f"g{n}"}})
    epoch = (await gateway.broker.position(topic)).epoch

    async def publish_more() -> None:
        for n in range(4, 40):
            data = {"entity_id": f"g{n}"}
            await gateway.publish({"topic": topic, "event": "DELETED", "data": data})
            await asyncio.sleep(0.001)

    ws_url = "ws" + served_app.removeprefix("http") + "/realtime/ws"
    async with connect(ws_url) as ws:
        assert (await recv(ws))["event"] == "CONNECTED"
        since = {topic: {"seq": 1, "epoch": epoch}}
        publishing = asyncio.create_task(publish_more())
        await command(ws, "SUBSCRIBE", "s", {"topics": [topic], "since": since})
        reply = await recv(ws)
        assert reply["data"]["payload"]["recovered"] == {topic: True}
        await publishing
        seqs = [(await recv(ws))["seq"] for _ in range(2, 40)]
    assert pages
    assert seqs == list(range(2, 40))
