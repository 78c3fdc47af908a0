"""Event stores: the bounded log of sent SSE events that lets a client resume with Last-Event-ID.

An event id names its stream (``"<stream_id>:<seq>"``), so a resumption replays only the stream
the client was reading. A store never guesses: when an id is unknown, malformed or older than
what it still holds, :meth:`EventStore.replay_after` raises :class:`EventEvicted` instead of
replaying from somewhere else.

The interface is async so stores backed by SQLite or Redis fit behind it; the memory store
here does no I/O and imports no trio.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, Protocol, TypeAlias, runtime_checkable

import attrs
import orjson

__all__ = [
    "EventEvicted",
    "EventStore",
    "EventStoreStatistics",
    "MemoryEventStore",
    "ReplayedEvent",
    "check_event_limits",
    "event_size",
    "parse_event_id",
]

ReplayedEvent: TypeAlias = tuple[str, dict[str, Any] | None]
"""``(event_id, message)``; a ``None`` message is a priming event (an id without a payload)."""


class EventEvicted(LookupError):
    """The event id cannot be resumed from: unknown, malformed, or older than the store keeps."""

    def __init__(self, event_id: str, stream_id: str | None, reason: str) -> None:
        where = f" on stream {stream_id!r}" if stream_id else ""
        super().__init__(
            f"cannot resume after event {event_id!r}{where}: {reason}; open a new stream instead"
        )
        self.event_id = event_id
        self.stream_id = stream_id
        self.reason = reason


@attrs.frozen(kw_only=True)
class EventStoreStatistics:
    """Counters of an event store."""

    streams: int
    """Streams currently held."""

    events: int
    """Events currently held, over all streams."""

    appended_total: int
    """Events ever appended."""

    evicted_total: int
    """Events dropped for age, for a count or byte budget, or with their stream."""

    replays_total: int
    """Successful :meth:`EventStore.replay_after` calls."""

    misses_total: int
    """:meth:`EventStore.replay_after` calls that raised :class:`EventEvicted`."""


@runtime_checkable
class EventStore(Protocol):
    """Where resumable SSE streams keep the events they sent."""

    async def append(self, stream_id: str, message: dict[str, Any] | None) -> str:
        """Record one event on ``stream_id`` (``None``: a priming event); return its event id.

        The store keeps ``message`` as given: do not mutate it afterwards.
        """
        ...

    async def replay_after(self, last_event_id: str) -> tuple[str, list[ReplayedEvent]]:
        """The stream of ``last_event_id`` and its events strictly after it, oldest first.

        Replaying after the newest event gives an empty list. Raises :class:`EventEvicted`
        when the id is unknown, malformed, or events after it were already dropped.
        """
        ...

    async def close_stream(self, stream_id: str) -> None:
        """Mark the stream finished; it stays resumable until it ages out.

        Nothing more is expected on it, but a late append is still recorded.
        """
        ...

    def statistics(self) -> EventStoreStatistics:
        """Current counters."""
        ...


def event_size(message: dict[str, Any] | None) -> int:
    """The bytes an event's message counts for in byte budgets: its compact JSON length."""
    return 0 if message is None else len(orjson.dumps(message))


def check_event_limits(
    owner: str,
    *,
    max_events_per_stream: int,
    max_age: float,
    max_streams: int,
    max_bytes_per_stream: int | None,
    max_bytes: int | None,
) -> None:
    """Raise ``ValueError`` naming ``owner`` unless each limit is > 0 (byte limits: or None)."""
    for name, value, types, optional in (
        ("max_events_per_stream", max_events_per_stream, int, False),
        ("max_age", max_age, int | float, False),
        ("max_streams", max_streams, int, False),
        ("max_bytes_per_stream", max_bytes_per_stream, int, True),
        ("max_bytes", max_bytes, int, True),
    ):
        if optional and value is None:
            continue
        # Written as "not > 0" so that NaN is refused too.
        if isinstance(value, bool) or not isinstance(value, types) or not value > 0:
            raise ValueError(f"{owner} {name} must be a number > 0, got {value!r}")


def parse_event_id(event_id: str) -> tuple[str, int] | None:
    """Split ``"<stream_id>:<seq>"``; None when it is not of that shape."""
    stream_id, sep, seq_text = event_id.rpartition(":")
    # The length bound keeps a hostile Last-Event-ID from reaching int()'s digit limit.
    if not sep or not stream_id or len(seq_text) > 20:
        return None
    if not seq_text.isascii() or not seq_text.isdigit():
        return None
    return stream_id, int(seq_text)


class _Stream:
    __slots__ = ("bytes", "events", "first_seq", "last_used", "next_seq")

    def __init__(self, first_seq: int, now: float) -> None:
        self.first_seq = first_seq
        self.next_seq = first_seq
        # (seq, appended at, message, size in bytes)
        self.events: deque[tuple[int, float, dict[str, Any] | None, int]] = deque()
        self.last_used = now
        self.bytes = 0


