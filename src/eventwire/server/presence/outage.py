"""Presence's warnings, said once for what happens to many topics at once.

Every tracked topic talks to the broker on its own, so a broker that stops
answering fails them all within one renewal, and a broker that restarts
without its data loses every topic's entries at once. A node tracking ten
thousand topics should say so in one line, not ten thousand.
"""

from __future__ import annotations

import logging
import time
from typing import Any

__all__ = ["Outage", "Throttled"]


class Outage:
    """One warning when the broker stops answering, one line when every topic is through."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._waiting: set[str] = set()
        self._held_up = 0
        self._since = 0.0

    def failed(self, topic: str, error: Exception, tracked: int) -> None:
        """``topic``'s write or read failed; ``tracked``: the topics this node tracks now."""
        if not self._waiting:
            self._since, self._held_up = time.monotonic(), 0
            self._log.warning(
                "presence: the broker is unreachable (%s); %d topics wait for it, retried"
                " with backoff",
                error,
                tracked,
            )
        if topic not in self._waiting:
            self._waiting.add(topic)
            self._held_up += 1

    def answered(self, topic: str) -> None:
        """``topic`` got through; the last of those waiting ends the outage."""
        if topic not in self._waiting:
            return
        self._waiting.discard(topic)
        if not self._waiting:
            self._log.info(
                "presence: the broker answers again after %.1f s; %d topics were held up",
                time.monotonic() - self._since,
                self._held_up,
            )

    def gave_up(self, topic: str) -> None:
        """``topic`` stopped trying (the node is stopping): it no longer keeps the outage open."""
        self._waiting.discard(topic)


class Throttled:
    """A warning said at most once per ``period``, with how many were held back before it."""

    def __init__(self, log: logging.Logger, period: float) -> None:
        self._log = log
        self._period = period
        self._next = 0.0
        self._held = 0

    def warn(self, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now < self._next:
            self._held += 1
            return
        if self._held:
            message, args = f"{message} (%d more like it were held back)", (*args, self._held)
        self._next, self._held = now + self._period, 0
        self._log.warning(message, *args)
