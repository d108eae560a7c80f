"""A gateway in a process of its own, for attacks whose cost is the server's memory.

An attack that makes the server buffer what it should not shows up in the
process's resident memory; in the test process it would be lost among the
test's own allocations, and the attacker's work would share the server's
event loop. ``MemoryWatch`` samples ``VmRSS`` and reads the kernel's peak
(``VmHWM``, reset through ``clear_refs`` when allowed) so that a buffer that
grew and was freed again is seen too. ``counter`` reads ``/metrics``;
``logged_errors`` reads the process's log for what it must never write.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.gatewayproc import GatewayProcess

__all__ = ["MIB", "MemoryWatch", "counter", "gateway_process", "logged_errors", "rss"]

MIB = 1024 * 1024


@contextlib.asynccontextmanager
async def gateway_process(
    tmp_path: Path, env: dict[str, str], *options: str
) -> AsyncIterator[GatewayProcess]:
    """``eventwire serve`` on the memory broker, with ``EVENTWIRE_*`` settings from ``env``."""
    node = GatewayProcess("gateway", "memory://", tmp_path, *options)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        await node.start()  # the child copies the environment as it starts
    try:
        yield node
    finally:
        await node.kill()
        print(node.log_tail())


def _status(pid: int, field: str) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    assert match is not None, f"no {field} in /proc/{pid}/status"
    return int(match[1]) * 1024


def rss(pid: int) -> int:
    """Bytes of the process's memory that are resident now."""
    return _status(pid, "VmRSS")


class MemoryWatch:
    """The peak resident memory of a process from ``__aenter__`` to ``__aexit__``."""

    def __init__(self, pid: int, every: float = 0.01) -> None:
        self.pid = pid
        self.every = every
        self.before = rss(pid)
        self.peak = self.before
        self._kernel_peak = self._reset_kernel_peak()
        self._task: asyncio.Task[None] | None = None

    def _reset_kernel_peak(self) -> bool:
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            return False  # not allowed here: sampling alone
        return True

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, rss(self.pid))
            await asyncio.sleep(self.every)

    @property
    def growth(self) -> int:
        """Bytes the peak rose over the resident memory at the start."""
        return self.peak - self.before

    async def __aenter__(self) -> MemoryWatch:
        self._task = asyncio.get_running_loop().create_task(self._sample())
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.peak = max(self.peak, rss(self.pid))
        if self._kernel_peak:
            self.peak = max(self.peak, _status(self.pid, "VmHWM"))


async def counter(url: str, name: str, **labels: str) -> float:
    """A sample of the gateway's ``/metrics`` (0 when absent): ``name`` with ``labels``."""
    async with httpx.AsyncClient(base_url=url, timeout=5.0) as client:
        text = (await client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def logged_errors(node: GatewayProcess) -> list[str]:
    """Lines of the process's log that are ERRORs or tracebacks."""
    lines = node.log_path.read_text(errors="replace").splitlines()
    return [line for line in lines if " ERROR " in line or line.startswith("Traceback")]
