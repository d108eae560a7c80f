"""The event versions a subscriber reads: checked, and the connection's under a subscription's.

No I/O. A declaration maps event keys to the versions read
(docs/protocol.md, "Versions")::

    {"room.MESSAGE_POSTED": [1], "gift-list.*": [1, 2], "*": [1]}

The gateway would refuse a whole SUBSCRIBE over one malformed key, so a
declaration is checked here, where it is written. The JavaScript client's
``versions.js`` follows the same rules.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Literal, TypeAlias

import orjson

from eventwire.catalog.delivery import parse_accept
from eventwire.errors import ValidationFailed

__all__ = [
    "FROM_CONNECTION",
    "Declared",
    "FromConnection",
    "Versions",
    "check_versions",
    "subscription_versions",
    "versions_key",
]

Versions: TypeAlias = Mapping[str, Sequence[int]]
"""Event keys (``resource.EVENT``, ``resource.*``, ``*``) to the versions read."""

Declared: TypeAlias = "dict[str, list[int]] | None"
"""A checked declaration in canonical form (keys and versions sorted); None: as published."""


class _Default(enum.Enum):
    FROM_CONNECTION = "from the connection"


FROM_CONNECTION = _Default.FROM_CONNECTION
"""A subscription that declares nothing of its own reads the connection's ``versions``."""
FromConnection: TypeAlias = Literal[_Default.FROM_CONNECTION]


def check_versions(versions: Versions, what: str = "versions") -> dict[str, list[int]]:
    """``versions`` checked and canonical; ValueError naming every bad key otherwise."""
    if not isinstance(versions, Mapping) or not all(isinstance(k, str) for k in versions):
        raise ValueError(f"{what}: expected a mapping of event keys to version lists")
    raw = {
        key: list(value) if isinstance(value, list | tuple) else value
        for key, value in versions.items()
    }
    try:
        parse_accept(raw, field=what)
    except ValidationFailed as exc:
        raise ValueError("; ".join(f"{field}: {error}" for field, error in exc.errors)) from None
    return {key: sorted(set(raw[key])) for key in sorted(raw)}


def subscription_versions(connection: Declared, own: Versions | FromConnection | None) -> Declared:
    """What one subscription declares: ``own`` over the connection's, key by key.

    ``None`` opts out (events as published); ``FROM_CONNECTION`` takes the
    connection's as they are.
    """
    if own is None:
        return None
    if own is FROM_CONNECTION:
        return connection
    return check_versions({**(connection or {}), **check_versions(own)})


def versions_key(declared: Declared) -> str:
    """A string equal for equal declarations: topics with the same one share a SUBSCRIBE."""
    return "" if declared is None else orjson.dumps(declared, option=orjson.OPT_SORT_KEYS).decode()
