"""Gateway nodes through a broker: what a second node costs or gives, and what the broker costs.

Each figure has a baseline measured in the same run, by the same load
generator, with the same load:

- **fan-out through Redis**: the same subscribers on one node, then split
  over two nodes on one Redis, and on one node with ``memory://``; closed-loop
  bursts of one event per publish (deliveries/s) and a fixed rate (latency);
- **the broker's cost per publish**: a few subscribers, so that the publish
  path rather than fan-out is what is timed, on ``memory://`` and on
  ``redis://``: each publish's acknowledgement time, one at a time, and
  events/s with publishes pipelined, one event or a batch per request.

Every run starts fresh gateways and a fresh redis-server of its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import (
    LOADGEN_CORE,
    SERVER_CORE,
    LoadGen,
    Server,
    free_port,
    running_loadgen,
    running_redis,
    running_server,
)
from bench.scenarios import (
    Burst,
    Fanout,
    Latency,
    fanout_problems,
    measure_fanout,
    measure_latency,
    phase_problems,
    run_phase,
    server_problems,
    wait_ready,
)

__all__ = ["ClusterPlan", "ClusterResults", "Layout", "NodesRun", "PublishRun", "measure_cluster"]


_FANOUT = Burst(events=200, batch=1, window=8)
_ONE_AT_A_TIME = Burst(events=500, batch=1, window=1)
_PIPELINED = Burst(events=3_000, batch=1, window=16)
_BATCHED = Burst(events=3_000, batch=20, window=40)


@dataclass(frozen=True, slots=True)
class ClusterPlan:
    """Sizes of the multi-node runs; the defaults take about a minute and a half."""

    subscribers: int = 2_000
    """In total: on one node, or half on each of two."""
    publishers: int = 4
    """Publisher connections, spread over the nodes like the subscribers."""
    burst: Burst = _FANOUT
    trials: int = 5
    latency_events: int = 40
    latency_rate: float = 20.0
    publish_subscribers: int = 10
    """Few, so that the publish path, not fan-out, is what the broker runs time."""
    one_at_a_time: Burst = _ONE_AT_A_TIME
    pipelined: Burst = _PIPELINED
    batched: Burst = _BATCHED
    phase_timeout_s: float = 90.0


@dataclass(frozen=True, slots=True)
class Layout:
    """Which core runs what: the nodes, the load generator, Redis.

    With four cores or more each node has a core of its own. With fewer,
    both nodes share the one node's core (the comparison is then "the same
    CPU, split over two processes"), and Redis shares the load generator's.
    """

    node_cores: tuple[int, int]
    loadgen_core: int
    redis_core: int

    @classmethod
    def for_this_machine(cls) -> Layout:
        cores = sorted(os.sched_getaffinity(0))
        if len(cores) >= 4:
            return cls((cores[0], cores[2]), cores[1], cores[3])
        return cls((SERVER_CORE, SERVER_CORE), LOADGEN_CORE, LOADGEN_CORE)

    @property
    def shared(self) -> bool:
        return self.node_cores[0] == self.node_cores[1]

    def describe(self) -> str:
        first, second = self.node_cores
        nodes = (
            f"both nodes on core {first}"
            if self.shared
            else f"one node on core {first}, the second on core {second}"
        )
        others = f"the load generator on core {self.loadgen_core}, Redis on core {self.redis_core}"
        return f"{nodes}; {others}"


@dataclass(slots=True)
class NodesRun:
    """Fan-out to ``subscribers`` on ``nodes`` gateway nodes sharing ``broker``."""

    broker: str
    nodes: int
    fanout: Fanout
    latency: Latency


@dataclass(slots=True)
class PublishRun:
    """The publish path on ``broker``: one publish at a time, then pipelined."""

    broker: str
    one_at_a_time: dict[str, Any]
    pipelined: Fanout
    batched: Fanout

    @property
    def ack_p50_ms(self) -> float:
        return float(self.one_at_a_time["ack_p50_ms"])

    @property
    def ack_p99_ms(self) -> float:
        return float(self.one_at_a_time["ack_p99_ms"])

    @staticmethod
    def events_per_s(fanout: Fanout) -> float:
        return fanout.deliveries_per_s / max(1, fanout.subscribers)


@dataclass(slots=True)
class ClusterResults:
    plan: ClusterPlan
    layout: Layout
    memory_one: NodesRun
    redis_one: NodesRun
    redis_two: NodesRun
    memory_publish: PublishRun
    redis_publish: PublishRun
    problems: list[str] = field(default_factory=list)


class _Cluster:
    """Runs the configurations one after another, collecting problems on the way."""

    def __init__(self, plan: ClusterPlan, loadgen: Path, out: Path, layout: Layout) -> None:
        self.plan = plan
        self.binary = loadgen
        self.out = out
        self.layout = layout
        self.problems: list[str] = []

    @contextmanager
    def _nodes(self, broker: str, count: int, tag: str) -> Iterator[list[Server]]:
        """``count`` gateway nodes on ``broker`` (``redis`` starts a redis-server of its own)."""
        with ExitStack() as stack:
            url = "memory://"
            if broker == "redis":
                redis = stack.enter_context(running_redis(self.out, self.layout.redis_core))
                url = redis.url
            servers = [
                stack.enter_context(
                    running_server(
                        "eventwire",
                        free_port(),
                        self.out / f"cluster-{tag}-node{i + 1}.server.log",
                        self.layout.node_cores[i],
                        [url],
                    )
                )
                for i in range(count)
            ]
            yield servers
        for server in servers:
            self.problems += server_problems(server)

    @contextmanager
    def _loadgen(self, servers: Sequence[Server], subscribers: int, tag: str) -> Iterator[LoadGen]:
        ports = [server.port for server in servers]
        log = self.out / f"cluster-{tag}.lg.log"
        publishers = self.plan.publishers
        with running_loadgen(
            self.binary, "eventwire", ports, subscribers, log, publishers
        ) as loadgen:
            wait_ready(loadgen, subscribers)
            yield loadgen

    def nodes(self, broker: str, count: int) -> NodesRun:
        plan, tag = self.plan, f"{broker}-{count}"
        name = f"{plan.subscribers:,} subscribers on {count} {broker} node(s)"
        with self._nodes(broker, count, tag) as servers:
            cores = self.layout.node_cores[:count]
            with self._loadgen(servers, plan.subscribers, tag) as lg:
                fanout = measure_fanout(
                    lg, servers, cores, plan.burst, plan.trials, plan.phase_timeout_s
                )
                latency = measure_latency(
                    lg,
                    servers,
                    cores,
                    plan.latency_events,
                    plan.latency_rate,
                    plan.phase_timeout_s,
                )
        self.problems += fanout_problems(name, fanout)
        self.problems += phase_problems(f"{name}, latency", latency.raw)
        return NodesRun(broker, count, fanout, latency)

    def publishes(self, broker: str) -> PublishRun:
        plan, tag = self.plan, f"{broker}-publish"
        name = f"publishes on {broker}"
        with self._nodes(broker, 1, tag) as servers:
            cores = self.layout.node_cores[:1]
            with self._loadgen(servers, plan.publish_subscribers, tag) as lg:
                timeout = plan.phase_timeout_s
                pipelined = measure_fanout(lg, servers, cores, plan.pipelined, 1, timeout)
                batched = measure_fanout(lg, servers, cores, plan.batched, 1, timeout)
                single = run_phase(lg, servers, cores, plan.one_at_a_time.command(timeout), timeout)
        self.problems += fanout_problems(f"{name}, pipelined", pipelined)
        self.problems += fanout_problems(f"{name}, batched", batched)
        self.problems += phase_problems(f"{name}, one at a time", single)
        return PublishRun(broker, single, pipelined, batched)


def measure_cluster(plan: ClusterPlan, loadgen: Path, out: Path) -> ClusterResults:
    """Every multi-node figure, with its baseline, on this machine's layout."""
    layout = Layout.for_this_machine()
    run = _Cluster(plan, loadgen, out, layout)
    memory_one = run.nodes("memory", 1)
    redis_one = run.nodes("redis", 1)
    redis_two = run.nodes("redis", 2)
    memory_publish = run.publishes("memory")
    redis_publish = run.publishes("redis")
    return ClusterResults(
        plan, layout, memory_one, redis_one, redis_two, memory_publish, redis_publish, run.problems
    )
