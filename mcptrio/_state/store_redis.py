"""Session, event and task stores in Redis (the ``redis`` extra: coredis), under a key prefix.

Every key starts with the store's prefix, so several servers (or tests) share one Redis
without touching each other's data. Operations that change more than one key run as Lua
scripts, which Redis executes atomically: processes sharing the prefix never see half an
update.

Keys, after the prefix:

- ``s:<id>``: a session as JSON; ``s:ids`` (sorted set, by last activity) counts them and
  orders them least recently used first; ``s:exp`` (sorted set, by ``expires_at``) finds the
  expired; ``s:owner`` (hash) and ``s:p:<principal>`` (set) count sessions per principal.
- ``e:<stream>``: a Redis Stream of the stream's events (entry id ``1-<seq>``, the message
  in field ``d``; a priming event has ``p`` instead); ``ei:<stream>`` (list) each event's
  sequence number, time and size, oldest first, which trimming reads instead of the events;
  ``em:<stream>`` (hash) its sequence numbers and totals; ``e:lru`` (sorted set) streams by
  last use; ``e:tot`` (hash) the totals the byte budget applies to.
- ``t:<id>``: a task as JSON; ``t:exp`` (sorted set) tasks by end of lifetime.
- ``schema``: the layout version; a prefix written by a newer mcptrio is refused at start-up.

Timestamps are epoch seconds: record keys expire in Redis a minute after the record's own
expiry, so a server that stops sweeping does not leave them behind forever.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import orjson

from .event_store import (
    EventEvicted,
    EventStoreStatistics,
    ReplayedEvent,
    check_event_limits,
    parse_event_id,
)
from .sessions import SessionRecord
from .store_codec import decode_session, decode_task, encode_session, encode_task
from .task_store import TaskRecord

if TYPE_CHECKING:
    import coredis

__all__ = [
    "SCHEMA_VERSION",
    "RedisEventStore",
    "RedisSessionStore",
    "RedisTaskStore",
    "check_schema",
]

SCHEMA_VERSION: Final = 1
"""The layout of the keys this mcptrio writes, kept in ``<prefix>schema``."""

KEY_GRACE: Final = 60.0
"""Seconds a record's Redis key outlives the record's own expiry."""


async def check_schema(client: coredis.Redis[Any], prefix: str) -> int | None:
    """Mark ``prefix`` as holding this layout, unless it holds a newer one: then return that."""
    key = f"{prefix}schema"
    await client.set(key, str(SCHEMA_VERSION), condition=_nx())
    found = await client.get(key)
    version = int(found) if found is not None and found.isdigit() else SCHEMA_VERSION
    return version if version > SCHEMA_VERSION else None


def _nx() -> Any:
    from coredis.tokens import PureToken

    return PureToken.NX


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _RedisStore:
    def __init__(self, client: coredis.Redis[Any], prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._closed = False
        self._scripts: dict[str, Any] = {}

    def _check(self) -> coredis.Redis[Any]:
        if self._closed:
            raise RuntimeError(f"the Redis store with prefix {self._prefix!r} is closed")
        return self._client

    async def _script(self, script: str, *args: Any) -> Any:
        client = self._check()
        # A registered script runs by its SHA (EVALSHA), loaded once per Redis.
        registered = self._scripts.get(script)
        if registered is None:
            registered = self._scripts[script] = client.register_script(script)
        return await registered(keys=[], args=[self._prefix, *args])

    async def close(self) -> None:
        """Refuse further use; the connection closes with the block that opened it."""
        self._closed = True


# --------------------------------------------------------------------------- sessions

_SESSION_DELETE = """
local p, id = ARGV[1], ARGV[2]
local owner = redis.call('HGET', p..'s:owner', id)
if owner then
  redis.call('SREM', p..'s:p:'..owner, id)
  redis.call('HDEL', p..'s:owner', id)
