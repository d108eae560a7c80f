"""Declarative converters: how a payload changes between versions, as data.

A Python converter cannot travel in a catalog's JSON; these can. Like the
rules of schema evolution in Avro or Protobuf, a few operations cover most
version changes, and each says whether it can be undone::

    room.evolve("MESSAGE_POSTED", 1, 2, Add("mentions", []))   # and 2 -> 1: Drop("mentions")
    gifts.evolve(["ADDED", "UPDATED"], 1, 2,
                 Rename("notes", "comment"), MapValues("status", {"available": "open"}))

- ``Rename(a, b)`` moves ``a`` to ``b`` in the same object; undone by
  ``Rename(b, a)``, exactly.
- ``Add(f, default)`` sets ``f`` to ``default`` where it is absent; undone
  by ``Drop(f)``, exactly.
- ``Drop(f)`` removes ``f``; ``Drop(f, default=x)`` is undone by
  ``Add(f, x)``, which gives back ``x``, not the value dropped.
- ``MapValues(f, {old: new})`` replaces the listed string values of ``f``
  (enum values); undone by the reversed table when no two values map to one.

A field is a name, or a dotted path into nested objects (``address.city``).
An operation whose field, or the object holding it, is absent changes
nothing, so the same declaration serves full payloads and partial ones. In
a merge patch (UPDATED of a ``partial`` or ``auto`` resource) ``Add`` adds
nothing: a field the change does not mention keeps its value on the client.

An :class:`Evolution` is a sequence of operations; it is a converter (a
callable that never modifies its argument), it composes (:meth:`then`), it
inverts when every operation does, and it is written to and read from JSON
as a list of ``{"op": ...}`` objects by the same code.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from eventwire.catalog.errors import CatalogError

__all__ = [
    "MISSING",
    "Add",
    "Drop",
    "Evolution",
    "MapValues",
    "Operation",
    "Rename",
    "operation_from_json",
]


class _Missing(enum.Enum):
    MISSING = "MISSING"


MISSING = _Missing.MISSING
"""Marks a default as not given (``None`` is a valid default: JSON ``null``)."""


def _json_default(value: Any, what: str) -> None:
    try:
        orjson.dumps(value)
    except TypeError as exc:
        raise CatalogError(f"{what}: the default must be a JSON value: {exc}") from None


def _path(text: object, what: str) -> tuple[str, ...]:
    if not isinstance(text, str) or not text or "" in text.split("."):
        raise CatalogError(f"{what}: expected a field name or a dotted path, not {text!r}")
    return tuple(text.split("."))


class _Writer:
    """Copy-on-write access to a JSON object: the caller's value is never modified.

    Each object on the way to a changed field is copied once per conversion;
    untouched values are shared with the caller's payload.
    """

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = dict(root)
        self._own = {id(self.root)}

    def parent(self, path: tuple[str, ...]) -> dict[str, Any] | None:
        """The object holding ``path``'s last name, writable; None when absent."""
        node = self.root
        for name in path[:-1]:
            child = node.get(name)
            if not isinstance(child, dict):
                return None
            if id(child) not in self._own:
                child = node[name] = dict(child)
                self._own.add(id(child))
            node = child
        return node


@dataclass(frozen=True, slots=True)
class Rename:
    """Move the field ``source`` to ``target``, in the same object."""

    source: str
    target: str

    def __post_init__(self) -> None:
        a, b = _path(self.source, "rename"), _path(self.target, "rename")
        if a[:-1] != b[:-1] or a == b:
            raise CatalogError(
                f"rename {self.source!r} to {self.target!r}: a rename changes a field's name in"
                " its object; moving fields between objects needs a Python converter"
            )

    def apply(self, writer: _Writer, *, patch: bool) -> None:
        a, b = self.source.split("."), self.target.split(".")
        parent = writer.parent(tuple(a))
        if parent is None or a[-1] not in parent:
            return
        if b[-1] in parent:
            raise ValueError(f"cannot rename {self.source!r}: {self.target!r} is already there")
        parent[b[-1]] = parent.pop(a[-1])

    def inverse(self) -> Rename:
        return Rename(self.target, self.source)

    @property
    def exact(self) -> bool:
        return True

    def to_json(self) -> dict[str, Any]:
        return {"op": "rename", "from": self.source, "to": self.target}

    def track(self, fields: set[str]) -> str | None:
        if "." in self.source:
            return _known(self.source, fields, "rename")
        if self.source not in fields:
            return f"rename: no field {self.source!r}"
        if self.target in fields:
            return f"rename: {self.target!r} is already a field"
        fields.discard(self.source)
        fields.add(self.target)
        return None


