from __future__ import annotations

import logging
import string
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from mcptrio._ops.config import ConfigError, config_from_mapping
from mcptrio._state.sessions import (
    MemorySessionStore,
    SessionConfig,
    SessionLimitExceeded,
    SessionLimits,
    SessionManager,
    SessionNotFound,
    SessionPrincipalMismatch,
    SessionRecord,
    SessionState,
    SessionStatistics,
    SessionStore,
    new_session_id,
)


class CountingStore(MemorySessionStore):
    """A memory store that counts writes and can be told to fail."""

    def __init__(self) -> None:
        super().__init__()
        self.puts = 0
        self.fail_puts = 0
        self.fail_expired = 0

    async def put(self, record: SessionRecord) -> None:
        if self.fail_puts:
            self.fail_puts -= 1
            raise OSError("store unavailable")
        self.puts += 1
        await super().put(record)

    async def expired(self, now: float) -> list[str]:
        if self.fail_expired:
            self.fail_expired -= 1
            raise OSError("store unavailable")
        return await super().expired(now)


def record(session_id: str = "s", **fields: Any) -> SessionRecord:
    fields.setdefault("created_at", 0.0)
    fields.setdefault("last_active_at", 0.0)
    return SessionRecord(id=session_id, **fields)


# --------------------------------------------------------------------------- records and ids


def test_session_ids_are_long_random_visible_ascii() -> None:
    ids = {new_session_id() for _ in range(200)}
    assert len(ids) == 200
    allowed = set(string.ascii_letters + string.digits + "-_")
    for session_id in ids:
        assert len(session_id) >= 43  # 256 bits in base64
        assert set(session_id) <= allowed
        assert all(0x21 <= ord(c) <= 0x7E for c in session_id)


def test_record_is_plain_frozen_data() -> None:
    rec = record(state="active", subscriptions=["a", "b", "a"])
    assert rec.state is SessionState.active
    assert rec.subscriptions == frozenset({"a", "b"})
    assert (rec.client_capabilities, rec.metadata, rec.requests) == ({}, {}, 0)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        rec.state = SessionState.closed  # type: ignore[misc]
    with pytest.raises(ValueError):
        record(state="sleeping")


def test_config_validation_and_loading() -> None:
    assert SessionLimits is SessionConfig
    config = SessionConfig(idle_timeout=60, max_age=3600)
    assert (config.idle_timeout, config.max_age) == (60.0, 3600.0)
    for bad in (
        {"idle_timeout": 0},
        {"max_age": -1},
        {"max_sessions": 0},
        {"max_sessions_per_principal": 0},
        {"sweep_interval": float("nan")},
        {"write_behind": 0},
    ):
        with pytest.raises(ConfigError):
            SessionConfig(**bad)
    loaded = config_from_mapping(
        SessionConfig, {"max_sessions": 5, "max_age": None}, source="test.toml"
    )
    assert loaded == SessionConfig(max_sessions=5)
    with pytest.raises(ConfigError, match="idle_timout"):
        config_from_mapping(SessionConfig, {"idle_timout": 5}, source="test.toml")


# --------------------------------------------------------------------------- the memory store


async def test_memory_store_basics() -> None:
    store = MemorySessionStore()
    assert isinstance(store, SessionStore)
    assert await store.get("a") is None
    await store.put(record("a", principal="alice"))
    await store.put(record("b", principal="alice"))
    await store.put(record("c"))
    assert (await store.count(), await store.count_for_principal("alice")) == (3, 2)
    await store.put(record("b", principal="bob"))
    assert await store.count_for_principal("alice") == 1
    assert await store.count_for_principal("bob") == 1
    await store.delete("a")
    await store.delete("missing")
    assert await store.count_for_principal("alice") == 0
    assert await store.get("b") == record("b", principal="bob")
    await store.close()
    await store.close()
    with pytest.raises(RuntimeError, match="closed"):
        await store.get("b")


