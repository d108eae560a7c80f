"""Presence on NATS JetStream: one key per topic in a KV bucket, changed by compare-and-set.

nats-server 2.9 has no expiry per key (that came in 2.11), so expiry is in
the value: the key ``<topic>`` (``:`` as ``.``) of bucket
``<stream>_PRESENCE`` holds the topic's ``TopicPresence``, each node's
lease deadline beside its counts. A change reads the key, applies the
shared rule (``table``: drop the nodes whose lease passed, set the
caller's counts, renew its lease) and writes it back only if the key's
revision is still the one read (``Nats-Expected-Last-Subject-Sequence``,
the same compare-and-set as a publish), else reads again. Exactly one
writer therefore drops a dead node and reports its members.

Deadlines are the nodes' wall clocks, so nodes must agree on the time to
well within a lease (NTP does). The bucket keeps one revision per key in
memory (``history=1``, memory storage): a NATS restart loses it, and each
node writes its members again on its next renewal. The bucket's ``max_age``
(``RETENTION``) drops a topic's record an hour after its last write.

A write rewrites the topic's whole record, so its cost grows with the
members on the topic: fine for rooms of hundreds or a few thousand, not for
a topic with a hundred thousand present (use Redis there).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, TypeVar

from nats.js.api import StorageType
from nats.js.errors import BadRequestError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from eventwire.brokers.base import BrokerUnavailable, PresenceRead, PresenceUpdate
from eventwire.brokers.presence import RETENTION
from eventwire.brokers.presence.table import TopicPresence
from eventwire.errors import BrokerError

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.js import JetStreamContext

    from eventwire.brokers._nats_subjects import NatsNames

__all__ = ["NatsPresence"]

R = TypeVar("R")


class NatsPresence:
    """The ``Presence`` capability of ``NatsBroker``, mixed into it."""

    _presence_kv: tuple[JetStreamContext, KeyValue] | None = None

    if TYPE_CHECKING:
        names: NatsNames
        replicas: int
        _command_timeout: float

        def _connected(self) -> tuple[NatsClient, JetStreamContext]: ...

        def _converted(self, what: str) -> contextlib.AbstractContextManager[None]: ...

    @property
    def presence_bucket(self) -> str:
        return f"{self.names.stream}_PRESENCE"

    async def presence_update(
        self, node: str, topic: str, counts: Mapping[str, int], lease: float
    ) -> PresenceUpdate:
        def step(table: TopicPresence, now: float) -> PresenceUpdate:
            return table.update(node, counts, now + lease if lease > 0 else None, now)

        return await self._presence_change(topic, "presence update", step, always=True)

    async def presence_read(
        self, node: str, topic: str, members: Collection[str] | None = None
    ) -> PresenceRead:
        if members is not None and not members:
            return PresenceRead({}, [])

        def step(table: TopicPresence, now: float) -> PresenceRead:
            return table.read(node, now, members)

        return await self._presence_change(topic, "presence read", step, always=False)

    async def _presence_change(
        self, topic: str, what: str, step: Callable[[TopicPresence, float], R], *, always: bool
    ) -> R:
        """Run ``step`` on the topic's record and store the result if the record is unchanged.

        A read (``always`` false) writes only when it dropped a node.
        """
        key = self.names.stored(topic).removeprefix(self.names.stored_root)
        loop = asyncio.get_running_loop()
        deadline, conflicts = loop.time() + self._command_timeout, 0
        try:
            with self._converted(what):
                kv = await self._presence_bucket()
                while True:
                    data, revision = await _get(kv, key)
                    table = TopicPresence.from_json(data)
                    nodes = len(table.nodes)
                    result = step(table, time.time())
                    if not always and len(table.nodes) == nodes:
                        return result
                    try:
                        await kv.update(key, b"" if table.empty else table.to_json(), revision)
                        return result
                    except KeyWrongLastSequenceError:
                        conflicts += 1
                    if loop.time() > deadline:
                        raise BrokerUnavailable(f"{what} of {topic}: still contended")
                    if conflicts > 2:  # several nodes writing one topic: spread them out
                        await asyncio.sleep(random.uniform(0, min(0.05, 0.001 * 2.0**conflicts)))
        except BrokerError:
            self._presence_kv = None  # made again next time, should the bucket be gone
            raise

    async def _presence_bucket(self) -> KeyValue:
        js = self._connected()[1]
        cached = self._presence_kv
        if cached is not None and cached[0] is js:
            return cached[1]
        try:
            kv = await js.create_key_value(
                bucket=self.presence_bucket,
                history=1,
                ttl=RETENTION,
                storage=StorageType.MEMORY,
                replicas=self.replicas,
            )
        except BadRequestError:  # there already, made with other settings: use it as it is
            kv = await js.key_value(self.presence_bucket)
        self._presence_kv = (js, kv)
        return kv


async def _get(kv: KeyValue, key: str) -> tuple[bytes, int]:
    """The key's value and revision; an absent (or deleted) key is empty at its last revision."""
    try:
        entry = await kv.get(key)
    except KeyNotFoundError as exc:
        tombstone = getattr(exc, "entry", None)
        return b"", tombstone.revision if tombstone is not None else 0
    return entry.value or b"", entry.revision or 0
