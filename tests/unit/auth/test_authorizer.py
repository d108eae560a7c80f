"""Authorizer: grants, tenant in topic and in data, admin patterns, policy, revocation."""

from __future__ import annotations

import pytest

from eventwire.auth import (
    Action,
    AuthClose,
    AuthCode,
    AuthConfigError,
    AuthError,
    Authorizer,
    Identity,
    RevokeRequest,
    can_receive,
    load_policy,
    tenant_allows,
    topic_tenant,
)
from tests.unit.auth.helpers import hs_settings

USER = Identity.build("u1", "acme", ["gift-list:*", "user:{user_id}:*", "tenant:{tenant_id}:*"])
NO_TENANT = Identity.build("u2", None, ["gift-list:*", "tenant:acme:*"])
TENANT_ADMIN = Identity.build("boss", "acme", admin=True)
GLOBAL_ADMIN = Identity.build("ops", None, admin=True)
ANONYMOUS = Identity.build(None, None, ["public:*"], anonymous=True)


@pytest.fixture
def authorizer() -> Authorizer:
    return Authorizer(client_publishable=["MESSAGE_SENT"])


# -- grants -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "allowed"),
    [
        ("gift-list:123", True),
        ("gift-list:123:items", True),
        ("user:u1:notifications", True),
        ("user:u2:notifications", False),
        ("tenant:acme:gift-list:1", True),
        ("order:1", False),
        ("gift-list", False),  # not a topic
        ("system:anything", False),  # reserved
        ("gift-list:*", False),  # patterns are for admins
    ],
)
def test_subscribe_by_grants(authorizer: Authorizer, topic: str, allowed: bool) -> None:
    assert authorizer.can_subscribe(USER, topic) is allowed


def test_refusals_all_look_the_same(authorizer: Authorizer) -> None:
    """A refusal names only the topic the client sent: no reason, no hint of existence."""
    errors = []
    for topic in ("order:1", "tenant:globex:x", "gift-list:*"):
        with pytest.raises(AuthError) as info:
            authorizer.check_subscribe(USER, topic)
        errors.append(info.value)
    assert {(e.code, e.message) for e in errors} == {(AuthCode.FORBIDDEN, "not allowed")}
    assert [e.details for e in errors] == [
        {"topic": "order:1"},
        {"topic": "tenant:globex:x"},
        {"topic": "gift-list:*"},
    ]
    assert errors[0].http_status == 403
    authorizer.check_subscribe(USER, "gift-list:1")  # no raise


def test_anonymous_has_only_its_grants(authorizer: Authorizer) -> None:
    assert authorizer.can_subscribe(ANONYMOUS, "public:news")
    assert not authorizer.can_subscribe(ANONYMOUS, "gift-list:1")
    assert not authorizer.can_subscribe(ANONYMOUS, "tenant:acme:x")


# -- tenant in topic --------------------------------------------------------------------


def test_topic_tenant() -> None:
    assert topic_tenant("tenant:acme:gift-list:1") == "acme"
    assert topic_tenant("tenant:acme") == "acme"
    assert topic_tenant("gift-list:1") is None
    assert topic_tenant("tenants:acme:x") is None


def test_tenant_topics_only_for_their_tenant(authorizer: Authorizer) -> None:
    assert authorizer.can_subscribe(USER, "tenant:acme:x")
    assert not authorizer.can_subscribe(USER, "tenant:globex:x")
    # A grant that names another tenant does not open it: the rule is a floor.
    wide = Identity.build("u1", "acme", ["tenant:*"])
    assert not authorizer.can_subscribe(wide, "tenant:globex:x")
    assert authorizer.can_subscribe(wide, "tenant:acme:x")
    # No tenant: no tenant topic, whatever the token says.
    assert not authorizer.can_subscribe(NO_TENANT, "tenant:acme:x")
    assert authorizer.can_subscribe(NO_TENANT, "gift-list:1")


