"""Wire protocol v1 without I/O: frames in, frames and actions out."""

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
from eventwire.protocol.session import (
    Action,
    Clock,
    Close,
    Limits,
    Reply,
    Session,
    SessionState,
    SubscribeTopics,
    UnsubscribeTopics,
)

__all__ = [
    "CONNECTION",
    "ERROR_TOPIC",
    "PROTOCOL_VERSION",
    "SYSTEM_TOPIC",
    "Action",
    "Clock",
    "Close",
    "Limits",
    "Reply",
    "Session",
    "SessionState",
    "SubscribeTopics",
    "UnsubscribeTopics",
    "command_frame",
    "decode_command",
    "error_frame",
    "system_frame",
]
