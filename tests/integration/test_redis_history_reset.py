"""A Redis flush under a live subscriber: told at once, never fooled by repeated seqs."""

from __future__ import annotations

from eventwire.client import Client
from eventwire.codes import CloseCode
from eventwire.testing import running_gateway
from tests.integration.redisproc import RedisProcess

TIMEOUT = 10.0


def added(entity_id: str) -> dict[str, object]:
    return {"topic": "gift-list:1", "event": "ADDED", "data": {"entity_id": entity_id}}


async def test_a_flush_resets_subscribers_who_then_see_the_new_history(
    redis_server: RedisProcess,
) -> None:
    async with (
        running_gateway(broker=redis_server.url) as gateway,
        Client(gateway.ws_url, backoff_initial=0.05) as client,
    ):
        gifts = await client.subscribe("gift-list:1")
        events = aiter(gifts)
        for i in range(3):
            await gateway.publish(added(f"gift-{i}"))
        assert [(await anext(events)).seq for _ in range(3)] == [1, 2, 3]

        since = client.reconnects
        assert redis_server.command("FLUSHALL") == b"+OK\r\n"
        await gateway.publish(added("after-flush"))  # seq 1 again, in a new epoch
        notice = await client.reconnected(since, timeout=TIMEOUT)
        assert notice.close_code == CloseCode.HISTORY_RESET
        assert client.gaps[-1].history_lost  # the application is told to refetch

        await gateway.publish(added("later"))
        later = await anext(events)
        assert (later.data.entity_id, later.seq) == ("later", 2)  # not taken for a duplicate
