"""A node's interest: the topics and patterns it asked its broker for.

Pure bookkeeping shared by the brokers. It answers two questions on the
receiving path: does this node want ``topic`` at all, and, when the broker
sends one event once per matching subscription (Redis sends a topic's
subscriber one copy and each matching pattern another), which single copy
to hand on, so that an event crosses to the node once.
"""

from __future__ import annotations

from eventwire.topics import PatternIndex, is_pattern

__all__ = ["Interests"]


class Interests:
    """Exact topics and wildcard patterns, with set semantics."""

    def __init__(self) -> None:
        self.topics: set[str] = set()
        self._patterns: PatternIndex[str] = PatternIndex()
        self._pattern_names: set[str] = set()

    @property
    def patterns(self) -> frozenset[str]:
        return frozenset(self._pattern_names)

    def __len__(self) -> int:
        return len(self.topics) + len(self._pattern_names)

    def add(self, name: str) -> bool:
        """Add a topic or pattern; True when it was not there yet."""
        if is_pattern(name):
            if name in self._pattern_names:
                return False
            self._pattern_names.add(name)
            self._patterns.add(name, name)
            return True
        if name in self.topics:
            return False
        self.topics.add(name)
        return True

    def remove(self, name: str) -> bool:
        """Remove a topic or pattern; True when it was there."""
        if is_pattern(name):
            if name not in self._pattern_names:
                return False
            self._pattern_names.discard(name)
            self._patterns.discard(name, name)
            return True
        if name not in self.topics:
            return False
        self.topics.discard(name)
        return True

    def wants(self, topic: str) -> bool:
        """Whether an event of ``topic`` should reach this node."""
        return topic in self.topics or bool(self._pattern_names and self._patterns.match(topic))

    def pattern_copy_wanted(self, pattern: str, topic: str) -> bool:
        """Whether the copy of a ``topic`` event sent for ``pattern`` is the one to keep.

        The topic's own copy wins when the topic is an interest; otherwise
        the copy of the smallest matching pattern does. Matching is exact
        (``*`` is one or more whole segments), so a broker whose own
        wildcards are looser cannot leak other topics through.
        """
        if topic in self.topics:
            return False
        matches = self._patterns.match(topic)
        return bool(matches) and pattern == min(matches)
