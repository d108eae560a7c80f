"""Verified claims → Identity, under the claim names the configuration chooses.

The defaults follow common issuers: ``sub`` is the user, ``tenant_id`` the
tenant, ``subscribe`` and ``publish`` list patterns, ``admin`` is a boolean.
Types are strict: ``"admin": "true"`` is refused, not read as true, because
a claim that does not mean what its issuer meant must fail closed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eventwire.auth.errors import AuthClose, AuthCode, AuthError
from eventwire.auth.identity import Identity
from eventwire.auth.settings import AuthSettings

__all__ = ["anonymous_identity", "identity_from_claims"]

_MAX_ID = 256


def identity_from_claims(
    claims: Mapping[str, Any],
    settings: AuthSettings,
    *,
    expires_at: float | None = None,
    issued_at: float | None = None,
) -> Identity:
    """The identity a verified token stands for, with the configured grants added."""
    user_id = _identifier(claims, settings.claim_user, required=True)
    tenant_id = _identifier(claims, settings.claim_tenant, required=False)
    admin = claims.get(settings.claim_admin, False)
    if not isinstance(admin, bool):
        raise _bad_claim(settings.claim_admin, "true or false")
    subscribe = _patterns(claims, settings.claim_subscribe)
    publish = _patterns(claims, settings.claim_publish)
    return Identity.build(
        user_id,
        tenant_id,
        [*subscribe, *settings.grant_subscribe],
        [*publish, *settings.grant_publish],
        admin=admin,
        expires_at=expires_at,
        issued_at=issued_at,
    )


def anonymous_identity(settings: AuthSettings) -> Identity:
    """A connection without a token: no user, no tenant, only the anonymous grants.

    Placeholders have no value here, so a grant such as ``user:{user_id}:*``
    in ``anonymous_subscribe`` is dropped rather than widened.
    """
    return Identity.build(
        None, None, settings.anonymous_subscribe, settings.anonymous_publish, anonymous=True
    )


def _identifier(claims: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_ID:
        raise _bad_claim(name, f"a string of 1 to {_MAX_ID} characters")
    return value


def _patterns(claims: Mapping[str, Any], name: str) -> list[str]:
    """A list of patterns; a string is split on spaces, as OAuth's ``scope`` is."""
    value = claims.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise _bad_claim(name, "a list of topic patterns")


def _bad_claim(name: str, expected: str) -> AuthError:
    return AuthError(
        AuthCode.UNAUTHORIZED,
        f"token claim {name!r} must be {expected}",
        {"reason": "invalid_claim", "claim": name},
        AuthClose.UNAUTHORIZED,
    )
