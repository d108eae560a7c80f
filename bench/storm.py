"""A reconnect storm: every client of a server connecting at once, as after a restart.

Each trial starts a fresh server and lets the load generator connect all its
clients at once (``loadgen storm``): TCP connect, WebSocket handshake, then,
on eventwire, CONNECTED, SUBSCRIBE and SUBSCRIBED; on the baseline its
``registered`` frame. The figure is the time from the first connect() to the
last acknowledgement. The clients then stay open and idle, so each trial
also measures the memory 10,000 subscribed connections take.

At most ``concurrency`` clients are between connect() and their
acknowledgement at a time, fewer than the listen backlog (4096 on both
servers): once the accept queue is full the kernel drops SYNs, and each
dropped SYN costs its client a one-second retransmission, which would time
the kernel's timer rather than the server. The kernel's own counters
(ListenOverflows, TCPSynRetrans) are read around every trial to show that
none was dropped.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import SERVER_CORE, core_jiffies, free_port, running_server, running_storm

__all__ = ["Storm", "StormPlan", "kernel_counters", "measure_storm", "storm_problems"]

_COUNTERS = ("ListenOverflows", "ListenDrops", "TCPSynRetrans")
"""TcpExt counters that say the kernel dropped or retransmitted SYNs."""
LOADGEN_BUSY_PCT = 90.0


@dataclass(frozen=True, slots=True)
class StormPlan:
    clients: int
    concurrency: int
    trials: int
    settle_s: float
    timeout_s: float


@dataclass(slots=True)
class Storm:
    clients: int
    concurrency: int
    seconds: float
    """Median over trials: the first connect() to the last acknowledgement."""
    server_cpu_ms: float
    """Median over trials: the server's CPU time (user and kernel) per client."""
    loadgen_cpu_pct: float
    """Highest over trials."""
    server_core_busy_pct: float
    server_user_pct: float
    trials: list[dict[str, Any]]

    @property
    def each_s(self) -> list[float]:
        return [float(trial["storm_s"]) for trial in self.trials]

    @property
    def each_cpu_ms(self) -> list[float]:
        return [_cpu_ms(trial) for trial in self.trials]


def _cpu_ms(trial: dict[str, Any]) -> float:
    """The server's CPU time per acknowledged client in one storm."""
    return 1000 * float(trial["server_cpu_s"]) / max(1, int(trial["acked"]))


def kernel_counters() -> dict[str, int]:
    """The machine's TcpExt counters of dropped and retransmitted SYNs (/proc/net/netstat)."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    found: dict[str, int] = {}
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            pairs = zip(names.split()[1:], values.split()[1:], strict=True)
            found.update((name, int(value)) for name, value in pairs if name in _COUNTERS)
    return found


def _trial(kind: str, plan: StormPlan, loadgen: Path, log: Path) -> dict[str, Any]:
    """One storm on a fresh server, then its idle clients' memory."""
    port = free_port()
    with running_server(kind, port, log.with_suffix(".server.log")) as server:
        time.sleep(plan.settle_s)
        rss_before = server.rss_kib()
        cpu, jiffies, kernel = server.cpu_seconds(), core_jiffies(SERVER_CORE), kernel_counters()
        args = (loadgen, kind, port, plan.clients, plan.concurrency, plan.timeout_s)
        with running_storm(*args, log.with_suffix(".lg.log")) as lg:
            result = lg.storm(plan.timeout_s + 30)
            cpu_after, jiffies_after = server.cpu_seconds(), core_jiffies(SERVER_CORE)
            kernel_after = kernel_counters()
            time.sleep(plan.settle_s)
            result["rss_before_kib"], result["rss_after_kib"] = rss_before, server.rss_kib()
    result["server_exit"] = server.process.returncode
    result["server_log"] = [line for line in server.log_lines() if line.strip()][:3]
    wall = float(result["wall_s"]) or 1.0
    user, system = (after - before for before, after in zip(cpu, cpu_after, strict=True))
    result["server_cpu_s"] = round(user + system, 3)
    result["server_user_pct"] = round(100 * user / wall, 1)
    busy, total = (after - before for before, after in zip(jiffies, jiffies_after, strict=True))
    result["server_core_busy_pct"] = round(100 * busy / max(1, total), 1)
    result["kernel"] = {name: kernel_after[name] - kernel.get(name, 0) for name in kernel_after}
    return result


def measure_storm(kind: str, plan: StormPlan, loadgen: Path, out: Path) -> Storm:
    """``plan.trials`` storms, each on a server of its own."""
    trials = [
        _trial(kind, plan, loadgen, out / f"{kind}-storm-{i + 1}") for i in range(plan.trials)
    ]
    return Storm(
        clients=plan.clients,
        concurrency=plan.concurrency,
        seconds=statistics.median(float(t["storm_s"]) for t in trials),
        server_cpu_ms=statistics.median(_cpu_ms(trial) for trial in trials),
        loadgen_cpu_pct=max(float(t["cpu_pct"]) for t in trials),
        server_core_busy_pct=statistics.median(float(t["server_core_busy_pct"]) for t in trials),
        server_user_pct=statistics.median(float(t["server_user_pct"]) for t in trials),
        trials=trials,
    )


def storm_problems(kind: str, storm: Storm) -> list[str]:
    """Clients that never got their acknowledgement, dropped SYNs, a busy load generator."""
    found = []
    for i, trial in enumerate(storm.trials, 1):
        name = f"storm {i}"
        if int(trial["acked"]) < storm.clients:
            codes = trial["close_codes"]
            found.append(f"{name}: {trial['acked']} of {storm.clients} acknowledged ({codes})")
        dropped = {k: v for k, v in trial["kernel"].items() if v}
        if dropped:
            found.append(f"{name}: the kernel counted {dropped} on the machine during the storm")
        if float(trial["cpu_pct"]) > LOADGEN_BUSY_PCT:
            found.append(f"{name}: load generator at {trial['cpu_pct']}% CPU")
        if trial["server_exit"] != 0:
            found.append(f"{name}: the {kind} server exited with {trial['server_exit']}")
        if trial["server_log"]:
            found.append(f"{name}: the {kind} server logged: {'; '.join(trial['server_log'])}")
    return found
