"""Payload schemas: what one version of one event's payload must look like.

Three implementations of one small interface, :class:`PayloadSchema`:

- :class:`ModelPayload` wraps a Python type (usually a Pydantic model) in a
  ``TypeAdapter`` built once, at declaration time.
- :class:`NullPayload` is the seed's ``payload: null`` (DELETED, reference-only).
- :class:`JsonSchemaPayload` wraps a JSON Schema, for catalogs loaded from a
  JSON file without the application's Python code. It needs the
  ``jsonschema`` package, imported only when such a catalog is loaded.

Payloads are checked as JSON text, in Pydantic's strict JSON mode: what the
gateway checks is exactly what it sends, ``"29.99"`` is not a number, and a
JSON Schema exported from the model accepts the same payloads.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from eventwire.catalog.errors import CatalogLoadError
from eventwire.envelope import field_errors
from eventwire.errors import FieldError

__all__ = [
    "JsonSchemaPayload",
    "ModelPayload",
    "NullPayload",
    "PayloadSchema",
    "as_payload_schema",
    "dump_json",
]


def _to_json(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dump_json(value: Any) -> bytes:
    """``value`` as JSON bytes; Pydantic models are dumped in JSON mode."""
    return orjson.dumps(value, default=_to_json)


@runtime_checkable
class PayloadSchema(Protocol):
    """Checks one payload and describes itself as JSON Schema."""

    @property
    def name(self) -> str:
        """A short name for messages and exports, such as ``Gift``."""

    def check(self, payload_json: bytes, prefix: str = "data.payload") -> list[FieldError]:
        """Every problem of the payload, as ``(dotted field, problem)``; empty when valid."""

    def json_schema(self) -> dict[str, Any]:
        """A standalone JSON Schema 2020-12 of the payload (its own ``$defs``)."""


class ModelPayload:
    """A payload typed by a Python annotation, validated by Pydantic."""

    def __init__(self, annotation: Any, name: str | None = None) -> None:
        self.annotation = annotation
        self._adapter: TypeAdapter[Any] = TypeAdapter(annotation)
        self._name = name or getattr(annotation, "__name__", None) or repr(annotation)
        self._schema: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self._name

    def check(self, payload_json: bytes, prefix: str = "data.payload") -> list[FieldError]:
        try:
            self._adapter.validate_json(payload_json, strict=True)
        except ValidationError as exc:
            return field_errors(exc, prefix)
        return []

    def parse(self, value: Any) -> Any:
        """``value`` (a JSON value) as an instance of the annotation."""
        return self._adapter.validate_json(dump_json(value), strict=True)

    def json_schema(self) -> dict[str, Any]:
        if self._schema is None:
            self._schema = self._adapter.json_schema(mode="validation")
        return self._schema


class NullPayload:
    """The payload must be ``null``: the seed's DELETED and reference-only events."""

    def __init__(self, why: str = "must be null") -> None:
        self.why = why

    @property
    def name(self) -> str:
        return "null"

    def check(self, payload_json: bytes, prefix: str = "data.payload") -> list[FieldError]:
        return [] if payload_json == b"null" else [(prefix, self.why)]

    def json_schema(self) -> dict[str, Any]:
        return {"type": "null", "description": self.why}


# -- JSON Schema, for catalogs loaded from JSON ---------------------------------

_TYPE_WORDS = {
    "string": "a valid string",
    "number": "a valid number",
    "integer": "a valid integer",
    "boolean": "a valid boolean",
    "object": "a valid object",
    "array": "a valid list",
    "null": "null",
}


def _is_datetime(value: object) -> bool:
    if not isinstance(value, str) or "T" not in value.upper():
        return False
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        return False
    return moment.tzinfo is not None


def _is_uri(value: object) -> bool:
    return isinstance(value, str) and bool(urlsplit(value).scheme)


def _is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


_FORMATS: dict[str, Callable[[object], bool]] = {
    "date-time": _is_datetime,
    "uri": _is_uri,
    "uuid": _is_uuid,
}


def _jsonschema() -> Any:
    try:
        return importlib.import_module("jsonschema")
    except ImportError:
        raise CatalogLoadError(
            "a catalog loaded from JSON validates payloads with the 'jsonschema' package;"
            " install it (pip install jsonschema)"
        ) from None


def _quote(value: object) -> str:
    return repr(value) if isinstance(value, str) else orjson.dumps(value).decode()


