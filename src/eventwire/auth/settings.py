"""Auth configuration: one flat model, made to be mixed into the server's Settings.

Every field is named as its environment variable reads without the
``EVENTWIRE_`` prefix, so when the server declares
``class Settings(BaseSettings, AuthSettings)`` with ``env_prefix="EVENTWIRE_"``,
``EVENTWIRE_JWT_SECRET`` fills ``jwt_secret`` and ``EVENTWIRE_ADMIN_KEY``
fills ``admin_key``, and a TOML file uses the same names. Lists and tables
come from the environment as JSON (``EVENTWIRE_GRANT_SUBSCRIBE='["user:{user_id}:*"]'``).

Everything is checked here, at startup, so that a typo in a grant or a
short secret stops the gateway instead of opening or closing it silently.
Key files are read by the verifier (``tokens.TokenVerifier``), once.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from eventwire.auth.patterns import validate_grant
from eventwire.envelope import is_event_type
from eventwire.topics import checked_pattern

__all__ = ["ALGORITHMS", "Algorithm", "ApiKeySpec", "AuthSettings"]

Algorithm = Literal["HS256", "RS256", "ES256"]
ALGORITHMS: tuple[Algorithm, ...] = ("HS256", "RS256", "ES256")

MIN_SECRET_BYTES = 32
"""RFC 7518 3.2: an HS256 key must be at least as long as the hash (256 bits)."""
MIN_ADMIN_KEY_CHARS = 32

_HASH_RE = re.compile(r"(?:sha256:)?[0-9a-f]{64}")
_ORIGIN_RE = re.compile(r"(https?)://(\*\.)?[a-z0-9.-]+(:[0-9]{1,5})?")
_IMPORT_PATH_RE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
_CLAIM = Annotated[str, Field(min_length=1, max_length=256)]


class ApiKeySpec(BaseModel):
    """One HTTP API key, stored as its hash, allowed to publish to ``patterns``.

    ``hash`` is ``sha256:`` followed by the lowercase hex SHA-256 of the key
    (the prefix may be left out): ``eventwire key hash`` prints it, and so
    does ``printf %s "$KEY" | sha256sum``. A fast hash is enough because the
    keys are random 256-bit strings (``eventwire key create``), not passwords.
    ``tenant_id`` confines the key to one tenant's topics and events.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, max_length=64)]
    hash: str
    patterns: Annotated[list[str], Field(min_length=1)]
    tenant_id: Annotated[str, Field(min_length=1, max_length=256)] | None = None

    @field_validator("hash")
    @classmethod
    def _check_hash(cls, value: str) -> str:
        value = value.strip().lower()
        if _HASH_RE.fullmatch(value) is None:
            raise ValueError("expected 'sha256:' and 64 hex digits, as `eventwire key hash` prints")
        return value.removeprefix("sha256:")

    @field_validator("patterns")
    @classmethod
    def _check_patterns(cls, patterns: list[str]) -> list[str]:
        return [checked_pattern(pattern) for pattern in patterns]


