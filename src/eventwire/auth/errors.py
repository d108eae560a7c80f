"""Errors of the auth core, with stable codes a client and an operator can act on.

::

    EventwireError
    ├── AuthError          a token, key or request was refused; carries an
    │                      AuthCode, a message, details and, when the refusal
    │                      ends a WebSocket, the close code to end it with
    └── AuthConfigError    the auth configuration cannot work (a missing key
                           file, a short secret, a policy that does not
                           import); raised once, at startup, never per request

The codes are strings equal to the ``ErrorCode`` entries the server adds for
them (``ErrorCode(err.code)`` converts), and the close codes follow the rule
of ``eventwire.codes``: 4000-4499 reconnect with backoff, 4500-4999 do not.
"""

from __future__ import annotations

import enum
from typing import Any

from eventwire.errors import EventwireError

__all__ = ["AuthClose", "AuthCode", "AuthConfigError", "AuthError", "auth_http_status"]


class AuthCode(enum.StrEnum):
    """Error codes of refusals; one entry each in ``ErrorCode`` once wired."""

    UNAUTHORIZED = "UNAUTHORIZED"
    """No usable credential: a missing, malformed, forged or not-yet-valid token or key."""
    TOKEN_EXPIRED = "TOKEN_EXPIRED"
    """The token's ``exp`` has passed: send AUTH with a fresh token."""
    FORBIDDEN = "FORBIDDEN"
    """The credential is fine but does not allow this topic or action."""
    REVOKED = "REVOKED"
    """An operator revoked this user, tenant or subscription."""
    TOO_MANY_CONNECTIONS = "TOO_MANY_CONNECTIONS"
    """A per-user, per-tenant, per-IP or unauthenticated connection cap was reached."""
    RATE_LIMITED = "RATE_LIMITED"
    """A per-user or per-tenant command rate was exceeded (the code already exists)."""


_HTTP_STATUS = {
    AuthCode.UNAUTHORIZED: 401,
    AuthCode.TOKEN_EXPIRED: 401,
    AuthCode.FORBIDDEN: 403,
    AuthCode.REVOKED: 403,
    AuthCode.TOO_MANY_CONNECTIONS: 429,
    AuthCode.RATE_LIMITED: 429,
}


def auth_http_status(code: AuthCode) -> int:
    """The HTTP status the HTTP API answers with for ``code``."""
    return _HTTP_STATUS[code]


class AuthClose(enum.IntEnum):
    """Close codes for connections that auth ends; entries of ``CloseCode`` once wired."""

    TOKEN_EXPIRED = 4001
    """The token expired and no AUTH refreshed it within the grace: get a new token, reconnect."""
    AUTH_TIMEOUT = 4003
    """No AUTH within ``auth_timeout`` of opening: reconnect with backoff and authenticate."""
    TOO_MANY_CONNECTIONS = 4009
    """A connection cap was reached after authentication: reconnect after a long backoff."""
    UNAUTHORIZED = 4501
    """The token was refused: do not reconnect until a different token is at hand."""
    REVOKED = 4503
    """An operator revoked access: do not reconnect with the same token."""


class AuthError(EventwireError):
    """A refusal: ``code`` says why, ``details`` where, ``close_code`` how to end a WebSocket.

    ``close_code`` is only a suggestion for a connection that is not yet
    authenticated; an authenticated connection that fails to refresh keeps
    its current identity until that expires.
    """

    def __init__(
        self,
        code: AuthCode,
        message: str,
        details: dict[str, Any] | None = None,
        close_code: AuthClose | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details: dict[str, Any] = details or {}
        self.close_code = close_code

    @property
    def http_status(self) -> int:
        return auth_http_status(self.code)

    def to_payload(self) -> dict[str, Any]:
        """The ``{code, message, details}`` body of an ERROR event or HTTP error."""
        return {"code": self.code.value, "message": self.message, "details": self.details}


class AuthConfigError(EventwireError, ValueError):
    """The auth settings cannot work; raised when the verifier or authorizer is built."""
