"""The embedded broker: one process, no external service.

``seq`` is a counter per topic, contiguous from 1; the epoch is drawn anew
each time the broker starts, because a restart loses every topic's history.
Events are handed to the hub synchronously, so a publish has reached every
local subscriber's transport by the time ``publish`` returns.
"""

from __future__ import annotations

import secrets

from eventwire.brokers.base import InboundHandler, Position
from eventwire.errors import BrokerError

__all__ = ["MemoryBroker"]


class MemoryBroker:
    """In-process broker; the default."""

    def __init__(self) -> None:
        self.epoch = secrets.token_hex(8)
        self._seqs: dict[str, int] = {}
        self._on_event: InboundHandler | None = None

    async def start(self, on_event: InboundHandler) -> None:
        self._on_event = on_event

    async def publish(self, topic: str, body: bytes) -> int:
        if self._on_event is None:
            raise BrokerError("the memory broker is not started")
        seq = self._seqs.get(topic, 0) + 1
        self._seqs[topic] = seq
        self._on_event(topic, seq, body)
        return seq

    async def position(self, topic: str) -> Position:
        return Position(self._seqs.get(topic, 0), self.epoch)

    async def add_interest(self, topic: str) -> None:
        """Every event reaches this process's hub already."""

    async def remove_interest(self, topic: str) -> None:
        """Every event reaches this process's hub already."""

    async def close(self) -> None:
        self._on_event = None
