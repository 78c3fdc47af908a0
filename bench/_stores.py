"""Store backends next to the memory store: session create and lookup, event append and replay.

Each measurement opens a fresh store (a new SQLite file in a temporary directory; a new key
prefix on the Redis at 127.0.0.1:6379, whose keys are deleted afterwards) in this process and
times the store calls themselves, as the server makes them.
"""

from __future__ import annotations

import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from mcptrio import SessionRecord, StoreError, open_stores

REDIS_URL = "redis://127.0.0.1:6379/0"
BACKENDS = ("memory", "sqlite", "redis")
METRICS = ("create", "get-p50", "get-p99", "append", "replay")
"""What is measured per backend: rates (per second) and lookup latencies (µs)."""

_STREAMS = 10
_MESSAGE: dict[str, Any] = {
    "jsonrpc": "2.0",
    "method": "notifications/progress",
    "params": {"progressToken": "t", "progress": 1, "message": "x" * 150},
}


def measure(backend: str, sessions: int, events: int) -> dict[str, float]:
    """One measurement of ``backend``: creates/s, lookup p50 and p99 µs, appends/s, replayed
    events/s. Raises :class:`StoreError` when the backend cannot be opened here."""
    with tempfile.TemporaryDirectory() as tmp:
        return trio.run(_measure, backend, Path(tmp), sessions, events)


async def _measure(backend: str, tmp: Path, sessions: int, events: int) -> dict[str, float]:
    prefix = f"mcptrio-bench:{secrets.token_hex(6)}:"
    url = {
        "memory": "memory://",
        "sqlite": f"sqlite://{tmp}/bench.db",
        "redis": f"{REDIS_URL}?prefix={prefix}",
    }[backend]
    try:
        async with open_stores(url, max_events_per_stream=events) as stores:
            now = time.time()
            records = [
                SessionRecord(
                    id=secrets.token_urlsafe(32),
                    created_at=now,
                    last_active_at=now,
                    expires_at=now + 3600,
                    protocol_version="2025-11-25",
                    client_info={"name": "bench", "version": "1"},
                )
                for _ in range(sessions)
            ]
            began = time.perf_counter()
            for record in records:
                await stores.sessions.put(record)
            create = sessions / (time.perf_counter() - began)
            lookups: list[float] = []
            for record in records:
                t0 = time.perf_counter_ns()
                found = await stores.sessions.get(record.id)
                lookups.append((time.perf_counter_ns() - t0) / 1000)
                if found is None:
                    raise StoreError(f"{backend}: a session just written was not found")
            quantiles = statistics.quantiles(lookups, n=100)
            primes = [await stores.events.append(f"s{k}", None) for k in range(_STREAMS)]
            began = time.perf_counter()
            for n in range(events):
                await stores.events.append(f"s{n % _STREAMS}", _MESSAGE)
            append = events / (time.perf_counter() - began)
            began = time.perf_counter()
            replayed = 0
            for prime in primes:
                replayed += len((await stores.events.replay_after(prime))[1])
            replay = replayed / (time.perf_counter() - began)
            if replayed != events:
                raise StoreError(f"{backend}: replayed {replayed} of {events} events")
    finally:
        if backend == "redis":
            await _delete_keys(prefix)
    return {
        "create": create,
        "get-p50": quantiles[49],
        "get-p99": quantiles[98],
        "append": append,
        "replay": replay,
    }


async def _delete_keys(prefix: str) -> None:
    import coredis

    try:
        async with coredis.Redis.from_url(REDIS_URL) as client:
            keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
            if keys:
                await client.delete(keys)
    except Exception:
        pass
