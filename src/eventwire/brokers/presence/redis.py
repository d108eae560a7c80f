"""Presence on Redis: three keys per topic under its hash tag, changed by Lua scripts.

::

    <prefix>:{<topic>}:presence:counts   hash  "<node>\\n<member>" -> that node's connections
    <prefix>:{<topic>}:presence:totals   hash  member -> connections on every node
    <prefix>:{<topic>}:presence:leases   zset  node -> lease deadline (ms, Redis' clock)

Redis 7.0 has no expiry per hash field, so each node's entries live under
a lease of its own, a score in the topic's sorted set, renewed by every
write of the node and by its heartbeat. A script first drops the nodes
whose lease passed (``ZRANGEBYSCORE``), taking their counts out of the
totals, then applies the caller's counts and renews its lease: a join or a
leave, its cluster-wide before/after, and the members who went with a dead
node come out of one atomic step, so exactly one node learns of each.

Everything lives in the topic's slot (one hash tag, like its events), so
the scripts stay valid on Redis Cluster; a write costs O(1) per member, and
only dropping a dead node reads the topic's counts whole. The keys expire
``RETENTION`` after the last lease, and go at once when no node holds one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from redis.commands.core import AsyncScript
from redis.typing import EncodableT

from eventwire.brokers.base import BrokerUnavailable, PresenceRead, PresenceUpdate
from eventwire.brokers.presence import RETENTION

if TYPE_CHECKING:
    from redis.asyncio import Redis, RedisCluster

    from eventwire.brokers._redis_lua import RedisKeys

__all__ = ["READ_SCRIPT", "UPDATE_SCRIPT", "RedisPresence"]

_COMMON = """
if redis.replicate_commands then redis.replicate_commands() end

