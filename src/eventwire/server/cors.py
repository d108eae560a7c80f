"""Cross-origin requests to the HTTP API from browsers, for the origins configured.

Off by default: with no ``cors_origins`` a browser page of another origin
can call nothing. Keys travel as ``Authorization: Bearer`` headers, never
cookies, so credentials are never allowed (no
``Access-Control-Allow-Credentials``), and ``*`` is safe to configure for a
public API. A preflight (``OPTIONS`` with ``Access-Control-Request-Method``)
is answered 204 with what may be sent, or 403 for an origin not listed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from eventwire.auth.origins import OriginPolicy
from eventwire.codes import ErrorCode
from eventwire.errors import ProtocolError
from eventwire.server.pages import Headers

__all__ = ["Cors"]

ALLOWED_HEADERS = "authorization, content-type, traceparent, tracestate"
MAX_AGE = "600"
"""Seconds a browser may keep a preflight's answer."""


class Cors:
    """The CORS headers for a request's ``Origin``, and the answer to its preflight."""

    __slots__ = ("_any", "_origins")

    def __init__(self, origins: Iterable[str] = ()) -> None:
        origins = list(origins)
        self._any = "*" in origins
        """Any origin: ``*`` was configured."""
        self._origins = OriginPolicy(origin for origin in origins if origin != "*")

    @property
    def enabled(self) -> bool:
        return self._any or not self._origins.open

    def allows(self, origin: str | None) -> bool:
        """Whether a page of ``origin`` may call the API."""
        if origin is None or not self.enabled:
            return False
        return self._any or self._origins.allows(origin)

    def headers_for(self, origin: str | None) -> Headers:
        """Headers that let a page of ``origin`` read an answer (none for others)."""
        if not self.allows(origin):
            return (("vary", "origin"),) if self.enabled else ()
        assert origin is not None
        return (("access-control-allow-origin", origin), ("vary", "origin"))

    @staticmethod
    def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
        return method == "OPTIONS" and "access-control-request-method" in headers

    def preflight(self, origin: str | None, methods: str) -> Headers:
        """The headers of a 204 answering a preflight for a route taking ``methods``
        (``headers_for`` adds the origin's, as to every answer).

        Raises ProtocolError FORBIDDEN for an origin that is not allowed.
        """
        if not self.allows(origin):
            raise ProtocolError(ErrorCode.FORBIDDEN, "this Origin may not call the API")
        return (
            ("access-control-allow-methods", methods),
            ("access-control-allow-headers", ALLOWED_HEADERS),
            ("access-control-max-age", MAX_AGE),
        )
