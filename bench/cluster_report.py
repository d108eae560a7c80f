"""The section of docs/benchmarks.md on several nodes, from one run's ``ClusterResults``."""

from __future__ import annotations

from bench.cluster import ClusterResults, NodesRun, PublishRun
from bench.formatting import busy, count, ms, rates, ratio, wrap
from bench.scenarios import Fanout, Latency

__all__ = ["cluster_problems", "cluster_section", "cluster_table"]


def _events(run: Fanout) -> str:
    return f"{PublishRun.events_per_s(run):,.0f}"


def _row(metric: str, better: str, base: tuple[str, float], measured: tuple[str, float]) -> str:
    """One row: ``(shown, value)`` of the baseline and of what is compared with it."""
    return (
        f"| {metric} ({better} is better) | {base[0]} | {measured[0]} "
        f"| {ratio(measured[1], base[1])} |"
    )


def _latency_rows(what: str, base: NodesRun, other: NodesRun, names: tuple[str, str]) -> list[str]:
    c_rate = base.latency.events_per_s
    n = base.latency.subscribers
    rows = []
    for label, pick in (("p50", "p50_ms"), ("p99", "p99_ms")):
        b, m = getattr(base.latency, pick), getattr(other.latency, pick)
        rows.append(
            _row(
                f"latency {label}, {n:,} subscribers at {c_rate:g} events/s: {what}",
                "lower",
                (f"{names[0]}: {ms(b)}", b),
                (f"{names[1]}: {ms(m)}", m),
            )
        )
    return rows


def cluster_table(c: ClusterResults) -> list[str]:
    p = c.plan
    n, half, k = p.subscribers, p.subscribers // 2, p.publish_subscribers
    one, two, mem = c.redis_one, c.redis_two, c.memory_one
    mp, rp = c.memory_publish, c.redis_publish
    nodes = f"2 nodes ({half:,} each) against 1, on Redis"
    brokers = "redis:// against memory://"
    return [
        "| metric | baseline | measured | measured / baseline |",
        "| --- | ---: | ---: | ---: |",
        _row(
            f"deliveries/s, {n:,} subscribers, one event per publish: {nodes}",
            "higher",
            (f"1 node: {rates(one.fanout)}", one.fanout.deliveries_per_s),
            (f"2 nodes: {rates(two.fanout)}", two.fanout.deliveries_per_s),
        ),
        *_latency_rows(nodes, one, two, ("1 node", "2 nodes")),
        _row(
            f"deliveries/s, {n:,} subscribers on 1 node, one event per publish: {brokers}",
            "higher",
            (f"memory: {rates(mem.fanout)}", mem.fanout.deliveries_per_s),
            (f"redis: {rates(one.fanout)}", one.fanout.deliveries_per_s),
        ),
        *_latency_rows(f"1 node, {brokers}", mem, one, ("memory", "redis")),
        *(
            _row(
                f"publish acknowledged {label}, one at a time, {k} subscribers: {brokers}",
                "lower",
                (f"memory: {ms(getattr(mp, pick))}", getattr(mp, pick)),
                (f"redis: {ms(getattr(rp, pick))}", getattr(rp, pick)),
            )
            for label, pick in (("p50", "ack_p50_ms"), ("p99", "ack_p99_ms"))
        ),
        _row(
            f"events/s, one event per publish, up to {p.pipelined.requests_in_flight} in flight "
            f"on {p.publishers} connections, {k} subscribers: {brokers}",
            "higher",
            (f"memory: {_events(mp.pipelined)}", PublishRun.events_per_s(mp.pipelined)),
            (f"redis: {_events(rp.pipelined)}", PublishRun.events_per_s(rp.pipelined)),
        ),
        _row(
            f"events/s, batches of {p.batched.batch} events, {k} subscribers: {brokers}",
            "higher",
            (f"memory: {_events(mp.batched)}", PublishRun.events_per_s(mp.batched)),
            (f"redis: {_events(rp.batched)}", PublishRun.events_per_s(rp.batched)),
        ),
    ]


