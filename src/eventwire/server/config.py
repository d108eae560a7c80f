"""Gateway configuration: flags, then ``EVENTWIRE_*`` environment, then a TOML file.

One model validates all three sources; the first that sets a value wins. The
auth settings (``eventwire.auth.AuthSettings``: JWT keys, grants, API keys,
limits) are mixed in under the same names, so ``EVENTWIRE_JWT_SECRET`` and
``jwt_secret = "..."`` in the file both fill ``jwt_secret``.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from eventwire.auth.settings import AuthSettings
from eventwire.topics import checked_pattern

__all__ = ["Settings", "load_settings"]

KIB = 1024
STOP_ALLOWANCE = 5.0
"""Seconds of ``Settings.stop_budget`` for what a stop does past its waits (closing the broker)."""


class Settings(BaseSettings, AuthSettings):
    """Every knob of the gateway, with the default a production node starts with.

    The auth fields come from ``AuthSettings``; with no JWT key and
    ``allow_anonymous`` off, authentication is off and the gateway is open.
    """

    model_config = SettingsConfigDict(env_prefix="EVENTWIRE_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    broker: str = "memory://"
    history_size: int = Field(1000, ge=0)
    """Events kept per topic for history and recovery (every broker)."""
    history_age: float | None = Field(3600.0, gt=0)
    """Seconds an event stays in history; None: until ``history_size`` pushes it out."""
    max_recovery: int = Field(1000, ge=0)
    """Most missed events SUBSCRIBE's ``since`` replays per topic; more: ``recovered: false``."""
    log_level: str = "info"
    workers: int = Field(1, ge=0)
    """Processes serving the port together (``eventwire serve``); 0 or ``auto``: one per CPU."""
    demo: bool = False
    """Publish a small stream of demo events (what `make run` shows)."""

    max_frame: int = Field(64 * KIB, gt=0)
    """Largest inbound WebSocket message; larger ones close the connection with 1009."""
    max_outbound_buffer: int = Field(1024 * KIB, gt=0)
    """Bytes queued for one connection before it is closed as a slow consumer (4008).

    Everything the gateway writes counts: events, replies, pongs, replays, the close frame.
    """
    frame_rate: float = Field(200.0, gt=0)
    """Inbound WebSocket frames per second one connection may send, control frames included;
    past ``frame_burst`` reading pauses, and a connection that keeps at it is closed (4029)."""
    frame_burst: int = Field(400, gt=0)
    unauthenticated_frames: int = Field(8, gt=0)
    """Frames a connection may send before it is authenticated; one more closes it (4029)."""
    frame_timeout: float = Field(10.0, gt=0)
    """Seconds a frame, or a fragmented message, may take from its first byte to its last (4004)."""
    heartbeat_interval: float = Field(25.0, gt=0)
    """Seconds between server pings."""
    heartbeat_timeout: float = Field(20.0, gt=0)
    """Seconds of silence past an interval before a peer is closed (4002)."""
    payload_warn: int = Field(10 * KIB, gt=0)
    """Encoded payload size that logs a warning (the seed: <10KB ideal)."""
    payload_max: int = Field(100 * KIB, gt=0)
    """Encoded payload size that is refused with PAYLOAD_TOO_LARGE (the seed: <100KB maximum)."""
    max_http_body: int = Field(16 * 1024 * KIB, gt=0)
    http_timeout: float = Field(30.0, gt=0)
    """Seconds an HTTP connection may take to send a whole request, or sit idle between requests."""
    max_batch: int = Field(1000, gt=0)
    max_subscriptions: int = Field(1000, gt=0)
    commands_per_second: float = Field(50.0, gt=0)
    command_burst: int = Field(100, gt=0)
    allow_pattern_subscriptions: bool = False
    """Let every connection SUBSCRIBE to wildcard patterns (the inspector, `tail 'room:*'`).

    For trusted networks and development. Only read while authentication is
    off; with authentication, admins may and nobody else.
    """
    flood_threshold: int = Field(200, gt=0)
    """Commands refused for rate in a row before the connection is closed (4029)."""
    shutdown_grace: float = Field(5.0, ge=0)
    """Seconds to wait for in-flight publishes and close handshakes on shutdown."""
    catalog: str | None = None
    """The event catalog every publish is checked against: ``module:attribute`` or a .json file.

    With ``demo`` on and no catalog given, the demo's ``eventwire.demo:catalog``.
    """
    lint: list[str] = []
    """Publish-time lint severities, ``RULE=error|warning|info|off`` (a rule id or name)."""
    presence_topics: list[str] = []
    """Topics (``room:*`` patterns or topics) whose subscribers are tracked on every node.

    None by default: presence costs nothing unless asked for.
    """
    presence_events: list[str] = []
    """Topics (patterns) on which USER_JOINED and USER_LEFT are published; tracked too."""
    presence_ttl: float = Field(30.0, gt=0)
    """Seconds a node's presence entries outlive its last renewal (every third of it).

    A node that dies takes its users with it this long after; another node
    then announces them gone.
    """

    @property
    def stop_budget(self) -> float:
        """Seconds a graceful stop may take before it is cut short (``Gateway.serve_forever``).

        Its waits: three of ``shutdown_grace`` (publishes in flight, close
        handshakes, server-side handlers), two more of at least a second with
        presence (finishing its writes, handing its entries over), and
        ``STOP_ALLOWANCE`` to close the broker. The workers' supervisor
        kills a worker that outlives it.
        """
        waits = 3 * self.shutdown_grace
        if self.presence_topics or self.presence_events:
            waits += 2 * max(1.0, self.shutdown_grace)
        return waits + STOP_ALLOWANCE

    @field_validator("presence_topics", "presence_events")
    @classmethod
    def _presence_patterns(cls, items: list[str]) -> list[str]:
        return [checked_pattern(item) for item in items]

    @field_validator("workers", mode="before")
    @classmethod
    def _auto_workers(cls, value: object) -> object:
        return 0 if value == "auto" else value

    @field_validator("lint")
    @classmethod
    def _lint_rules(cls, items: list[str]) -> list[str]:
        from eventwire.catalog.lint import LintConfig

        LintConfig.parse(items)  # a ValueError names the bad item
        return items


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"configuration file {str(path)!r} does not exist")
    document = tomllib.loads(path.read_text())
    table = document.get("eventwire", document)
    if not isinstance(table, dict):
        raise ValueError(f"{path}: [eventwire] must be a table")
    return table


def load_settings(config_file: str | Path | None = None, **flags: Any) -> Settings:
    """Settings from ``flags`` (None means unset), the environment, then ``config_file``.

    The TOML file holds the same names as the flags (``port = 9000``), at its
    top level or under an ``[eventwire]`` table. ``EVENTWIRE_CONFIG`` names the
    file when no flag does.
    """
    given = {name: value for name, value in flags.items() if value is not None}
    config_file = config_file or os.environ.get("EVENTWIRE_CONFIG")
    from_file = _read_toml(Path(config_file)) if config_file else {}

    class _Layered(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (
                init_settings,
                env_settings,
                InitSettingsSource(settings_cls, init_kwargs=from_file),
            )

    return _Layered(**given)