class AuthSettings(BaseModel):
    """Every auth knob.

    WebSocket connections need a token (a JWT key configured) or
    ``allow_anonymous``; HTTP requests need an admin or API key. A door with
    no credentials configured is closed unless ``insecure`` opens it.
    """

    model_config = ConfigDict(extra="forbid")

    # -- where tokens' keys come from ------------------------------------------------
    jwt_secret: SecretStr | None = None
    """HS256 shared secret, at least 32 bytes (EVENTWIRE_JWT_SECRET)."""
    jwt_public_key_file: Path | None = None
    """PEM public key (RSA for RS256, P-256 for ES256) (EVENTWIRE_JWT_PUBLIC_KEY_FILE)."""
    jwks_file: Path | None = None
    """A JSON Web Key Set file; tokens pick their key by ``kid`` (EVENTWIRE_JWKS_FILE)."""
    jwt_private_key_file: Path | None = None
    """PEM private key, only for `eventwire token create` with RS256/ES256; never for serving."""
    jwt_algorithms: list[Algorithm] = Field(default_factory=list)
    """Accepted algorithms; empty means those of the configured keys."""
    jwt_issuer: str | None = None
    """Required ``iss`` when set."""
    jwt_audience: str | None = None
    """Required ``aud`` when set; a token carrying ``aud`` is refused when this is unset."""
    jwt_leeway: float = Field(30.0, ge=0, le=300)
    """Seconds of clock skew tolerated on ``exp``, ``nbf`` and ``iat``."""
    jwt_require_exp: bool = True
    """Refuse tokens without ``exp``: a token that never expires can never be refreshed away."""
    jwt_max_token_bytes: int = Field(8192, ge=256, le=65536)

    # -- claim names -------------------------------------------------------------------
    claim_user: _CLAIM = "sub"
    claim_tenant: _CLAIM = "tenant_id"
    claim_subscribe: _CLAIM = "subscribe"
    claim_publish: _CLAIM = "publish"
    claim_admin: _CLAIM = "admin"

    # -- grants added by the server ----------------------------------------------------
    grant_subscribe: list[str] = Field(default_factory=list)
    """Patterns every authenticated connection may subscribe to, e.g. ``user:{user_id}:*``."""
    grant_publish: list[str] = Field(default_factory=list)
    """Patterns every authenticated connection may publish to (with client_publishable)."""
    auth_policy: str | None = None
    """``module:callable`` called as ``(identity, action, topic) -> bool | None``."""

    # -- anonymous connections ---------------------------------------------------------
    insecure: bool = False
    """Development: each door with no credentials configured opens to all (EVENTWIRE_INSECURE)."""
    allow_anonymous: bool = False
    anonymous_subscribe: list[str] = Field(default_factory=list)
    anonymous_publish: list[str] = Field(default_factory=list)

    # -- timing ------------------------------------------------------------------------
    auth_timeout: float = Field(5.0, gt=0, le=120)
    """Seconds a connection without a token has to send AUTH before it is closed (4003)."""
    token_expiry_grace: float = Field(10.0, ge=0, le=300)
    """Seconds after TOKEN_EXPIRED to refresh before the connection is closed (4001)."""
    revocation_ttl: float = Field(86400.0, gt=0)
    """Seconds a revocation refuses tokens issued before it; at least the longest token life."""

    # -- HTTP API keys -----------------------------------------------------------------
    admin_key: SecretStr | None = None
    """Bearer key with every right on the HTTP API (EVENTWIRE_ADMIN_KEY); at least 32 chars."""
    api_keys: list[ApiKeySpec] = Field(default_factory=list)

    # -- client-published events -------------------------------------------------------
    client_publishable: list[str] = Field(default_factory=list)
    """Event types clients may publish over the WebSocket; empty disables client publishing."""

    # -- handshake and abuse limits (0 means no limit) ---------------------------------
    allowed_origins: list[str] = Field(default_factory=list)
    """``https://app.example.com`` or ``https://*.example.com``; empty accepts any origin."""
    cors_origins: list[str] = Field(default_factory=list)
    """Pages of these origins may call the HTTP API (CORS); ``*`` for any; empty: none."""
    trusted_proxies: list[str] = Field(default_factory=list)
    """Addresses or networks (``10.0.0.0/8``) of our proxies, whose ``Forwarded`` and
    ``X-Forwarded-For`` name the client for per-IP limits; empty: the peer is the client."""
    max_connections_per_user: int = Field(20, ge=0)
    max_connections_per_tenant: int = Field(0, ge=0)
    max_connections_per_ip: int = Field(0, ge=0)
    max_unauthenticated: int = Field(1000, ge=0)
    """Connections still waiting for AUTH, node-wide."""
    user_commands_per_second: float = Field(100.0, ge=0)
    user_command_burst: int = Field(200, ge=1)
    tenant_commands_per_second: float = Field(0.0, ge=0)
    tenant_command_burst: int = Field(2000, ge=1)

    @property
    def tokens_enabled(self) -> bool:
        """Whether a JWT key is configured, so that tokens can be verified."""
        return any((self.jwt_secret, self.jwt_public_key_file, self.jwks_file))

    @property
    def auth_enabled(self) -> bool:
        """Whether WebSocket connections are authorized at all.

        Off only when neither a JWT key nor anonymous access is configured,
        which the gateway allows in ``insecure`` mode alone; with
        ``allow_anonymous`` alone, every connection is anonymous and holds
        only the anonymous grants.
        """
        return self.tokens_enabled or self.allow_anonymous

    @property
    def api_keys_enabled(self) -> bool:
        """Whether the HTTP API wants a bearer key (an admin key or API keys are configured)."""
        return self.admin_key is not None or bool(self.api_keys)

    @field_validator("jwt_secret")
    @classmethod
    def _check_secret(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and len(secret.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"must be at least {MIN_SECRET_BYTES} bytes (RFC 7518 3.2)")
        return secret

    @field_validator("admin_key")
    @classmethod
    def _check_admin_key(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None and len(key.get_secret_value()) < MIN_ADMIN_KEY_CHARS:
            raise ValueError(f"must be at least {MIN_ADMIN_KEY_CHARS} characters")
        return key

    @field_validator("grant_subscribe", "grant_publish", "anonymous_subscribe", "anonymous_publish")
    @classmethod
    def _check_grants(cls, patterns: list[str]) -> list[str]:
        return [validate_grant(pattern) for pattern in patterns]

    @field_validator("client_publishable")
    @classmethod
    def _check_event_types(cls, names: list[str]) -> list[str]:
        for name in names:
            if not is_event_type(name):
                raise ValueError(f"{name!r} is not an UPPER_SNAKE_CASE event type")
        return names

    @field_validator("cors_origins")
    @classmethod
    def _check_cors_origins(cls, origins: list[str]) -> list[str]:
        listed = [origin for origin in origins if origin.strip() != "*"]
        return cls._check_origins(listed) + ["*"] * (len(origins) > len(listed))

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, proxies: list[str]) -> list[str]:
        for proxy in proxies:
            try:
                ipaddress.ip_network(proxy.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"{proxy!r}: expected an address or a network, e.g. '10.0.0.5' or '10.0.0.0/8'"
                ) from None
        return [proxy.strip() for proxy in proxies]

    @field_validator("allowed_origins")
    @classmethod
    def _check_origins(cls, origins: list[str]) -> list[str]:
        normalized = [origin.strip().lower().rstrip("/") for origin in origins]
        for origin in normalized:
            if _ORIGIN_RE.fullmatch(origin) is None:
                raise ValueError(
                    f"{origin!r}: expected scheme://host[:port], e.g. 'https://app.example.com'"
                    " or 'https://*.example.com'"
                )
        return normalized

    @field_validator("auth_policy")
    @classmethod
    def _check_policy(cls, path: str | None) -> str | None:
        if path is not None and _IMPORT_PATH_RE.fullmatch(path) is None:
            raise ValueError("expected 'package.module:callable'")
        return path

    @model_validator(mode="after")
    def _check_consistency(self) -> AuthSettings:
        claims = [
            self.claim_user,
            self.claim_tenant,
            self.claim_subscribe,
            self.claim_publish,
            self.claim_admin,
        ]
        if len(set(claims)) != len(claims):
            raise ValueError(
                "claim_user, claim_tenant, claim_subscribe, claim_publish and"
                " claim_admin must be five different claim names"
            )
        names = [key.name for key in self.api_keys]
        if len(set(names)) != len(names):
            raise ValueError("api_keys: every key needs its own name")
        return self
