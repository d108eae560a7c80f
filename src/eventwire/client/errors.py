"""What the client and publisher raise beyond ``eventwire.errors``, and server error reports.

Every class here is a ``ClientError``, so ``except ClientError`` still
catches everything the client raises::

    ClientError
    ├── ConnectionLost         (eventwire.errors) the WebSocket closed for good
    │   └── HandshakeForbidden the gateway answered the handshake with HTTP 403
    ├── PublishFailed          (eventwire.errors) the gateway refused a publish
    │   └── PublishOutcomeUnknown  its broker did not answer in time: maybe stored
    ├── CommandFailed          the gateway answered a command with ERROR
    │   └── SubscribeRefused   one or more topics of a SUBSCRIBE were refused
    ├── RequestTimeout         no answer to a command in time
    ├── GatewayUnreachable     no connection to the gateway (refused, DNS, timeout)
    └── VersionsConflict       a topic already held was subscribed with other versions
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eventwire.codes import ErrorCode, should_reconnect
from eventwire.errors import ClientError, ConnectionLost, PublishFailed

__all__ = [
    "CommandFailed",
    "GatewayUnreachable",
    "HandshakeForbidden",
    "PublishOutcomeUnknown",
    "RequestTimeout",
    "ServerError",
    "SubscribeRefused",
    "VersionsConflict",
    "publish_failed",
    "refused_for_good",
]


@dataclass(frozen=True, slots=True)
class ServerError:
    """One ERROR event from the gateway: the seed's ``{code, message, details}``.

    ``request_id`` is the command it answers, or ``"connection"`` when it
    answers none in particular (a frame the server could not read).
    """

    code: str
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)
    request_id: str = "connection"

    @classmethod
    def from_payload(cls, payload: Any, request_id: str) -> ServerError:
        """Read an ERROR payload, tolerating a malformed one rather than losing it."""
        if not isinstance(payload, dict):
            return cls("INTERNAL_ERROR", f"malformed ERROR payload: {payload!r}", {}, request_id)
        details = payload.get("details")
        return cls(
            str(payload.get("code", "INTERNAL_ERROR")),
            str(payload.get("message", "")),
            details if isinstance(details, dict) else {},
            request_id,
        )


class CommandFailed(ClientError):
    """The gateway answered a command with ERROR; ``code`` says why."""

    def __init__(self, error: ServerError) -> None:
        super().__init__(f"{error.code}: {error.message}")
        self.error = error
        self.code = error.code
        self.message = error.message
        self.details: Mapping[str, Any] = error.details


class SubscribeRefused(CommandFailed):
    """Topics of a SUBSCRIBE were refused; nothing of that call stays subscribed.

    ``code``, ``message`` and ``details`` are those of the first refusal;
    ``refused`` maps every refused topic to its error.
    """

    def __init__(self, errors: list[ServerError]) -> None:
        super().__init__(errors[0])
        self.errors = errors
        self.refused: dict[str, ServerError] = {
            str(e.details["topic"]): e for e in errors if "topic" in e.details
        }


class PublishOutcomeUnknown(PublishFailed):
    """The gateway sent the event to its broker and got no answer in time (504).

    Unlike other refusals, the event may have been stored, and delivered: a
    retry may store it a second time. ``code`` is ``PUBLISH_OUTCOME_UNKNOWN``;
    for a batch, ``details["published"]`` events are surely stored and the
    ``details["unknown"]`` after them may be. A ``BROKER_UNAVAILABLE``
    refusal, by contrast, stored nothing and is safe to retry.
    """


def publish_failed(
    code: str, message: str, details: Mapping[str, Any] | None = None
) -> PublishFailed:
    """The exception for a refused publish: PublishOutcomeUnknown when its outcome is unknown."""
    kind = PublishOutcomeUnknown if code == ErrorCode.PUBLISH_OUTCOME_UNKNOWN else PublishFailed
    return kind(code, message, dict(details) if details is not None else None)


class RequestTimeout(ClientError):
    """The gateway did not answer a command within the request timeout."""


class GatewayUnreachable(ClientError):
    """The gateway could not be reached: connection refused, DNS failure, timeout."""


class HandshakeForbidden(ConnectionLost):
    """The gateway answered the WebSocket handshake with HTTP 403: this Origin is not allowed.

    Final, like a close code in 4500-4999: every node of a deployment shares
    its allow-list, and trying again would only be refused again. ``code`` is
    None (no connection was opened), ``status`` the HTTP status.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(None, reason)
        self.status = status


def refused_for_good(error: ClientError) -> bool:
    """Whether a failed connection attempt would fail the same on any node: do not retry it.

    A refusal at the greeting whose close code says not to reconnect (4501
    bad token, 4503 revoked), or a handshake forbidden (HTTP 403). A gateway
    that cannot be reached, or a connection cap (HTTP 429, 4029), is retried.
    """
    if isinstance(error, HandshakeForbidden):
        return True
    return isinstance(error, ConnectionLost) and not should_reconnect(error.code or 1000)


class VersionsConflict(ClientError):
    """A topic already held was subscribed declaring other event versions.

    The subscriptions of one topic share the gateway's subscription, and so
    one version of each event: declare the same versions, or use another
    client. Raised by ``subscribe`` before anything is sent; ``code`` is
    ``VERSIONS_CONFLICT``, ``held`` and ``declared`` the two declarations
    (None: as published).
    """

    code = "VERSIONS_CONFLICT"

    def __init__(
        self,
        topic: str,
        held: Mapping[str, list[int]] | None,
        declared: Mapping[str, list[int]] | None,
    ) -> None:
        super().__init__(
            f"{topic} is subscribed with versions {_shown(held)}; this subscription declares"
            f" {_shown(declared)}. The subscriptions of a topic share its events:"
            " declare the same versions, or use another client"
        )
        self.topic = topic
        self.held = held
        self.declared = declared


def _shown(versions: Mapping[str, list[int]] | None) -> str:
    return "none (as published)" if versions is None else str(dict(versions))
