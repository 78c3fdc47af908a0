"""Sessions: plain records in a pluggable store, and a manager that creates and expires them.

An idle session is data, not a task: a :class:`SessionRecord` in a :class:`SessionStore`.
:class:`SessionManager` enforces the limits, answers lookups (unknown, expired and closed ids
all read as "not found", the HTTP 404 that makes a client initialize again), batches activity
updates so a busy session costs no store write per message, and runs the sweeper that expires
idle and too-old sessions.

Records and stores hold only plain data and import no trio, so SQLite and Redis stores can
sit behind the same protocol; the manager runs tasks and uses trio.
"""

from __future__ import annotations

import enum
import heapq
import inspect
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final, Protocol, runtime_checkable

import attrs
import trio

from .._ops.config import _ConfigBase, _float_check, _int_at_least, _to_float

__all__ = [
    "ExpireCallback",
    "MemorySessionStore",
    "SessionConfig",
    "SessionError",
    "SessionLimitExceeded",
    "SessionLimits",
    "SessionManager",
    "SessionNotFound",
    "SessionPrincipalMismatch",
    "SessionRecord",
    "SessionState",
    "SessionStatistics",
    "SessionStore",
    "new_session_id",
]

log = logging.getLogger("mcptrio.sessions")


class SessionState(enum.Enum):
    """Where a session is in its life: ``pending -> active -> suspended | expired | closed``."""

    pending = "pending"
    """Created by ``initialize``; the client has not yet sent ``notifications/initialized``."""
    active = "active"
    """Initialized and in use."""
    suspended = "suspended"
    """Kept, but with no live streams or work; it wakes on the next request."""
    expired = "expired"
    """Ended by the idle timeout or the maximum age."""
    closed = "closed"
    """Ended on purpose (DELETE, or the server closing it)."""


_ENDED: Final = frozenset({SessionState.expired, SessionState.closed})


def new_session_id() -> str:
    """A fresh session id: 256 random bits as URL-safe text (visible ASCII only)."""
    return secrets.token_urlsafe(32)


@attrs.frozen(kw_only=True)
class SessionRecord:
    """Everything known about one session, as plain data a store can keep."""

    id: str
    """The ``Mcp-Session-Id``."""

    state: SessionState = attrs.field(default=SessionState.pending, converter=SessionState)
    """Where the session is in its life (a state's value converts, for stores)."""

    protocol_version: str | None = None
    """The negotiated protocol revision."""

    client_info: dict[str, Any] | None = None
    """``clientInfo`` from ``initialize``, as sent."""

    client_capabilities: dict[str, Any] = attrs.field(factory=dict)
    """``capabilities`` from ``initialize``, as sent."""

    principal: str | None = None
    """Who authenticated when the session was created; only they may use it."""

    created_at: float
    """When the session was created (the manager's clock)."""

    last_active_at: float
    """When the session last handled a request, as far as the store knows."""

    expires_at: float | None = None
    """When it expires unless used again: idle deadline capped by the maximum age; None: never."""

    log_level: str | None = None
    """The level chosen with ``logging/setLevel``."""

    subscriptions: frozenset[str] = attrs.field(default=frozenset(), converter=frozenset)
    """Resource URIs subscribed to."""

    metadata: Mapping[str, Any] = attrs.field(factory=dict)
    """Application data; keep it JSON-compatible so every store can hold it."""

    requests: int = 0
    """Requests handled (one per :meth:`SessionManager.touch`)."""


# --------------------------------------------------------------------------- stores


@runtime_checkable
class SessionStore(Protocol):
    """Where session records live: memory here; SQLite and Redis behind the same methods."""

    async def get(self, session_id: str) -> SessionRecord | None:
        """The record, or None if there is none."""
        ...

    async def put(self, record: SessionRecord) -> None:
        """Insert or replace the record with ``record.id``."""
        ...

    async def delete(self, session_id: str) -> None:
        """Remove the record, if any."""
        ...

    async def count(self) -> int:
        """How many records the store holds."""
        ...

    async def count_for_principal(self, principal: str) -> int:
        """How many records belong to ``principal``."""
        ...

    async def expired(self, now: float) -> list[str]:
        """Ids of records whose ``expires_at`` is at or before ``now`` (they are not removed)."""
        ...

    async def close(self) -> None:
        """Release the store's resources; idempotent."""
        ...


