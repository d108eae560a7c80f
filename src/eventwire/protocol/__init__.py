"""Wire protocol v1 without I/O: frames in, frames and actions out."""

from eventwire.protocol.actions import (
    Action,
    Authenticated,
    Clock,
    Close,
    Limits,
    PublishEvent,
    ReadPresence,
    Reply,
    SubscribeTopics,
    UnsubscribeTopics,
)
from eventwire.protocol.frames import (
    CONNECTION,
    ERROR_TOPIC,
    PROTOCOL_VERSION,
    SYSTEM_TOPIC,
    command_frame,
    decode_command,
    error_frame,
    system_frame,
)
from eventwire.protocol.session import Session, SessionAuth, SessionState, auth_error

__all__ = [
    "CONNECTION",
    "ERROR_TOPIC",
    "PROTOCOL_VERSION",
    "SYSTEM_TOPIC",
    "Action",
    "Authenticated",
    "Clock",
    "Close",
    "Limits",
    "PublishEvent",
    "ReadPresence",
    "Reply",
    "Session",
    "SessionAuth",
    "SessionState",
    "SubscribeTopics",
    "UnsubscribeTopics",
    "auth_error",
    "command_frame",
    "decode_command",
    "error_frame",
    "system_frame",
]
