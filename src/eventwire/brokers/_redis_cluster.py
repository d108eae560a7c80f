"""Redis Cluster for the Redis broker: its URL, its command client, and one link per shard.

Commands and scripts go through redis-py's ``RedisCluster``, which sends
each to the master of its keys' slot; every key of a topic shares one hash
tag, so each script touches one slot. The live link is ours, as on one
Redis (``_redis_link``), once per shard master: a topic's channel is
sharded (``SSUBSCRIBE`` on the master of its slot, where the publish
script's ``SPUBLISH`` lands), and the node's patterns ride on one shard's
link with ``PSUBSCRIBE``, which hears the classic ``PUBLISH`` of every shard.

Each shard's link detects its own losses (restart, ``CLIENT KILL``, a
silent peer), resubscribes and catches up, without disturbing the others.
When a shard answers that a channel moved (``MOVED``, or a ``sunsubscribe``
it was not asked for), or while a shard is unreachable and the slot map
shows another master for its slots (a failover), every link is rebuilt from
a fresh slot map; each topic's new subscription catches up from history,
so nothing published meanwhile is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection, SSLConnection, parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from eventwire.brokers._interest import Interests
from eventwire.brokers._node import log_attempt
from eventwire.brokers._redis_link import Channels, Link, LinkSettings, pubsub_connector
from eventwire.brokers._redis_lua import RedisKeys
from eventwire.brokers._redis_wire import plain, watched
from eventwire.brokers._resume import Feed
from eventwire.topics import is_pattern

__all__ = ["CLUSTER_SCHEMES", "ClusterLink", "ClusterUrl", "cluster_client"]

log = logging.getLogger("eventwire.brokers.redis")

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
"""Broker URL schemes of Redis Cluster, and redis-py's scheme for each (TLS for ``rediss``)."""

SlotMap = dict[int, str]
"""Slot -> name (``host:port``) of the master that serves it."""


class ClusterUrl:
    """``redis+cluster://[user:password@]host:port[,host:port...][/][?patterns=off&...]``.

    The hosts are seeds: any one that answers tells the whole cluster.
    ``patterns`` (``on`` by default) is ours; the rest of the query is
    redis-py's connection options, as in a ``redis://`` URL.
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        scheme = CLUSTER_SCHEMES[parts.scheme]
        userinfo, _, hosts = parts.netloc.rpartition("@")
        self.seeds = [_host_port(seed) for seed in hosts.split(",") if seed]
        if not self.seeds:
            raise ValueError(f"a Redis Cluster URL names at least one host:port, got {url!r}")
        query = parse_qsl(parts.query, keep_blank_values=True)
        switches = [value.lower() for name, value in query if name == "patterns"]
        if switches and switches[-1] not in ("on", "off"):
            raise ValueError(f"patterns={switches[-1]!r} in a Redis Cluster URL: use on or off")
        self.patterns = not switches or switches[-1] == "on"
        rest = urlencode([(name, value) for name, value in query if name != "patterns"])
        first = f"{userinfo}@{hosts.split(',')[0]}" if userinfo else hosts.split(",")[0]
        self._options = urlunsplit((scheme, first, parts.path, rest, ""))

    def options(self) -> dict[str, Any]:
        """redis-py's keyword arguments from the URL (credentials, TLS, its query options)."""
        options: dict[str, Any] = {**parse_url(self._options)}
        for name in ("host", "port"):
            options.pop(name, None)
        if options.pop("connection_class", None) is SSLConnection:
            options["ssl"] = True
        return options


def _host_port(seed: str) -> tuple[str, int]:
    host, _, port = seed.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"a Redis Cluster seed is host:port, got {seed!r}")
    return host.strip("[]"), int(port)


class _BoundedCluster(RedisCluster):
    """A ``RedisCluster`` whose commands take turns: at most ``turns`` at once.

    redis-py's cluster client refuses a command at once when a master's
    connections are all busy; like the pool of one Redis, a command here
    waits up to ``wait`` seconds for a turn instead, then is refused. Its
    connections are ``_redis_wire``'s, as the pool's of one Redis.
    """

    def __init__(self, *, turns: int, wait: float, **options: Any) -> None:
        super().__init__(max_connections=turns, **options)
        self._turns = asyncio.Semaphore(turns)
        self._wait = wait
        manager = self.nodes_manager
        kind = watched(manager.connection_kwargs["connection_class"])
        manager.connection_kwargs["connection_class"] = kind  # for every node found later
        for node in manager.startup_nodes.values():
            node.connection_class = kind

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            async with asyncio.timeout(self._wait):
                await self._turns.acquire()
        except TimeoutError:
            raise RedisTimeoutError(f"no free connection within {self._wait}s") from None
        try:
            return await super().execute_command(*args, **kwargs)
        finally:
            self._turns.release()


def cluster_client(
    url: ClusterUrl, *, turns: int, connect_timeout: float, command_timeout: float
) -> RedisCluster:
    """The command client: never resends a command (a publish is not idempotent)."""
    return _BoundedCluster(
        turns=turns,
        wait=command_timeout,
        startup_nodes=[ClusterNode(host, port) for host, port in url.seeds],
        socket_connect_timeout=connect_timeout,
        socket_timeout=command_timeout,
        retry=Retry(NoBackoff(), 0),
        protocol=2,
        client_name="eventwire",
        **url.options(),
    )