class MemorySessionStore:
    """A :class:`SessionStore` in a dict, with a heap of expiry times (lazily cleaned)."""

    def __init__(self) -> None:
        self._records: dict[str, SessionRecord] = {}
        self._principals: dict[str, int] = {}
        # (expires_at, id); an entry is stale when the record is gone or expires at another time.
        self._heap: list[tuple[float, str]] = []
        self._closed = False

    async def get(self, session_id: str) -> SessionRecord | None:
        """The record, or None if there is none."""
        self._check_open()
        return self._records.get(session_id)

    async def put(self, record: SessionRecord) -> None:
        """Insert or replace the record with ``record.id``."""
        self._check_open()
        old = self._records.get(record.id)
        self._records[record.id] = record
        if old is None or old.principal != record.principal:
            if old is not None:
                self._count_principal(old.principal, -1)
            self._count_principal(record.principal, +1)
        if record.expires_at is not None and (old is None or old.expires_at != record.expires_at):
            heapq.heappush(self._heap, (record.expires_at, record.id))
            if len(self._heap) > 2 * len(self._records) + 64:
                self._rebuild_heap()

    async def delete(self, session_id: str) -> None:
        """Remove the record, if any."""
        self._check_open()
        old = self._records.pop(session_id, None)
        if old is not None:
            self._count_principal(old.principal, -1)

    async def count(self) -> int:
        """How many records the store holds."""
        self._check_open()
        return len(self._records)

    async def count_for_principal(self, principal: str) -> int:
        """How many records belong to ``principal``."""
        self._check_open()
        return self._principals.get(principal, 0)

    async def expired(self, now: float) -> list[str]:
        """Ids of records whose ``expires_at`` is at or before ``now``, soonest first."""
        self._check_open()
        heap = self._heap
        due: list[tuple[float, str]] = []
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            record = self._records.get(entry[1])
            if record is not None and record.expires_at == entry[0]:
                due.append(entry)
        # Listing does not remove: the caller decides, and may find a session was used again.
        for entry in due:
            heapq.heappush(heap, entry)
        return list(dict.fromkeys(session_id for _, session_id in due))

    async def close(self) -> None:
        """Refuse further use; idempotent."""
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the session store is closed")

    def _count_principal(self, principal: str | None, delta: int) -> None:
        if principal is None:
            return
        n = self._principals.get(principal, 0) + delta
        if n > 0:
            self._principals[principal] = n
        else:
            self._principals.pop(principal, None)

    def _rebuild_heap(self) -> None:
        self._heap = [
            (r.expires_at, r.id) for r in self._records.values() if r.expires_at is not None
        ]
        heapq.heapify(self._heap)


# --------------------------------------------------------------------------- configuration


@attrs.frozen(kw_only=True)
class SessionConfig(_ConfigBase):
    """Session limits and timing, validated when created."""

    idle_timeout: float = attrs.field(
        default=1800.0, converter=_to_float, validator=_float_check(above=0.0)
    )
    """Seconds without a request after which a session expires."""

    max_age: float | None = attrs.field(
        default=None,
        converter=_to_float,
        validator=attrs.validators.optional(_float_check(above=0.0)),
    )
    """Seconds after creation at which a session expires however busy it is; None: no limit."""

    max_sessions: int = attrs.field(default=10_000, validator=_int_at_least(1))
    """Sessions held at once; creating one more raises :class:`SessionLimitExceeded`."""

    max_sessions_per_principal: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(_int_at_least(1))
    )
    """Sessions one principal may hold at once; None: only ``max_sessions`` applies."""

    sweep_interval: float = attrs.field(
        default=30.0, converter=_to_float, validator=_float_check(above=0.0)
    )
    """Seconds between sweeps for expired sessions."""

    write_behind: float = attrs.field(
        default=1.0, converter=_to_float, validator=_float_check(above=0.0)
    )
    """Seconds activity updates may wait to be written in one batch (lost on a crash)."""

    flush_timeout: float = attrs.field(
        default=5.0, converter=_to_float, validator=_float_check(above=0.0)
    )
    """Seconds the final write of pending activity may take at shutdown."""


SessionLimits = SessionConfig
"""Another name for :class:`SessionConfig`."""


# --------------------------------------------------------------------------- errors


def _short(session_id: str) -> str:
    # Ids come from clients; a huge or hostile one should not flood a log line.
    return repr(session_id if len(session_id) <= 64 else session_id[:61] + "...")


class SessionError(Exception):
    """Base of the session errors."""


class SessionNotFound(SessionError, LookupError):
    """No usable session has this id: never created, expired, or closed (HTTP 404)."""

    def __init__(self, session_id: str, detail: str = "does not exist or has ended") -> None:
        super().__init__(
            f"session {_short(session_id)} {detail}; start a new session (initialize again)"
        )
        self.session_id = session_id