def _cpu_rows(c: ClusterResults) -> list[str]:
    runs: list[tuple[str, Fanout | Latency]] = [
        ("fan-out, 1 node on memory://", c.memory_one.fanout),
        ("fan-out, 1 node on Redis", c.redis_one.fanout),
        ("fan-out, 2 nodes on Redis", c.redis_two.fanout),
        ("publishes pipelined, memory://", c.memory_publish.pipelined),
        ("publishes pipelined, Redis", c.redis_publish.pipelined),
    ]
    return [
        "| run | load generator CPU | nodes' cores busy |",
        "| --- | ---: | ---: |",
        *(f"| {name} | {run.loadgen_cpu_pct:.0f}% | {busy(run)} |" for name, run in runs),
    ]


def _method(c: ClusterResults) -> list[str]:
    p = c.plan
    b, one, piped, batched = p.burst, p.one_at_a_time, p.pipelined, p.batched
    return [
        f"**Fan-out**: {p.subscribers:,} subscribers of one topic, on one node or half on "
        "each of two nodes on one redis-server, which the bench starts on a free port "
        f"(nothing saved to disk). {p.publishers} publisher connections, spread over the "
        "nodes like the subscribers, take the requests in turn, as the many publishers of a "
        "deployment would; so on two nodes each event reaches the other node's subscribers "
        "through Redis. Events of requests read in the same event-loop turn share their "
        "write to each subscriber, so these rates pass the one-event-per-publish row above, "
        f"which has a single publisher. Bursts of {b.events:,} events, one per request, at "
        f"most {b.window} not yet delivered; the median of {count(p.trials, 'burst')} after "
        "a warm-up. "
        f"Latency: {p.latency_events} events at {p.latency_rate:g} events/s, each receipt one "
        "sample.",
        f"**Publishes**: {p.publish_subscribers} subscribers, so that fan-out is small and "
        "the publish path is what is timed. *Acknowledged*: from writing a request to "
        "reading its response on the publisher's connection: parsing, validation and the "
        "broker's step (on Redis, one Lua script per event that assigns `seq`, appends to "
        f"the topic's stream and publishes it), {one.events:,} events one at a time (each "
        "delivered to every subscriber before the next is sent). *Events/s*: "
        f"{piped.events:,} events with up to {piped.requests_in_flight} requests in flight "
        f"over {p.publishers} kept-alive connections, each answered in order, so that a "
        "connection's next request waits for the broker's answer to the one before; then "
        f"batches of {batched.batch}, where each event of a batch is still its own broker "
        "step, one after the other.",
    ]


def cluster_section(c: ClusterResults) -> list[str]:
    """The Markdown lines of the section, its heading included."""
    if c.layout.shared:
        cores = (
            "This machine has fewer than four cores, so both nodes share the one core a "
            "single node gets: the two-node rows compare the same CPU split over two processes, "
            "every event crossing Redis to each, with one process; they show what that split "
            "costs, not the capacity a second machine adds. On four cores or more the bench "
            "gives each node a core of its own."
        )
    else:
        cores = "Each node has a core of its own, so the two-node rows show what a node adds."
    intro = (
        "Gateway nodes that share a broker, each figure against a baseline measured in this "
        "run with the same load: the same subscribers on two nodes against one, and the "
        "publish path on `redis://` against `memory://`."
    )
    return [
        "## Several nodes through a broker",
        "",
        wrap(intro),
        "",
        wrap(f"Cores: {c.layout.describe()}. {cores}"),
        "",
        *cluster_table(c),
        "",
        *(wrap(item, bullet=True) for item in _method(c)),
        "",
        *_cpu_rows(c),
        "",
        wrap(
            "CPU time over wall time, the highest of the bursts for the load generator "
            "(getrusage); the nodes' cores from /proc/stat, each core counted once, and in "
            "brackets the nodes' user-space (Python) time added up."
        ),
        "",
    ]


def cluster_problems(c: ClusterResults) -> list[str]:
    found = c.problems or ["none"]
    return [f"- several nodes: {problem}" for problem in found]
