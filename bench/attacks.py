"""eventwire under attack: what a flood costs honest clients, and what a never-reading peer costs.

- **Flood fairness**: ``attack flood`` (bench/attack.c) times two probes, a
  WebSocket client's PING command and an HTTP client's ``GET /healthz``, one
  request every 10 ms, first alone, then while one more connection floods
  the gateway with WebSocket control frames from the same process and core.
  The gateway pauses a connection past its frame budget and closes one that
  keeps at it (4029); the flooder then reconnects, so the flood lasts the
  whole window. The figure is each probe's p99 under the flood against its
  p99 alone, measured in the same run on the same server.
- **A never-reading pinger**: ``attack pinger`` sends pings as fast as its
  socket takes them and never reads, so every pong owed to it stays on the
  server. The figure is the server's peak RSS growth meanwhile (sampled
  VmRSS and the kernel's VmHWM), against ``max_outbound_buffer`` + 1 MiB.

Only eventwire is attacked: the baseline has no frame budget to measure.
Both run on a gateway with the bench's settings but the default
``max_outbound_buffer``, each kind of flood and the pinger on a fresh one.
"""

from __future__ import annotations

import statistics
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import Server, free_port, run_tool, running_server
from bench.scenarios import scrape_metrics, server_problems

__all__ = ["AttackPlan", "Attacks", "Flood", "Pinger", "Probe", "measure_attacks"]

MIB_KIB = 1024
_PROBES = ("ping", "healthz")


@dataclass(frozen=True, slots=True)
class AttackPlan:
    """Sizes of the attack runs; the defaults take about two minutes."""

    idle_s: float = 5.0
    flood_s: float = 6.0
    """Long enough for the gateway to close the flooder (after about 4 s) and for it to return."""
    interval_ms: float = 10.0
    trials: int = 5
    floods: tuple[str, ...] = ("ping", "pong")
    pinger_s: float = 6.0
    pinger_rcvbuf: int = 4096
    pinger_payload: int = 125
    """The largest a control frame may carry: every pong owed is as large as it can be."""
    max_outbound_buffer: int = 1024 * 1024
    """The gateway's default."""


@dataclass(slots=True)
class Probe:
    """One probe's round trips in one kind of window, over every trial (ms).

    The figure is the median of the windows' p99s: a stall of the machine
    (another process on a shared core) spoils one window, while a stall the
    flood causes shows in every flooded window.
    """

    p99_ms: float
    """The median over windows of each window's p99."""
    trial_p99_ms: list[float]
    pooled_p50_ms: float
    pooled_p99_ms: float
    max_ms: float
    samples: int
    skipped: int
    """Ticks at which the previous request was still unanswered, so none was sent."""
    lost: int


@dataclass(slots=True)
class Flood:
    frame: str
    idle: dict[str, Probe]
    """By probe: ``ping`` (the PING command) and ``healthz``."""
    flooded: dict[str, Probe]
    closed: int
    """Times the server closed the flooder, over every trial."""
    close_codes: dict[str, int]
    frames_sent: int
    flood_s: float
    disconnects: dict[str, float]
    """The server's own count of connections it closed, by code (its /metrics)."""
    trials: list[dict[str, Any]]
    problems: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Pinger:
    goal_kib: int
    rss_before_kib: int
    peak_kib: int
    kernel_peak: bool
    """Whether VmHWM could be reset first, so that the peak is the kernel's, not only sampled."""
    disconnects: dict[str, float]
    raw: dict[str, Any]
    problems: list[str] = field(default_factory=list)

    @property
    def growth_kib(self) -> int:
        return self.peak_kib - self.rss_before_kib

    @property
    def close_code(self) -> str:
        """The close code the pinger read, else the one the server counted, else none."""
        if int(self.raw["close_code"]) >= 0:
            return str(self.raw["close_code"])
        return ", ".join(code for code in self.disconnects) or "none"


@dataclass(slots=True)
class Attacks:
    plan: AttackPlan
    floods: list[Flood]
    pinger: Pinger


def _percentile(ordered: list[int], q: float) -> float:
    return ordered[round(q * (len(ordered) - 1))] / 1000 if ordered else -1.0


def _with_omitted(each_us: list[int], interval_us: int) -> list[int]:
    """The samples, plus those the probe could not send while it waited (coordinated omission).

    A probe sends nothing while its request is unanswered, so a stall of
    100 ms would be one sample instead of ten. As HdrHistogram does, a
    sample longer than the interval brings the ones a request sent at each
    tick meanwhile would have taken: the sample less one interval, less two...
    """
    found = list(each_us)
    for us in each_us:
        found.extend(range(us - interval_us, interval_us - 1, -interval_us))
    return found


def _probe(runs: list[dict[str, Any]], interval_ms: float) -> Probe:
    """Over ``runs``, with the requests each stall kept from being sent."""
    interval_us = round(interval_ms * 1000)
    each_run = [sorted(_with_omitted(run["each_us"], interval_us)) for run in runs]
    each = sorted(us for run in each_run for us in run)
    trial_p99 = [_percentile(run, 0.99) for run in each_run]
    return Probe(
        p99_ms=statistics.median(trial_p99),
        trial_p99_ms=trial_p99,
        pooled_p50_ms=_percentile(each, 0.5),
        pooled_p99_ms=_percentile(each, 0.99),
        max_ms=_percentile(each, 1.0),
        samples=len(each),
        skipped=sum(int(run["skipped"]) for run in runs),
        lost=sum(int(run["lost"]) for run in runs),
    )


