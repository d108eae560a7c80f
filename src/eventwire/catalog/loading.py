"""Load a catalog from an import path (``myapp.events:catalog``) or a JSON file.

The import path works like uvicorn's app path: ``module:attribute``, the
attribute a :class:`Catalog` or a function without arguments returning one.
A path ending in ``.json``, or naming an existing file, is read as the JSON
that ``eventwire catalog export --format json`` writes, so a gateway can run
without the application's Python code.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from eventwire.catalog.errors import CatalogLoadError
from eventwire.catalog.model import Catalog

__all__ = ["load_catalog", "load_catalog_file", "load_catalog_object"]


def load_catalog(spec: str | os.PathLike[str]) -> Catalog:
    """The catalog named by ``spec``: ``module:attribute`` or a JSON file's path.

    Raises CatalogLoadError with what was looked for and what was found.
    """
    text = os.fspath(spec)
    if isinstance(spec, os.PathLike) or text.endswith(".json") or Path(text).is_file():
        return load_catalog_file(text)
    return load_catalog_object(text)


def load_catalog_file(path: str | os.PathLike[str]) -> Catalog:
    """A catalog from a JSON file."""
    from eventwire.catalog.export.serialize import loads

    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise CatalogLoadError(
            f"cannot read catalog file {os.fspath(path)!r}: {exc.strerror}"
        ) from None
    return loads(text, source=os.fspath(path))


def load_catalog_object(spec: str) -> Catalog:
    """A catalog from ``module:attribute`` (the attribute may be dotted)."""
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise CatalogLoadError(
            f"catalog {spec!r}: expected 'module:attribute' such as 'myapp.events:catalog',"
            " or a path to a .json file"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise CatalogLoadError(f"catalog {spec!r}: no module named {exc.name!r}") from None
        raise CatalogLoadError(f"catalog {spec!r}: importing {module_name} failed: {exc}") from exc
    except Exception as exc:
        raise CatalogLoadError(
            f"catalog {spec!r}: importing {module_name} failed: {exc!r}"
        ) from exc
    found: object = module
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise CatalogLoadError(
                f"catalog {spec!r}: {module_name} has no attribute {attribute!r}"
            ) from None
    if not isinstance(found, Catalog) and callable(found):
        found = found()
    if not isinstance(found, Catalog):
        raise CatalogLoadError(
            f"catalog {spec!r}: expected an eventwire.catalog.Catalog, got {type(found).__name__}"
        )
    return found
