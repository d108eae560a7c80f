"""Properties: the authorizer against a plain reference, and pattern overlap against brute force.

The reference scans every grant with a regular expression and states the
tenant rule in the most literal way; the Authorizer must agree with it on
random grants, identities and topics.
"""

from __future__ import annotations

import itertools
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from eventwire.auth import Authorizer, Identity, patterns_overlap

WORDS = ["a", "b", "tenant", "acme", "globex"]
SEGMENT = re.compile(r"[a-z0-9-]+")

users = st.sampled_from(["u1", "a", "*", "Alice", "x:y", None])
tenants = st.sampled_from(["acme", "globex", "a", None])
pattern_segments = st.sampled_from([*WORDS, "*", "{user_id}", "{tenant_id}"])
patterns = st.lists(pattern_segments, min_size=1, max_size=4).map(":".join)
topics = st.lists(st.sampled_from([*WORDS, "u1"]), min_size=2, max_size=5).map(":".join)


def _regex(pattern: str) -> re.Pattern[str]:
    parts = [
        r"[a-z0-9-]+(?::[a-z0-9-]+)*" if p == "*" else re.escape(p) for p in pattern.split(":")
    ]
    return re.compile(":".join(parts))


def _expand(pattern: str, user: str | None, tenant: str | None) -> str | None:
    for name, value in (("{user_id}", user), ("{tenant_id}", tenant)):
        if name in pattern:
            if value is None or SEGMENT.fullmatch(value) is None:
                return None
            pattern = pattern.replace(name, value)
    segments = pattern.split(":")
    if pattern != "*" and len(segments) < 2:
        return None
    return pattern


def _reference(
    user: str | None, tenant: str | None, admin: bool, grants: list[str], topic: str
) -> bool:
    segments = topic.split(":")
    if segments[0] == "tenant" and not (admin and tenant is None) and segments[1] != tenant:
        return False
    if admin:
        return True
    expanded = [_expand(p, user, tenant) for p in grants]
    return any(p is not None and _regex(p).fullmatch(topic) for p in expanded)


@settings(max_examples=300, deadline=None)
@given(users, tenants, st.booleans(), st.lists(patterns, max_size=6), topics)
def test_subscribe_matches_the_reference(
    user: str | None, tenant: str | None, admin: bool, grants: list[str], topic: str
) -> None:
    identity = Identity.build(user, tenant, grants, grants, admin=admin)
    authorizer = Authorizer(client_publishable=["SENT"])
    expected = _reference(user, tenant, admin, grants, topic)
    assert authorizer.can_subscribe(identity, topic) is expected
    assert authorizer.can_publish(identity, topic, "SENT") is expected


def _universe(words: list[str], longest: int) -> list[str]:
    return [":".join(t) for n in range(1, longest + 1) for t in itertools.product(words, repeat=n)]


ADMIN_UNIVERSE = _universe(["tenant", "acme", "globex", "a"], 5)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(["tenant", "acme", "globex", "a", "*"]), min_size=2, max_size=4).map(
        ":".join
    )
)
def test_tenant_admin_patterns_never_reach_another_tenant(pattern: str) -> None:
    """Allowed exactly when no topic the pattern matches is another tenant's topic."""
    identity = Identity.build("boss", "acme", admin=True)
    regex = _regex(pattern)
    foreign = any(
        regex.fullmatch(topic)
        and topic.split(":")[0] == "tenant"
        and len(topic.split(":")) >= 2
        and topic.split(":")[1] != "acme"
        for topic in ADMIN_UNIVERSE
    )
    assert Authorizer().can_subscribe(identity, pattern) is (not foreign)


OVERLAP_UNIVERSE = _universe(["a", "b"], 6)
small_patterns = st.lists(st.sampled_from(["a", "b", "*"]), min_size=1, max_size=3).map(":".join)


@settings(max_examples=300, deadline=None)
@given(small_patterns, small_patterns)
def test_overlap_matches_brute_force(a: str, b: str) -> None:
    ra, rb = _regex(a), _regex(b)
    expected = any(ra.fullmatch(t) and rb.fullmatch(t) for t in OVERLAP_UNIVERSE)
    assert patterns_overlap(a, b) is expected
    assert patterns_overlap(b, a) is expected
