"""A throwaway ``nats-server -js`` for tests: own port, own store directory.

Never the shared NATS on 4222: every test that needs NATS starts one of
these, so tests can wipe, kill and restart it at will. ``TcpProxy`` sits
between one node and the server, to drop or freeze that node's link alone.
The fixtures are imported by the ``test_nats_*`` modules.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from bench import servers

from tests.integration.serverproc import require_binary, running

__all__ = ["NatsProcess", "TcpProxy", "nats_proxy", "nats_server", "require_nats_server"]

_FALLBACK = "/usr/sbin/nats-server"


def require_nats_server() -> str:
    """The nats-server binary; skips the test without one (fails if EVENTWIRE_REQUIRE_NATS=1)."""
    return require_binary(
        "nats-server",
        env="EVENTWIRE_REQUIRE_NATS",
        missing="nats-server is not installed (make system-deps installs it)",
        fallback=_FALLBACK,
    )


class NatsProcess(servers.NatsProcess):
    """One ``nats-server -js`` on 127.0.0.1:``port``; ``start``/``kill`` may be repeated.

    JetStream keeps its files under ``workdir/store``: a restart after
    ``kill()`` finds them again, a restart after ``wipe()`` starts empty.
    """

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(workdir, port, binary=require_nats_server())


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target``; cuts, refuses or freezes on demand."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = 0
        self.refusing = False
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._trap: tuple[bytes, Callable[[], None]] | None = None
        self._server: asyncio.Server | None = None
        self._pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self._pipes: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def cut(self) -> None:
        """Drop every forwarded connection, as a dead network path would (RST both ways)."""
        pairs, self._pairs = self._pairs, []
        for client, upstream in pairs:
            client.transport.abort()
            upstream.transport.abort()

    def freeze(self) -> None:
        """Keep the connections open but forward nothing: a half-open link."""
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    def before_sending(self, marker: bytes, action: Callable[[], None]) -> None:
        """Call ``action`` once, just before the client's bytes holding ``marker`` go on.

        To break the server at one precise point of a conversation: say, to
        freeze it once a given publish is on its way, so that the publish is
        delivered and its answer is not.
        """
        self._trap = (marker, action)

    def _spring(self, data: bytes) -> None:
        if self._trap is not None and self._trap[0] in data:
            action, self._trap = self._trap[1], None
            action()

    async def close(self) -> None:
        self.thaw()
        self.refusing = True
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self.cut()
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.transport.abort()
            return
        self._pairs.append((writer, up_writer))
        for source, sink, upstream in ((reader, up_writer, True), (up_reader, writer, False)):
            pipe = asyncio.get_running_loop().create_task(self._pipe(source, sink, upstream))
            self._pipes.add(pipe)
            pipe.add_done_callback(self._pipes.discard)

    async def _pipe(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, upstream: bool
    ) -> None:
        try:
            while data := await source.read(65536):
                await self._flowing.wait()
                if upstream:
                    self._spring(data)
                sink.write(data)
                await sink.drain()
        except OSError:
            pass
        finally:
            sink.transport.abort()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsProcess]:
    """A nats-server -js on a free port, killed after the test (whatever the test did to it)."""
    with running(NatsProcess(tmp_path)) as server:
        yield server


@pytest.fixture
async def nats_proxy(nats_server: NatsProcess) -> AsyncIterator[TcpProxy]:
    """A proxy to ``nats_server`` for one node whose link a test breaks."""
    proxy = TcpProxy(nats_server.port)
    await proxy.start()
    try:
        yield proxy
    finally:
        with contextlib.suppress(OSError):
            await proxy.close()
