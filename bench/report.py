"""The run's results as docs/benchmarks.md and as JSON.

The Markdown is generated whole from the results, so the figures in the docs
are always those of one real run, baseline included.
"""

from __future__ import annotations

import dataclasses
import os
import platform
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench.attack_report import attack_problems, attack_section
from bench.attacks import Attacks
from bench.cluster import ClusterResults
from bench.cluster_report import cluster_problems, cluster_section
from bench.formatting import busy, count, ms, rates, ratio, spread, wrap
from bench.scenarios import Burst, Fanout, Latency, Plan, ServerResults
from bench.storm import Storm

__all__ = ["Report", "machine_facts"]


def machine_facts() -> dict[str, str]:
    """What the figures depend on: CPU, kernel, interpreter, libraries, and the machine's load.

    Call it before the run: the load average is then other processes' work.
    """
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kib = int(meminfo.read_text().split("MemTotal:", 1)[1].split()[0])
        memory = f"{total_kib / 2**20:.0f} GiB"
    return {
        "load_before": f"{os.getloadavg()[0]:.2f}",
        "cores": str(os.cpu_count()),
        "memory": memory,
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "websockets": version("websockets"),
        "uvloop": version("uvloop"),
        "eventwire": version("eventwire"),
    }


def _fanout_name(subscribers: int, burst: Burst) -> str:
    """A throughput row's name, which says whether eventwire's publishes were batched."""
    if burst.batch == 1:
        return f"deliveries/s, {subscribers:,} subscribers, one event per publish"
    return f"deliveries/s, {subscribers:,} subscribers, batched publishes ({burst.batch} events)"


def _fanout_row(name: str, base: Fanout, ew: Fanout) -> str:
    shown = ratio(ew.deliveries_per_s, base.deliveries_per_s)
    return f"| {name} (higher is better) | {rates(base)} | {rates(ew)} | {shown} |"


