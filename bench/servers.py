"""Throwaway servers on loopback: redis-server, nats-server -js and ``eventwire serve``.

Shared by the integration tests (``tests/integration/*proc.py`` add pytest's
skips and fixtures around them) and the soak (``bench/soak``). Each server
listens on a port of its own on 127.0.0.1, keeps its files in a directory it
is given, and may be killed and started again on those files: what a crash
and a restart look like to its clients.

Never the machine's shared Redis or NATS: every user starts its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

__all__ = [
    "STARTUP",
    "DurableRedisProcess",
    "GatewayProcess",
    "NatsProcess",
    "RedisProcess",
    "ServerMissing",
    "ServerProcess",
    "find_binary",
    "free_port",
    "running",
]

STARTUP = 10.0
"""Seconds a server may take to answer for the first time."""

_NATS_FALLBACK = "/usr/sbin/nats-server"
_BANNER = re.compile(rb"^eventwire \S+ serving on (http://\S+) \(broker ")


class ServerMissing(RuntimeError):
    """The server's binary is not installed (``make system-deps`` installs it)."""


def find_binary(name: str, fallback: str | None = None) -> str | None:
    """The ``name`` binary on PATH, else ``fallback`` if it is executable."""
    binary = shutil.which(name)
    if binary is None and fallback is not None and os.access(fallback, os.X_OK):
        binary = fallback
    return binary


def _binary(name: str, fallback: str | None = None) -> str:
    binary = find_binary(name, fallback)
    if binary is None:
        raise ServerMissing(f"{name} is not installed (make system-deps installs it)")
    return binary


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ServerProcess:
    """One server on 127.0.0.1:``port``; ``start``/``kill`` may be repeated."""

    name = "server"
    """The binary's name, for the log file and messages."""

    def __init__(self, binary: str, workdir: Path, port: int | None = None) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name.split('-')[0]}.log"

    def args(self) -> list[str]:
        raise NotImplementedError

    def answers(self) -> bool:
        """Whether the server is ready for its clients."""
        raise NotImplementedError

    def start(self) -> None:
        """Start and wait until it answers (blocking: from asyncio, run it in a thread)."""
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(self.args(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP
        while not self.answers():
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self._process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} on {self.port} did not answer within {STARTUP}s")
            time.sleep(0.01)

    def kill(self) -> None:
        """SIGKILL (a stopped process too): what a crash looks like to the clients."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=STARTUP)
            self._process = None

    def freeze(self) -> None:
        """SIGSTOP, and return once every thread of the server has stopped.

        ``os.kill`` returns before the signal takes effect: a server busy on
        another core could still answer what it is sent in the meantime.
        """
        assert self._process is not None, f"{self.name} is not running"
        pid = self._process.pid
        os.kill(pid, signal.SIGSTOP)
        deadline = time.monotonic() + STARTUP
        while not _all_stopped(pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not stop within {STARTUP}s")
            time.sleep(0.0005)

    def thaw(self) -> None:
        """SIGCONT: the server runs again, and reads what it was sent meanwhile."""
        assert self._process is not None, f"{self.name} is not running"
        os.kill(self._process.pid, signal.SIGCONT)


def _all_stopped(pid: int) -> bool:
    """Whether every thread of ``pid`` is stopped (state ``T`` in /proc)."""
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        state = stat.read_text().rpartition(")")[2].split()[0]
        if state not in ("T", "t"):
            return False
    return True


P = TypeVar("P", bound=ServerProcess)


@contextmanager
def running(server: P) -> Iterator[P]:
    """``server`` started, and killed afterwards whatever was done to it."""
    server.start()
    try:
        yield server
    finally:
        server.kill()


class RedisProcess(ServerProcess):
    """One redis-server on 127.0.0.1:``port`` that saves nothing."""

    name = "redis-server"

    def __init__(
        self, workdir: Path, port: int | None = None, *, binary: str | None = None
    ) -> None:
        super().__init__(binary or _binary("redis-server"), workdir, port)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def args(self) -> list[str]:
        return [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.workdir),
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "no",
        ]  # fmt: skip

    def answers(self) -> bool:
        try:
            return self.command("PING").startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *args: str) -> bytes:
        """Run one command and return the raw first reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn:
            conn.sendall(_resp(args))
            return conn.recv(65536)


class DurableRedisProcess(RedisProcess):
    """A redis-server whose append-only file is written and synced before every reply.

    Killed and started again, it has every write it acknowledged.
    """

    def args(self) -> list[str]:
        return [*super().args(), "--appendonly", "yes", "--appendfsync", "always"]


def _resp(args: tuple[str, ...]) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


class NatsProcess(ServerProcess):
    """One ``nats-server -js`` on 127.0.0.1:``port``.

    JetStream keeps its files under ``workdir/store``: a restart after
    ``kill()`` finds them again, a restart after ``wipe()`` starts empty.
    """

    name = "nats-server"

    def __init__(
        self, workdir: Path, port: int | None = None, *, binary: str | None = None
    ) -> None:
        super().__init__(binary or _binary("nats-server", _NATS_FALLBACK), workdir, port)
        self.store = workdir / "store"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def args(self) -> list[str]:
        return [self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store)]

    def wipe(self) -> None:
        """Delete JetStream's files (only while stopped): the next start has lost every stream."""
        assert self._process is None, "wipe() a stopped server"
        shutil.rmtree(self.store, ignore_errors=True)

    def answers(self) -> bool:
        """Whether it accepts a connection and announces JetStream."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                line = conn.makefile("rb").readline()
        except OSError:
            return False
        if not line.startswith(b"INFO "):
            return False
        return bool(json.loads(line[5:]).get("jetstream"))


class GatewayProcess:
    """One ``eventwire serve`` process on ``broker``; ``options`` are more ``serve`` flags.

    It listens on a port the kernel picks (``--port 0``) and announces it in
    the first line of its banner, so no port is ever raced for; a restart
    gets a new one. Its log (stderr) goes to ``workdir/NAME.log``, appended
    to across restarts.
    """

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
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

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
            with contextlib.suppress(ProcessLookupError):
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
