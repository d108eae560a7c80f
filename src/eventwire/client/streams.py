"""Per-topic delivery state on the client: positions, duplicates and gaps, without I/O.

Every event of a topic carries ``seq``, contiguous from 1 within the topic's
epoch; SUBSCRIBED reports where the topic stands, ``(seq, epoch)``. From
those two facts a ``TopicStream`` decides, for each event, whether the
application gets it, and notices what it missed:

- an event at or before the last delivered ``seq`` is a duplicate: dropped;
- an event after a jump in ``seq`` is delivered, and the jump is a ``Gap``;
- after a reconnect, SUBSCRIBED past the last delivered ``seq`` is a ``Gap``;
  a new epoch means the history itself was lost (``history_lost``).

With recovery (a resubscription that sent ``since``, the last delivered
position), SUBSCRIBED says per topic whether the gateway replays what was
missed: ``recovered: true`` keeps the last delivered ``seq`` (the replayed
events follow, judged like live ones, so none is delivered twice and none is
a gap); ``recovered: false`` (or a RECOVERY_FAILED) reports what was missed
as a ``Gap`` with ``history_lost``: the application refetches.

Between a SUBSCRIBE and its SUBSCRIBED the epoch is unknown, so events are
held and judged once the position arrives. An event that arrives before
SUBSCRIBED was published after the server joined us to the topic, so it is
new even when its ``seq`` is at or below the reported position.
"""

from __future__ import annotations

from dataclasses import dataclass

from eventwire.envelope import Event

__all__ = ["Gap", "TopicPosition", "TopicStream"]


@dataclass(frozen=True, slots=True)
class TopicPosition:
    """Where a client stands in a topic: the last ``seq`` it has, in the history ``epoch``."""

    seq: int
    epoch: str


@dataclass(frozen=True, slots=True)
class Gap:
    """Events of ``topic`` the client never received: ``seq`` ``first`` to ``last``.

    With ``history_lost`` the topic's epoch changed (the gateway lost its
    history, e.g. a restart of the in-memory broker): whatever followed the
    old position is gone, and ``first..last`` are the new epoch's events that
    were missed (none when ``last < first``). Refetch the resource's state.
    """

    topic: str
    first: int
    last: int
    epoch: str | None
    history_lost: bool = False

    @property
    def count(self) -> int:
        """How many events of the current epoch were missed."""
        return max(0, self.last - self.first + 1)


Judged = tuple[list[Event], list[Gap]]
"""Events to deliver, in order, and the gaps noticed on the way."""


class TopicStream:
    """One topic's position on one client, and the rules above."""

    __slots__ = ("_held", "_lost_told", "_resume", "epoch", "last_seq", "topic")

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.epoch: str | None = None
        self.last_seq: int | None = None
        self._held: list[Event] | None = None
        self._resume = False
        self._lost_told = False

    @property
    def position(self) -> TopicPosition | None:
        """The last position delivered to the application, once SUBSCRIBED told the epoch."""
        if self.epoch is None or self.last_seq is None:
            return None
        return TopicPosition(self.last_seq, self.epoch)

    @property
    def awaiting(self) -> bool:
        """Whether events are held until a SUBSCRIBED reports the position."""
        return self._held is not None

    def subscribing(self, *, resume: bool) -> None:
        """A SUBSCRIBE was sent; ``resume`` after a reconnect, when missed events are gaps."""
        if self._held is None:
            self._held = []
        self._resume = self._resume or resume

    def subscribed(self, seq: int, epoch: str, recovered: bool | None = None) -> Judged:
        """SUBSCRIBED reported ``(seq, epoch)``: set the baseline and release held events.

        ``recovered``: SUBSCRIBED's answer to this topic's ``since`` (None: none was sent).
        """
        if self._held is None:
            return [], []  # already live: a second SUBSCRIBE of the same topic
        held, self._held = self._held, None
        resumed = self._resume and self.epoch is not None and self.last_seq is not None
        self._resume = False
        self._lost_told = False
        if recovered and resumed and epoch == self.epoch:
            # The missed events follow SUBSCRIBED: keep the last delivered seq.
            return self._judge_all(held)
        baseline = seq
        if held and held[0].seq is not None:
            baseline = min(seq, held[0].seq - 1)
        gaps: list[Gap] = []
        lost = recovered is False
        if not resumed or self.last_seq is None:
            self.last_seq = baseline
        elif epoch != self.epoch:
            gaps.append(Gap(self.topic, 1, baseline, epoch, history_lost=True))
            self.last_seq = baseline
        elif baseline > self.last_seq:
            gaps.append(Gap(self.topic, self.last_seq + 1, baseline, epoch, history_lost=lost))
            self.last_seq = baseline
        self._lost_told = lost and bool(gaps)
        self.epoch = epoch
        delivered, later = self._judge_all(held)
        return delivered, gaps + later

    def recovery_failed(self, seq: int, epoch: str) -> list[Gap]:
        """RECOVERY_FAILED at ``(seq, epoch)``: the gap to report, unless SUBSCRIBED told it."""
        if self._lost_told:
            self._lost_told = False
            return []
        if self.epoch == epoch and self.last_seq is not None and self.last_seq >= seq:
            return []  # nothing was missed up to there
        last = self.last_seq if self.epoch == epoch and self.last_seq is not None else 0
        gap = Gap(self.topic, last + 1, seq, epoch, history_lost=True)
        self.epoch, self.last_seq = epoch, max(seq, last)
        return [gap]

    def abandon(self) -> Judged:
        """The SUBSCRIBE will never be answered (connection lost): judge held events as they are."""
        held, self._held = self._held or [], None
        return self._judge_all(held)

    def receive(self, event: Event) -> Judged:
        """One event of this topic arrived."""
        if self._held is not None:
            self._held.append(event)
            return [], []
        return self._judge_all([event])

    def _judge_all(self, events: list[Event]) -> Judged:
        delivered: list[Event] = []
        gaps: list[Gap] = []
        for event in events:
            seq, last = event.seq, self.last_seq
            if seq is None:
                delivered.append(event)
                continue
            if last is not None:
                if seq <= last:
                    continue  # already delivered in this epoch: never twice
                if seq > last + 1:
                    gaps.append(Gap(self.topic, last + 1, seq - 1, self.epoch))
            self.last_seq = seq
            delivered.append(event)
        return delivered, gaps
