"""One subscriber's view of the wire, as a real client keeps it, with no I/O.

A subscriber holds, per topic, a cursor: the last ``seq`` handed to the
application and its epoch. Like eventwire's clients (docs/protocol.md,
"Recovery"), it

- holds a topic's events between SUBSCRIBE and SUBSCRIBED, then judges them;
- sends its cursors as ``since`` when it subscribes again;
- drops an event at or before its cursor (client-side dedup), and hands
  over the others.

Beside that it notes what the soak judges: per connection, a ``seq``
received twice on the wire (a repeat) or after a higher one (out of
order); per subscriber, an event number handed over twice (a duplicate
after dedup), what the server said was lost (``recovered: false``,
RECOVERY_FAILED, a new epoch), close codes, and every stretch of more than
``silence`` seconds without an event. ``bench.soak.subscribers`` feeds it
from a real socket; the unit tests feed it synthetic traces.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from bench.soak.ledger import LatencyLog, SeqBook

__all__ = ["Cursor", "Held", "Silence", "SubscriberLedger"]

_EXAMPLES = 20
"""Examples kept of each kind of trouble, for the report."""


@dataclass(frozen=True, slots=True)
class Held:
    """An event received before its topic's SUBSCRIBED: judged once the position is known."""

    t: float
    seq: int
    n: int
    sent_at: float


@dataclass(frozen=True, slots=True)
class Silence:
    """No event from ``start`` to ``end``; ``context``: the subscriber's last (time, what)."""

    start: float
    end: float
    context: tuple[tuple[float, str], ...] = ()


@dataclass(slots=True)
class Cursor:
    """One topic, across the subscriber's connections."""

    epoch: str | None = None
    last: int | None = None
    """The last ``seq`` handed over (or declared lost by the server)."""
    first: int | None = None
    """The position of the first SUBSCRIBED: events after it are owed to this subscriber."""
    held: list[Held] | None = None
    """Events waiting for SUBSCRIBED on the current connection; None when live."""
    subscribed_at: float = 0.0
    excused: list[tuple[int, int]] = field(default_factory=list)
    """``seq`` ranges the server said this subscriber would not get (same epoch)."""
    resets: list[float] = field(default_factory=list)
    """When the server showed this subscriber a new epoch: what came before may be lost."""

    def is_excused(self, seq: int) -> bool:
        return any(first <= seq <= last for first, last in self.excused)


@dataclass(slots=True)
class _WireTopic:
    """One topic on one connection: which ``seq`` came, the highest so far."""

    seen: set[int] = field(default_factory=set)
    top: int = 0
    repeats: list[int] = field(default_factory=list)
    """The ``seq`` received twice, for the example written when the connection ends."""
    late: list[tuple[int, int]] = field(default_factory=list)
    """(seq, the higher one before it) of those out of order, likewise."""


