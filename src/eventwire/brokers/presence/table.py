"""A topic's presence as plain data, and the one rule that changes it (no I/O).

::

    nodes:  node -> Share(deadline, counts: member -> connections on that node)

A member's count is the sum over nodes. Every operation first drops the
nodes whose deadline has passed, except the caller's own: a node is never
expired by itself, so one that was merely slow (paused, partitioned) and
renews before anyone notices loses nothing. The members that drop leaves
at zero are reported once, by the operation that dropped them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import orjson

from eventwire.brokers.base import PresenceRead, PresenceUpdate

__all__ = ["Share", "TopicPresence"]


@dataclass(slots=True)
class Share:
    """One node's part of a topic: its lease deadline and its members' connections."""

    deadline: float
    counts: dict[str, int] = field(default_factory=dict)


class TopicPresence:
    """The presence state of one topic; times are the caller's clock, in seconds."""

    __slots__ = ("nodes",)

    def __init__(self, nodes: dict[str, Share] | None = None) -> None:
        self.nodes: dict[str, Share] = nodes or {}

    @property
    def empty(self) -> bool:
        return not self.nodes

    def total(self, member: str) -> int:
        return sum(share.counts.get(member, 0) for share in self.nodes.values())

    def sweep(self, now: float, keep: str) -> list[str]:
        """Drop every node but ``keep`` whose deadline passed; the members now gone."""
        dead = [n for n, share in self.nodes.items() if n != keep and share.deadline < now]
        if not dead:
            return []
        touched = {member for n in dead for member in self.nodes[n].counts}
        for node in dead:
            del self.nodes[node]
        return sorted(member for member in touched if self.total(member) == 0)

    def update(
        self, node: str, counts: Mapping[str, int], deadline: float | None, now: float
    ) -> PresenceUpdate:
        """Sweep, set ``node``'s ``counts``, then hold its lease until ``deadline``.

        ``deadline`` None releases the lease; ValueError if ``node`` would
        still have members then.
        """
        expired = self.sweep(now, node)
        share = self.nodes.get(node)
        known = share is not None
        if share is None:
            share = self.nodes[node] = Share(now)
        changes: dict[str, tuple[int, int]] = {}
        for member, count in counts.items():
            before = self.total(member)
            if count > 0:
                share.counts[member] = count
            else:
                share.counts.pop(member, None)
            changes[member] = (before, self.total(member))
        if deadline is None:
            if share.counts:
                raise ValueError(f"node {node!r} releases its lease with members left")
            del self.nodes[node]
        else:
            share.deadline = deadline
        return PresenceUpdate(changes, expired, known)

    def read(self, node: str, now: float, members: Collection[str] | None) -> PresenceRead:
        """Sweep (sparing ``node``), then each wanted member's connections (absent: none)."""
        expired = self.sweep(now, node)
        totals: dict[str, int] = {}
        for share in self.nodes.values():
            for member, count in share.counts.items():
                if members is None or member in members:
                    totals[member] = totals.get(member, 0) + count
        return PresenceRead(totals, expired)

    def to_json(self) -> bytes:
        return orjson.dumps(
            {node: [share.deadline, share.counts] for node, share in self.nodes.items()}
        )

    @classmethod
    def from_json(cls, data: bytes) -> TopicPresence:
        """The state ``to_json`` wrote; an empty state for an empty value."""
        if not data:
            return cls()
        raw = orjson.loads(data)
        return cls({node: Share(float(d), dict(c)) for node, (d, c) in raw.items()})
