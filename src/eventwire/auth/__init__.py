"""Authentication and authorization, pure: tokens, grants, tenant rules, limits.

Nothing here touches a socket, the event loop or a broker; the time is
passed in. The server builds these once from its settings and asks them
questions (see docs/security.md for the threat model and the wiring)::

    settings.py    AuthSettings: every knob, named as its EVENTWIRE_* variable
    keys.py        keys read once, each bound to one algorithm
    tokens.py      TokenVerifier (JWT -> Identity) and mint() for dev tokens
    claims.py      claim names -> Identity
    identity.py    Identity: user, tenant, expanded and compiled grants
    patterns.py    placeholders, compiled Grants, pattern overlap
    tenancy.py     tenant in topic, tenant in data
    authorizer.py  Authorizer: subscribe / publish / receive, policy hook
    revocation.py  RevokeRequest and the RevocationList that remembers them
    apikeys.py     hashed HTTP API keys and the admin key
    limits.py      connection caps and per-user / per-tenant token buckets
    origins.py     the Origin allow-list
    errors.py      AuthError with its AuthCode, AuthClose codes
"""

from __future__ import annotations

from eventwire.auth.apikeys import (
    ApiKeyStore,
    ApiPrincipal,
    generate_api_key,
    hash_api_key,
    parse_bearer,
)
from eventwire.auth.authorizer import Action, Authorizer, Policy, forbidden, load_policy
from eventwire.auth.errors import AuthClose, AuthCode, AuthConfigError, AuthError
from eventwire.auth.identity import Identity
from eventwire.auth.limits import ConnectionLimiter, Ticket, TokenBuckets, UsageLimiter
from eventwire.auth.origins import OriginPolicy
from eventwire.auth.patterns import Grants, expand_pattern, patterns_overlap
from eventwire.auth.revocation import RevocationList, RevokeRequest
from eventwire.auth.settings import ApiKeySpec, AuthSettings
from eventwire.auth.tenancy import can_receive, tenant_allows, topic_tenant
from eventwire.auth.tokens import TokenVerifier, mint

__all__ = [
    "Action",
    "ApiKeySpec",
    "ApiKeyStore",
    "ApiPrincipal",
    "AuthClose",
    "AuthCode",
    "AuthConfigError",
    "AuthError",
    "AuthSettings",
    "Authorizer",
    "ConnectionLimiter",
    "Grants",
    "Identity",
    "OriginPolicy",
    "Policy",
    "RevocationList",
    "RevokeRequest",
    "Ticket",
    "TokenBuckets",
    "TokenVerifier",
    "UsageLimiter",
    "can_receive",
    "expand_pattern",
    "forbidden",
    "generate_api_key",
    "hash_api_key",
    "load_policy",
    "mint",
    "parse_bearer",
    "patterns_overlap",
    "tenant_allows",
    "topic_tenant",
]
