"""Redis key layout, the live message format, and the Lua scripts that keep them consistent.

Pure data: no connection, no import of redis-py. Everything about one topic
lives under one hash tag, ``{topic}``, so that a script touches one Redis
Cluster slot, and the topic's sharded channel lives on that slot too::

    <prefix>:{<topic>}:meta      hash: seq (last assigned), epoch
    <prefix>:{<topic>}:history   stream: ID "<seq>-<ms>", field b = body
    <prefix>:{<topic>}           the Pub/Sub channel (sharded on Redis Cluster)

``seq`` and ``epoch`` live in one hash because Redis evicts and flushes
whole keys: the counter can never come back from 0 under the old epoch.
The stream ID carries the seq first, so ``XRANGE`` from ``<since+1>``
finds a page directly, and Redis' clock in milliseconds second, which is
what trimming by age reads. A live message is ``<seq>:<epoch>:<body>``,
sent as the publish script's ``LIVE`` argument says: ``PUBLISH`` on one
Redis; ``SPUBLISH`` on Redis Cluster, where it stays on the topic's shard;
both there when nodes may hold patterns, which only ``PSUBSCRIBE`` (not
sharded, so heard from every shard) can match.
"""

from __future__ import annotations

import re

__all__ = [
    "CLASSIC",
    "HISTORY_SCRIPT",
    "POSITION_SCRIPT",
    "PUBLISH_BATCH_SCRIPT",
    "PUBLISH_SCRIPT",
    "SHARDED",
    "SHARDED_AND_CLASSIC",
    "RedisKeys",
    "parse_message",
]

CLASSIC = "p"
"""The publish script's ``LIVE``: ``PUBLISH`` only (one Redis)."""
SHARDED = "s"
"""``SPUBLISH`` only (Redis Cluster, no patterns)."""
SHARDED_AND_CLASSIC = "sp"
"""``SPUBLISH`` for the topic's subscribers, ``PUBLISH`` for the patterns' (Redis Cluster)."""

# No glob character may appear, so the prefix is literal in PSUBSCRIBE globs too.
_PREFIX_RE = re.compile(r"[A-Za-z0-9_.:-]+")


class RedisKeys:
    """Key, channel and glob names under one prefix (a namespace in a shared Redis)."""

    def __init__(self, prefix: str) -> None:
        if _PREFIX_RE.fullmatch(prefix) is None:
            raise ValueError(f"Redis key prefix {prefix!r}: use letters, digits and _.:-")
        self.prefix = prefix
        self._channel_head = f"{prefix}:{{".encode()

    def meta(self, topic: str) -> str:
        return f"{self.prefix}:{{{topic}}}:meta"

    def history(self, topic: str) -> str:
        return f"{self.prefix}:{{{topic}}}:history"

    def channel(self, topic: str) -> bytes:
        return f"{self.prefix}:{{{topic}}}".encode()

    def glob(self, pattern: str) -> bytes:
        """The PSUBSCRIBE glob of an eventwire pattern.

        Redis' ``*`` also matches ``:`` and parts of segments, so the glob
        may let more through than the pattern; receivers filter exactly.
        """
        return self._channel_head + pattern.encode() + b"}"

    def name_of(self, channel: bytes) -> str | None:
        """The topic of one of our channels, or the pattern of one of our globs; else None."""
        if not (channel.startswith(self._channel_head) and channel.endswith(b"}")):
            return None
        return channel[len(self._channel_head) : -1].decode()


def parse_message(data: bytes) -> tuple[int, str, bytes]:
    """``(seq, epoch, body)`` of a live message ``<seq>:<epoch>:<body>``."""
    seq, epoch, body = data.split(b":", 2)
    return int(seq), epoch.decode(), body


_COMMON = """
if redis.replicate_commands then redis.replicate_commands() end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Delete at most `budget` events older than `max_age` ms from the head of
-- the stream. Called on every publish, it keeps pace with the appends.
local function trim_age(stream, max_age, now, budget)
  local cutoff = now - max_age
  for _ = 1, budget do
    local head = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)
    if #head == 0 then return end
    local ms = string.match(head[1][1], '-(%d+)$')
    if tonumber(ms) >= cutoff then return end
    redis.call('XDEL', stream, head[1][1])
  end
end
"""

