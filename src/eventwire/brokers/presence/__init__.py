"""Presence in the brokers: each node's members of a topic, under a lease that expires.

``table`` is the rule, written once and without I/O: a topic's state is
each node's lease deadline and its connection count per member; a write
first drops the nodes whose lease passed (reporting members who are then
gone), then applies the node's counts and renews its lease. The memory
and NATS brokers run it as is (NATS under a compare-and-set); the Redis
broker runs the same rule as one Lua script. Each broker mixes in its
module here, so the broker modules themselves only name the mixin.
"""

from __future__ import annotations

__all__ = ["RETENTION"]

RETENTION = 3600.0
"""Seconds a topic's presence record outlives its last write (or last lease, on Redis).

Long enough that a node coming later still finds, and announces, who left
with a node that died; short enough that abandoned topics cost nothing.
"""