async def test_memory_store_expired_lists_without_removing() -> None:
    store = MemorySessionStore()
    await store.put(record("late", expires_at=30.0))
    await store.put(record("soon", expires_at=10.0))
    await store.put(record("never"))
    assert await store.expired(5.0) == []
    assert await store.expired(10.0) == ["soon"]
    assert await store.expired(100.0) == ["soon", "late"]
    assert await store.expired(100.0) == ["soon", "late"]
    # A new expiry replaces the old one; a deleted record is gone from the list.
    await store.put(record("soon", expires_at=50.0))
    await store.delete("late")
    assert await store.expired(40.0) == []
    assert await store.expired(50.0) == ["soon"]


async def test_memory_store_heap_stays_small_and_correct() -> None:
    store = MemorySessionStore()
    for i in range(1000):
        await store.put(record("a", expires_at=float(i)))
        await store.put(record("b", expires_at=float(i) + 0.5))
    assert len(store._heap) < 200
    assert await store.expired(998.9) == []
    assert await store.expired(999.5) == ["a", "b"]


# --------------------------------------------------------------------------- the manager


async def test_create_and_get(autojump_clock: trio.abc.Clock) -> None:
    manager = SessionManager(MemorySessionStore(), SessionConfig(idle_timeout=60))
    created = await manager.create(
        protocol_version="2025-11-25",
        client_info={"name": "c", "version": "1"},
        client_capabilities={"roots": {}},
    )
    assert created.state is SessionState.pending
    assert created.created_at == created.last_active_at == trio.current_time()
    assert created.expires_at == created.created_at + 60
    assert await manager.get(created.id) == created
    assert await manager.store.get(created.id) == created
    assert manager.statistics() == SessionStatistics(
        active=1, created_total=1, expired_total=0, closed_total=0, rejected_total=0
    )


async def test_create_rejects_bad_fields() -> None:
    manager = SessionManager(MemorySessionStore())
    with pytest.raises(TypeError, match="unknown session field"):
        await manager.create(colour="blue")
    with pytest.raises(TypeError, match="set by the session manager"):
        await manager.create(id="mine")
    with pytest.raises(ValueError, match="cannot end"):
        await manager.create(state=SessionState.closed)


async def test_unknown_session() -> None:
    manager = SessionManager(MemorySessionStore())
    with pytest.raises(SessionNotFound, match="initialize again") as info:
        await manager.get("nope")
    assert info.value.session_id == "nope"
    with pytest.raises(SessionNotFound):
        await manager.close("nope")
    with pytest.raises(SessionNotFound):
        await manager.update("nope", log_level="debug")
    # A huge id does not flood the message.
    with pytest.raises(SessionNotFound) as info:
        await manager.get("x" * 10_000)
    assert len(str(info.value)) < 200


async def test_principal_binding() -> None:
    manager = SessionManager(MemorySessionStore())
    bound = await manager.create(principal="alice")
    assert (await manager.get(bound.id, principal="alice")).principal == "alice"
    for other in ("bob", None):
        with pytest.raises(SessionPrincipalMismatch, match="another principal"):
            await manager.get(bound.id, principal=other)
    unbound = await manager.create()
    assert await manager.get(unbound.id, principal="bob") == unbound


async def test_max_sessions() -> None:
    manager = SessionManager(MemorySessionStore(), SessionConfig(max_sessions=2))
    await manager.create()
    await manager.create()
    with pytest.raises(SessionLimitExceeded, match="already holds 2 sessions") as info:
        await manager.create()
    assert info.value.limit == 2
    assert manager.statistics().rejected_total == 1