@dataclass(frozen=True, slots=True)
class Add:
    """Give the new field ``name`` the value ``default`` where it is absent."""

    name: str
    default: Any = None

    def __post_init__(self) -> None:
        _path(self.name, "add")
        _json_default(self.default, f"add {self.name!r}")

    def apply(self, writer: _Writer, *, patch: bool) -> None:
        if patch:
            return  # a merge patch that does not mention a field leaves it as it is
        path = tuple(self.name.split("."))
        parent = writer.parent(path)
        if parent is not None and path[-1] not in parent:
            parent[path[-1]] = copy.deepcopy(self.default)

    def inverse(self) -> Drop:
        return Drop(self.name, self.default)

    @property
    def exact(self) -> bool:
        return True

    def to_json(self) -> dict[str, Any]:
        return {"op": "add", "field": self.name, "default": self.default}

    def track(self, fields: set[str]) -> str | None:
        if "." in self.name:
            return _known(self.name, fields, "add")
        if self.name in fields:
            return f"add: {self.name!r} is already a field"
        fields.add(self.name)
        return None


@dataclass(frozen=True, slots=True)
class Drop:
    """Remove the field ``name``; with a ``default``, the inverse adds it back with it."""

    name: str
    default: Any = MISSING

    def __post_init__(self) -> None:
        _path(self.name, "drop")
        if self.default is not MISSING:
            _json_default(self.default, f"drop {self.name!r}")

    def apply(self, writer: _Writer, *, patch: bool) -> None:
        path = tuple(self.name.split("."))
        parent = writer.parent(path)
        if parent is not None:
            parent.pop(path[-1], None)

    def inverse(self) -> Add | None:
        return None if self.default is MISSING else Add(self.name, self.default)

    @property
    def exact(self) -> bool:
        return False

    def to_json(self) -> dict[str, Any]:
        dumped: dict[str, Any] = {"op": "drop", "field": self.name}
        if self.default is not MISSING:
            dumped["default"] = self.default
        return dumped

    def track(self, fields: set[str]) -> str | None:
        if "." in self.name:
            return _known(self.name, fields, "drop")
        if self.name not in fields:
            return f"drop: no field {self.name!r}"
        fields.discard(self.name)
        return None


@dataclass(frozen=True, slots=True)
class MapValues:
    """Replace the string values of ``name`` listed in ``values``; others pass unchanged."""

    name: str
    values: Mapping[str, str]

    def __post_init__(self) -> None:
        _path(self.name, "map")
        if not isinstance(self.values, Mapping) or not self.values:
            raise CatalogError(f"map {self.name!r}: expected a non-empty table of values")
        for old, new in self.values.items():
            if not isinstance(old, str) or not isinstance(new, str):
                raise CatalogError(
                    f"map {self.name!r}: values are strings (enum values), not {old!r}: {new!r}"
                )
        object.__setattr__(self, "values", dict(self.values))

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted(self.values.items()))))

    def apply(self, writer: _Writer, *, patch: bool) -> None:
        path = tuple(self.name.split("."))
        parent = writer.parent(path)
        value = None if parent is None else parent.get(path[-1])
        if isinstance(value, str) and value in self.values:
            assert parent is not None
            parent[path[-1]] = self.values[value]

    def inverse(self) -> MapValues | None:
        reverse = {new: old for old, new in self.values.items()}
        return MapValues(self.name, reverse) if len(reverse) == len(self.values) else None

    @property
    def exact(self) -> bool:
        return self.inverse() is not None

    def to_json(self) -> dict[str, Any]:
        return {"op": "map", "field": self.name, "values": dict(self.values)}

    def track(self, fields: set[str]) -> str | None:
        return _known(self.name, fields, "map")


Operation = Rename | Add | Drop | MapValues
"""One step of an :class:`Evolution`: the whole, closed set of declarative operations."""


def _known(path: str, fields: set[str], op: str) -> str | None:
    first = path.split(".")[0]
    return None if first in fields else f"{op}: no field {first!r}"