class SessionPrincipalMismatch(SessionError):
    """The session belongs to another principal than the one making the request."""

    def __init__(self, session_id: str) -> None:
        super().__init__(
            f"session {_short(session_id)} was created by another principal; use the"
            " credentials it was created with, or start a new session"
        )
        self.session_id = session_id


class SessionLimitExceeded(SessionError):
    """Creating a session would pass ``max_sessions`` or ``max_sessions_per_principal``."""

    def __init__(self, message: str, *, limit: int, principal: str | None = None) -> None:
        super().__init__(message)
        self.limit = limit
        self.principal = principal


@attrs.frozen(kw_only=True)
class SessionStatistics:
    """Counters of a :class:`SessionManager`."""

    active: int
    """Sessions held (the store's count at the last sweep, adjusted since)."""

    created_total: int
    """Sessions created."""

    expired_total: int
    """Sessions ended by the idle timeout or maximum age."""

    closed_total: int
    """Sessions closed on purpose."""

    rejected_total: int
    """Creations refused by a limit."""


# --------------------------------------------------------------------------- the manager

ExpireCallback = Callable[[SessionRecord], Awaitable[None] | None]
"""Called with the record (state ``expired``) of each session the sweeper ends."""

_MANAGED: Final = frozenset({"id", "created_at", "last_active_at", "expires_at", "requests"})
_FIELDS: Final = frozenset(f.name for f in attrs.fields(SessionRecord))


def _check_fields(what: str, fields: Mapping[str, Any]) -> None:
    unknown = sorted(set(fields) - _FIELDS)
    if unknown:
        raise TypeError(
            f"{what}: unknown session field(s) {', '.join(unknown)};"
            f" known: {', '.join(sorted(_FIELDS - _MANAGED))}"
        )
    managed = sorted(set(fields) & _MANAGED)
    if managed:
        raise TypeError(f"{what}: {', '.join(managed)} are set by the session manager")
    if fields.get("state") is not None and SessionState(fields["state"]) in _ENDED:
        raise ValueError(f"{what} cannot end a session; use close()")


