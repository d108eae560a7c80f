"""What the catalog raises, below eventwire's one exception root.

::

    EventwireError
    ├── CatalogError          a declaration is wrong (bad name, unknown status,
    │   │                     converter between versions that are not adjacent,
    │   │                     an example that its own schema refuses)
    │   └── CatalogLoadError  an import path or a catalog JSON file cannot be loaded
    └── ConversionError       no converter path between two versions, or a
                              converter failed or produced an invalid payload

Publishing an event that the catalog refuses raises
:class:`eventwire.errors.ValidationFailed` (VALIDATION_ERROR), like every
other field error of the protocol.
"""

from __future__ import annotations

from eventwire.errors import EventwireError

__all__ = ["CatalogError", "CatalogLoadError", "ConversionError"]


class CatalogError(EventwireError):
    """A catalog declaration is wrong; the message says which and why."""


class CatalogLoadError(CatalogError):
    """A catalog could not be loaded from an import path or a JSON file."""


class ConversionError(EventwireError):
    """An event's payload could not be converted from one version to another."""

    def __init__(self, message: str, *, from_version: int, to_version: int) -> None:
        super().__init__(message)
        self.from_version = from_version
        self.to_version = to_version
