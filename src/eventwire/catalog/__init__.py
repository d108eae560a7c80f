"""The event catalog: typed payloads, payload modes, versions, lint and exports.

An application declares its resources and events once, in Python::

    from eventwire.catalog import Catalog

    catalog = Catalog("giftlist")
    gifts = catalog.resource("gift-list", Gift, statuses=GiftStatus, strict=True)
    gifts.event("GIFT_PURCHASED", GiftPurchased, description="...", example={...})

and the gateway validates every published event against it
(``catalog.validate(event, payload_json)``), converts versions for
subscribers that ask for them (with Python converters, or declarative ones
that survive a JSON export: :mod:`eventwire.catalog.evolution`), lints
traffic, and exports the catalog as JSON, AsyncAPI 3.0, JSON Schema
2020-12, TypeScript and Zod. Nothing here
does I/O except :mod:`eventwire.catalog.loading` and
:mod:`eventwire.catalog.imports`, which import modules and read JSON files.
"""

from __future__ import annotations

from eventwire.catalog.errors import CatalogError, CatalogLoadError, ConversionError
from eventwire.catalog.events import EventSpec, EventVersion
from eventwire.catalog.evolution import Add, Drop, Evolution, MapValues, Operation, Rename
from eventwire.catalog.loading import load_catalog
from eventwire.catalog.model import Catalog
from eventwire.catalog.modes import FULL_DTO_LIMIT, PAYLOAD_MAX, PayloadMode, update_payload
from eventwire.catalog.patch import apply as apply_merge_patch
from eventwire.catalog.patch import diff as merge_patch
from eventwire.catalog.resource import NO_EXAMPLE, Resource
from eventwire.catalog.schema import JsonSchemaPayload, ModelPayload, NullPayload, PayloadSchema
from eventwire.catalog.validate import check_event, validate_event

__all__ = [
    "FULL_DTO_LIMIT",
    "NO_EXAMPLE",
    "PAYLOAD_MAX",
    "Add",
    "Catalog",
    "CatalogError",
    "CatalogLoadError",
    "ConversionError",
    "Drop",
    "EventSpec",
    "EventVersion",
    "Evolution",
    "JsonSchemaPayload",
    "MapValues",
    "ModelPayload",
    "NullPayload",
    "Operation",
    "PayloadMode",
    "PayloadSchema",
    "Rename",
    "Resource",
    "apply_merge_patch",
    "check_event",
    "load_catalog",
    "merge_patch",
    "update_payload",
    "validate_event",
]