class JsonSchemaPayload:
    """A payload described by a JSON Schema 2020-12, validated with ``jsonschema``.

    Errors are reported in the same words as Pydantic's where the two agree
    (``required``, ``unknown field``, ``Input should be a valid number``).
    """

    def __init__(self, schema: dict[str, Any], name: str | None = None) -> None:
        module = _jsonschema()
        checker = module.FormatChecker(formats=())
        for fmt, test in _FORMATS.items():
            checker.checks(fmt)(test)
        try:
            module.Draft202012Validator.check_schema(schema)
        except module.exceptions.SchemaError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
            raise CatalogLoadError(f"invalid JSON Schema at {where}: {exc.message}") from None
        self._validator = module.Draft202012Validator(schema, format_checker=checker)
        self._best_match = module.exceptions.best_match
        self._schema = schema
        self._name = name or str(schema.get("title", "payload"))

    @property
    def name(self) -> str:
        return self._name

    def json_schema(self) -> dict[str, Any]:
        return self._schema

    def check(self, payload_json: bytes, prefix: str = "data.payload") -> list[FieldError]:
        instance = orjson.loads(payload_json)
        found: list[FieldError] = []
        for error in self._validator.iter_errors(instance):
            for field, problem in self._convert(error):
                entry = (".".join(p for p in (prefix, field) if p), problem)
                if entry not in found:
                    found.append(entry)
        return found

    def _convert(self, error: Any) -> list[tuple[str, str]]:
        path = ".".join(str(part) for part in error.absolute_path)
        kind, instance, expected = error.validator, error.instance, error.validator_value
        if kind in ("anyOf", "oneOf") and error.context:
            return self._convert(self._best_match(_branch_errors(error)))
        if kind == "required":
            missing = [name for name in expected if name not in instance]
            return [(_join(path, name), "required") for name in missing]
        if kind == "additionalProperties":
            known = set(error.schema.get("properties", {}))
            extras = [key for key in instance if key not in known]
            return [(_join(path, key), "unknown field") for key in extras]
        return [(path, _problem(kind, expected, error.message))]


def _branch_errors(error: Any) -> list[Any]:
    """An ``anyOf`` error's branches, without the ``null`` branch when the value is not null."""
    branches = error.validator_value
    if error.instance is None:
        return list(error.context)
    kept = [
        e
        for e in error.context
        if not e.relative_schema_path or branches[e.relative_schema_path[0]].get("type") != "null"
    ]
    return kept or list(error.context)


def _plural(n: object, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _problem(kind: str, expected: Any, message: str) -> str:
    """A JSON Schema error in Pydantic's words, where there is an equivalent."""
    if kind == "type":
        types = [expected] if isinstance(expected, str) else list(expected)
        return "Input should be " + " or ".join(_TYPE_WORDS.get(t, t) for t in types)
    if kind == "enum":
        options = [_quote(v) for v in expected]
        head = ", ".join(options[:-1])
        return "Input should be " + (f"{head} or {options[-1]}" if head else options[-1])
    words = {
        "const": lambda: f"Input should be {_quote(expected)}",
        "format": lambda: f"Input should be a valid {expected}",
        "minLength": lambda: f"String should have at least {_plural(expected, 'character')}",
        "maxLength": lambda: f"String should have at most {_plural(expected, 'character')}",
        "pattern": lambda: f"String should match pattern '{expected}'",
        "minimum": lambda: f"Input should be greater than or equal to {expected}",
        "maximum": lambda: f"Input should be less than or equal to {expected}",
        "exclusiveMinimum": lambda: f"Input should be greater than {expected}",
        "exclusiveMaximum": lambda: f"Input should be less than {expected}",
        "minItems": lambda: f"List should have at least {_plural(expected, 'item')}",
        "maxItems": lambda: f"List should have at most {_plural(expected, 'item')}",
    }
    word = words.get(kind)
    return word() if word is not None else message


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def as_payload_schema(payload: Any, *, null_why: str = "must be null") -> PayloadSchema:
    """Normalize a declaration's payload: a schema object, ``None`` (null), or a type."""
    if isinstance(payload, ModelPayload | NullPayload | JsonSchemaPayload):
        return payload
    if payload is None or payload is type(None):
        return NullPayload(null_why)
    return ModelPayload(payload)
