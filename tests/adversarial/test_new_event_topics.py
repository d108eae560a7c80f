"""In-process publishing cannot reach a topic a client could not: bad, pattern or reserved.

``NewEvent`` refuses such topics when built; ``Gateway.publish`` checks the
topic of a NewEvent again, since ``model_copy(update=...)`` and
``model_construct`` skip validation. Nothing refused is stored: every node
would otherwise read a publish on ``system:revocations`` as a malformed
revocation.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from eventwire.auth.revocation import RevokeRequest
from eventwire.client.publisher import InProcessPublisher
from eventwire.codes import ErrorCode
from eventwire.envelope import NewEvent, NewEventData
from eventwire.errors import ProtocolError, PublishFailed
from eventwire.server import Gateway
from eventwire.server.gateway import REVOCATIONS_TOPIC

GOOD = "gift-list:1"
HOSTILE = [
    ("system:revocations", ErrorCode.RESERVED_TOPIC),
    ("error:x", ErrorCode.RESERVED_TOPIC),
    ("gift-list:*", ErrorCode.INVALID_TOPIC),
    ("*", ErrorCode.INVALID_TOPIC),
    ("Not A Topic", ErrorCode.INVALID_TOPIC),
]


def _event(topic: str = GOOD) -> NewEvent:
    return NewEvent(topic=topic, event="DELETED", data=NewEventData(entity_id="gift-1"))


def _raw(topic: str) -> dict[str, Any]:
    return {"topic": topic, "event": "DELETED", "data": {"entity_id": "gift-1"}}


async def _stored(gateway: Gateway, *topics: str) -> list[int]:
    return [(await gateway.broker.position(topic)).seq for topic in topics]


@pytest.mark.parametrize(("topic", "code"), HOSTILE)
async def test_a_new_event_on_the_topic_cannot_even_be_built(topic: str, code: ErrorCode) -> None:
    with pytest.raises(ValidationError) as built:
        _event(topic)
    assert built.value.errors()[0]["ctx"]["refusal"].code is code


@pytest.mark.parametrize(("topic", "code"), HOSTILE)
async def test_copies_that_skip_validation_are_refused_by_publish(
    gateway: Gateway, topic: str, code: ErrorCode
) -> None:
    copied = _event().model_copy(update={"topic": topic})
    constructed = NewEvent.model_construct(topic=topic, event="DELETED", data=_event().data)
    for event in (copied, constructed):
        with pytest.raises(ProtocolError) as refused:
            await gateway.publish(event)
        assert (refused.value.code, refused.value.details) == (code, {"topic": topic})
        with pytest.raises(ProtocolError) as in_batch:
            await gateway.publish_many([_event(), event])
        assert in_batch.value.details == {"topic": topic, "index": 1}
        with pytest.raises(ProtocolError):
            await gateway.announce(event)
    assert await _stored(gateway, topic, GOOD) == [0, 0]  # the batch was refused whole


@pytest.mark.parametrize(("topic", "code"), HOSTILE)
async def test_dicts_in_process_and_over_http_are_refused_with_the_same_code(
    gateway: Gateway, http: httpx.AsyncClient, topic: str, code: ErrorCode
) -> None:
    with pytest.raises(ProtocolError) as refused:
        await gateway.publish(_raw(topic))
    assert (refused.value.code, refused.value.details) == (code, {"topic": topic})
    with pytest.raises(PublishFailed) as failed:
        await InProcessPublisher(gateway).deleted(topic, entity_id="gift-1")
    assert (failed.value.code, failed.value.details) == (code.value, {"topic": topic})
    answer = await http.post("/v1/publish", json={"events": [_raw(GOOD), _raw(topic)]})
    assert answer.status_code == 422
    assert answer.json()["code"] == code.value
    assert answer.json()["details"] == {"topic": topic, "index": 1}
    assert await _stored(gateway, topic, GOOD) == [0, 0]


async def test_revocations_still_travel_on_their_reserved_topic(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="eventwire"):
        with pytest.raises(ProtocolError):
            await gateway.publish(_event().model_copy(update={"topic": REVOCATIONS_TOPIC}))
        await gateway.revoke_everywhere(RevokeRequest(user_id="mallory"))
    assert await _stored(gateway, REVOCATIONS_TOPIC) == [1]
    assert not [r for r in caplog.records if "malformed revocation" in r.getMessage()]
