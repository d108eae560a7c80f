"""A resource type: a topic's first segment, its DTO, statuses and event types.

::

    gifts = catalog.resource(
        "gift-list", Gift,
        statuses=GiftStatus,
        transitions={"available": ["purchased"], "purchased": ["available"]},
        status_payload=GiftStatusChange,      # STATUS_CHANGED's extra fields
        strict=True,
        payload_mode="auto",
        reference_url="/api/gifts/{entity_id}",
    )
    gifts.event("GIFT_PURCHASED", GiftPurchased, description="...", example={...})

Declaring the DTO defines the seed's standard events at once (see
:mod:`eventwire.catalog.standard`); custom events bring their own payload.
"""

from __future__ import annotations

import enum
import string
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

from eventwire.catalog.errors import CatalogError
from eventwire.catalog.events import EventKind, EventSpec, example_json
from eventwire.catalog.evolution import Evolution, Operation
from eventwire.catalog.modes import FULL_DTO_LIMIT, PayloadMode, update_payload
from eventwire.catalog.schema import ModelPayload, NullPayload, PayloadSchema, as_payload_schema
from eventwire.catalog.standard import STANDARD_EVENTS, patch_model, status_enum, status_model
from eventwire.catalog.versions import Converter, identity
from eventwire.envelope import is_event_type

__all__ = ["NO_EXAMPLE", "Resource"]

F = TypeVar("F", bound=Converter)


class _NoExample(enum.Enum):
    NO_EXAMPLE = "NO_EXAMPLE"


NO_EXAMPLE = _NoExample.NO_EXAMPLE
"""Marks an example as not given (``None`` is a valid example of a null payload)."""

_URL_FIELDS = frozenset({"entity_id", "topic_id"})


def _examples(example: Any, examples: Iterable[Any]) -> list[Any]:
    return ([] if example is NO_EXAMPLE else [example]) + list(examples)


