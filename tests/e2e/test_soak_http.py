"""The soak publisher's HTTP client against a real gateway: answers, errors, kept connections."""

from __future__ import annotations

import orjson
import pytest
from bench.servers import free_port
from bench.soak.http import HttpPool

from eventwire.testing import running_gateway


def body(n: int) -> bytes:
    data = {"entity_id": f"e{n}", "payload": {"n": n}}
    return orjson.dumps({"topic": "room:1", "event": "ADDED", "data": data})


async def test_publishes_are_answered_over_one_kept_connection() -> None:
    pool = HttpPool()
    async with running_gateway() as gateway:
        first = await pool.post(gateway.url + "/v1/publish", body(1), timeout=5.0)
        second = await pool.post(gateway.url + "/v1/publish", body(2), timeout=5.0)
        kept = pool.idle(gateway.url)
        refused = await pool.post(gateway.url + "/v1/publish", b'{"topic": "r:1"}', timeout=5.0)
        pool.close()
    assert (first.status, orjson.loads(first.body)["seq"]) == (200, 1)
    assert (second.status, orjson.loads(second.body)["seq"]) == (200, 2)
    assert kept == 1  # the second publish reused the first one's connection
    assert refused.status == 422
    assert orjson.loads(refused.body)["code"] == "VALIDATION_ERROR"


async def test_a_node_that_is_down_refuses_the_connection() -> None:
    pool = HttpPool()
    with pytest.raises(ConnectionRefusedError):
        await pool.post(f"http://127.0.0.1:{free_port()}/v1/publish", body(1), timeout=5.0)
