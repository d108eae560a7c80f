"""What is measured, on one server: fan-out throughput, latency, a reconnect storm, memory.

Each throughput scenario gets a fresh server process, so one phase's heap
never inflates another's memory figure, and both servers go through exactly
the same steps with the same load generator.
"""

from __future__ import annotations

import re
import statistics
import time
import urllib.request
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import (
    SERVER_CORE,
    BenchError,
    LoadGen,
    Server,
    core_jiffies,
    free_port,
    running_loadgen,
    running_server,
)
from bench.storm import Storm, StormPlan, measure_storm, storm_problems

__all__ = [
    "Burst",
    "Fanout",
    "Latency",
    "Memory",
    "Plan",
    "ServerResults",
    "fanout_problems",
    "measure_fanout",
    "measure_latency",
    "measure_server",
    "phase_problems",
    "run_phase",
    "scrape_metrics",
    "server_problems",
    "wait_ready",
]

LOADGEN_BUSY_PCT = 90.0
"""Above this the load generator, not the server, may be what limits a figure."""


@dataclass(frozen=True, slots=True)
class Burst:
    """A closed-loop burst: ``events`` in batches, at most ``window`` not yet delivered.

    A batch is one ``POST /v1/publish`` for eventwire (the event itself as the
    body when ``batch`` is 1) and one write of ``batch`` frames on the
    publisher WebSocket for the baseline.
    """

    events: int
    batch: int
    window: int

    @property
    def requests_in_flight(self) -> int:
        """The most publishes the window lets the load generator have outstanding."""
        return max(1, self.window // self.batch)

    def command(self, timeout: float) -> str:
        return f"burst {self.events} {self.batch} {self.window} {timeout}"


@dataclass(frozen=True, slots=True)
class Plan:
    """Sizes of one run; the defaults take a few minutes on two cores."""

    small: int = 1_000
    large: int = 10_000
    small_burst: Burst = Burst(events=1_000, batch=20, window=40)
    large_burst: Burst = Burst(events=100, batch=5, window=20)
    single_burst: Burst = Burst(events=1_000, batch=1, window=8)
    """At ``small`` subscribers, one event per publish: no batch to coalesce."""
    trials: int = 5
    latency_events: int = 30
    latency_rate: float = 5.0
    settle_s: float = 1.0
    phase_timeout_s: float = 90.0
    storm_concurrency: int = 4_000
    """Clients of a storm between connect() and their acknowledgement at once: under the
    listen backlog (4096), so that the kernel drops no SYN (see bench/storm.py)."""
    storm_trials: int = 5

    @property
    def storm(self) -> StormPlan:
        """A storm of ``large`` clients, each trial on a fresh server."""
        return StormPlan(
            clients=self.large,
            concurrency=self.storm_concurrency,
            trials=self.storm_trials,
            settle_s=self.settle_s,
            timeout_s=self.phase_timeout_s,
        )


@dataclass(slots=True)
class Fanout:
    subscribers: int
    deliveries_per_s: float
    """Median over trials of frames received by all subscribers / first-to-last receipt."""
    loadgen_cpu_pct: float
    """Highest over trials: the load generator's CPU time / wall time."""
    server_core_busy_pct: float
    """Median over trials: how busy the server's core was (process, kernel and softirq)."""
    server_user_pct: float
    """Median over trials: the server's user-space (Python) CPU time / wall time."""
    trials: list[dict[str, Any]]
    warmup: dict[str, Any]


@dataclass(slots=True)
class Latency:
    subscribers: int
    events_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    samples: int
    loadgen_cpu_pct: float
    server_core_busy_pct: float
    server_user_pct: float
    raw: dict[str, Any]


@dataclass(slots=True)
class Memory:
    """Memory per idle subscribed connection, measured once per server that held them all.

    Each sample is a fresh server's VmRSS before its clients connected and
    once they were all subscribed and idle: the fan-out run's and each storm's.
    """

    connections: int
    samples: list[dict[str, Any]]

    @property
    def each_kib(self) -> list[float]:
        return [
            (int(s["rss_after_kib"]) - int(s["rss_before_kib"])) / self.connections
            for s in self.samples
        ]

    @property
    def kib_per_connection(self) -> float:
        """The median over samples."""
        return statistics.median(self.each_kib)


@dataclass(slots=True)
class ServerResults:
    kind: str
    fanout_small: Fanout
    fanout_large: Fanout
    fanout_single: Fanout
    """At ``plan.small`` subscribers, one event per publish."""
    latency: Latency
    memory: Memory
    storm: Storm
    problems: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)