class Resource:
    """A resource type and the event types published on its topics.

    Create resources with :meth:`Catalog.resource`; the arguments are
    described there.
    """

    def __init__(
        self,
        name: str,
        model: Any = None,
        *,
        description: str = "",
        statuses: type[enum.Enum] | Iterable[str] | None = None,
        transitions: Mapping[Any, Iterable[Any]] | None = None,
        status_payload: type[BaseModel] | None = None,
        strict: bool = False,
        payload_mode: PayloadMode | str = PayloadMode.AUTO,
        reference_url: str | None = None,
        id_field: str = "id",
        example: Any = NO_EXAMPLE,
        status_example: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.description = description
        self.strict = strict
        self.payload_mode = PayloadMode(payload_mode)
        self.reference_url = self._check_url(reference_url)
        self.id_field: str | None = id_field
        self.events: dict[str, EventSpec] = {}
        self.dtos: dict[int, PayloadSchema] = {}
        self.status_enum = None if statuses is None else status_enum(name, statuses)
        self.statuses: tuple[str, ...] = tuple(m.value for m in self.status_enum or ())
        self.transitions = self._check_transitions(transitions)
        if model is not None:
            self.dto_version(
                1,
                model,
                status_payload=status_payload,
                example=example,
                status_example=status_example,
            )

    def __repr__(self) -> str:
        return f"<Resource {self.name} events={list(self.events)}>"

    # -- declarations ------------------------------------------------------------

    def event(
        self,
        name: str,
        payload: Any,
        *,
        version: int = 1,
        description: str = "",
        example: Any = NO_EXAMPLE,
        examples: Iterable[Any] = (),
    ) -> EventSpec:
        """Declare a custom event type, or another version of one.

        ``payload`` is a Pydantic model (or any type Pydantic validates),
        ``None`` for a payload that must be null, or a :class:`PayloadSchema`.
        Examples (JSON values or model instances) are checked against it now.
        """
        return self.add_event(
            name,
            as_payload_schema(payload),
            version=version,
            kind="custom",
            description=description,
            examples=_examples(example, examples),
        )

    def add_event(
        self,
        name: str,
        payload: PayloadSchema,
        *,
        version: int = 1,
        kind: EventKind = "custom",
        description: str = "",
        examples: Iterable[Any] = (),
    ) -> EventSpec:
        """The low-level declaration behind :meth:`event` and :meth:`dto_version`."""
        if not is_event_type(name):
            raise CatalogError(
                f"{self.name}: event type {name!r} must be UPPER_SNAKE_CASE of at most 64"
                " characters, such as GIFT_PURCHASED"
            )
        spec = self.events.get(name)
        if spec is None:
            spec = self.events[name] = EventSpec(
                self.name, name, kind=kind, description=description
            )
        elif description and not spec.description:
            spec.description = description
        try:
            spec.add_version(version, payload, examples)
        except CatalogError as exc:
            raise CatalogError(f"{spec.key}: {exc}") from None
        return spec

    def dto_version(
        self,
        version: int,
        model: Any,
        *,
        status_payload: type[BaseModel] | None = None,
        example: Any = NO_EXAMPLE,
        status_example: Mapping[str, Any] | None = None,
    ) -> None:
        """Declare the resource's DTO at ``version``: ADDED, UPDATED, DELETED, STATUS_CHANGED.

        Register converters for ADDED and UPDATED between DTO versions with
        :meth:`converter` (an UPDATED converter may receive a partial).
        DELETED, and STATUS_CHANGED when its extra fields did not change,
        convert by themselves.
        """
        dto = ModelPayload(model)
        reference = self.payload_mode is PayloadMode.REFERENCE
        added: PayloadSchema = dto
        updated: PayloadSchema = dto
        if reference:
            added = updated = NullPayload("must be null: this resource sends references only")
        elif self.payload_mode is not PayloadMode.FULL:
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise CatalogError(f"{self.name}: partial updates need a Pydantic model as DTO")
            updated = ModelPayload(patch_model(model))
        examples = _examples(example, ())
        status_schema = None
        if self.status_enum is not None:
            extra = status_model(self.name, self.status_enum, status_payload)
            status_schema = ModelPayload(extra)
        self.define_standard(
            version,
            dto,
            added=added,
            updated=updated,
            status=status_schema,
            examples=[None] if reference else examples,
            status_examples=self._status_examples(examples, status_example),
        )
        previous = [v for v in self.dtos if v < version]
        self._link_identity("DELETED", previous, version)
        if status_schema is not None and previous:
            earlier = self.events["STATUS_CHANGED"].versions[max(previous)].payload
            if _same_schema(earlier, status_schema):
                self._link_identity("STATUS_CHANGED", previous, version)

    def define_standard(
        self,
        version: int,
        dto: PayloadSchema,
        *,
        added: PayloadSchema,
        updated: PayloadSchema,
        status: PayloadSchema | None,
        examples: Iterable[Any] = (),
        status_examples: Iterable[Any] = (),
    ) -> None:
        """Declare the standard events of one DTO version from ready payload schemas."""
        if version in self.dtos:
            raise CatalogError(f"{self.name}: DTO version {version} is declared twice")
        self.dtos[version] = dto
        properties = dto.json_schema().get("properties", {})
        if self.id_field is not None and self.id_field not in properties:
            self.id_field = None
        examples = list(examples)
        for name, payload, shown in (
            ("ADDED", added, examples),
            ("UPDATED", updated, examples),
            ("DELETED", NullPayload("must be null: DELETED carries no payload"), [None]),
        ):
            self.add_event(name, payload, version=version, kind="standard", examples=shown)
        if status is not None:
            self.add_event(
                "STATUS_CHANGED",
                status,
                version=version,
                kind="standard",
                examples=status_examples,
            )
        for name in STANDARD_EVENTS:
            if name in self.events and not self.events[name].description:
                self.events[name].description = _standard_text(name, self.payload_mode)

    def converter(
        self, events: str | Iterable[str], from_version: int, to_version: int
    ) -> Callable[[F], F]:
        """Decorate a function converting a payload between adjacent versions.

        ``@gifts.converter(["ADDED", "UPDATED"], 1, 2)`` registers one function
        for several event types. It receives and returns JSON values and must
        not modify its argument.
        """

        def register(function: F) -> F:
            self.add_converter(events, from_version, to_version, function)
            return function

        return register

    def add_converter(
        self, events: str | Iterable[str], from_version: int, to_version: int, function: Converter
    ) -> None:
        """Register ``function`` as the converter for ``events`` (one name or several).

        ``function`` is a Python callable or an :class:`Evolution`; an
        Evolution given for UPDATED applies to merge patches when this
        resource's updates are partial (``partial`` and ``auto`` modes).
        """
        for name in [events] if isinstance(events, str) else list(events):
            spec = self.events.get(name)
            if spec is None:
                raise CatalogError(f"{self.name}: no event type {name!r} to convert")
            converter = function
            if isinstance(function, Evolution) and self._patched(spec):
                converter = function.for_patches()
            spec.add_converter(from_version, to_version, converter)

    def evolve(
        self,
        events: str | Iterable[str],
        from_version: int,
        to_version: int,
        *ops: Operation,
        inverse: bool = True,
    ) -> Evolution:
        """Declare, as data, how ``events``' payloads change from one version to the next.

        ``gifts.evolve(["ADDED", "UPDATED"], 1, 2, Rename("notes", "comment"))``
        registers the operations from ``from_version`` to ``to_version`` and,
        when every operation can be undone and ``inverse`` is true, their
        inverse the other way. Unlike a Python converter, it survives the
        catalog's JSON export. Returns the evolution registered first.
        """
        names = [events] if isinstance(events, str) else list(events)
        evolution = Evolution(*ops)
        undone = evolution.inverse() if inverse else None
        self.add_converter(names, from_version, to_version, evolution)
        if undone is not None:
            self.add_converter(names, to_version, from_version, undone)
        return evolution

    # -- use -------------------------------------------------------------------

    def reference(self, entity_id: str, topic: str | None = None) -> str | None:
        """The URL to fetch the entity from, filled in from ``reference_url``."""
        if self.reference_url is None:
            return None
        topic_id = topic.split(":")[1] if topic and ":" in topic else ""
        return self.reference_url.format(entity_id=entity_id, topic_id=topic_id)

    def update_payload(self, before: Any, after: Any, *, overhead: int = 0) -> Any:
        """UPDATED's payload under this resource's payload mode (see :mod:`.modes`)."""
        return update_payload(
            before, after, self.payload_mode, overhead=overhead, limit=FULL_DTO_LIMIT
        )

    # -- checks ----------------------------------------------------------------

    def _patched(self, spec: EventSpec) -> bool:
        """Whether ``spec``'s payloads are merge patches (UPDATED of partial updates)."""
        partial = self.payload_mode in (PayloadMode.PARTIAL, PayloadMode.AUTO)
        return spec.kind == "standard" and spec.name == "UPDATED" and partial

    def _check_url(self, url: str | None) -> str | None:
        if url is None:
            return None
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(url) if f is not None}
        except ValueError as exc:
            raise CatalogError(f"{self.name}: bad reference_url {url!r}: {exc}") from None
        unknown = fields - _URL_FIELDS
        if unknown:
            raise CatalogError(
                f"{self.name}: reference_url may use {{entity_id}} and {{topic_id}},"
                f" not {sorted(unknown)}"
            )
        return url

    def _status_value(self, status: Any) -> str:
        value = status.value if isinstance(status, enum.Enum) else status
        if value not in self.statuses:
            raise CatalogError(f"{self.name}: unknown status {value!r}; statuses: {self.statuses}")
        return str(value)

    def _check_transitions(
        self, transitions: Mapping[Any, Iterable[Any]] | None
    ) -> dict[str, frozenset[str]] | None:
        if transitions is None:
            return None
        if self.status_enum is None:
            raise CatalogError(f"{self.name}: transitions need statuses")
        return {
            self._status_value(old): frozenset(self._status_value(new) for new in news)
            for old, news in transitions.items()
        }

    def _status_examples(self, examples: list[Any], extra: Mapping[str, Any] | None) -> list[Any]:
        if not self.statuses or not examples:
            return []
        dto = example_json(examples[0])
        if self.transitions:
            old, news = next((o, n) for o, n in self.transitions.items() if n)
            new = min(news)
        else:
            old, new = self.statuses[0], self.statuses[-1]
        entity = dto.get(self.id_field or "id", "entity-1") if isinstance(dto, dict) else "entity-1"
        return [{"id": str(entity), "old_status": old, "new_status": new, **(extra or {})}]

    def _link_identity(self, name: str, previous: list[int], version: int) -> None:
        if previous and name in self.events:
            spec = self.events[name]
            spec.add_converter(max(previous), version, identity)
            spec.add_converter(version, max(previous), identity)


def _same_schema(a: PayloadSchema, b: PayloadSchema) -> bool:
    strip = {"title", "description"}
    first = {k: v for k, v in a.json_schema().items() if k not in strip}
    second = {k: v for k, v in b.json_schema().items() if k not in strip}
    return first == second


def _standard_text(name: str, mode: PayloadMode) -> str:
    if mode is PayloadMode.REFERENCE and name in ("ADDED", "UPDATED"):
        verb = "was created" if name == "ADDED" else "changed"
        return f"An entity {verb}; the payload is null: fetch it from the reference URL."
    return {
        "ADDED": "An entity was created; the payload is its full DTO.",
        "UPDATED": (
            "An entity changed; the payload is its full DTO."
            if mode is PayloadMode.FULL
            else "An entity changed; the payload is a JSON merge patch (RFC 7396) of its DTO:"
            " the full DTO, or only the changed fields."
        ),
        "DELETED": "An entity was deleted; the payload is null.",
        "STATUS_CHANGED": "An entity's status changed from old_status to new_status.",
    }[name]
