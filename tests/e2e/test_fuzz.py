"""Fuzzing one real server: random bytes, random JSON and mutated valid frames.

Whatever arrives, the server answers with ERROR frames or replies, or closes
with a documented code; it never fails a command (1011) and keeps serving
another client.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from eventwire.codes import ErrorCode
from eventwire.server import Gateway
from tests.e2e.conftest import StartGateway, auth, barrier, command, event, open_ws, recv, token

# Close codes a misbehaving client may be shown (docs/protocol.md, "Close codes").
DOCUMENTED_CLOSES = {1002, 1007, 1009, 4001, 4003, 4009, 4029, 4501, 4503}
REPLIES = {"SUBSCRIBED", "UNSUBSCRIBED", "PONG", "AUTHENTICATED", "PUBLISHED"}
COMMANDS = ["SUBSCRIBE", "UNSUBSCRIBE", "PING", "AUTH", "PUBLISH", "FROB", "subscribe", ""]


def _command(name: str, payload: Any) -> dict[str, Any]:
    return {
        "topic": "system",
        "event": name,
        "data": {"entity_id": name.lower(), "payload": payload},
    }


VALID = [
    _command("SUBSCRIBE", {"topics": ["room:lobby"]}),
    _command("UNSUBSCRIBE", {"topics": ["room:lobby"]}),
    _command("PING", None),
    _command("AUTH", {"token": "x.y.z"}),
    _command("PUBLISH", {"event": event("room:lobby", "MESSAGE_POSTED")}),
]
PATHS = [
    ("topic",),
    ("event",),
    ("data",),
    ("data", "entity_id"),
    ("data", "payload"),
    ("data", "payload", "topics"),
    ("data", "payload", "token"),
    ("data", "payload", "event"),
    ("data", "payload", "event", "topic"),
    ("data", "payload", "event", "data"),
    ("data", "timestamp"),
    ("extra",),
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from([*COMMANDS, "room:lobby", "room:*", "*", "system:x", "tenant:globex:x"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _mutate(frame: dict[str, Any], path: tuple[str, ...], value: Any, delete: bool) -> bytes:
    mutated = copy.deepcopy(frame)
    node: Any = mutated
    for key in path[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(key), dict):
            return orjson.dumps(mutated)
        node = node[key]
    if delete:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return orjson.dumps(mutated)


mutated_frames = st.builds(
    _mutate, st.sampled_from(VALID), st.sampled_from(PATHS), json_values, st.booleans()
)
inputs = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300),
    json_values.map(lambda value: orjson.dumps(value).decode()),
    mutated_frames,
    mutated_frames.map(bytes.decode),
)
_examples = itertools.count()


@pytest.fixture
async def target(start_gateway: StartGateway) -> Gateway:
    return await start_gateway(
        **auth(
            client_publishable=["MESSAGE_POSTED"],
            user_commands_per_second=0,
            allow_pattern_subscriptions=True,
        )
    )


def _check(frame: dict[str, Any]) -> None:
    if frame["topic"] == "error":
        assert ErrorCode(frame["data"]["payload"]["code"]) is not ErrorCode.INTERNAL_ERROR
    elif frame["topic"] == "system":
        assert frame["event"] in REPLIES, frame
    else:
        assert isinstance(frame["seq"], int)  # an event it subscribed to and published


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(frames=st.lists(inputs, min_size=1, max_size=8), signed_in=st.booleans())
async def test_garbage_never_breaks_the_server(
    target: Gateway, frames: list[str | bytes], signed_in: bool
) -> None:
    grants = {"subscribe": ["room:*"], "publish": ["room:*"]}
    jwt = token(target, "fuzzer", **grants) if signed_in else None
    run = next(_examples)
    async with await open_ws(target, jwt) as ws:
        try:
            for data in frames:
                await ws.send(data)
            await command(ws, "PING", f"end-{run}")
            while (frame := await recv(ws))["data"]["entity_id"] != f"end-{run}":
                _check(frame)
        except ConnectionClosed:
            assert ws.close_code in DOCUMENTED_CLOSES
    async with await open_ws(target, token(target, "bystander")) as other:
        assert await barrier(other) == []
    sample = target.metrics.registry.get_sample_value
    assert sample("eventwire_disconnects_total", {"code": "1011"}) is None
    assert sample("eventwire_errors_total", {"code": "INTERNAL_ERROR"}) is None
