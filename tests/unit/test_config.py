"""Layered configuration: flags, then EVENTWIRE_* environment, then a TOML file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from eventwire.server.config import Settings, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("EVENTWIRE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _toml(tmp_path: Path, text: str, name: str = "eventwire.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults() -> None:
    settings = load_settings()
    assert isinstance(settings, Settings)
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.broker == "memory://"
    assert settings.max_frame == 64 * 1024
    assert settings.payload_max == 100 * 1024
    assert settings.demo is False


def test_flags_win_over_env_and_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = _toml(tmp_path, 'port = 7000\nhost = "file-host"\nlog_level = "debug"\n')
    monkeypatch.setenv("EVENTWIRE_PORT", "8001")
    monkeypatch.setenv("EVENTWIRE_HOST", "env-host")
    settings = load_settings(path, port=9000)
    assert settings.port == 9000  # flag
    assert settings.host == "env-host"  # env over file
    assert settings.log_level == "debug"  # file over default
    assert settings.max_subscriptions == 1000  # default


def test_none_flags_are_unset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = _toml(tmp_path, "port = 7000\n")
    monkeypatch.setenv("EVENTWIRE_HOST", "env-host")
    settings = load_settings(path, port=None, host=None)
    assert settings.port == 7000
    assert settings.host == "env-host"


def test_env_values_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTWIRE_PORT", "8123")
    monkeypatch.setenv("EVENTWIRE_DEMO", "true")
    monkeypatch.setenv("EVENTWIRE_HEARTBEAT_INTERVAL", "2.5")
    settings = load_settings()
    assert settings.port == 8123
    assert settings.demo is True
    assert settings.heartbeat_interval == 2.5


def test_eventwire_table(tmp_path: Path) -> None:
    path = _toml(tmp_path, '[eventwire]\nport = 7001\nbroker = "redis://localhost"\n')
    settings = load_settings(path)
    assert settings.port == 7001
    assert settings.broker == "redis://localhost"


def test_config_file_as_str(tmp_path: Path) -> None:
    path = _toml(tmp_path, "max_batch = 5\n")
    assert load_settings(str(path)).max_batch == 5


def test_eventwire_config_env_names_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = _toml(tmp_path, "port = 7002\n")
    monkeypatch.setenv("EVENTWIRE_CONFIG", str(path))
    assert load_settings().port == 7002


def test_config_flag_wins_over_eventwire_config_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from_env = _toml(tmp_path, "port = 7003\n", "env.toml")
    from_flag = _toml(tmp_path, "port = 7004\n", "flag.toml")
    monkeypatch.setenv("EVENTWIRE_CONFIG", str(from_env))
    assert load_settings(from_flag).port == 7004


def test_unknown_key_in_file_is_rejected(tmp_path: Path) -> None:
    path = _toml(tmp_path, "prot = 9000\n")
    with pytest.raises(ValidationError, match="prot"):
        load_settings(path)


def test_unknown_key_in_eventwire_table_is_rejected(tmp_path: Path) -> None:
    path = _toml(tmp_path, "[eventwire]\nheartbeat = 3\n")
    with pytest.raises(ValidationError, match="heartbeat"):
        load_settings(path)


def test_unknown_flag_is_rejected() -> None:
    with pytest.raises(ValidationError, match="bogus"):
        load_settings(bogus=1)


def test_out_of_range_value_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="port"):
        load_settings(_toml(tmp_path, "port = 70000\n"))
    with pytest.raises(ValidationError, match="max_frame"):
        load_settings(max_frame=0)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.toml"):
        load_settings(tmp_path / "nope.toml")


def test_missing_file_named_by_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EVENTWIRE_CONFIG", str(tmp_path / "gone.toml"))
    with pytest.raises(FileNotFoundError):
        load_settings()


def test_non_table_eventwire_key_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="table"):
        load_settings(_toml(tmp_path, 'eventwire = "yes"\n'))
