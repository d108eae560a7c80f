"""HTTP API credentials: hashed API keys scoped to topic patterns, and the admin key.

The configuration holds only SHA-256 hashes of API keys, so a leaked
configuration file or environment dump does not leak a usable key. Keys
are random 256-bit strings, so a plain hash is as strong as a slow one and
costs a microsecond per request instead of a hundred milliseconds.

A presented key is hashed, and the hash is compared with every configured
hash (and the admin key's) with ``hmac.compare_digest`` and no early exit,
so the time taken does not depend on which key, if any, matched.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from eventwire.auth.errors import AuthCode, AuthError
from eventwire.auth.patterns import Grants
from eventwire.auth.settings import ApiKeySpec, AuthSettings
from eventwire.auth.tenancy import topic_tenant
from eventwire.errors import ProtocolError
from eventwire.topics import validate_topic

__all__ = [
    "API_KEY_PREFIX",
    "ApiKeyStore",
    "ApiPrincipal",
    "generate_api_key",
    "hash_api_key",
    "parse_bearer",
]

API_KEY_PREFIX = "ew_"
"""Marks eventwire keys, so that secret scanners and people can recognise them."""
_MAX_KEY_CHARS = 512


def generate_api_key() -> str:
    """A new random API key (256 bits): what `eventwire key create` prints."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """The value to put in ``api_keys[].hash``: ``sha256:`` and the key's hex digest."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def parse_bearer(authorization: str | None) -> str | None:
    """The credential of an ``Authorization: Bearer <key>`` header, else None."""
    if authorization is None:
        return None
    scheme, _, credential = authorization.strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential or len(credential) > _MAX_KEY_CHARS:
        return None
    return credential


@dataclass(frozen=True, slots=True)
class ApiPrincipal:
    """Who an HTTP request authenticated as, and what it may publish."""

    name: str
    admin: bool
    grants: Grants
    tenant_id: str | None = None

    def can_publish(self, topic: str, event_tenant_id: str | None = None) -> bool:
        """Whether this key may publish to ``topic`` an event tagged ``event_tenant_id``.

        A tenant-bound key may not publish to another tenant's topic nor tag
        an event with another tenant; the HTTP API fills in its tenant when
        the event names none.
        """
        if not _valid_topic(topic):
            return False
        if self.admin:
            return True
        if self.tenant_id is not None:
            if topic_tenant(topic) not in (None, self.tenant_id):
                return False
            if event_tenant_id not in (None, self.tenant_id):
                return False
        return self.grants.allows(topic)

    def can_read(self, topic: str) -> bool:
        """Whether this key may read a topic's statistics (``GET /v1/topics/{topic}``)."""
        return self.can_publish(topic)


class ApiKeyStore:
    """The configured API keys and admin key, as hashes; answers who a bearer key is."""

    def __init__(
        self,
        keys: Iterable[ApiKeySpec] = (),
        admin_key: str | None = None,
        *,
        insecure: bool = False,
    ) -> None:
        self._keys = [
            (bytes.fromhex(spec.hash.removeprefix("sha256:")), _principal(spec)) for spec in keys
        ]
        self._admin = _digest(admin_key) if admin_key is not None else None
        self._insecure = insecure

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> ApiKeyStore:
        admin = settings.admin_key.get_secret_value() if settings.admin_key else None
        return cls(settings.api_keys, admin, insecure=settings.insecure)

    @property
    def enabled(self) -> bool:
        """Whether any key is configured."""
        return self._admin is not None or bool(self._keys)

    @property
    def open(self) -> bool:
        """Whether requests need no key: none is configured and the gateway is ``insecure``."""
        return self._insecure and not self.enabled

    def identify(self, key: str) -> ApiPrincipal | None:
        """The principal ``key`` belongs to, or None; constant time in which one matched."""
        digest = _digest(key)
        found: ApiPrincipal | None = None
        if self._admin is not None and hmac.compare_digest(digest, self._admin):
            found = _ADMIN
        for stored, principal in self._keys:
            if hmac.compare_digest(digest, stored) and found is None:
                found = principal
        return found

    def authenticate(self, authorization: str | None) -> ApiPrincipal:
        """The principal of an ``Authorization`` header; AuthError(UNAUTHORIZED) if none."""
        key = parse_bearer(authorization)
        principal = self.identify(key) if key is not None else None
        if principal is None:
            message = "expected 'Authorization: Bearer <API key>' with a configured key"
            if not self.enabled:
                message = "this gateway has no API key configured (set EVENTWIRE_ADMIN_KEY)"
            raise AuthError(
                AuthCode.UNAUTHORIZED,
                message,
                {"reason": "missing_token" if key is None else "unknown_key"},
            )
        return principal

    def authenticate_admin(self, authorization: str | None) -> ApiPrincipal:
        """As ``authenticate``, and AuthError(FORBIDDEN) unless it is the admin key."""
        principal = self.authenticate(authorization)
        if not principal.admin:
            raise AuthError(AuthCode.FORBIDDEN, "this route needs the admin key")
        return principal


_ADMIN = ApiPrincipal("admin", admin=True, grants=Grants(("*",)))


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _principal(spec: ApiKeySpec) -> ApiPrincipal:
    return ApiPrincipal(
        spec.name, admin=False, grants=Grants(spec.patterns), tenant_id=spec.tenant_id
    )


def _valid_topic(topic: str) -> bool:
    try:
        validate_topic(topic)
    except ProtocolError:
        return False
    return True