@dataclass(slots=True)
class Report:
    machine: dict[str, str]
    plan: Plan
    baseline: ServerResults
    eventwire: ServerResults
    cluster: ClusterResults | None
    """Several nodes through a broker; None when that part was not run."""
    attacks: Attacks | None
    """eventwire under attack; None when that part was not run."""
    elapsed_s: float
    generated: str

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for kind in ("baseline", "eventwire"):
            memory = getattr(self, kind).memory
            data[kind]["memory"]["kib_per_connection"] = round(memory.kib_per_connection, 2)
            data[kind]["memory"]["each_kib"] = [round(each, 2) for each in memory.each_kib]
        return data

    def _row(self, metric: str, base: float, ew: float, show: Any) -> str:
        return f"| {metric} | {show(base)} | {show(ew)} | {ratio(ew, base)} |"

    def _fanouts(self) -> list[tuple[str, Fanout, Fanout]]:
        """The throughput runs in table order: one event per publish first, then batched."""
        b, e, plan = self.baseline, self.eventwire, self.plan
        return [
            (_fanout_name(plan.small, plan.single_burst), b.fanout_single, e.fanout_single),
            (_fanout_name(plan.small, plan.small_burst), b.fanout_small, e.fanout_small),
            (_fanout_name(plan.large, plan.large_burst), b.fanout_large, e.fanout_large),
        ]

    def table(self) -> list[str]:
        b, e, plan = self.baseline, self.eventwire, self.plan
        rate = f"{plan.latency_rate:g} events/s"
        return [
            "| metric | baseline (`websockets.broadcast`) | eventwire | eventwire / baseline |",
            "| --- | ---: | ---: | ---: |",
            *(_fanout_row(name, base, ew) for name, base, ew in self._fanouts()),
            self._row(
                f"latency p50, {plan.large:,} subscribers at {rate} (lower is better)",
                b.latency.p50_ms,
                e.latency.p50_ms,
                ms,
            ),
            self._row(
                f"latency p99, {plan.large:,} subscribers at {rate} (lower is better)",
                b.latency.p99_ms,
                e.latency.p99_ms,
                ms,
            ),
            self._storm_row(b.storm, e.storm),
            f"| server CPU time per client in the storm (lower is better) | {self._cpu(b.storm)} "
            f"| {self._cpu(e.storm)} | {ratio(e.storm.server_cpu_ms, b.storm.server_cpu_ms)} |",
            f"| memory per idle connection, {plan.large:,} subscribed (lower is better) "
            f"| {self._memory(b)} | {self._memory(e)} "
            f"| {ratio(e.memory.kib_per_connection, b.memory.kib_per_connection)} |",
        ]

    def _storm_row(self, base: Storm, ew: Storm) -> str:
        def shown(storm: Storm) -> str:
            return spread(f"{storm.seconds:.2f} s", storm.each_s, digits=2)

        return (
            f"| reconnect storm: {base.clients:,} clients connecting at once, first connect to "
            f"last acknowledgement (lower is better) | {shown(base)} | {shown(ew)} "
            f"| {ratio(ew.seconds, base.seconds)} |"
        )

    def _cpu(self, storm: Storm) -> str:
        return spread(f"{storm.server_cpu_ms:.3f} ms", storm.each_cpu_ms, digits=3)

    def _memory(self, results: ServerResults) -> str:
        memory = results.memory
        return spread(f"{memory.kib_per_connection:.2f} KiB", memory.each_kib, digits=2)

    def cpu_table(self) -> list[str]:
        rows = [
            "| run | load generator CPU, baseline | load generator CPU, eventwire "
            "| server core busy, baseline | server core busy, eventwire |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        b, e, n = self.baseline, self.eventwire, self.plan.large
        runs: list[tuple[str, Fanout | Latency | Storm, Fanout | Latency | Storm]] = [
            *self._fanouts(),
            (f"latency, {n:,} subscribers", b.latency, e.latency),
            (f"reconnect storm, {n:,} clients", b.storm, e.storm),
        ]
        for name, base, ew in runs:
            rows.append(
                f"| {name} | {base.loadgen_cpu_pct:.0f}% | {ew.loadgen_cpu_pct:.0f}% "
                f"| {busy(base)} | {busy(ew)} |"
            )
        return rows

    def _load_share(self) -> str:
        """How busy the latency rate keeps each server, from its own measured capacity.

        The latency run publishes one event at a time, so the capacity it is
        compared with is the one-event-per-publish rate: the batched rates
        include coalescing the latency run never gets.
        """
        offered = self.plan.latency_rate * self.plan.large
        shares = [
            f"{100 * offered / r.fanout_single.deliveries_per_s:.0f}% of {r.kind}'s"
            for r in (self.baseline, self.eventwire)
            if r.fanout_single.deliveries_per_s > 0
        ]
        return (
            f"{offered:,.0f} deliveries/s, {' and '.join(shares)} rate with one event per "
            f"publish (measured at {self.plan.small:,} subscribers)"
        )

    def problems(self) -> list[str]:
        lines = []
        for result in (self.baseline, self.eventwire):
            found = result.problems or ["none"]
            lines += [f"- {result.kind}: {found[0]}", *(f"- {result.kind}: {p}" for p in found[1:])]
        if self.eventwire.metrics:
            shown = ", ".join(f"`{k}` {v:g}" for k, v in sorted(self.eventwire.metrics.items()))
            lines.append(f"- eventwire counters: {shown}")
        if self.cluster is not None:
            lines += cluster_problems(self.cluster)
        if self.attacks is not None:
            lines += attack_problems(self.attacks)
        return lines

    def _batching(self) -> str:
        """Why batched publishes favour eventwire, and what the other row measures."""
        plan = self.plan
        sb, lb, one = plan.small_burst, plan.large_burst, plan.single_burst
        return (
            f"The rows marked *batched publishes* give eventwire {sb.batch} events per "
            f"`POST /v1/publish` ({lb.batch} at {plan.large:,} subscribers); the baseline "
            "receives the same events as consecutive frames on its publisher WebSocket, "
            "because `broadcast()` has no batch API and writes every frame to every "
            "subscriber as it comes. eventwire writes all the frames a connection was given "
            "in one event-loop turn with one system call (`writev`) at the end of the turn, "
            f"so a batch of {sb.batch} events costs each subscriber one send instead of "
            f"{sb.batch}. The row with *one event per publish* is the like-for-like comparison: "
            "eventwire gets one event per request and the baseline one frame per write, with "
            f"up to {one.requests_in_flight} publishes in flight, and each event costs each "
            "subscriber one system call on both servers."
        )

    def _method(self) -> list[str]:
        plan = self.plan
        sb, lb, one = plan.small_burst, plan.large_burst, plan.single_burst
        fanout_time = 1000 * plan.large / self.eventwire.fanout_single.deliveries_per_s
        return [
            "**Load generator**: [bench/loadgen.c](../bench/loadgen.c), one epoll loop in C, "
            "compiled by the bench. It opens every subscriber (handshake, then SUBSCRIBE for "
            "eventwire) and one publisher, and counts every frame received. Python clients "
            "could not receive this many frames a second; the CPU table below shows that the "
            "load generator is not what limits the figures.",
            "**Events**: 200 bytes as delivered, the same JSON envelope from both servers "
            "(`topic`, `event`, `data.entity_id`, `data.payload`, `data.timestamp`, `seq`), all "
            "on one topic every subscriber is subscribed to. eventwire receives them by "
            "`POST /v1/publish` on one kept-alive HTTP/1.1 connection, requests pipelined: "
            '`{"events": [...]}` for a batch, the event itself for one. The baseline '
            "receives them as text frames on a publisher WebSocket and broadcasts each.",
            "**deliveries/s**: events are published as fast as they are delivered, in a closed "
            "loop, with at most a window of events not yet received by every subscriber. "
            f"*One event per publish*: {one.events:,} events per burst at {plan.small:,} "
            f"subscribers, one per request (the baseline: one frame per write), a window of "
            f"{one.window} events, so up to {one.requests_in_flight} requests in flight; "
            "eventwire answers pipelined requests in order, one per event-loop turn, so no two "
            f"events share a write. *Batched*: batches of {sb.batch} with a window of "
            f"{sb.window}, {sb.events:,} events per burst at {plan.small:,} subscribers "
            f"({lb.batch}, {lb.window} and {lb.events:,} at {plan.large:,}). Server buffers stay "
            "bounded, so what is timed is the server's fan-out. The figure is frames received "
            "by all subscribers over the time from the first receipt to the last, the median "
            f"of {count(plan.trials, 'burst')} after one warm-up burst; each row starts a "
            "fresh server.",
            f"**latency**: {plan.latency_events} events at {plan.latency_rate:g} events/s to "
            f"{plan.large:,} subscribers, one per request: {self._load_share()}. Each event "
            "carries the publisher's monotonic clock and each receipt is one sample (the load "
            "generator "
            "is both publisher and subscriber, so there is one clock). One event to "
            f"{plan.large:,} subscribers is {plan.large:,} writes in a row ({fanout_time:.0f} ms "
            "for eventwire at that rate): a receipt's latency depends mostly on the "
            "subscriber's place in that sequence. A rate near a server's capacity would "
            "measure a growing queue instead.",
            self._storm_method(),
            "**memory per connection**: a fresh server's VmRSS just before the load generator "
            f"connects and once {plan.large:,} connections are open, subscribed and idle (a "
            "second later), the difference divided by their number; measured in the fan-out "
            f"run (connections opened 256 at a time) and after each storm, the median of the "
            f"{count(plan.storm_trials + 1, 'server')}, their range in brackets. Kernel socket "
            "buffers are not in RSS.",
        ]

    def _storm_method(self) -> str:
        plan, storm = self.plan, self.eventwire.storm
        return (
            f"**reconnect storm**: {plan.large:,} clients connect at once to a fresh server, "
            "as after a restart. Each does a TCP connect, the WebSocket handshake and, on "
            "eventwire, waits for CONNECTED, sends SUBSCRIBE and waits for SUBSCRIBED; on the "
            "baseline it waits for its `registered` frame. Timed from the first connect() to the "
            f"last acknowledgement, the median of {count(plan.storm_trials, 'storm')}, each on "
            "a server of its own, their range in brackets. At most "
            f"{storm.concurrency:,} clients are between connect() and their acknowledgement "
            "at once: both servers listen with a backlog of 4096, and past it the kernel drops "
            "SYNs, each costing its client a one-second retransmission, which would time the "
            "kernel's timer instead of the server (the kernel's ListenOverflows and "
            "TCPSynRetrans counters are read around each storm, and any increase is listed "
            "under problems). *Server CPU time per client*: the server's user and kernel time "
            "during the storm over the clients, which other work on the machine disturbs less "
            "than the time."
        )

    def _duration(self) -> str:
        return count(round(self.elapsed_s / 60) or 1, "minute")

    def markdown(self) -> str:
        m = self.machine
        intro = (
            "Fan-out of one topic's events to every WebSocket subscriber, a reconnect storm and "
            "the memory of idle subscribed connections: eventwire against the "
            "server most people would write with `websockets`, `serve` plus `broadcast()` "
            "([bench/baseline_server.py](../bench/baseline_server.py)). The baseline is measured "
            "in the same run, by the same load generator, on the same machine, so the ratios "
            "hold even where the absolute figures would not on other hardware."
            + (
                ""
                if self.cluster is None
                else " [Several nodes through a broker](#several-nodes-through-a-broker) "
                "compares eventwire with itself: two nodes on Redis against one, and Redis "
                "against the in-memory broker."
            )
            + (
                ""
                if self.attacks is None
                else " [Under attack](#under-attack) measures eventwire alone, against itself "
                "unattacked: what a flooding connection costs the others."
            )
        )
        machine = (
            f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory']} of memory, Linux "
            f"{m['kernel']}, Python {m['python']}, websockets {m['websockets']}, uvloop "
            f"{m['uvloop']}. Both servers run on uvloop, pinned to core 0; the load generator "
            "(and this script) to core 1. All traffic is on 127.0.0.1. Load average over the "
            f"minute before the run: {m['load_before']} (other work on the machine makes the "
            "figures noisier)."
        )
        cpu_note = (
            "CPU time over wall time during each run. Load generator: getrusage; for "
            "deliveries/s the highest of the bursts. Server core busy: core 0 from /proc/stat, "
            "which counts the loopback TCP work (softirq) the kernel does not always charge to "
            "the server process; in brackets the server's user-space time, the part spent in "
            "Python rather than in the kernel's send path. A server core near 100% while the "
            "load generator has room means the server is the bottleneck, as intended."
        )
        return "\n".join(
            [
                "# Benchmarks",
                "",
                wrap(
                    f"Generated by `make bench` on {self.generated}, in one run of "
                    f"{self.elapsed_s / 60:.1f} minutes. Rerun it rather than edit this file."
                ),
                "",
                wrap(intro),
                "",
                wrap(machine),
                "",
                "## Results",
                "",
                *self.table(),
                "",
                wrap(
                    "Ratios are eventwire's figure divided by the baseline's. deliveries/s is the "
                    "median of the bursts, the storm and memory the median of their trials, "
                    "their range in brackets."
                ),
                "",
                wrap(self._batching()),
                "",
                "## What is measured",
                "",
                *(wrap(item, bullet=True) for item in self._method()),
                "",
                "## CPU use during each run",
                "",
                *self.cpu_table(),
                "",
                wrap(cpu_note),
                "",
                *([] if self.attacks is None else attack_section(self.attacks)),
                *([] if self.cluster is None else cluster_section(self.cluster)),
                "## Problems observed",
                "",
                *self.problems(),
                "",
                "## Reproducing",
                "",
                wrap(
                    f"`make bench` (needs gcc and taskset; about {self._duration()}) "
                    "writes this file and "
                    "`bench/out/results.json`, with every trial; server, Redis and load "
                    "generator logs are in `bench/out/`. `python -m bench --quick` is a smoke "
                    "test at small sizes, and `--only fanout`, `--only storm` (the storms and "
                    "memory alone), `--only attacks` or `--only cluster` runs one part; both "
                    "leave this file alone."
                ),
                "",
            ]
        )
