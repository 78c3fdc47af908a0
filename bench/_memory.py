"""Memory per session and per open SSE stream, read from the server's resident set size."""

from __future__ import annotations

import http.client
import time

from bench._http import initialize, open_sse_stream, probe
from bench._procs import BenchError, rss_kib
from bench._report import Sample

_SETTLE = 0.3  # seconds for the server to finish work that follows a response


def measure(url: str, pid: int, count: int) -> tuple[Sample, Sample]:
    """Open ``count`` sessions, then one GET SSE stream on each; KiB per session and per stream.

    The server should be fresh: freed memory is often kept by the allocator, so a second
    measurement on the same process would read low.
    """
    # Warm up first so lazy imports and first-use caches are not charged to the sessions.
    warm = initialize(url)
    for _ in range(10):
        if (reason := probe(url, "legacy", warm)) is not None:
            raise BenchError(f"tools/call on {url} {reason}")
    open_sse_stream(url, warm).close()
    time.sleep(_SETTLE)
    before = rss_kib(pid)
    sessions = [initialize(url) for _ in range(count)]
    # Each session answers a call, so state that appears on first use is counted too.
    for session in sessions:
        if (reason := probe(url, "legacy", session)) is not None:
            raise BenchError(f"tools/call on {url} {reason}")
    time.sleep(_SETTLE)
    with_sessions = rss_kib(pid)
    streams: list[http.client.HTTPConnection] = []
    try:
        for session in sessions:
            streams.append(open_sse_stream(url, session))
        time.sleep(_SETTLE)
        with_streams = rss_kib(pid)
    finally:
        for stream in streams:
            stream.close()
    per_session = Sample(
        value=(with_sessions - before) / count, checked=2 * count, extra={"count": count}
    )
    per_stream = Sample(
        value=(with_streams - with_sessions) / count, checked=count, extra={"count": count}
    )
    return per_session, per_stream
