"""Identity: placeholders filled once, patterns validated, never widened."""

from __future__ import annotations

import pytest

from eventwire.auth import Grants, Identity, expand_pattern
from eventwire.auth.patterns import expand_patterns, validate_grant


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("user:{user_id}:*", "user:u1:*"),
        ("tenant:{tenant_id}:gift-list:*", "tenant:acme:gift-list:*"),
        ("inbox:{tenant_id}-{user_id}", "inbox:acme-u1"),
        ("gift-list:*", "gift-list:*"),
        ("{user_id}:x", "u1:x"),
    ],
)
def test_placeholders_are_filled(pattern: str, expected: str) -> None:
    assert expand_pattern(pattern, {"user_id": "u1", "tenant_id": "acme"}) == expected


@pytest.mark.parametrize(
    ("user_id", "why"),
    [
        (None, "no value"),
        ("*", "a wildcard would widen the grant to every user"),
        ("a:b", "a second segment would move the grant"),
        ("Alice", "not a topic segment"),
        ("", "empty"),
        ("a b", "not a topic segment"),
    ],
)
def test_unsafe_values_drop_the_pattern(user_id: str | None, why: str) -> None:
    assert expand_pattern("user:{user_id}:*", {"user_id": user_id}) is None, why


@pytest.mark.parametrize(
    "pattern",
    ["user:{name}:*", "user:{user_id", "user:{{user_id}}", "user:{}", "bad pattern", "a"],
)
def test_unknown_or_broken_placeholders_drop_the_pattern(pattern: str) -> None:
    assert expand_pattern(pattern, {"user_id": "u1", "tenant_id": "t"}) is None


def test_a_value_that_makes_the_pattern_invalid_drops_it() -> None:
    # The first segment must start with a letter.
    assert expand_pattern("{user_id}:inbox", {"user_id": "42"}) is None


def test_expand_patterns_keeps_order_and_removes_duplicates() -> None:
    kept, dropped = expand_patterns(
        ["a:{user_id}", "b:*", "a:u1", "c:{tenant_id}", "c:{tenant_id}"],
        {"user_id": "u1", "tenant_id": None},
    )
    assert kept == ("a:u1", "b:*")
    assert dropped == ("c:{tenant_id}",)


def test_build_expands_once_and_compiles() -> None:
    identity = Identity.build(
        "u1",
        None,
        subscribe=["user:{user_id}:*", "tenant:{tenant_id}:*", "gift-list:*"],
        publish=["room:{user_id}"],
    )
    assert identity.subscribe == ("user:u1:*", "gift-list:*")
    assert identity.publish == ("room:u1",)
    assert identity.dropped == ("tenant:{tenant_id}:*",)
    assert identity.subscribe_grants.allows("user:u1:notifications")
    assert identity.subscribe_grants.allows("gift-list:123")
    assert not identity.subscribe_grants.allows("user:u2:notifications")
    assert identity.publish_grants.allows("room:u1")


def test_identity_refuses_unexpanded_or_invalid_patterns() -> None:
    with pytest.raises(Exception, match="invalid topic"):
        Identity("u1", subscribe=("user:{user_id}:*",))


def test_identities_compare_by_value() -> None:
    a = Identity.build("u1", "acme", ["x:{user_id}"])
    b = Identity.build("u1", "acme", ["x:u1"])
    assert a == b
    assert hash(a) == hash(b)
    assert a.subscribe_grants == b.subscribe_grants


def test_expiry() -> None:
    identity = Identity("u1", expires_at=100.0)
    assert identity.expires_in(40.0) == 60.0
    assert not identity.expired(99.9)
    assert identity.expired(100.0)
    assert Identity("u1").expires_in(0.0) is None


def test_same_principal() -> None:
    one = Identity.build("u1", "acme", ["a:b"])
    assert one.same_principal(Identity.build("u1", "acme", ["c:d"], admin=True))
    assert not one.same_principal(Identity.build("u2", "acme"))
    assert not one.same_principal(Identity.build("u1", "globex"))
    assert not Identity(None, anonymous=True).same_principal(Identity(None))


def test_global_admin() -> None:
    assert Identity("ops", admin=True).global_admin
    assert not Identity("boss", "acme", admin=True).global_admin
    assert not Identity("u1").global_admin


def test_grants() -> None:
    grants = Grants(["room:*", "room:*", "user:1"])
    assert len(grants) == 2
    assert grants.allows("room:lobby:messages")
    assert not grants.allows("rooms:lobby")
    assert not Grants().allows("room:1")
    assert not Grants()
    assert Grants(["a:b", "c:d"]) == Grants(["c:d", "a:b"])
    assert "room:*" in repr(grants)


def test_validate_grant() -> None:
    assert validate_grant("user:{user_id}:*") == "user:{user_id}:*"
    with pytest.raises(ValueError, match="unknown placeholder"):
        validate_grant("user:{uid}:*")
    with pytest.raises(ValueError, match="not a topic pattern"):
        validate_grant("user:{user_id}:")
