"""``python -m bench``: measure both servers, then several nodes, and write docs/benchmarks.md.

``--quick`` runs small sizes for a smoke test and leaves the docs alone;
``--only fanout`` or ``--only cluster`` runs one part (the docs are written
only by a full run of both).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.cluster import ClusterPlan, ClusterResults, measure_cluster
from bench.cluster_report import cluster_table
from bench.procs import LOADGEN_CORE, BenchError, build_loadgen, raise_fd_limit
from bench.report import Report, machine_facts
from bench.scenarios import Burst, Plan, measure_server

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
DOCS = ROOT / "docs" / "benchmarks.md"

QUICK = Plan(
    small=200,
    large=1_000,
    small_burst=Burst(events=200, batch=20, window=40),
    large_burst=Burst(events=50, batch=5, window=10),
    single_burst=Burst(events=200, batch=1, window=8),
    trials=1,
    latency_events=10,
    latency_rate=5.0,
    settle_s=0.5,
    phase_timeout_s=30.0,
)
QUICK_CLUSTER = ClusterPlan(
    subscribers=200,
    burst=Burst(events=100, batch=1, window=8),
    trials=1,
    latency_events=10,
    one_at_a_time=Burst(events=100, batch=1, window=1),
    pipelined=Burst(events=300, batch=1, window=16),
    batched=Burst(events=300, batch=20, window=40),
    phase_timeout_s=30.0,
)


def _prepare(plan: Plan) -> Path:
    """Pin this process, raise the descriptor limit, build the load generator."""
    # The orchestrator shares the load generator's core so the server's stays its own.
    os.sched_setaffinity(0, {LOADGEN_CORE})
    limit = raise_fd_limit(2 * plan.large + 1024)
    if limit < plan.large + 64:
        raise BenchError(f"RLIMIT_NOFILE is {limit}; {plan.large} connections need more")
    return build_loadgen(ROOT / "bench" / "loadgen.c", OUT / "loadgen")


def run_cluster(plan: Plan, cluster_plan: ClusterPlan) -> ClusterResults:
    """Only the multi-node part: printed, and kept in bench/out/cluster.json."""
    results = measure_cluster(cluster_plan, _prepare(plan), OUT)
    (OUT / "cluster.json").write_text(json.dumps(dataclasses.asdict(results), indent=2) + "\n")
    return results


def run(plan: Plan, cluster_plan: ClusterPlan | None, write_docs: bool) -> Report:
    """Both servers, one after the other, then several nodes, on an otherwise idle machine."""
    started, machine = time.monotonic(), machine_facts()
    loadgen = _prepare(plan)
    results = {kind: measure_server(kind, plan, loadgen, OUT) for kind in ("baseline", "eventwire")}
    cluster = None if cluster_plan is None else measure_cluster(cluster_plan, loadgen, OUT)
    report = Report(
        machine=machine,
        plan=plan,
        baseline=results["baseline"],
        eventwire=results["eventwire"],
        cluster=cluster,
        elapsed_s=round(time.monotonic() - started, 1),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
    (OUT / "results.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")
    if write_docs:
        DOCS.write_text(report.markdown())
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes; do not write the docs")
    parser.add_argument(
        "--only", choices=["fanout", "cluster"], help="one part; do not write the docs"
    )
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    plan, cluster_plan = (QUICK, QUICK_CLUSTER) if args.quick else (Plan(), ClusterPlan())
    try:
        if args.only == "cluster":
            started = time.monotonic()
            print("\n".join(cluster_table(run_cluster(plan, cluster_plan))))
            print(f"\n{time.monotonic() - started:.0f}s; results in {OUT / 'cluster.json'}")
            return 0
        with_cluster = None if args.only == "fanout" else cluster_plan
        report = run(plan, with_cluster, write_docs=not args.quick and args.only is None)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    print("\n".join(report.table()))
    if report.cluster is not None:
        print("\n" + "\n".join(cluster_table(report.cluster)))
    print(f"\n{report.elapsed_s:.0f}s; results in {OUT / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
