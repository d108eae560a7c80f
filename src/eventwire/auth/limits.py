"""Abuse limits beyond one connection: connection caps and shared rate buckets.

Pure counters, with the time passed in. Per-connection limits (command
rate, subscriptions, frame size) live in the session; these bound what one
user, one tenant or one address can hold or do across all its connections
on this node, so opening more sockets does not buy more capacity.

Connections are counted with a ``Ticket`` that remembers exactly what it
was counted under, so releasing it is exact even if the identity changed
in between (an anonymous connection that signed in).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from eventwire.auth.errors import AuthClose, AuthCode, AuthError
from eventwire.auth.identity import Identity
from eventwire.auth.settings import AuthSettings

__all__ = ["ConnectionLimiter", "Ticket", "TokenBuckets", "UsageLimiter"]

K = TypeVar("K", bound=Hashable)
UserKey = tuple[str | None, str]
"""``(tenant_id, user_id)``: the same user id in two tenants is two users."""


def _too_many(scope: str, limit: int) -> AuthError:
    return AuthError(
        AuthCode.TOO_MANY_CONNECTIONS,
        f"too many connections for this {scope} (at most {limit})",
        {"scope": scope, "limit": limit},
        AuthClose.TOO_MANY_CONNECTIONS,
    )


@dataclass(slots=True)
class Ticket:
    """What one connection is counted under; hand it back to ``release``."""

    ip: str | None
    pending: bool
    user: UserKey | None = None
    tenant: str | None = None
    released: bool = False


class _Counter(Generic[K]):
    __slots__ = ("_counts", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[K, int] = {}

    def full(self, key: K) -> bool:
        return self.limit > 0 and self._counts.get(key, 0) >= self.limit

    def add(self, key: K) -> None:
        self._counts[key] = self._counts.get(key, 0) + 1

    def remove(self, key: K) -> None:
        left = self._counts.get(key, 0) - 1
        if left > 0:
            self._counts[key] = left
        else:
            self._counts.pop(key, None)

    def get(self, key: K) -> int:
        return self._counts.get(key, 0)


class ConnectionLimiter:
    """Caps on open connections per user, per tenant, per IP and awaiting auth (0: no cap)."""

    def __init__(
        self, *, per_user: int = 0, per_tenant: int = 0, per_ip: int = 0, unauthenticated: int = 0
    ) -> None:
        self._users: _Counter[UserKey] = _Counter(per_user)
        self._tenants: _Counter[str] = _Counter(per_tenant)
        self._ips: _Counter[str] = _Counter(per_ip)
        self._pending: _Counter[None] = _Counter(unauthenticated)

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> ConnectionLimiter:
        return cls(
            per_user=settings.max_connections_per_user,
            per_tenant=settings.max_connections_per_tenant,
            per_ip=settings.max_connections_per_ip,
            unauthenticated=settings.max_unauthenticated,
        )

    def open(self, ip: str | None, *, pending: bool = True) -> Ticket:
        """Count a new connection at the handshake; AuthError(TOO_MANY_CONNECTIONS) if over.

        ``pending`` is true while the connection has yet to send AUTH.
        """
        if ip is not None and self._ips.full(ip):
            raise _too_many("address", self._ips.limit)
        if pending and self._pending.full(None):
            raise _too_many("gateway's unauthenticated connections", self._pending.limit)
        if ip is not None:
            self._ips.add(ip)
        if pending:
            self._pending.add(None)
        return Ticket(ip, pending)

    def authenticate(self, ticket: Ticket, identity: Identity) -> None:
        """Count ``ticket`` under its identity's user and tenant; AuthError if over a cap.

        On refusal the ticket is left as it was; the caller closes the
        connection and releases it.
        """
        user = None if identity.user_id is None else (identity.tenant_id, identity.user_id)
        tenant = identity.tenant_id
        if user is not None and user != ticket.user and self._users.full(user):
            raise _too_many("user", self._users.limit)
        if tenant is not None and tenant != ticket.tenant and self._tenants.full(tenant):
            raise _too_many("tenant", self._tenants.limit)
        self._uncount_identity(ticket)
        if ticket.pending:
            self._pending.remove(None)
            ticket.pending = False
        ticket.user, ticket.tenant = user, tenant
        if user is not None:
            self._users.add(user)
        if tenant is not None:
            self._tenants.add(tenant)

    def release(self, ticket: Ticket) -> None:
        """The connection ended; calling it again does nothing."""
        if ticket.released:
            return
        ticket.released = True
        self._uncount_identity(ticket)
        if ticket.pending:
            self._pending.remove(None)
        if ticket.ip is not None:
            self._ips.remove(ticket.ip)

    def count(
        self, *, user: UserKey | None = None, tenant: str | None = None, ip: str | None = None
    ) -> int:
        """Open connections of one user, tenant or address (for metrics and tests)."""
        if user is not None:
            return self._users.get(user)
        if tenant is not None:
            return self._tenants.get(tenant)
        if ip is not None:
            return self._ips.get(ip)
        return self._pending.get(None)

    def _uncount_identity(self, ticket: Ticket) -> None:
        if ticket.user is not None:
            self._users.remove(ticket.user)
        if ticket.tenant is not None:
            self._tenants.remove(ticket.tenant)
        ticket.user = ticket.tenant = None


class TokenBuckets(Generic[K]):
    """One token bucket per key, all with the same rate and burst.

    A bucket that has refilled completely is the same as no bucket, so such
    buckets are forgotten once the table grows: memory follows the keys
    active in the last ``burst / rate`` seconds, not every key ever seen.
    """

    __slots__ = ("_buckets", "_next_prune", "burst", "rate")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[K, tuple[float, float]] = {}  # key -> (tokens, updated)
        self._next_prune = 1024

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def available(self, key: K, now: float) -> float:
        """Tokens ``key`` could spend now."""
        state = self._buckets.get(key)
        if state is None:
            return self.burst
        tokens, updated = state
        return min(self.burst, tokens + max(0.0, now - updated) * self.rate)

    def take(self, key: K, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens of ``key``'s bucket if it holds them; always true when disabled."""
        if not self.enabled:
            return True
        tokens = self.available(key, now)
        if tokens < cost:
            return False
        if key not in self._buckets and len(self._buckets) >= self._next_prune:
            self._prune(now)
        self._buckets[key] = (tokens - cost, now)
        return True

    def __len__(self) -> int:
        return len(self._buckets)

    def _prune(self, now: float) -> None:
        self._buckets = {
            key: state
            for key, state in self._buckets.items()
            if self.available(key, now) < self.burst
        }
        self._next_prune = max(1024, 2 * len(self._buckets))


