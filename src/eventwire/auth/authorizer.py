"""Who may subscribe to, publish to and receive what: one decision order, in one place.

For SUBSCRIBE (a topic, or a pattern) and for a client-published event::

    1. the name is a valid topic (publish) or topic/pattern (subscribe)  else refuse
    2. a pattern only for an admin                                      else refuse
    3. publish: the event type is in ``client_publishable``             else refuse
    4. tenant in topic (tenancy.tenant_allows)                          else refuse
    5. no revocation in force for this identity and name                else refuse
    6. the policy callable, if any: True allows, False refuses, None passes
    7. an admin is allowed
    8. the identity's grants (token claims + configured grants) allow   else refuse

Steps 1-5 are floors: the policy can refuse anything and grant more, but it
never grants across a tenant boundary, a revocation, or a pattern to a
non-admin. Every refusal looks the same to the client (ERROR FORBIDDEN for
that topic), so a refusal says nothing about whether a topic exists or why.
"""

from __future__ import annotations

import enum
import importlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from eventwire.auth.errors import AuthClose, AuthCode, AuthConfigError, AuthError
from eventwire.auth.identity import Identity
from eventwire.auth.revocation import RevocationList, RevokeRequest
from eventwire.auth.settings import AuthSettings
from eventwire.auth.tenancy import can_receive, tenant_allows
from eventwire.errors import ProtocolError
from eventwire.topics import RESERVED_NAMESPACES, is_pattern, validate_pattern, validate_topic

__all__ = ["Action", "Authorizer", "Policy", "forbidden", "load_policy"]

log = logging.getLogger("eventwire.auth")


class Action(enum.StrEnum):
    SUBSCRIBE = "subscribe"
    PUBLISH = "publish"


Policy = Callable[[Identity, Action, str], bool | None]
"""``(identity, action, topic) -> True (allow) | False (refuse) | None (no opinion)``."""


def load_policy(path: str) -> Policy:
    """The callable at ``package.module:attribute``; AuthConfigError if it is not one."""
    module_name, _, attribute = path.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise AuthConfigError(f"auth_policy {path!r} cannot be loaded: {exc}") from exc
    if not callable(target):
        raise AuthConfigError(f"auth_policy {path!r} is not callable")
    policy: Policy = target
    return policy


def forbidden(name: str) -> AuthError:
    """The one refusal every forbidden topic gets, whatever the reason."""
    return AuthError(AuthCode.FORBIDDEN, "not allowed", {"topic": name})


class Authorizer:
    """Decides subscribe, publish and receive for identities; built once per gateway."""

    def __init__(
        self,
        *,
        policy: Policy | None = None,
        client_publishable: Iterable[str] = (),
        revocations: RevocationList | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._policy = policy
        self._publishable = frozenset(client_publishable)
        self.revocations = revocations if revocations is not None else RevocationList(86400.0)
        self._clock = clock

    @classmethod
    def from_settings(
        cls, settings: AuthSettings, *, clock: Callable[[], float] = time.time
    ) -> Authorizer:
        policy = load_policy(settings.auth_policy) if settings.auth_policy else None
        return cls(
            policy=policy,
            client_publishable=settings.client_publishable,
            revocations=RevocationList(settings.revocation_ttl),
            clock=clock,
        )

    @property
    def client_publishing(self) -> bool:
        """Whether any event type may be published by clients at all."""
        return bool(self._publishable)

    def can_subscribe(self, identity: Identity, name: str) -> bool:
        """Whether ``identity`` may subscribe to ``name``, a topic or (admins only) a pattern."""
        if not _valid_subscription(name):
            return False
        if is_pattern(name) and not identity.admin:
            return False
        if not self._floors(identity, name):
            return False
        verdict = self._ask_policy(identity, Action.SUBSCRIBE, name)
        if verdict is not None:
            return verdict
        return identity.admin or identity.subscribe_grants.allows(name)

    def can_publish(self, identity: Identity, topic: str, event_type: str) -> bool:
        """Whether ``identity`` may publish an ``event_type`` event to ``topic`` over its socket."""
        if event_type not in self._publishable or not _valid_topic(topic):
            return False
        if not self._floors(identity, topic):
            return False
        verdict = self._ask_policy(identity, Action.PUBLISH, topic)
        if verdict is not None:
            return verdict
        return identity.admin or identity.publish_grants.allows(topic)

    def check_subscribe(self, identity: Identity, name: str) -> None:
        """Raise AuthError(FORBIDDEN, details.topic) unless ``can_subscribe``."""
        if not self.can_subscribe(identity, name):
            raise forbidden(name)

    def check_publish(self, identity: Identity, topic: str, event_type: str) -> None:
        """Raise AuthError(FORBIDDEN, details.topic) unless ``can_publish``."""
        if not self.can_publish(identity, topic, event_type):
            raise forbidden(topic)

    @staticmethod
    def can_receive(identity: Identity, event_tenant_id: str | None) -> bool:
        """Tenant in data: see ``tenancy.can_receive``."""
        return can_receive(identity, event_tenant_id)

    @staticmethod
    def matches_revocation(identity: Identity, subscription: str, request: RevokeRequest) -> bool:
        """Whether ``request`` ends ``identity``'s subscription to ``subscription``."""
        return request.matches(identity, subscription)

    def revoke(self, request: RevokeRequest, at: float | None = None) -> None:
        """Remember ``request``, made at ``at`` (now), so that older tokens stay refused."""
        self.revocations.add(request, self._clock() if at is None else at)

    def is_revoked(self, identity: Identity) -> bool:
        """Whether a revocation refuses this identity a connection (check on every AUTH)."""
        return self.revocations.refuses(identity, self._clock())

    def check_connection(self, identity: Identity) -> None:
        """Raise AuthError(REVOKED, close 4503) if a revocation refuses ``identity``."""
        if self.is_revoked(identity):
            raise AuthError(
                AuthCode.REVOKED, "access was revoked", {"reason": "revoked"}, AuthClose.REVOKED
            )

    @staticmethod
    def publisher_fields(identity: Identity) -> dict[str, str | None]:
        """``data`` fields the server overwrites on a client-published event.

        Both keys are always present: a client without a tenant must not be
        able to tag its event with someone else's ``tenant_id``. The server
        stamps ``timestamp`` itself, as for every publish.
        """
        return {"user_id": identity.user_id, "tenant_id": identity.tenant_id}

    def _floors(self, identity: Identity, name: str) -> bool:
        if not tenant_allows(identity, name):
            return False
        return not self.revocations.refuses_topic(identity, name, self._clock())

    def _ask_policy(self, identity: Identity, action: Action, name: str) -> bool | None:
        if self._policy is None:
            return None
        try:
            verdict = self._policy(identity, action, name)
        except Exception:
            # Fail closed: a broken policy refuses, it never lets everything through.
            log.exception("auth policy failed on %s %s; refusing", action.value, name)
            return False
        if verdict is not None and not isinstance(verdict, bool):
            log.error("auth policy returned %r, not True, False or None; refusing", verdict)
            return False
        return verdict


def _valid_topic(name: str) -> bool:
    try:
        validate_topic(name)
    except ProtocolError:
        return False
    return True


def _valid_subscription(name: str) -> bool:
    if not is_pattern(name):
        return _valid_topic(name)
    try:
        validate_pattern(name)
    except ProtocolError:
        return False
    return name.split(":", 1)[0] not in RESERVED_NAMESPACES
