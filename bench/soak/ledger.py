"""What the soak records besides the subscribers' wire: publishes, deliveries' latency, chaos.

Plain records, no I/O, so the accounting can be tested on small synthetic
traces. Times are ``time.monotonic()`` seconds of the soak's own process,
which stamps each event it publishes (``payload.t``) and each frame it
receives, so a delivery's latency needs no clock shared with the servers.
"""

from __future__ import annotations

from array import array
from collections import defaultdict
from dataclasses import dataclass, field

__all__ = ["ChaosWindow", "LatencyLog", "PublishLedger", "PublishRecord", "SeqBook"]


@dataclass(frozen=True, slots=True)
class PublishRecord:
    """One ``POST /v1/publish`` and how it ended.

    ``status`` is ``"200"``, another HTTP status (``"503"``, ``"504"``...),
    ``"timeout"`` (no answer in time) or ``"error"`` (the connection failed:
    a node that is down); ``detail`` says more (an error code, an exception's
    name). ``seq`` is what a 200 answered.
    """

    n: int
    topic: str
    sent_at: float
    latency: float
    status: str
    detail: str = ""
    seq: int | None = None

    @property
    def accepted(self) -> bool:
        return self.status == "200" and self.seq is not None

    @property
    def answered_at(self) -> float:
        return self.sent_at + self.latency


@dataclass(slots=True)
class PublishLedger:
    """Every publish of a run, by its number ``n`` (unique in the run, from 1)."""

    records: dict[int, PublishRecord] = field(default_factory=dict)

    def add(self, record: PublishRecord) -> None:
        self.records[record.n] = record

    def accepted(self) -> list[PublishRecord]:
        return [r for r in self.records.values() if r.accepted]

    def top_seqs(self) -> dict[str, int]:
        """Each topic's highest accepted ``seq``: where a caught-up subscriber stands."""
        tops: dict[str, int] = {}
        for record in self.accepted():
            assert record.seq is not None
            tops[record.topic] = max(tops.get(record.topic, 0), record.seq)
        return tops

    def accepted_times(self) -> dict[str, list[float]]:
        """Each topic's accepted publishes' send times, sorted."""
        times: defaultdict[str, list[float]] = defaultdict(list)
        for record in self.accepted():
            times[record.topic].append(record.sent_at)
        return {topic: sorted(sent) for topic, sent in times.items()}


@dataclass(slots=True)
class LatencyLog:
    """Every hand-over's send time and latency, compactly (a long run has millions).

    ``live`` marks events sent after the connection that brought them had
    subscribed: not replayed after one of the subscriber's own reconnections.
    """

    sent: array[float] = field(default_factory=lambda: array("d"))
    latency: array[float] = field(default_factory=lambda: array("d"))
    live: bytearray = field(default_factory=bytearray)

    def add(self, sent_at: float, latency: float, live: bool) -> None:
        self.sent.append(sent_at)
        self.latency.append(latency)
        self.live.append(live)

    def __len__(self) -> int:
        return len(self.sent)


@dataclass(slots=True)
class SeqBook:
    """The ``seq`` each event number was first handed over with, across subscribers.

    The same ``n`` under two ``seq`` means the broker stored one publish twice.
    """

    seqs: dict[int, int] = field(default_factory=dict)
    conflicts: list[tuple[int, int, int]] = field(default_factory=list)
    """(n, first seq, other seq)."""

    def note(self, n: int, seq: int) -> None:
        first = self.seqs.setdefault(n, seq)
        if first != seq and len(self.conflicts) < 1000:
            self.conflicts.append((n, first, seq))


@dataclass(frozen=True, slots=True)
class ChaosWindow:
    """One fault: from its start until everything it broke was back (``end``).

    ``resumed_at`` is when a broker fault ended (SIGCONT sent, or the
    restarted broker answering), from which publishes should be back to
    normal; None for a node's fault.
    """

    kind: str
    target: str
    start: float
    end: float
    resumed_at: float | None = None
    ready_at: float | None = None
    """When every node's ``/readyz`` said ready again (None: not within the wait)."""
