"""How many WebSocket frames one connection may send: fair reading, without I/O.

Every inbound frame costs the server work, whatever it carries: a ping is
answered, a fragment is buffered, a command is parsed. So every frame,
control frames and fragments included, takes one token from the
connection's bucket (``frame_rate`` per second, up to ``frame_burst``).

- Before the connection is authenticated it has no bucket, only a small
  allowance (``unauthenticated_frames``): an AUTH, a PING or two. A frame
  past it is a flood: the connection is closed (4029).
- Once the bucket is dry, reading pauses until it holds half a burst again:
  the peer's frames wait in the kernel, costing us nothing. That is a
  *strike*; a bucket that refills to full (the peer paused for a while)
  forgives every strike. A peer that drains the bucket again and again,
  ``strikes`` times in a row, is flooding: it is closed (4029).

The transport asks ``take(now, authenticated)`` for every frame and, when
it answers False, reads ``flooding`` and ``pause_for`` to decide.
"""

from __future__ import annotations

__all__ = ["FrameBudget"]


class FrameBudget:
    """One connection's frame allowance: a token bucket with strikes."""

    __slots__ = (
        "_allowance",
        "_burst",
        "_max_strikes",
        "_rate",
        "_strikes",
        "_tokens",
        "_updated",
        "flooding",
    )

    def __init__(
        self, *, rate: float, burst: int, before_auth: int, strikes: int, now: float
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._allowance = before_auth
        self._max_strikes = strikes
        self._strikes = 0
        self._tokens = float(burst)
        self._updated = now
        self.flooding = False
        """Set once the connection must be closed (4029): it kept going past its budget."""

    def take(self, now: float, authenticated: bool) -> bool:
        """Spend one frame; False when the connection must stop reading (or be closed)."""
        if not authenticated:
            self._allowance -= 1
            if self._allowance < 0:
                self.flooding = True
            return not self.flooding
        self._refill(now)
        had = self._tokens
        self._tokens -= 1.0
        if self._tokens >= 0.0:
            return True
        if had >= 0.0:  # just ran dry: one strike, however many frames follow in debt
            self._strikes += 1
            self.flooding = self._strikes >= self._max_strikes
        return False

    def pause_for(self, now: float) -> float:
        """Seconds to stop reading until half a burst is back in the bucket."""
        self._refill(now)
        return max(0.0, (self._burst / 2 - self._tokens) / self._rate)

    def _refill(self, now: float) -> None:
        tokens = self._tokens + (now - self._updated) * self._rate
        if tokens >= self._burst:
            tokens = self._burst
            self._strikes = 0  # quiet long enough to fill up: forgiven
        self._tokens = tokens
        self._updated = now