def test_tenant_topics_for_publish_too() -> None:
    authorizer = Authorizer(client_publishable=["MESSAGE_SENT"])
    writer = Identity.build("u1", "acme", publish=["tenant:*", "room:*"])
    assert authorizer.can_publish(writer, "tenant:acme:room:1", "MESSAGE_SENT")
    assert not authorizer.can_publish(writer, "tenant:globex:room:1", "MESSAGE_SENT")
    assert authorizer.can_publish(writer, "room:1", "MESSAGE_SENT")


def test_tenant_admin_stays_in_its_tenant(authorizer: Authorizer) -> None:
    assert authorizer.can_subscribe(TENANT_ADMIN, "tenant:acme:anything")
    assert authorizer.can_subscribe(TENANT_ADMIN, "order:1")
    assert not authorizer.can_subscribe(TENANT_ADMIN, "tenant:globex:anything")


def test_global_admin_crosses_tenants(authorizer: Authorizer) -> None:
    assert authorizer.can_subscribe(GLOBAL_ADMIN, "tenant:globex:anything")
    assert authorizer.can_subscribe(GLOBAL_ADMIN, "*")


# -- admin patterns ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "tenant_admin", "global_admin"),
    [
        ("gift-list:*", True, True),
        ("tenant:acme:*", True, True),
        ("tenant:globex:*", False, True),
        ("tenant:*", False, True),
        ("tenant:*:orders", False, True),
        ("*:messages", False, True),  # '*' can stand for 'tenant:globex'
        ("*", False, True),
        ("system:*", False, False),
        ("gift-list:*:", False, False),
    ],
)
def test_admin_patterns(
    authorizer: Authorizer, pattern: str, tenant_admin: bool, global_admin: bool
) -> None:
    assert authorizer.can_subscribe(TENANT_ADMIN, pattern) is tenant_admin
    assert authorizer.can_subscribe(GLOBAL_ADMIN, pattern) is global_admin
    assert not authorizer.can_subscribe(USER, pattern)


def test_tenant_allows_directly() -> None:
    assert tenant_allows(USER, "gift-list:*")
    assert not tenant_allows(USER, "*:x")
    assert not tenant_allows(NO_TENANT, "tenant:acme")


# -- tenant in data ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("identity", "untagged", "acme", "globex"),
    [
        (USER, True, True, False),
        (NO_TENANT, True, False, False),
        (ANONYMOUS, True, False, False),
        (TENANT_ADMIN, True, True, False),
        (GLOBAL_ADMIN, True, True, True),
    ],
)
def test_tenant_in_data(identity: Identity, untagged: bool, acme: bool, globex: bool) -> None:
    assert can_receive(identity, None) is untagged
    assert can_receive(identity, "acme") is acme
    assert Authorizer.can_receive(identity, "globex") is globex


# -- client publishing ------------------------------------------------------------------


def test_publish_needs_grant_and_publishable_type(authorizer: Authorizer) -> None:
    writer = Identity.build("u1", "acme", publish=["room:*"])
    assert authorizer.client_publishing
    assert authorizer.can_publish(writer, "room:lobby", "MESSAGE_SENT")
    assert not authorizer.can_publish(writer, "room:lobby", "DELETED")
    assert not authorizer.can_publish(writer, "order:1", "MESSAGE_SENT")
    assert not authorizer.can_publish(writer, "room:*", "MESSAGE_SENT")
    assert not authorizer.can_publish(writer, "system:x", "MESSAGE_SENT")
    # Subscribe grants are not publish grants.
    assert not authorizer.can_publish(USER, "gift-list:1", "MESSAGE_SENT")
    with pytest.raises(AuthError) as info:
        authorizer.check_publish(writer, "order:1", "MESSAGE_SENT")
    assert info.value.details == {"topic": "order:1"}
    authorizer.check_publish(writer, "room:1", "MESSAGE_SENT")


def test_admin_publishes_anywhere_but_only_publishable_types(authorizer: Authorizer) -> None:
    assert authorizer.can_publish(GLOBAL_ADMIN, "order:1", "MESSAGE_SENT")
    assert not authorizer.can_publish(GLOBAL_ADMIN, "order:1", "DELETED")


