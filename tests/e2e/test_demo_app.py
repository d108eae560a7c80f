"""The /demo back end: a gift list whose every change is published as the seed's events."""

from __future__ import annotations

import httpx

from eventwire.server.demo_app import DEMO_LIST_TOPIC
from tests.e2e.conftest import StartGateway, open_ws, recv, subscribe


async def test_gift_list_changes_become_events(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(demo=True)
    async with await open_ws(gateway) as ws, httpx.AsyncClient(base_url=gateway.url) as http:
        await subscribe(ws, DEMO_LIST_TOPIC)
        added = await http.post("/demo/api/gifts", json={"name": "Kite", "price": 19.5})
        assert added.status_code == 201
        gift = added.json()
        assert (gift["status"], gift["name"]) == ("available", "Kite")
        event = await recv(ws)
        assert (event["event"], event["data"]["entity_id"]) == ("ADDED", gift["id"])
        assert event["data"]["payload"] == gift  # full DTO

        await http.patch(f"/demo/api/gifts/{gift['id']}", json={"name": "Red kite"})
        event = await recv(ws)
        assert event["event"] == "UPDATED"
        assert set(event["data"]["payload"]) == {"name", "updated_at"}  # partial

        bought = await http.post(
            f"/demo/api/gifts/{gift['id']}/purchase", json={"purchased_by": "ann"}
        )
        assert bought.json()["status"] == "purchased"
        status, custom = await recv(ws), await recv(ws)
        assert status["event"] == "STATUS_CHANGED"
        assert status["data"]["payload"] == {
            "id": gift["id"],
            "old_status": "available",
            "new_status": "purchased",
            "purchased_by": "ann",
        }
        assert custom["event"] == "GIFT_PURCHASED"
        again = await http.post(
            f"/demo/api/gifts/{gift['id']}/purchase", json={"purchased_by": "bo"}
        )
        assert (again.status_code, again.json()["code"]) == (422, "VALIDATION_ERROR")

        listed = (await http.get("/demo/api/gifts")).json()["gifts"]
        assert [g["name"] for g in listed] == ["Red kite"]
        await http.delete(f"/demo/api/gifts/{gift['id']}")
        deleted = await recv(ws)
        assert (deleted["event"], deleted["data"]["payload"], deleted["seq"]) == (
            "DELETED",
            None,
            5,
        )

        missing = await http.delete("/demo/api/gifts/gift-999")
        assert (missing.status_code, missing.json()["code"]) == (404, "NOT_FOUND")
        bad = await http.post("/demo/api/gifts", json={"name": ""})
        assert bad.json()["details"]["field"] == "name"


async def test_demo_routes_exist_only_in_demo_mode(start_gateway: StartGateway) -> None:
    gateway = await start_gateway()
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        assert (await http.get("/demo/api/gifts")).status_code == 404
