"""A reconnection that reaches a peer which never answers is given up, and tried again.

After a failover behind an address, or a proxy whose backend died, a new TCP
connection may be accepted and then never answered. A node's link must not
wait for that answer forever: it gives the attempt up, reconnects, and is
ready again as soon as the path works.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from eventwire.server import Gateway
from eventwire.testing import TestClient
from tests.integration.conftest import (
    StartGateway,
    assert_back_and_delivering,
    eventually,
)
from tests.integration.redisproc import RedisProcess


class SilentProxy:
    """Forwards to Redis; ``mute_next(n)`` mutes the next n connections it accepts.

    A muted connection stays open and forwards nothing, either way: a peer
    that accepts and never answers.
    """

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = 0
        self.accepted = 0
        self._to_mute = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def mute_next(self, connections: int) -> None:
        self._to_mute = connections

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[SilentProxy]:
        server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()
            for writer in self._writers:
                writer.transport.abort()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self._writers += [writer, up_writer]
        forwarding = asyncio.Event()
        if self._to_mute:
            self._to_mute -= 1
        else:
            forwarding.set()
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.get_running_loop().create_task(self._pipe(source, sink, forwarding))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _pipe(
        source: asyncio.StreamReader, sink: asyncio.StreamWriter, forwarding: asyncio.Event
    ) -> None:
        with contextlib.suppress(OSError):
            while data := await source.read(65536):
                if forwarding.is_set():
                    sink.write(data)
                    await sink.drain()
        sink.transport.abort()


async def test_a_reconnection_to_a_peer_that_never_answers_is_tried_again(
    redis_server: RedisProcess, start_gateway: StartGateway
) -> None:
    async with SilentProxy(redis_server.port).running() as proxy:
        node: Gateway = await start_gateway(broker=proxy.url)
        async with TestClient(node.ws_url) as client:
            await client.subscribe("room:lobby")
            before = proxy.accepted
            proxy.mute_next(1)  # the link's first reconnection meets a peer that never answers
            redis_server.command("CLIENT", "KILL", "TYPE", "pubsub")
            await eventually(lambda: not node.ready, "the node notices")
            await eventually(lambda: proxy.accepted > before, "the node reconnects")
            await assert_back_and_delivering(node, client)
            assert proxy.accepted == before + 2  # given up once, then back on a second one