def test_no_publishable_types_means_no_client_publishing() -> None:
    authorizer = Authorizer()
    assert not authorizer.client_publishing
    assert not authorizer.can_publish(GLOBAL_ADMIN, "room:1", "MESSAGE_SENT")


def test_publisher_fields_overwrite_both_ids() -> None:
    assert Authorizer.publisher_fields(USER) == {"user_id": "u1", "tenant_id": "acme"}
    assert Authorizer.publisher_fields(ANONYMOUS) == {"user_id": None, "tenant_id": None}


# -- policy -----------------------------------------------------------------------------

CALLS: list[tuple[str | None, Action, str]] = []


def secret_policy(identity: Identity, action: Action, topic: str) -> bool | None:
    """Refuse 'secret' topics, open 'lobby' topics to everyone, no opinion otherwise."""
    CALLS.append((identity.user_id, action, topic))
    if topic.startswith("secret:"):
        return False
    if topic.startswith("lobby:"):
        return True
    return None


def broken_policy(identity: Identity, action: Action, topic: str) -> bool | None:
    raise RuntimeError("bug")


def sloppy_policy(identity: Identity, action: Action, topic: str) -> object:
    return "yes"


def test_policy_can_refuse_grant_or_pass() -> None:
    authorizer = Authorizer(policy=secret_policy, client_publishable=["MESSAGE_SENT"])
    holder = Identity.build("u1", None, ["secret:*", "gift-list:*"], ["lobby:*"])
    assert not authorizer.can_subscribe(holder, "secret:plans")
    assert not authorizer.can_subscribe(GLOBAL_ADMIN, "secret:plans")  # even admins
    assert authorizer.can_subscribe(USER, "lobby:main")  # granted by the policy
    assert authorizer.can_subscribe(holder, "gift-list:1")  # None: the grants decide
    assert not authorizer.can_subscribe(holder, "order:1")
    assert authorizer.can_publish(holder, "lobby:main", "MESSAGE_SENT")
    assert (None, Action.SUBSCRIBE, "secret:plans") not in CALLS
    assert ("u1", Action.SUBSCRIBE, "gift-list:1") in CALLS
    assert ("u1", Action.PUBLISH, "lobby:main") in CALLS


def test_policy_cannot_cross_floors() -> None:
    authorizer = Authorizer(policy=lambda identity, action, topic: True)
    assert not authorizer.can_subscribe(USER, "tenant:globex:x")
    assert not authorizer.can_subscribe(USER, "gift-list:*")
    assert not authorizer.can_subscribe(USER, "not a topic")
    authorizer.revoke(RevokeRequest(user_id="u1"))
    authorizer.revoke(RevokeRequest(pattern="order:*"))
    assert not authorizer.can_subscribe(USER, "order:1")


def test_a_failing_policy_refuses(caplog: pytest.LogCaptureFixture) -> None:
    assert not Authorizer(policy=broken_policy).can_subscribe(USER, "gift-list:1")
    assert "auth policy failed" in caplog.text
    assert not Authorizer(policy=sloppy_policy).can_subscribe(USER, "gift-list:1")  # type: ignore[arg-type]
    assert "not True, False or None" in caplog.text


def test_policy_from_settings() -> None:
    settings = hs_settings(
        auth_policy="tests.unit.auth.test_authorizer:secret_policy",
        client_publishable=["MESSAGE_SENT"],
    )
    authorizer = Authorizer.from_settings(settings)
    assert not authorizer.can_subscribe(GLOBAL_ADMIN, "secret:x")
    assert authorizer.client_publishing


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("tests.unit.auth.no_such_module:policy", "cannot be loaded"),
        ("tests.unit.auth.test_authorizer:no_such_name", "cannot be loaded"),
        ("tests.unit.auth.test_authorizer:USER", "not callable"),
    ],
)
def test_bad_policy_paths_stop_startup(path: str, message: str) -> None:
    with pytest.raises(AuthConfigError, match=message):
        load_policy(path)


# -- revocation -------------------------------------------------------------------------


