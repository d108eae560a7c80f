"""Judging a run from what was recorded: losses, duplicates, order, silences, latency.

Pure functions of the publish ledger, the subscribers' ledgers and the
chaos windows; no clock and no I/O. The definitions, as docs/delivery.md
states them for the soak:

- a **silent loss** is an event accepted with 200, sent after a subscriber
  of its topic first subscribed, that the subscriber never got, unless the
  server told it that range was lost (``recovered: false``, RECOVERY_FAILED)
  or showed it a new epoch after the event was sent;
- a **silence** is a stretch of more than ``silence`` seconds, outside
  every chaos window and every stall of the soak's own event loop, in which
  a subscriber received no event although one of its topics had an event
  accepted more than ``silence`` seconds before the stretch ended;
- **delivery latency** counts hand-overs of events sent after the
  connection that delivered them had subscribed (``live``), whose whole
  flight lies outside the chaos windows;
- **publish recovery** after a broker fault is the time from the broker
  answering again until the last publish sent since then that failed or
  took longer than ``normal`` seconds was answered.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bench.soak.ledger import ChaosWindow, LatencyLog, PublishLedger, PublishRecord, SeqBook
from bench.soak.wire import Silence, SubscriberLedger

__all__ = [
    "Findings",
    "Recovery",
    "Windows",
    "judge",
    "losses",
    "percentile",
    "publish_recovery",
    "silences",
]

Interval = tuple[float, float]

RECOVERY_HORIZON = 15.0
"""Seconds after a broker resumes in which publishes are watched for their recovery."""
NORMAL_FLOOR = 0.25
"""A publish answered 200 within this is normal, however fast the calm ones were (3 x p99)."""


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 for none)."""
    if not sorted_values:
        return 0.0
    rank = math.ceil(fraction * len(sorted_values) - 1e-9)  # 1-based; the epsilon for 0.99 * 100
    return sorted_values[min(len(sorted_values), max(1, rank)) - 1]


class Windows:
    """Disjoint, sorted intervals (chaos plus settle, stalls): overlap and subtraction."""

    def __init__(self, intervals: Iterable[Interval]) -> None:
        merged: list[list[float]] = []
        for start, end in sorted(intervals):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self.intervals = [(start, end) for start, end in merged]
        self._starts = [start for start, _ in self.intervals]

    def overlaps(self, start: float, end: float) -> bool:
        """Whether [start, end] touches any window."""
        index = bisect.bisect_right(self._starts, end) - 1
        return index >= 0 and self.intervals[index][1] > start

    def outside(self, start: float, end: float) -> list[Interval]:
        """The parts of [start, end] that no window covers."""
        pieces: list[Interval] = []
        cursor = start
        for w_start, w_end in self.intervals:
            if w_end <= cursor or w_start >= end:
                continue
            if w_start > cursor:
                pieces.append((cursor, w_start))
            cursor = max(cursor, w_end)
        if cursor < end:
            pieces.append((cursor, end))
        return pieces


@dataclass(frozen=True, slots=True)
class Recovery:
    """Publishes after one broker fault ended."""

    kind: str
    resumed_at: float
    seconds: float
    """From the broker answering again until the last abnormal publish was answered."""
    abnormal: int
    statuses: dict[str, int]
    """The abnormal publishes, by status (``200`` ones were slow)."""
    worst: str = ""
    """The last abnormal publish to be answered: when it was sent, how it ended."""


@dataclass(slots=True)
class Findings:
    """Everything the report shows for one run; times relative to the run's start."""

    deliveries: int = 0
    losses: int = 0
    excused: int = 0
    loss_examples: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    """Summed subscriber counts: duplicates, wire_repeats, out_of_order, connections..."""
    examples: dict[str, list[str]] = field(default_factory=dict)
    close_codes: Counter[int] = field(default_factory=Counter)
    recovery_failed: Counter[str] = field(default_factory=Counter)
    silences: int = 0
    longest_silence: float = 0.0
    silences_by_node: Counter[str] = field(default_factory=Counter)
    """The node each silent subscriber was connected to when its silence began."""
    silence_examples: list[str] = field(default_factory=list)
    latency: dict[str, float] = field(default_factory=dict)
    publishes: Counter[str] = field(default_factory=Counter)
    publish_rate: float = 0.0
    """Publishes sent per second, first to last: the pace the soak actually kept."""
    publish_latency: dict[str, float] = field(default_factory=dict)
    normal_publish: float = 0.0
    recoveries: list[Recovery] = field(default_factory=list)
    refused_delivered: Counter[str] = field(default_factory=Counter)
    seq_mismatches: int = 0
    invented: int = 0


