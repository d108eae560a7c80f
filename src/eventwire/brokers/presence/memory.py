"""Presence on the in-memory broker: one table per topic, shared by the nodes of a bus.

Leases run on the monotonic clock of the process. A gateway alone on its
bus never sees a lease pass (its own are never expired by itself); tests
put several nodes on one bus to watch one go.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from eventwire.brokers.base import BrokerUnavailable, PresenceRead, PresenceUpdate
from eventwire.brokers.presence.table import TopicPresence

if TYPE_CHECKING:
    from eventwire.brokers.memory import MemoryBus

__all__ = ["MemoryPresence"]

_TABLES: weakref.WeakKeyDictionary[MemoryBus, dict[str, TopicPresence]] = (
    weakref.WeakKeyDictionary()
)


class MemoryPresence:
    """The ``Presence`` capability of ``MemoryBroker``, mixed into it."""

    if TYPE_CHECKING:
        bus: MemoryBus

        @property
        def ready(self) -> bool: ...

    async def presence_update(
        self, node: str, topic: str, counts: Mapping[str, int], lease: float
    ) -> PresenceUpdate:
        tables, now = self._presence_tables(), time.monotonic()
        table = tables.setdefault(topic, TopicPresence())
        update = table.update(node, counts, now + lease if lease > 0 else None, now)
        if table.empty:
            del tables[topic]
        return update

    async def presence_read(
        self, node: str, topic: str, members: Collection[str] | None = None
    ) -> PresenceRead:
        tables = self._presence_tables()
        table = tables.get(topic)
        if table is None:
            return PresenceRead({}, [])
        read = table.read(node, time.monotonic(), members)
        if table.empty:
            del tables[topic]
        return read

    def _presence_tables(self) -> dict[str, TopicPresence]:
        if not self.ready:
            raise BrokerUnavailable("the memory broker is not started (or already closed)")
        return _TABLES.setdefault(self.bus, {})
