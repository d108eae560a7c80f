"""Verification and signing keys, read from the configuration once, at startup.

Each key is bound to exactly one algorithm when it is loaded. A token's
``alg`` header only selects among keys already bound to that algorithm, so
a token cannot make the gateway use an RSA public key as an HMAC secret
(RFC 8725 2.1, algorithm confusion), and ``alg: none`` finds no key at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from jwt.algorithms import has_crypto
from jwt.exceptions import InvalidKeyError, PyJWKError, PyJWKSetError

from eventwire.auth.errors import AuthConfigError
from eventwire.auth.settings import ALGORITHMS, Algorithm, AuthSettings

__all__ = ["SigningKey", "VerificationKey", "load_signing_key", "load_verification_keys"]

_ASYMMETRIC: tuple[Algorithm, ...] = ("RS256", "ES256")


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """One key and the one algorithm it verifies; ``kid`` when a JWKS names it."""

    algorithm: Algorithm
    key: Any
    kid: str | None
    source: str


@dataclass(frozen=True, slots=True)
class SigningKey:
    """What `eventwire token create` signs development tokens with."""

    algorithm: Algorithm
    key: Any


def load_verification_keys(settings: AuthSettings) -> tuple[VerificationKey, ...]:
    """Every configured verification key, filtered by ``jwt_algorithms`` when set."""
    keys: list[VerificationKey] = []
    if settings.jwt_secret is not None:
        secret = settings.jwt_secret.get_secret_value().encode()
        keys.append(VerificationKey("HS256", secret, None, "jwt_secret"))
    if settings.jwt_public_key_file is not None:
        algorithm, key = _load_pem(settings.jwt_public_key_file, private=False)
        keys.append(VerificationKey(algorithm, key, None, "jwt_public_key_file"))
    if settings.jwks_file is not None:
        keys.extend(_load_jwks(settings.jwks_file))
    for key in keys:
        _check_strength(key.algorithm, key.key, key.source)
    return _filter(keys, settings.jwt_algorithms)


def _check_strength(algorithm: Algorithm, key: Any, source: str) -> None:
    # PyJWT would only warn per token (NIST SP 800-131A: RSA >= 2048 bits); refuse at startup.
    weakness = jwt.get_algorithm_by_name(algorithm).check_key_length(key)
    if weakness is not None:
        raise AuthConfigError(f"{source}: {weakness}")


def load_signing_key(settings: AuthSettings) -> SigningKey:
    """The private key file if configured, else the HS256 secret."""
    if settings.jwt_private_key_file is not None:
        algorithm, key = _load_pem(settings.jwt_private_key_file, private=True)
        return SigningKey(algorithm, key)
    if settings.jwt_secret is not None:
        return SigningKey("HS256", settings.jwt_secret.get_secret_value().encode())
    raise AuthConfigError(
        "minting a token needs jwt_secret (EVENTWIRE_JWT_SECRET) or, for RS256/ES256,"
        " jwt_private_key_file (EVENTWIRE_JWT_PRIVATE_KEY_FILE)"
    )


def _filter(
    keys: list[VerificationKey], wanted: Iterable[Algorithm]
) -> tuple[VerificationKey, ...]:
    wanted = tuple(wanted)
    if not wanted:
        return tuple(keys)
    have = {key.algorithm for key in keys}
    lacking = [algorithm for algorithm in wanted if algorithm not in have]
    if lacking:
        raise AuthConfigError(
            f"jwt_algorithms lists {', '.join(lacking)} but no configured key is for it"
            f" (keys are for: {', '.join(sorted(have)) or 'nothing'})"
        )
    return tuple(key for key in keys if key.algorithm in wanted)


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise AuthConfigError(f"{setting}: cannot read {str(path)!r}: {exc.strerror}") from exc


def _require_crypto() -> None:
    if not has_crypto:
        raise AuthConfigError(
            "RS256 and ES256 need the 'cryptography' package: install PyJWT[crypto]"
        )


def _load_pem(path: Path, *, private: bool) -> tuple[Algorithm, Any]:
    setting = "jwt_private_key_file" if private else "jwt_public_key_file"
    _require_crypto()
    pem = _read(path, setting)
    for algorithm in _ASYMMETRIC:
        try:
            key = jwt.get_algorithm_by_name(algorithm).prepare_key(pem)
        except (InvalidKeyError, ValueError, TypeError):
            continue
        is_private = hasattr(key, "public_key")
        if is_private != private:
            raise AuthConfigError(
                f"{setting}: {str(path)!r} holds a {'public' if private else 'private'} key;"
                f" expected a {'private' if private else 'public'} one"
                + ("" if private else " (the gateway only verifies: give it the public key)")
            )
        return algorithm, key
    raise AuthConfigError(
        f"{setting}: {str(path)!r} is not a PEM RSA key or P-256 EC key (for RS256 or ES256)"
    )


def _load_jwks(path: Path) -> list[VerificationKey]:
    _require_crypto()
    raw = _read(path, "jwks_file")
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise AuthConfigError(f"jwks_file: {str(path)!r} is not JSON: {exc}") from exc
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise AuthConfigError(f"jwks_file: {str(path)!r} has no 'keys' list")
    # RFC 7517 4.2: a key whose "use" is not "sig" is not for verifying signatures.
    usable = [e for e in entries if isinstance(e, dict) and e.get("use", "sig") == "sig"]
    try:
        keyset = jwt.PyJWKSet(usable)
    except (PyJWKError, PyJWKSetError) as exc:
        raise AuthConfigError(f"jwks_file: {str(path)!r}: {exc}") from exc
    keys = [
        VerificationKey(_algorithm(jwk.algorithm_name), jwk.key, jwk.key_id, "jwks_file")
        for jwk in keyset
        if jwk.algorithm_name in ALGORITHMS
    ]
    if not keys:
        raise AuthConfigError(f"jwks_file: {str(path)!r} has no HS256, RS256 or ES256 key")
    if any(hasattr(key.key, "public_key") for key in keys if key.algorithm != "HS256"):
        raise AuthConfigError(f"jwks_file: {str(path)!r} holds private keys; publish public ones")
    return keys


def _algorithm(name: str) -> Algorithm:
    for algorithm in ALGORITHMS:
        if algorithm == name:
            return algorithm
    raise AuthConfigError(f"unsupported algorithm {name!r}")  # pragma: no cover - filtered
