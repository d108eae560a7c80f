"""Validating published events against a catalog: every failed field named, as in the seed."""

from __future__ import annotations

import pytest

from eventwire.catalog import Catalog
from eventwire.codes import ErrorCode
from eventwire.envelope import decode_new_event
from eventwire.errors import ValidationFailed

from .helpers import GIFT, Gift, GiftStatus, errors_of, event, gift_catalog


@pytest.fixture
def catalog() -> Catalog:
    return gift_catalog()


def fields(errors: list[tuple[str, str]]) -> dict[str, str]:
    return dict(errors)


def test_valid_events_of_every_kind_pass(catalog: Catalog) -> None:
    status = {"id": "gift-456", "old_status": "available", "new_status": "purchased"}
    for raw in (
        event("ADDED", GIFT),
        event("UPDATED", GIFT),
        event("UPDATED", {"name": "Updated Gift", "updated_at": "2023-01-02T00:00:00Z"}),
        event("DELETED", None),
        event("STATUS_CHANGED", {**status, "purchased_by": "user-789"}),
        event("GIFT_PURCHASED", {"id": "gift-456", "purchased_by": "user-789"}),
    ):
        assert errors_of(catalog, raw) == [], raw


def test_the_details_are_the_seeds_error_example_for_every_field(catalog: Catalog) -> None:
    payload = {k: v for k, v in GIFT.items() if k not in ("name", "status")}
    with pytest.raises(ValidationFailed) as info:
        catalog.validate(decode_new_event(event("ADDED", payload)))
    error = info.value
    assert error.code is ErrorCode.VALIDATION_ERROR
    assert error.details["field"] == "data.payload.name"
    assert error.details["error"] == "required"
    assert error.details["errors"] == [
        {"field": "data.payload.name", "error": "required"},
        {"field": "data.payload.status", "error": "required"},
    ]
    assert error.to_payload()["code"] == "VALIDATION_ERROR"


def test_added_names_every_failed_field(catalog: Catalog) -> None:
    payload = {**GIFT, "price": "29.99", "status": "lost", "color": "red"}
    del payload["created_at"]
    found = fields(errors_of(catalog, event("ADDED", payload)))
    assert found == {
        "data.payload.price": "Input should be a valid number",
        "data.payload.status": "Input should be 'available' or 'purchased'",
        "data.payload.created_at": "required",
        "data.payload.color": "unknown field",
    }


def test_the_dto_id_must_be_the_entity_id(catalog: Catalog) -> None:
    found = errors_of(catalog, event("ADDED", GIFT, entity_id="gift-999"))
    assert found == [("data.payload.id", "must equal data.entity_id ('gift-999')")]


def test_a_partial_update_is_checked_as_a_merge_patch_of_the_dto(catalog: Catalog) -> None:
    ok = {"price": None, "notes": None, "name": "New name"}  # null removes an optional field
    assert errors_of(catalog, event("UPDATED", ok)) == []
    bad = {"name": None, "price": "cheap", "status": "gone", "colour": "red"}
    assert fields(errors_of(catalog, event("UPDATED", bad))) == {
        "data.payload.name": "Input should be a valid string",
        "data.payload.price": "Input should be a valid number",
        "data.payload.status": "Input should be 'available' or 'purchased'",
        "data.payload.colour": "unknown field",
    }


def test_status_changed_refuses_unknown_statuses(catalog: Catalog) -> None:
    payload = {"id": "gift-456", "old_status": "available", "new_status": "stolen"}
    assert errors_of(catalog, event("STATUS_CHANGED", payload)) == [
        ("data.payload.new_status", "Input should be 'available' or 'purchased'")
    ]


def test_status_changed_refuses_transitions_not_declared(catalog: Catalog) -> None:
    payload = {"id": "gift-456", "old_status": "available", "new_status": "available"}
    assert errors_of(catalog, event("STATUS_CHANGED", payload)) == [
        (
            "data.payload.new_status",
            "'available' -> 'available' is not an allowed transition; from 'available':"
            " 'purchased'",
        )
    ]