async def test_make_room_is_asked_once_at_the_limit() -> None:
    manager = SessionManager(MemorySessionStore(), SessionConfig(max_sessions=2))
    oldest = await manager.create()
    await manager.create()
    asked: list[str] = []

    async def evict_oldest() -> bool:
        asked.append("evict")
        await manager.close(oldest.id)  # takes the manager's lock: called outside it
        return True

    await manager.create(make_room=evict_oldest)
    assert asked == ["evict"]
    assert manager.statistics().rejected_total == 0

    async def nothing_idle() -> bool:
        asked.append("none")
        return False

    with pytest.raises(SessionLimitExceeded):
        await manager.create(make_room=nothing_idle)
    assert asked == ["evict", "none"]
    assert manager.statistics().rejected_total == 1


async def test_make_room_is_not_asked_for_a_principal_at_its_own_limit() -> None:
    config = SessionConfig(max_sessions=10, max_sessions_per_principal=1)
    manager = SessionManager(MemorySessionStore(), config)
    await manager.create(principal="alice")

    async def never() -> bool:
        raise AssertionError("make_room called for a per-principal refusal")

    with pytest.raises(SessionLimitExceeded, match="this principal"):
        await manager.create(principal="alice", make_room=never)


async def test_max_sessions_per_principal() -> None:
    config = SessionConfig(max_sessions=10, max_sessions_per_principal=2)
    manager = SessionManager(MemorySessionStore(), config)
    first = await manager.create(principal="alice")
    await manager.create(principal="alice")
    with pytest.raises(SessionLimitExceeded, match="this principal") as info:
        await manager.create(principal="alice")
    assert info.value.principal == "alice"
    await manager.create(principal="bob")
    for _ in range(3):
        await manager.create()  # no principal: only the global limit applies
    await manager.close(first.id)
    await manager.create(principal="alice")


async def test_expired_sessions_make_room(autojump_clock: trio.abc.Clock) -> None:
    manager = SessionManager(MemorySessionStore(), SessionConfig(max_sessions=1, idle_timeout=10))
    seen: list[SessionRecord] = []
    manager.on_expire(seen.append)
    old = await manager.create()
    await trio.sleep(11)  # no sweeper running
    new = await manager.create()
    assert [r.id for r in seen] == [old.id]
    assert seen[0].state is SessionState.expired
    assert await manager.get(new.id) == new


async def test_recent_unwritten_activity_keeps_a_session_at_the_limit(
    autojump_clock: trio.abc.Clock,
) -> None:
    manager = SessionManager(MemorySessionStore(), SessionConfig(max_sessions=1, idle_timeout=10))
    old = await manager.create()
    await trio.sleep(9)
    manager.touch(old.id)  # not yet written: the store still says it expires at 10
    await trio.sleep(2)
    with pytest.raises(SessionLimitExceeded):
        await manager.create()
    assert (await manager.get(old.id)).last_active_at == 9


async def test_get_refuses_an_expired_session_before_the_sweep(
    autojump_clock: trio.abc.Clock,
) -> None:
    manager = SessionManager(MemorySessionStore(), SessionConfig(idle_timeout=10))
    session = await manager.create()
    await trio.sleep(9.9)
    await manager.get(session.id)
    await trio.sleep(0.1)
    with pytest.raises(SessionNotFound, match="has expired"):
        await manager.get(session.id)


async def test_use_checks_like_get_and_touches(autojump_clock: trio.abc.Clock) -> None:
    manager = SessionManager(MemorySessionStore(), SessionConfig(idle_timeout=10))
    with pytest.raises(SessionNotFound, match="initialize again"):
        await manager.use("nope")
    session = await manager.create()
    for _ in range(3):
        await trio.sleep(9)
        # Each use counts as activity, so the session outlives its first idle deadline.
        await manager.use(session.id)
    seen = await manager.get(session.id)
    assert (seen.requests, seen.last_active_at, seen.expires_at) == (3, 27, 37)
    await trio.sleep(10)
    with pytest.raises(SessionNotFound, match="has expired"):
        await manager.use(session.id)
    bound = await manager.create(principal="alice")
    await manager.use(bound.id, principal="alice")
    for other in ("bob", None):
        with pytest.raises(SessionPrincipalMismatch):
            await manager.use(bound.id, principal=other)
    await manager.close(bound.id)
    with pytest.raises(SessionNotFound):
        await manager.use(bound.id, principal="alice")