def losses(
    publishes: PublishLedger, subscribers: Sequence[SubscriberLedger]
) -> tuple[int, int, list[str]]:
    """(silent losses, losses the server announced, examples)."""
    by_topic: defaultdict[str, list[SubscriberLedger]] = defaultdict(list)
    for sub in subscribers:
        for topic in sub.topics:
            by_topic[topic].append(sub)
    lost = excused = 0
    examples: list[str] = []
    for record in publishes.accepted():
        for sub in by_topic[record.topic]:
            if sub.handed(record.n):
                continue
            verdict = _owed(sub, record)
            if verdict == "excused":
                excused += 1
            elif verdict == "lost":
                lost += 1
                if len(examples) < 20:
                    examples.append(f"sub {sub.sid}: {record.topic} seq {record.seq} n={record.n}")
    return lost, excused, examples


def _owed(sub: SubscriberLedger, record: PublishRecord) -> str:
    """``lost``, ``excused`` (announced) or ``not owed`` (sent before it subscribed)."""
    cursor = sub.cursors[record.topic]
    assert record.seq is not None
    if cursor.resets and record.sent_at <= max(cursor.resets):
        return "excused"
    if not cursor.resets and cursor.first is not None and record.seq <= cursor.first:
        return "not owed"
    return "excused" if cursor.is_excused(record.seq) else "lost"


def silences(
    subscribers: Sequence[SubscriberLedger],
    accepted_times: dict[str, list[float]],
    excluded: Windows,
    threshold: float,
) -> list[tuple[int, Silence]]:
    """Silences as defined above: the pieces of each one outside ``excluded``."""
    found: list[tuple[int, Silence]] = []
    for sub in subscribers:
        times = [accepted_times.get(topic, []) for topic in sub.topics]
        for quiet in sub.silences:
            for a, b in excluded.outside(quiet.start, quiet.end):
                if b - a > threshold and any(_any_between(ts, a, b - threshold) for ts in times):
                    found.append((sub.sid, Silence(a, b, quiet.context)))
    return found


def _any_between(sorted_times: list[float], low: float, high: float) -> bool:
    index = bisect.bisect_left(sorted_times, low)
    return index < len(sorted_times) and sorted_times[index] <= high


def delivery_latency(log: LatencyLog, chaos: Windows) -> dict[str, float]:
    """p50/p99/p99.9/max of live hand-overs outside chaos, and p99 of every hand-over."""
    live: list[float] = []
    every: list[float] = []
    for sent, latency, is_live in zip(log.sent, log.latency, log.live, strict=True):
        every.append(latency)
        if is_live and not chaos.overlaps(sent, sent + latency):
            live.append(latency)
    live.sort()
    every.sort()
    return {
        "count": float(len(live)),
        "p50": percentile(live, 0.50),
        "p99": percentile(live, 0.99),
        "p99.9": percentile(live, 0.999),
        "max": live[-1] if live else 0.0,
        "all_p99": percentile(every, 0.99),
    }


def publish_recovery(
    records: Iterable[PublishRecord],
    kind: str,
    resumed_at: float,
    normal: float,
    next_fault: float | None = None,
) -> Recovery:
    """How long after ``resumed_at`` publishes were back to normal.

    Publishes sent within ``RECOVERY_HORIZON`` of it are watched; one still
    unanswered when ``next_fault`` started belongs to that fault, not this one.
    """
    until = resumed_at + RECOVERY_HORIZON
    if next_fault is not None:
        until = min(until, next_fault)
    abnormal = [
        r
        for r in records
        if resumed_at <= r.sent_at < until
        and (not r.accepted or r.latency > normal)
        and (next_fault is None or r.answered_at < next_fault)
    ]
    statuses = Counter(r.status for r in abnormal)
    if not abnormal:
        return Recovery(kind, resumed_at, 0.0, 0, {})
    last = max(abnormal, key=lambda r: r.answered_at)
    worst = (
        f"sent {last.sent_at - resumed_at:+.2f} s after, "
        f"{' '.join(filter(None, (last.status, last.detail)))} in {last.latency:.2f} s"
    )
    return Recovery(
        kind, resumed_at, last.answered_at - resumed_at, len(abnormal), dict(statuses), worst
    )