def run_phase(
    loadgen: LoadGen,
    servers: Sequence[Server],
    cores: Collection[int],
    command: str,
    timeout: float,
) -> dict[str, Any]:
    """One load generator phase, with the servers' CPU use over it added (summed)."""
    cores = sorted(set(cores))
    cpu_before = [server.cpu_seconds() for server in servers]
    jiffies_before = [core_jiffies(core) for core in cores]
    result = loadgen.command(command, timeout + 30)
    cpu_after = [server.cpu_seconds() for server in servers]
    jiffies_after = [core_jiffies(core) for core in cores]
    wall = float(result["wall_s"]) or 1.0
    user = sum(after[0] - before[0] for before, after in zip(cpu_before, cpu_after, strict=True))
    kernel = sum(after[1] - before[1] for before, after in zip(cpu_before, cpu_after, strict=True))
    busy = sum(a[0] - b[0] for b, a in zip(jiffies_before, jiffies_after, strict=True))
    total = sum(a[1] - b[1] for b, a in zip(jiffies_before, jiffies_after, strict=True))
    result["server_cpu_pct"] = round(100 * (user + kernel) / wall, 1)
    result["server_user_pct"] = round(100 * user / wall, 1)
    result["server_core_busy_pct"] = round(100 * busy / max(1, total), 1)
    return result


