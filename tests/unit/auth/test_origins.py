"""The Origin allow-list."""

from __future__ import annotations

import pytest

from eventwire.auth import OriginPolicy

POLICY = OriginPolicy(["https://app.example.com", "https://*.example.org", "http://localhost:3000"])


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),  # not a browser
        ("https://app.example.com", True),
        ("HTTPS://APP.EXAMPLE.COM/", True),
        ("https://app.example.com:443", True),
        ("http://app.example.com", False),
        ("https://app.example.com:8443", False),
        ("https://evil.example.com", False),
        ("https://app.example.com.evil.net", False),
        ("https://a.example.org", True),
        ("https://a.b.example.org", True),
        ("https://example.org", False),
        ("https://aexample.org", False),
        ("https://a.example.org:8443", False),
        ("https://a/b.example.org", False),
        ("http://a.example.org", False),
        ("http://localhost:3000", True),
        ("http://localhost:3001", False),
        ("null", False),
    ],
)
def test_allow_list(origin: str | None, allowed: bool) -> None:
    assert POLICY.allows(origin) is allowed


def test_empty_list_accepts_everything() -> None:
    policy = OriginPolicy()
    assert policy.open
    assert policy.allows("https://anything.example")
    assert policy.allows("null")
    assert not POLICY.open
