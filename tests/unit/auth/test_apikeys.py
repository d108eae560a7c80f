"""HTTP API keys: hashing, constant-time lookup, scopes, tenant binding, the admin key."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from eventwire.auth import (
    ApiKeySpec,
    ApiKeyStore,
    AuthCode,
    AuthError,
    AuthSettings,
    generate_api_key,
    hash_api_key,
    parse_bearer,
)

ADMIN_KEY = "admin-key-for-tests-0123456789abcdef"
PUBLISHER = generate_api_key()
TENANT_PUBLISHER = generate_api_key()


@pytest.fixture
def store() -> ApiKeyStore:
    settings = AuthSettings(
        admin_key=ADMIN_KEY,
        api_keys=[
            {"name": "orders", "hash": hash_api_key(PUBLISHER), "patterns": ["order:*"]},
            {
                "name": "acme-app",
                "hash": hash_api_key(TENANT_PUBLISHER).removeprefix("sha256:"),
                "patterns": ["gift-list:*", "tenant:*"],
                "tenant_id": "acme",
            },
        ],
    )
    return ApiKeyStore.from_settings(settings)


def test_generated_keys_are_random_and_marked() -> None:
    key = generate_api_key()
    assert key.startswith("ew_")
    assert len(key) >= 43
    assert key != generate_api_key()


def test_hash_is_sha256_hex_of_the_key() -> None:
    assert hash_api_key("k") == "sha256:" + hashlib.sha256(b"k").hexdigest()


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("Bearer abc", "abc"),
        ("bearer   abc  ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("Bearer " + "x" * 600, None),
        (None, None),
    ],
)
def test_parse_bearer(header: str | None, key: str | None) -> None:
    assert parse_bearer(header) == key


def test_identify(store: ApiKeyStore) -> None:
    assert store.enabled
    orders = store.identify(PUBLISHER)
    assert orders is not None
    assert orders.name == "orders"
    assert not orders.admin
    admin = store.identify(ADMIN_KEY)
    assert admin is not None
    assert admin.admin
    assert store.identify("ew_guess") is None
    assert store.identify(hash_api_key(PUBLISHER)) is None  # the hash is not the key


def test_scopes(store: ApiKeyStore) -> None:
    orders = store.authenticate(f"Bearer {PUBLISHER}")
    assert orders.can_publish("order:1")
    assert orders.can_publish("order:1:lines")
    assert not orders.can_publish("gift-list:1")
    assert not orders.can_publish("order:*")
    assert not orders.can_publish("system:x")
    assert orders.can_read("order:1")
    admin = store.authenticate(f"Bearer {ADMIN_KEY}")
    assert admin.can_publish("anything:at-all")
    assert admin.can_publish("tenant:globex:x", "globex")


def test_tenant_bound_key(store: ApiKeyStore) -> None:
    acme = store.authenticate(f"Bearer {TENANT_PUBLISHER}")
    assert acme.tenant_id == "acme"
    assert acme.can_publish("gift-list:1")
    assert acme.can_publish("gift-list:1", "acme")
    assert not acme.can_publish("gift-list:1", "globex")
    assert acme.can_publish("tenant:acme:x")
    assert not acme.can_publish("tenant:globex:x")


def test_authenticate_errors(store: ApiKeyStore) -> None:
    with pytest.raises(AuthError) as missing:
        store.authenticate(None)
    assert missing.value.code is AuthCode.UNAUTHORIZED
    assert missing.value.details == {"reason": "missing_token"}
    assert missing.value.http_status == 401
    with pytest.raises(AuthError) as unknown:
        store.authenticate("Bearer ew_nope")
    assert unknown.value.details == {"reason": "unknown_key"}
    with pytest.raises(AuthError) as forbidden:
        store.authenticate_admin(f"Bearer {PUBLISHER}")
    assert forbidden.value.code is AuthCode.FORBIDDEN
    assert store.authenticate_admin(f"Bearer {ADMIN_KEY}").admin


def test_no_keys_configured() -> None:
    store = ApiKeyStore.from_settings(AuthSettings())
    assert not store.enabled
    assert store.identify("anything") is None


@pytest.mark.parametrize(
    "spec",
    [
        {"name": "x", "hash": "md5:abc", "patterns": ["a:*"]},
        {"name": "x", "hash": "sha256:" + "0" * 63, "patterns": ["a:*"]},
        {"name": "x", "hash": "0" * 64, "patterns": []},
        {"name": "x", "hash": "0" * 64, "patterns": ["not a pattern"]},
        {"name": "", "hash": "0" * 64, "patterns": ["a:*"]},
        {"name": "x", "hash": "0" * 64, "patterns": ["a:*"], "scope": "all"},
    ],
)
def test_bad_key_specs(spec: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ApiKeySpec.model_validate(spec)


def test_hash_accepts_upper_case_and_no_prefix() -> None:
    spec = ApiKeySpec(name="x", hash="SHA256:" + "AB" * 32, patterns=["a:*"])
    assert spec.hash == "ab" * 32


def test_names_must_be_unique() -> None:
    spec = {"name": "x", "hash": "0" * 64, "patterns": ["a:*"]}
    with pytest.raises(ValidationError, match="its own name"):
        AuthSettings.model_validate({"api_keys": [spec, spec]})
