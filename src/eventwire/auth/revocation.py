"""Live revocation: what ``POST /v1/revoke`` asks for, and how long it keeps refusing.

A request names a user, a tenant, a pattern, or a combination (all given
fields must match). Without a pattern it ends the matching *connections*
(close 4503); with one it ends the matching *subscriptions* and leaves the
connections open.

Ending what is open is not enough: a client would reconnect or resubscribe
with the same, still unexpired token. So the revocation is also remembered
for ``block_for`` seconds (default ``revocation_ttl``, which should be at
least the longest token lifetime): tokens issued at or before it (their
``iat``) are refused what it revoked, and a token issued afterwards, which
the issuer minted knowing of the revocation, is not. Tokens without ``iat``
and anonymous connections are refused until the record lapses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from eventwire.auth.identity import Identity
from eventwire.auth.patterns import patterns_overlap
from eventwire.topics import checked_pattern

__all__ = ["RevocationList", "RevokeRequest"]

_Id = Annotated[str, Field(min_length=1, max_length=256)]


class RevokeRequest(BaseModel):
    """The body of ``POST /v1/revoke``: any of ``user_id``, ``tenant_id`` and ``pattern``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: _Id | None = None
    tenant_id: _Id | None = None
    pattern: str | None = None
    block_for: Annotated[float, Field(ge=0)] | None = None
    """Seconds to keep refusing older tokens; 0 only ends what is open; None: revocation_ttl."""

    @field_validator("pattern")
    @classmethod
    def _check_pattern(cls, pattern: str | None) -> str | None:
        return None if pattern is None else checked_pattern(pattern)

    @model_validator(mode="after")
    def _needs_a_target(self) -> RevokeRequest:
        if self.user_id is None and self.tenant_id is None and self.pattern is None:
            raise ValueError("name at least one of user_id, tenant_id and pattern")
        return self

    @property
    def ends_connections(self) -> bool:
        """True when whole connections end (no pattern), False when subscriptions do."""
        return self.pattern is None

    def matches_identity(self, identity: Identity) -> bool:
        if self.user_id is not None and identity.user_id != self.user_id:
            return False
        return self.tenant_id is None or identity.tenant_id == self.tenant_id

    def matches_topic(self, subscription: str) -> bool:
        """Whether the pattern covers ``subscription``; an admin's pattern if they overlap."""
        return self.pattern is None or patterns_overlap(self.pattern, subscription)

    def matches(self, identity: Identity, subscription: str) -> bool:
        """Whether this request ends ``identity``'s subscription to ``subscription``."""
        return self.matches_identity(identity) and self.matches_topic(subscription)


@dataclass(frozen=True, slots=True)
class _Record:
    request: RevokeRequest
    revoked_at: float
    until: float


class RevocationList:
    """Revocations still in force, checked when a token authenticates and on SUBSCRIBE.

    Pure: the caller passes the time. Records lapse by themselves; the list
    holds one entry per revocation, so a linear scan is fine (revocations
    are rare operator actions, not traffic).
    """

    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._records: list[_Record] = []

    def __len__(self) -> int:
        return len(self._records)

    def add(self, request: RevokeRequest, now: float) -> None:
        block = self._ttl if request.block_for is None else request.block_for
        if block > 0:
            self._records.append(_Record(request, now, now + block))

    def refuses(self, identity: Identity, now: float) -> bool:
        """Whether a connection-wide revocation refuses this identity (AUTH, ?token=)."""
        return any(
            record.request.ends_connections and self._hits(record, identity)
            for record in self._live(now)
        )

    def refuses_topic(self, identity: Identity, name: str, now: float) -> bool:
        """Whether a revocation refuses this identity ``name`` (a topic or admin pattern)."""
        return any(
            self._hits(record, identity) and record.request.matches_topic(name)
            for record in self._live(now)
        )

    def _live(self, now: float) -> list[_Record]:
        if any(record.until <= now for record in self._records):
            self._records = [record for record in self._records if record.until > now]
        return self._records

    @staticmethod
    def _hits(record: _Record, identity: Identity) -> bool:
        issued = identity.issued_at
        older = issued is None or issued <= record.revoked_at
        return older and record.request.matches_identity(identity)