def _publish_figures(findings: Findings, publishes: PublishLedger, chaos: Windows) -> None:
    records = list(publishes.records.values())
    findings.publishes = Counter(r.status for r in records)
    if len(records) > 1:
        span = max(r.sent_at for r in records) - min(r.sent_at for r in records)
        findings.publish_rate = (len(records) - 1) / span if span > 0 else 0.0
    calm = sorted(
        r.latency for r in records if r.accepted and not chaos.overlaps(r.sent_at, r.answered_at)
    )
    findings.publish_latency = {
        "p50": percentile(calm, 0.5),
        "p99": percentile(calm, 0.99),
        "max": calm[-1] if calm else 0.0,
    }
    findings.normal_publish = max(NORMAL_FLOOR, 3 * findings.publish_latency["p99"])


def _recoveries(
    publishes: PublishLedger, windows: Sequence[ChaosWindow], normal: float
) -> list[Recovery]:
    records = sorted(publishes.records.values(), key=lambda r: r.sent_at)
    starts = sorted(w.start for w in windows)
    found = []
    for window in windows:
        if window.resumed_at is None:
            continue
        later = [start for start in starts if start > window.resumed_at]
        following = later[0] if later else None
        found.append(publish_recovery(records, window.kind, window.resumed_at, normal, following))
    return found


def judge(
    publishes: PublishLedger,
    subscribers: Sequence[SubscriberLedger],
    latencies: LatencyLog,
    seqs: SeqBook,
    chaos: Sequence[ChaosWindow],
    *,
    settle: float,
    stalls: Sequence[Interval] = (),
    silence: float = 2.0,
    origin: float = 0.0,
) -> Findings:
    """Every figure of the report for one run; ``origin``: the run's start, for examples."""
    chaos_windows = Windows((w.start, w.end + settle) for w in chaos)
    excluded = Windows([*chaos_windows.intervals, *stalls])
    findings = Findings()
    findings.losses, findings.excused, findings.loss_examples = losses(publishes, subscribers)
    for sub in subscribers:
        findings.counts.update(sub.counts)
        findings.close_codes.update(sub.close_codes)
        findings.recovery_failed.update(sub.recovery_failed)
        for kind, shown in sub.examples.items():
            kept = findings.examples.setdefault(kind, [])
            kept.extend(shown[: max(0, 20 - len(kept))])
    findings.deliveries = findings.counts["handed"]
    quiet = silences(subscribers, publishes.accepted_times(), excluded, silence)
    findings.silences = len(quiet)
    findings.longest_silence = max((q.end - q.start for _, q in quiet), default=0.0)
    findings.silence_examples = [_silence(sid, q, origin) for sid, q in quiet[:20]]
    findings.silences_by_node = Counter(_node_at(q) for _, q in quiet)
    findings.latency = delivery_latency(latencies, chaos_windows)
    _publish_figures(findings, publishes, chaos_windows)
    findings.recoveries = _recoveries(publishes, chaos, findings.normal_publish)
    _publish_fates(findings, publishes, seqs)
    return findings


def _node_at(quiet: Silence) -> str:
    """The node of the last connection made before the silence began."""
    opened = [what for t, what in quiet.context if what[:4] == "conn" and t <= quiet.start]
    return opened[-1].removeprefix("connected to ") if opened else "unknown"


def _silence(sid: int, quiet: Silence, origin: float) -> str:
    """One silence, with what the subscriber did from its connection before it to its end."""
    context = list(quiet.context)
    opened = [
        i for i, (t, what) in enumerate(context) if what.startswith("conn") and t <= quiet.start
    ]
    shown = context[opened[-1] if opened else 0 :][:8]
    steps = "; ".join(f"{t - origin:.1f} {what}" for t, what in shown)
    return f"sub {sid}: {quiet.end - quiet.start:.1f} s from {quiet.start - origin:.1f} s ({steps})"


def _publish_fates(findings: Findings, publishes: PublishLedger, seqs: SeqBook) -> None:
    """Refused publishes delivered anyway, seqs other than the one answered, invented events."""
    for n, seq in seqs.seqs.items():
        record = publishes.records.get(n)
        if record is None:
            findings.invented += 1
        elif not record.accepted:
            findings.refused_delivered[record.status] += 1
        elif record.seq != seq:
            findings.seq_mismatches += 1
    findings.seq_mismatches += len(seqs.conflicts)