_FIELDS = {
    "rename": ({"from", "to"}, set()),
    "add": ({"field"}, {"default"}),
    "drop": ({"field"}, {"default"}),
    "map": ({"field", "values"}, set()),
}


def operation_from_json(data: object) -> Operation:
    """An operation from its JSON form; CatalogError says what is wrong."""
    if not isinstance(data, dict) or data.get("op") not in _FIELDS:
        raise CatalogError(
            f"expected an operation {{'op': 'rename' | 'add' | 'drop' | 'map', ...}}, got {data!r}"
        )
    op = data["op"]
    required, optional = _FIELDS[op]
    given = set(data) - {"op"}
    if not required <= given or not given <= required | optional:
        wanted = sorted(required) + [f"{name}?" for name in sorted(optional)]
        raise CatalogError(f"{op}: expected the keys {wanted}, got {sorted(given)}")
    if op == "rename":
        return Rename(data["from"], data["to"])
    if op == "add":
        return Add(data["field"], data.get("default"))
    if op == "drop":
        return Drop(data["field"], data.get("default", MISSING))
    return MapValues(data["field"], data["values"])


class Evolution:
    """A declarative converter: operations applied in order to a payload object.

    Callable like any converter; payloads that are not objects (``null``)
    pass unchanged. ``patch`` marks payloads that are merge patches (set by
    the resource for UPDATED in ``partial`` and ``auto`` modes).
    """

    __slots__ = ("ops", "patch")

    def __init__(self, *ops: Operation, patch: bool = False) -> None:
        self.ops: tuple[Operation, ...] = tuple(ops)
        self.patch = patch

    def __repr__(self) -> str:
        shown = ", ".join(map(repr, self.ops))
        return f"Evolution({shown}{', patch=True' if self.patch else ''})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Evolution) and (self.ops, self.patch) == (other.ops, other.patch)

    def __hash__(self) -> int:
        return hash((self.ops, self.patch))

    def __call__(self, payload: Any) -> Any:
        if not isinstance(payload, dict):
            return payload
        writer = _Writer(payload)
        for op in self.ops:
            op.apply(writer, patch=self.patch)
        return writer.root

    def then(self, other: Evolution) -> Evolution:
        """This evolution followed by ``other``: a conversion over two steps."""
        return Evolution(*self.ops, *other.ops, patch=self.patch)

    def inverse(self) -> Evolution | None:
        """The evolution that undoes this one, or None when some operation has no inverse."""
        undone = [op.inverse() for op in reversed(self.ops)]
        if any(op is None for op in undone):
            return None
        return Evolution(*(op for op in undone if op is not None), patch=self.patch)

    @property
    def exact(self) -> bool:
        """Whether :meth:`inverse` gives back exactly the payload this was given."""
        return all(op.exact for op in self.ops)

    def for_patches(self) -> Evolution:
        """The same operations, applied to merge patches."""
        return Evolution(*self.ops, patch=True)

    def to_json(self) -> list[dict[str, Any]]:
        """The operations as JSON; :meth:`from_json` reads them back."""
        return [op.to_json() for op in self.ops]

    @classmethod
    def from_json(cls, data: Iterable[object]) -> Evolution:
        """An evolution from the list :meth:`to_json` wrote."""
        ops = []
        for n, item in enumerate(data):
            try:
                ops.append(operation_from_json(item))
            except CatalogError as exc:
                raise CatalogError(f"operation {n}: {exc}") from None
        return cls(*ops)

    def check(self, source: Mapping[str, Any], target: Mapping[str, Any]) -> list[str]:
        """What is wrong with these operations between two payload schemas (JSON Schema).

        Follows the top-level field names of ``source`` through every
        operation: each must name a field that exists (or, for ``add``, one
        that does not), and the result must have every field ``target``
        requires and, when ``target`` refuses unknown fields, no other.
        Schemas that are not objects with ``properties`` are not checked.
        """
        before, after = source.get("properties"), target.get("properties")
        if not isinstance(before, dict) or not isinstance(after, dict):
            return []
        fields = set(before)
        problems = [p for op in self.ops if (p := op.track(fields)) is not None]
        if problems:
            return problems
        missing = sorted(set(target.get("required", ())) - fields)
        if missing:
            problems.append(f"the target requires {missing}, which these operations do not add")
        extra = sorted(fields - set(after))
        if extra and target.get("additionalProperties") is False:
            problems.append(f"the target has no field {extra}: drop or rename it")
        return problems