async def test_sweeper_expires_idle_sessions(autojump_clock: trio.abc.Clock) -> None:
    config = SessionConfig(idle_timeout=60, sweep_interval=5)
    manager = SessionManager(MemorySessionStore(), config)
    expired: list[tuple[str, float]] = []

    async def on_expire(rec: SessionRecord) -> None:
        await trio.lowlevel.checkpoint()
        expired.append((rec.id, trio.current_time()))

    manager.on_expire(on_expire)
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.serve)
        idle = await manager.create()
        busy = await manager.create()
        for _ in range(20):
            await trio.sleep(10)
            manager.touch(busy.id)
        nursery.cancel_scope.cancel()
    # Idle since 0: expired at the first sweep after 60 s.
    assert expired == [(idle.id, 60.0)]
    assert (await manager.get(busy.id)).requests == 20
    assert await manager.store.count() == 1
    stats = manager.statistics()
    assert (stats.active, stats.expired_total) == (1, 1)


async def test_max_age_ends_even_busy_sessions(autojump_clock: trio.abc.Clock) -> None:
    config = SessionConfig(idle_timeout=1000, max_age=100, sweep_interval=1)
    manager = SessionManager(MemorySessionStore(), config)
    expired: list[float] = []
    manager.on_expire(lambda rec: expired.append(trio.current_time()))
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.serve)
        session = await manager.create()
        assert session.expires_at == 100
        for _ in range(150):
            await trio.sleep(1)
            manager.touch(session.id)
        nursery.cancel_scope.cancel()
    assert expired == [100.0]
    with pytest.raises(SessionNotFound):
        await manager.get(session.id)


async def test_touches_are_written_in_batches(autojump_clock: trio.abc.Clock) -> None:
    store = CountingStore()
    manager = SessionManager(store, SessionConfig(write_behind=1.0, sweep_interval=1000))
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.serve)
        sessions = [await manager.create() for _ in range(3)]
        assert store.puts == 3
        await trio.sleep(5)
        for i in range(300):
            manager.touch(sessions[i % 3].id)
            await trio.sleep(0.001)
        # Written not yet, but visible through the manager already.
        stored = await store.get(sessions[0].id)
        assert stored is not None and stored.requests == 0 and stored.last_active_at == 0
        assert (await manager.get(sessions[0].id)).requests == 100
        await trio.sleep(2)
        assert store.puts == 3 + 3
        stored = await store.get(sessions[0].id)
        assert stored is not None and stored.requests == 100
        assert stored.last_active_at == pytest.approx(5.297)
        assert stored.expires_at == pytest.approx(5.297 + 1800)
        # Nothing to write: the flusher sleeps instead of writing again.
        await trio.sleep(100)
        assert store.puts == 6
        nursery.cancel_scope.cancel()


async def test_pending_touches_are_written_on_cancellation(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = CountingStore()
    manager = SessionManager(store, SessionConfig(write_behind=60))
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.serve)
        session = await manager.create()
        await trio.sleep(3)
        manager.touch(session.id)
        manager.touch(session.id)
        nursery.cancel_scope.cancel()
    stored = await store.get(session.id)
    assert stored is not None and (stored.requests, stored.last_active_at) == (2, 3)


async def test_failed_writes_are_retried(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    store = CountingStore()
    manager = SessionManager(store, SessionConfig(write_behind=1))
    session = await manager.create()
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.serve)
        manager.touch(session.id)
        store.fail_puts = 1
        await trio.sleep(1.5)
        assert "writing session activity failed" in caplog.text
        manager.touch(session.id)
        await trio.sleep(1.5)
        stored = await store.get(session.id)
        assert stored is not None and stored.requests == 2
        nursery.cancel_scope.cancel()


