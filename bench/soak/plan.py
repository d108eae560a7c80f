"""The soak's sizes and timings, in one frozen record the run and the report share."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BROKERS", "CHAOS_KINDS", "SoakPlan"]

BROKERS = ("redis", "nats")
CHAOS_KINDS = ("node-kill", "broker-freeze", "broker-restart")


@dataclass(frozen=True, slots=True)
class SoakPlan:
    """One broker's run; the defaults are what ``make soak`` runs for each broker."""

    seconds: float = 240.0
    """How long events are published and faults injected (the drain comes after)."""
    seed: int = 1
    nodes: int = 3
    subscribers: int = 150
    topics: int = 10
    topics_each: int = 3
    rate: float = 150.0
    """Publishes per second, over HTTP, to random nodes."""
    drop_every: tuple[float, float] = (5.0, 20.0)
    """Each subscriber drops its connection after this many seconds (uniform)."""
    chaos_every: tuple[float, float] = (30.0, 45.0)
    chaos_kinds: tuple[str, ...] = CHAOS_KINDS
    freeze: float = 3.0
    """Seconds the broker stays stopped (SIGSTOP) in a freeze."""
    node_down: float = 1.0
    """Seconds a killed node stays down before it is started again."""
    broker_down: float = 1.0
    """Seconds a killed broker stays down before it is started again on its files."""
    settle: float = 5.0
    """Seconds after a fault's end still counted as its window."""
    silence: float = 2.0
    """A subscriber without events for longer than this, outside chaos, is a failure."""
    recovery_bound: float = 1.0
    """Publishes must be back to normal this many seconds after the broker answers again."""
    publish_timeout: float = 10.0
    drain: float = 30.0
    """Seconds the subscribers get, after the last publish, to catch up with everything."""

    def topic_names(self) -> list[str]:
        return [f"soak:{i}" for i in range(self.topics)]
