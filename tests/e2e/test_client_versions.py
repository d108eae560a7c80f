"""The Python client's ``versions=`` against a gateway with the demo catalog.

The client's declaration applies to every subscription, each one's own goes
over it key by key, None reads as published; the declarations survive a
reconnection; and a topic already held is never subscribed with other
versions behind its first subscription's back.
"""

from __future__ import annotations

from typing import Any

import pytest

from eventwire.client import InProcessPublisher, VersionsConflict
from eventwire.envelope import Event
from eventwire.server import Gateway
from eventwire.testing import TestClient
from tests.e2e.conftest import TIMEOUT, StartGateway

DEMO = "eventwire.demo:catalog"


async def post(gateway: Gateway, topic: str, version: int, message_id: str = "m1") -> None:
    """A MESSAGE_POSTED of ``version``; version 2 adds ``mentions`` (1 -> 2 finds them)."""
    payload: dict[str, Any] = {
        "message_id": message_id,
        "user_id": "u1",
        "username": "Ann",
        "text": "hi @bo",
    }
    if version == 2:
        payload["mentions"] = ["bo"]
    await InProcessPublisher(gateway).emit(
        topic, "MESSAGE_POSTED", entity_id=message_id, payload=payload, version=version
    )


def shape(event: Event) -> tuple[int | None, list[str] | None]:
    """The version an event arrived in, and its mentions (None in version 1)."""
    payload = event.data.payload
    assert isinstance(payload, dict)
    return event.version, payload.get("mentions")


async def test_the_client_versions_apply_under_each_subscription_and_survive_a_reconnect(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(catalog=DEMO)
    async with TestClient(gateway.ws_url, versions={"*": [1]}) as client:
        await client.subscribe("room:lobby")  # the client's: version 1
        await client.subscribe("room:kitchen", versions={"room.MESSAGE_POSTED": [2]})
        await client.subscribe("room:hall", versions=None)  # as published
        await post(gateway, "room:lobby", 2)
        await post(gateway, "room:kitchen", 1)
        await post(gateway, "room:hall", 2)
        assert shape(await client.expect("room:lobby", timeout=TIMEOUT)) == (1, None)
        assert shape(await client.expect("room:kitchen", timeout=TIMEOUT)) == (2, ["bo"])
        assert shape(await client.expect("room:hall", timeout=TIMEOUT)) == (2, ["bo"])

        since = client.reconnects
        for connection in list(gateway.connections):  # a node restart, as the client sees it
            connection.close(1012, "restart")
        await client.reconnected(since, timeout=TIMEOUT)
        for topic in ("room:lobby", "room:kitchen", "room:hall"):
            await post(gateway, topic, 2, message_id="m2")
        assert shape(await client.expect("room:lobby", timeout=TIMEOUT)) == (1, None)
        assert shape(await client.expect("room:kitchen", timeout=TIMEOUT)) == (2, ["bo"])
        assert shape(await client.expect("room:hall", timeout=TIMEOUT)) == (2, ["bo"])


async def test_a_held_topic_subscribed_with_other_versions_is_refused_and_left_as_it_was(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(catalog=DEMO)
    async with TestClient(gateway.ws_url, versions={"*": [1]}) as client:
        first = await client.subscribe("room:lobby")
        with pytest.raises(VersionsConflict) as refused:
            await client.subscribe("room:kitchen", "room:lobby", versions=None)
        conflict = refused.value
        assert conflict.code == "VERSIONS_CONFLICT"
        assert (conflict.topic, conflict.held, conflict.declared) == (
            "room:lobby",
            {"*": [1]},
            None,
        )
        # Nothing of that call was sent or kept: the gateway still converts the
        # lobby, and the kitchen is free to take any versions.
        await post(gateway, "room:lobby", 2)
        assert shape(await client.expect("room:lobby", timeout=TIMEOUT)) == (1, None)
        kitchen = await client.subscribe("room:kitchen", versions={"*": [2]})
        await post(gateway, "room:kitchen", 1)
        assert shape(await client.expect("room:kitchen", timeout=TIMEOUT)) == (2, ["bo"])

        # The same declaration, however written, shares the topic.
        second = await client.subscribe("room:lobby", versions={"*": [1, 1]})
        await post(gateway, "room:lobby", 2, message_id="m2")
        read = [await anext(aiter(sub)) for sub in (first, first, second)]
        assert [(e.entity_id, *shape(e)) for e in read] == [
            ("m1", 1, None),
            ("m2", 1, None),
            ("m2", 1, None),
        ]

        # Once its last subscription is gone, the topic takes other versions.
        await first.unsubscribe()
        await second.unsubscribe()
        await kitchen.unsubscribe()
        await client.subscribe("room:lobby", versions=None)
        await post(gateway, "room:lobby", 2, message_id="m3")
        latest = await client.expect(
            "room:lobby", where=lambda e: e.entity_id == "m3", timeout=TIMEOUT
        )
        assert shape(latest) == (2, ["bo"])


async def test_handlers_registered_with_on_read_the_client_versions(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(catalog=DEMO)
    client = TestClient(gateway.ws_url, versions={"room.*": [1]})
    seen: list[Event] = []
    client.on("room:lobby", "MESSAGE_POSTED")(seen.append)
    async with client:
        with pytest.raises(VersionsConflict, match="room:lobby"):
            await client.subscribe("room:lobby", versions={"room.*": [2]})
        await client.subscribe("room:kitchen", versions={"room.*": [2]})
        with pytest.raises(VersionsConflict, match="room:kitchen"):
            client.on("room:kitchen")(seen.append)
        await post(gateway, "room:lobby", 2)
        assert shape(await client.expect("room:lobby", timeout=TIMEOUT)) == (1, None)
    assert [shape(event) for event in seen] == [(1, None)]
