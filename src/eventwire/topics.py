"""Topic grammar, wildcard patterns and the pattern index.

A topic names a resource: ``{resource-type}:{identifier}`` and deeper levels,
such as ``gift-list:123`` or ``room:lobby:messages``. A pattern is a topic in
which whole segments may be ``*``; one ``*`` stands for one or more segments,
so ``*:messages`` matches ``room:lobby:messages``. Patterns are for the server
side (authorization, routing, handlers); clients subscribe to topics.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Generic, TypeVar

from eventwire.codes import ErrorCode
from eventwire.errors import ProtocolError

__all__ = [
    "MAX_TOPIC_LENGTH",
    "RESERVED_NAMESPACES",
    "WILDCARD",
    "PatternIndex",
    "checked_pattern",
    "is_pattern",
    "pattern_matches",
    "validate_pattern",
    "validate_topic",
]

MAX_TOPIC_LENGTH = 200
WILDCARD = "*"
RESERVED_NAMESPACES = frozenset({"system", "error"})
"""First segments that belong to the server's own events."""

# The seed's examples: `gift-list:123`, `session:abc-def`, `org:acme:team:dev`.
_TOPIC_RE = re.compile(r"[a-z][a-z0-9-]*(?::[a-z0-9-]+)+")
_SEGMENT_RE = re.compile(r"[a-z0-9-]+")
_FIRST_SEGMENT_RE = re.compile(r"[a-z][a-z0-9-]*")


def _check_reserved(name: str) -> None:
    if name.split(":", 1)[0] in RESERVED_NAMESPACES:
        raise ProtocolError(
            ErrorCode.RESERVED_TOPIC,
            f"topic {name!r} is reserved for the server's own events",
            {"topic": name},
        )


def _invalid(name: object, why: str) -> ProtocolError:
    if not isinstance(name, str):
        shown = f"<{type(name).__name__}>"
    elif len(name) > MAX_TOPIC_LENGTH:
        shown = name[:40] + "…"
    else:
        shown = name
    return ProtocolError(
        ErrorCode.INVALID_TOPIC, f"invalid topic {shown!r}: {why}", {"topic": shown}
    )


def validate_topic(name: object) -> str:
    """Return ``name`` if it is a publishable topic, else raise ProtocolError.

    INVALID_TOPIC for bad grammar (patterns included), RESERVED_TOPIC for the
    server's ``system`` and ``error`` namespaces.
    """
    if not isinstance(name, str):
        raise _invalid(name, "expected a string")
    if len(name) > MAX_TOPIC_LENGTH:
        raise _invalid(name, f"longer than {MAX_TOPIC_LENGTH} characters")
    _check_reserved(name)
    if _TOPIC_RE.fullmatch(name) is None:
        if WILDCARD in name:
            raise _invalid(name, "wildcard patterns are for the server side, subscribe to topics")
        raise _invalid(
            name,
            "expected 2 or more ':'-separated segments of lowercase letters, digits and '-',"
            " starting with a letter, e.g. 'gift-list:123'",
        )
    return name


def is_pattern(name: str) -> bool:
    """Whether ``name`` contains a wildcard segment."""
    return WILDCARD in name


def validate_pattern(pattern: object) -> str:
    """Return ``pattern`` if it is a valid topic or wildcard pattern."""
    if not isinstance(pattern, str):
        raise _invalid(pattern, "expected a string")
    if len(pattern) > MAX_TOPIC_LENGTH:
        raise _invalid(pattern, f"longer than {MAX_TOPIC_LENGTH} characters")
    segments = pattern.split(":")
    if pattern == WILDCARD:
        return pattern
    if len(segments) < 2:
        raise _invalid(pattern, "expected 2 or more ':'-separated segments")
    first, *rest = segments
    if first != WILDCARD and _FIRST_SEGMENT_RE.fullmatch(first) is None:
        raise _invalid(pattern, f"bad first segment {first!r}")
    for segment in rest:
        if segment != WILDCARD and _SEGMENT_RE.fullmatch(segment) is None:
            raise _invalid(pattern, f"bad segment {segment!r}")
    return pattern


def checked_pattern(pattern: str) -> str:
    """``validate_pattern`` for settings and request models: pydantic reports a ValueError
    against the field it came from."""
    try:
        return validate_pattern(pattern)
    except ProtocolError as exc:
        raise ValueError(exc.message) from None


def pattern_matches(pattern: str, topic: str) -> bool:
    """Whether ``topic`` matches ``pattern``; for one-off checks.

    Matching many patterns against one topic is the job of PatternIndex.
    """
    index: PatternIndex[bool] = PatternIndex()
    index.add(pattern, True)
    return bool(index.match(topic))


V = TypeVar("V")


class _Node(Generic[V]):
    __slots__ = ("children", "loops", "star", "values")

    def __init__(self, loops: bool = False) -> None:
        self.children: dict[str, _Node[V]] = {}
        self.star: _Node[V] | None = None
        self.loops = loops  # reached through '*': may absorb further segments
        self.values: set[V] = set()

    def is_empty(self) -> bool:
        return not (self.children or self.star or self.values)


class PatternIndex(Generic[V]):
    """Maps wildcard patterns to values; finds every value whose pattern matches a topic.

    A trie of segments walked as a small automaton: matching costs the
    topic's depth times the number of live branches, not the number of
    patterns, so thousands of ACL rules or handlers cost about the same as one.
    """

    def __init__(self) -> None:
        self._root: _Node[V] = _Node()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, pattern: str, value: V) -> None:
        """Index ``value`` under ``pattern`` (a topic or a wildcard pattern)."""
        node = self._root
        for segment in pattern.split(":"):
            if segment == WILDCARD:
                if node.star is None:
                    node.star = _Node(loops=True)
                node = node.star
            else:
                node = node.children.setdefault(segment, _Node())
        if value not in node.values:
            node.values.add(value)
            self._count += 1

    def discard(self, pattern: str, value: V) -> None:
        """Remove ``value`` from ``pattern``; prune branches left empty."""
        path: list[tuple[_Node[V], str]] = []
        node: _Node[V] | None = self._root
        for segment in pattern.split(":"):
            assert node is not None
            path.append((node, segment))
            node = node.star if segment == WILDCARD else node.children.get(segment)
            if node is None:
                return
        assert node is not None
        if value not in node.values:
            return
        node.values.discard(value)
        self._count -= 1
        for parent, segment in reversed(path):
            if not node.is_empty():
                break
            if segment == WILDCARD:
                parent.star = None
            else:
                del parent.children[segment]
            node = parent

    def match(self, topic: str) -> set[V]:
        """Every value whose pattern matches ``topic``."""
        states: list[_Node[V]] = [self._root]
        for segment in topic.split(":"):
            following: dict[int, _Node[V]] = {}
            for node in states:
                child = node.children.get(segment)
                if child is not None:
                    following[id(child)] = child
                if node.star is not None:
                    following[id(node.star)] = node.star
                if node.loops:
                    following[id(node)] = node
            if not following:
                return set()
            states = list(following.values())
        found: set[V] = set()
        for node in states:
            found |= node.values
        return found

    def patterns(self) -> Iterator[tuple[str, V]]:
        """Every ``(pattern, value)`` pair, in no particular order."""
        stack: list[tuple[_Node[V], list[str]]] = [(self._root, [])]
        while stack:
            node, prefix = stack.pop()
            for value in node.values:
                yield ":".join(prefix), value
            for segment, child in node.children.items():
                stack.append((child, [*prefix, segment]))
            if node.star is not None:
                stack.append((node.star, [*prefix, WILDCARD]))
