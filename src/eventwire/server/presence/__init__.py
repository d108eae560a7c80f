"""Presence in the gateway: who is on a topic, across every node, and USER_JOINED / USER_LEFT.

``members`` is the pure part (who a connection counts as, the listing a
reader may see, the events); ``tracker`` keeps this node's counts in step
with the broker's ``Presence`` and announces joins and leaves.
"""

from __future__ import annotations

from eventwire.server.presence.members import (
    USER_JOINED,
    USER_LEFT,
    Member,
    PresenceTopics,
    listing,
    presence_event,
)
from eventwire.server.presence.tracker import PresenceTracker

__all__ = [
    "USER_JOINED",
    "USER_LEFT",
    "Member",
    "PresenceTopics",
    "PresenceTracker",
    "listing",
    "presence_event",
]