local counts, totals, leases = KEYS[1], KEYS[2], KEYS[3]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Drop every node but `keep` whose lease passed; return the members now
-- gone and how many nodes were dropped.
local function sweep(keep, now)
  local gone, dropped = {}, 0
  local due = redis.call('ZRANGEBYSCORE', leases, '-inf', '(' .. string.format('%d', now))
  for _, node in ipairs(due) do
    if node ~= keep then
      gone[node] = true
      dropped = dropped + 1
      redis.call('ZREM', leases, node)
    end
  end
  local expired = {}
  if dropped == 0 then return expired, 0 end
  local all = redis.call('HGETALL', counts)
  for i = 1, #all, 2 do
    local cut = string.find(all[i], '\\n', 1, true)
    if cut and gone[string.sub(all[i], 1, cut - 1)] then
      local member = string.sub(all[i], cut + 1)
      redis.call('HDEL', counts, all[i])
      if redis.call('HINCRBY', totals, member, -tonumber(all[i + 1])) <= 0 then
        redis.call('HDEL', totals, member)
        expired[#expired + 1] = member
      end
    end
  end
  return expired, dropped
end

-- Expire the keys `retain` ms after the last lease; delete them when none is held.
local function tidy(retain)
  local last = redis.call('ZRANGE', leases, -1, -1, 'WITHSCORES')
  if #last == 0 then
    redis.call('DEL', counts, totals, leases)
    return
  end
  local at = string.format('%d', tonumber(last[2]) + retain)
  for _, key in ipairs({counts, totals, leases}) do redis.call('PEXPIREAT', key, at) end
end
"""

UPDATE_SCRIPT = (
    _COMMON
    + """
-- ARGV: node, lease_ms (0 releases), retain_ms, member, count, member, count, ...
-- Returns {known, {expired member, ...}, {member, before, after, ...}}.
local node, lease = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
local expired = sweep(node, now)
local known = redis.call('ZSCORE', leases, node) and 1 or 0
local changes = {}
for i = 4, #ARGV, 2 do
  local member, count = ARGV[i], tonumber(ARGV[i + 1])
  local field = node .. '\\n' .. member
  local old = tonumber(redis.call('HGET', counts, field) or '0')
  local before = tonumber(redis.call('HGET', totals, member) or '0')
  local after = before - old + count
  if count > 0 then
    redis.call('HSET', counts, field, string.format('%d', count))
  else
    redis.call('HDEL', counts, field)
  end
  if after > 0 then
    redis.call('HSET', totals, member, string.format('%d', after))
  else
    redis.call('HDEL', totals, member)
  end
  changes[#changes + 1] = member
  changes[#changes + 1] = before
  changes[#changes + 1] = after
end
if lease > 0 then
  redis.call('ZADD', leases, string.format('%d', now + lease), node)
else
  redis.call('ZREM', leases, node)
end
tidy(tonumber(ARGV[3]))
return {known, expired, changes}
"""
)

READ_SCRIPT = (
    _COMMON
    + """
-- ARGV: node, retain_ms, member, member, ... (none: every member).
-- Returns {{expired member, ...}, {member, count, ...}}.
local expired, dropped = sweep(ARGV[1], now_ms())
if dropped > 0 then tidy(tonumber(ARGV[2])) end
local found = {}
if #ARGV > 2 then
  for i = 3, #ARGV do
    local count = redis.call('HGET', totals, ARGV[i])
    if count then
      found[#found + 1] = ARGV[i]
      found[#found + 1] = count
    end
  end
else
  found = redis.call('HGETALL', totals)
end
return {expired, found}
"""
)

_RETAIN_MS = round(RETENTION * 1000)


class RedisPresence:
    """The ``Presence`` capability of ``RedisBroker``, mixed into it."""

    _presence_scripts: tuple[Redis | RedisCluster, AsyncScript, AsyncScript] | None = None

    if TYPE_CHECKING:
        keys: RedisKeys
        _client: Redis | RedisCluster | None

        def _converted(self, what: str) -> contextlib.AbstractContextManager[None]: ...

        def _not_started(self) -> BrokerUnavailable: ...

    async def presence_update(
        self, node: str, topic: str, counts: Mapping[str, int], lease: float
    ) -> PresenceUpdate:
        _check_node(node)
        update, _ = self._presence_lua()
        lease_ms = max(1, round(lease * 1000)) if lease > 0 else 0  # 0 alone releases
        args: list[EncodableT] = [node, lease_ms, _RETAIN_MS]
        for member, count in counts.items():
            args += [member, max(0, count)]
        with self._converted("presence update"):
            known, expired, flat = await update(keys=self._presence_keys(topic), args=args)
        changes = {
            _text(flat[i]): (int(flat[i + 1]), int(flat[i + 2])) for i in range(0, len(flat), 3)
        }
        return PresenceUpdate(changes, [_text(m) for m in expired], bool(known))

    async def presence_read(
        self, node: str, topic: str, members: Collection[str] | None = None
    ) -> PresenceRead:
        _check_node(node)
        if members is not None and not members:
            return PresenceRead({}, [])
        _, read = self._presence_lua()
        args: list[EncodableT] = [node, _RETAIN_MS, *(members or ())]
        with self._converted("presence read"):
            expired, flat = await read(keys=self._presence_keys(topic), args=args)
        counts = {_text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}
        return PresenceRead(counts, [_text(m) for m in expired])

    def _presence_keys(self, topic: str) -> list[str]:
        head = f"{self.keys.prefix}:{{{topic}}}:presence"
        return [f"{head}:counts", f"{head}:totals", f"{head}:leases"]

    def _presence_lua(self) -> tuple[AsyncScript, AsyncScript]:
        client = self._client
        if client is None:
            raise self._not_started()
        cached = self._presence_scripts
        if cached is None or cached[0] is not client:
            cached = (
                client,
                client.register_script(UPDATE_SCRIPT),
                client.register_script(READ_SCRIPT),
            )
            self._presence_scripts = cached
        return cached[1], cached[2]


def _check_node(node: str) -> None:
    if not node or "\n" in node:
        raise ValueError(f"a node id is a non-empty line, got {node!r}")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