def _disconnects(port: int) -> dict[str, float]:
    return {k: v for k, v in scrape_metrics(port).items() if k.startswith("disconnects")}


def _delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Close codes counted in between, by code: ``disconnects{code="4029"}`` becomes 4029."""
    found = {}
    for key, value in after.items():
        if value - before.get(key, 0):
            found[key.split('"')[1]] = value - before.get(key, 0)
    return found


def _server(port: int, plan: AttackPlan, log: Path) -> AbstractContextManager[Server]:
    args = ("memory://", "--max-outbound-buffer", str(plan.max_outbound_buffer))
    return running_server("eventwire", port, log, args=args)


def _flood_trial(tool: Path, port: int, frame: str, plan: AttackPlan, log: Path) -> dict[str, Any]:
    argv = [str(tool), "flood", str(port), str(plan.idle_s), str(plan.flood_s), frame]
    argv.append(str(plan.interval_ms))
    before = _disconnects(port)
    result = run_tool(argv, plan.idle_s + plan.flood_s + 30, log)
    result["disconnects"] = _delta(before, _disconnects(port))
    return result


def _flood(tool: Path, frame: str, plan: AttackPlan, out: Path) -> Flood:
    """``plan.trials`` windows alone then flooded, on one fresh gateway."""
    port, log = free_port(), out / f"attack-{frame}-flood"
    with _server(port, plan, log.with_suffix(".server.log")) as server:
        trials = [
            _flood_trial(tool, port, frame, plan, log.with_suffix(f".{i + 1}.log"))
            for i in range(plan.trials)
        ]
    codes: dict[str, int] = {}
    disconnects: dict[str, float] = {}
    every = plan.interval_ms
    for trial in trials:
        for code, n in trial["flooder"]["close_codes"].items():
            codes[code] = codes.get(code, 0) + int(n)
        for code, value in trial["disconnects"].items():
            disconnects[code] = disconnects.get(code, 0) + value
    result = Flood(
        frame=frame,
        idle={name: _probe([t["idle"][name] for t in trials], every) for name in _PROBES},
        flooded={name: _probe([t["flood"][name] for t in trials], every) for name in _PROBES},
        closed=sum(int(t["flooder"]["closed"]) + int(t["flooder"]["resets"]) for t in trials),
        close_codes=codes,
        frames_sent=sum(int(t["flooder"]["frames"]) for t in trials),
        flood_s=sum(float(t["flooder"]["seconds"]) for t in trials),
        disconnects=disconnects,
        trials=trials,
    )
    result.problems = _flood_problems(result) + server_problems(server)
    return result


def _flood_problems(flood: Flood) -> list[str]:
    found = []
    for window, probes in (("alone", flood.idle), ("flooded", flood.flooded)):
        for name, probe in probes.items():
            if probe.lost:
                found.append(f"{flood.frame} flood, {name} probe {window}: {probe.lost} unanswered")
    errors = sum(int(t["probe_errors"]) for t in flood.trials)
    if errors:
        found.append(f"{flood.frame} flood: {errors} probe requests failed")
    return found


class _PeakSampler:
    """The highest VmRSS of a server, sampled every 10 ms from a thread while a run lasts."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.peak = server.rss_kib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.server.rss_kib())

    def __enter__(self) -> _PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.server.rss_kib())


def _pinger(tool: Path, plan: AttackPlan, out: Path) -> Pinger:
    port, log = free_port(), out / "attack-pinger"
    argv = [str(tool), "pinger", str(port), str(plan.pinger_s), str(plan.pinger_rcvbuf)]
    argv.append(str(plan.pinger_payload))
    with _server(port, plan, log.with_suffix(".server.log")) as server:
        before, disconnects = server.rss_kib(), _disconnects(port)
        kernel_peak = server.reset_peak()
        with _PeakSampler(server) as sampler:
            raw = run_tool(argv, plan.pinger_s + 30, log.with_suffix(".log"))
        peak = max(sampler.peak, server.peak_rss_kib() if kernel_peak else 0)
        disconnects = _delta(disconnects, _disconnects(port))
    result = Pinger(
        goal_kib=plan.max_outbound_buffer // 1024 + MIB_KIB,
        rss_before_kib=before,
        peak_kib=peak,
        kernel_peak=kernel_peak,
        disconnects=disconnects,
        raw=raw,
    )
    result.problems = server_problems(server, expected=("slow consumer",))
    return result


def measure_attacks(plan: AttackPlan, tool: Path, out: Path) -> Attacks:
    """Every kind of flood in ``plan``, then the never-reading pinger."""
    floods = [_flood(tool, frame, plan, out) for frame in plan.floods]
    return Attacks(plan, floods, _pinger(tool, plan, out))
