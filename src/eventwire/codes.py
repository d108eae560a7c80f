"""Error codes and close codes: the protocol's vocabulary.

A client decides what to do from a code alone, so every code is listed here
once, with what it means, and docs/protocol.md lists the same table.

Close codes follow one rule by range:

- 1000-1015: RFC 6455's own codes.
- 4000-4499: the server ended the connection; reconnect with backoff.
- 4500-4999: the server ended the connection; do not reconnect.
"""

from __future__ import annotations

import enum

__all__ = ["CloseCode", "ErrorCode", "http_status", "should_reconnect"]


class ErrorCode(enum.StrEnum):
    """Codes carried by ERROR events and HTTP error bodies."""

    BAD_REQUEST = "BAD_REQUEST"
    INVALID_JSON = "INVALID_JSON"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    INVALID_TOPIC = "INVALID_TOPIC"
    RESERVED_TOPIC = "RESERVED_TOPIC"
    UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"  # no event version the subscriber accepts
    UNKNOWN_COMMAND = "UNKNOWN_COMMAND"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    TOO_MANY_SUBSCRIPTIONS = "TOO_MANY_SUBSCRIPTIONS"
    RATE_LIMITED = "RATE_LIMITED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    UPGRADE_REQUIRED = "UPGRADE_REQUIRED"  # the WebSocket path asked without a WebSocket upgrade
    SHUTTING_DOWN = "SHUTTING_DOWN"
    NOT_READY = "NOT_READY"
    BROKER_UNAVAILABLE = "BROKER_UNAVAILABLE"  # nothing was stored: retrying is safe
    PUBLISH_OUTCOME_UNKNOWN = "PUBLISH_OUTCOME_UNKNOWN"  # sent, unanswered: it may be stored
    INTERNAL_ERROR = "INTERNAL_ERROR"
    # Authentication and authorization (eventwire.auth.AuthCode mirrors these).
    UNAUTHORIZED = "UNAUTHORIZED"  # no usable token or key: get a valid one
    TOKEN_EXPIRED = "TOKEN_EXPIRED"  # the token's exp passed: AUTH with a fresh token
    FORBIDDEN = "FORBIDDEN"  # this topic or action is not allowed: do not retry
    REVOKED = "REVOKED"  # an operator ended access: not again with the same token
    TOO_MANY_CONNECTIONS = "TOO_MANY_CONNECTIONS"  # a connection cap: close others, or wait


_HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.INVALID_JSON: 400,
    ErrorCode.VALIDATION_ERROR: 422,
    ErrorCode.INVALID_TOPIC: 422,
    ErrorCode.RESERVED_TOPIC: 422,
    ErrorCode.UNSUPPORTED_VERSION: 422,
    ErrorCode.UNKNOWN_COMMAND: 400,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.TOO_MANY_SUBSCRIPTIONS: 429,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.NOT_SUPPORTED: 501,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.UPGRADE_REQUIRED: 426,
    ErrorCode.SHUTTING_DOWN: 503,
    ErrorCode.NOT_READY: 503,
    ErrorCode.BROKER_UNAVAILABLE: 503,
    ErrorCode.PUBLISH_OUTCOME_UNKNOWN: 504,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.TOKEN_EXPIRED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.REVOKED: 403,
    ErrorCode.TOO_MANY_CONNECTIONS: 429,
}


def http_status(code: ErrorCode) -> int:
    """The HTTP status the HTTP API answers with for ``code``."""
    return _HTTP_STATUS[code]


class CloseCode(enum.IntEnum):
    """WebSocket close codes the gateway sends."""

    NORMAL = 1000
    GOING_AWAY = 1001  # server shutdown: reconnect with backoff
    PROTOCOL_ERROR = 1002  # broken WebSocket framing: fix the client
    INVALID_DATA = 1007  # text frame that is not UTF-8
    MESSAGE_TOO_BIG = 1009  # inbound frame over the limit: never resend it
    INTERNAL_ERROR = 1011  # server bug: reconnect with backoff
    TOKEN_EXPIRED = 4001  # token expired, not refreshed in the grace: new token, reconnect
    HEARTBEAT_TIMEOUT = 4002  # no pong in time: reconnect with backoff
    AUTH_TIMEOUT = 4003  # no AUTH within auth_timeout: reconnect, authenticate at once
    FRAME_TIMEOUT = 4004  # a frame or fragmented message not finished in time: reconnect
    SLOW_CONSUMER = 4008  # outbound buffer over its limit: reconnect, read faster
    TOO_MANY_CONNECTIONS = 4009  # a connection cap after AUTH: reconnect after a long backoff
    HISTORY_RESET = 4010  # a topic's history was lost (broker flush): reconnect at once
    FLOODING = 4029  # far past the command or frame rate limit: reconnect after backoff
    UNAUTHORIZED = 4501  # the token was refused: not again without a different token
    REVOKED = 4503  # an operator revoked access: not again with the same token


def should_reconnect(code: int) -> bool:
    """Whether a client that was closed with ``code`` should reconnect."""
    if 4000 <= code < 4500:
        return True
    if 4500 <= code < 5000:
        return False
    return code in (CloseCode.GOING_AWAY, CloseCode.INTERNAL_ERROR, 1006, 1012, 1013, 1014)
