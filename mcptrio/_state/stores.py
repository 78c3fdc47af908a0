"""Opening the stores a URL names: :func:`open_stores`."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import attrs
import trio

from .._ops.store_location import StoreError, parse_store_url
from .event_store import EventStore, MemoryEventStore
from .sessions import MemorySessionStore, SessionStore
from .task_store import MemoryTaskStore, TaskStore

__all__ = ["StoreSet", "open_stores"]

_CONNECT_TIMEOUT = 5.0
"""Longest wait for Redis to answer at start-up."""


@attrs.frozen(kw_only=True)
class StoreSet:
    """The session, event and task stores one URL names, open together."""

    kind: Literal["memory", "sqlite", "redis"]
    """The backend."""
    url: str
    """The URL, password masked."""
    sessions: SessionStore
    """Session records."""
    events: EventStore
    """Resumable SSE events."""
    tasks: TaskStore
    """Tasks of the tasks extension."""
    clock: Callable[[], float] | None
    """The clock session timestamps must use for records to outlive the process
    (``time.time``), or None when any clock will do (memory)."""


@asynccontextmanager
async def open_stores(
    url: str = "memory://",
    *,
    max_events_per_stream: int = 1000,
    max_event_age: float = 300.0,
    max_streams: int = 10_000,
    max_event_bytes_per_stream: int | None = None,
    max_event_bytes: int | None = None,
) -> AsyncIterator[StoreSet]:
    """Open the stores ``url`` names for the duration of the block, and close them after.

    ``memory://`` keeps everything in this process; ``sqlite:///path/file.db`` in one file
    (created and migrated as needed) on one worker thread; ``redis://host:port/db?prefix=p``
    under keys starting with ``p`` (default ``mcptrio:``). The event limits bound the event
    store as :class:`~mcptrio.MemoryEventStore` describes, in every backend.

    Raises :class:`~mcptrio.StoreError`, naming the URL (password masked) and the problem,
    when the URL is malformed or the store cannot be opened (file unreadable or from a newer
    mcptrio, Redis unreachable, the ``redis`` extra missing).
    """
    where = parse_store_url(url)
    limits: dict[str, Any] = {
        "max_events_per_stream": max_events_per_stream,
        "max_age": max_event_age,
        "max_streams": max_streams,
        "max_bytes_per_stream": max_event_bytes_per_stream,
        "max_bytes": max_event_bytes,
    }
    if where.kind == "memory":
        stores = StoreSet(
            kind="memory",
            url=where.masked_url,
            sessions=MemorySessionStore(),
            events=MemoryEventStore(**limits),
            tasks=MemoryTaskStore(),
            clock=None,
        )
        try:
            yield stores
        finally:
            await stores.sessions.close()
        return
    if where.kind == "sqlite":
        assert where.path is not None
        async with _sqlite_stores(where.path, where.masked_url, limits) as stores:
            yield stores
        return
    assert where.redis_url is not None
    async with _redis_stores(where.redis_url, where.prefix, where.masked_url, limits) as stores:
        yield stores


@asynccontextmanager
async def _sqlite_stores(path: str, masked: str, limits: dict[str, Any]) -> AsyncIterator[StoreSet]:
    from .sqlite import SqliteSchemaError, open_sqlite
    from .store_sqlite import SqliteEventStore, SqliteSessionStore, SqliteTaskStore

    opener = open_sqlite(path)
    try:
        worker = await opener.__aenter__()
    except SqliteSchemaError as exc:
        raise StoreError(f"store URL {masked!r}: {exc}") from None
    except sqlite3.Error as exc:
        raise StoreError(f"store URL {masked!r}: cannot open the SQLite file ({exc})") from None
    try:
        stores = StoreSet(
            kind="sqlite",
            url=masked,
            sessions=SqliteSessionStore(worker),
            events=SqliteEventStore(worker, **limits),
            tasks=SqliteTaskStore(worker),
            clock=time.time,
        )
        yield stores
    finally:
        await opener.__aexit__(None, None, None)


@asynccontextmanager
async def _redis_stores(
    redis_url: str, prefix: str, masked: str, limits: dict[str, Any]
) -> AsyncIterator[StoreSet]:
    try:
        import coredis
    except ImportError:
        raise StoreError(
            f"store URL {masked!r}: Redis stores need the coredis package; install"
            " mcptrio[redis] (pip install 'mcptrio[redis]')"
        ) from None
    from .store_redis import (
        SCHEMA_VERSION,
        RedisEventStore,
        RedisSessionStore,
        RedisTaskStore,
        check_schema,
    )

    try:
        probe: coredis.Redis[Any] = coredis.Redis.from_url(
            redis_url, retry_policy=coredis.retry.NoRetryPolicy()
        )
        client: coredis.Redis[Any] = coredis.Redis.from_url(redis_url)
    except (ValueError, TypeError) as exc:
        raise StoreError(f"store URL {masked!r}: {exc}") from None
    # A separate probe: the client reports a failed connection as an exception group when
    # its block exits, and the block of the real client is the caller's.
    problem: str | None = None
    newer: int | None = None
    try:
        with trio.fail_after(_CONNECT_TIMEOUT):
            async with probe:
                await probe.ping()
                newer = await check_schema(probe, prefix)
    except trio.TooSlowError:
        problem = f"Redis did not answer within {_CONNECT_TIMEOUT:g} s"
    except BaseException as exc:
        leaves = _leaves(exc)
        if not all(isinstance(e, coredis.exceptions.RedisError | OSError) for e in leaves):
            raise
        problem = f"cannot reach Redis ({'; '.join(str(e) for e in leaves)})"
    if problem is not None:
        raise StoreError(f"store URL {masked!r}: {problem}")
    if newer is not None:
        raise StoreError(
            f"store URL {masked!r}: the keys under prefix {prefix!r} have store schema version"
            f" {newer}, written by a newer mcptrio; this one reads versions up to"
            f" {SCHEMA_VERSION}: upgrade mcptrio or use another prefix"
        )
    try:
        async with client:
            yield StoreSet(
                kind="redis",
                url=masked,
                sessions=RedisSessionStore(client, prefix),
                events=RedisEventStore(client, prefix, **limits),
                tasks=RedisTaskStore(client, prefix),
                clock=time.time,
            )
    except BaseExceptionGroup as group:
        # The client wraps whatever ends its block in a group; callers see the error itself.
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]
