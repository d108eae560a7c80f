"""Connection caps and shared token buckets, with the time passed in."""

from __future__ import annotations

import pytest

from eventwire.auth import (
    AuthClose,
    AuthCode,
    AuthError,
    ConnectionLimiter,
    Identity,
    TokenBuckets,
    UsageLimiter,
)
from tests.unit.auth.helpers import hs_settings

ALICE = Identity.build("alice", "acme")
BOB = Identity.build("bob", "acme")
ALICE_GLOBEX = Identity.build("alice", "globex")
ANONYMOUS = Identity.build(None, anonymous=True)


def test_per_ip_cap() -> None:
    limiter = ConnectionLimiter(per_ip=2)
    first = limiter.open("10.0.0.1")
    limiter.open("10.0.0.1")
    with pytest.raises(AuthError) as info:
        limiter.open("10.0.0.1")
    assert info.value.code is AuthCode.TOO_MANY_CONNECTIONS
    assert info.value.details == {"scope": "address", "limit": 2}
    assert info.value.close_code is AuthClose.TOO_MANY_CONNECTIONS
    assert info.value.http_status == 429
    limiter.open("10.0.0.2")
    limiter.release(first)
    limiter.open("10.0.0.1")
    assert limiter.count(ip="10.0.0.1") == 2


def test_unauthenticated_cap_frees_on_authentication() -> None:
    limiter = ConnectionLimiter(unauthenticated=1)
    ticket = limiter.open(None)
    with pytest.raises(AuthError):
        limiter.open(None)
    limiter.open(None, pending=False)  # came with ?token=: never pending
    limiter.authenticate(ticket, ALICE)
    assert limiter.count() == 0
    limiter.open(None)


def test_per_user_cap_counts_user_per_tenant() -> None:
    limiter = ConnectionLimiter(per_user=1)
    first = limiter.open(None)
    limiter.authenticate(first, ALICE)
    second = limiter.open(None)
    with pytest.raises(AuthError) as info:
        limiter.authenticate(second, ALICE)
    assert info.value.details["scope"] == "user"
    limiter.authenticate(second, ALICE_GLOBEX)  # another tenant's alice
    third = limiter.open(None)
    limiter.authenticate(third, BOB)
    assert limiter.count(user=("acme", "alice")) == 1
    limiter.release(first)
    limiter.release(first)  # twice is harmless
    assert limiter.count(user=("acme", "alice")) == 0


def test_per_tenant_cap() -> None:
    limiter = ConnectionLimiter(per_tenant=2)
    for identity in (ALICE, BOB):
        limiter.authenticate(limiter.open(None), identity)
    ticket = limiter.open(None)
    with pytest.raises(AuthError) as info:
        limiter.authenticate(ticket, Identity.build("carol", "acme"))
    assert info.value.details["scope"] == "tenant"
    limiter.authenticate(ticket, ALICE_GLOBEX)
    assert limiter.count(tenant="acme") == 2


def test_reauthenticating_the_same_user_does_not_count_twice() -> None:
    limiter = ConnectionLimiter(per_user=1, per_tenant=1)
    ticket = limiter.open("1.2.3.4")
    limiter.authenticate(ticket, ALICE)
    limiter.authenticate(ticket, ALICE)
    assert limiter.count(user=("acme", "alice")) == 1
    assert limiter.count(tenant="acme") == 1


def test_anonymous_then_signed_in() -> None:
    limiter = ConnectionLimiter(per_user=5)
    ticket = limiter.open("1.2.3.4")
    limiter.authenticate(ticket, ANONYMOUS)
    assert limiter.count() == 0
    limiter.authenticate(ticket, ALICE)
    assert limiter.count(user=("acme", "alice")) == 1
    limiter.release(ticket)
    assert limiter.count(user=("acme", "alice")) == 0
    assert limiter.count(ip="1.2.3.4") == 0


def test_zero_means_no_cap() -> None:
    limiter = ConnectionLimiter()
    for _ in range(100):
        limiter.authenticate(limiter.open("1.2.3.4"), ALICE)
    assert limiter.count(user=("acme", "alice")) == 100


def test_from_settings() -> None:
    limiter = ConnectionLimiter.from_settings(
        hs_settings(max_connections_per_ip=1, max_unauthenticated=0)
    )
    limiter.open("a")
    with pytest.raises(AuthError):
        limiter.open("a")
    for _ in range(10):
        limiter.open(None)  # max_unauthenticated=0: no cap


def test_token_bucket_refills_at_its_rate() -> None:
    buckets: TokenBuckets[str] = TokenBuckets(rate=2.0, burst=3)
    assert all(buckets.take("k", 0.0) for _ in range(3))
    assert not buckets.take("k", 0.0)
    assert not buckets.take("k", 0.4)
    assert buckets.take("k", 0.5)
    assert buckets.available("k", 100.0) == 3.0
    assert buckets.take("other", 0.0)
    assert not buckets.take("k", 100.0, cost=4)


def test_token_buckets_forget_full_buckets() -> None:
    buckets: TokenBuckets[int] = TokenBuckets(rate=1.0, burst=1)
    for key in range(2000):
        buckets.take(key, float(key))
    # Only keys that spent within the last second can still be partial.
    assert len(buckets) < 1100


def test_disabled_bucket_always_allows() -> None:
    buckets: TokenBuckets[str] = TokenBuckets(rate=0.0, burst=1)
    assert not buckets.enabled
    assert all(buckets.take("k", 0.0) for _ in range(1000))
    assert len(buckets) == 0


def test_usage_limiter_is_shared_across_connections() -> None:
    limiter = UsageLimiter(user_rate=1.0, user_burst=2, tenant_rate=1.0, tenant_burst=3)
    limiter.take(ALICE, 0.0)
    limiter.take(ALICE, 0.0)  # e.g. from a second connection of hers
    with pytest.raises(AuthError) as user_refused:
        limiter.take(ALICE, 0.0)
    assert user_refused.value.code is AuthCode.RATE_LIMITED
    assert user_refused.value.details == {"scope": "user"}
    limiter.take(BOB, 0.0)  # the tenant's third
    with pytest.raises(AuthError) as tenant_refused:
        limiter.take(BOB, 0.0)
    assert tenant_refused.value.details == {"scope": "tenant"}
    # The tenant refusal did not spend Bob's own tokens.
    assert limiter.users.available(("acme", "bob"), 0.0) == 1.0
    limiter.take(ALICE_GLOBEX, 0.0)
    limiter.take(ANONYMOUS, 0.0)  # no user, no tenant: only per-connection limits apply


def test_usage_limiter_from_settings() -> None:
    limiter = UsageLimiter.from_settings(
        hs_settings(user_commands_per_second=5, user_command_burst=1)
    )
    limiter.take(ALICE, 0.0)
    with pytest.raises(AuthError):
        limiter.take(ALICE, 0.1)
    limiter.take(ALICE, 0.2)
    assert not limiter.tenants.enabled
