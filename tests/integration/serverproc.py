"""A throwaway server process for tests: own port, own directory, started and awaited.

``ServerProcess`` is what ``RedisProcess`` and ``NatsProcess`` share: a free
port on 127.0.0.1, a log file in the work directory, a start that waits for
the server to answer and a SIGKILL that looks like a crash to the clients.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest

__all__ = ["STARTUP", "ServerProcess", "free_port", "require_binary", "running"]

STARTUP = 10.0
"""Seconds a server may take to answer for the first time."""


def require_binary(name: str, *, env: str, missing: str, fallback: str | None = None) -> str:
    """The ``name`` binary (or ``fallback``); skips the test without one (fails if ``env``=1)."""
    binary = shutil.which(name)
    if binary is None and fallback is not None and os.access(fallback, os.X_OK):
        binary = fallback
    if binary is None:
        if os.environ.get(env) == "1":
            pytest.fail(missing, pytrace=False)
        pytest.skip(missing)
    return binary


def free_port() -> int:
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

    def args(self) -> list[str]:
        raise NotImplementedError

    def answers(self) -> bool:
        """Whether the server is ready for its clients."""
        raise NotImplementedError

    def start(self) -> None:
        """Start and wait until it answers."""
        log = (self.workdir / f"{self.name.split('-')[0]}.log").open("ab")
        self._process = subprocess.Popen(self.args(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + STARTUP
        while not self.answers():
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self._process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} on {self.port} did not answer within {STARTUP}s")
            time.sleep(0.01)

    def kill(self) -> None:
        """SIGKILL: what a crash looks like to the clients."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=STARTUP)
            self._process = None

    def freeze(self) -> None:
        """SIGSTOP, and return once every thread of the server has stopped.

        ``kill`` returns before the signal takes effect: a server busy on
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
