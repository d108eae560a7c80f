"""One exception root for everything eventwire raises.

::

    EventwireError
    ├── ProtocolError          a frame, event or request broke the protocol;
    │                          carries an ErrorCode, a message and details
    │   └── ValidationFailed   one or more fields were wrong (VALIDATION_ERROR)
    ├── AuthError              a token, key or request was refused (eventwire.auth);
    │                          carries an AuthCode equal to an ErrorCode
    │                          (ErrorCode(err.code) converts), a message, details
    │                          and the close code that ends a WebSocket refused by it
    ├── AuthConfigError        the auth settings cannot work (a missing key file,
    │                          a policy that does not import): raised at start-up
    ├── BrokerError            the broker failed or is unreachable
    │   ├── BrokerUnavailable  it cannot be reached: nothing was stored (eventwire.brokers)
    │   │   └── OutcomeUnknown a publish was sent, no answer came: it may be stored
    │   └── NotAvailable       it lacks a capability asked for (history)
    └── ClientError            raised by the Python client and publisher
        ├── ConnectionLost     the WebSocket closed (carries the close code)
        └── PublishFailed      the gateway refused a publish (carries the
                               server's code, message and details)
"""

from __future__ import annotations

from typing import Any

from eventwire.codes import ErrorCode

__all__ = [
    "BrokerError",
    "ClientError",
    "ConnectionLost",
    "EventwireError",
    "FieldError",
    "ProtocolError",
    "PublishFailed",
    "ValidationFailed",
    "broker_unavailable",
    "publish_outcome_unknown",
]


class EventwireError(Exception):
    """Root of every exception eventwire raises."""


class ProtocolError(EventwireError):
    """Input broke the protocol; the code says how, the details say where."""

    def __init__(
        self, code: ErrorCode, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_payload(self) -> dict[str, Any]:
        """The ``{code, message, details}`` body of an ERROR event or HTTP error."""
        return {"code": self.code.value, "message": self.message, "details": self.details}


FieldError = tuple[str, str]
"""A failed field: its dotted path and what was wrong with it."""


class ValidationFailed(ProtocolError):
    """Fields failed validation; ``details`` names the first and lists them all.

    The shape follows the seed's error example,
    ``details: {field: "name", error: "required"}``, extended with ``errors``
    so that every failed field is reported, not only the first.
    """

    def __init__(self, errors: list[FieldError], message: str | None = None) -> None:
        field, error = errors[0]
        details: dict[str, Any] = {
            "field": field,
            "error": error,
            "errors": [{"field": f, "error": e} for f, e in errors],
        }
        super().__init__(ErrorCode.VALIDATION_ERROR, message or f"{field}: {error}", details)
        self.errors = errors


class BrokerError(EventwireError):
    """The broker failed or cannot be reached."""


class ClientError(EventwireError):
    """Raised by the Python client and publisher."""


class ConnectionLost(ClientError):
    """The WebSocket closed; ``code`` is its close code."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"connection closed ({code}) {reason}".strip())
        self.code = code
        self.reason = reason


class PublishFailed(ClientError):
    """The gateway refused a publish with an error code."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details: dict[str, Any] = details or {}


def broker_unavailable(cause: Exception, **details: Any) -> ProtocolError:
    """The one answer when the broker cannot take a publish or a lookup: 503, retry later.

    Raised instead of accepting an event that would be lost; ``details`` say
    how much of a batch was published before the broker went away.
    """
    return ProtocolError(
        ErrorCode.BROKER_UNAVAILABLE, f"the broker is unreachable, retry later ({cause})", details
    )


def publish_outcome_unknown(cause: Exception, **details: Any) -> ProtocolError:
    """The answer when a publish reached the broker and no answer came back in time: 504.

    Unlike ``broker_unavailable``, the event may have been stored, so a
    retry may store it twice. ``details`` say how much of a batch is surely
    stored (``published``) and how many events after those may be (``unknown``).
    """
    return ProtocolError(
        ErrorCode.PUBLISH_OUTCOME_UNKNOWN,
        f"the broker did not answer in time; the event may have been stored ({cause})",
        details,
    )