end
redis.call('DEL', p..'s:'..id)
redis.call('ZREM', p..'s:ids', id)
redis.call('ZREM', p..'s:exp', id)
"""

_SESSION_PUT = """
local p, id, data, active, expires, principal, pxat =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local owner = redis.call('HGET', p..'s:owner', id)
if owner and owner ~= principal then
  redis.call('SREM', p..'s:p:'..owner, id)
  redis.call('HDEL', p..'s:owner', id)
end
if principal ~= '' then
  redis.call('HSET', p..'s:owner', id, principal)
  redis.call('SADD', p..'s:p:'..principal, id)
end
if pxat ~= '' then
  redis.call('SET', p..'s:'..id, data, 'PXAT', pxat)
else
  redis.call('SET', p..'s:'..id, data)
end
redis.call('ZADD', p..'s:ids', active, id)
if expires ~= '' then
  redis.call('ZADD', p..'s:exp', expires, id)
else
  redis.call('ZREM', p..'s:exp', id)
end
"""

# Ids due by now; index entries of keys Redis already expired are cleaned up on the way.
_SESSION_EXPIRED = (
    """
local p, now = ARGV[1], ARGV[2]
local due = redis.call('ZRANGE', p..'s:exp', '-inf', now, 'BYSCORE')
local out = {}
for _, id in ipairs(due) do
  if redis.call('EXISTS', p..'s:'..id) == 1 then
    table.insert(out, id)
  else
"""
    + _SESSION_DELETE.replace("local p, id = ARGV[1], ARGV[2]", "")
    + """
  end
end
return out
"""
)


def _pxat(expires_at: float | None) -> str:
    return "" if expires_at is None else str(int((expires_at + KEY_GRACE) * 1000))


class RedisSessionStore(_RedisStore):
    """A :class:`~mcptrio.SessionStore` in Redis; records' timestamps are epoch seconds."""

    async def get(self, session_id: str) -> SessionRecord | None:
        """The record, or None if there is none."""
        raw = await self._check().get(f"{self._prefix}s:{session_id}")
        return None if raw is None else decode_session(raw)

    async def put(self, record: SessionRecord) -> None:
        """Insert or replace the record with ``record.id``."""
        await self._script(
            _SESSION_PUT,
            record.id,
            encode_session(record),
            repr(record.last_active_at),
            "" if record.expires_at is None else repr(record.expires_at),
            record.principal or "",
            _pxat(record.expires_at),
        )

    async def delete(self, session_id: str) -> None:
        """Remove the record, if any."""
        await self._script(_SESSION_DELETE, session_id)

    async def count(self) -> int:
        """How many records the store holds."""
        return int(await self._check().zcard(f"{self._prefix}s:ids"))

    async def count_for_principal(self, principal: str) -> int:
        """How many records belong to ``principal``."""
        return int(await self._check().scard(f"{self._prefix}s:p:{principal}"))

    async def expired(self, now: float) -> list[str]:
        """Ids of records whose ``expires_at`` is at or before ``now``, soonest first."""
        return [_text(i) for i in await self._script(_SESSION_EXPIRED, repr(now))]


# --------------------------------------------------------------------------- tasks

_TASK_CREATE = """
local p, id, data, expires, pxat = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('EXISTS', p..'t:'..id) == 1 then return 0 end
if pxat ~= '' then
  redis.call('SET', p..'t:'..id, data, 'PXAT', pxat)
  redis.call('ZADD', p..'t:exp', expires, id)
else
  redis.call('SET', p..'t:'..id, data)
end
return 1
"""

_TASK_PURGE = """
local p, now = ARGV[1], ARGV[2]
local due = redis.call('ZRANGE', p..'t:exp', '-inf', now, 'BYSCORE')
for _, id in ipairs(due) do
  redis.call('DEL', p..'t:'..id)
  redis.call('ZREM', p..'t:exp', id)
end
return due
"""


