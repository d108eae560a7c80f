"""Grant patterns: placeholder expansion, a compiled grant set, and pattern overlap.

A grant is a topic pattern (``gift-list:*``, ``user:{user_id}:*``). The
placeholders ``{user_id}`` and ``{tenant_id}`` are filled in once, when an
identity is built, so checking a topic never formats a string. Expansion
only ever narrows: a placeholder without a value, or whose value is not one
plain topic segment (``*``, ``a:b``, ``Alice``), drops the whole pattern. A
user named ``*`` must not turn ``user:{user_id}:*`` into ``user:*:*``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from eventwire.errors import ProtocolError
from eventwire.topics import WILDCARD, PatternIndex, validate_pattern

__all__ = [
    "PLACEHOLDERS",
    "Grants",
    "expand_pattern",
    "expand_patterns",
    "is_segment",
    "patterns_overlap",
    "validate_grant",
]

PLACEHOLDERS = ("user_id", "tenant_id")
"""The names a grant pattern may use as ``{name}``."""

_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
_SEGMENT_RE = re.compile(r"[a-z0-9-]+")
_SAMPLE = dict.fromkeys(PLACEHOLDERS, "x")


def is_segment(value: object) -> bool:
    """Whether ``value`` is one plain topic segment: no ``:``, no ``*``, lowercase."""
    return isinstance(value, str) and _SEGMENT_RE.fullmatch(value) is not None


def expand_pattern(pattern: str, values: Mapping[str, str | None]) -> str | None:
    """``pattern`` with its placeholders filled in, or None if that cannot be done safely.

    None for an unknown placeholder, a placeholder whose value is missing or
    is not a single plain segment, or a result that is not a valid pattern.
    """
    missing = False

    def fill(match: re.Match[str]) -> str:
        nonlocal missing
        name = match.group(1)
        value = values.get(name) if name in PLACEHOLDERS else None
        if value is None or not is_segment(value):
            missing = True
            return ""
        return value

    expanded = _PLACEHOLDER_RE.sub(fill, pattern)
    if missing or "{" in expanded or "}" in expanded:
        return None
    try:
        return validate_pattern(expanded)
    except ProtocolError:
        return None


def expand_patterns(
    patterns: Iterable[str], values: Mapping[str, str | None]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Expand each pattern; return ``(kept, dropped)``, each without duplicates, in order."""
    kept: dict[str, None] = {}
    dropped: dict[str, None] = {}
    for pattern in patterns:
        expanded = expand_pattern(pattern, values)
        if expanded is None:
            dropped[pattern] = None
        else:
            kept[expanded] = None
    return tuple(kept), tuple(dropped)


def validate_grant(pattern: str) -> str:
    """Check a configured grant (placeholders allowed) at startup; raise ValueError if bad."""
    unknown = [n for n in _PLACEHOLDER_RE.findall(pattern) if n not in PLACEHOLDERS]
    if unknown:
        raise ValueError(
            f"grant {pattern!r}: unknown placeholder {{{unknown[0]}}};"
            f" expected {', '.join('{' + p + '}' for p in PLACEHOLDERS)}"
        )
    if expand_pattern(pattern, _SAMPLE) is None:
        raise ValueError(
            f"grant {pattern!r} is not a topic pattern"
            " such as 'gift-list:*' or 'user:{user_id}:*'"
        )
    return pattern


class Grants:
    """A set of expanded patterns compiled once into a trie; ``allows`` is one walk.

    Checking a topic costs its depth times the live branches of the trie,
    not the number of patterns, so a token granting thousands of patterns
    costs the same per SUBSCRIBE as one granting three.
    """

    __slots__ = ("_index", "patterns")

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.patterns: tuple[str, ...] = tuple(dict.fromkeys(patterns))
        self._index: PatternIndex[bool] = PatternIndex()
        for pattern in self.patterns:
            self._index.add(validate_pattern(pattern), True)

    def allows(self, topic: str) -> bool:
        """Whether some pattern matches ``topic`` (a topic, not a pattern)."""
        return bool(self.patterns) and bool(self._index.match(topic))

    def __len__(self) -> int:
        return len(self.patterns)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Grants) and set(self.patterns) == set(other.patterns)

    def __hash__(self) -> int:
        return hash(frozenset(self.patterns))

    def __repr__(self) -> str:
        return f"Grants({list(self.patterns)!r})"


def patterns_overlap(a: str, b: str) -> bool:
    """Whether some topic matches both ``a`` and ``b`` (topics or patterns).

    Used where a pattern must be compared with a pattern: a revocation
    against an admin's pattern subscription. ``*`` stands for one or more
    segments, so it is read as "one segment, then any number more".
    """
    return _overlap(_tokens(a), _tokens(b))


_ONE = "\x00one"
_MORE = "\x00more"


def _tokens(pattern: str) -> tuple[str, ...]:
    tokens: list[str] = []
    for segment in pattern.split(":"):
        tokens.extend((_ONE, _MORE) if segment == WILDCARD else (segment,))
    return tuple(tokens)


def _overlap(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    # Intersection of two regular languages over segments, memoised on positions:
    # len(a) * len(b) states at most (patterns are at most 200 characters).
    memo: dict[tuple[int, int], bool] = {}

    def step(i: int, j: int) -> bool:
        key = (i, j)
        if key not in memo:
            memo[key] = _step(i, j)
        return memo[key]

    def _step(i: int, j: int) -> bool:
        a_left, b_left = i < len(a), j < len(b)
        if not a_left and not b_left:
            return True
        if a_left and a[i] == _MORE:
            return step(i + 1, j) or (b_left and step(i, j + 1))
        if b_left and b[j] == _MORE:
            return step(i, j + 1) or (a_left and step(i + 1, j))
        if not a_left or not b_left:
            return False
        return (a[i] == b[j] or _ONE in (a[i], b[j])) and step(i + 1, j + 1)

    return step(0, 0)
