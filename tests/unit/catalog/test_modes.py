"""Payload modes: full, partial, reference and the 10 KB auto policy."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from eventwire.catalog import FULL_DTO_LIMIT, PayloadMode, update_payload

from .helpers import GIFT, Gift, errors_of, event, gift_catalog

AFTER = {**GIFT, "name": "Updated Gift", "updated_at": "2023-01-03T00:00:00Z"}
PATCH = {"name": "Updated Gift", "updated_at": "2023-01-03T00:00:00Z"}


def test_full_mode_refuses_a_partial_update() -> None:
    catalog = gift_catalog(mode="full")
    assert errors_of(catalog, event("UPDATED", AFTER)) == []
    assert ("data.payload.id", "required") in errors_of(catalog, event("UPDATED", PATCH))


@pytest.mark.parametrize("mode", ["partial", "auto"])
def test_partial_modes_accept_a_full_dto_or_a_patch(mode: str) -> None:
    catalog = gift_catalog(mode=mode)
    assert errors_of(catalog, event("UPDATED", AFTER)) == []
    assert errors_of(catalog, event("UPDATED", PATCH)) == []
    assert errors_of(catalog, event("ADDED", PATCH)) != []  # ADDED is always the full DTO


def test_reference_mode_sends_null_for_the_client_to_fetch() -> None:
    catalog = gift_catalog(mode="reference")
    for name in ("ADDED", "UPDATED"):
        assert errors_of(catalog, event(name, None)) == []
        assert errors_of(catalog, event(name, AFTER)) == [
            ("data.payload", "must be null: this resource sends references only")
        ]
    assert catalog.resources["gift-list"].reference("gift-456") == "/api/gifts/gift-456"


def test_update_payload_per_mode() -> None:
    assert update_payload(GIFT, AFTER, "full") == AFTER
    assert update_payload(GIFT, AFTER, "partial") == PATCH
    assert update_payload(GIFT, AFTER, PayloadMode.REFERENCE) is None
    assert update_payload(GIFT, AFTER, "auto") == AFTER  # small: the full DTO


def test_update_payload_takes_models() -> None:
    before, after = Gift.model_validate(GIFT), Gift.model_validate(AFTER)
    assert update_payload(before, after, "partial") == {
        "name": "Updated Gift",
        "updated_at": "2023-01-03T00:00:00Z",
    }


def _sized(total: int) -> dict[str, Any]:
    """A DTO whose JSON is exactly ``total`` bytes."""
    base = {**GIFT, "notes": ""}
    filler = total - len(orjson.dumps(base))
    return {**base, "notes": "x" * filler}


def test_auto_sends_the_full_dto_up_to_10_kib_of_event_then_a_patch() -> None:
    overhead = 200  # the rest of the encoded event
    at_limit = _sized(FULL_DTO_LIMIT - overhead)
    assert update_payload(GIFT, at_limit, "auto", overhead=overhead) == at_limit
    over = _sized(FULL_DTO_LIMIT - overhead + 1)
    patch = update_payload(GIFT, over, "auto", overhead=overhead)
    assert patch == {"notes": over["notes"]}


def test_the_resource_applies_its_own_mode() -> None:
    gifts = gift_catalog(mode="partial").resources["gift-list"]
    assert gifts.update_payload(GIFT, AFTER) == PATCH
    catalog = gift_catalog(mode="auto")
    big = _sized(FULL_DTO_LIMIT + 1)
    payload = catalog.resources["gift-list"].update_payload(GIFT, big)
    assert payload == {"notes": big["notes"]}
    assert errors_of(catalog, event("UPDATED", payload)) == []
