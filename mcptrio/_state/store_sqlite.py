"""Session, event and task stores in one SQLite file (see :mod:`mcptrio._state.sqlite`).

Each operation is one transaction on the worker thread, so what a call wrote is on disk
(WAL) when it returns, and another process opening the file sees it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from .event_store import (
    EventEvicted,
    EventStoreStatistics,
    ReplayedEvent,
    check_event_limits,
    event_size,
    parse_event_id,
)
from .sessions import SessionRecord
from .sqlite import SqliteWorker
from .store_codec import decode_session, decode_task, encode_session, encode_task
from .task_store import TaskRecord

__all__ = ["SqliteEventStore", "SqliteSessionStore", "SqliteTaskStore"]

T = TypeVar("T")


def _transaction(fn: Callable[[sqlite3.Connection], T]) -> Callable[[sqlite3.Connection], T]:
    def run(conn: sqlite3.Connection) -> T:
        conn.execute("BEGIN IMMEDIATE")
        result = fn(conn)
        conn.execute("COMMIT")
        return result

    return run


class _Closable:
    def __init__(self, worker: SqliteWorker) -> None:
        self._worker = worker
        self._closed = False

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise RuntimeError(f"the store on {self._worker.path} is closed")
        return await self._worker.run(fn)

    async def close(self) -> None:
        """Refuse further use; the file closes with the block that opened it. Idempotent."""
        self._closed = True


# --------------------------------------------------------------------------- sessions


class SqliteSessionStore(_Closable):
    """A :class:`~mcptrio.SessionStore` in a SQLite file."""

    async def get(self, session_id: str) -> SessionRecord | None:
        """The record, or None if there is none."""

        def get(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute("SELECT data FROM sessions WHERE id = ?", (session_id,)).fetchone()
            return None if row is None else bytes(row[0])

        raw = await self._run(get)
        return None if raw is None else decode_session(raw)

    async def put(self, record: SessionRecord) -> None:
        """Insert or replace the record with ``record.id``."""
        params = (record.id, record.principal, record.expires_at, encode_session(record))

        def put(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO sessions (id, principal, expires_at, data)"
                " VALUES (?, ?, ?, ?)",
                params,
            )

        await self._run(put)

    async def delete(self, session_id: str) -> None:
        """Remove the record, if any."""
        await self._run(lambda c: c.execute("DELETE FROM sessions WHERE id = ?", (session_id,)))

    async def count(self) -> int:
        """How many records the store holds."""
        return await self._run(
            lambda c: int(c.execute("SELECT count(*) FROM sessions").fetchone()[0])
        )

    async def count_for_principal(self, principal: str) -> int:
        """How many records belong to ``principal``."""

        def count(conn: sqlite3.Connection) -> int:
            sql = "SELECT count(*) FROM sessions WHERE principal = ?"
            return int(conn.execute(sql, (principal,)).fetchone()[0])

        return await self._run(count)

    async def expired(self, now: float) -> list[str]:
        """Ids of records whose ``expires_at`` is at or before ``now``, soonest first."""

        def expired(conn: sqlite3.Connection) -> list[str]:
            sql = "SELECT id FROM sessions WHERE expires_at <= ? ORDER BY expires_at"
            return [row[0] for row in conn.execute(sql, (now,))]

        return await self._run(expired)


# --------------------------------------------------------------------------- tasks


class SqliteTaskStore(_Closable):
    """A :class:`~mcptrio.TaskStore` in a SQLite file."""

    async def create(self, record: TaskRecord) -> None:
        """Store a new task; ``ValueError`` if its id is taken."""
        params = (record.task_id, record.expires_at, encode_task(record))

        def create(conn: sqlite3.Connection) -> bool:
            try:
                conn.execute(
                    "INSERT INTO tasks (task_id, expires_at, data) VALUES (?, ?, ?)", params
                )
            except sqlite3.IntegrityError:
                return False
            return True

        if not await self._run(create):
            raise ValueError(f"a task with id {record.task_id!r} already exists")

    async def get(self, task_id: str) -> TaskRecord | None:
        """The task with this id, or None."""

        def get(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute("SELECT data FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
            return None if row is None else bytes(row[0])

        raw = await self._run(get)
        return None if raw is None else decode_task(raw)

    async def save(self, record: TaskRecord) -> None:
        """Replace a stored task; ``KeyError`` if it is gone."""
        data = encode_task(record)

        def save(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(
                "SELECT data FROM tasks WHERE task_id = ?", (record.task_id,)
            ).fetchone()
            if row is None:
                return "gone"
            old = decode_task(row[0])
            if old.created_at != record.created_at or old.ttl_ms != record.ttl_ms:
                return "immutable"
            conn.execute("UPDATE tasks SET data = ? WHERE task_id = ?", (data, record.task_id))
            return None

        problem = await self._run(_transaction(save))
        if problem == "gone":
            raise KeyError(record.task_id)
        if problem == "immutable":
            raise ValueError("a task's created_at and ttl_ms never change")

    async def delete(self, task_id: str) -> None:
        """Forget a task."""
        await self._run(lambda c: c.execute("DELETE FROM tasks WHERE task_id = ?", (task_id,)))

    async def purge_expired(self, now: float) -> list[str]:
        """Delete the tasks whose lifetime ended by ``now``; return their ids."""

        def purge(conn: sqlite3.Connection) -> list[str]:
            sql = "DELETE FROM tasks WHERE expires_at <= ? RETURNING task_id"
            return [row[0] for row in conn.execute(sql, (now,)).fetchall()]

        return await self._run(_transaction(purge))


# --------------------------------------------------------------------------- events


class SqliteEventStore(_Closable):
    """An :class:`~mcptrio.EventStore` in a SQLite file, bounded as
    :class:`~mcptrio.MemoryEventStore` is (events, bytes, age, streams).

    Timestamps are wall-clock seconds (``clock``), so the age limit holds across restarts.
    Counters in :meth:`statistics` count this process's calls; ``streams`` and ``events``
    are the file's, as of the last append.
    """

    def __init__(
        self,
        worker: SqliteWorker,
        max_events_per_stream: int = 1000,
        max_age: float = 300.0,
        max_streams: int = 10_000,
        clock: Callable[[], float] = time.time,
        *,
        max_bytes_per_stream: int | None = None,
        max_bytes: int | None = None,
    ) -> None:
        check_event_limits(
            "SqliteEventStore",
            max_events_per_stream=max_events_per_stream,
            max_age=max_age,
            max_streams=max_streams,
            max_bytes_per_stream=max_bytes_per_stream,
            max_bytes=max_bytes,
        )
        super().__init__(worker)
        self._max_events = max_events_per_stream
        self._max_age = float(max_age)
        self._max_streams = max_streams
        self._max_stream_bytes = max_bytes_per_stream
        self._max_bytes = max_bytes
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
        size = event_size(message)
        data = None if message is None else orjson.dumps(message)
        now = self._clock()

        def append(conn: sqlite3.Connection) -> tuple[int, int, int, int]:
            evicted = 0
            row = conn.execute(
                "SELECT next_seq FROM event_streams WHERE stream = ?", (stream_id,)
            ).fetchone()
            if row is None:
                (issued,) = conn.execute("SELECT issued FROM event_totals").fetchone()
                conn.execute(
                    "INSERT INTO event_streams (stream, first_seq, next_seq, last_used)"
                    " VALUES (?, ?, ?, ?)",
                    (stream_id, issued, issued, now),
                )
                conn.execute("UPDATE event_totals SET streams = streams + 1")
                seq = int(issued)
            else:
                seq = int(row[0])
                evicted += self._drop(conn, stream_id, "at < ?", (now - self._max_age,))
            conn.execute(
                "INSERT INTO events (stream, seq, at, size, data) VALUES (?, ?, ?, ?, ?)",
                (stream_id, seq, now, size, data),
            )
            conn.execute(
                "UPDATE event_streams SET next_seq = ?, last_used = ?, events = events + 1,"
                " bytes = bytes + ? WHERE stream = ?",
                (seq + 1, now, size, stream_id),
            )
            conn.execute(
                "UPDATE event_totals SET issued = max(issued, ?), events = events + 1,"
                " bytes = bytes + ?",
                (seq + 1, size),
            )
            evicted += self._trim_stream(conn, stream_id)
            evicted += self._expire_streams(conn, now)
            evicted += self._trim_total(conn)
            streams, events = conn.execute("SELECT streams, events FROM event_totals").fetchone()
            return seq, evicted, int(streams), int(events)

        seq, evicted, self._streams, self._events = await self._run(_transaction(append))
        self._appended += 1
        self._evicted += evicted
        return f"{stream_id}:{seq}"

    async def replay_after(self, last_event_id: str) -> tuple[str, list[ReplayedEvent]]:
        """The stream of ``last_event_id`` and its retained events after it, oldest first."""
        parsed = parse_event_id(last_event_id)
        if parsed is None:
            self._misses += 1
            raise EventEvicted(last_event_id, None, "it is not an event id this server issued")
        stream_id, seq = parsed
        now = self._clock()

        def replay(conn: sqlite3.Connection) -> tuple[str | None, list[tuple[int, Any]], int]:
            evicted = self._expire_streams(conn, now)
            row = conn.execute(
                "SELECT first_seq, next_seq FROM event_streams WHERE stream = ?", (stream_id,)
            ).fetchone()
            if row is None:
                return "the stream is unknown or has expired", [], evicted
            evicted += self._drop(conn, stream_id, "at < ?", (now - self._max_age,))
            first_seq, next_seq = row
            oldest = conn.execute(
                "SELECT min(seq) FROM events WHERE stream = ?", (stream_id,)
            ).fetchone()[0]
            first_kept = next_seq if oldest is None else oldest
            if seq >= next_seq:
                return "the stream never sent this event", [], evicted
            if seq < first_seq:
                return "it is from an earlier stream of that id, now expired", [], evicted
            if seq < first_kept - 1:
                return "events after it are too old and were dropped", [], evicted
            conn.execute(
                "UPDATE event_streams SET last_used = ? WHERE stream = ?", (now, stream_id)
            )
            rows = conn.execute(
                "SELECT seq, data FROM events WHERE stream = ? AND seq > ? ORDER BY seq",
                (stream_id, seq),
            ).fetchall()
            return None, rows, evicted

        reason, rows, evicted = await self._run(_transaction(replay))
        self._evicted += evicted
        if reason is not None:
            self._misses += 1
            raise EventEvicted(last_event_id, stream_id, reason)
        self._replays += 1
        return stream_id, [
            (f"{stream_id}:{s}", None if data is None else orjson.loads(data)) for s, data in rows
        ]

    async def close_stream(self, stream_id: str) -> None:
        """Mark the stream finished; it stays resumable for ``max_age`` seconds."""
        now = self._clock()
        await self._run(
            lambda c: c.execute(
                "UPDATE event_streams SET last_used = ? WHERE stream = ?", (now, stream_id)
            )
        )

    def statistics(self) -> EventStoreStatistics:
        """Counters of this process, with the file's stream and event counts."""
        return EventStoreStatistics(
            streams=self._streams,
            events=self._events,
            appended_total=self._appended,
            evicted_total=self._evicted,
            replays_total=self._replays,
            misses_total=self._misses,
        )

    # -- on the worker thread ------------------------------------------------------------

    @staticmethod
    def _drop(conn: sqlite3.Connection, stream_id: str, where: str, args: tuple[Any, ...]) -> int:
        rows = conn.execute(
            f"DELETE FROM events WHERE stream = ? AND {where} RETURNING size",
            (stream_id, *args),
        ).fetchall()
        if not rows:
            return 0
        size = sum(r[0] for r in rows)
        conn.execute(
            "UPDATE event_streams SET events = events - ?, bytes = bytes - ? WHERE stream = ?",
            (len(rows), size, stream_id),
        )
        conn.execute(
            "UPDATE event_totals SET events = events - ?, bytes = bytes - ?", (len(rows), size)
        )
        return len(rows)

    def _trim_stream(self, conn: sqlite3.Connection, stream_id: str) -> int:
        events, held = conn.execute(
            "SELECT events, bytes FROM event_streams WHERE stream = ?", (stream_id,)
        ).fetchone()
        limit = self._max_stream_bytes
        if events <= self._max_events and (limit is None or held <= limit):
            return 0
        cut: int | None = None
        for seq, size in conn.execute(
            "SELECT seq, size FROM events WHERE stream = ? ORDER BY seq", (stream_id,)
        ):
            if events <= self._max_events and (limit is None or held <= limit):
                break
            cut = seq
            events -= 1
            held -= size
        return 0 if cut is None else self._drop(conn, stream_id, "seq <= ?", (cut,))

    def _trim_total(self, conn: sqlite3.Connection) -> int:
        limit = self._max_bytes
        if limit is None:
            return 0
        (held,) = conn.execute("SELECT bytes FROM event_totals").fetchone()
        evicted = 0
        if held <= limit:
            return 0
        streams = conn.execute(
            "SELECT stream FROM event_streams WHERE bytes > 0 ORDER BY last_used"
        ).fetchall()
        for (stream_id,) in streams:
            cut: int | None = None
            for seq, size in conn.execute(
                "SELECT seq, size FROM events WHERE stream = ? ORDER BY seq", (stream_id,)
            ):
                if held <= limit:
                    break
                cut = seq
                held -= size
            if cut is not None:
                evicted += self._drop(conn, stream_id, "seq <= ?", (cut,))
            if held <= limit:
                break
        return evicted

    def _expire_streams(self, conn: sqlite3.Connection, now: float) -> int:
        stale = [
            row[0]
            for row in conn.execute(
                "SELECT stream FROM event_streams WHERE last_used < ?", (now - self._max_age,)
            )
        ]
        (count,) = conn.execute("SELECT streams FROM event_totals").fetchone()
        excess = count - len(stale) - self._max_streams
        if excess > 0:
            stale += [
                row[0]
                for row in conn.execute(
                    "SELECT stream FROM event_streams WHERE last_used >= ?"
                    " ORDER BY last_used LIMIT ?",
                    (now - self._max_age, excess),
                )
            ]
        evicted = 0
        for stream_id in stale:
            evicted += self._drop(conn, stream_id, "1", ())
            conn.execute("DELETE FROM event_streams WHERE stream = ?", (stream_id,))
            conn.execute("UPDATE event_totals SET streams = streams - 1")
        return evicted
