"""Wire protocol v1 over a real socket: every command, reply and error code."""

from __future__ import annotations

import re

import httpx
import orjson
from websockets.exceptions import ConnectionClosed

from eventwire.server import Gateway
from tests.e2e.conftest import StartGateway, command, event, open_ws, recv, subscribe

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


async def test_connected_frame_announces_the_session(gateway: Gateway) -> None:
    async with await open_ws(gateway) as ws:
        await command(ws, "PING", "p1")
        pong = await recv(ws)
    assert pong["topic"] == "system"
    assert pong["event"] == "PONG"
    assert pong["data"]["entity_id"] == "p1"
    assert TIMESTAMP.fullmatch(pong["data"]["payload"]["server_time"])


async def test_connected_payload(gateway: Gateway) -> None:
    from websockets.asyncio.client import connect

    async with connect(gateway.ws_url) as ws:
        hello = orjson.loads(await ws.recv())
    payload = hello["data"]["payload"]
    assert hello["topic"] == "system"
    assert hello["event"] == "CONNECTED"
    assert hello["data"]["entity_id"] == payload["session_id"]
    assert payload["protocol"] == 1
    assert payload["heartbeat_interval"] == gateway.settings.heartbeat_interval
    assert payload["node"] == gateway.node_id  # which gateway process serves it
    assert TIMESTAMP.fullmatch(payload["server_time"])
    assert "user_id" not in payload  # anonymous


