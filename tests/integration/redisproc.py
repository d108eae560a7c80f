"""A throwaway ``redis-server`` for tests: own port, own directory, nothing saved.

Never the shared Redis on 6379: every test that needs Redis starts one of
these, so tests can flush, kill and restart it at will.
"""

from __future__ import annotations

import socket
from pathlib import Path

from tests.integration.serverproc import ServerProcess, free_port, require_binary

__all__ = ["RedisProcess", "free_port", "require_redis_server"]


def require_redis_server() -> str:
    """The redis-server binary; skips the test without one (fails if EVENTWIRE_REQUIRE_REDIS=1)."""
    return require_binary(
        "redis-server",
        env="EVENTWIRE_REQUIRE_REDIS",
        missing="redis-server is not on PATH (make system-deps installs it)",
    )


class RedisProcess(ServerProcess):
    """One redis-server on 127.0.0.1:``port``; ``start``/``kill`` may be repeated."""

    name = "redis-server"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(require_redis_server(), workdir, port)

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
        """Run one command (inline protocol) and return the raw first reply line."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn:
            conn.sendall(_resp(args))
            return conn.recv(65536)


def _resp(args: tuple[str, ...]) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)