def test_matches_revocation() -> None:
    match = Authorizer.matches_revocation
    assert match(USER, "gift-list:1", RevokeRequest(user_id="u1"))
    assert not match(USER, "gift-list:1", RevokeRequest(user_id="u2"))
    assert match(USER, "gift-list:1", RevokeRequest(tenant_id="acme"))
    assert not match(NO_TENANT, "gift-list:1", RevokeRequest(tenant_id="acme"))
    assert match(USER, "gift-list:1", RevokeRequest(pattern="gift-list:*"))
    assert not match(USER, "order:1", RevokeRequest(pattern="gift-list:*"))
    both = RevokeRequest(user_id="u1", pattern="gift-list:*")
    assert match(USER, "gift-list:1", both)
    assert not match(USER, "order:1", both)
    assert not match(NO_TENANT, "gift-list:1", both)
    # An admin's pattern subscription is ended when it overlaps the revoked pattern.
    assert match(GLOBAL_ADMIN, "*:messages", RevokeRequest(pattern="room:*"))
    assert not match(GLOBAL_ADMIN, "order:*", RevokeRequest(pattern="room:*"))
    assert not match(ANONYMOUS, "public:1", RevokeRequest(user_id="u1"))


def test_revocation_keeps_refusing_older_tokens() -> None:
    now = [1000.0]
    authorizer = Authorizer.from_settings(hs_settings(revocation_ttl=60), clock=lambda: now[0])
    old = Identity.build("u1", "acme", ["gift-list:*"], issued_at=900.0)
    other = Identity.build("u2", "acme", ["gift-list:*"], issued_at=900.0)
    authorizer.revoke(RevokeRequest(user_id="u1"))
    assert authorizer.is_revoked(old)
    assert not authorizer.is_revoked(other)
    fresh = Identity.build("u1", "acme", ["gift-list:*"], issued_at=1001.0)
    assert not authorizer.is_revoked(fresh)
    with pytest.raises(AuthError) as info:
        authorizer.check_connection(old)
    assert (info.value.code, info.value.close_code) == (AuthCode.REVOKED, AuthClose.REVOKED)
    authorizer.check_connection(fresh)
    now[0] = 1060.0  # the record lapses
    assert not authorizer.is_revoked(old)
    assert len(authorizer.revocations) == 0


def test_pattern_revocation_refuses_resubscribing_not_the_connection() -> None:
    now = [1000.0]
    authorizer = Authorizer(clock=lambda: now[0])
    old = Identity.build("u1", None, ["gift-list:*"], issued_at=900.0)
    authorizer.revoke(RevokeRequest(pattern="gift-list:7"))
    assert not authorizer.is_revoked(old)
    assert not authorizer.can_subscribe(old, "gift-list:7")
    assert authorizer.can_subscribe(old, "gift-list:8")
    fresh = Identity.build("u1", None, ["gift-list:*"], issued_at=1001.0)
    assert authorizer.can_subscribe(fresh, "gift-list:7")


def test_block_for_zero_only_ends_what_is_open() -> None:
    authorizer = Authorizer(clock=lambda: 1000.0)
    authorizer.revoke(RevokeRequest(user_id="u1", block_for=0))
    assert not authorizer.is_revoked(USER)
    assert len(authorizer.revocations) == 0


def test_anonymous_identities_are_refused_while_a_record_lives() -> None:
    authorizer = Authorizer(clock=lambda: 1000.0)
    authorizer.revoke(RevokeRequest(pattern="public:*"))
    assert not authorizer.can_subscribe(ANONYMOUS, "public:news")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"pattern": "bad pattern"},
        {"user_id": ""},
        {"user": "u1"},
        {"user_id": "u", "block_for": -1},
    ],
)
def test_bad_revoke_requests(body: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - pydantic's ValidationError
        RevokeRequest.model_validate(body)


def test_revoke_request_kinds() -> None:
    assert RevokeRequest(user_id="u1").ends_connections
    assert not RevokeRequest(user_id="u1", pattern="a:*").ends_connections
