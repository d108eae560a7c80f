"""Who is on the other end of a connection, and what its token lets it do.

An ``Identity`` is built once per verified token (or once for an anonymous
connection) and then only read. Its grant patterns are already expanded
and compiled into tries, so the per-SUBSCRIBE and per-publish checks are
trie walks, never string formatting or a scan over the token's patterns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from eventwire.auth.patterns import Grants, expand_patterns

__all__ = ["Identity"]


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated (or anonymous) principal and its grants.

    ``subscribe`` and ``publish`` hold expanded, validated patterns; build
    from raw token claims with ``Identity.build``. ``dropped`` lists the raw
    patterns that could not be expanded safely (for logs; never sent to the
    client). Times are seconds since the epoch.
    """

    user_id: str | None
    tenant_id: str | None = None
    subscribe: tuple[str, ...] = ()
    publish: tuple[str, ...] = ()
    admin: bool = False
    expires_at: float | None = None
    issued_at: float | None = None
    anonymous: bool = False
    dropped: tuple[str, ...] = field(default=(), compare=False)
    subscribe_grants: Grants = field(init=False, repr=False, compare=False)
    publish_grants: Grants = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Grants() validates every pattern: an Identity never holds a bad one.
        object.__setattr__(self, "subscribe_grants", Grants(self.subscribe))
        object.__setattr__(self, "publish_grants", Grants(self.publish))

    @classmethod
    def build(
        cls,
        user_id: str | None,
        tenant_id: str | None = None,
        subscribe: Iterable[str] = (),
        publish: Iterable[str] = (),
        *,
        admin: bool = False,
        expires_at: float | None = None,
        issued_at: float | None = None,
        anonymous: bool = False,
    ) -> Identity:
        """An identity from raw patterns: ``{user_id}``/``{tenant_id}`` filled in once.

        A pattern whose placeholder has no safe value is dropped, never widened.
        """
        values = {"user_id": user_id, "tenant_id": tenant_id}
        sub_kept, sub_dropped = expand_patterns(subscribe, values)
        pub_kept, pub_dropped = expand_patterns(publish, values)
        return cls(
            user_id=user_id,
            tenant_id=tenant_id,
            subscribe=sub_kept,
            publish=pub_kept,
            admin=admin,
            expires_at=expires_at,
            issued_at=issued_at,
            anonymous=anonymous,
            dropped=tuple(dict.fromkeys((*sub_dropped, *pub_dropped))),
        )

    @property
    def global_admin(self) -> bool:
        """An admin bound to no tenant: the only identity that crosses tenants."""
        return self.admin and self.tenant_id is None

    def expires_in(self, now: float) -> float | None:
        """Seconds until the token expires (negative once it has), or None if it never does."""
        return None if self.expires_at is None else self.expires_at - now

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def same_principal(self, other: Identity) -> bool:
        """Whether ``other`` may replace this identity on a live connection (AUTH refresh).

        A refresh renews a connection; it does not hand it to another user or
        tenant, nor turn an anonymous connection into a signed-in one.
        """
        return (
            self.user_id == other.user_id
            and self.tenant_id == other.tenant_id
            and self.anonymous == other.anonymous
        )
