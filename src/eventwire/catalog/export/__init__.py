"""The catalog in other formats: JSON (and back), AsyncAPI 3.0, JSON Schema, TypeScript, Zod, HTML.

``export_catalog(catalog, "asyncapi")`` returns the text that
``eventwire catalog export --format asyncapi`` prints.
"""

from __future__ import annotations

import json

from eventwire.catalog.export.asyncapi import asyncapi_document
from eventwire.catalog.export.html import html_page
from eventwire.catalog.export.jsonschema import catalog_schema, event_schema, event_schemas
from eventwire.catalog.export.serialize import dump_catalog, dumps, load_catalog_data, loads
from eventwire.catalog.export.typescript import typescript_module
from eventwire.catalog.export.zod import zod_module
from eventwire.catalog.model import Catalog

__all__ = [
    "FORMATS",
    "asyncapi_document",
    "catalog_schema",
    "dump_catalog",
    "dumps",
    "event_schema",
    "event_schemas",
    "export_catalog",
    "html_page",
    "load_catalog_data",
    "loads",
    "typescript_module",
    "zod_module",
]

FORMATS = ("json", "asyncapi", "jsonschema", "typescript", "zod", "html")
"""What :func:`export_catalog` writes; ``json`` loads back with :func:`loads`."""


def export_catalog(catalog: Catalog, fmt: str, *, server_url: str | None = None) -> str:
    """The catalog as text in format ``fmt`` (one of :data:`FORMATS`).

    ``server_url`` adds a ``servers`` entry to the AsyncAPI document.
    """
    if fmt == "json":
        return dumps(catalog).decode()
    if fmt == "asyncapi":
        return json.dumps(asyncapi_document(catalog, server_url=server_url), indent=2) + "\n"
    if fmt == "jsonschema":
        return json.dumps(catalog_schema(catalog), indent=2) + "\n"
    if fmt == "typescript":
        return typescript_module(catalog)
    if fmt == "zod":
        return zod_module(catalog)
    if fmt == "html":
        return html_page(catalog)
    raise ValueError(f"unknown catalog format {fmt!r}; expected one of {', '.join(FORMATS)}")
