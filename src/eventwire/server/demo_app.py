"""The back end of the /demo page: a gift list kept in memory that publishes its changes.

It is what an application beside the gateway does, in a few lines: change
state, then publish the seed's events for it, in-process. The page keeps
every open tab in sync from those events alone.

Routes (JSON)::

    GET    /demo/api/gifts                 the list, for a first load or a refetch
    POST   /demo/api/gifts                 {name, price?, url?, notes?} → ADDED (full DTO)
    PATCH  /demo/api/gifts/{id}            changed fields → UPDATED (merge patch; null removes
                                           an optional field, never the name)
    POST   /demo/api/gifts/{id}/purchase   {purchased_by} → STATUS_CHANGED, GIFT_PURCHASED
    DELETE /demo/api/gifts/{id}            → DELETED (payload null)

Every event it publishes is valid under the demo catalog
(``eventwire.demo:catalog``), which a demo gateway checks publishes against.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from eventwire.catalog import apply_merge_patch
from eventwire.codes import ErrorCode
from eventwire.envelope import field_errors, format_timestamp, utc_now
from eventwire.errors import ProtocolError, ValidationFailed

if TYPE_CHECKING:
    from eventwire.server.gateway import Gateway
    from eventwire.server.http_api import HttpRequest, HttpResponse

__all__ = ["DEMO_LIST_TOPIC", "DemoApp"]

DEMO_LIST_TOPIC = "gift-list:family"
_PREFIX = "/demo/api/gifts"


class _NewGift(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    price: float | None = Field(None, ge=0)
    url: str | None = Field(None, max_length=2000)
    notes: str | None = Field(None, max_length=2000)


class _GiftChanges(BaseModel):
    """A merge patch of a gift: a field left out stays, ``null`` removes an optional one."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    price: float | None = Field(None, ge=0)
    url: str | None = Field(None, max_length=2000)
    notes: str | None = Field(None, max_length=2000)

    @field_validator("name")
    @classmethod
    def _name_stays(cls, name: str | None) -> str:
        if name is None:  # only an explicit null gets here: defaults are not validated
            raise ValueError("a gift always has a name; null would remove it")
        return name


class _Purchase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purchased_by: str = Field(min_length=1, max_length=256)


def _parse(model: type[BaseModel], body: bytes) -> Any:
    try:
        return model.model_validate(orjson.loads(body or b"{}"))
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(ErrorCode.INVALID_JSON, f"invalid JSON: {exc}") from None
    except ValidationError as exc:
        raise ValidationFailed(field_errors(exc)) from None


class DemoApp:
    """A gift list in memory; every change is published to ``gift-list:family``."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._gifts: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def handles(self, path: str) -> bool:
        return path == _PREFIX or path.startswith(_PREFIX + "/")

    async def handle(self, request: HttpRequest) -> HttpResponse:
        from eventwire.server.http_api import HttpResponse

        rest = request.path.removeprefix(_PREFIX).strip("/").split("/")
        match request.method, rest:
            case "GET", [""]:
                return HttpResponse.json({"gifts": list(self._gifts.values())})
            case "POST", [""]:
                return HttpResponse.json(await self._add(_parse(_NewGift, request.body)), 201)
            case "PATCH", [gift_id]:
                changes = _parse(_GiftChanges, request.body)
                return HttpResponse.json(await self._update(gift_id, changes))
            case "POST", [gift_id, "purchase"]:
                purchase = _parse(_Purchase, request.body)
                return HttpResponse.json(await self._purchase(gift_id, purchase.purchased_by))
            case "DELETE", [gift_id]:
                await self._delete(gift_id)
                return HttpResponse.json({"deleted": gift_id})
        raise ProtocolError(ErrorCode.NOT_FOUND, f"no demo route {request.method} {request.path}")

    async def _add(self, new: _NewGift) -> dict[str, Any]:
        now = format_timestamp(utc_now())
        gift_id = f"gift-{next(self._ids)}"
        gift = {"id": gift_id, **new.model_dump(exclude_none=True), "status": "available"}
        gift |= {"created_at": now, "updated_at": now}
        await self._publish("ADDED", gift_id, gift)  # refused by the catalog: nothing kept
        self._gifts[gift_id] = gift
        return gift

    async def _update(self, gift_id: str, changes: _GiftChanges) -> dict[str, Any]:
        gift = self._get(gift_id)
        patch = changes.model_dump(exclude_unset=True)
        patch["updated_at"] = format_timestamp(utc_now())
        await self._publish("UPDATED", gift_id, patch)  # partial: only what changed
        updated: dict[str, Any] = apply_merge_patch(gift, patch)  # as every client does
        self._gifts[gift_id] = updated
        return updated

    async def _purchase(self, gift_id: str, buyer: str) -> dict[str, Any]:
        gift = self._get(gift_id)
        old = gift["status"]
        if old == "purchased":
            raise ValidationFailed([("status", "already purchased")])
        gift |= {"status": "purchased", "updated_at": format_timestamp(utc_now())}
        change = {
            "id": gift_id,
            "old_status": old,
            "new_status": "purchased",
            "purchased_by": buyer,
        }
        await self._publish("STATUS_CHANGED", gift_id, change)
        await self._publish("GIFT_PURCHASED", gift_id, {"id": gift_id, "purchased_by": buyer})
        return gift

    async def _delete(self, gift_id: str) -> None:
        self._get(gift_id)
        del self._gifts[gift_id]
        await self._publish("DELETED", gift_id, None)

    def _get(self, gift_id: str) -> dict[str, Any]:
        gift = self._gifts.get(gift_id)
        if gift is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"no gift {gift_id!r}", {"id": gift_id})
        return gift

    async def _publish(self, event: str, gift_id: str, payload: Any) -> None:
        data = {"entity_id": gift_id, "payload": payload, "user_id": "demo"}
        await self._gateway.publish({"topic": DEMO_LIST_TOPIC, "event": event, "data": data})
