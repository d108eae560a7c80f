"""Gateway nodes as real processes: ``python -m eventwire serve`` on a port of their own.

A test starts several on one broker, then kills one (SIGKILL: a crash, to
its clients and to the broker) or stops it (SIGTERM: a graceful shutdown).
Each node listens on a port the kernel picks (``--port 0``) and announces
it in the first line of its banner, so no port is ever raced for. Its log
goes to a file; ``log_tail()`` puts it in failure messages, and the
``start_node`` fixture prints every node's log after a test, which pytest shows
only when the test failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.integration.serverproc import STARTUP

__all__ = ["GatewayProcess", "StartNode", "start_node"]

_BANNER = re.compile(rb"^eventwire \S+ serving on (http://\S+) \(broker ")

StartNode = Callable[..., Awaitable["GatewayProcess"]]
"""``await start_node(broker_url, *serve_options)``: a node, stopped after the test."""


class GatewayProcess:
    """One ``eventwire serve`` process on ``broker``; ``options`` are more ``serve`` flags."""

    def __init__(self, name: str, broker: str, workdir: Path, *options: str) -> None:
        self.name = name
        self.broker = broker
        self.options = options
        self.log_path = workdir / f"{name}.log"
        self.url = ""
        """``http://127.0.0.1:PORT`` once started."""
        self._process: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http") + "/ws"

    @property
    def pid(self) -> int:
        assert self._process is not None, f"{self.name} is not running"
        return self._process.pid

    async def start(self) -> None:
        """Spawn the node and wait for its banner: it is connected to its broker and listening."""
        with self.log_path.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "eventwire", "serve",
                "--host", "127.0.0.1", "--port", "0",
                "--broker", self.broker, "--insecure", "--log-level", "info",
                *self.options,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )  # fmt: skip
        stdout = self._process.stdout
        assert stdout is not None
        try:
            line = await asyncio.wait_for(stdout.readline(), STARTUP)
        except TimeoutError:
            line = b""
        banner = _BANNER.match(line)
        if banner is None:
            await self.kill()
            raise RuntimeError(f"{self.name} did not start (read {line!r})\n{self.log_tail()}")
        self.url = banner[1].decode()
        self._drain = asyncio.get_running_loop().create_task(self._read_rest(stdout))

    async def kill(self) -> None:
        """SIGKILL: no goodbye to its clients, its broker connections just drop."""
        await self._end(signal.SIGKILL)

    async def stop(self) -> None:
        """SIGTERM: a graceful shutdown (clients are closed with 1001); SIGKILL if it hangs."""
        await self._end(signal.SIGTERM)

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return f"--- {self.name}: no log"
        shown = "\n".join(text.splitlines()[-lines:])
        return f"--- {self.name} ({self.url or 'not started'}), last lines of its log:\n{shown}"

    async def _end(self, sig: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.returncode is None:
            process.send_signal(sig)
            try:
                await asyncio.wait_for(process.wait(), STARTUP)
            except TimeoutError:
                process.kill()
                await process.wait()
        drain, self._drain = self._drain, None
        if drain is not None:
            await drain

    @staticmethod
    async def _read_rest(stdout: asyncio.StreamReader) -> None:
        """Read the rest of stdout (the banner's other lines) so the node never blocks on it."""
        while await stdout.read(65536):
            pass


@pytest.fixture
async def start_node(tmp_path: Path) -> AsyncIterator[StartNode]:
    """Start gateway processes; after the test, stop them all and print their logs."""
    started: list[GatewayProcess] = []

    async def start(broker: str, *options: str) -> GatewayProcess:
        node = GatewayProcess(f"node-{len(started) + 1}", broker, tmp_path, *options)
        started.append(node)
        await node.start()
        return node

    try:
        yield start
    finally:
        for node in started:
            with contextlib.suppress(ProcessLookupError):
                await node.kill()
        for node in started:
            print(node.log_tail())
