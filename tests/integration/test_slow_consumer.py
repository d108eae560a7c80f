"""A client that falls behind is closed (4008), comes back, and recovers every event from history.

The slow client is a real Python client whose event loop is blocked, as a
synchronous handler doing slow work would block it: it runs on a loop of
its own thread, so the test's own loop keeps publishing meanwhile. While it
reads nothing, the node's outbound buffer for it fills up, and the node
closes it with 4008 rather than slow down everyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

import httpx

from eventwire.codes import CloseCode
from tests.integration.brokerprocs import BrokerServer, broker_server  # noqa: F401 (fixture)
from tests.integration.gatewayproc import GatewayProcess, StartNode, start_node  # noqa: F401
from tests.integration.traffic import Ledger, Recorder, SteadyPublisher, check_delivery

T = TypeVar("T")

TOPIC = "gift-list:1"
PADDING = 8000
"""Bytes of filler per event, below the gateway's 10 KB payload warning."""
BUFFER = 256 * 1024
"""The node's max_outbound_buffer: a fraction of what the slow client will miss."""
BLOCKED_FOR = 20.0
"""Seconds at most that the slow client's loop stays blocked."""


class ClientThread:
    """An event loop in a thread of its own, for a client the test can freeze."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thawed = threading.Event()

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` on the thread's loop and await its result from the caller's."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self.loop))

    def freeze(self) -> None:
        """Block the thread's loop, as a handler doing slow synchronous work would."""
        self._thawed.clear()
        self.loop.call_soon_threadsafe(self._thawed.wait, BLOCKED_FOR)

    def thaw(self) -> None:
        self._thawed.set()

    @contextlib.asynccontextmanager
    async def client(self, url: str, topic: str) -> AsyncIterator[Recorder]:
        """A Recorder on this thread's loop, subscribed to ``topic``, closed on the way out."""

        async def connect() -> Recorder:
            client = Recorder(url)
            await client.connect()
            await client.subscribe(topic)
            return client

        client = await self.run(connect())
        try:
            yield client
        finally:
            self.thaw()
            await self.run(client.close())

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[ClientThread]:
        self._thread.start()
        try:
            yield self
        finally:
            self.thaw()
            self.loop.call_soon_threadsafe(self.loop.stop)
            await asyncio.to_thread(self._thread.join)
            self.loop.close()


async def slow_consumers(http: httpx.AsyncClient, node: GatewayProcess) -> int:
    """How many connections ``node`` closed as slow consumers, from its metrics."""
    metrics = (await http.get(node.url + "/metrics")).text
    found = re.search(r'^eventwire_disconnects_total\{code="4008"\} (\S+)$', metrics, re.M)
    return 0 if found is None else int(float(found[1]))


async def test_a_slow_consumer_closed_with_4008_recovers_every_event_from_history(
    broker_server: BrokerServer,  # noqa: F811
    start_node: StartNode,  # noqa: F811
) -> None:
    node = await start_node(broker_server.url, "--max-outbound-buffer", str(BUFFER))
    ledger = Ledger()
    async with (
        httpx.AsyncClient(timeout=10) as http,
        Recorder(node.ws_url) as fast,
        ClientThread().running() as thread,
        thread.client(node.ws_url, TOPIC) as slow,
    ):
        await fast.subscribe(TOPIC)
        publisher = SteadyPublisher(http, [node.url], [TOPIC], ledger, padding=PADDING)
        await publisher.run(20, interval=0.002)
        await thread.run(slow.has(TOPIC, ledger.accepted[TOPIC]))

        first_session = slow.session_id
        thread.freeze()
        stop = asyncio.Event()
        load = asyncio.create_task(publisher.run(2000, interval=0.002, stop=stop))
        async with asyncio.timeout(BLOCKED_FOR / 2):
            while not await slow_consumers(http, node):  # noqa: ASYNC110 (another process)
                await asyncio.sleep(0.02)
        # Fifty events more (400 KB) while it is closed: all of them must come from
        # the replay, which is therefore larger than the node's outbound buffer.
        closed_at = ledger.count_accepted()
        await ledger.accepted_at_least(closed_at + 50)
        missed = set(ledger.accepted[TOPIC])
        stop.set()
        thread.thaw()  # well within the 2 s the node gives it to answer the close
        await load
        last = await publisher.until_accepted(TOPIC)

        await fast.has(TOPIC, [last])
        await thread.run(slow.has(TOPIC, [last]))
        assert not ledger.refused
        published = ledger.count_accepted()
        assert check_delivery(fast, ledger, TOPIC) == published  # the node kept serving others
        assert check_delivery(slow, ledger, TOPIC) == published
        assert slow.reconnects == 1
        assert slow.last_reconnect is not None
        assert slow.last_reconnect.close_code == CloseCode.SLOW_CONSUMER
        assert slow.last_reconnect.gaps == ()  # replayed from history: nothing to refetch
        replayed = [d for d in slow.log[TOPIC] if d.session != first_session and d.n in missed]
        assert len(replayed) * PADDING > BUFFER