async def test_sweeper_survives_store_errors(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    store = CountingStore()
    manager = SessionManager(store, SessionConfig(idle_timeout=10, sweep_interval=5))
    session = await manager.create()
    store.fail_expired = 3
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.serve)
        await trio.sleep(16)
        assert await store.get(session.id) is not None
        await trio.sleep(5)
        assert await store.get(session.id) is None
        nursery.cancel_scope.cancel()
    assert caplog.text.count("sweeping expired sessions failed") == 3


async def test_expire_callbacks_errors_are_logged(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    manager = SessionManager(MemorySessionStore(), SessionConfig(idle_timeout=1))
    calls: list[str] = []

    def broken(rec: SessionRecord) -> None:
        raise RuntimeError("boom")

    def removed(rec: SessionRecord) -> None:
        calls.append("removed")

    manager.on_expire(broken)
    manager.on_expire(removed)
    manager.on_expire(lambda rec: calls.append(rec.id))
    manager.remove_on_expire(removed)
    session = await manager.create()
    await trio.sleep(2)
    with caplog.at_level(logging.ERROR, logger="mcptrio.sessions"):
        assert await manager.sweep() == 1
    assert calls == [session.id]
    assert "on_expire callback" in caplog.text


async def test_update() -> None:
    manager = SessionManager(MemorySessionStore())
    session = await manager.create()
    manager.touch(session.id)
    updated = await manager.update(
        session.id, state="active", log_level="debug", subscriptions={"file:///a"}
    )
    assert updated.state is SessionState.active
    assert (updated.log_level, updated.subscriptions, updated.requests) == (
        "debug",
        frozenset({"file:///a"}),
        1,
    )
    assert await manager.store.get(session.id) == updated
    assert await manager.get(session.id) == updated  # the touch was folded in, not counted twice
    with pytest.raises(ValueError, match="use close"):
        await manager.update(session.id, state=SessionState.expired)
    with pytest.raises(TypeError, match="created_at"):
        await manager.update(session.id, created_at=5.0)


async def test_close() -> None:
    manager = SessionManager(MemorySessionStore())
    session = await manager.create()
    manager.touch(session.id)
    closed = await manager.close(session.id)
    assert closed.state is SessionState.closed and closed.requests == 1
    with pytest.raises(SessionNotFound):
        await manager.get(session.id)
    with pytest.raises(SessionNotFound):
        await manager.close(session.id)
    assert await manager.store.count() == 0
    stats = manager.statistics()
    assert (stats.active, stats.closed_total) == (0, 1)
    assert await manager.flush() == 0  # the touch went with the session


async def test_ended_records_in_the_store_read_as_not_found() -> None:
    store = MemorySessionStore()
    manager = SessionManager(store)
    for state in (SessionState.expired, SessionState.closed):
        await store.put(record(state.value, state=state))
        with pytest.raises(SessionNotFound):
            await manager.get(state.value)


async def test_serve_runs_once() -> None:
    manager = SessionManager(MemorySessionStore())
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.serve)
        with pytest.raises(RuntimeError, match="already running"):
            await manager.serve()
        nursery.cancel_scope.cancel()
    # Once stopped it can run again.
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.serve)
        nursery.cancel_scope.cancel()


def count_tasks() -> int:
    def walk(task: trio.lowlevel.Task) -> int:
        return 1 + sum(walk(c) for n in task.child_nurseries for c in n.child_tasks)

    return walk(trio.lowlevel.current_root_task())  # type: ignore[arg-type]


async def test_an_idle_session_costs_no_task(autojump_clock: trio.abc.Clock) -> None:
    manager = SessionManager(MemorySessionStore())
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.serve)
        before = count_tasks()
        sessions = [await manager.create() for _ in range(100)]
        for session in sessions:
            manager.touch(session.id)
        await trio.sleep(5)
        assert count_tasks() == before
        nursery.cancel_scope.cancel()
