"""A gateway with an event catalog: every publish checked once, on every path; lint; routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from eventwire.catalog import Catalog, CatalogLoadError
from eventwire.catalog.export import dumps, loads
from eventwire.client import InProcessPublisher, Publisher, Sender
from eventwire.errors import PublishFailed
from eventwire.server import Gateway, Settings, load_settings
from tests.e2e.conftest import (
    TIMEOUT,
    StartGateway,
    auth,
    barrier,
    command,
    error_of,
    open_ws,
    recv,
    subscribe,
    token,
)

DEMO = "eventwire.demo:catalog"
GIFT: dict[str, Any] = {
    "id": "gift-456",
    "name": "Board game",
    "price": 29.99,
    "status": "available",
    "created_at": "2023-01-01T00:00:00Z",
    "updated_at": "2023-01-02T00:00:00Z",
}


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str


OPEN = Catalog("open-notes")
"""An open resource (``note``) beside the demo's strict ones; loaded as ``{__name__}:OPEN``."""
OPEN.resource("note", description="Notes; open: custom events pass").event(
    "NOTE_ADDED", Note, description="A note was added.", example={"text": "hi"}
)


def gift_event(kind: str = "ADDED", payload: Any = None, **fields: Any) -> dict[str, Any]:
    data = {"entity_id": "gift-456", "payload": GIFT if payload is None else payload}
    return {"topic": "gift-list:123", "event": kind, "data": {**data, **fields}}


