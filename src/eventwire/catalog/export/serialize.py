"""The catalog as JSON, and back: a gateway can run without the application's code.

:func:`dump_catalog` writes every resource, event type, version, payload
schema (JSON Schema 2020-12), example, status, transition and converter;
:func:`load_catalog_data` builds a :class:`Catalog` from it whose payloads
are checked with JSON Schema (the ``jsonschema`` package) instead of Pydantic.
It validates the same events the same way, except for Python validators
beyond what JSON Schema says. Converters come back as they were declared:

- ``{"from": 1, "to": 2, "identity": true}``: payloads that do not differ;
- ``{"from": 1, "to": 2, "ops": [...]}``: an :class:`Evolution`, as data;
- ``{"from": 1, "to": 2, "python": "myapp.events:upgrade"}``: a Python
  function, by import path, imported when the catalog is loaded (a loader
  that cannot import it refuses the catalog; see :func:`load_catalog_data`).

This is also what the gateway serves at ``/v1/catalog``.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from eventwire.catalog.errors import CatalogError, CatalogLoadError
from eventwire.catalog.events import EventSpec
from eventwire.catalog.evolution import Evolution
from eventwire.catalog.imports import PythonConverter, import_path_of
from eventwire.catalog.model import Catalog
from eventwire.catalog.modes import PayloadMode
from eventwire.catalog.resource import Resource
from eventwire.catalog.schema import JsonSchemaPayload, NullPayload, PayloadSchema
from eventwire.catalog.versions import Converter, identity
from eventwire.envelope import field_errors

__all__ = ["FORMAT_VERSION", "dump_catalog", "dumps", "load_catalog_data", "loads"]

FORMAT_VERSION = 1
"""The ``eventwire_catalog`` number of the JSON format written here."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Version(_Strict):
    payload: dict[str, Any]
    examples: list[Any] = Field(default_factory=list)


class _Converter(_Strict):
    from_version: int = Field(alias="from")
    to_version: int = Field(alias="to")
    identity: bool = False
    ops: list[Any] | None = None
    python: str | None = None


class _Event(_Strict):
    kind: Literal["standard", "custom"] = "custom"
    description: str = ""
    versions: dict[int, _Version]
    converters: list[_Converter] = Field(default_factory=list)


class _Resource(_Strict):
    description: str = ""
    strict: bool = False
    payload_mode: PayloadMode = PayloadMode.AUTO
    reference_url: str | None = None
    id_field: str | None = "id"
    statuses: list[str] | None = None
    transitions: dict[str, list[str]] | None = None
    dto: dict[int, dict[str, Any]] = Field(default_factory=dict)
    events: dict[str, _Event] = Field(default_factory=dict)


class _File(_Strict):
    eventwire_catalog: Literal[1]
    name: str
    title: str = ""
    version: str = "1.0.0"
    description: str = ""
    strict: bool = False
    resources: dict[str, _Resource] = Field(default_factory=dict)


# -- dump ----------------------------------------------------------------------


def _converter(function: Converter) -> dict[str, Any]:
    if function is identity:
        return {"identity": True}
    if isinstance(function, Evolution):
        return {"ops": function.to_json()}
    if isinstance(function, PythonConverter):
        return {"python": function.path}
    return {"python": import_path_of(function)}


def _converters(spec: EventSpec) -> list[dict[str, Any]]:
    found = []
    for table, step in ((spec.chain.up, 1), (spec.chain.down, -1)):
        for version, function in sorted(table.items()):
            at = spec.chain.versions.index(version) + step
            entry = {"from": version, "to": spec.chain.versions[at]}
            found.append({**entry, **_converter(function)})
    return found


def _event(spec: EventSpec) -> dict[str, Any]:
    versions = {
        str(v): {"payload": declared.payload.json_schema(), "examples": list(declared.examples)}
        for v, declared in spec.versions.items()
    }
    dumped: dict[str, Any] = {"kind": spec.kind, "description": spec.description}
    dumped["versions"] = versions
    dumped["converters"] = _converters(spec)
    return dumped


def _resource(resource: Resource) -> dict[str, Any]:
    transitions = None
    if resource.transitions is not None:
        transitions = {old: sorted(new) for old, new in resource.transitions.items()}
    return {
        "description": resource.description,
        "strict": resource.strict,
        "payload_mode": resource.payload_mode.value,
        "reference_url": resource.reference_url,
        "id_field": resource.id_field,
        "statuses": list(resource.statuses) if resource.status_enum is not None else None,
        "transitions": transitions,
        "dto": {str(v): dto.json_schema() for v, dto in resource.dtos.items()},
        "events": {name: _event(spec) for name, spec in resource.events.items()},
    }


