"""The auth core wired into one gateway: built once from its settings, shared by both transports.

The rules live in ``eventwire.auth`` (pure); this module only builds its
objects with the gateway's clock and holds the handshake checks that the
native listener and the ASGI app must both make, in the same order, before a
WebSocket is accepted::

    Origin allow-list            else HTTP 403
    connection caps (IP, pending) else HTTP 429
    accept; the token (?token= or AUTH) is verified by the session afterwards,
    so that a browser sees the ERROR and the close code, not a bare 1006
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import parse_qsl

from eventwire.auth.apikeys import ApiKeyStore
from eventwire.auth.authorizer import Authorizer
from eventwire.auth.errors import AuthConfigError, AuthError
from eventwire.auth.identity import Identity
from eventwire.auth.limits import ConnectionLimiter, Ticket, UsageLimiter
from eventwire.auth.origins import OriginPolicy
from eventwire.auth.settings import AuthSettings
from eventwire.auth.tokens import TokenVerifier
from eventwire.codes import ErrorCode
from eventwire.errors import EventwireError
from eventwire.protocol.session import SessionAuth
from eventwire.server.forwarded import ClientAddresses
from eventwire.server.hub import EVERYONE, NO_TENANT, Audience

__all__ = ["Guard", "HandshakeRefused", "audience_of", "origin_of", "token_from_query"]

log = logging.getLogger("eventwire.auth")

NO_CREDENTIALS = (
    "no way to authenticate WebSocket connections: set EVENTWIRE_JWT_SECRET"
    " (or EVENTWIRE_JWT_PUBLIC_KEY_FILE / EVENTWIRE_JWKS_FILE), or allow_anonymous with"
    " anonymous grants; for local development only, --insecure (EVENTWIRE_INSECURE=1)"
    " opens every door that has no credentials configured"
)


class HandshakeRefused(EventwireError):
    """A WebSocket handshake refused before it opens: answer HTTP ``status``."""

    def __init__(self, status: int, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class Guard:
    """Verifier, authorizer, API keys, Origin policy and limits of one gateway.

    Raises ``AuthConfigError`` when the settings cannot work (a key file that
    does not load, a policy that does not import, no way to authenticate a
    connection outside ``insecure`` mode), so the gateway never starts.
    """

    def __init__(self, settings: AuthSettings, wall: Callable[[], float]) -> None:
        if not (settings.auth_enabled or settings.insecure):
            raise AuthConfigError(NO_CREDENTIALS)
        self.enabled = settings.auth_enabled
        """Whether WebSocket connections are authenticated at all."""
        self.verifier = TokenVerifier(settings, clock=wall)
        self.authorizer = Authorizer.from_settings(settings, clock=wall)
        self.api_keys = ApiKeyStore.from_settings(settings)
        self.origins = OriginPolicy(settings.allowed_origins)
        self.conn_limits = ConnectionLimiter.from_settings(settings)
        self.client_addresses = ClientAddresses(settings.trusted_proxies)
        """Who a request came from, through the trusted proxies (for per-IP caps)."""
        self.usage = UsageLimiter.from_settings(settings)
        self.session_auth: SessionAuth | None = None
        if self.enabled:
            self.session_auth = SessionAuth(
                self.verifier,
                self.authorizer,
                self.usage,
                auth_timeout=settings.auth_timeout,
                expiry_grace=settings.token_expiry_grace,
            )
        self._anonymous = settings.allow_anonymous

    def admit(self, origin: str | None, ip: str | None, token: str | None) -> Ticket:
        """The handshake checks; the ticket counts the connection until ``release``.

        Raises HandshakeRefused: 403 for a foreign Origin, 429 over a cap.
        """
        if not self.origins.allows(origin):
            raise HandshakeRefused(403, ErrorCode.FORBIDDEN, "this Origin is not allowed")
        pending = self.enabled and token is None and not self._anonymous
        try:
            return self.conn_limits.open(ip, pending=pending)
        except AuthError as err:
            raise HandshakeRefused(429, ErrorCode.TOO_MANY_CONNECTIONS, err.message) from None

    def release(self, ticket: Ticket | None) -> None:
        """The connection ended; calling it again does nothing."""
        if ticket is not None:
            self.conn_limits.release(ticket)

    def warn_if_open(self, pattern_subscriptions: bool) -> None:
        """Say at start-up what is left open, so that it is never open by accident."""
        if self.api_keys.open:
            log.warning(
                "insecure: the HTTP API takes no key, anyone who reaches it may publish;"
                " set EVENTWIRE_ADMIN_KEY or EVENTWIRE_API_KEYS"
            )
        elif not self.api_keys.enabled:
            log.info("the HTTP API is closed: no admin key or API key is configured")
        if not self.enabled:
            log.warning(
                "insecure: every WebSocket may subscribe to any topic without a token;"
                " set EVENTWIRE_JWT_SECRET (or a public key / JWKS) to require tokens"
            )
            return
        if self._anonymous:
            log.warning("anonymous connections are allowed, with the anonymous grants")
        if pattern_subscriptions:
            log.warning("allow_pattern_subscriptions is ignored with authentication: admins only")


def origin_of(values: list[str]) -> str | None:
    """The ``Origin`` of a handshake from its header values; several count as ``null``.

    RFC 6454 7.3: a request carries at most one Origin. ``null`` is refused
    by any allow-list, so a doubled header cannot slip a foreign page through.
    """
    if not values:
        return None
    return values[0] if len(values) == 1 else "null"


def token_from_query(query: str) -> str | None:
    """The ``token`` parameter of a request's query string, if any (the last one wins)."""
    token = None
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name == "token":
            token = value
    return token or None


def audience_of(identity: Identity) -> Audience:
    """Which tenant-tagged events ``identity`` may receive (see ``tenancy.can_receive``)."""
    if identity.global_admin:
        return EVERYONE
    return NO_TENANT if identity.tenant_id is None else identity.tenant_id
