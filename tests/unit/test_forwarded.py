"""The client's address through trusted proxies: only what our own proxies say counts."""

from __future__ import annotations

import pytest

from eventwire.server.forwarded import ClientAddresses

PROXIES = ClientAddresses(["10.0.0.0/8", "2001:db8::1"])


@pytest.mark.parametrize(
    ("peer", "headers", "client"),
    [
        ("203.0.113.9", {"x-forwarded-for": "198.51.100.1"}, "203.0.113.9"),  # untrusted peer
        ("10.0.0.2", {}, "10.0.0.2"),  # a proxy that says nothing
        ("10.0.0.2", {"x-forwarded-for": "198.51.100.1"}, "198.51.100.1"),
        ("10.0.0.2", {"x-forwarded-for": "1.2.3.4, 198.51.100.1, 10.0.0.7"}, "198.51.100.1"),
        ("10.0.0.2", {"x-forwarded-for": "10.0.0.9, 10.0.0.7"}, "10.0.0.9"),  # all ours
        ("10.0.0.2", {"forwarded": 'for=192.0.2.60;proto=http, for="10.0.0.3:80"'}, "192.0.2.60"),
        ("10.0.0.2", {"forwarded": 'for="[2001:db8::7]:4711"'}, "2001:db8::7"),
        ("2001:db8::1", {"forwarded": "for=192.0.2.43:8080"}, "192.0.2.43"),
        ("10.0.0.2", {"forwarded": "for=unknown"}, "unknown"),
        (None, {"x-forwarded-for": "198.51.100.1"}, None),
    ],
)
def test_the_client_is_the_nearest_address_that_is_not_ours(
    peer: str | None, headers: dict[str, str], client: str | None
) -> None:
    assert PROXIES.client_of(peer, headers) == client


def test_forwarded_wins_over_x_forwarded_for() -> None:
    headers = {"forwarded": "for=192.0.2.1", "x-forwarded-for": "198.51.100.1"}
    assert PROXIES.client_of("10.0.0.2", headers) == "192.0.2.1"


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert ClientAddresses().client_of("10.0.0.2", {"x-forwarded-for": "1.2.3.4"}) == "10.0.0.2"
