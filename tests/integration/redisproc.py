"""A throwaway ``redis-server`` for tests: own port, own directory, nothing saved.

Never the shared Redis on 6379: every test that needs Redis starts one of
these, so tests can flush, kill and restart it at will.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

__all__ = ["RedisProcess", "free_port", "require_redis_server"]

_STARTUP = 10.0
"""Seconds a redis-server may take to answer its first PING."""


def require_redis_server() -> str:
    """The redis-server binary; skips the test without one (fails if EVENTWIRE_REQUIRE_REDIS=1)."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not on PATH (make system-deps installs it)"
        if os.environ.get("EVENTWIRE_REQUIRE_REDIS") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return binary


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisProcess:
    """One redis-server on 127.0.0.1:``port``; ``start``/``kill`` may be repeated."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.binary = require_redis_server()
        self.workdir = workdir
        self.port = port or free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start and wait until it answers PING."""
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.workdir),
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "no",
        ]  # fmt: skip
        log = (self.workdir / "redis.log").open("ab")
        self._process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + _STARTUP
        while not self._answers_ping():
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on {self.port} did not answer within {_STARTUP}s")
            time.sleep(0.01)

    def kill(self) -> None:
        """SIGKILL: what a crash looks like to the clients."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=_STARTUP)
            self._process = None

    def command(self, *args: str) -> bytes:
        """Run one command (inline protocol) and return the raw first reply line."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn:
            conn.sendall(_resp(args))
            return conn.recv(65536)

    def _answers_ping(self) -> bool:
        try:
            return self.command("PING").startswith(b"+PONG")
        except OSError:
            return False


def _resp(args: tuple[str, ...]) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)
