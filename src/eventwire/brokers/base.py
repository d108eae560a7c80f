"""The broker interface: where ``seq`` is assigned and events cross between nodes.

A broker is small on purpose. It assigns each published event its position
in its topic, moves the encoded body to every node that declared interest
in the topic, and tells a subscriber where a topic stands. Local fan-out is
not its job: the hub does that once per node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol

__all__ = ["Broker", "InboundHandler", "Position"]


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


class Broker(Protocol):
    """What every broker implements; conformance is checked by mypy."""

    async def start(self, on_event: InboundHandler) -> None:
        """Connect, and from now on push inbound events to ``on_event``."""

    async def publish(self, topic: str, body: bytes) -> int:
        """Store and distribute one encoded event; return its ``seq``."""

    async def position(self, topic: str) -> Position:
        """The topic's current position."""

    async def add_interest(self, topic: str) -> None:
        """Start receiving ``topic`` (a topic or a wildcard pattern) on this node."""

    async def remove_interest(self, topic: str) -> None:
        """Stop receiving ``topic`` on this node."""

    async def close(self) -> None:
        """Disconnect; pending publishes fail."""