class UsageLimiter:
    """Per-user and per-tenant command rates, shared by all their connections on this node."""

    def __init__(
        self,
        *,
        user_rate: float = 0.0,
        user_burst: int = 1,
        tenant_rate: float = 0.0,
        tenant_burst: int = 1,
    ) -> None:
        self.users: TokenBuckets[UserKey] = TokenBuckets(user_rate, user_burst)
        self.tenants: TokenBuckets[str] = TokenBuckets(tenant_rate, tenant_burst)

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> UsageLimiter:
        return cls(
            user_rate=settings.user_commands_per_second,
            user_burst=settings.user_command_burst,
            tenant_rate=settings.tenant_commands_per_second,
            tenant_burst=settings.tenant_command_burst,
        )

    def take(self, identity: Identity, now: float, cost: float = 1.0) -> None:
        """Spend ``cost`` from the user's and the tenant's buckets, or raise RATE_LIMITED.

        Both are checked before either is spent, so a tenant-wide refusal
        does not also drain the user's own allowance.
        """
        user = None if identity.user_id is None else (identity.tenant_id, identity.user_id)
        tenant = identity.tenant_id
        if user is not None and self.users.enabled and self.users.available(user, now) < cost:
            raise _rate_limited("user")
        if (
            tenant is not None
            and self.tenants.enabled
            and self.tenants.available(tenant, now) < cost
        ):
            raise _rate_limited("tenant")
        if user is not None:
            self.users.take(user, now, cost)
        if tenant is not None:
            self.tenants.take(tenant, now, cost)


def _rate_limited(scope: str) -> AuthError:
    return AuthError(
        AuthCode.RATE_LIMITED, f"too many commands for this {scope}; slow down", {"scope": scope}
    )
