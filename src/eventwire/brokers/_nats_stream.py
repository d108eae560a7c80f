"""The JetStream stream of the NATS broker: what it must look like, and making it so.

One stream holds every topic (subjects ``<prefix>.>``). Its limits carry the
broker's bounds: ``max_msgs_per_subject`` is ``history_size`` but at least
1, because a topic's last message holds its counter; ``max_age`` is the
``retention`` (``history_age`` plus a day by default), after which a quiet
topic is forgotten. ``republish`` sends each stored message to
``<prefix>-live.<topic>``, where nodes listen: only what was stored is heard.

A node starting against an existing stream with other limits brings them to
its own and logs what it changed; nodes of one deployment should agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RePublish, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from eventwire.brokers._nats_subjects import NatsNames

__all__ = ["TopicLocks", "ensure_stream", "stream_config"]

log = logging.getLogger("eventwire.brokers.nats")

_STREAM_NAME_IN_USE = 10058
_NO_STREAM = 10059


def stream_config(
    names: NatsNames, history_size: int, retention: float | None, replicas: int
) -> StreamConfig:
    return StreamConfig(
        name=names.stream,
        subjects=[names.stored_all],
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_msgs_per_subject=max(1, history_size),  # the last message is the counter
        max_age=retention,
        num_replicas=replicas,
        republish=RePublish(src=names.stored_all, dest=names.live_all),
    )


async def ensure_stream(js: JetStreamContext, wanted: StreamConfig) -> None:
    """Create the stream, or bring its limits to ``wanted``."""
    name = wanted.name or ""
    try:
        info = await js.stream_info(name)
    except NotFoundError as exc:
        if exc.err_code != _NO_STREAM:
            raise
        try:
            await js.add_stream(wanted)
            log.info("created NATS stream %s (%s)", name, ", ".join(wanted.subjects or []))
            return
        except BadRequestError as exc:
            if exc.err_code != _STREAM_NAME_IN_USE:
                raise
            info = await js.stream_info(name)  # another node made it first
    changes = _changes(info.config, wanted)
    if changes:
        log.warning("NATS stream %s: changing %s", name, ", ".join(changes))
        await js.update_stream(
            info.config.evolve(
                subjects=wanted.subjects,
                max_msgs_per_subject=wanted.max_msgs_per_subject,
                max_age=wanted.max_age,
                republish=wanted.republish,
            )
        )


def _changes(have: StreamConfig, want: StreamConfig) -> list[str]:
    """What differs between the stream's limits and this node's."""
    found = []
    if sorted(have.subjects or []) != sorted(want.subjects or []):
        found.append(f"subjects {have.subjects} -> {want.subjects}")
    if have.max_msgs_per_subject != want.max_msgs_per_subject:
        found.append(
            f"max_msgs_per_subject {have.max_msgs_per_subject} -> {want.max_msgs_per_subject}"
        )
    if abs((have.max_age or 0.0) - (want.max_age or 0.0)) > 0.001:
        found.append(f"max_age {have.max_age}s -> {want.max_age}s")
    if _route(have.republish) != _route(want.republish):
        found.append(f"republish {_route(have.republish)} -> {_route(want.republish)}")
    return found


def _route(republish: RePublish | None) -> tuple[str | None, str | None]:
    return (None, None) if republish is None else (republish.src, republish.dest)


class TopicLocks:
    """One lock per topic in use, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, topic: str, deadline: float) -> AsyncIterator[None]:
        """Hold ``topic``'s lock; TimeoutError if it is not free by ``deadline`` (loop time).

        The wait is part of a publish's timeout: publishes queued behind one
        that hangs give up with it instead of running long after it.
        """
        lock, users = self._locks.get(topic, (None, 0))
        lock = lock or asyncio.Lock()
        self._locks[topic] = (lock, users + 1)
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    await lock.acquire()
            except TimeoutError:
                raise TimeoutError("the publishes ahead of it did not end in time") from None
            try:
                yield
            finally:
                lock.release()
        finally:
            lock, users = self._locks[topic]
            if users == 1:
                del self._locks[topic]
            else:
                self._locks[topic] = (lock, users - 1)