class MemoryEventStore:
    """An in-process :class:`EventStore` bounded by events, bytes, age and stream count.

    Each stream keeps at most ``max_events_per_stream`` events and ``max_bytes_per_stream``
    bytes of messages (their compact JSON length), none older than ``max_age`` seconds; a
    stream unused (no append, replay or close) for ``max_age`` is dropped whole, and beyond
    ``max_streams`` the least recently used stream goes. Over ``max_bytes`` in all, the oldest
    events of the least recently used streams go first. An event larger than its stream's byte
    budget gets an id but is not kept, so resuming before it fails rather than skipping it.
    Appends are O(1) amortized.

    Sequence numbers count up per stream from a starting point above every number this store
    has issued before, so a stream id used again after its stream was dropped never repeats an
    old event id: an old id then fails to resume rather than replaying the wrong events.
    """

    def __init__(
        self,
        max_events_per_stream: int = 1000,
        max_age: float = 300.0,
        max_streams: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_bytes_per_stream: int | None = None,
        max_bytes: int | None = None,
    ) -> None:
        check_event_limits(
            "MemoryEventStore",
            max_events_per_stream=max_events_per_stream,
            max_age=max_age,
            max_streams=max_streams,
            max_bytes_per_stream=max_bytes_per_stream,
            max_bytes=max_bytes,
        )
        self._max_events = max_events_per_stream
        self._max_age = float(max_age)
        self._max_streams = max_streams
        self._max_stream_bytes = max_bytes_per_stream
        self._max_bytes = max_bytes
        self._bytes = 0
        self._clock = clock
        # Least recently used first.
        self._streams: OrderedDict[str, _Stream] = OrderedDict()
        self._issued = 0
        self._events = 0
        self._evicted = 0
        self._replays = 0
        self._misses = 0

    async def append(self, stream_id: str, message: dict[str, Any] | None) -> str:
        """Record one event on ``stream_id``; return its id ``"<stream_id>:<seq>"``."""
        if not stream_id or ":" in stream_id:
            raise ValueError(f"stream id {stream_id!r} must be non-empty and contain no ':'")
        size = event_size(message)
        now = self._clock()
        stream = self._streams.get(stream_id)
        if stream is None:
            stream = _Stream(self._issued, now)
            self._streams[stream_id] = stream
        else:
            self._streams.move_to_end(stream_id)
            stream.last_used = now
            self._expire_events(stream, now)
        seq = stream.next_seq
        stream.next_seq += 1
        self._issued += 1
        stream.events.append((seq, now, message, size))
        stream.bytes += size
        self._bytes += size
        self._events += 1
        limit = self._max_stream_bytes
        while len(stream.events) > self._max_events or (limit is not None and stream.bytes > limit):
            self._pop_oldest(stream)
        self._expire_streams(now)
        self._enforce_total_bytes()
        return f"{stream_id}:{seq}"

    async def replay_after(self, last_event_id: str) -> tuple[str, list[ReplayedEvent]]:
        """The stream of ``last_event_id`` and its retained events after it, oldest first."""
        parsed = parse_event_id(last_event_id)
        if parsed is None:
            self._misses += 1
            raise EventEvicted(last_event_id, None, "it is not an event id this server issued")
        stream_id, seq = parsed
        now = self._clock()
        self._expire_streams(now)
        stream = self._streams.get(stream_id)
        if stream is None:
            self._misses += 1
            raise EventEvicted(last_event_id, stream_id, "the stream is unknown or has expired")
        self._expire_events(stream, now)
        first_kept = stream.events[0][0] if stream.events else stream.next_seq
        if seq >= stream.next_seq:
            self._misses += 1
            raise EventEvicted(last_event_id, stream_id, "the stream never sent this event")
        if seq < stream.first_seq:
            self._misses += 1
            raise EventEvicted(
                last_event_id, stream_id, "it is from an earlier stream of that id, now expired"
            )
        if seq < first_kept - 1:
            self._misses += 1
            raise EventEvicted(
                last_event_id, stream_id, "events after it are too old and were dropped"
            )
        self._streams.move_to_end(stream_id)
        stream.last_used = now
        self._replays += 1
        tail = itertools.islice(stream.events, seq + 1 - first_kept, None)
        return stream_id, [(f"{stream_id}:{s}", message) for s, _, message, _ in tail]

    async def close_stream(self, stream_id: str) -> None:
        """Mark the stream finished; it stays resumable for ``max_age`` seconds."""
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        # Only its age matters from now on: it goes max_age after its last use.
        now = self._clock()
        stream.last_used = now
        self._streams.move_to_end(stream_id)
        self._expire_streams(now)

    def statistics(self) -> EventStoreStatistics:
        """Current counters."""
        return EventStoreStatistics(
            streams=len(self._streams),
            events=self._events,
            appended_total=self._issued,
            evicted_total=self._evicted,
            replays_total=self._replays,
            misses_total=self._misses,
        )

    @property
    def bytes_held(self) -> int:
        """Bytes of messages currently held, over all streams."""
        return self._bytes

    def _pop_oldest(self, stream: _Stream) -> None:
        size = stream.events.popleft()[3]
        stream.bytes -= size
        self._bytes -= size
        self._events -= 1
        self._evicted += 1

    def _expire_events(self, stream: _Stream, now: float) -> None:
        cutoff = now - self._max_age
        events = stream.events
        while events and events[0][1] < cutoff:
            self._pop_oldest(stream)

    def _enforce_total_bytes(self) -> None:
        limit = self._max_bytes
        if limit is None:
            return
        # Least recently used streams first; a stream emptied this way stays (its sequence
        # numbers must keep refusing old ids) until it ages out.
        streams = iter(self._streams.values())
        while self._bytes > limit:
            stream = next(streams)
            while stream.events and self._bytes > limit:
                self._pop_oldest(stream)

    def _expire_streams(self, now: float) -> None:
        # Streams are in least-recently-used order, so the stale ones are all at the front;
        # each stream is dropped once, which keeps this O(1) amortized per call.
        cutoff = now - self._max_age
        streams = self._streams
        while streams:
            stream = next(iter(streams.values()))
            if stream.last_used >= cutoff and len(streams) <= self._max_streams:
                break
            _, stream = streams.popitem(last=False)
            self._events -= len(stream.events)
            self._evicted += len(stream.events)
            self._bytes -= stream.bytes
