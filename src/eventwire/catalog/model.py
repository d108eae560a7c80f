"""The catalog: every resource type and event type an application publishes.

::

    from eventwire.catalog import Catalog

    catalog = Catalog("giftlist", title="Gift lists")
    gifts = catalog.resource(
        "gift-list", Gift, statuses=GiftStatus, strict=True,
        reference_url="/api/gifts/{entity_id}",
    )
    gifts.event("GIFT_PURCHASED", GiftPurchased, description="...", example={...})

    catalog.event("gift-list", "GIFT_PURCHASED", GiftPurchasedV2, version=2)

    catalog.evolve("gift-list", "GIFT_PURCHASED", 1, 2, Add("price_paid", None))  # and 2 -> 1

The seed's best practice 7, "Document event types: Maintain event
catalog/documentation", made executable: the gateway validates every
published event against it, and it exports to AsyncAPI, JSON Schema,
TypeScript and Zod.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from eventwire.catalog.errors import CatalogError
from eventwire.catalog.events import EventSpec, EventVersion
from eventwire.catalog.evolution import Evolution, Operation
from eventwire.catalog.modes import PayloadMode
from eventwire.catalog.resource import NO_EXAMPLE, F, Resource
from eventwire.catalog.schema import ModelPayload
from eventwire.topics import RESERVED_NAMESPACES

if TYPE_CHECKING:
    from eventwire.envelope import NewEvent

__all__ = ["TENANT_PREFIX", "Catalog"]

TENANT_PREFIX = "tenant"
"""The seed's "Tenant in Topic" pattern: ``tenant:acme:gift-list:123`` is a ``gift-list`` topic."""


# The first segment of the topic grammar (eventwire.topics): `gift-list`, `room`.
_RESOURCE_RE = re.compile(r"[a-z][a-z0-9-]{0,63}")


def _valid_resource_name(name: object) -> bool:
    return isinstance(name, str) and _RESOURCE_RE.fullmatch(name) is not None


