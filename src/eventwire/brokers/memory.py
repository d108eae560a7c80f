"""The embedded broker: one process, no external service.

``seq`` is a counter per topic, contiguous from 1. The epoch is drawn when
the bus is created, because losing the process loses every topic's
history. Events are handed to the nodes synchronously, so a publish has
reached every interested node's hub by the time ``publish`` returns.

A ``MemoryBus`` is what the nodes of one process share; each ``MemoryBroker``
is one node on it. A gateway alone gets a bus of its own. Tests put several
nodes on one bus to exercise what a real broker does between nodes.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from eventwire.brokers._interest import Interests
from eventwire.brokers._node import check_history, check_page
from eventwire.brokers.base import (
    BrokerUnavailable,
    HistoryPage,
    InboundHandler,
    Position,
    ResetHandler,
)
from eventwire.brokers.presence.memory import MemoryPresence

__all__ = ["DEFAULT_HISTORY_AGE", "DEFAULT_HISTORY_SIZE", "MemoryBroker", "MemoryBus"]

log = logging.getLogger("eventwire.brokers.memory")

DEFAULT_HISTORY_SIZE = 1000
"""Events kept per topic unless configured otherwise (every broker)."""
DEFAULT_HISTORY_AGE = 3600.0
"""Seconds an event is kept unless configured otherwise (every broker)."""

_SWEEP_PER_PUBLISH = 2
"""Idle topics examined per publish: enough to drop idle histories as fast as topics appear."""


class MemoryBus:
    """Counters, bounded histories and nodes of one process.

    ``history_size`` bounds each topic's history by count (0 keeps none);
    ``history_age`` by age in seconds (None: no age bound). ``clock`` is a
    monotonic clock in seconds, injectable for tests.
    """

    def __init__(
        self,
        *,
        history_size: int = DEFAULT_HISTORY_SIZE,
        history_age: float | None = DEFAULT_HISTORY_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_history(history_size, history_age)
        self.epoch = secrets.token_hex(8)
        self.history_size = history_size
        self.history_age = history_age
        self._clock = clock
        self._seqs: dict[str, int] = {}
        # Ordered by last publish, oldest first, so idle histories are found in O(1).
        self._history: OrderedDict[str, deque[tuple[int, float, bytes]]] = OrderedDict()
        self.nodes: list[MemoryBroker] = []

    def append(self, topic: str, body: bytes) -> int:
        """Assign the next seq of ``topic``, keep the event, and hand it to every node."""
        seq = self._seqs.get(topic, 0) + 1
        self._seqs[topic] = seq
        self._keep(topic, seq, body)
        for node in list(self.nodes):
            node._receive(topic, seq, body)
        return seq

    def position(self, topic: str) -> Position:
        return Position(self._seqs.get(topic, 0), self.epoch)

    def history(self, topic: str, since: int, limit: int) -> HistoryPage:
        check_page(since, limit)
        kept = self._history.get(topic)
        if kept is not None:
            self._trim(kept)
        events = [(seq, body) for seq, _, body in kept or () if seq > since][:limit]
        position = self.position(topic)
        first = events[0][0] if events else position.seq + 1
        return HistoryPage(events, position, since < position.seq and first > since + 1)

    def _keep(self, topic: str, seq: int, body: bytes) -> None:
        if self.history_size == 0:
            return
        kept = self._history.pop(topic, None)
        if kept is None:
            kept = deque(maxlen=self.history_size)
        kept.append((seq, self._clock(), body))
        self._history[topic] = kept  # now the most recently published
        self._trim(kept)
        self._sweep()

    def _trim(self, kept: deque[tuple[int, float, bytes]]) -> None:
        if self.history_age is None:
            return
        cutoff = self._clock() - self.history_age
        while kept and kept[0][1] < cutoff:
            kept.popleft()

    def _sweep(self) -> None:
        """Drop the histories of the topics idle for longer than the age bound."""
        if self.history_age is None:
            return
        cutoff = self._clock() - self.history_age
        for _ in range(_SWEEP_PER_PUBLISH):
            topic, kept = next(iter(self._history.items()))
            if kept and kept[-1][1] >= cutoff:
                return
            del self._history[topic]


class MemoryBroker(MemoryPresence):
    """One node on a ``MemoryBus``; the default broker.

    ``all_topics`` (the default) hands this node every event of the bus,
    whatever its interest: in one process that costs a dictionary lookup per
    event, and a handler registered with ``Gateway.on`` while the gateway
    runs sees the very next event, with no interest round trip. With
    ``all_topics=False`` the node receives only its interests, exactly as
    from Redis and NATS; that is what the contract suite checks.
    """

    def __init__(
        self,
        bus: MemoryBus | None = None,
        *,
        history_size: int | None = None,
        history_age: float | None = DEFAULT_HISTORY_AGE,
        all_topics: bool = True,
    ) -> None:
        if bus is None:
            size = DEFAULT_HISTORY_SIZE if history_size is None else history_size
            bus = MemoryBus(history_size=size, history_age=history_age)
        elif history_size is not None or history_age != DEFAULT_HISTORY_AGE:
            raise ValueError("history bounds belong to the MemoryBus when one is given")
        self.bus = bus
        self.all_topics = all_topics
        self.interests = Interests()
        self._on_event: InboundHandler | None = None

    @property
    def epoch(self) -> str:
        return self.bus.epoch

    @property
    def ready(self) -> bool:
        return self._on_event is not None

    async def start(self, on_event: InboundHandler, on_reset: ResetHandler | None = None) -> None:
        """Join the bus. ``on_reset`` is never called: a bus keeps its epoch while it lives."""
        self._on_event = on_event
        if self not in self.bus.nodes:
            self.bus.nodes.append(self)

    async def publish(self, topic: str, body: bytes) -> int:
        if self._on_event is None:
            raise BrokerUnavailable("the memory broker is not started (or already closed)")
        return self.bus.append(topic, body)

    async def position(self, topic: str) -> Position:
        return self.bus.position(topic)

    async def history(self, topic: str, since: int, limit: int) -> HistoryPage:
        return self.bus.history(topic, since, limit)

    async def add_interest(self, topic: str) -> None:
        self.interests.add(topic)

    async def remove_interest(self, topic: str) -> None:
        self.interests.remove(topic)

    async def ping(self) -> float:
        if self._on_event is None:
            raise BrokerUnavailable("the memory broker is not started (or already closed)")
        return 0.0

    def counters(self) -> dict[str, int]:
        return {}

    async def close(self) -> None:
        self._on_event = None
        self.interests = Interests()  # a node that starts again declares its interest again
        if self in self.bus.nodes:
            self.bus.nodes.remove(self)

    def _receive(self, topic: str, seq: int, body: bytes) -> None:
        on_event = self._on_event
        if on_event is None or not (self.all_topics or self.interests.wants(topic)):
            return
        try:
            on_event(topic, seq, body)
        except Exception:  # one node's failure must not cost the others their event
            log.exception("node failed to take event %s seq %d", topic, seq)
