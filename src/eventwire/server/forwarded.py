"""Which address a request came from, when it may have passed through our own proxies.

Per-IP limits must count the client, not the load balancer in front of the
gateway. Proxies say who they forwarded for in ``Forwarded`` (RFC 7239) or
``X-Forwarded-For``, but anyone can send those headers, so they are read
only when the peer is one of the ``trusted_proxies``, and only as far back
as the chain stays within them: walking the list from its right end (the
hop nearest to us), the first address that is not a trusted proxy is the
client. A peer that is not trusted is the client, whatever it claims.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

__all__ = ["ClientAddresses"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_MAX_HOPS = 32
"""Addresses of a forwarding chain looked at, from the right: a header is no work list."""


class ClientAddresses:
    """Tells a request's client address from its peer and, behind trusted proxies, its headers."""

    __slots__ = ("_trusted",)

    def __init__(self, trusted_proxies: Iterable[str] = ()) -> None:
        self._trusted = tuple(ipaddress.ip_network(p, strict=False) for p in trusted_proxies)

    def client_of(self, peer: str | None, headers: Mapping[str, str]) -> str | None:
        """The client's address; ``headers`` with lower-case names."""
        if not self._trusted or peer is None or not self._is_trusted(peer):
            return peer
        chain = _forwarded_for(headers)
        for address in reversed(chain[-_MAX_HOPS:]):
            if not self._is_trusted(address):
                return address
        return chain[0] if chain else peer

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False  # not an address (a name, "unknown"): never one of ours
        return any(ip in network for network in self._trusted)


def _forwarded_for(headers: Mapping[str, str]) -> list[str]:
    """The addresses a request was forwarded for, oldest first: ``Forwarded``, else XFF."""
    forwarded = headers.get("forwarded")
    if forwarded:
        return [_node(value) for value in _for_values(forwarded)]
    xff = headers.get("x-forwarded-for", "")
    return [part.strip() for part in xff.split(",") if part.strip()]


def _for_values(header: str) -> list[str]:
    """The ``for=`` parameter of each element of a ``Forwarded`` header (RFC 7239 4)."""
    found = []
    for element in header.split(","):
        for pair in element.split(";"):
            name, _, value = pair.strip().partition("=")
            if name.strip().lower() == "for":
                found.append(value.strip().strip('"'))
    return found


def _node(value: str) -> str:
    """An address from a ``for=`` node: ``192.0.2.1:8080`` or ``[2001:db8::1]:443`` -> its IP."""
    if value.startswith("["):
        return value[1:].partition("]")[0]
    host, sep, port = value.rpartition(":")
    if sep and host and ":" not in host and port.isdigit():
        return host  # IPv4 with a port
    return value