def measure_fanout(
    loadgen: LoadGen,
    servers: Sequence[Server],
    cores: Collection[int],
    burst: Burst,
    trials: int,
    timeout: float,
) -> Fanout:
    """A short warm-up burst, not counted, then ``trials`` measured ones."""
    warmup = Burst(max(burst.batch, burst.events // 10), burst.batch, burst.window)
    warm = run_phase(loadgen, servers, cores, warmup.command(timeout), timeout)
    measured = [
        run_phase(loadgen, servers, cores, burst.command(timeout), timeout) for _ in range(trials)
    ]
    return _summary(warm, measured)


def _fanout(loadgen: LoadGen, server: Server, burst: Burst, plan: Plan) -> Fanout:
    return measure_fanout(
        loadgen, [server], [SERVER_CORE], burst, plan.trials, plan.phase_timeout_s
    )


def _summary(warm: dict[str, Any], trials: list[dict[str, Any]]) -> Fanout:
    return Fanout(
        subscribers=int(trials[0]["subscribers"]),
        deliveries_per_s=statistics.median(float(t["deliveries_per_s"]) for t in trials),
        loadgen_cpu_pct=max(float(t["cpu_pct"]) for t in trials),
        server_core_busy_pct=statistics.median(float(t["server_core_busy_pct"]) for t in trials),
        server_user_pct=statistics.median(float(t["server_user_pct"]) for t in trials),
        trials=trials,
        warmup=warm,
    )


def _latency(loadgen: LoadGen, server: Server, plan: Plan) -> Latency:
    return measure_latency(
        loadgen,
        [server],
        [SERVER_CORE],
        plan.latency_events,
        plan.latency_rate,
        plan.phase_timeout_s,
    )


def measure_latency(
    loadgen: LoadGen,
    servers: Sequence[Server],
    cores: Collection[int],
    events: int,
    rate: float,
    timeout: float,
) -> Latency:
    """``events`` published one at a time at ``rate`` a second; every receipt is a sample."""
    raw = run_phase(loadgen, servers, cores, f"rate {events} {rate} {timeout}", timeout)
    return Latency(
        subscribers=int(raw["subscribers"]),
        events_per_s=rate,
        p50_ms=float(raw["latency_p50_ms"]),
        p99_ms=float(raw["latency_p99_ms"]),
        max_ms=float(raw["latency_max_ms"]),
        samples=int(raw["latency_samples"]),
        loadgen_cpu_pct=float(raw["cpu_pct"]),
        server_core_busy_pct=float(raw["server_core_busy_pct"]),
        server_user_pct=float(raw["server_user_pct"]),
        raw=raw,
    )


def wait_ready(loadgen: LoadGen, wanted: int) -> None:
    """Wait until the load generator has ``wanted`` subscribers and its publisher."""
    ready = loadgen.ready(timeout=150)
    if not ready["publisher"] or int(ready["subscribers"]) < wanted:
        raise BenchError(f"only {ready['subscribers']} of {wanted} subscribed: {ready}")


def phase_problems(name: str, result: dict[str, Any]) -> list[str]:
    """What in one phase's result says the server misbehaved or the figure is suspect."""
    found = []
    received, expected = int(result["received"]), int(result["expected"])
    if result["timed_out"]:
        found.append(f"{name}: timed out after {received} of {expected} deliveries")
    elif received < expected:
        found.append(f"{name}: {received} of {expected} deliveries")
    if result["closed"]:
        codes = result["close_codes"]
        found.append(f"{name}: {result['closed']} subscribers closed, close codes {codes}")
    if result["http_errors"]:
        found.append(f"{name}: {result['http_errors']} failed publishes: {result['http_error']}")
    if result["other_frames"]:
        found.append(f"{name}: {result['other_frames']} unexpected frames")
    if float(result["cpu_pct"]) > LOADGEN_BUSY_PCT:
        found.append(f"{name}: load generator at {result['cpu_pct']}% CPU")
    return found


def _publishes(burst: Burst) -> str:
    return "one event per publish" if burst.batch == 1 else f"batches of {burst.batch}"


def fanout_problems(name: str, fanout: Fanout) -> list[str]:
    found = phase_problems(f"{name}, warm-up burst", fanout.warmup)
    for i, trial in enumerate(fanout.trials):
        found += phase_problems(f"{name}, burst {i + 1}", trial)
    return found


def scrape_metrics(port: int) -> dict[str, float]:
    """The gateway's non-zero drop, error and disconnect counters."""
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    wanted = re.compile(r"^eventwire_(drops|errors|disconnects)_total(\{.*\})? (\S+)$")
    found = {}
    for line in text.splitlines():
        match = wanted.match(line)
        if match and float(match.group(3)):
            found[f"{match.group(1)}{match.group(2) or ''}"] = float(match.group(3))
    return found


def server_problems(server: Server, expected: Collection[str] = ()) -> list[str]:
    """Anything the server logged but the ``expected`` lines, and an unclean exit on SIGTERM."""
    found = []
    code = server.process.returncode
    if code != 0:
        found.append(f"{server.kind} server exited with {code} on SIGTERM")
    lines = [
        line
        for line in server.log_lines()
        if line.strip() and not any(words in line for words in expected)
    ]
    if lines:
        shown = "; ".join(lines[:3])
        found.append(f"{server.kind} server logged {len(lines)} lines, first: {shown}")
    return found


class _Run:
    """One server kind through every scenario, collecting problems on the way."""

    def __init__(self, kind: str, plan: Plan, loadgen: Path, out: Path) -> None:
        self.kind = kind
        self.plan = plan
        self.binary = loadgen
        self.out = out
        self.problems: list[str] = []
        self.metrics: dict[str, float] = {}

    def _finish(self, server: Server) -> None:
        if self.kind == "eventwire":
            for name, value in scrape_metrics(server.port).items():
                self.metrics[name] = self.metrics.get(name, 0) + value

    def small(self, burst: Burst, tag: str = "") -> Fanout:
        """Throughput at ``plan.small`` subscribers, on a server of its own."""
        port, n = free_port(), self.plan.small
        log = self.out / f"{self.kind}-{n}{tag}"
        with running_server(self.kind, port, log.with_suffix(".server.log")) as server:
            with running_loadgen(self.binary, self.kind, port, n, log.with_suffix(".lg.log")) as lg:
                wait_ready(lg, n)
                fanout = _fanout(lg, server, burst, self.plan)
            self._finish(server)
        self.problems += server_problems(server)
        self.problems += fanout_problems(f"{n} subscribers, {_publishes(burst)}", fanout)
        return fanout

    def large(self) -> tuple[Fanout, Latency, dict[str, Any]]:
        port, n = free_port(), self.plan.large
        log = self.out / f"{self.kind}-{n}"
        with running_server(self.kind, port, log.with_suffix(".server.log")) as server:
            time.sleep(self.plan.settle_s)
            before = server.rss_kib()
            with running_loadgen(self.binary, self.kind, port, n, log.with_suffix(".lg.log")) as lg:
                wait_ready(lg, n)
                time.sleep(self.plan.settle_s)
                after = server.rss_kib()
                memory = {"source": "fan-out run", "rss_before_kib": before, "rss_after_kib": after}
                fanout = _fanout(lg, server, self.plan.large_burst, self.plan)
                time.sleep(self.plan.settle_s)
                latency = _latency(lg, server, self.plan)
            self._finish(server)
        self.problems += server_problems(server)
        self.problems += fanout_problems(
            f"{n} subscribers, {_publishes(self.plan.large_burst)}", fanout
        )
        self.problems += phase_problems(f"{n} subscribers, latency", latency.raw)
        return fanout, latency, memory


def _memory(connections: int, fanout_run: dict[str, Any], storm: Storm) -> Memory:
    """The fan-out run's sample and one per storm: each a fresh server holding every client."""
    samples = [fanout_run]
    for i, trial in enumerate(storm.trials, 1):
        rss = {key: trial[key] for key in ("rss_before_kib", "rss_after_kib")}
        samples.append({"source": f"storm {i}", **rss})
    return Memory(connections, samples)


def measure_server(kind: str, plan: Plan, loadgen: Path, out: Path) -> ServerResults:
    """Every figure for one server: ``kind`` is ``baseline`` or ``eventwire``."""
    run = _Run(kind, plan, loadgen, out)
    single = run.small(plan.single_burst, tag="-single")
    small = run.small(plan.small_burst)
    large, latency, fanout_memory = run.large()
    storm = measure_storm(kind, plan.storm, loadgen, out)
    run.problems += storm_problems(kind, storm)
    memory = _memory(plan.large, fanout_memory, storm)
    return ServerResults(
        kind, small, large, single, latency, memory, storm, run.problems, run.metrics
    )