def fields_of(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "VALIDATION_ERROR"
    return {e["field"]: e["error"] for e in body["details"]["errors"]}


@pytest.fixture
async def demo(start_gateway: StartGateway) -> Gateway:
    return await start_gateway(catalog=DEMO)


@pytest.fixture
async def http(demo: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the demo-catalog gateway (this module's ``http``)."""
    async with httpx.AsyncClient(base_url=demo.url, timeout=TIMEOUT) as client:
        yield client


# --- validation over HTTP -------------------------------------------------------------


async def test_an_invalid_payload_names_every_field(http: httpx.AsyncClient) -> None:
    payload = {
        "id": "gift-456",
        "status": "lost",
        "price": "29.99",
        "colour": "red",
        "created_at": "soon",
    }
    response = await http.post("/v1/publish", json=gift_event(payload=payload))
    errors = fields_of(response)
    assert errors["data.payload.name"] == "required"
    assert errors["data.payload.colour"] == "unknown field"
    assert "data.payload.status" in errors
    assert "data.payload.price" in errors  # strict JSON: "29.99" is not a price
    assert "data.payload.created_at" in errors
    details = response.json()["details"]
    assert (details["field"], details["error"]) == next(iter(errors.items()))  # the seed's shape


async def test_valid_events_pass_and_reach_subscribers(
    demo: Gateway, http: httpx.AsyncClient
) -> None:
    async with await open_ws(demo) as ws:
        await subscribe(ws, "gift-list:123")
        assert (await http.post("/v1/publish", json=gift_event())).status_code == 200
        assert (await recv(ws))["data"]["payload"] == GIFT


async def test_a_strict_resource_refuses_undeclared_event_types(http: httpx.AsyncClient) -> None:
    errors = fields_of(await http.post("/v1/publish", json=gift_event("GIFT_WRAPPED")))
    assert list(errors) == ["event"]
    assert "GIFT_WRAPPED is not declared for gift-list" in errors["event"]


async def test_an_open_resource_accepts_custom_events(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(catalog=f"{__name__}:OPEN")
    note = {"topic": "note:1", "data": {"entity_id": "n-1", "payload": {"text": "hi"}}}
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        pinned = await http.post("/v1/publish", json={**note, "event": "NOTE_PINNED"})
        assert pinned.status_code == 200  # undeclared: let through
        wrong = {**note, "event": "NOTE_ADDED", "data": {"entity_id": "n-1", "payload": {}}}
        assert fields_of(await http.post("/v1/publish", json=wrong)) == {
            "data.payload.text": "required"  # declared ones are still checked
        }


async def test_a_forbidden_transition_is_refused(http: httpx.AsyncClient) -> None:
    change = {"id": "gift-456", "old_status": "purchased", "new_status": "available"}
    errors = fields_of(await http.post("/v1/publish", json=gift_event("STATUS_CHANGED", change)))
    assert errors == {
        "data.payload.new_status": "'purchased' is final: no transition from it is allowed"
    }
    allowed = {**change, "old_status": "available", "new_status": "purchased"}
    ok = await http.post("/v1/publish", json=gift_event("STATUS_CHANGED", allowed))
    assert ok.status_code == 200


async def test_deleted_carries_no_payload(http: httpx.AsyncClient) -> None:
    errors = fields_of(await http.post("/v1/publish", json=gift_event("DELETED", {"id": "x"})))
    assert errors == {"data.payload": "must be null: DELETED carries no payload"}
    deleted = {"topic": "gift-list:123", "event": "DELETED", "data": {"entity_id": "gift-456"}}
    assert (await http.post("/v1/publish", json=deleted)).status_code == 200


async def test_a_partial_update_is_a_merge_patch(http: httpx.AsyncClient) -> None:
    patch = {"name": "Updated Gift", "updated_at": "2023-01-02T00:00:00Z"}
    assert (await http.post("/v1/publish", json=gift_event("UPDATED", patch))).status_code == 200
    errors = fields_of(await http.post("/v1/publish", json=gift_event("UPDATED", {"name": None})))
    assert list(errors) == ["data.payload.name"]  # a patch cannot remove a required field


async def test_a_batch_is_refused_whole_naming_the_event(
    demo: Gateway, http: httpx.AsyncClient
) -> None:
    bad = gift_event(payload={**GIFT, "name": ""})
    response = await http.post("/v1/publish", json={"events": [gift_event(), bad]})
    assert list(fields_of(response)) == ["events.1.data.payload.name"]
    assert (await demo.broker.position("gift-list:123")).seq == 0  # nothing was published


async def test_a_catalog_file_checks_the_same_fields(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    from eventwire.demo import catalog

    path = tmp_path / "catalog.json"
    path.write_bytes(dumps(catalog))
    gateway = await start_gateway(catalog=str(path))
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        payload = {"id": "gift-456", "status": "available", "colour": "red"}
        errors = fields_of(await http.post("/v1/publish", json=gift_event(payload=payload)))
        assert errors["data.payload.name"] == "required"
        assert errors["data.payload.colour"] == "unknown field"
        assert (await http.post("/v1/publish", json=gift_event())).status_code == 200


# --- the other publish paths -------------------------------------------------------------


async def _add_invalid_gifts(publisher: Sender, count: int) -> None:
    async with publisher.batch() as batch:
        for _ in range(count):
            batch.added("gift-list:123", entity_id="gift-456", payload={"id": "gift-456"})


async def test_the_in_process_publisher_fails_like_the_http_one(demo: Gateway) -> None:
    failures: list[PublishFailed] = []
    async with Publisher(demo.url) as over_http:
        for publisher in (over_http, InProcessPublisher(demo)):
            for count in (1, 2):  # one event, then a batch
                with pytest.raises(PublishFailed) as failed:
                    await _add_invalid_gifts(publisher, count)
                failures.append(failed.value)
    http_one, http_batch, local_one, local_batch = failures
    assert (local_one.code, local_one.message, local_one.details) == (
        http_one.code,
        http_one.message,
        http_one.details,
    )
    assert (local_batch.code, local_batch.details) == (http_batch.code, http_batch.details)
    assert local_one.details["field"] == "data.payload.name"
    assert local_batch.details["field"] == "events.0.data.payload.name"


async def test_a_client_publish_is_checked_and_named_from_the_frame(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(
        catalog=DEMO, **auth(client_publishable=["MESSAGE_POSTED"], grant_publish=["room:*"])
    )
    async with await open_ws(gateway, token(gateway, "u1")) as ws:
        message = {"message_id": "m-1", "user_id": "u1", "username": "Ann", "text": "hi"}
        posted = {"topic": "room:lobby", "event": "MESSAGE_POSTED", "version": 1}
        bad = {**posted, "data": {"entity_id": "m-1", "payload": {**message, "text": 7}}}
        await command(ws, "PUBLISH", "p1", {"event": bad})
        refusal = await recv(ws)
        assert refusal["data"]["entity_id"] == "p1"
        assert error_of(refusal)["details"]["field"] == "data.payload.event.data.payload.text"
        good = {**posted, "data": {"entity_id": "m-1", "payload": message}}
        await command(ws, "PUBLISH", "p2", {"event": good})
        assert (await recv(ws))["event"] == "PUBLISHED"


async def test_the_demo_stream_and_the_demo_app_are_valid(start_gateway: StartGateway) -> None:
    from eventwire.demo import demo_events

    gateway = await start_gateway(demo=True)  # the demo catalog, by default
    assert gateway.catalog is not None
    assert gateway.catalog.name == "eventwire-demo"
    stream = demo_events()
    for _ in range(18):  # two rounds of the demo's life cycle
        await gateway.publish(next(stream))
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        gift = (await http.post("/demo/api/gifts", json={"name": "Kite", "price": 20})).json()
        renamed = await http.patch(f"/demo/api/gifts/{gift['id']}", json={"price": None})
        assert renamed.status_code == 200
        assert "price" not in renamed.json()  # null removed it, as the clients' merge patch does
        nameless = await http.patch(f"/demo/api/gifts/{gift['id']}", json={"name": None})
        assert nameless.status_code == 422
        assert nameless.json()["code"] == "VALIDATION_ERROR"
        assert nameless.json()["details"]["field"] == "name"
        listed = (await http.get("/demo/api/gifts")).json()["gifts"]
        assert [g["name"] for g in listed] == ["Kite"]
        bought = await http.post(
            f"/demo/api/gifts/{gift['id']}/purchase", json={"purchased_by": "a"}
        )
        assert bought.status_code == 200
        assert (await http.delete(f"/demo/api/gifts/{gift['id']}")).status_code == 200


# --- publish-time lint ----------------------------------------------------------------------


async def test_lint_warnings_are_logged_and_the_event_published(
    demo: Gateway, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="eventwire.catalog")
    for _ in range(3):
        assert (await http.post("/v1/publish", json=gift_event())).status_code == 200
    lines = [r for r in caplog.records if r.name == "eventwire.catalog"]
    missing_user = [r for r in lines if "EW303 missing-user" in r.getMessage()]
    assert len(missing_user) == 1  # once a minute per rule, resource and event, not per publish
    assert missing_user[0].levelno == logging.WARNING
    assert "gift-list:123 ADDED" in missing_user[0].getMessage()
    assert any("EW304 missing-trace" in r.getMessage() and r.levelno == logging.INFO for r in lines)


async def test_lint_errors_refuse_when_configured(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(catalog=DEMO, lint=["EW303=error", "nested-topic=error"])
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        errors = fields_of(await http.post("/v1/publish", json=gift_event()))
        assert list(errors) == ["data.user_id"]
        assert errors["data.user_id"].endswith("[EW303]")
        signed = gift_event(user_id="user-1")
        assert (await http.post("/v1/publish", json=signed)).status_code == 200
        nested = {**signed, "topic": "gift-list:123:gift:456"}
        assert list(fields_of(await http.post("/v1/publish", json=nested))) == ["topic"]


async def test_lint_without_a_catalog(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(lint=["missing-user=error"])
    assert gateway.catalog is None
    event = {"topic": "t:1", "event": "THING_HAPPENED", "data": {"entity_id": "e", "payload": 1}}
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        assert list(fields_of(await http.post("/v1/publish", json=event))) == ["data.user_id"]
        assert (await http.get("/v1/catalog")).status_code == 404


# --- routes ------------------------------------------------------------------------------------


async def test_the_catalog_routes(demo: Gateway, http: httpx.AsyncClient) -> None:
    exported = await http.get("/v1/catalog")
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "application/json"
    assert loads(exported.content).name == "eventwire-demo"  # loads back

    asyncapi = (await http.get("/asyncapi.json")).json()
    assert asyncapi["asyncapi"] == "3.0.0"
    assert [s["host"] + s.get("pathname", "") for s in asyncapi["servers"].values()] == [
        demo.ws_url.removeprefix("ws://")
    ]

    page = await http.get("/catalog")
    assert page.headers["content-type"].startswith("text/html")
    assert "MESSAGE_POSTED" in page.text

    index = (await http.get("/")).json()
    assert index["catalog"] == f"{demo.url}/v1/catalog"
    assert (await http.post("/v1/catalog")).status_code == 405


async def test_without_a_catalog_the_routes_are_not_found(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        for path in ("/v1/catalog", "/asyncapi.json", "/catalog"):
            response = await http.get(path)
            assert (response.status_code, response.json()["code"]) == (404, "NOT_FOUND")
        assert "catalog" not in (await http.get("/")).json()
        event = gift_event(payload={"anything": True})
        assert (await http.post("/v1/publish", json=event)).status_code == 200  # unchecked


# --- configuration -----------------------------------------------------------------------------


def test_a_catalog_that_does_not_load_stops_the_gateway() -> None:
    with pytest.raises(CatalogLoadError, match="no module named 'nowhere'"):
        Gateway(Settings(insecure=True, catalog="nowhere.events:catalog"))
    with pytest.raises(CatalogLoadError, match="has no attribute 'missing'"):
        Gateway(Settings(insecure=True, catalog="eventwire.demo:missing"))


def test_catalog_and_lint_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTWIRE_CATALOG", DEMO)
    monkeypatch.setenv("EVENTWIRE_LINT", '["EW303=off", "nested-topic=error"]')
    settings = load_settings()
    assert (settings.catalog, settings.lint) == (DEMO, ["EW303=off", "nested-topic=error"])
    with pytest.raises(ValidationError, match="unknown lint rule 'EW999'"):
        Settings(lint=["EW999=error"])
    with pytest.raises(ValidationError, match="expected RULE=error"):
        Settings(lint=["EW303=loud"])


async def test_a_subscriber_sees_nothing_of_refused_events(demo: Gateway) -> None:
    async with await open_ws(demo) as ws, httpx.AsyncClient(base_url=demo.url) as http:
        await subscribe(ws, "gift-list:123")
        await http.post("/v1/publish", json=gift_event("GIFT_WRAPPED"))
        assert await barrier(ws) == []