class SessionManager:
    """Creates, finds, updates, expires and closes sessions kept in a :class:`SessionStore`.

    Run :meth:`serve` (``await nursery.start(manager.serve)``) for the sweeper and the
    write-behind flusher. Timestamps come from ``clock``; with a store that outlives the
    process, pass a wall clock such as ``time.time``.
    """

    def __init__(
        self,
        store: SessionStore,
        config: SessionConfig | None = None,
        *,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self._store = store
        self._config = SessionConfig() if config is None else config
        self._clock = clock
        self._lock = trio.Lock()
        # Pending activity per session id: (latest time, requests since the last flush).
        self._touches: dict[str, tuple[float, int]] = {}
        self._touched = trio.Event()
        self._callbacks: list[ExpireCallback] = []
        self._serving = False
        self._active = 0
        self._created = 0
        self._expired = 0
        self._closed = 0
        self._rejected = 0

    @property
    def store(self) -> SessionStore:
        """The store records live in."""
        return self._store

    @property
    def config(self) -> SessionConfig:
        """Limits and timing."""
        return self._config

    # ----------------------------------------------------------------------- callbacks

    def on_expire(self, callback: ExpireCallback) -> ExpireCallback:
        """Call ``callback(record)`` for each session the sweeper expires; usable as a decorator.

        Callbacks run after the session left the store, so the HTTP layer can tear down live
        streams; an exception in one is logged and does not stop the others.
        """
        self._callbacks.append(callback)
        return callback

    def remove_on_expire(self, callback: ExpireCallback) -> None:
        """Stop calling a callback registered with :meth:`on_expire`."""
        self._callbacks.remove(callback)

    # ----------------------------------------------------------------------- operations

    async def create(
        self,
        *,
        principal: str | None = None,
        make_room: Callable[[], Awaitable[bool]] | None = None,
        **fields: Any,
    ) -> SessionRecord:
        """Create and store a session with a fresh id; ``fields`` are :class:`SessionRecord` fields.

        Raises :class:`SessionLimitExceeded` when the server or the principal is at its limit,
        after first expiring sessions that are already past their time. At ``max_sessions``,
        ``make_room`` (when given) is awaited once, outside the manager's lock, to end a session
        of the caller's choosing; it returns whether it did, and if so creation is tried again.
        """
        _check_fields("create()", fields)
        refusal: SessionLimitExceeded | None = None
        for attempt in range(2):
            expired: list[SessionRecord] = []
            record: SessionRecord | None = None
            async with self._lock:
                now = self._clock()
                refusal = await self._refusal(principal)
                if refusal is not None:
                    # Sessions past their time but not yet swept must not block new ones.
                    expired = await self._expire_locked(now)
                    refusal = await self._refusal(principal)
                if refusal is None:
                    record = SessionRecord(
                        id=new_session_id(),
                        principal=principal,
                        created_at=now,
                        last_active_at=now,
                        expires_at=self._expiry(now, now),
                        **fields,
                    )
                    await self._store.put(record)
                    self._created += 1
                    self._active += 1
            await self._notify(expired)
            if record is not None:
                return record
            assert refusal is not None
            if (
                attempt > 0
                or make_room is None
                or refusal.principal is not None  # a principal makes room by closing its own
                or not await make_room()
            ):
                break
        self._rejected += 1
        assert refusal is not None
        raise refusal

    async def get(self, session_id: str, *, principal: str | None = None) -> SessionRecord:
        """The live session with this id, including activity not yet written to the store.

        Raises :class:`SessionNotFound` for unknown, expired and closed ids, and
        :class:`SessionPrincipalMismatch` when the session is bound to another principal.
        """
        record = await self._store.get(session_id)
        if record is None or record.state in _ENDED:
            raise SessionNotFound(session_id)
        record = self._with_pending(record)
        if record.expires_at is not None and record.expires_at <= self._clock():
            raise SessionNotFound(session_id, "has expired")
        if record.principal is not None and principal != record.principal:
            raise SessionPrincipalMismatch(session_id)
        return record

    async def use(self, session_id: str, *, principal: str | None = None) -> None:
        """Check the session as :meth:`get` does, then :meth:`touch` it.

        The same errors as :meth:`get`, for the price of a lookup: no record is built, which
        matters on the path every request of a session takes.
        """
        record = await self._store.get(session_id)
        if record is None or record.state in _ENDED:
            raise SessionNotFound(session_id)
        now = self._clock()
        expires_at = record.expires_at
        pending = self._touches.get(session_id)
        if pending is not None:
            expires_at = self._expiry(record.created_at, max(record.last_active_at, pending[0]))
        if expires_at is not None and expires_at <= now:
            raise SessionNotFound(session_id, "has expired")
        if record.principal is not None and principal != record.principal:
            raise SessionPrincipalMismatch(session_id)
        self._touches[session_id] = (now, 1 if pending is None else pending[1] + 1)
        self._touched.set()

    async def update(self, session_id: str, **changes: Any) -> SessionRecord:
        """Change fields of a live session (``state``, ``log_level``, ``metadata``, ...).

        Pending activity is written along. Ending a session goes through :meth:`close`.
        Raises :class:`SessionNotFound` when the session is gone.
        """
        _check_fields("update()", changes)
        async with self._lock:
            record = await self._store.get(session_id)
            if record is None or record.state in _ENDED:
                raise SessionNotFound(session_id)
            pending = self._touches.pop(session_id, None)
            if pending is not None:
                record = self._apply(record, *pending)
            record = attrs.evolve(record, **changes)
            await self._store.put(record)
        return record

    def touch(self, session_id: str) -> None:
        """Note one request on the session now; written to the store in the next batch."""
        previous = self._touches.get(session_id)
        count = 1 if previous is None else previous[1] + 1
        self._touches[session_id] = (self._clock(), count)
        self._touched.set()

    async def close(self, session_id: str) -> SessionRecord:
        """End the session and remove it from the store; return its last record (``closed``).

        Raises :class:`SessionNotFound` when there is no such live session.
        """
        async with self._lock:
            record = await self._store.get(session_id)
            if record is None or record.state in _ENDED:
                raise SessionNotFound(session_id)
            pending = self._touches.pop(session_id, None)
            if pending is not None:
                record = self._apply(record, *pending)
            await self._store.delete(session_id)
            self._closed += 1
            self._active = max(0, self._active - 1)
        return attrs.evolve(record, state=SessionState.closed)

    async def flush(self) -> int:
        """Write pending activity to the store now; return how many sessions were written."""
        async with self._lock:
            return await self._flush_locked()

    async def sweep(self) -> int:
        """Expire sessions past their time now (calling :meth:`on_expire` callbacks).

        Returns how many expired. :meth:`serve` calls this every ``sweep_interval``.
        """
        async with self._lock:
            await self._flush_locked()
            expired = await self._expire_locked(self._clock())
            self._active = await self._store.count()
        await self._notify(expired)
        return len(expired)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the sweeper and the write-behind flusher until cancelled.

        On the way out, pending activity is written under a shielded scope bounded by
        ``flush_timeout``.
        """
        if self._serving:
            raise RuntimeError("SessionManager.serve() is already running")
        self._serving = True
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._run_sweeper)
                nursery.start_soon(self._run_flusher)
                task_status.started()
        finally:
            self._serving = False
            with trio.move_on_after(self._config.flush_timeout, shield=True) as scope:
                try:
                    await self.flush()
                except Exception:
                    log.exception("writing pending session activity at shutdown failed")
            if scope.cancelled_caught:
                log.warning(
                    "pending activity of %d session(s) was not written within %.1f s",
                    len(self._touches),
                    self._config.flush_timeout,
                )

    def statistics(self) -> SessionStatistics:
        """Current counters."""
        return SessionStatistics(
            active=self._active,
            created_total=self._created,
            expired_total=self._expired,
            closed_total=self._closed,
            rejected_total=self._rejected,
        )

    # ----------------------------------------------------------------------- internals

    def _expiry(self, created_at: float, last_active_at: float) -> float:
        expires = last_active_at + self._config.idle_timeout
        if self._config.max_age is not None:
            expires = min(expires, created_at + self._config.max_age)
        return expires

    def _apply(self, record: SessionRecord, when: float, requests: int) -> SessionRecord:
        last = max(record.last_active_at, when)
        return attrs.evolve(
            record,
            last_active_at=last,
            expires_at=self._expiry(record.created_at, last),
            requests=record.requests + requests,
        )

    def _with_pending(self, record: SessionRecord) -> SessionRecord:
        pending = self._touches.get(record.id)
        return record if pending is None else self._apply(record, *pending)

    async def _refusal(self, principal: str | None) -> SessionLimitExceeded | None:
        limit = self._config.max_sessions
        if await self._store.count() >= limit:
            return SessionLimitExceeded(
                f"the server already holds {limit} sessions, its limit (max_sessions);"
                " close unused sessions or raise the limit",
                limit=limit,
            )
        per_principal = self._config.max_sessions_per_principal
        if (
            principal is not None
            and per_principal is not None
            and await self._store.count_for_principal(principal) >= per_principal
        ):
            return SessionLimitExceeded(
                f"this principal already holds {per_principal} sessions, its limit"
                " (max_sessions_per_principal); close one before opening another",
                limit=per_principal,
                principal=principal,
            )
        return None

    async def _flush_locked(self) -> int:
        batch = list(self._touches.items())
        self._touches = {}
        # Pending touches always come with the event set (touch and _restore set it). A
        # trio.Event cannot be cleared, so a new one replaces it; a flusher waiting on the
        # old one has already been woken by it.
        if self._touched.is_set():
            self._touched = trio.Event()
        done = 0
        try:
            for session_id, (when, requests) in batch:
                record = await self._store.get(session_id)
                if record is not None and record.state not in _ENDED:
                    await self._store.put(self._apply(record, when, requests))
                done += 1
        except BaseException:
            # Keep what was not written (cancelled, or the store failed) for the next flush.
            self._restore(batch[done:])
            raise
        return done

    def _restore(self, items: Iterable[tuple[str, tuple[float, int]]]) -> None:
        for session_id, (when, requests) in items:
            newer = self._touches.get(session_id)
            if newer is None:
                self._touches[session_id] = (when, requests)
            else:
                self._touches[session_id] = (max(when, newer[0]), requests + newer[1])
        if self._touches:
            self._touched.set()

    async def _expire_locked(self, now: float) -> list[SessionRecord]:
        expired: list[SessionRecord] = []
        for session_id in await self._store.expired(now):
            record = await self._store.get(session_id)
            if record is None:
                continue
            # Activity noted since the last flush may have kept the session alive.
            current = self._with_pending(record)
            if current.expires_at is None or current.expires_at > now:
                continue
            await self._store.delete(session_id)
            self._touches.pop(session_id, None)
            self._expired += 1
            self._active = max(0, self._active - 1)
            expired.append(attrs.evolve(current, state=SessionState.expired))
        return expired

    async def _notify(self, records: list[SessionRecord]) -> None:
        for record in records:
            for callback in list(self._callbacks):
                try:
                    result = callback(record)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception("on_expire callback %r failed", callback)

    async def _run_sweeper(self) -> None:
        while True:
            await trio.sleep(self._config.sweep_interval)
            try:
                await self.sweep()
            except Exception:
                log.exception("sweeping expired sessions failed; retrying next interval")

    async def _run_flusher(self) -> None:
        while True:
            await self._touched.wait()
            await trio.sleep(self._config.write_behind)
            try:
                await self.flush()
            except Exception:
                log.exception("writing session activity failed; retrying")
