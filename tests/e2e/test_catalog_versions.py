"""Version negotiation over real sockets: each subscriber gets the versions it declared.

Conversion runs once per event and version, however many subscribers want
it; a version that cannot be produced is one ERROR UNSUPPORTED_VERSION per
(topic, event type), never a payload the subscriber cannot read.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict
from websockets.asyncio.client import ClientConnection

from eventwire.catalog import Catalog
from eventwire.server import Gateway
from tests.e2e.conftest import (
    StartGateway,
    barrier,
    command,
    error_of,
    open_ws,
    recv,
)

DEMO = "eventwire.demo:catalog"
CALLS: Counter[str] = Counter()


class Posted(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str


class PostedV2(Posted):
    words: int


COUNTING = Catalog("counting")
"""``room.MESSAGE_POSTED`` 1 <-> 2, whose converters count their calls in CALLS."""
_room = COUNTING.resource("room", strict=True)
_room.event("MESSAGE_POSTED", Posted, description="A message.", example={"text": "hi"})
_room.event("MESSAGE_POSTED", PostedV2, version=2, example={"text": "hi", "words": 1})


@_room.converter("MESSAGE_POSTED", 1, 2)
def _up(payload: dict[str, Any]) -> dict[str, Any]:
    CALLS["1>2"] += 1
    return {**payload, "words": len(payload["text"].split())}


@_room.converter("MESSAGE_POSTED", 2, 1)
def _down(payload: dict[str, Any]) -> dict[str, Any]:
    CALLS["2>1"] += 1
    return {"text": payload["text"]}


MESSAGE = {"message_id": "msg-1", "user_id": "user-1", "username": "Ann", "text": "hi @bob"}


def posted(topic: str, version: int | None, payload: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = {
        "topic": topic,
        "event": "MESSAGE_POSTED",
        "data": {"entity_id": "msg-1", "payload": payload, "user_id": "user-1"},
    }
    if version is not None:
        event["version"] = version
    return event


async def subscribe_with(
    ws: ClientConnection, versions: Any, *topics: str, request_id: str = "sub"
) -> dict[str, Any]:
    payload: dict[str, Any] = {"topics": list(topics)}
    if versions is not None:
        payload["versions"] = versions
    await command(ws, "SUBSCRIBE", request_id, payload)
    reply = await recv(ws)
    assert reply["event"] == "SUBSCRIBED", reply
    return reply


async def publish(gateway: Gateway, *events: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        for event in events:
            response = await http.post("/v1/publish", json=event)
            assert response.status_code == 200, response.text


async def test_subscribers_get_the_versions_they_declared(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(catalog=DEMO)
    async with (
        await open_ws(gateway) as old,
        await open_ws(gateway) as new,
        await open_ws(gateway) as plain,
    ):
        await subscribe_with(old, {"room.MESSAGE_POSTED": [1]}, "room:lobby", "room:kitchen")
        await subscribe_with(new, {"room.*": [2]}, "room:lobby", "room:kitchen")
        await subscribe_with(plain, None, "room:lobby", "room:kitchen")
        v2 = {**MESSAGE, "mentions": ["bob"]}
        await publish(gateway, posted("room:lobby", 2, v2), posted("room:kitchen", 1, MESSAGE))

        for topic in ("room:lobby", "room:kitchen"):
            got_old, got_new, got_plain = await recv(old), await recv(new), await recv(plain)
            assert got_old["topic"] == got_new["topic"] == got_plain["topic"] == topic
            assert (got_old["version"], got_old["data"]["payload"]) == (1, MESSAGE)
            assert (got_new["version"], got_new["data"]["payload"]) == (2, v2)
            # The same event: same seq, timestamp and metadata; only the payload's version differs.
            for field in ("seq", "event", "topic"):
                assert got_old[field] == got_new[field] == got_plain[field]
            same = {k: v for k, v in got_old["data"].items() if k != "payload"}
            assert same == {k: v for k, v in got_new["data"].items() if k != "payload"}
            published = 2 if topic == "room:lobby" else 1
            assert got_plain.get("version") == published  # declared nothing: as published


async def test_conversion_runs_once_per_event_and_version(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(catalog=f"{__name__}:COUNTING")
    CALLS.clear()
    sockets = [await open_ws(gateway) for _ in range(7)]
    try:
        wants = [[2], [2], [2], [2], [1], [1], None]  # four want 2, two want 1, one says nothing
        for ws, versions in zip(sockets, wants, strict=True):
            declared = None if versions is None else {"*": versions}
            await subscribe_with(ws, declared, "room:lobby")
        await publish(gateway, *[posted("room:lobby", None, {"text": f"m {n}"}) for n in range(3)])
        for ws, versions in zip(sockets, wants, strict=True):
            for n in range(3):
                got = await recv(ws)
                assert got["seq"] == n + 1
                if versions == [2]:
                    assert got["data"]["payload"] == {"text": f"m {n}", "words": 2}
                    assert got["version"] == 2
                else:
                    assert got["data"]["payload"] == {"text": f"m {n}"}
        assert CALLS == {"1>2": 3}  # 3 events, one conversion each: not 3 x 4 subscribers

        await publish(gateway, posted("room:lobby", 2, {"text": "a b c", "words": 3}))
        for ws in sockets:
            await recv(ws)
        assert CALLS == {"1>2": 3, "2>1": 1}
    finally:
        for ws in sockets:
            await ws.close()


async def test_an_impossible_version_is_told_once_per_topic_and_event(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(catalog=DEMO)
    async with await open_ws(gateway) as ws:
        await subscribe_with(ws, {"room.MESSAGE_POSTED": [3]}, "room:lobby", "room:kitchen")
        joined = {
            "topic": "room:lobby",
            "event": "USER_JOINED",
            "data": {"entity_id": "user-1", "payload": {"user_id": "user-1", "username": "Ann"}},
        }
        lobby = [posted("room:lobby", 1, MESSAGE) for _ in range(3)]
        await publish(gateway, *lobby, joined, posted("room:kitchen", 1, MESSAGE))
        frames = await barrier(ws)
        assert [f["event"] for f in frames] == ["ERROR", "USER_JOINED", "ERROR"]
        lobby_error, kitchen_error = error_of(frames[0]), error_of(frames[2])
        assert frames[0]["data"]["entity_id"] == "connection"
        assert lobby_error["code"] == "UNSUPPORTED_VERSION"
        assert lobby_error["details"] == {
            "topic": "room:lobby",
            "event": "MESSAGE_POSTED",
            "version": 1,
            "accepted": [3],
            "available": [1, 2],
        }
        assert kitchen_error["details"]["topic"] == "room:kitchen"
        assert frames[1]["seq"] == 4  # undeclared in `versions`: delivered as published

        # Declaring versions again starts over: it is told again, or served.
        await subscribe_with(ws, {"*": [3]}, "room:lobby", request_id="again")
        await publish(gateway, posted("room:lobby", 1, MESSAGE))
        [told] = await barrier(ws)
        assert error_of(told)["details"]["accepted"] == [3]
        await subscribe_with(ws, {"*": [2, 3]}, "room:lobby", request_id="fixed")
        await publish(gateway, posted("room:lobby", 1, MESSAGE))
        [served] = await barrier(ws)
        assert (served["version"], served["data"]["payload"]["mentions"]) == (2, ["bob"])
    metrics = gateway.metrics.registry.get_sample_value
    assert metrics("eventwire_errors_total", {"code": "UNSUPPORTED_VERSION"}) == 3


async def test_bad_versions_are_refused_with_the_fields_named(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(catalog=DEMO)
    async with await open_ws(gateway) as ws:
        bad = {"topics": ["room:lobby"], "versions": {"room.message": [1], "*": [0]}}
        await command(ws, "SUBSCRIBE", "sub-1", bad)
        refusal = await recv(ws)
        assert refusal["data"]["entity_id"] == "sub-1"
        fields = [e["field"] for e in error_of(refusal)["details"]["errors"]]
        assert fields == ["data.payload.versions.room.message", "data.payload.versions.*"]
        assert await barrier(ws) == []  # no SUBSCRIBED: the command failed whole
        await publish(gateway, posted("room:lobby", 1, MESSAGE))
        assert await barrier(ws) == []


async def test_without_a_catalog_versions_change_nothing(start_gateway: StartGateway) -> None:
    gateway = await start_gateway()
    async with await open_ws(gateway) as ws:
        await subscribe_with(ws, {"*": [2]}, "room:lobby")
        await publish(gateway, posted("room:lobby", 1, {"text": "hi"}))
        got = await recv(ws)
        assert (got["version"], got["data"]["payload"]) == (1, {"text": "hi"})