class RedisTaskStore(_RedisStore):
    """A :class:`~mcptrio.TaskStore` in Redis, shareable by several processes."""

    async def create(self, record: TaskRecord) -> None:
        """Store a new task; ``ValueError`` if its id is taken (by any process)."""
        expires = record.expires_at
        created = await self._script(
            _TASK_CREATE,
            record.task_id,
            encode_task(record),
            "" if expires is None else repr(expires),
            _pxat(expires),
        )
        if not created:
            raise ValueError(f"a task with id {record.task_id!r} already exists")

    async def get(self, task_id: str) -> TaskRecord | None:
        """The task with this id, or None."""
        raw = await self._check().get(f"{self._prefix}t:{task_id}")
        return None if raw is None else decode_task(raw)

    async def save(self, record: TaskRecord) -> None:
        """Replace a stored task; ``KeyError`` if it is gone."""
        old = await self.get(record.task_id)
        if old is None:
            raise KeyError(record.task_id)
        if old.created_at != record.created_at or old.ttl_ms != record.ttl_ms:
            raise ValueError("a task's created_at and ttl_ms never change")
        done = await self._check().set(
            f"{self._prefix}t:{record.task_id}",
            encode_task(record),
            condition=_xx(),
            keepttl=True,
        )
        if not done:
            raise KeyError(record.task_id)

    async def delete(self, task_id: str) -> None:
        """Forget a task."""
        client = self._check()
        await client.delete([f"{self._prefix}t:{task_id}"])
        await client.zrem(f"{self._prefix}t:exp", [task_id])

    async def purge_expired(self, now: float) -> list[str]:
        """Delete the tasks whose lifetime ended by ``now``; return their ids."""
        return [_text(i) for i in await self._script(_TASK_PURGE, repr(now))]


def _xx() -> Any:
    from coredis.tokens import PureToken

    return PureToken.XX


# --------------------------------------------------------------------------- events

# Shared by the event scripts: dropping events, trimming a stream, expiring streams.
_EVENT_LIB = """
local p = ARGV[1]
local tot = p..'e:tot'
local lru = p..'e:lru'
local function seq_of(entry)
  return tonumber(string.match(entry[1], '-(%d+)$'))
end
-- The index ei:<stream> lists "seq at size" per event, oldest first, so that trimming reads
-- a few short strings instead of the events themselves.
local function parse(item)
  local seq, at, size = string.match(item, '^(%d+) (%S+) (%d+)$')
  return tonumber(seq), tonumber(at), tonumber(size)
end
-- Drop the oldest events of a stream while should_drop(at, events left, bytes left,
-- bytes dropped so far) says so.
local function drop_while(stream, should_drop)
  local ik, mk = p..'ei:'..stream, p..'em:'..stream
  local events = tonumber(redis.call('HGET', mk, 'events') or '0')
  local bytes = tonumber(redis.call('HGET', mk, 'bytes') or '0')
  local n, size, cut = 0, 0, nil
  while true do
    local batch = redis.call('LRANGE', ik, n, n + 63)
    if #batch == 0 then break end
    local stop = false
    for _, item in ipairs(batch) do
      local seq, at, s = parse(item)
      if not should_drop(at, events - n, bytes - size, size) then stop = true break end
      n, size, cut = n + 1, size + s, seq
    end
    if stop then break end
  end
  if cut then
    redis.call('LTRIM', ik, n, -1)
    redis.call('XTRIM', p..'e:'..stream, 'MINID', '1-' .. (cut + 1))
    redis.call('HINCRBY', mk, 'events', -n)
    redis.call('HINCRBY', mk, 'bytes', -size)
    redis.call('HINCRBY', tot, 'events', -n)
    redis.call('HINCRBY', tot, 'bytes', -size)
  end
  return n
end
local function drop_all(stream)
  local mk = p..'em:'..stream
  local n = tonumber(redis.call('HGET', mk, 'events') or '0')
  redis.call('HINCRBY', tot, 'events', -n)
  redis.call('HINCRBY', tot, 'bytes', -tonumber(redis.call('HGET', mk, 'bytes') or '0'))
  redis.call('DEL', p..'e:'..stream, p..'ei:'..stream, mk)
  redis.call('ZREM', lru, stream)
  return n
end
local function drop_old(stream, cutoff)
  return drop_while(stream, function(at) return at < cutoff end)
end
local function expire_streams(cutoff, max_streams)
  local n = 0
  for _, s in ipairs(redis.call('ZRANGE', lru, '-inf', '(' .. cutoff, 'BYSCORE')) do
    n = n + drop_all(s)
  end
  local excess = redis.call('ZCARD', lru) - max_streams
  if excess > 0 then
    for _, s in ipairs(redis.call('ZRANGE', lru, 0, excess - 1)) do n = n + drop_all(s) end
  end
  return n
end
"""