async def test_subscribe_publish_receive_in_the_seeds_envelope(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    async with await open_ws(gateway) as ws:
        reply = await subscribe(ws, "gift-list:123", request_id="subscription-1")
        assert reply["data"]["entity_id"] == "subscription-1"
        assert reply["data"]["payload"]["topics"] == ["gift-list:123"]
        position = reply["data"]["payload"]["positions"]["gift-list:123"]
        assert position["seq"] == 0
        assert isinstance(position["epoch"], str)

        response = await http.post("/v1/publish", json=event())
        assert response.status_code == 200
        assert response.json() == {"topic": "gift-list:123", "event": "ADDED", "seq": 1}

        received = await recv(ws)
    assert list(received) == ["topic", "event", "data", "seq"]  # no null optionals
    assert received["topic"] == "gift-list:123"
    assert received["event"] == "ADDED"
    assert received["seq"] == 1
    data = received["data"]
    assert list(data) == ["entity_id", "payload", "timestamp"]
    assert data["payload"] == {"id": "gift-456", "name": "New Gift"}
    assert TIMESTAMP.fullmatch(data["timestamp"])


async def test_seq_is_contiguous_per_topic(gateway: Gateway, http: httpx.AsyncClient) -> None:
    async with await open_ws(gateway) as ws:
        await subscribe(ws, "room:lobby", "room:lobby:messages")
        for topic in ["room:lobby", "room:lobby:messages", "room:lobby", "room:lobby"]:
            await http.post("/v1/publish", json=event(topic, "USER_JOINED"))
        frames = [await recv(ws) for _ in range(4)]
    seqs = [(f["topic"], f["seq"]) for f in frames]
    assert seqs == [
        ("room:lobby", 1),
        ("room:lobby:messages", 1),
        ("room:lobby", 2),
        ("room:lobby", 3),
    ]


async def test_subscribing_twice_is_idempotent(gateway: Gateway, http: httpx.AsyncClient) -> None:
    async with await open_ws(gateway) as ws:
        await subscribe(ws, "gift-list:1")
        await subscribe(ws, "gift-list:1", "gift-list:1")
        await http.post("/v1/publish", json=event("gift-list:1"))
        first = await recv(ws)
        await command(ws, "PING", "after")
        assert (await recv(ws))["event"] == "PONG"  # no second copy before the PONG
    assert first["seq"] == 1
    assert (await http.get("/v1/topics/gift-list:1")).json()["subscribers"] == 0


async def test_refused_topics_get_one_error_each(gateway: Gateway) -> None:
    async with await open_ws(gateway) as ws:
        await command(
            ws, "SUBSCRIBE", "r7", {"topics": ["gift-list:1", "Bad", "system", "gift-list:*"]}
        )
        frames = [await recv(ws) for _ in range(4)]
    errors = [f for f in frames if f["event"] == "ERROR"]
    assert [
        (e["data"]["payload"]["code"], e["data"]["payload"]["details"]["topic"]) for e in errors
    ] == [
        ("INVALID_TOPIC", "Bad"),
        ("RESERVED_TOPIC", "system"),
        ("INVALID_TOPIC", "gift-list:*"),
    ]
    assert all(e["topic"] == "error" and e["data"]["entity_id"] == "r7" for e in errors)
    assert frames[-1]["event"] == "SUBSCRIBED"
    assert frames[-1]["data"]["payload"]["topics"] == ["gift-list:1"]


async def test_unsubscribe_stops_delivery(gateway: Gateway, http: httpx.AsyncClient) -> None:
    async with await open_ws(gateway) as ws:
        await subscribe(ws, "gift-list:1", "gift-list:2")
        await command(ws, "UNSUBSCRIBE", "u1", {"topics": ["gift-list:1"]})
        reply = await recv(ws)
        assert reply["event"] == "UNSUBSCRIBED"
        assert reply["data"]["payload"]["topics"] == ["gift-list:1"]
        await http.post("/v1/publish", json=event("gift-list:1"))
        await http.post("/v1/publish", json=event("gift-list:2"))
        assert (await recv(ws))["topic"] == "gift-list:2"


async def test_command_errors(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(max_subscriptions=2)
    async with await open_ws(gateway) as ws:
        await ws.send("{not json")
        invalid = await recv(ws)
        await ws.send(
            orjson.dumps(
                {"topic": "system", "event": "SUBSCRIBE", "data": {"entity_id": "v"}}
            ).decode()
        )
        missing = await recv(ws)
        await command(ws, "FROBNICATE", "u")
        unknown = await recv(ws)
        await command(ws, "SUBSCRIBE", "t", {"topics": ["a:1", "a:2", "a:3"]})
        too_many = await recv(ws)
        await recv(ws)  # SUBSCRIBED for the first two
        await command(ws, "AUTH", "auth", {"token": "x"})
        auth = await recv(ws)
        await ws.send(orjson.dumps(event("room:lobby")).decode())
        client_publish = await recv(ws)

    def code(frame: dict[str, object]) -> tuple[str, str]:
        data = frame["data"]
        assert isinstance(data, dict)
        return data["entity_id"], data["payload"]["code"]

    assert code(invalid) == ("connection", "INVALID_JSON")
    assert code(missing) == ("v", "VALIDATION_ERROR")
    assert missing["data"]["payload"]["details"]["field"] == "data.payload"
    assert code(unknown) == ("u", "UNKNOWN_COMMAND")
    assert code(too_many) == ("t", "TOO_MANY_SUBSCRIPTIONS")
    assert too_many["data"]["payload"]["details"]["topic"] == "a:3"
    assert code(auth) == ("auth", "NOT_SUPPORTED")
    assert code(client_publish)[1] == "NOT_SUPPORTED"


async def test_rate_limit_then_flood_close(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(commands_per_second=1, command_burst=3, flood_threshold=5)
    async with await open_ws(gateway) as ws:
        for i in range(20):
            await command(ws, "PING", f"p{i}")
        codes = []
        try:
            while True:
                frame = await recv(ws)
                codes.append(
                    frame["event"] if frame["event"] == "PONG" else frame["data"]["payload"]["code"]
                )
        except ConnectionClosed:
            pass
        assert ws.close_code == 4029
    assert codes[:3] == ["PONG"] * 3
    assert set(codes[3:]) == {"RATE_LIMITED"}
    assert len(codes) == 3 + 5


async def test_pattern_subscriptions_when_allowed(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(allow_pattern_subscriptions=True)
    async with await open_ws(gateway) as ws:
        reply = await subscribe(ws, "gift-list:*", "gift-list:1")
        assert reply["data"]["payload"]["topics"] == ["gift-list:*", "gift-list:1"]
        assert list(reply["data"]["payload"]["positions"]) == ["gift-list:1"]  # topics only
        for topic in ["gift-list:1", "room:lobby", "gift-list:2:items"]:
            await gateway.publish(event(topic))
        first, second = await recv(ws), await recv(ws)
        assert [(first["topic"], first["seq"]), (second["topic"], second["seq"])] == [
            ("gift-list:1", 1),  # once, though both subscriptions match
            ("gift-list:2:items", 1),
        ]
        await command(ws, "UNSUBSCRIBE", "u", {"topics": ["gift-list:*"]})
        assert (await recv(ws))["event"] == "UNSUBSCRIBED"
        await gateway.publish(event("gift-list:3"))
        await gateway.publish(event("gift-list:1"))
        assert (await recv(ws))["topic"] == "gift-list:1"
    assert gateway.metrics.registry.get_sample_value("eventwire_subscriptions") == 0
