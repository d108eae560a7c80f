"""A throwaway ``redis-server`` for tests: own port, own directory, nothing saved.

Never the shared Redis on 6379: every test that needs Redis starts one of
these, so tests can flush, kill and restart it at will.
"""

from __future__ import annotations

from pathlib import Path

from bench import servers

from tests.integration.serverproc import free_port, require_binary

__all__ = ["RedisProcess", "free_port", "require_redis_server"]


def require_redis_server() -> str:
    """The redis-server binary; skips the test without one (fails if EVENTWIRE_REQUIRE_REDIS=1)."""
    return require_binary(
        "redis-server",
        env="EVENTWIRE_REQUIRE_REDIS",
        missing="redis-server is not on PATH (make system-deps installs it)",
    )


class RedisProcess(servers.RedisProcess):
    """One redis-server on 127.0.0.1:``port``; ``start``/``kill`` may be repeated."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(workdir, port, binary=require_redis_server())