_EVENT_APPEND = (
    _EVENT_LIB
    + """
local stream, now, data, size = ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local max_events, max_age, max_streams = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local max_stream_bytes, max_bytes = tonumber(ARGV[9]), tonumber(ARGV[10])
local has_data = ARGV[11] == '1'
local sk, mk = p..'e:'..stream, p..'em:'..stream
local evicted = 0
local seq = redis.call('HGET', mk, 'next')
if not seq then
  seq = tonumber(redis.call('HGET', tot, 'issued') or '0')
  redis.call('HSET', mk, 'first', seq, 'next', seq, 'events', 0, 'bytes', 0)
else
  seq = tonumber(seq)
  evicted = evicted + drop_old(stream, now - max_age)
end
if has_data then
  redis.call('XADD', sk, '1-' .. seq, 'd', data)
else
  redis.call('XADD', sk, '1-' .. seq, 'p', '')
end
redis.call('RPUSH', p..'ei:'..stream, seq .. ' ' .. ARGV[3] .. ' ' .. size)
redis.call('HSET', mk, 'next', seq + 1)
redis.call('HINCRBY', mk, 'events', 1)
redis.call('HINCRBY', mk, 'bytes', size)
redis.call('HINCRBY', tot, 'events', 1)
redis.call('HINCRBY', tot, 'bytes', size)
local issued = tonumber(redis.call('HGET', tot, 'issued') or '0')
if seq + 1 > issued then redis.call('HSET', tot, 'issued', seq + 1) end
redis.call('ZADD', lru, now, stream)
evicted = evicted + drop_while(stream, function(at, events, bytes)
  return events > max_events or (max_stream_bytes > 0 and bytes > max_stream_bytes)
end)
evicted = evicted + expire_streams(now - max_age, max_streams)
if max_bytes > 0 then
  local held = tonumber(redis.call('HGET', tot, 'bytes') or '0')
  if held > max_bytes then
    for _, s in ipairs(redis.call('ZRANGE', lru, 0, -1)) do
      evicted = evicted + drop_while(s, function(at, events, bytes, dropped)
        return held - dropped > max_bytes
      end)
      held = tonumber(redis.call('HGET', tot, 'bytes'))
      if held <= max_bytes then break end
    end
  end
end
return {seq, evicted, redis.call('ZCARD', lru), tonumber(redis.call('HGET', tot, 'events'))}
"""
)

_EVENT_REPLAY = (
    _EVENT_LIB
    + """
local stream, seq, now = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local max_age, max_streams = tonumber(ARGV[5]), tonumber(ARGV[6])
local sk, mk = p..'e:'..stream, p..'em:'..stream
local evicted = expire_streams(now - max_age, max_streams)
local meta = redis.call('HMGET', mk, 'first', 'next')
if not meta[1] then return {'the stream is unknown or has expired', evicted, {}} end
evicted = evicted + drop_old(stream, now - max_age)
local first, nxt = tonumber(meta[1]), tonumber(meta[2])
local oldest = redis.call('LINDEX', p..'ei:'..stream, 0)
local first_kept = nxt
if oldest then first_kept = parse(oldest) end
if seq >= nxt then return {'the stream never sent this event', evicted, {}} end
if seq < first then
  return {'it is from an earlier stream of that id, now expired', evicted, {}}
end
if seq < first_kept - 1 then
  return {'events after it are too old and were dropped', evicted, {}}
end
redis.call('ZADD', lru, now, stream)
local out = {}
for _, e in ipairs(redis.call('XRANGE', sk, '(1-' .. seq, '+')) do
  local f = e[2]
  local data = false
  if f[1] == 'd' then data = f[2] end
  table.insert(out, {seq_of(e), data})
end
return {'', evicted, out}
"""
)

