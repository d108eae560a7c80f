"""JWT verification (and development minting) with PyJWT: HS256, RS256, ES256.

PyJWT checks the signature, ``iss`` and ``aud``. The times (``exp``,
``nbf``, ``iat``) are checked here against a clock passed in, with the
configured leeway, so that tests are deterministic and the session that
schedules TOKEN_EXPIRED uses the very instant the verifier used.

Every refusal is an ``AuthError`` with code UNAUTHORIZED or TOKEN_EXPIRED and
``details.reason`` one of: ``missing_token``, ``no_keys``, ``too_large``,
``malformed``, ``algorithm``, ``unknown_key``, ``bad_signature``, ``issuer``,
``audience``, ``missing_claim``, ``invalid_claim``, ``not_yet_valid``,
``issued_in_future``, ``expired``. The token itself never appears in an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jwt
from jwt.exceptions import (
    DecodeError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidIssuerError,
    InvalidJTIError,
    InvalidKeyError,
    InvalidSignatureError,
    InvalidSubjectError,
    MissingRequiredClaimError,
    PyJWTError,
)
from jwt.types import Options

from eventwire.auth.claims import anonymous_identity, identity_from_claims
from eventwire.auth.errors import AuthClose, AuthCode, AuthError
from eventwire.auth.identity import Identity
from eventwire.auth.keys import VerificationKey, load_signing_key, load_verification_keys
from eventwire.auth.patterns import validate_grant
from eventwire.auth.settings import AuthSettings

__all__ = ["Clock", "TokenVerifier", "mint"]

Clock = Callable[[], float]
"""Seconds since the epoch; ``time.time`` in production, a fake in tests."""

# Signature, iss and aud by PyJWT; times by us, against our clock.
_PYJWT_OPTIONS: Options = {
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "enforce_minimum_key_length": True,
}


def _refuse(reason: str, message: str, **details: Any) -> AuthError:
    return AuthError(
        AuthCode.UNAUTHORIZED, message, {"reason": reason, **details}, AuthClose.UNAUTHORIZED
    )


class TokenVerifier:
    """Turns a token (or its absence) into an Identity; keys are loaded once, here.

    Raises ``AuthConfigError`` at construction when the keys cannot be read.
    """

    def __init__(self, settings: AuthSettings, *, clock: Clock = time.time) -> None:
        self.settings = settings
        self._clock = clock
        self._keys = load_verification_keys(settings)
        self._algorithms = frozenset(key.algorithm for key in self._keys)
        self._anonymous = anonymous_identity(settings) if settings.allow_anonymous else None
        self._jwt = jwt.PyJWT(options=_PYJWT_OPTIONS)

    @property
    def algorithms(self) -> frozenset[str]:
        """The algorithms a token may use, from the configured keys."""
        return self._algorithms

    def authenticate(self, token: str | None, now: float | None = None) -> Identity:
        """The identity of a connection: from its token, or anonymous if that is allowed."""
        if not token:
            if self._anonymous is not None:
                return self._anonymous
            raise _refuse("missing_token", "a token is required: ?token= or an AUTH command")
        return self.verify(token, now)

    def verify(self, token: str, now: float | None = None) -> Identity:
        """Check ``token`` completely and return who it stands for, or raise AuthError."""
        now = self._clock() if now is None else now
        if not self._keys:
            raise _refuse("no_keys", "this gateway accepts no tokens")
        if len(token) > self.settings.jwt_max_token_bytes:
            raise _refuse("too_large", f"token over {self.settings.jwt_max_token_bytes} bytes")
        algorithm, kid = self._header(token)
        claims = self._decode(token, self._candidates(algorithm, kid))
        expires_at, issued_at = self._check_times(claims, now)
        return identity_from_claims(
            claims, self.settings, expires_at=expires_at, issued_at=issued_at
        )

    def _header(self, token: str) -> tuple[str, str | None]:
        try:
            header = jwt.get_unverified_header(token)
        except PyJWTError:
            raise _refuse("malformed", "not a signed JWT") from None
        algorithm = header.get("alg")
        # RFC 8725 2.1: the accepted algorithms come from our keys, never from the token.
        if not isinstance(algorithm, str) or algorithm not in self._algorithms:
            shown = str(algorithm)[:16]
            raise _refuse("algorithm", f"algorithm {shown!r} is not accepted", algorithm=shown)
        kid = header.get("kid")
        return algorithm, kid if isinstance(kid, str) else None

    def _candidates(self, algorithm: str, kid: str | None) -> list[VerificationKey]:
        keys = [key for key in self._keys if key.algorithm == algorithm]
        if kid is not None and any(key.kid is not None for key in keys):
            keys = [key for key in keys if key.kid in (kid, None)]
            if not keys:
                raise _refuse("unknown_key", "the token's key id is not configured")
        return keys

    def _decode(self, token: str, keys: Iterable[VerificationKey]) -> dict[str, Any]:
        settings = self.settings
        for key in keys:
            try:
                return self._jwt.decode(
                    token,
                    key.key,
                    algorithms=[key.algorithm],
                    audience=settings.jwt_audience,
                    issuer=settings.jwt_issuer,
                )
            except (InvalidSignatureError, InvalidKeyError):
                continue  # another key of the same algorithm may have signed it
            except PyJWTError as exc:
                raise _translate(exc) from None
        raise _refuse("bad_signature", "the token's signature does not verify")

    def _check_times(
        self, claims: Mapping[str, Any], now: float
    ) -> tuple[float | None, float | None]:
        leeway = self.settings.jwt_leeway
        exp, nbf, iat = (_time_claim(claims, name) for name in ("exp", "nbf", "iat"))
        if exp is None and self.settings.jwt_require_exp:
            raise _refuse("missing_claim", "the token has no 'exp'", claim="exp")
        if exp is not None and now >= exp + leeway:
            raise AuthError(
                AuthCode.TOKEN_EXPIRED,
                "the token has expired",
                {"reason": "expired"},
                AuthClose.TOKEN_EXPIRED,
            )
        if nbf is not None and now + leeway < nbf:
            raise _refuse("not_yet_valid", "the token is not valid yet ('nbf')")
        # A future iat would outlive a revocation that compares against it.
        if iat is not None and iat > now + leeway:
            raise _refuse("issued_in_future", "the token's 'iat' is in the future")
        return (None if exp is None else exp + leeway), iat


def _time_claim(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _refuse("invalid_claim", f"token claim {name!r} must be a number", claim=name)
    return float(value)


def _translate(exc: PyJWTError) -> AuthError:
    match exc:
        case MissingRequiredClaimError():
            return _refuse("missing_claim", f"the token has no {exc.claim!r}", claim=exc.claim)
        case InvalidIssuerError():
            return _refuse("issuer", "the token's issuer is not accepted")
        case InvalidAudienceError():
            return _refuse("audience", "the token's audience is not this gateway")
        case InvalidAlgorithmError():
            return _refuse("algorithm", "the token's algorithm is not accepted")
        case InvalidSubjectError():
            return _refuse("invalid_claim", "token claim 'sub' must be a string", claim="sub")
        case InvalidJTIError():
            return _refuse("invalid_claim", "token claim 'jti' must be a string", claim="jti")
        case DecodeError():
            return _refuse("malformed", "not a valid JWT")
        case _:
            return _refuse("invalid_claim", f"invalid token: {exc}")


def mint(
    settings: AuthSettings,
    *,
    sub: str,
    tenant: str | None = None,
    subscribe: Iterable[str] = (),
    publish: Iterable[str] = (),
    admin: bool = False,
    ttl: float = 3600.0,
    now: float | None = None,
    kid: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """A signed token for development (`eventwire token create`), under the configured names.

    Signs with ``jwt_private_key_file`` if set (RS256/ES256), else with
    ``jwt_secret`` (HS256); sets ``iss``/``aud`` when configured so the
    gateway accepts what it minted. Raises AuthConfigError or ValueError.
    """
    if not sub:
        raise ValueError("sub must not be empty")
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    subscribe, publish = list(subscribe), list(publish)
    for pattern in (*subscribe, *publish):
        validate_grant(pattern)
    key = load_signing_key(settings)
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {**(extra or {}), "iat": issued, "exp": issued + int(ttl)}
    claims[settings.claim_user] = sub
    if tenant is not None:
        claims[settings.claim_tenant] = tenant
    if subscribe:
        claims[settings.claim_subscribe] = subscribe
    if publish:
        claims[settings.claim_publish] = publish
    if admin:
        claims[settings.claim_admin] = True
    if settings.jwt_issuer is not None:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience is not None:
        claims["aud"] = settings.jwt_audience
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(claims, key.key, algorithm=key.algorithm, headers=headers)