class ClusterLink:
    """The node's links to every shard master, rebuilt when the cluster's slots move."""

    def __init__(
        self,
        client: RedisCluster,
        keys: RedisKeys,
        interests: Interests,
        feed: Feed,
        settings: LinkSettings,
        name: str,
        *,
        patterns: bool,
    ) -> None:
        self._client = client
        self._keys = keys
        self._interests = interests
        self._feed = feed
        self._settings = settings
        self._name = name
        self._patterns = patterns
        self._links: dict[str, Link] = {}
        self._slots: dict[str, int] = {}  # topic -> slot of its channel
        self._moved = asyncio.Event()
        self._progress = asyncio.Event()
        self._lost_before = 0
        self._settled = False  # every link of the current slot map has been up

    # -- status --------------------------------------------------------------------

    @property
    def up(self) -> bool:
        """Every shard link that carries an interest of the node is up."""
        links = self._links.values()
        return bool(links) and all(link.up for link in links if link.needed())

    @property
    def losses(self) -> int:
        return self._lost_before + sum(link.losses for link in self._links.values())

    async def wait_up(self) -> None:
        """Until the link of every shard master is up (a started node reaches them all)."""
        while not (self._links and all(link.up for link in self._links.values())):
            self._progress.clear()
            await self._progress.wait()

    # -- interest ----------------------------------------------------------------

    async def subscribe(self, name: str) -> None:
        link = self._carrier(name)
        if link is not None:
            await link.subscribe(name)

    async def unsubscribe(self, name: str) -> None:
        link = self._carrier(name)
        self._slots.pop(name, None)
        if link is not None:
            await link.unsubscribe(name)

    def _carrier(self, name: str) -> Link | None:
        for link in self._links.values():
            if link.carries(name):
                return link
        return None

    def _slot(self, topic: str) -> int:
        slot = self._slots.get(topic)
        if slot is None:
            slot = self._slots[topic] = key_slot(self._keys.channel(topic))
        return slot

    # -- the supervisor ------------------------------------------------------------

    async def run(self) -> None:
        """Keep a link to every shard master, following the slot map, until cancelled.

        Whatever breaks it, it logs, backs off and reads the slot map again:
        a bug must not leave the node deaf.
        """
        attempt = 0
        while True:
            try:
                slots = await self._slot_map()
                moved = await self._follow(slots)
            except asyncio.CancelledError:
                raise
            except (RedisError, RedisClusterException, OSError) as exc:
                attempt += 1
                log_attempt(log, attempt, "%s: reading the slot map failed (%s)", self._name, exc)
                await asyncio.sleep(self._settings.backoff(attempt))
                continue
            except Exception:
                log.exception("%s: following the cluster's shards failed", self._name)
                moved = True
            if self._settled:
                attempt = 0  # the last map served: a new move is not a repeated failure
            if moved:
                attempt += 1
                await asyncio.sleep(self._settings.backoff(attempt))

    async def _follow(self, slots: SlotMap) -> bool:
        """Run a link per master of ``slots`` until they move; True if a shard said so."""
        self._settled = False
        self._build(slots)
        tasks = [asyncio.create_task(link.run()) for link in self._links.values()]
        try:
            moved = await self._until_moved(slots)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            links, self._links = self._links, {}
            self._lost_before += sum(link.losses for link in links.values())
        self._lost_before += 1  # every shard's link was dropped to follow the slots: one loss
        log.warning("%s: the cluster's slots moved; linking every shard again", self._name)
        return moved

    def _build(self, slots: SlotMap) -> None:
        self._moved.clear()
        carrier = slots[0]  # the patterns ride on the master of slot 0
        for master in sorted(set(slots.values())):
            channels = Channels(
                sharded=True,
                carries=self._owned_by(slots, master),
                patterns=master == carrier,
                on_moved=self._moved.set,
                on_up=self._link_up,
            )
            self._links[master] = Link(
                self._connector(master),
                self._keys,
                self._interests,
                self._feed,
                self._settings,
                name=f"{self._name} shard {master}",
                channels=channels,
            )
        self._progress.set()

    def _link_up(self) -> None:
        if self._links and all(link.up for link in self._links.values()):
            self._settled = True
        self._progress.set()

    def _owned_by(self, slots: SlotMap, master: str) -> Callable[[str], bool]:
        def carries(topic: str) -> bool:
            return not is_pattern(topic) and slots.get(self._slot(topic)) == master

        return carries

    async def _until_moved(self, slots: SlotMap) -> bool:
        """Wait for a shard to say its slots moved (True), or for a failover to show (False).

        While a shard's link is down, the slot map is read again every
        ``health_interval``: if its slots now have another master, the links
        are rebuilt at once rather than knocking on the old address.
        """
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.health_interval):
                    await self._moved.wait()
                    return True
            if all(link.up for link in self._links.values()):
                continue
            with contextlib.suppress(RedisError, RedisClusterException, OSError):
                if await self._slot_map() != slots:
                    return False

    async def _slot_map(self) -> SlotMap:
        """The cluster's slots as its nodes tell them now."""
        manager = self._client.nodes_manager
        await manager.initialize()
        return {slot: nodes[0].name for slot, nodes in manager.slots_cache.items()}

    def _connector(self, master: str) -> Callable[[], AbstractConnection]:
        """Connections of the link's own to ``master``, outside the command client."""
        node = self._client.get_node(node_name=master)
        assert node is not None
        return pubsub_connector(plain(node.connection_class), node.connection_kwargs)
