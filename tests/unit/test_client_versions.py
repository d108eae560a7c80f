"""The client's version declarations: checked where written, the connection's under each own."""

from __future__ import annotations

import re

import pytest

from eventwire.client import Client, VersionsConflict
from eventwire.client.versions import (
    FROM_CONNECTION,
    check_versions,
    subscription_versions,
    versions_key,
)
from eventwire.errors import ClientError

ROOMS_V2 = {"room.*": [2]}


def test_a_declaration_is_kept_in_one_canonical_form() -> None:
    checked = check_versions({"room.*": (2, 1, 2), "*": [1]})
    assert checked == {"*": [1], "room.*": [1, 2]}
    assert list(checked) == ["*", "room.*"]
    assert versions_key(checked) == versions_key({"room.*": [1, 2], "*": [1]})
    assert versions_key(None) == ""


def test_a_malformed_declaration_names_every_bad_key() -> None:
    with pytest.raises(ValueError, match="versions") as refused:
        check_versions({"room.message": [1], "*": [0], "gift-list.*": []})
    message = str(refused.value)
    assert "versions.room.message: the event type must be UPPER_SNAKE_CASE" in message
    assert "versions.*: expected a non-empty list" in message
    assert "versions.gift-list.*: expected a non-empty list" in message
    with pytest.raises(ValueError, match="event keys"):
        check_versions([("*", [1])])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=re.escape("versions.*: expected")):
        check_versions({"*": [True]})  # a bool is no version


def test_a_subscription_goes_over_the_connection_key_by_key() -> None:
    connection = check_versions({"*": [1], "room.*": [1]})
    merged = subscription_versions(connection, ROOMS_V2)
    assert merged == {"*": [1], "room.*": [2]}
    assert connection == {"*": [1], "room.*": [1]}  # untouched


def test_left_out_takes_the_connection_and_none_reads_as_published() -> None:
    connection = check_versions({"*": [1]})
    assert subscription_versions(connection, FROM_CONNECTION) == {"*": [1]}
    assert subscription_versions(None, FROM_CONNECTION) is None
    assert subscription_versions(connection, None) is None
    assert subscription_versions(None, ROOMS_V2) == {"room.*": [2]}


def test_a_subscription_declaration_is_checked_too() -> None:
    with pytest.raises(ValueError, match=re.escape("versions.Room.*")):
        subscription_versions(None, {"Room.*": [1]})


def test_the_client_refuses_a_malformed_connection_declaration_at_once() -> None:
    with pytest.raises(ValueError, match=re.escape("versions.*: expected a non-empty list")):
        Client("ws://127.0.0.1:1/ws", versions={"*": []})


def test_a_conflict_is_a_client_error_saying_both_declarations() -> None:
    conflict = VersionsConflict("room:lobby", {"*": [1]}, None)
    assert isinstance(conflict, ClientError)
    assert conflict.code == "VERSIONS_CONFLICT"
    assert (conflict.topic, conflict.held, conflict.declared) == ("room:lobby", {"*": [1]}, None)
    assert "{'*': [1]}" in str(conflict)
    assert "none (as published)" in str(conflict)
