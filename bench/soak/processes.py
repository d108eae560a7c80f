"""The soak's servers: one broker of its own and several ``eventwire serve`` nodes on it.

Redis runs with its append-only file synced before every reply, and
nats-server with JetStream's store in the run's directory, so a broker
killed and started again has every event it acknowledged: a restart "on
its data". Every process is a child of the soak, on 127.0.0.1, and
``Cluster.close`` reaps them all, whatever state the run left them in
(a broker stopped with SIGSTOP included).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from pathlib import Path

import httpx

from bench.servers import STARTUP, DurableRedisProcess, GatewayProcess, NatsProcess

__all__ = ["Broker", "Cluster"]

Broker = DurableRedisProcess | NatsProcess


def _broker(kind: str, workdir: Path) -> Broker:
    folder = workdir / kind
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "redis":
        return DurableRedisProcess(folder)
    if kind == "nats":
        return NatsProcess(folder)
    raise ValueError(f"unknown broker {kind!r}: redis or nats")


class Cluster:
    """A broker and ``size`` nodes on it, all started by ``start`` and reaped by ``close``."""

    def __init__(self, kind: str, size: int, workdir: Path) -> None:
        self.kind = kind
        self.workdir = workdir
        self.broker = _broker(kind, workdir)
        url = self.broker.url
        self.nodes = [GatewayProcess(f"node-{i + 1}", url, workdir) for i in range(size)]
        self._frozen = False
        self._starting: asyncio.Future[None] | None = None

    async def start(self) -> None:
        await self._start_broker()
        await asyncio.gather(*(node.start() for node in self.nodes))

    async def close(self) -> None:
        """Stop every node (SIGTERM, SIGKILL if it hangs) and kill the broker."""
        self.thaw()
        for node in self.nodes:
            with contextlib.suppress(ProcessLookupError, OSError):
                await node.stop()
        if self._starting is not None:  # a start interrupted: its thread may still spawn it
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._starting), STARTUP + 1)
        self.broker.kill()

    def up(self) -> list[GatewayProcess]:
        """The nodes running now."""
        return [node for node in self.nodes if node.running and node.url]

    def urls(self) -> list[str]:
        """The HTTP URLs of the nodes running now."""
        return [node.url for node in self.up()]

    # -- faults --------------------------------------------------------------

    async def kill_node(self, node: GatewayProcess) -> None:
        node.url = ""  # no new client picks it
        await node.kill()

    async def start_node(self, node: GatewayProcess) -> None:
        await node.start()

    def freeze(self) -> None:
        """SIGSTOP the broker: its connections stay open, nothing answers."""
        pid = self.broker.pid
        assert pid is not None, "the broker is not running"
        os.kill(pid, signal.SIGSTOP)
        self._frozen = True

    def thaw(self) -> None:
        pid = self.broker.pid
        if self._frozen and pid is not None:
            os.kill(pid, signal.SIGCONT)
        self._frozen = False

    async def restart_broker(self, down: float) -> float:
        """SIGKILL the broker, start it again ``down`` s later on its files; when it answered."""
        self.broker.kill()
        await asyncio.sleep(down)
        await self._start_broker()
        return time.monotonic()

    async def _start_broker(self) -> None:
        """Start the broker in a thread (it blocks until the broker answers), cancel-safe."""
        self._starting = asyncio.ensure_future(asyncio.to_thread(self.broker.start))
        await asyncio.shield(self._starting)

    async def all_ready(self, http: httpx.AsyncClient, timeout: float) -> float | None:
        """Poll every node's ``/readyz`` until all say ready; when they did, or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answers = await asyncio.gather(
                *(_ready(http, url) for url in self.urls()), return_exceptions=True
            )
            if len(answers) == len(self.nodes) and all(a is True for a in answers):
                return time.monotonic()
            await asyncio.sleep(0.05)
        return None

    def keep_logs(self, folder: Path) -> list[Path]:
        """Copy every log of the run to ``folder``; the copies."""
        folder.mkdir(parents=True, exist_ok=True)
        logs = [node.log_path for node in self.nodes] + [self.broker.log_path]
        kept = []
        for log in logs:
            if log.exists():
                kept.append(Path(shutil.copy(log, folder / log.name)))
        return kept


async def _ready(http: httpx.AsyncClient, url: str) -> bool:
    response = await http.get(url + "/readyz", timeout=1.0)
    return response.status_code == 200