_EVENT_CLOSE = """
local p, stream, now = ARGV[1], ARGV[2], ARGV[3]
if redis.call('ZSCORE', p..'e:lru', stream) then redis.call('ZADD', p..'e:lru', now, stream) end
"""


class RedisEventStore(_RedisStore):
    """An :class:`~mcptrio.EventStore` on Redis Streams, bounded as
    :class:`~mcptrio.MemoryEventStore` is (events, bytes, age, streams), shared by every
    process using the prefix: a client can resume its stream on any of them.

    Counters in :meth:`statistics` count this process's calls; ``streams`` and ``events``
    are Redis's, as of the last append.
    """

    def __init__(
        self,
        client: coredis.Redis[Any],
        prefix: str,
        max_events_per_stream: int = 1000,
        max_age: float = 300.0,
        max_streams: int = 10_000,
        clock: Callable[[], float] = time.time,
        *,
        max_bytes_per_stream: int | None = None,
        max_bytes: int | None = None,
    ) -> None:
        check_event_limits(
            "RedisEventStore",
            max_events_per_stream=max_events_per_stream,
            max_age=max_age,
            max_streams=max_streams,
            max_bytes_per_stream=max_bytes_per_stream,
            max_bytes=max_bytes,
        )
        super().__init__(client, prefix)
        self._max_events = max_events_per_stream
        self._max_age = float(max_age)
        self._max_streams = max_streams
        self._max_stream_bytes = max_bytes_per_stream or 0
        self._max_bytes = max_bytes or 0
        self._clock = clock
        self._streams = 0
        self._events = 0
        self._appended = 0
        self._evicted = 0
        self._replays = 0
        self._misses = 0

    async def append(self, stream_id: str, message: dict[str, Any] | None) -> str:
        """Record one event on ``stream_id``; return its id ``"<stream_id>:<seq>"``."""
        if not stream_id or ":" in stream_id:
            raise ValueError(f"stream id {stream_id!r} must be non-empty and contain no ':'")
        data = b"" if message is None else orjson.dumps(message)
        seq, evicted, streams, events = await self._script(
            _EVENT_APPEND,
            stream_id,
            repr(self._clock()),
            data,
            len(data),
            self._max_events,
            repr(self._max_age),
            self._max_streams,
            self._max_stream_bytes,
            self._max_bytes,
            "0" if message is None else "1",
        )
        self._appended += 1
        self._evicted += int(evicted)
        self._streams, self._events = int(streams), int(events)
        return f"{stream_id}:{int(seq)}"

    async def replay_after(self, last_event_id: str) -> tuple[str, list[ReplayedEvent]]:
        """The stream of ``last_event_id`` and its retained events after it, oldest first."""
        parsed = parse_event_id(last_event_id)
        if parsed is None:
            self._misses += 1
            raise EventEvicted(last_event_id, None, "it is not an event id this server issued")
        stream_id, seq = parsed
        reason, evicted, rows = await self._script(
            _EVENT_REPLAY,
            stream_id,
            seq,
            repr(self._clock()),
            repr(self._max_age),
            self._max_streams,
        )
        self._evicted += int(evicted)
        if reason:
            self._misses += 1
            raise EventEvicted(last_event_id, stream_id, _text(reason))
        self._replays += 1
        return stream_id, [
            (f"{stream_id}:{int(s)}", orjson.loads(data) if data else None) for s, data in rows
        ]

    async def close_stream(self, stream_id: str) -> None:
        """Mark the stream finished; it stays resumable for ``max_age`` seconds."""
        await self._script(_EVENT_CLOSE, stream_id, repr(self._clock()))

    def statistics(self) -> EventStoreStatistics:
        """Counters of this process, with Redis's stream and event counts."""
        return EventStoreStatistics(
            streams=self._streams,
            events=self._events,
            appended_total=self._appended,
            evicted_total=self._evicted,
            replays_total=self._replays,
            misses_total=self._misses,
        )
