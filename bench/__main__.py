"""``python -m bench``: measure both servers, eventwire under attack, then several nodes.

A full run writes docs/benchmarks.md. ``--quick`` runs small sizes for a
smoke test and leaves the docs alone; ``--only fanout``, ``storm``,
``attacks`` or ``cluster`` runs one part (the docs are written only by a
full run of every part).
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

from bench.attack_report import attack_problems, attack_table
from bench.attacks import AttackPlan, measure_attacks
from bench.cluster import ClusterPlan, measure_cluster
from bench.cluster_report import cluster_table
from bench.formatting import spread
from bench.procs import LOADGEN_CORE, BenchError, build_binary, raise_fd_limit
from bench.report import Report, machine_facts
from bench.scenarios import Burst, Memory, Plan, measure_server
from bench.storm import measure_storm, storm_problems

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
    storm_concurrency=400,
    storm_trials=2,
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
QUICK_ATTACKS = AttackPlan(idle_s=1.0, flood_s=2.0, trials=1, pinger_s=2.0)


def _prepare(plan: Plan) -> Path:
    """Pin this process, raise the descriptor limit, build the load generator."""
    # The orchestrator shares the load generator's core so the server's stays its own.
    os.sched_setaffinity(0, {LOADGEN_CORE})
    limit = raise_fd_limit(2 * plan.large + 1024)
    if limit < plan.large + 64:
        raise BenchError(f"RLIMIT_NOFILE is {limit}; {plan.large} connections need more")
    return build_binary(ROOT / "bench" / "loadgen.c", OUT / "loadgen")


def _attack_tool() -> Path:
    return build_binary(ROOT / "bench" / "attack.c", OUT / "attack")


def run_storm(plan: Plan) -> list[str]:
    """Only the storms, and the memory they measure: kept in bench/out/storm.json."""
    loadgen, lines, found = _prepare(plan), [], {}
    for kind in ("baseline", "eventwire"):
        storm = measure_storm(kind, plan.storm, loadgen, OUT)
        found[kind] = dataclasses.asdict(storm)
        memory = Memory(storm.clients, storm.trials)
        lines.append(
            f"{kind}: storm {spread(f'{storm.seconds:.2f} s', storm.each_s, 2)}, server CPU "
            f"{spread(f'{storm.server_cpu_ms:.3f} ms', storm.each_cpu_ms, 3)} per client, "
            f"memory per connection "
            f"{spread(f'{memory.kib_per_connection:.2f} KiB', memory.each_kib, 2)}"
        )
        lines += [f"  {problem}" for problem in storm_problems(kind, storm)]
    (OUT / "storm.json").write_text(json.dumps(found, indent=2) + "\n")
    return lines


def run_attacks(plan: Plan, attack_plan: AttackPlan) -> list[str]:
    """Only the attacks: kept in bench/out/attacks.json."""
    os.sched_setaffinity(0, {LOADGEN_CORE})
    attacks = measure_attacks(attack_plan, _attack_tool(), OUT)
    (OUT / "attacks.json").write_text(json.dumps(dataclasses.asdict(attacks), indent=2) + "\n")
    return attack_table(attacks) + attack_problems(attacks)


def run_cluster(plan: Plan, cluster_plan: ClusterPlan) -> list[str]:
    """Only the multi-node part: printed, and kept in bench/out/cluster.json."""
    results = measure_cluster(cluster_plan, _prepare(plan), OUT)
    (OUT / "cluster.json").write_text(json.dumps(dataclasses.asdict(results), indent=2) + "\n")
    return cluster_table(results)


def run(
    plan: Plan, attack_plan: AttackPlan | None, cluster_plan: ClusterPlan | None, write_docs: bool
) -> Report:
    """Both servers, one after the other, then attacks and several nodes, on an idle machine."""
    started, machine = time.monotonic(), machine_facts()
    loadgen = _prepare(plan)
    results = {kind: measure_server(kind, plan, loadgen, OUT) for kind in ("baseline", "eventwire")}
    attacks = None if attack_plan is None else measure_attacks(attack_plan, _attack_tool(), OUT)
    cluster = None if cluster_plan is None else measure_cluster(cluster_plan, loadgen, OUT)
    report = Report(
        machine=machine,
        plan=plan,
        baseline=results["baseline"],
        eventwire=results["eventwire"],
        cluster=cluster,
        attacks=attacks,
        elapsed_s=round(time.monotonic() - started, 1),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
    (OUT / "results.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")
    if write_docs:
        DOCS.write_text(report.markdown())
    return report


def _run_part(part: str, quick: bool) -> int:
    """One part alone, printed; its results in bench/out/PART.json."""
    started = time.monotonic()
    plan = QUICK if quick else Plan()
    if part == "cluster":
        lines = run_cluster(plan, QUICK_CLUSTER if quick else ClusterPlan())
    elif part == "storm":
        lines = run_storm(plan)
    else:
        lines = run_attacks(plan, QUICK_ATTACKS if quick else AttackPlan())
    print("\n".join(lines))
    print(f"\n{time.monotonic() - started:.0f}s; results in {OUT / f'{part}.json'}")
    return 0


def _run_all(quick: bool, fanout_only: bool) -> int:
    plan = QUICK if quick else Plan()
    attack_plan = QUICK_ATTACKS if quick else AttackPlan()
    cluster_plan = QUICK_CLUSTER if quick else ClusterPlan()
    if fanout_only:
        report = run(plan, None, None, write_docs=False)
    else:
        report = run(plan, attack_plan, cluster_plan, write_docs=not quick)
    print("\n".join(report.table()))
    if report.attacks is not None:
        print("\n" + "\n".join(attack_table(report.attacks)))
    if report.cluster is not None:
        print("\n" + "\n".join(cluster_table(report.cluster)))
    print("\n" + "\n".join(report.problems()))
    print(f"\n{report.elapsed_s:.0f}s; results in {OUT / 'results.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes; do not write the docs")
    parser.add_argument(
        "--only",
        choices=["fanout", "storm", "attacks", "cluster"],
        help="one part; do not write the docs",
    )
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    try:
        if args.only in ("storm", "attacks", "cluster"):
            return _run_part(args.only, args.quick)
        return _run_all(args.quick, fanout_only=args.only == "fanout")
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