_PUBLISH_ONE = """
-- Store one event in its topic and send it live; returns {seq, epoch}.
-- live: 'p' PUBLISH, 's' SPUBLISH, 'sp' both. Everything that can fail
-- runs before the counter moves, so a failed publish leaves no hole in the seqs.
local function publish_one(meta, stream, channel, body, epoch_candidate, max_len, max_age, live)
  redis.call('HSETNX', meta, 'epoch', epoch_candidate)
  local seq = tonumber(redis.call('HGET', meta, 'seq') or '0') + 1
  local epoch = redis.call('HGET', meta, 'epoch')
  if seq == 1 then
    redis.call('DEL', stream)  -- a history left from an epoch that is gone
  end
  if max_len > 0 then
    local now = now_ms()
    local id = string.format('%d-%d', seq, now)
    redis.call('XADD', stream, 'MAXLEN', max_len, id, 'b', body)
    if max_age > 0 then
      trim_age(stream, max_age, now, 8)
      redis.call('PEXPIRE', stream, max_age)  -- an idle topic's history ages out whole
    end
  end
  redis.call('HSET', meta, 'seq', string.format('%d', seq))
  local message = string.format('%d:', seq) .. epoch .. ':' .. body
  if string.find(live, 's', 1, true) then redis.call('SPUBLISH', channel, message) end
  if string.find(live, 'p', 1, true) then redis.call('PUBLISH', channel, message) end
  return {seq, epoch}
end
"""

PUBLISH_SCRIPT = (
    _COMMON
    + _PUBLISH_ONE
    + """
-- KEYS: meta, history. ARGV: channel, body, epoch candidate, max_len, max_age_ms, live.
return publish_one(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3],
                   tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6])
"""
)

PUBLISH_BATCH_SCRIPT = (
    _COMMON
    + _PUBLISH_ONE
    + """
-- One Redis only (its keys span topics, so slots). KEYS: meta and history of
-- each event in turn. ARGV: max_len, max_age_ms, live, then channel, body and
-- epoch candidate of each event. Returns {seq1, seq2, ...}, or, when event
-- n + 1 fails, {seq1, ..., seqn, error}: it stops there, so exactly the
-- first n were stored.
local max_len, max_age, live = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local seqs = {}
for i = 1, #KEYS / 2 do
  local a = 3 + 3 * (i - 1)
  local ok, stored = pcall(publish_one, KEYS[2 * i - 1], KEYS[2 * i],
                           ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], max_len, max_age, live)
  if not ok then
    seqs[#seqs + 1] = type(stored) == 'table' and stored.err or tostring(stored)
    return seqs
  end
  seqs[#seqs + 1] = stored[1]
end
return seqs
"""
)

POSITION_SCRIPT = """
-- KEYS: meta. ARGV: epoch candidate. Returns {seq, epoch}.
-- The epoch is fixed at the first look, so a subscriber's position taken
-- before the first publish stays valid after it.
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
local v = redis.call('HMGET', KEYS[1], 'seq', 'epoch')
return {tonumber(v[1] or '0'), v[2]}
"""

HISTORY_SCRIPT = (
    _COMMON
    + """
-- KEYS: meta, history. ARGV: epoch candidate, since, limit, max_age_ms.
-- Returns {seq, epoch, {seq1, body1, seq2, body2, ...}}: the position and
-- the page read in one step, so they agree.
local meta, stream = KEYS[1], KEYS[2]
local max_age = tonumber(ARGV[4])
redis.call('HSETNX', meta, 'epoch', ARGV[1])
local v = redis.call('HMGET', meta, 'seq', 'epoch')
local cutoff = -1
if max_age > 0 then
  local now = now_ms()
  cutoff = now - max_age
  trim_age(stream, max_age, now, 100)
end
local start = string.format('%d', tonumber(ARGV[2]) + 1)
local page = {}
for _, entry in ipairs(redis.call('XRANGE', stream, start, '+', 'COUNT', ARGV[3])) do
  local seq, ms = string.match(entry[1], '^(%d+)-(%d+)$')
  if tonumber(ms) >= cutoff then
    page[#page + 1] = seq
    page[#page + 1] = entry[2][2]
  end
end
return {tonumber(v[1] or '0'), v[2], page}
"""
)
