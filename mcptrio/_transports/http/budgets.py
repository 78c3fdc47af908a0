"""Budgets: separate counters for the resources an HTTP server hands out, and creation rates.

Each budget (TCP connections, requests in flight, long-lived streams, sessions) is counted on
its own, so spending one never refuses work that only needs another. A :class:`Budget` is a
plain counter with a limit and a count of refusals; :class:`RateLimiter` is a token bucket per
key (a client address) with a bounded number of keys; :func:`raise_file_limit` and
:func:`connection_cap` size the TCP budget from the process's file-descriptor limit.

Sans-IO: no trio here (the clock is passed in), so every rule is tested without a loop.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["Budget", "RateLimiter", "connection_cap", "file_limit", "raise_file_limit"]

log = logging.getLogger("mcptrio.http")


class Budget:
    """How many of one resource are in use, the most allowed, and how many were refused."""

    __slots__ = ("in_use", "limit", "name", "rejected")

    def __init__(self, name: str, limit: int) -> None:
        if limit < 0:
            raise ValueError(f"the {name} budget must be >= 0, got {limit}")
        self.name = name
        self.limit = limit
        self.in_use = 0
        self.rejected = 0

    @property
    def full(self) -> bool:
        """True when one more would pass the limit."""
        return self.in_use >= self.limit

    def try_acquire(self) -> bool:
        """Take one unit; False (and one more refusal counted) when the budget is spent."""
        if self.in_use >= self.limit:
            self.rejected += 1
            return False
        self.in_use += 1
        return True

    def acquire(self) -> None:
        """Take one unit whatever the limit (for work admitted by another rule)."""
        self.in_use += 1

    def release(self) -> None:
        """Give one unit back."""
        self.in_use -= 1

    def refuse(self) -> None:
        """Count one refusal decided elsewhere."""
        self.rejected += 1

    def __repr__(self) -> str:
        return f"Budget({self.name!r}, {self.in_use}/{self.limit}, rejected={self.rejected})"


class RateLimiter:
    """A token bucket per key: ``burst`` at once, then ``rate`` per second.

    At most ``max_keys`` buckets are kept; the least recently used is dropped first (a dropped
    key starts again with a full bucket, so hostile variety costs memory only up to the cap).
    """

    __slots__ = ("_buckets", "_clock", "burst", "max_keys", "rate", "rejected")

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float], max_keys: int = 100_000
    ) -> None:
        if not rate > 0 or not math.isfinite(rate):
            raise ValueError(f"rate must be a positive number, got {rate}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst}")
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, got {max_keys}")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self.rejected = 0
        self._clock = clock
        # key -> (tokens, when they were counted)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> float:
        """Take one token for ``key``: 0.0 if there was one, else seconds until there is."""
        now = self._clock()
        buckets = self._buckets
        entry = buckets.get(key)
        if entry is None:
            tokens = float(self.burst)
            if len(buckets) >= self.max_keys:
                buckets.popitem(last=False)
        else:
            tokens = min(float(self.burst), entry[0] + max(0.0, now - entry[1]) * self.rate)
            buckets.move_to_end(key)
        if tokens >= 1.0:
            buckets[key] = (tokens - 1.0, now)
            return 0.0
        buckets[key] = (tokens, now)
        self.rejected += 1
        return (1.0 - tokens) / self.rate


def file_limit() -> int | None:
    """The soft limit on open file descriptors, or None where there is none to read."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def raise_file_limit() -> int | None:
    """Raise the soft file-descriptor limit to the hard limit; return the soft limit after.

    Only what the process may do by itself (no privileges needed); a refusal leaves the limit
    as it was.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != soft:
        targets = [hard] if hard != resource.RLIM_INFINITY else []
        # An unlimited hard limit is still bounded by the kernel's per-process maximum.
        targets += [1 << 20, 1 << 16]
        for target in targets:
            if soft != resource.RLIM_INFINITY and target <= soft:
                break
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            except (ValueError, OSError):
                continue
            log.debug("raised the open-file limit from %s to %s", soft, target)
            break
    return file_limit()


def connection_cap(fd_limit: int | None, reserved: int, health: int) -> int:
    """TCP connections one process can hold with ``fd_limit`` descriptors.

    ``reserved`` descriptors (at most a quarter of the limit) stay for files, stores and
    child processes, and ``health`` for the connections kept for health probes.
    """
    if fd_limit is None:
        return 10_000
    keep = min(reserved, fd_limit // 4)
    return max(1, fd_limit - keep - health)
