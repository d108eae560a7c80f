"""Load a catalog from an import path (``myapp.events:catalog``) or a JSON file.

The import path works like uvicorn's app path: ``module:attribute``, the
attribute a :class:`Catalog` or a function without arguments returning one.
A path ending in ``.json``, or naming an existing file, is read as the JSON
that ``eventwire catalog export --format json`` writes, so a gateway can run
without the application's Python code.
"""

from __future__ import annotations

import os
from pathlib import Path

from eventwire.catalog.errors import CatalogLoadError
from eventwire.catalog.imports import import_object
from eventwire.catalog.model import Catalog

__all__ = ["load_catalog", "load_catalog_file", "load_catalog_object"]


def load_catalog(spec: str | os.PathLike[str], *, import_converters: bool = True) -> Catalog:
    """The catalog named by ``spec``: ``module:attribute`` or a JSON file's path.

    A JSON file may name Python converters by import path; they are imported
    now, and one that cannot be is a CatalogLoadError, so that a gateway
    never starts without a converter its catalog declares. Tools that only
    read a catalog (export, lint) pass ``import_converters=False``: nothing
    the file names is imported, and those converters refuse to convert.
    Raises CatalogLoadError with what was looked for and what was found.
    """
    text = os.fspath(spec)
    if isinstance(spec, os.PathLike) or text.endswith(".json") or Path(text).is_file():
        return load_catalog_file(text, import_converters=import_converters)
    return load_catalog_object(text)


def load_catalog_file(path: str | os.PathLike[str], *, import_converters: bool = True) -> Catalog:
    """A catalog from a JSON file."""
    from eventwire.catalog.export.serialize import loads

    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise CatalogLoadError(
            f"cannot read catalog file {os.fspath(path)!r}: {exc.strerror}"
        ) from None
    return loads(text, source=os.fspath(path), import_converters=import_converters)


def load_catalog_object(spec: str) -> Catalog:
    """A catalog from ``module:attribute`` (the attribute may be dotted)."""
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise CatalogLoadError(
            f"catalog {spec!r}: expected 'module:attribute' such as 'myapp.events:catalog',"
            " or a path to a .json file"
        )
    found = import_object(spec, "catalog")
    if not isinstance(found, Catalog) and callable(found):
        found = found()
    if not isinstance(found, Catalog):
        raise CatalogLoadError(
            f"catalog {spec!r}: expected an eventwire.catalog.Catalog, got {type(found).__name__}"
        )
    return found
