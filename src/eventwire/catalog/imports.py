"""Python objects named by import path (``module:qualname``), as catalogs refer to them.

A catalog is loaded by import path (``myapp.events:catalog``), and a Python
converter is written to the catalog's JSON by its import path
(``myapp.events:gift_v1_to_v2``) so that a gateway that can import it uses
it. :class:`PythonConverter` is such a converter as loaded: imported, or,
when importing was not asked for, a placeholder that refuses to convert.
"""

from __future__ import annotations

import importlib
from typing import Any

from eventwire.catalog.errors import CatalogLoadError

__all__ = ["PythonConverter", "import_object", "import_path_of"]


def import_path_of(obj: object) -> str | None:
    """``module:qualname`` of a function or class; None when it has none.

    The path of a lambda or of a function defined inside another is
    returned too (``m:f.<locals>.g``); :func:`import_object` refuses it with
    the reason.
    """
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        return None
    return f"{module}:{qualname}"


def import_object(path: str, what: str) -> object:
    """The object at ``module:attribute`` (the attribute may be dotted).

    Raises CatalogLoadError starting with ``what`` and saying what was not found.
    """
    module_name, _, attribute = path.partition(":")
    if "<" in attribute:
        raise CatalogLoadError(
            f"{what} {path!r}: a lambda or a function defined inside another cannot be"
            " imported; define it at module level"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise CatalogLoadError(f"{what} {path!r}: no module named {exc.name!r}") from None
        raise CatalogLoadError(f"{what} {path!r}: importing {module_name} failed: {exc}") from exc
    except Exception as exc:
        raise CatalogLoadError(f"{what} {path!r}: importing {module_name} failed: {exc!r}") from exc
    found: object = module
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise CatalogLoadError(
                f"{what} {path!r}: {module_name} has no attribute {attribute!r}"
            ) from None
    return found


class PythonConverter:
    """A converter a catalog's JSON names by import path.

    ``function`` is the imported callable; None when the catalog was loaded
    without importing converters, and then calling it raises (the version it
    leads to is unsupported). ``path`` is None for a converter exported
    without one (not a module-level function).
    """

    __slots__ = ("function", "path")

    def __init__(self, path: str | None, function: Any = None) -> None:
        self.path = path
        self.function = function

    def __repr__(self) -> str:
        state = "imported" if self.function is not None else "not imported"
        return f"<PythonConverter {self.path} ({state})>"

    def __call__(self, payload: Any) -> Any:
        if self.function is None:
            raise RuntimeError(f"the Python converter {self.path} was not imported")
        return self.function(payload)

    @classmethod
    def load(cls, path: str | None, what: str) -> PythonConverter:
        """Import the converter at ``path``; CatalogLoadError when it cannot be."""
        if path is None:
            raise CatalogLoadError(
                f"{what}: a Python converter exported without an import path (not a function"
                " at module level); declare it as a module-level function, or with operations"
            )
        if path.count(":") != 1:
            raise CatalogLoadError(f"{what} {path!r}: expected 'module:function'")
        try:
            found = import_object(path, what)
        except CatalogLoadError as exc:
            raise CatalogLoadError(
                f"{exc}. The gateway needs the code that defines this converter importable"
                " (the application's package installed, or PYTHONPATH), or the converter"
                " declared with operations (Resource.evolve) to run without it"
            ) from exc.__cause__
        if not callable(found):
            raise CatalogLoadError(
                f"{what} {path!r}: expected a function, got {type(found).__name__}"
            )
        return cls(path, found)