def dump_catalog(catalog: Catalog) -> dict[str, Any]:
    """The whole catalog as a JSON value (see the module docstring)."""
    return {
        "eventwire_catalog": FORMAT_VERSION,
        "name": catalog.name,
        "title": catalog.title,
        "version": catalog.version,
        "description": catalog.description,
        "strict": catalog.strict,
        "resources": {name: _resource(r) for name, r in catalog.resources.items()},
    }


def dumps(catalog: Catalog) -> bytes:
    """:func:`dump_catalog` as indented JSON bytes."""
    return orjson.dumps(dump_catalog(catalog), option=orjson.OPT_INDENT_2) + b"\n"


# -- load ----------------------------------------------------------------------


def _payload(schema: dict[str, Any]) -> PayloadSchema:
    if schema.get("type") == "null" and set(schema) <= {"type", "description"}:
        return NullPayload(str(schema.get("description") or "must be null"))
    return JsonSchemaPayload(schema)


def _load_converter(link: _Converter, what: str, import_converters: bool) -> Converter:
    kinds = [k for k in ("identity", "ops", "python") if k in link.model_fields_set]
    if link.identity and kinds == ["identity"]:
        return identity
    if link.ops is not None and kinds == ["ops"]:
        try:
            return Evolution.from_json(link.ops)
        except CatalogError as exc:
            raise CatalogError(f"{what}: {exc}") from None
    if kinds in (["python"], ["identity"]):  # identity false: a Python converter of old
        if not import_converters:
            return PythonConverter(link.python)
        return PythonConverter.load(link.python, what)
    raise CatalogError(f"{what}: expected one of 'identity': true, 'ops' or 'python'")


def _load_resource(name: str, data: _Resource, import_converters: bool) -> Resource:
    resource = Resource(
        name,
        description=data.description,
        statuses=data.statuses,
        transitions=data.transitions,
        strict=data.strict,
        payload_mode=data.payload_mode,
        reference_url=data.reference_url,
    )
    resource.id_field = data.id_field
    resource.dtos = {v: _payload(schema) for v, schema in sorted(data.dto.items())}
    for event_name, event in data.events.items():
        for version, declared in sorted(event.versions.items()):
            resource.add_event(
                event_name,
                _payload(declared.payload),
                version=version,
                kind=event.kind,
                description=event.description,
                examples=declared.examples,
            )
        for link in event.converters:
            what = f"converter {name}.{event_name} {link.from_version} -> {link.to_version}"
            converter = _load_converter(link, what, import_converters)
            resource.add_converter(event_name, link.from_version, link.to_version, converter)
    return resource


def load_catalog_data(
    data: object, source: str = "catalog JSON", *, import_converters: bool = True
) -> Catalog:
    """A catalog from the JSON value :func:`dump_catalog` wrote.

    Python converters are imported by their path; one that cannot be is a
    CatalogLoadError saying why, so a gateway never starts without a
    converter its catalog declares. With ``import_converters=False``
    nothing is imported and those converters refuse to convert (for tools
    that read the catalog without delivering events). Raises
    CatalogLoadError naming every field that is wrong.
    """
    try:
        parsed = _File.model_validate(data)
    except ValidationError as exc:
        shown = "; ".join(f"{field}: {problem}" for field, problem in field_errors(exc))
        raise CatalogLoadError(f"{source} is not an eventwire catalog: {shown}") from None
    catalog = Catalog(
        parsed.name,
        title=parsed.title or None,
        version=parsed.version,
        description=parsed.description,
        strict=parsed.strict,
    )
    for name, resource in parsed.resources.items():
        try:
            catalog.add_resource(_load_resource(name, resource, import_converters))
        except CatalogError as exc:
            raise CatalogLoadError(f"{source}: {exc}") from None
    return catalog


def loads(
    text: bytes | str, source: str = "catalog JSON", *, import_converters: bool = True
) -> Catalog:
    """A catalog from JSON text (see :func:`load_catalog_data`)."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise CatalogLoadError(f"{source} is not valid JSON: {exc}") from None
    return load_catalog_data(data, source, import_converters=import_converters)
