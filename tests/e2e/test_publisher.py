"""Publishers over HTTP and in-process: the seed's envelopes, batches, and refusals alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import BaseModel

from eventwire.client import (
    GatewayUnreachable,
    InProcessPublisher,
    Published,
    Publisher,
    Sender,
)
from eventwire.errors import PublishFailed
from eventwire.server import Gateway
from eventwire.testing.client import ClientFactory

TOPIC = "gift-list:123"


class Gift(BaseModel):
    id: str
    name: str
    price: float
    created_at: datetime


@pytest.fixture(params=["http", "in-process"])
async def publisher(
    request: pytest.FixtureRequest, eventwire_gateway: Gateway
) -> AsyncIterator[Sender]:
    """Each test runs with both publishers: they must behave alike."""
    if request.param == "in-process":
        yield InProcessPublisher(eventwire_gateway)
    else:
        async with Publisher(eventwire_gateway.url) as http_publisher:
            yield http_publisher


async def test_helpers_produce_the_seeds_envelopes(
    publisher: Sender, eventwire_client: ClientFactory
) -> None:
    client = await eventwire_client()
    await client.subscribe(TOPIC, "room:lobby")
    gift = Gift(
        id="gift-456", name="New Gift", price=29.99, created_at=datetime(2023, 1, 1, tzinfo=UTC)
    )

    results = [
        await publisher.added(TOPIC, entity_id="gift-456", payload=gift, user_id="user-1"),
        await publisher.updated(TOPIC, entity_id="gift-456", payload={"name": "Updated Name"}),
        await publisher.status_changed(
            TOPIC, entity_id="gift-456", old="available", new="purchased", purchased_by="user-789"
        ),
        await publisher.deleted(TOPIC, entity_id="gift-456", tenant_id="acme"),
    ]
    joined = await publisher.emit(
        "room:lobby",
        "USER_JOINED",
        entity_id="user-123",
        payload={"username": "Alice"},
        trace_id="a1b2c3d4-e5f6-7890",
        version=2,
    )

    assert results == [
        Published(TOPIC, e, n)
        for n, e in enumerate(["ADDED", "UPDATED", "STATUS_CHANGED", "DELETED"], start=1)
    ]
    assert joined == Published("room:lobby", "USER_JOINED", 1)
    added = await client.expect(TOPIC, "ADDED")
    assert added.payload == {
        "id": "gift-456",
        "name": "New Gift",
        "price": 29.99,
        "created_at": "2023-01-01T00:00:00Z",
    }
    assert (added.entity_id, added.data.user_id, added.data.tenant_id) == (
        "gift-456",
        "user-1",
        None,
    )
    assert (await client.expect(TOPIC, "UPDATED")).payload == {"name": "Updated Name"}
    assert (await client.expect(TOPIC, "STATUS_CHANGED")).payload == {
        "id": "gift-456",
        "old_status": "available",
        "new_status": "purchased",
        "purchased_by": "user-789",
    }
    deleted = await client.expect(TOPIC, "DELETED")
    assert (deleted.payload, deleted.data.tenant_id) == (None, "acme")
    custom = await client.expect("room:lobby", "USER_JOINED")
    assert (custom.trace_id, custom.version, custom.entity_id) == (
        "a1b2c3d4-e5f6-7890",
        2,
        "user-123",
    )


async def test_a_given_timestamp_is_kept(
    publisher: Sender, eventwire_client: ClientFactory
) -> None:
    client = await eventwire_client()
    await client.subscribe(TOPIC)
    moment = datetime(2023, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    await publisher.updated(TOPIC, entity_id="gift-456", payload=None, timestamp=moment)
    assert (await client.expect(TOPIC, "UPDATED")).data.timestamp == moment


async def test_batch_publishes_once_with_contiguous_seqs(
    publisher: Sender, eventwire_client: ClientFactory
) -> None:
    client = await eventwire_client()
    await client.subscribe("import:job-456")
    async with publisher.batch() as batch:
        for n in range(5):
            batch.emit("import:job-456", "ROW_IMPORTED", entity_id=f"row-{n}", payload={"n": n})
        batch.emit("import:job-456", "IMPORT_COMPLETED", entity_id="job-456", payload={"total": 5})
        assert batch.results == []

    assert [r.seq for r in batch.results] == [1, 2, 3, 4, 5, 6]
    assert batch.results[-1] == Published("import:job-456", "IMPORT_COMPLETED", 6)
    for n in range(5):
        assert (await client.expect("import:job-456", "ROW_IMPORTED")).payload == {"n": n}
    await client.expect("import:job-456", "IMPORT_COMPLETED")


async def test_batch_is_not_sent_when_its_block_raises(
    publisher: Sender, eventwire_client: ClientFactory
) -> None:
    client = await eventwire_client()
    await client.subscribe(TOPIC)
    batch = publisher.batch()

    async def change_mind() -> None:
        async with batch:
            batch.deleted(TOPIC, entity_id="gift-1")
            raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError, match="changed my mind"):
        await change_mind()
    assert (len(batch.events), batch.results) == (1, [])
    await client.expect_nothing(TOPIC)


async def test_batch_is_all_or_nothing(publisher: Sender, eventwire_client: ClientFactory) -> None:
    client = await eventwire_client()
    await client.subscribe(TOPIC)
    batch = publisher.batch()
    batch.deleted(TOPIC, entity_id="gift-1")
    batch.emit(TOPIC, "update", entity_id="gift-2")
    with pytest.raises(PublishFailed) as failed:
        await batch.publish()
    assert failed.value.code == "VALIDATION_ERROR"
    await client.expect_nothing(TOPIC)


async def test_lowercase_event_is_refused_as_validation_error(publisher: Sender) -> None:
    with pytest.raises(PublishFailed) as failed:
        await publisher.emit(TOPIC, "update", entity_id="gift-456", payload={})
    assert failed.value.code == "VALIDATION_ERROR"
    assert failed.value.details["field"] == "event"
    assert "UPPER_SNAKE_CASE" in failed.value.message


@pytest.mark.eventwire(payload_max=1024)
async def test_oversized_payload_is_refused(publisher: Sender) -> None:
    with pytest.raises(PublishFailed) as failed:
        await publisher.added(TOPIC, entity_id="gift-456", payload={"notes": "x" * 2000})
    assert failed.value.code == "PAYLOAD_TOO_LARGE"
    assert failed.value.details["limit"] == 1024


async def test_oversized_payload_is_refused_at_the_default_limit(publisher: Sender) -> None:
    with pytest.raises(PublishFailed) as failed:
        await publisher.added(TOPIC, entity_id="gift-456", payload={"notes": "x" * 200_000})
    assert failed.value.code == "PAYLOAD_TOO_LARGE"


async def test_reserved_topic_is_refused(publisher: Sender) -> None:
    with pytest.raises(PublishFailed) as failed:
        await publisher.added("system:status", entity_id="x", payload={})
    assert failed.value.code == "RESERVED_TOPIC"


async def test_unreachable_gateway(eventwire_gateway: Gateway) -> None:
    url = eventwire_gateway.url
    await eventwire_gateway.stop()
    async with Publisher(url, timeout=5.0) as publisher:
        with pytest.raises(GatewayUnreachable):
            await publisher.deleted(TOPIC, entity_id="gift-456")


async def test_a_shared_http_client_is_left_open(eventwire_gateway: Gateway) -> None:
    async with httpx.AsyncClient(timeout=5.0) as http:
        async with Publisher(eventwire_gateway.url, http=http) as publisher:
            await publisher.deleted(TOPIC, entity_id="gift-456")
        assert not http.is_closed
        response = await http.get(f"{eventwire_gateway.url}/v1/topics/{TOPIC}")
        assert response.json()["position"]["seq"] == 1


async def test_updated_from_before_and_after_picks_the_payload_mode(
    publisher: Sender, eventwire_client: ClientFactory
) -> None:
    client = await eventwire_client()
    await client.subscribe(TOPIC)
    before = {"id": "gift-456", "name": "Kite", "notes": "red", "blob": "x" * 20_000}
    after = {"id": "gift-456", "name": "Big kite", "blob": "x" * 20_000}  # notes removed
    small_before = {"id": "gift-7", "name": "Kite", "notes": "red"}
    small_after = {"id": "gift-7", "name": "Big kite"}

    await publisher.updated(TOPIC, entity_id="gift-7", before=small_before, after=small_after)
    await publisher.updated(TOPIC, entity_id="gift-456", before=before, after=after)
    await publisher.updated(TOPIC, entity_id="gift-7", before=small_before, after=small_after,
                            mode="partial")  # fmt: skip
    await publisher.updated(TOPIC, entity_id="gift-7", after=small_after, mode="reference")

    full = await client.expect(TOPIC, "UPDATED")
    assert full.data.payload == small_after  # small: the full DTO
    patch = await client.expect(TOPIC, "UPDATED")
    assert patch.data.payload == {"name": "Big kite", "notes": None}  # large: RFC 7396 patch
    forced = await client.expect(TOPIC, "UPDATED")
    assert forced.data.payload == {"name": "Big kite", "notes": None}
    reference = await client.expect(TOPIC, "UPDATED")
    assert reference.data.payload is None
    with pytest.raises(TypeError):
        await publisher.updated(TOPIC, entity_id="gift-7")
