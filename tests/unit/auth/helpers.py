"""Constants, key pairs and builders shared by the auth tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from eventwire.auth import AuthSettings

NOW = 1_700_000_000.0
SECRET = "s3cret-for-tests-only-0123456789abcdef"

Writer = Callable[[str, bytes | str], Path]
"""Writes bytes to a file in the test's tmp_path and returns its path."""


@dataclass(frozen=True)
class KeyPair:
    private_pem: bytes
    public_pem: bytes
    public: Any


def key_pair(private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> KeyPair:
    public = private.public_key()
    return KeyPair(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        public,
    )


def hs_settings(**overrides: object) -> AuthSettings:
    return AuthSettings.model_validate({"jwt_secret": SECRET, **overrides})