class SubscriberLedger:
    """One subscriber, over all its connections; see the module docstring."""

    def __init__(
        self,
        sid: int,
        topics: tuple[str, ...],
        *,
        latencies: LatencyLog,
        seqs: SeqBook,
        silence: float = 2.0,
    ) -> None:
        self.sid = sid
        self.topics = topics
        self.cursors = {topic: Cursor() for topic in topics}
        self.counts: Counter[str] = Counter()
        self.close_codes: Counter[int] = Counter()
        self.recovery_failed: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}
        self.silences: list[Silence] = []
        self.history: deque[tuple[float, str]] = deque(maxlen=12)
        """The last connections, subscriptions and closes, for the examples of silences."""
        self.silence = silence
        self._latencies = latencies
        self._seqs = seqs
        self._handed = bytearray()
        self._wire: dict[str, _WireTopic] = {}
        self._last_event: float | None = None

    # -- connection lifecycle ------------------------------------------------

    def connected(self, t: float, node: str = "") -> None:
        """A new connection (to ``node``): nothing seen on its wire yet."""
        self.counts["connections"] += 1
        self.history.append((t, f"connected to {node}"))
        self._wire = {topic: _WireTopic() for topic in self.topics}

    def subscribing(self, topics: list[str], t: float = 0.0) -> dict[str, dict[str, Any]]:
        """A SUBSCRIBE is about to be sent for ``topics``: hold their events; the ``since`` map."""
        since: dict[str, dict[str, Any]] = {}
        for topic in topics:
            cursor = self.cursors[topic]
            if cursor.held is None:
                cursor.held = []
            if cursor.last is not None and cursor.epoch is not None:
                since[topic] = {"seq": cursor.last, "epoch": cursor.epoch}
        self.counts["subscribes"] += 1
        self.counts["since_topics"] += len(since)
        self.history.append((t, f"SUBSCRIBE {len(topics)} topics, {len(since)} with since"))
        return since

    def closed(self, t: float, code: int | None, ours: bool) -> None:
        """The connection ended; ``ours``: the subscriber dropped it on purpose."""
        if not ours:
            self.close_codes[1006 if code is None else code] += 1
        self.history.append((t, f"closed ({code}) by {'us' if ours else 'the server'}"))
        self._repeats_seen()
        for cursor in self.cursors.values():
            if cursor.held:
                self.counts["held_dropped"] += len(cursor.held)
            cursor.held = None  # what they held comes back through ``since``

    def finish(self, t: float) -> None:
        """The run is over: a silence still going counts up to ``t``."""
        self._silent_until(t)
        self._repeats_seen()

    # -- frames --------------------------------------------------------------

    def subscribed(
        self,
        t: float,
        positions: dict[str, tuple[int, str]],
        recovered: dict[str, bool] | None,
    ) -> None:
        """SUBSCRIBED: the accepted topics' positions, and ``recovered`` if ``since`` was sent."""
        if self._last_event is None:
            self._last_event = t
        told = "" if recovered is None else f", recovered {sorted(set(recovered.values()))}"
        self.history.append((t, f"SUBSCRIBED {len(positions)} topics{told}"))
        for topic, (seq, epoch) in positions.items():
            cursor = self.cursors.get(topic)
            if cursor is None or cursor.held is None:
                continue
            answer = None if recovered is None else recovered.get(topic)
            self._baseline(t, topic, cursor, seq, epoch, answer)

    def recovery_failed_at(self, t: float, topic: str, seq: int, epoch: str, reason: str) -> None:
        """RECOVERY_FAILED: events up to ``seq`` will not come."""
        self.recovery_failed[reason] += 1
        self.history.append((t, f"RECOVERY_FAILED {topic} {reason}"))
        cursor = self.cursors.get(topic)
        if cursor is None:
            return
        if cursor.epoch != epoch:
            self._reset(t, topic, cursor, epoch, seq)
        elif cursor.last is None or seq > cursor.last:
            start = (cursor.last or 0) + 1
            cursor.excused.append((start, seq))
            cursor.last = seq

    def event(self, t: float, topic: str, seq: int, n: int, sent_at: float) -> None:
        """An event on the wire."""
        wire = self._wire.get(topic)
        cursor = self.cursors.get(topic)
        if wire is None or cursor is None:
            self.note("foreign", f"sub {self.sid}: event of {topic} seq {seq}, not subscribed")
            return
        if seq in wire.seen:
            self.counts["wire_repeats"] += 1
            wire.repeats.append(seq)
        elif seq < wire.top:
            self.counts["out_of_order"] += 1
            wire.late.append((seq, wire.top))
        wire.seen.add(seq)
        wire.top = max(wire.top, seq)
        self._silent_until(t)
        if cursor.held is not None:
            cursor.held.append(Held(t, seq, n, sent_at))
        else:
            self._judge(topic, cursor, Held(t, seq, n, sent_at))

    # -- queries -------------------------------------------------------------

    def handed(self, n: int) -> bool:
        """Whether event number ``n`` was handed to the application."""
        index, bit = divmod(n, 8)
        return index < len(self._handed) and bool(self._handed[index] & (1 << bit))

    def since(self) -> dict[str, dict[str, Any]]:
        return {
            topic: {"seq": c.last, "epoch": c.epoch}
            for topic, c in self.cursors.items()
            if c.last is not None and c.epoch is not None
        }

    def caught_up(self, tops: dict[str, int]) -> bool:
        """Whether every topic's cursor reached ``tops`` (each topic's highest accepted seq)."""
        return all(
            c.held is None and c.last is not None and c.last >= tops.get(topic, 0)
            for topic, c in self.cursors.items()
        )

    # -- the rules -----------------------------------------------------------

    def _repeats_seen(self) -> None:
        """One example per topic of the connection that ends, of repeats and of disorder."""
        node = next((what for _, what in reversed(self.history) if what.startswith("conn")), "")
        where = f"sub {self.sid} ({node})"
        for topic, wire in self._wire.items():
            if wire.repeats:
                seqs = f"{min(wire.repeats)}-{max(wire.repeats)}"
                example = f"{where}: {topic}: {len(wire.repeats)} seq twice ({seqs})"
                self.note("wire_repeats", example, count=False)
                wire.repeats.clear()
            if wire.late:
                first, top = wire.late[0]
                example = f"{where}: {topic}: {len(wire.late)} seq late, from {first} after {top}"
                self.note("out_of_order", example, count=False)
                wire.late.clear()

    def _silent_until(self, t: float) -> None:
        """An event at ``t`` (or the end): the stretch since the last one may be a silence."""
        last = self._last_event
        if last is not None and t - last > self.silence:
            self.silences.append(Silence(last, t, tuple(self.history)))
        self._last_event = t

    def _baseline(
        self, t: float, topic: str, cursor: Cursor, seq: int, epoch: str, recovered: bool | None
    ) -> None:
        held, cursor.held = cursor.held or [], None
        cursor.subscribed_at = t
        if recovered is not None:
            self.counts[f"recovered_{str(recovered).lower()}"] += 1
        baseline = min(seq, held[0].seq - 1) if held else seq
        if cursor.last is None:
            cursor.first = cursor.last = baseline
            cursor.epoch = epoch
        elif epoch != cursor.epoch:
            self._reset(t, topic, cursor, epoch, baseline)
        elif recovered:
            pass  # the missed events follow SUBSCRIBED: the cursor stays where it is
        elif baseline > cursor.last:
            if recovered is False:  # told: the application would refetch
                cursor.excused.append((cursor.last + 1, baseline))
            else:  # ``since`` went unanswered
                self.note("unannounced_gaps", f"sub {self.sid}: {topic} {cursor.last}->{seq}")
            cursor.last = baseline
        for item in held:
            self._judge(topic, cursor, item)

    def _reset(self, t: float, topic: str, cursor: Cursor, epoch: str, seq: int) -> None:
        self.note("history_resets", f"sub {self.sid}: {topic} epoch {cursor.epoch} -> {epoch}")
        cursor.resets.append(t)
        cursor.epoch, cursor.last = epoch, seq

    def _judge(self, topic: str, cursor: Cursor, item: Held) -> None:
        if cursor.last is not None and item.seq <= cursor.last:
            self.counts["deduped"] += 1
            return
        if cursor.last is not None and item.seq > cursor.last + 1:
            self.counts["jumps"] += 1
        cursor.last = item.seq
        self._hand(item, live=item.sent_at >= cursor.subscribed_at)
        self._seqs.note(item.n, item.seq)

    def _hand(self, item: Held, live: bool) -> None:
        index, bit = divmod(item.n, 8)
        if index >= len(self._handed):
            self._handed.extend(bytes(index - len(self._handed) + 1024))
        if self._handed[index] & (1 << bit):
            self.note("duplicates", f"sub {self.sid}: event n={item.n} handed over twice")
        self._handed[index] |= 1 << bit
        self.counts["handed"] += 1
        self._latencies.add(item.sent_at, item.t - item.sent_at, live)

    def note(self, kind: str, example: str, *, count: bool = True) -> None:
        """Count one trouble of ``kind``, keeping the first few as examples."""
        self.counts[kind] += count
        shown = self.examples.setdefault(kind, [])
        if len(shown) < _EXAMPLES:
            shown.append(example)
