"""One SQLite connection owned by one thread, driven from trio.

sqlite3 blocks, and a connection is best used from the thread that opened it, so a
:class:`SqliteWorker` starts a thread that opens the file, applies the schema migrations and
then runs the functions trio tasks hand it, one at a time, from a bounded queue. Callers wait
for their function without blocking the event loop; a caller cancelled while its function runs
waits for it to finish (a half-done transaction is never abandoned).

The file uses WAL with ``synchronous=NORMAL``: a committed transaction survives the process
being killed (it may be lost only if the whole machine fails before the next checkpoint).
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final, TypeVar

import outcome
import trio

__all__ = ["SCHEMA_VERSION", "SqliteSchemaError", "SqliteWorker", "open_sqlite"]

T = TypeVar("T")

_QUEUE_SIZE: Final = 256
"""Functions waiting for the thread at most; more callers wait in trio (backpressure)."""

_MIGRATIONS: Final[Sequence[str]] = (
    # 0 -> 1: sessions, resumable events and tasks.
    """
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        principal TEXT,
        expires_at REAL,
        data BLOB NOT NULL
    );
    CREATE INDEX sessions_principal ON sessions (principal) WHERE principal IS NOT NULL;
    CREATE INDEX sessions_expires ON sessions (expires_at) WHERE expires_at IS NOT NULL;
    CREATE TABLE event_streams (
        stream TEXT PRIMARY KEY,
        first_seq INTEGER NOT NULL,
        next_seq INTEGER NOT NULL,
        last_used REAL NOT NULL,
        events INTEGER NOT NULL DEFAULT 0,
        bytes INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX event_streams_lru ON event_streams (last_used);
    CREATE TABLE events (
        stream TEXT NOT NULL,
        seq INTEGER NOT NULL,
        at REAL NOT NULL,
        size INTEGER NOT NULL,
        data BLOB,
        PRIMARY KEY (stream, seq)
    ) WITHOUT ROWID;
    CREATE TABLE event_totals (
        id INTEGER PRIMARY KEY CHECK (id = 0),
        issued INTEGER NOT NULL,
        streams INTEGER NOT NULL,
        events INTEGER NOT NULL,
        bytes INTEGER NOT NULL
    );
    INSERT INTO event_totals VALUES (0, 0, 0, 0, 0);
    CREATE TABLE tasks (
        task_id TEXT PRIMARY KEY,
        expires_at REAL,
        data BLOB NOT NULL
    );
    CREATE INDEX tasks_expires ON tasks (expires_at) WHERE expires_at IS NOT NULL;
    """,
)

SCHEMA_VERSION: Final = len(_MIGRATIONS)
"""The schema version this mcptrio writes (``PRAGMA user_version`` of its files)."""


class SqliteSchemaError(RuntimeError):
    """The file's schema is not one this version of mcptrio can use."""


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        _migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _migrate(conn: sqlite3.Connection, path: str) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise SqliteSchemaError(
                f"{path} has store schema version {version}, written by a newer mcptrio; this"
                f" one reads versions up to {SCHEMA_VERSION}: upgrade mcptrio or use another file"
            )
        for step in range(version, SCHEMA_VERSION):
            for statement in _MIGRATIONS[step].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {step + 1}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


_Job = tuple[Callable[[sqlite3.Connection], Any], Callable[[outcome.Outcome[Any]], None]]


class SqliteWorker:
    """Runs functions on the one connection to a SQLite file; see :func:`open_sqlite`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._jobs: queue.Queue[_Job | None] = queue.Queue(_QUEUE_SIZE)
        self._slots = trio.Semaphore(_QUEUE_SIZE)
        self._opened: outcome.Outcome[None] | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(
            target=self._main, name=f"mcptrio-sqlite:{path}", daemon=True
        )
        self._closed = False

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the worker thread and return what it returns.

        ``fn`` runs alone on the connection; to be one transaction it uses ``with conn:``
        (or explicit ``BEGIN``/``COMMIT``). Its exception is raised here.
        """
        if self._closed:
            raise RuntimeError(f"the SQLite store {self.path} is closed")
        async with self._slots:
            task = trio.lowlevel.current_task()
            token = trio.lowlevel.current_trio_token()

            def deliver(result: outcome.Outcome[Any]) -> None:
                token.run_sync_soon(trio.lowlevel.reschedule, task, result)

            self._jobs.put_nowait((fn, deliver))

            def abort(_: Any) -> trio.lowlevel.Abort:
                # The function may already be running: let it finish rather than guess.
                return trio.lowlevel.Abort.FAILED

            result: T = await trio.lowlevel.wait_task_rescheduled(abort)
            return result

    def _main(self) -> None:
        try:
            conn = _connect(self.path)
        except BaseException as exc:
            self._opened = outcome.Error(exc)
            self._ready.set()
            return
        self._opened = outcome.Value(None)
        self._ready.set()
        try:
            while True:
                job = self._jobs.get()
                if job is None:
                    return
                fn, deliver = job
                result = outcome.capture(fn, conn)
                if isinstance(result, outcome.Error) and conn.in_transaction:
                    conn.rollback()
                deliver(result)
        finally:
            conn.close()

    async def _start(self) -> None:
        self._thread.start()
        await trio.to_thread.run_sync(self._ready.wait)
        assert self._opened is not None
        self._opened.unwrap()

    async def _stop(self) -> None:
        self._closed = True
        # Queued jobs run first: what callers handed over is written before the file closes.
        await trio.to_thread.run_sync(self._jobs.put, None)
        await trio.to_thread.run_sync(self._thread.join)


@asynccontextmanager
async def open_sqlite(path: str) -> AsyncIterator[SqliteWorker]:
    """Open (creating and migrating) the SQLite file at ``path`` for the duration of the block.

    Raises :class:`SqliteSchemaError` for a file from a newer mcptrio and
    :class:`sqlite3.Error` when the file cannot be opened.
    """
    worker = SqliteWorker(path)
    await worker._start()
    try:
        yield worker
    finally:
        with trio.CancelScope(shield=True):
            await worker._stop()
