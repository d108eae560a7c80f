"""The broker interface: where ``seq`` is assigned and events cross between nodes.

A broker is small on purpose. It assigns each published event its position
in its topic, moves the encoded body to every node that declared interest
in the topic, and tells a subscriber where a topic stands. Local fan-out is
not its job: the hub does that once per node.

What a broker can do beyond that is a separate capability, a Protocol of its
own, so that a gateway asks for it by name and fails loudly where it is
missing instead of getting nothing back::

    Broker     start, publish, position, add_interest, remove_interest, close
    History    history(topic, since, limit) -> HistoryPage
    Health     ready, ping(), counters()
    Presence   presence_update(...) -> PresenceUpdate, presence_read(...) -> PresenceRead

Errors, under ``eventwire.errors.BrokerError``::

    BrokerError
    ├── BrokerUnavailable   the broker cannot be reached (or is closed): the
    │   │                   publish was refused, nothing stored, retry later (HTTP 503)
    │   └── OutcomeUnknown  the publish was sent and its answer did not come in
    │                       time: it may have been stored (HTTP 504)
    └── NotAvailable        this broker lacks the capability asked for
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

from eventwire.errors import BrokerError

__all__ = [
    "BatchPublish",
    "BatchRefused",
    "Broker",
    "BrokerUnavailable",
    "Health",
    "History",
    "HistoryPage",
    "InboundHandler",
    "NotAvailable",
    "OutcomeUnknown",
    "Position",
    "Presence",
    "PresenceRead",
    "PresenceUpdate",
    "ResetHandler",
    "history_of",
    "presence_of",
    "publish_each",
]


class BrokerUnavailable(BrokerError):
    """The broker did not serve the call: unreachable, closed, or too slow to answer.

    Raised by ``publish`` (and reads) while the broker is down, so a publisher
    learns at once that its event was refused rather than accepted and lost.
    Raised as such, nothing of the failed publish was sent, so nothing was
    stored: retrying is safe. A publish that was sent and then got no answer
    raises the subclass ``OutcomeUnknown`` instead. ``published`` counts the
    leading events of a batch that are known to be stored.
    """

    def __init__(self, message: str, *, published: int = 0) -> None:
        super().__init__(message)
        self.published = published


class OutcomeUnknown(BrokerUnavailable):
    """A publish was sent to the broker and its answer did not come in time.

    The broker may have stored it (a frozen Redis runs the command once it
    is resumed), or not: retrying may store the event twice. ``published``
    counts the leading events of a batch known to be stored; the
    ``unknown`` events after them may or may not be; none after those was
    sent. A subclass of BrokerUnavailable, so that whoever only needs "the
    broker failed, try later" catches both.
    """

    def __init__(self, message: str, *, published: int = 0, unknown: int = 1) -> None:
        super().__init__(message, published=published)
        self.unknown = unknown


class BatchRefused(BrokerError):
    """The broker refused an event of a batch (not an outage): retrying it will not help.

    ``published`` counts the leading events stored; none after them was.
    """

    def __init__(self, message: str, *, published: int) -> None:
        super().__init__(message)
        self.published = published


class NotAvailable(BrokerError):
    """The broker does not offer the capability asked for (history, presence)."""


class Position(NamedTuple):
    """Where a topic stands: its last ``seq`` within the history named ``epoch``.

    The epoch changes when a topic's history is lost (a restart of the
    in-memory broker, a flush of Redis), so ``seq`` 7 of one epoch is never
    mistaken for ``seq`` 7 of another.
    """

    seq: int
    epoch: str

    def to_wire(self) -> dict[str, int | str]:
        return {"seq": self.seq, "epoch": self.epoch}


InboundHandler = Callable[[str, int, bytes], None]
"""Receives ``(topic, seq, body)`` for each event of a topic this node is interested in."""

ResetHandler = Callable[[str, Position], None]
"""Receives ``(topic, position)`` when a topic of interest turns out to have a new epoch.

Its history was lost (a Redis flush or restart): ``seq`` starts again from 1,
so whoever deduplicates by ``seq`` must start again from ``position``. It is
called before the new epoch's first event is handed on.
"""


class Broker(Protocol):
    """What every broker implements; conformance is checked by mypy.

    Interest has set semantics: adding a topic twice and removing it once
    leaves no interest. A topic's events reach ``on_event`` once per node,
    in ``seq`` order, however many interests (a topic and patterns) match it.
    """

    async def start(self, on_event: InboundHandler, on_reset: ResetHandler | None = None) -> None:
        """Connect, and from now on push inbound events to ``on_event``.

        ``on_reset`` learns of topics (of interest by name) whose history
        this node can no longer continue: a new epoch, or a position gone
        back under the same one (lost writes). Raises BrokerUnavailable when
        the broker cannot be reached.
        """

    async def publish(self, topic: str, body: bytes) -> int:
        """Store and distribute one encoded event; return its ``seq``.

        Raises BrokerUnavailable when the broker is unreachable or closed
        (nothing was stored), OutcomeUnknown when the event was sent and no
        answer came within the broker's command timeout (it may be stored).
        """

    async def position(self, topic: str) -> Position:
        """The topic's current position (``seq`` 0 before its first event)."""

    async def add_interest(self, topic: str) -> None:
        """Start receiving ``topic`` (a topic or a wildcard pattern) on this node.

        Returns once events published from now on will reach this node.
        """

    async def remove_interest(self, topic: str) -> None:
        """Stop receiving ``topic`` on this node."""

    async def close(self) -> None:
        """Disconnect; later publishes raise BrokerUnavailable."""


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """Events of one topic after ``since``, oldest first, and where the topic stands.

    ``events`` are ``(seq, body)`` pairs with contiguous seqs. ``truncated``
    is true when events after ``since`` existed in this epoch but are no
    longer kept (trimmed by count or age): a reader that needs every event
    must then reload its state instead of applying the page. It says nothing
    across epochs: compare ``position.epoch`` with the epoch ``since`` came
    from first.
    """

    events: Sequence[tuple[int, bytes]]
    position: Position
    truncated: bool

    @property
    def has_more(self) -> bool:
        """Whether later events exist than this page holds (ask again from ``next_since``)."""
        return bool(self.events) and self.events[-1][0] < self.position.seq

    @property
    def next_since(self) -> int:
        """The ``since`` of the following page."""
        return self.events[-1][0] if self.events else self.position.seq