def test_status_changed_names_every_field(catalog: Catalog) -> None:
    payload = {"id": "gift-1", "old_status": "sold", "purchased_by": 7}
    assert fields(errors_of(catalog, event("STATUS_CHANGED", payload))) == {
        "data.payload.old_status": "Input should be 'available' or 'purchased'",
        "data.payload.new_status": "required",
        "data.payload.purchased_by": "Input should be a valid string",
        "data.payload.id": "must equal data.entity_id ('gift-456')",
    }


def test_a_final_status_allows_no_transition() -> None:
    catalog = Catalog("c")
    catalog.resource(
        "gift-list", Gift, statuses=GiftStatus, transitions={"available": ["purchased"]}
    )
    payload = {"id": "gift-456", "old_status": "purchased", "new_status": "available"}
    assert errors_of(catalog, event("STATUS_CHANGED", payload)) == [
        ("data.payload.new_status", "'purchased' is final: no transition from it is allowed")
    ]


def test_without_transitions_any_status_change_passes() -> None:
    catalog = Catalog("c")
    catalog.resource("gift-list", Gift, statuses=GiftStatus)
    payload = {"id": "gift-456", "old_status": "purchased", "new_status": "purchased"}
    assert errors_of(catalog, event("STATUS_CHANGED", payload)) == []


@pytest.mark.parametrize("payload", [{}, GIFT, "gift-456", 0, False])
def test_deleted_payload_must_be_null(catalog: Catalog, payload: object) -> None:
    assert errors_of(catalog, event("DELETED", payload)) == [
        ("data.payload", "must be null: DELETED carries no payload")
    ]


def test_custom_events_are_checked_against_their_model(catalog: Catalog) -> None:
    found = errors_of(catalog, event("GIFT_PURCHASED", {"id": 4}))
    assert fields(found) == {
        "data.payload.id": "Input should be a valid string",
        "data.payload.purchased_by": "required",
    }
    assert fields(errors_of(catalog, event("GIFT_PURCHASED", None))) == {
        "data.payload": "Input should be an object"
    }


def test_a_strict_resource_refuses_undeclared_event_types() -> None:
    catalog = gift_catalog(strict=True)
    (field, problem), *_ = errors_of(catalog, event("GIFT_WRAPPED", {"id": "x"}))
    assert field == "event"
    assert problem.startswith("GIFT_WRAPPED is not declared for gift-list; declared: ADDED")


def test_an_open_resource_accepts_undeclared_types_and_checks_declared_ones() -> None:
    catalog = gift_catalog(strict=False)
    assert errors_of(catalog, event("GIFT_WRAPPED", {"anything": [1, 2]})) == []
    assert errors_of(catalog, event("DELETED", {"not": "null"})) != []


def test_unknown_resources_pass_an_open_catalog_and_fail_a_strict_one() -> None:
    raw = event("ADDED", {"id": "x"}, topic="order:789")
    assert errors_of(gift_catalog(catalog_strict=False), raw) == []
    assert errors_of(gift_catalog(catalog_strict=True), raw) == [
        ("topic", "no resource type 'order' in the catalog; declared: gift-list")
    ]


def test_the_version_must_be_declared(catalog: Catalog) -> None:
    assert errors_of(catalog, event("DELETED", None, version=2)) == [
        ("version", "gift-list.DELETED has no version 2; declared: 1")
    ]


def test_a_tenant_prefix_names_the_same_resource(catalog: Catalog) -> None:
    raw = event("DELETED", {}, topic="tenant:acme:gift-list:123")
    assert errors_of(catalog, raw) == [("data.payload", "must be null: DELETED carries no payload")]


def test_pydantic_payloads_published_in_process_are_checked(catalog: Catalog) -> None:
    gift = Gift.model_validate(GIFT)
    checked = decode_new_event(event("ADDED", gift))
    declared = catalog.validate(checked)
    assert declared is not None
    assert declared.version == 1


def test_validate_returns_none_for_events_let_through() -> None:
    catalog = gift_catalog(strict=False)
    assert catalog.validate(decode_new_event(event("GIFT_WRAPPED", None))) is None


def test_the_encoded_payload_is_what_is_checked(catalog: Catalog) -> None:
    checked = decode_new_event(event("DELETED", None))
    with pytest.raises(ValidationFailed):
        catalog.validate(checked, payload_json=b'{"smuggled": true}')
