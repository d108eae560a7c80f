"""The soak's report: the hard criteria and the figures, per broker, as Markdown.

The same text is printed and written (``bench/out/soak.md``; with
``--docs``, ``docs/soak.md``). A criterion that fails is marked **FAIL**
and makes ``python -m bench.soak`` exit 1; the other rows are figures to
read, and the details after the tables give the faults, the publishes
after each broker resume, and examples of each failure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.soak.run import RunResult

__all__ = ["Criterion", "criteria", "figures", "markdown"]

Row = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Criterion:
    """A hard pass/fail rule and its value in one run."""

    name: str
    rule: str
    value: str
    ok: bool


def _zero(name: str, count: int) -> Criterion:
    return Criterion(name, "0", f"{count:,}", count == 0)


def criteria(result: RunResult) -> list[Criterion]:
    """The rules a release must pass, in the order the report shows them."""
    f, plan = result.findings, result.plan
    slowest = max((r.seconds for r in f.recoveries), default=0.0)
    drained = "no" if result.drained is None else f"{result.drained:.1f} s"
    return [
        _zero("silent losses", f.losses),
        _zero("duplicates handed over after client-side dedup", f.counts["duplicates"]),
        _zero("out of order on the wire", f.counts["out_of_order"]),
        _zero("repeats on one connection's wire", f.counts["wire_repeats"]),
        _zero(f"silences over {plan.silence:g} s outside chaos", f.silences),
        _zero("closes with 1011", f.close_codes[1011]),
        _zero("unexpected ERROR lines and tracebacks in node logs", len(result.logs.unexpected)),
        _zero("events with another seq than their publish got", f.seq_mismatches + f.invented),
        _zero("errors in the soak's own code", len(result.crashes)),
        Criterion(
            "the soak kept its publishing pace",
            f">= {0.95 * plan.rate:g}/s",
            f"{f.publish_rate:.1f}/s",
            f.publish_rate >= 0.95 * plan.rate,
        ),
        Criterion(
            f"publishes normal within {plan.recovery_bound:g} s of each broker resume",
            f"<= {plan.recovery_bound:g} s",
            f"{slowest:.2f} s (slowest of {len(f.recoveries)})",
            slowest <= plan.recovery_bound,
        ),
        Criterion(
            "subscribers caught up after the last publish",
            f"within {plan.drain:g} s",
            drained,
            result.drained is not None,
        ),
    ]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def _several(values: Mapping[str, float], keys: tuple[str, ...]) -> str:
    return " / ".join(_ms(values.get(key, 0.0)) for key in keys)


def _counts(counter: Mapping[str, int] | Mapping[int, int]) -> str:
    return ", ".join(f"{key}: {value:,}" for key, value in sorted(counter.items())) or "none"


def figures(result: RunResult) -> list[Row]:
    """The figures beside the criteria."""
    f, c, lat = result.findings, result.findings.counts, result.findings.latency
    recovered = f"{c['since_topics']:,} / {c['recovered_true']:,} / {c['recovered_false']:,}"
    errors = {key.removeprefix("error_"): n for key, n in c.items() if key.startswith("error_")}
    return [
        ("events handed over (after dedup)", f"{f.deliveries:,}"),
        ("losses the server announced (recovered: false, RECOVERY_FAILED, new epoch)",
         f"{f.excused:,}"),
        ("delivery latency outside chaos, p50 / p99 / p99.9 / max",
         f"{_several(lat, ('p50', 'p99', 'p99.9', 'max'))} ({lat.get('count', 0):,.0f} events)"),
        ("delivery latency p99, every hand-over (replays, chaos)", _ms(lat.get("all_p99", 0.0))),
        ("longest silence outside chaos", f"{f.longest_silence:.1f} s"),
        ("silences by the node the subscriber was on", _counts(f.silences_by_node)),
        ("publishes by outcome", _counts(f.publishes)),
        ("publish latency outside chaos, p50 / p99 / max",
         _several(f.publish_latency, ("p50", "p99", "max"))),
        ("refused publishes delivered anyway", _counts(f.refused_delivered)),
        ("closes by the server, by code (1006: no close frame)", _counts(f.close_codes)),
        ("connections (reconnections included)", f"{c['connections']:,}"),
        ("drops by the subscribers: abort / clean close",
         f"{c['drops_abort']:,} / {c['drops_clean']:,}"),
        ("failed connection attempts", f"{c['connect_failures']:,}"),
        ("topics resubscribed with since / recovered: true / false", recovered),
        ("RECOVERY_FAILED by reason", _counts(f.recovery_failed)),
        ("history resets seen (a new epoch)", f"{c['history_resets']:,}"),
        ("ERROR frames by code", _counts(errors)),
        ("events dropped by client-side dedup", f"{c['deduped']:,}"),
        ("ERROR lines / tracebacks in node logs",
         f"{result.logs.errors:,} / {result.logs.tracebacks:,}"),
        ("stalls of the soak's own event loop (over 0.25 s)", _stalls(result)),
    ]  # fmt: skip


def _stalls(result: RunResult) -> str:
    if not result.stalls:
        return "none"
    longest = max(end - start for start, end in result.stalls)
    return f"{len(result.stalls)}, longest {longest:.2f} s"


def _table(results: list[RunResult], rows: Callable[[RunResult], list[Row]]) -> list[str]:
    names = [r.broker for r in results]
    lines = ["| measure | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    per_run = [rows(r) for r in results]
    for index, (label, _) in enumerate(per_run[0]):
        lines.append(f"| {label} | " + " | ".join(run[index][1] for run in per_run) + " |")
    return lines


def _criteria_rows(result: RunResult) -> list[Row]:
    return [
        (f"{c.name} ({c.rule})", c.value if c.ok else f"**FAIL** {c.value}")
        for c in criteria(result)
    ]


def _faults(result: RunResult) -> list[str]:
    lines = ["Faults (seconds from the first publish):", ""]
    for w in result.chaos:
        after = "not all ready within 30 s" if w.ready_at is None else f"{w.ready_at - w.end:.1f} s"
        lines.append(
            f"- {w.start - result.origin:.1f} s: {w.kind} ({w.target}), {w.end - w.start:.1f} s; "
            f"every node ready {after} after"
        )
    if not result.chaos:
        lines.append("- none (the run was shorter than the first fault)")
    f = result.findings
    lines += [
        "",
        f"Publishes after each broker resume (normal: under {_ms(f.normal_publish)}):",
        "",
    ]
    for r in f.recoveries:
        worst = f"; the last: {r.worst}" if r.worst else ""
        lines.append(
            f"- {r.kind} at {r.resumed_at - result.origin:.1f} s: normal after {r.seconds:.2f} s; "
            f"{r.abnormal} abnormal ({_counts(r.statuses)}){worst}"
        )
    if not f.recoveries:
        lines.append("- no broker fault in this run")
    return lines


def _examples(result: RunResult) -> list[str]:
    f = result.findings
    shown = {"silent losses": f.loss_examples, "silences": f.silence_examples}
    shown |= {kind.replace("_", " "): lines for kind, lines in sorted(f.examples.items())}
    shown["errors in the soak's own code"] = result.crashes
    lines = []
    for kind, examples in shown.items():
        if examples:
            lines += ["", f"{kind} (first {min(len(examples), 20)}):", ""]
            lines += [f"- `{example}`" for example in examples[:20]]
    groups = result.logs.grouped()
    if groups:
        lines += ["", "unexpected log lines (alike ones counted together):", ""]
        lines += [f"- {count}x on {nodes}: `{line[:400]}`" for count, nodes, line in groups[:20]]
    return lines


def _relative(path: Path) -> Path:
    """``path`` from the current directory when under it (the repository for ``make soak``)."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


def markdown(results: list[RunResult], header: list[str]) -> str:
    """The whole report."""
    lines = [*header, "", "## Criteria", ""]
    lines += _table(results, _criteria_rows)
    lines += ["", "## Figures", ""]
    lines += _table(results, figures)
    lines += ["", "## Details"]
    for result in results:
        lines += ["", f"### {result.broker}", "", *_faults(result), *_examples(result)]
        lines += ["", f"Logs and every publish: `{_relative(result.log_folder.parent)}`."]
    return "\n".join(lines).rstrip() + "\n"