class Catalog:
    """Every resource type and event type of an application.

    ``strict`` decides what happens to events on a resource type that the
    catalog does not declare: refused (strict) or let through unchecked (the
    default, as the seed's ``EventType = ... | string`` allows custom events).
    Whether a declared resource accepts undeclared event types is the
    resource's own ``strict``.
    """

    def __init__(
        self,
        name: str,
        *,
        title: str | None = None,
        version: str = "1.0.0",
        description: str = "",
        strict: bool = False,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise CatalogError("a catalog needs a non-empty name")
        self.name = name
        self.title = title or name
        self.version = version
        self.description = description
        self.strict = strict
        self.resources: dict[str, Resource] = {}

    def __repr__(self) -> str:
        return f"<Catalog {self.name} resources={list(self.resources)}>"

    def resource(
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
    ) -> Resource:
        """Declare a resource type: the first segment of its topics (``gift-list``).

        - ``model``: the DTO (a Pydantic model). Giving one defines ADDED,
          UPDATED, DELETED and, with ``statuses``, STATUS_CHANGED at version 1.
          Leave it out for a resource with custom events only (``room``).
        - ``statuses``: an Enum of strings, or the status strings;
          ``transitions``: ``{old: [allowed new, ...]}`` (unlisted pairs refused);
          ``status_payload``: a model of STATUS_CHANGED's extra fields, such
          as the seed's ``purchased_by``.
        - ``strict``: refuse event types this resource does not declare
          (open resources let them through, still checking the declared ones).
        - ``payload_mode``: ``full``, ``partial``, ``auto`` (the default) or
          ``reference`` (see :mod:`eventwire.catalog.modes`);
          ``reference_url``: where a client fetches an entity, with
          ``{entity_id}`` and ``{topic_id}`` placeholders.
        - ``id_field``: the DTO field that must equal ``data.entity_id``.
        - ``example``: an example DTO; ``status_example``: STATUS_CHANGED's
          example extra fields. Examples are validated when declared.
        """
        if not _valid_resource_name(name) or name in RESERVED_NAMESPACES:
            raise CatalogError(
                f"resource type {name!r} must be a topic's first segment: lowercase letters,"
                " digits and '-', starting with a letter, and not 'system' or 'error'"
            )
        if name in self.resources:
            raise CatalogError(f"resource type {name!r} is declared twice")
        resource = Resource(
            name,
            model,
            description=description,
            statuses=statuses,
            transitions=transitions,
            status_payload=status_payload,
            strict=strict,
            payload_mode=payload_mode,
            reference_url=reference_url,
            id_field=id_field,
            example=example,
            status_example=status_example,
        )
        self.resources[name] = resource
        return resource

    def add_resource(self, resource: Resource) -> Resource:
        """Add a resource built elsewhere (the JSON loader does)."""
        if not _valid_resource_name(resource.name) or resource.name in RESERVED_NAMESPACES:
            raise CatalogError(f"resource type {resource.name!r} is not a topic's first segment")
        if resource.name in self.resources:
            raise CatalogError(f"resource type {resource.name!r} is declared twice")
        self.resources[resource.name] = resource
        return resource

    def _resource(self, name: str) -> Resource:
        try:
            return self.resources[name]
        except KeyError:
            raise CatalogError(f"no resource type {name!r} in catalog {self.name!r}") from None

    def event(self, resource: str, name: str, payload: Any, **options: Any) -> EventSpec:
        """Declare a custom event type of ``resource``; see :meth:`Resource.event`."""
        return self._resource(resource).event(name, payload, **options)

    def converter(
        self, resource: str, events: str | Iterable[str], from_version: int, to_version: int
    ) -> Callable[[F], F]:
        """Decorate a converter of ``resource``'s ``events``; see :meth:`Resource.converter`."""
        return self._resource(resource).converter(events, from_version, to_version)

    def evolve(
        self,
        resource: str,
        events: str | Iterable[str],
        from_version: int,
        to_version: int,
        *ops: Operation,
        inverse: bool = True,
    ) -> Evolution:
        """Declarative converters of ``resource``'s ``events``; see :meth:`Resource.evolve`."""
        return self._resource(resource).evolve(
            events, from_version, to_version, *ops, inverse=inverse
        )

    # -- lookups -----------------------------------------------------------------

    def resource_name(self, topic: str) -> str:
        """A topic's resource type: its first segment, after a ``tenant:{id}:`` prefix."""
        segments = topic.split(":")
        first = segments[0]
        if first == TENANT_PREFIX and first not in self.resources and len(segments) >= 4:
            return segments[2]
        return first

    def resource_for(self, topic: str) -> Resource | None:
        """The declared resource of ``topic``, or None."""
        return self.resources.get(self.resource_name(topic))

    def spec(self, resource: str, event: str) -> EventSpec | None:
        """The declaration of ``event`` on ``resource``, or None."""
        found = self.resources.get(resource)
        return None if found is None else found.events.get(event)

    def typed_payload(self, topic: str, event: str, version: int | None, payload: Any) -> Any:
        """``payload`` as the Pydantic model declared for its event and version.

        What a subscriber's code wants instead of a dict: ``Gift`` for a
        gift-list ADDED, the DTO's partial model for an UPDATED (only the sent
        fields set). A payload the model refuses, a reference-only null and
        an undeclared event come back unchanged.
        """
        spec = self.spec(self.resource_name(topic), event)
        declared = None if spec is None else spec.versions.get(version or 1)
        if declared is None or not isinstance(declared.payload, ModelPayload):
            return payload
        model = declared.payload.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or payload is None:
            return payload
        try:
            return model.model_validate(payload)
        except ValidationError:
            return payload

    def events(self) -> Iterator[EventSpec]:
        """Every declared event type, resource by resource."""
        for resource in self.resources.values():
            yield from resource.events.values()

    def validate(self, event: NewEvent, payload_json: bytes | None = None) -> EventVersion | None:
        """Check a published event; raise ValidationFailed naming every failed field.

        See :func:`eventwire.catalog.validate.validate_event`.
        """
        from eventwire.catalog.validate import validate_event

        return validate_event(self, event, payload_json)
