"""Event versions: converters between adjacent versions, and who gets which version.

An event type has one or more versions, each with its payload schema (the
seed: ``version?: number // Event schema version``). Converters link
*adjacent* versions, up (1 → 2) and down (2 → 1); a longer conversion is a
chain of them. An event published without ``version`` is version 1.

A subscriber may say which versions it understands. It receives each event
at the highest of them that the converters can reach from the published
version, or, when none can be reached, one UNSUPPORTED_VERSION error per
event type and topic. A subscriber that says nothing gets what was published.

For one event and many subscribers, :func:`plan_versions` says which
versions to produce and :meth:`VersionChain.convert_many` produces them, each
converter running at most once: never once per subscriber.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from eventwire.catalog.errors import CatalogError, ConversionError

__all__ = [
    "Converter",
    "VersionChain",
    "VersionPlan",
    "choose_version",
    "identity",
    "plan_versions",
]

Converter = Callable[[Any], Any]
"""Turns one version's payload (a JSON value) into the adjacent version's.

It must not modify its argument; it returns a new value.
"""


def identity(payload: Any) -> Any:
    """The converter between versions whose payloads do not differ."""
    return payload


@dataclass
class VersionChain:
    """The declared versions of one event type and the converters between them."""

    versions: tuple[int, ...] = ()
    up: dict[int, Converter] = field(default_factory=dict)
    """``up[v]`` converts version ``v`` to the next declared version."""
    down: dict[int, Converter] = field(default_factory=dict)
    """``down[v]`` converts version ``v`` to the previous declared version."""

    def add_version(self, version: int) -> None:
        """Declare ``version`` (a positive integer, once)."""
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise CatalogError(f"a version is an integer of at least 1, not {version!r}")
        if version in self.versions:
            raise CatalogError(f"version {version} is declared twice")
        self.versions = tuple(sorted((*self.versions, version)))

    def _next(self, version: int, step: int) -> int | None:
        at = self.versions.index(version) + step
        return self.versions[at] if 0 <= at < len(self.versions) else None

    def add_converter(self, from_version: int, to_version: int, converter: Converter) -> None:
        """Register ``converter`` between two adjacent declared versions."""
        for v in (from_version, to_version):
            if v not in self.versions:
                raise CatalogError(f"version {v} is not declared (declared: {self.versions})")
        if to_version == self._next(from_version, 1):
            table = self.up
        elif to_version == self._next(from_version, -1):
            table = self.down
        else:
            raise CatalogError(
                f"converters link adjacent versions; {from_version} and {to_version} are not"
                f" adjacent in {self.versions}"
            )
        if from_version in table:
            raise CatalogError(f"a converter from {from_version} to {to_version} already exists")
        table[from_version] = converter

    def reachable(self, version: int) -> frozenset[int]:
        """Every version that ``version`` converts to, itself included."""
        found = {version}
        for step, table in ((1, self.up), (-1, self.down)):
            at: int | None = version
            while at is not None and at in table:
                at = self._next(at, step)
                if at is not None:
                    found.add(at)
        return frozenset(found)

    def convert(self, payload: Any, from_version: int, to_version: int) -> Any:
        """``payload`` converted from ``from_version`` to ``to_version`` through the chain."""
        return self.convert_many(payload, from_version, {to_version})[to_version]

    def convert_many(
        self, payload: Any, from_version: int, targets: Iterable[int]
    ) -> dict[int, Any]:
        """``payload`` at every version of ``targets``; each converter runs at most once.

        The chain is walked once upwards, to the highest target, and once
        downwards, to the lowest; the versions passed on the way are reused.
        Raises ConversionError when a target cannot be reached or a converter fails.
        """
        wanted = set(targets)
        if from_version not in self.versions:
            raise ConversionError(
                f"version {from_version} is not declared",
                from_version=from_version,
                to_version=max(wanted, default=from_version),
            )
        done: dict[int, Any] = {from_version: payload}
        above = [t for t in wanted if t > from_version]
        below = [t for t in wanted if t < from_version]
        if above:
            self._walk(done, payload, from_version, max(above), 1, self.up)
        if below:
            start = copy.deepcopy(payload) if above else payload
            self._walk(done, start, from_version, min(below), -1, self.down)
        return {t: done[t] for t in wanted}

    def _walk(
        self,
        done: dict[int, Any],
        payload: Any,
        at: int,
        goal: int,
        step: int,
        table: Mapping[int, Converter],
    ) -> None:
        origin = at
        while at != goal:
            converter = table.get(at)
            following = self._next(at, step)
            if converter is None or following is None:
                raise ConversionError(
                    f"no converter from version {at} towards {goal}",
                    from_version=origin,
                    to_version=goal,
                )
            try:
                payload = converter(payload)
            except Exception as exc:
                raise ConversionError(
                    f"converter from version {at} to {following} failed: {exc!r}",
                    from_version=origin,
                    to_version=goal,
                ) from exc
            at = following
            done[at] = payload


def choose_version(
    published: int, accepted: frozenset[int] | None, reachable: frozenset[int]
) -> int | None:
    """The version a subscriber gets: the highest it accepts that can be produced.

    ``accepted`` None means the subscriber declared nothing: it gets
    ``published``. None is returned when no accepted version can be reached.
    """
    if accepted is None:
        return published
    candidates = accepted & reachable
    return max(candidates) if candidates else None


@dataclass(frozen=True, slots=True)
class VersionPlan:
    """What to produce for one event, and who gets which version."""

    published: int
    targets: Mapping[frozenset[int] | None, int | None]
    """Each distinct accepted-versions set → its version, or None (unsupported)."""
    produce: frozenset[int]
    """The versions to convert to, the published one excluded: each once."""


def plan_versions(
    chain: VersionChain, published: int, accepted: Iterable[frozenset[int] | None]
) -> VersionPlan:
    """Plan one event's delivery to subscribers with the given accepted-version sets.

    Pass each distinct set once (subscribers grouped by what they accept);
    the plan's ``produce`` lists every version to build, whatever the number
    of subscribers.
    """
    reachable = chain.reachable(published) if published in chain.versions else frozenset()
    targets = {a: choose_version(published, a, reachable | {published}) for a in set(accepted)}
    produce = frozenset(v for v in targets.values() if v is not None and v != published)
    return VersionPlan(published, targets, produce)
