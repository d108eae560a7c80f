"""One declared event type of a resource: its versions, their payloads, examples, converters."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from eventwire.catalog.errors import CatalogError
from eventwire.catalog.evolution import Evolution
from eventwire.catalog.schema import PayloadSchema, dump_json
from eventwire.catalog.versions import Converter, VersionChain

__all__ = ["EventKind", "EventSpec", "EventVersion", "example_json"]

EventKind = Literal["standard", "custom"]
"""``standard``: defined by a resource's DTO (ADDED, UPDATED, DELETED, STATUS_CHANGED)."""


def example_json(example: Any) -> Any:
    """An example as a JSON value (a Pydantic model is dumped in JSON mode)."""
    if hasattr(example, "model_dump"):
        return example.model_dump(mode="json")
    return example


@dataclass(frozen=True, slots=True)
class EventVersion:
    """One version of an event type: its payload schema and examples."""

    version: int
    payload: PayloadSchema
    examples: tuple[Any, ...] = ()
    """Example payloads (JSON values), each checked against ``payload`` when declared."""


class EventSpec:
    """An event type of a resource, such as ``gift-list`` / ``GIFT_PURCHASED``.

    Its versions live in ``versions``; ``chain`` holds the converters between
    adjacent versions. Declared through :meth:`Resource.event` (custom events)
    or :meth:`Resource.dto_version` (the standard ones).
    """

    def __init__(self, resource: str, name: str, *, kind: EventKind, description: str) -> None:
        self.resource = resource
        self.name = name
        self.kind: EventKind = kind
        self.description = description
        self.versions: dict[int, EventVersion] = {}
        self.chain = VersionChain()

    def __repr__(self) -> str:
        return f"<EventSpec {self.resource}.{self.name} v{list(self.versions)}>"

    @property
    def key(self) -> str:
        """``resource.EVENT``, the name subscribers use to declare versions."""
        return f"{self.resource}.{self.name}"

    def message_id(self, version: int) -> str:
        """``gift-list.ADDED.v1``: the name of one version in exports."""
        return f"{self.resource}.{self.name}.v{version}"

    @property
    def latest(self) -> int:
        """The highest declared version."""
        return self.chain.versions[-1]

    def add_version(
        self, version: int, payload: PayloadSchema, examples: Iterable[Any] = ()
    ) -> EventVersion:
        """Declare ``version`` with its payload schema; every example must be valid."""
        checked = tuple(self._checked(version, payload, example_json(e)) for e in examples)
        self.chain.add_version(version)
        declared = self.versions[version] = EventVersion(version, payload, checked)
        self.versions = dict(sorted(self.versions.items()))
        return declared

    def _checked(self, version: int, payload: PayloadSchema, example: Any) -> Any:
        try:
            encoded = dump_json(example)
        except TypeError as exc:
            raise CatalogError(f"{self.message_id(version)}: example is not JSON: {exc}") from None
        errors = payload.check(encoded, prefix="payload")
        if errors:
            shown = "; ".join(f"{field}: {problem}" for field, problem in errors)
            raise CatalogError(f"{self.message_id(version)}: invalid example: {shown}")
        return example

    def add_converter(self, from_version: int, to_version: int, converter: Converter) -> None:
        """Register a converter between two adjacent versions of this event.

        An :class:`Evolution` is checked against both versions' payload
        schemas first: a field it names must exist, and what it produces must
        have the fields the target version requires.
        """
        try:
            if isinstance(converter, Evolution):
                self._check_evolution(from_version, to_version, converter)
            self.chain.add_converter(from_version, to_version, converter)
        except CatalogError as exc:
            raise CatalogError(f"{self.key}: {exc}") from None

    def _check_evolution(self, from_version: int, to_version: int, evolution: Evolution) -> None:
        source, target = self.versions.get(from_version), self.versions.get(to_version)
        if source is None or target is None:
            return  # the chain says which version is not declared
        problems = evolution.check(source.payload.json_schema(), target.payload.json_schema())
        if problems:
            raise CatalogError(
                f"converter from version {from_version} to {to_version}: " + "; ".join(problems)
            )

    def convert(self, payload: Any, from_version: int, to_version: int) -> Any:
        """``payload`` converted between two versions (see :class:`VersionChain`)."""
        return self.chain.convert(payload, from_version, to_version)