@runtime_checkable
class History(Protocol):
    """A broker that keeps each topic's recent events, bounded by count and age."""

    async def history(self, topic: str, since: int, limit: int) -> HistoryPage:
        """At most ``limit`` events of ``topic`` with ``seq > since``, oldest first."""
        ...


@runtime_checkable
class BatchPublish(Protocol):
    """A broker that takes a batch of events in fewer round trips than one per event."""

    async def publish_batch(self, events: Sequence[tuple[str, bytes]]) -> list[int]:
        """Publish ``(topic, body)`` pairs in order, as ``publish`` would; return their seqs.

        Raises BrokerUnavailable when the broker cannot be reached, and
        BatchRefused when it refuses an event; ``published`` counts the
        leading events stored, and none after them is. OutcomeUnknown when
        events were sent and not answered: its ``unknown`` events after the
        ``published`` ones may be stored.
        """
        ...


async def publish_each(broker: Broker, events: Sequence[tuple[str, bytes]]) -> list[int]:
    """Publish ``(topic, body)`` pairs one at a time, in order; return their seqs.

    A failure says in ``published`` how many were stored before it.
    """
    seqs: list[int] = []
    for topic, body in events:
        try:
            seqs.append(await broker.publish(topic, body))
        except BrokerUnavailable as exc:
            exc.published = len(seqs)
            raise
    return seqs


@runtime_checkable
class Health(Protocol):
    """A broker with a link that can break: it reports whether this node hears events."""

    @property
    def ready(self) -> bool:
        """True while the node is subscribed to every interest and events flow in."""
        ...

    async def ping(self) -> float:
        """Round-trip time to the broker in seconds; raises BrokerUnavailable."""
        ...

    def counters(self) -> Mapping[str, int]:
        """Monotonic counters of the link (losses, events recovered or missed)."""
        ...


def history_of(broker: object) -> History:
    """``broker`` as a History, or NotAvailable: the capability is asked for by name."""
    if not isinstance(broker, History):
        raise NotAvailable(f"{type(broker).__name__} keeps no history")
    return broker


@dataclass(frozen=True, slots=True)
class PresenceUpdate:
    """What one ``presence_update`` did, read in the same atomic step.

    ``counts``: for each member written, its connections on every live node
    before and after (``(0, 1)`` is a join, ``(1, 0)`` a leave, cluster-wide).
    ``expired``: members whose last connections were on nodes whose lease
    had passed; those nodes were dropped in this step, and only the step
    that drops a node reports its members. ``known``: whether the writing
    node still held its lease on the topic; False for its first write, and
    when its entries were lost (a flush) or dropped as expired, in which
    case it must write every member it has there again.
    """

    counts: Mapping[str, tuple[int, int]]
    expired: Sequence[str]
    known: bool


@dataclass(frozen=True, slots=True)
class PresenceRead:
    """Members of a topic and their connections on live nodes; ``expired`` as in PresenceUpdate."""

    counts: Mapping[str, int]
    expired: Sequence[str]


@runtime_checkable
class Presence(Protocol):
    """A broker that keeps who is on a topic, per node, under leases that expire.

    Members are opaque strings (the gateway encodes a user and tenant in
    them). Each node owns its own counts; a node whose lease on a topic
    passes without renewal is dropped by whichever node touches the topic
    next, and that call alone reports the members it took away. A node's
    own entries are never expired by its own calls.
    """

    async def presence_update(
        self, node: str, topic: str, counts: Mapping[str, int], lease: float
    ) -> PresenceUpdate:
        """Set ``node``'s connections of each member in ``counts`` on ``topic`` (0: none).

        Renews ``node``'s lease there for ``lease`` seconds; ``lease`` 0
        releases it, allowed only once the node has no member left there.
        Drops the nodes whose lease has passed first.
        """
        ...

    async def presence_read(
        self, node: str, topic: str, members: Collection[str] | None = None
    ) -> PresenceRead:
        """The connections of ``members`` (every member when None) on ``topic``'s live nodes."""
        ...


def presence_of(broker: object) -> Presence:
    """``broker`` as a Presence, or NotAvailable: the capability is asked for by name."""
    if not isinstance(broker, Presence):
        raise NotAvailable(f"{type(broker).__name__} keeps no presence")
    return broker
