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

Errors, under ``eventwire.errors.BrokerError``::

    BrokerError
    ├── BrokerUnavailable   the broker cannot be reached (or is closed): the
    │                       publish was refused, retry later (HTTP 503)
    └── NotAvailable        this broker lacks the capability asked for
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

from eventwire.errors import BrokerError

__all__ = [
    "Broker",
    "BrokerUnavailable",
    "Health",
    "History",
    "HistoryPage",
    "InboundHandler",
    "NotAvailable",
    "Position",
    "ResetHandler",
    "history_of",
]


class BrokerUnavailable(BrokerError):
    """The broker cannot be reached; nothing was stored or sent.

    Raised by ``publish`` (and reads) while the broker is down, so a publisher
    learns at once that its event was refused rather than accepted and lost.
    A publish that fails because the link broke *after* the command was sent
    may still have been applied: publishers that retry should make their
    events idempotent (``entity_id``, ``trace_id``).
    """


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

        ``on_reset`` learns of topics (of interest by name) whose epoch
        changed while this node followed them. Raises BrokerUnavailable when
        the broker cannot be reached.
        """

    async def publish(self, topic: str, body: bytes) -> int:
        """Store and distribute one encoded event; return its ``seq``.

        Raises BrokerUnavailable when the broker is unreachable or closed.
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
