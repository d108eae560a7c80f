"""The gateway server: hub, transports, HTTP API, metrics and configuration."""

from eventwire.server.config import Settings, load_settings
from eventwire.server.gateway import Gateway, Published

__all__ = ["Gateway", "Published", "Settings", "load_settings"]
