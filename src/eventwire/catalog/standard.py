"""The payload models of the seed's standard events, derived from a resource's DTO.

- ``ADDED``: the full DTO.
- ``UPDATED``: the full DTO, or a partial of it (the seed's "changed fields
  only"), which is an RFC 7396 JSON merge patch: every field optional, and
  ``null`` allowed where the DTO may lack the field (``null`` removes it).
- ``DELETED``: ``null`` (the seed: "No payload needed for delete").
- ``STATUS_CHANGED``: ``{id, old_status, new_status, ...}``, with the statuses
  as an enum and the resource's extra fields (the seed's ``purchased_by``).
"""

from __future__ import annotations

import enum
import types
from collections.abc import Iterable
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, create_model

from eventwire.catalog.errors import CatalogError

__all__ = ["STANDARD_EVENTS", "patch_model", "status_enum", "status_model"]

STANDARD_EVENTS = ("ADDED", "UPDATED", "DELETED", "STATUS_CHANGED")
"""The seed's CRUD and status events, which a resource's DTO defines at once."""

_patches: dict[type[BaseModel], type[BaseModel]] = {}
_building: set[type[BaseModel]] = set()


def _nested_patch(annotation: Any) -> Any:
    """A nested model becomes its own patch: merge patches apply recursively."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation if annotation in _building else patch_model(annotation)
    if get_origin(annotation) in (Union, types.UnionType):
        members = tuple(_nested_patch(member) for member in get_args(annotation))
        return Union[members]  # noqa: UP007 - built from a runtime tuple
    return annotation


def patch_model(model: type[BaseModel]) -> type[BaseModel]:
    """The model of a partial ``model``: an RFC 7396 merge patch of its JSON.

    Every field becomes optional. ``null`` is accepted only for fields the
    DTO may lack (optional or defaulted): in a merge patch ``null`` removes
    the field, which a required field cannot be. Constraints, aliases and the
    handling of unknown fields are kept; the DTO's validators are not.
    """
    cached = _patches.get(model)
    if cached is not None:
        return cached
    _building.add(model)
    try:
        fields: dict[str, Any] = {}
        for name, info in model.model_fields.items():
            annotation = _nested_patch(info.annotation)
            if info.metadata:
                annotation = Annotated[annotation, *info.metadata]
            if not info.is_required():
                annotation = annotation | None
            field = Field(None, alias=info.alias, description=info.description)
            fields[name] = (annotation, field)
        config = ConfigDict(extra=model.model_config.get("extra") or "ignore")
        patch: type[BaseModel] = create_model(
            f"{model.__name__}Patch",
            __config__=config,
            __doc__=f"A partial {model.__name__}: an RFC 7396 JSON merge patch of it.",
            **fields,
        )
    finally:
        _building.discard(model)
    _patches[model] = patch
    return patch


def status_enum(resource: str, statuses: type[enum.Enum] | Iterable[str]) -> type[enum.Enum]:
    """The statuses as a string Enum (an Enum class of strings is used as is)."""
    if isinstance(statuses, type) and issubclass(statuses, enum.Enum):
        if not all(isinstance(member.value, str) for member in statuses):
            raise CatalogError(f"{resource}: the values of {statuses.__name__} must be strings")
        return statuses
    values = list(statuses)
    if not values or not all(isinstance(v, str) and v for v in values):
        raise CatalogError(f"{resource}: statuses must be a non-empty list of strings")
    if len(set(values)) != len(values):
        raise CatalogError(f"{resource}: statuses are listed twice: {values}")
    name = "".join(part.capitalize() for part in resource.split("-")) + "Status"
    return enum.StrEnum(name, {v.upper().replace("-", "_"): v for v in values})  # type: ignore[return-value]


def status_model(
    resource: str, statuses: type[enum.Enum], extra: type[BaseModel] | None
) -> type[BaseModel]:
    """STATUS_CHANGED's payload: ``{id, old_status, new_status}`` plus ``extra``'s fields."""
    name = "".join(part.capitalize() for part in resource.split("-")) + "StatusChanged"
    taken = {"id", "old_status", "new_status"} & set((extra or BaseModel).model_fields)
    if taken:
        raise CatalogError(f"{resource}: status_payload may not redefine {sorted(taken)}")
    fields: dict[str, Any] = {
        "id": (str, Field(min_length=1, description="the entity whose status changed")),
        "old_status": (statuses, Field(description="the status before")),
        "new_status": (statuses, Field(description="the status after")),
    }
    if extra is None:
        return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)
    # The seed's three fields first, then the extras (Pydantic orders fields by reversed MRO).
    base = create_model(f"_{name}Base", __config__=ConfigDict(extra="forbid"), **fields)
    model: type[BaseModel] = create_model(name, __base__=(extra, base))
    return model
