"""``python -m bench``: measure both servers and write docs/benchmarks.md.

``--quick`` runs small sizes for a smoke test and leaves the docs alone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

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


def run(plan: Plan, write_docs: bool) -> Report:
    """Both servers, one after the other, on an otherwise idle machine."""
    started = time.monotonic()
    # The orchestrator shares the load generator's core so the server's stays its own.
    os.sched_setaffinity(0, {LOADGEN_CORE})
    limit = raise_fd_limit(2 * plan.large + 1024)
    if limit < plan.large + 64:
        raise BenchError(f"RLIMIT_NOFILE is {limit}; {plan.large} connections need more")
    loadgen = build_loadgen(ROOT / "bench" / "loadgen.c", OUT / "loadgen")
    results = {kind: measure_server(kind, plan, loadgen, OUT) for kind in ("baseline", "eventwire")}
    report = Report(
        machine=machine_facts(),
        plan=plan,
        baseline=results["baseline"],
        eventwire=results["eventwire"],
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
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    try:
        report = run(QUICK if args.quick else Plan(), write_docs=not args.quick)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    print("\n".join(report.table()))
    print(f"\n{report.elapsed_s:.0f}s; results in {OUT / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
