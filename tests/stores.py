"""Store backends for tests: one fixture parametrized over memory, SQLite and Redis.

``backend`` is the backend's name; ``stores`` opens (and reopens) a :class:`StoreSet` of
that backend at one location per test: a file under ``tmp_path`` for SQLite, a unique key
prefix for Redis (its keys are deleted afterwards; nothing else is touched).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import coredis
import pytest

from mcptrio import (
    MemoryEventStore,
    MemorySessionStore,
    MemoryTaskStore,
    RedisEventStore,
    RedisSessionStore,
    RedisTaskStore,
    SqliteEventStore,
    SqliteSessionStore,
    SqliteTaskStore,
    StoreSet,
)
from mcptrio._state.sqlite import open_sqlite

REDIS_URL = "redis://127.0.0.1:6379/0"
BACKENDS = ("memory", "sqlite", "redis")
DURABLE = ("sqlite", "redis")


class FakeClock:
    """Epoch seconds that move only when a test says so (starting at the real time, so Redis
    key expiry, which follows the wall clock, never fires during a test)."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Backend:
    """Opens stores of one backend at one location; ``open()`` again reopens the same data."""

    def __init__(self, kind: str, path: Path, prefix: str) -> None:
        self.kind = kind
        self.path = path
        self.prefix = prefix
        self.clock = FakeClock()

    @property
    def url(self) -> str:
        if self.kind == "memory":
            return "memory://"
        if self.kind == "sqlite":
            return f"sqlite://{self.path}"
        return f"{REDIS_URL}?prefix={self.prefix}"

    @asynccontextmanager
    async def open(self, **limits: Any) -> AsyncIterator[StoreSet]:
        """The stores, with event limits (``max_events_per_stream``, ``max_age``,
        ``max_streams``, ``max_bytes_per_stream``, ``max_bytes``) and the fake clock."""
        limits.setdefault("clock", self.clock)
        if self.kind == "memory":
            yield StoreSet(
                kind="memory",
                url=self.url,
                sessions=MemorySessionStore(),
                events=MemoryEventStore(**limits),
                tasks=MemoryTaskStore(),
                clock=None,
            )
        elif self.kind == "sqlite":
            async with open_sqlite(str(self.path)) as worker:
                yield StoreSet(
                    kind="sqlite",
                    url=self.url,
                    sessions=SqliteSessionStore(worker),
                    events=SqliteEventStore(worker, **limits),
                    tasks=SqliteTaskStore(worker),
                    clock=self.clock,
                )
        else:
            async with coredis.Redis.from_url(REDIS_URL) as client:
                yield StoreSet(
                    kind="redis",
                    url=self.url,
                    sessions=RedisSessionStore(client, self.prefix),
                    events=RedisEventStore(client, self.prefix, **limits),
                    tasks=RedisTaskStore(client, self.prefix),
                    clock=self.clock,
                )


async def delete_redis_keys(prefix: str) -> None:
    """Delete the keys under ``prefix`` (only those)."""
    async with coredis.Redis.from_url(REDIS_URL) as client:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(keys)


def unique_prefix() -> str:
    return f"mcptrio-test:{secrets.token_hex(6)}:"


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    """Each backend in turn."""
    name: str = request.param
    return name


@pytest.fixture
async def backend(backend_name: str, tmp_path: Path) -> AsyncIterator[Backend]:
    """A :class:`Backend` of each kind in turn, cleaned up afterwards."""
    prefix = unique_prefix()
    try:
        yield Backend(backend_name, tmp_path / "stores.db", prefix)
    finally:
        if backend_name == "redis":
            await delete_redis_keys(prefix)


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A unique Redis key prefix whose keys are deleted after the test."""
    prefix = unique_prefix()
    try:
        yield prefix
    finally:
        await delete_redis_keys(prefix)
