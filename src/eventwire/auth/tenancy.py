"""The two multi-tenant rules of the specification, as pure functions.

Tenant in topic (``tenant:acme:gift-list:123``): a topic whose first segment
is ``tenant`` belongs to the tenant named by its second segment; only that
tenant's connections may subscribe or publish to it.

Tenant in data (``data.tenant_id: "acme"`` on ``gift-list:123``): the event
reaches only connections of that tenant, even on a topic every tenant
shares. An event without ``data.tenant_id`` reaches every subscriber.

Admins: an admin token that carries a tenant is that tenant's admin and is
held to both rules like everyone else of the tenant. Only an admin token
with no tenant, a *global admin* (a platform operator), crosses tenants.
Connections with no tenant and no admin right (anonymous ones among them)
see no tenant's topics and no tenant-tagged events.
"""

from __future__ import annotations

from eventwire.auth.identity import Identity
from eventwire.topics import WILDCARD

__all__ = ["TENANT_NAMESPACE", "can_receive", "tenant_allows", "topic_tenant"]

TENANT_NAMESPACE = "tenant"


def topic_tenant(topic: str) -> str | None:
    """The tenant a ``tenant:X:...`` topic belongs to, else None."""
    first, _, rest = topic.partition(":")
    if first != TENANT_NAMESPACE or not rest:
        return None
    return rest.split(":", 1)[0]


def tenant_allows(identity: Identity, name: str) -> bool:
    """Whether the tenant-in-topic rule lets ``identity`` use ``name`` (topic or pattern).

    For a pattern the rule must hold for every topic it can match, and a
    leading ``*`` can always stand for ``tenant:<another tenant>``, so a
    tenant-bound pattern must start with a literal other than ``tenant``, or
    with ``tenant:<own tenant>``. This is exact, not an approximation.
    """
    if identity.global_admin:
        return True
    first, _, rest = name.partition(":")
    if first == WILDCARD:
        return False
    if first != TENANT_NAMESPACE:
        return True
    return identity.tenant_id is not None and rest.split(":", 1)[0] == identity.tenant_id


def can_receive(identity: Identity, event_tenant_id: str | None) -> bool:
    """Whether an event whose ``data.tenant_id`` is ``event_tenant_id`` may reach ``identity``.

    The hub applies it per group, not per recipient: it keeps a topic's
    subscribers grouped by tenant (global admins in a group of their own)
    and hands a tagged event to its tenant's group and the global admins'.
    """
    if event_tenant_id is None or identity.global_admin:
        return True
    return identity.tenant_id == event_tenant_id
