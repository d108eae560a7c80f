"""The Origin allow-list that stops cross-site WebSocket hijacking.

Browsers send ``Origin`` with every WebSocket handshake and let any page
open a socket to any host, so a hostile page could drive a victim's browser
against the gateway. Tokens are not ambient (no cookie is involved), which
already blunts this; the allow-list closes it for deployments that also
want to refuse foreign pages outright. Non-browser clients send no Origin
and cannot be told apart by it, so a missing header is accepted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["OriginPolicy"]

_DEFAULT_PORTS = {"http": ":80", "https": ":443"}
_HOST_RE = re.compile(r"[a-z0-9.-]+(?::[0-9]{1,5})?")


def _normalize(origin: str) -> str:
    origin = origin.strip().lower().rstrip("/")
    scheme, sep, _ = origin.partition("://")
    default = _DEFAULT_PORTS.get(scheme)
    if sep and default and origin.endswith(default):
        origin = origin.removesuffix(default)
    return origin


class OriginPolicy:
    """``https://app.example.com`` exactly, or ``https://*.example.com`` for its subdomains."""

    __slots__ = ("_exact", "_suffixes")

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        exact: set[str] = set()
        suffixes: list[tuple[str, str]] = []
        for entry in map(_normalize, allowed):
            scheme, _, host = entry.partition("://")
            if host.startswith("*."):
                suffixes.append((scheme + "://", host[1:]))  # ".example.com[:port]"
            else:
                exact.add(entry)
        self._exact = frozenset(exact)
        self._suffixes = tuple(suffixes)

    @property
    def open(self) -> bool:
        """Whether every origin is accepted (no list configured)."""
        return not self._exact and not self._suffixes

    def allows(self, origin: str | None) -> bool:
        """Whether a handshake with this ``Origin`` header (None: absent) may proceed."""
        if origin is None or self.open:
            return True
        origin = _normalize(origin)
        if origin in self._exact:
            return True
        for scheme, suffix in self._suffixes:
            if origin.startswith(scheme):
                host = origin.removeprefix(scheme)
                if (
                    host.endswith(suffix)
                    and len(host) > len(suffix)
                    and _HOST_RE.fullmatch(host) is not None
                ):
                    return True
        return False
