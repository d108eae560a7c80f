"""AuthSettings: validation at startup, and the flat EVENTWIRE_* names once mixed in."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from eventwire.auth import AuthSettings, TokenVerifier, hash_api_key
from tests.unit.auth.helpers import SECRET


class EmbeddedSettings(BaseSettings, AuthSettings):
    """How the server's Settings is meant to take these fields: mixed in, flat."""

    model_config = SettingsConfigDict(env_prefix="EVENTWIRE_", extra="forbid")

    port: int = 8000


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("EVENTWIRE_"):
            monkeypatch.delenv(name)


def test_defaults_leave_auth_off() -> None:
    settings = AuthSettings()
    assert not settings.auth_enabled
    assert not settings.tokens_enabled
    assert not settings.api_keys_enabled
    assert settings.claim_user == "sub"
    assert settings.claim_tenant == "tenant_id"
    assert (settings.claim_subscribe, settings.claim_publish) == ("subscribe", "publish")
    assert settings.claim_admin == "admin"
    assert settings.auth_timeout == 5.0


def test_anonymous_alone_turns_auth_on() -> None:
    settings = AuthSettings(allow_anonymous=True, anonymous_subscribe=["public:*"])
    assert settings.auth_enabled
    assert not settings.tokens_enabled


def test_environment_names_when_mixed_into_the_server_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key_hash = hash_api_key("ew_publisher")
    monkeypatch.setenv("EVENTWIRE_JWT_SECRET", SECRET)
    monkeypatch.setenv("EVENTWIRE_JWT_PUBLIC_KEY_FILE", str(tmp_path / "k.pem"))
    monkeypatch.setenv("EVENTWIRE_ADMIN_KEY", "a" * 40)
    monkeypatch.setenv("EVENTWIRE_CLAIM_TENANT", "org")
    monkeypatch.setenv("EVENTWIRE_JWT_LEEWAY", "5")
    monkeypatch.setenv("EVENTWIRE_GRANT_SUBSCRIBE", '["user:{user_id}:*"]')
    monkeypatch.setenv("EVENTWIRE_CLIENT_PUBLISHABLE", '["MESSAGE_SENT"]')
    monkeypatch.setenv("EVENTWIRE_ALLOWED_ORIGINS", '["https://app.example.com"]')
    monkeypatch.setenv(
        "EVENTWIRE_API_KEYS",
        json.dumps([{"name": "orders", "hash": key_hash, "patterns": ["order:*"]}]),
    )
    monkeypatch.setenv("EVENTWIRE_MAX_CONNECTIONS_PER_USER", "3")
    monkeypatch.setenv("EVENTWIRE_PORT", "9000")
    settings = EmbeddedSettings()
    assert settings.port == 9000
    assert settings.jwt_secret is not None
    assert settings.jwt_secret.get_secret_value() == SECRET
    assert settings.jwt_public_key_file == tmp_path / "k.pem"
    assert settings.admin_key is not None
    assert settings.admin_key.get_secret_value() == "a" * 40
    assert settings.claim_tenant == "org"
    assert settings.jwt_leeway == 5.0
    assert settings.grant_subscribe == ["user:{user_id}:*"]
    assert settings.client_publishable == ["MESSAGE_SENT"]
    assert settings.allowed_origins == ["https://app.example.com"]
    assert settings.api_keys[0].hash == key_hash.removeprefix("sha256:")
    assert settings.max_connections_per_user == 3
    # The server's Settings *is* an AuthSettings: hand it over as it is.
    assert isinstance(settings, AuthSettings)


def test_the_embedded_settings_feed_the_verifier(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTWIRE_JWT_SECRET", SECRET)
    assert TokenVerifier(EmbeddedSettings()).algorithms == {"HS256"}


def test_secrets_do_not_show() -> None:
    settings = AuthSettings(jwt_secret=SECRET, admin_key="k" * 40)
    assert SECRET not in repr(settings)
    assert "k" * 40 not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("jwt_secret", "short", "at least 32 bytes"),
        ("admin_key", "short", "at least 32 characters"),
        ("jwt_algorithms", ["none"], "HS256"),
        ("jwt_leeway", 3600, "less than or equal"),
        ("grant_subscribe", ["user:{uid}:*"], "unknown placeholder"),
        ("anonymous_subscribe", ["not a pattern"], "not a topic pattern"),
        ("client_publishable", ["message sent"], "UPPER_SNAKE_CASE"),
        ("allowed_origins", ["app.example.com"], "scheme://host"),
        ("allowed_origins", ["https://app.example.com/path"], "scheme://host"),
        ("auth_policy", "not a path", "package.module:callable"),
        ("claim_tenant", "sub", "five different claim names"),
        ("claim_user", "", "at least 1 character"),
        ("max_connections_per_user", -1, "greater than or equal"),
        ("auth_timeout", 0, "greater than 0"),
        ("unknown_field", 1, "Extra inputs"),
    ],
)
def test_bad_settings_stop_startup(field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AuthSettings.model_validate({field: value})


def test_origins_are_normalized() -> None:
    settings = AuthSettings(allowed_origins=[" HTTPS://App.Example.com/ "])
    assert settings.allowed_origins == ["https://app.example.com"]
