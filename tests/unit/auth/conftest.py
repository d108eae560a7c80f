"""Keys made once per test session (RSA generation is the slow part), and a file writer."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.unit.auth.helpers import KeyPair, Writer, key_pair


@pytest.fixture(scope="session")
def rsa_keys() -> KeyPair:
    return key_pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="session")
def rsa_keys_other() -> KeyPair:
    return key_pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="session")
def ec_keys() -> KeyPair:
    return key_pair(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture
def write(tmp_path: Path) -> Writer:
    def _write(name: str, data: bytes | str) -> Path:
        path = tmp_path / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    return _write
