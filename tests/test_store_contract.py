"""One contract for every store backend: memory, SQLite (a real file) and Redis (127.0.0.1).

The ``backend`` fixture (tests/stores.py) runs each test once per backend; what a test
asserts is what the store protocols promise, so every backend must pass unchanged.
"""

from __future__ import annotations

from typing import Any

import attrs
import orjson
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stores import DURABLE, Backend

from mcptrio import EventEvicted, SessionRecord, StoreSet, TaskRecord
from mcptrio._state.sessions import SessionConfig, SessionManager, SessionNotFound, SessionState
from mcptrio._state.store_codec import decode_session, decode_task, encode_session, encode_task


def record(session_id: str, now: float, **fields: Any) -> SessionRecord:
    fields.setdefault("expires_at", now + 60)
    return SessionRecord(id=session_id, created_at=now, last_active_at=now, **fields)


def message(n: int, pad: int = 0) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": "notifications/message", "params": {"n": n, "p": "x" * pad}}


def size(msg: dict[str, Any]) -> int:
    return len(orjson.dumps(msg))


def task(task_id: str, now: float, **fields: Any) -> TaskRecord:
    fields.setdefault("ttl_ms", 60_000)
    fields.setdefault("status", "working")
    return TaskRecord(task_id=task_id, created_at=now, last_updated_at=now, **fields)


# --------------------------------------------------------------------------- sessions


async def test_session_put_get_replace_delete(backend: Backend) -> None:
    now = backend.clock()
    async with backend.open() as stores:
        store = stores.sessions
        assert await store.get("nope") is None
        first = record(
            "s1",
            now,
            protocol_version="2025-11-25",
            client_info={"name": "c", "version": "1"},
            client_capabilities={"sampling": {}},
            principal="alice",
            log_level="info",
            subscriptions=frozenset({"file:///a", "file:///b"}),
            metadata={"k": [1, 2, {"x": None}]},
            requests=3,
        )
        await store.put(first)
        assert await store.get("s1") == first
        updated = attrs.evolve(first, state=SessionState.active, requests=4, expires_at=None)
        await store.put(updated)
        assert await store.get("s1") == updated
        assert await store.count() == 1
        await store.delete("s1")
        await store.delete("s1")  # deleting what is gone is no error
        assert await store.get("s1") is None
        assert await store.count() == 0


async def test_session_counts_follow_principals(backend: Backend) -> None:
    now = backend.clock()
    async with backend.open() as stores:
        store = stores.sessions
        for i in range(3):
            await store.put(record(f"a{i}", now, principal="alice"))
        await store.put(record("b0", now, principal="bob"))
        await store.put(record("anon", now))
        assert await store.count() == 5
        assert await store.count_for_principal("alice") == 3
        assert await store.count_for_principal("bob") == 1
        assert await store.count_for_principal("carol") == 0
        # A record re-put under another principal moves between the counts.
        await store.put(record("a0", now, principal="bob"))
        assert await store.count_for_principal("alice") == 2
        assert await store.count_for_principal("bob") == 2
        await store.delete("a1")
        await store.delete("b0")
        assert await store.count_for_principal("alice") == 1
        assert await store.count_for_principal("bob") == 1
        assert await store.count() == 3


async def test_session_expired_lists_due_ids_without_removing_them(backend: Backend) -> None:
    now = backend.clock()
    async with backend.open() as stores:
        store = stores.sessions
        await store.put(record("late", now, expires_at=now + 30))
        await store.put(record("soon", now, expires_at=now + 10))
        await store.put(record("never", now, expires_at=None))
        assert await store.expired(now) == []
        assert await store.expired(now + 10) == ["soon"]
        assert await store.expired(now + 30) == ["soon", "late"]
        assert await store.count() == 3  # listing removes nothing
        # Used again: its new expiry counts, not the old one.
        await store.put(record("soon", now, expires_at=now + 100))
        assert await store.expired(now + 30) == ["late"]
        await store.delete("late")
        assert await store.expired(now + 1000) == ["soon"]


async def test_sessions_written_concurrently_are_all_kept(backend: Backend) -> None:
    now = backend.clock()
    async with backend.open() as stores:
        store = stores.sessions

        async def writer(w: int) -> None:
            for i in range(10):
                await store.put(record(f"w{w}-{i}", now, principal=f"p{w % 3}"))

        async with trio.open_nursery() as nursery:
            for w in range(12):
                nursery.start_soon(writer, w)
        assert await store.count() == 120
        assert await store.count_for_principal("p0") == 40
        assert (await store.get("w11-9")) == record("w11-9", now, principal="p2")


async def test_a_closed_session_store_refuses_use(backend: Backend) -> None:
    async with backend.open() as stores:
        await stores.sessions.close()
        await stores.sessions.close()  # idempotent
        with pytest.raises(RuntimeError, match="closed"):
            await stores.sessions.get("x")


async def test_session_manager_runs_on_every_backend(backend: Backend) -> None:
    clock = backend.clock
    async with backend.open() as stores:
        manager = SessionManager(
            stores.sessions, SessionConfig(idle_timeout=60, max_sessions=3), clock=clock
        )
        one = await manager.create(principal="alice", protocol_version="2025-11-25")
        two = await manager.create()
        manager.touch(one.id)
        clock.advance(30)
        await manager.use(one.id, principal="alice")
        assert await manager.flush() == 1
        stored = await stores.sessions.get(one.id)
        assert stored is not None and stored.requests == 2
        await manager.update(one.id, log_level="debug", metadata={"seen": True})
        clock.advance(45)  # two is idle past its timeout; one was used 45 s ago
        assert await manager.sweep() == 1
        with pytest.raises(SessionNotFound):
            await manager.get(two.id)
        again = await manager.get(one.id, principal="alice")
        assert again.log_level == "debug" and again.metadata == {"seen": True}
        closed = await manager.close(one.id)
        assert closed.state is SessionState.closed
        assert await stores.sessions.count() == 0


session_records = st.builds(
    SessionRecord,
    id=st.text(min_size=1, max_size=40),
    state=st.sampled_from(SessionState),
    protocol_version=st.none() | st.sampled_from(["2024-11-05", "2025-11-25"]),
    client_info=st.none() | st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
    client_capabilities=st.dictionaries(
        st.text(max_size=8), st.dictionaries(st.text(max_size=5), st.booleans()), max_size=3
    ),
    principal=st.none() | st.text(min_size=1, max_size=20),
    created_at=st.floats(0, 4e9),
    last_active_at=st.floats(0, 4e9),
    expires_at=st.none() | st.floats(0, 4e9),
    log_level=st.none() | st.sampled_from(["debug", "info", "error"]),
    subscriptions=st.frozensets(st.text(max_size=30), max_size=4),
    metadata=st.dictionaries(
        st.text(max_size=10),
        st.recursive(
            st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=5), inner, max_size=3)
            ),
            max_leaves=6,
        ),
        max_size=4,
    ),
    requests=st.integers(0, 2**40),
)


@given(session_records)
def test_session_encoding_round_trips(rec: SessionRecord) -> None:
    assert decode_session(encode_session(rec)) == rec


@pytest.mark.parametrize(
    "raw", [b"[]", b"{", b'{"id": "x", "bogus": 1}', b'{"id": "x"}', b'{"id": "x", "state": "?"}']
)
def test_a_damaged_stored_session_is_a_clear_error(raw: bytes) -> None:
    with pytest.raises(ValueError, match="stored session"):
        decode_session(raw)


@settings(
    max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(rec=session_records, ahead=st.none() | st.floats(0, 1e6))
async def test_session_records_round_trip_through_the_store(
    backend: Backend, rec: SessionRecord, ahead: float | None
) -> None:
    # Redis drops a record's key a minute after it expired: these are live records.
    rec = attrs.evolve(rec, expires_at=None if ahead is None else backend.clock() + ahead)
    async with backend.open() as stores:
        await stores.sessions.put(rec)
        assert await stores.sessions.get(rec.id) == rec
        await stores.sessions.delete(rec.id)


# --------------------------------------------------------------------------- tasks


async def test_task_create_get_save_delete(backend: Backend) -> None:
    now = backend.clock()
    async with backend.open() as stores:
        store = stores.tasks
        t = task("t1", now, principal="alice", tool="slow", input_requests={"k": {"a": 1}})
        await store.create(t)
        assert await store.get("t1") == t
        with pytest.raises(ValueError, match="already exists"):
            await store.create(t)
        done = attrs.evolve(t, status="completed", result={"content": []}, last_updated_at=now + 1)
        await store.save(done)
        assert await store.get("t1") == done
        with pytest.raises(ValueError, match="never change"):
            await store.save(attrs.evolve(done, ttl_ms=5))
        await store.delete("t1")
        await store.delete("t1")
        assert await store.get("t1") is None
        with pytest.raises(KeyError):
            await store.save(done)


async def test_tasks_are_purged_when_their_lifetime_ends(backend: Backend) -> None:
    now = backend.clock()
    async with backend.open() as stores:
        store = stores.tasks
        await store.create(task("short", now, ttl_ms=1_000))
        await store.create(task("long", now, ttl_ms=100_000))
        await store.create(task("forever", now, ttl_ms=None))
        assert await store.purge_expired(now) == []
        assert await store.purge_expired(now + 1) == ["short"]
        assert await store.get("short") is None
        assert await store.purge_expired(now + 1) == []
        assert await store.purge_expired(now + 10**6) == ["long"]
        assert await store.get("forever") is not None


async def test_concurrent_creates_of_one_task_id_admit_exactly_one(backend: Backend) -> None:
    now = backend.clock()
    outcomes: list[bool] = []
    async with backend.open() as stores:

        async def create(n: int) -> None:
            try:
                await stores.tasks.create(task("same", now, status_message=str(n)))
            except ValueError:
                outcomes.append(False)
            else:
                outcomes.append(True)

        async with trio.open_nursery() as nursery:
            for n in range(20):
                nursery.start_soon(create, n)
    assert sorted(outcomes) == [False] * 19 + [True]


task_records = st.builds(
    TaskRecord,
    task_id=st.text(min_size=1, max_size=30),
    status=st.sampled_from(["working", "input_required", "completed", "failed", "cancelled"]),
    created_at=st.floats(1e9, 3e9),
    last_updated_at=st.floats(1e9, 3e9),
    ttl_ms=st.none() | st.integers(1, 10**12),
    poll_interval_ms=st.none() | st.integers(1, 10**6),
    status_message=st.none() | st.text(max_size=20),
    principal=st.none() | st.text(max_size=10),
    issued_keys=st.lists(st.text(max_size=5), max_size=3),
    result=st.none()
    | st.dictionaries(st.text(max_size=5), st.integers(-(2**63), 2**63 - 1), max_size=3),
)


@given(task_records)
def test_task_encoding_round_trips(rec: TaskRecord) -> None:
    assert decode_task(encode_task(rec)) == rec


async def test_a_task_json_cannot_carry_is_refused_clearly(backend: Backend) -> None:
    if backend.kind == "memory":
        pytest.skip("the memory store keeps objects, not JSON")
    async with backend.open() as stores:
        with pytest.raises(TypeError, match="cannot be stored"):
            await stores.tasks.create(task("big", backend.clock(), result={"n": 2**70}))


@settings(
    max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(rec=task_records)
async def test_task_records_round_trip_through_the_store(backend: Backend, rec: TaskRecord) -> None:
    # Redis drops a task's key a minute after its lifetime ends: these are live tasks.
    rec = attrs.evolve(rec, created_at=backend.clock())
    async with backend.open() as stores:
        await stores.tasks.delete(rec.task_id)
        await stores.tasks.create(rec)
        assert await stores.tasks.get(rec.task_id) == rec
        await stores.tasks.delete(rec.task_id)


# --------------------------------------------------------------------------- events


async def test_events_append_and_replay(backend: Backend) -> None:
    async with backend.open() as stores:
        events = stores.events
        prime = await events.append("s", None)
        ids = [await events.append("s", message(n)) for n in range(5)]
        other = await events.append("t", message(99))
        assert len({prime, *ids, other}) == 7
        assert all(i.startswith("s:") for i in ids)
        assert await events.replay_after(prime) == (
            "s",
            [(i, message(n)) for n, i in enumerate(ids)],
        )
        assert await events.replay_after(ids[2]) == (
            "s",
            [(ids[3], message(3)), (ids[4], message(4))],
        )
        assert await events.replay_after(ids[-1]) == ("s", [])
        assert await events.replay_after(other) == ("t", [])
        # A priming event replays as an id without a message.
        await events.close_stream("s")
        late = await events.append("s", None)
        assert (await events.replay_after(ids[-1]))[1] == [(late, None)]
        stats = events.statistics()
        assert stats.appended_total == 8 and stats.replays_total == 5


@pytest.mark.parametrize(
    ("last_id", "reason"),
    [
        ("garbage", "not an event id"),
        ("s:" + "9" * 30, "not an event id"),
        ("nosuch:0", "unknown or has expired"),
        ("s:9999", "never sent"),
    ],
)
async def test_events_refuse_ids_they_cannot_resume(
    backend: Backend, last_id: str, reason: str
) -> None:
    async with backend.open() as stores:
        await stores.events.append("s", message(0))
        with pytest.raises(EventEvicted, match=reason):
            await stores.events.replay_after(last_id)
        assert stores.events.statistics().misses_total == 1


async def test_events_beyond_the_count_budget_are_evicted(backend: Backend) -> None:
    async with backend.open(max_events_per_stream=3) as stores:
        events = stores.events
        ids = [await events.append("s", message(n)) for n in range(6)]
        assert await events.replay_after(ids[2]) == (
            "s",
            [(i, message(n + 3)) for n, i in enumerate(ids[3:])],
        )
        with pytest.raises(EventEvicted, match="dropped"):
            await events.replay_after(ids[1])
        assert events.statistics().evicted_total == 3


async def test_events_beyond_the_byte_budget_of_a_stream_are_evicted(backend: Backend) -> None:
    one = size(message(0, pad=100))
    async with backend.open(max_bytes_per_stream=3 * one + one // 2) as stores:
        events = stores.events
        ids = [await events.append("s", message(n, pad=100)) for n in range(8)]
        _, replayed = await events.replay_after(ids[4])
        assert [i for i, _ in replayed] == ids[5:]
        with pytest.raises(EventEvicted, match="dropped"):
            await events.replay_after(ids[3])
        # An event larger than the whole budget gets an id but is not kept: resuming from
        # before it fails instead of silently skipping it.
        huge = await events.append("s", message(99, pad=10 * one))
        with pytest.raises(EventEvicted, match="dropped"):
            await events.replay_after(ids[-1])
        assert await events.replay_after(huge) == ("s", [])
        small = await events.append("s", message(100))
        assert await events.replay_after(huge) == ("s", [(small, message(100))])


async def test_the_total_byte_budget_evicts_least_recently_used_streams_first(
    backend: Backend,
) -> None:
    clock = backend.clock
    one = size(message(0, pad=200))
    async with backend.open(max_bytes=5 * one + one // 2) as stores:
        events = stores.events
        prime = await events.append("old", None)
        old = [await events.append("old", message(n, pad=200)) for n in range(3)]
        clock.advance(1)
        new = [await events.append("new", message(n, pad=200)) for n in range(3)]
        # Six events do not fit in five: the oldest of the least recently used stream goes.
        with pytest.raises(EventEvicted, match="dropped"):
            await events.replay_after(prime)
        clock.advance(1)
        assert [i for i, _ in (await events.replay_after(old[0]))[1]] == old[1:]
        clock.advance(1)
        assert [i for i, _ in (await events.replay_after(new[0]))[1]] == new[1:]
        clock.advance(1)
        # "old" was used before "new": it is the least recently used, and loses one more.
        await events.append("new", message(3, pad=200))
        assert [i for i, _ in (await events.replay_after(old[1]))[1]] == old[2:]
        with pytest.raises(EventEvicted, match="dropped"):
            await events.replay_after(old[0])
        assert [i for i, _ in (await events.replay_after(new[0]))[1]][:2] == new[1:]
        # The priming event went with the first byte eviction (oldest first), then old[0..1].
        assert events.statistics().evicted_total == 3


async def test_events_expire_with_age(backend: Backend) -> None:
    clock = backend.clock
    async with backend.open(max_age=60) as stores:
        events = stores.events
        prime = await events.append("s", None)
        a = await events.append("s", message(0))
        clock.advance(40)
        b = await events.append("s", message(1))
        c = await events.append("s", message(2))
        clock.advance(30)  # a is 70 s old, b and c 30 s
        assert await events.replay_after(b) == ("s", [(c, message(2))])
        with pytest.raises(EventEvicted, match="too old"):
            await events.replay_after(prime)
        assert await events.replay_after(a) == ("s", [(b, message(1)), (c, message(2))])
        clock.advance(61)  # the stream was unused for longer than max_age: it goes whole
        with pytest.raises(EventEvicted, match="unknown or has expired"):
            await events.replay_after(c)


async def test_a_stream_id_used_again_never_repeats_old_event_ids(backend: Backend) -> None:
    clock = backend.clock
    async with backend.open(max_age=10) as stores:
        events = stores.events
        first = [await events.append("s", message(n)) for n in range(3)]
        clock.advance(11)
        await events.append("other", message(0))  # drops the stale stream
        again = await events.append("s", message(7))
        assert again not in first
        with pytest.raises(EventEvicted, match="earlier stream"):
            await events.replay_after(first[1])


async def test_beyond_max_streams_the_least_recently_used_stream_goes(backend: Backend) -> None:
    clock = backend.clock
    async with backend.open(max_streams=2) as stores:
        events = stores.events
        a = await events.append("a", message(0))
        clock.advance(1)
        b = await events.append("b", message(0))
        clock.advance(1)
        await events.replay_after(a)  # a is used: b is now the least recently used
        clock.advance(1)
        await events.append("c", message(0))
        assert await events.replay_after(a) == ("a", [])
        with pytest.raises(EventEvicted, match="unknown"):
            await events.replay_after(b)
        assert events.statistics().streams == 2


async def test_concurrent_appends_keep_every_stream_in_order(backend: Backend) -> None:
    issued: dict[str, list[str]] = {f"s{k}": [] for k in range(5)}
    async with backend.open() as stores:
        events = stores.events
        prime = {s: await events.append(s, None) for s in issued}

        async def writer(stream: str) -> None:
            for n in range(30):
                issued[stream].append(await events.append(stream, message(n)))

        async with trio.open_nursery() as nursery:
            for stream in issued:
                nursery.start_soon(writer, stream)
        for stream, ids in issued.items():
            seqs = [int(i.rsplit(":", 1)[1]) for i in ids]
            assert seqs == sorted(seqs) and len(set(seqs)) == 30
            _, replayed = await events.replay_after(prime[stream])
            assert replayed == [(i, message(n)) for n, i in enumerate(ids)]


# --------------------------------------------------------------------------- persistence


async def test_a_reopened_store_returns_what_was_written(backend: Backend) -> None:
    if backend.kind not in DURABLE:
        pytest.skip("memory stores end with the process by design")
    now = backend.clock()
    async with backend.open() as stores:
        await stores.sessions.put(record("kept", now, principal="alice", metadata={"a": 1}))
        prime = await stores.events.append("s", None)
        ids = [await stores.events.append("s", message(n)) for n in range(3)]
        await stores.tasks.create(task("t", now, status_message="busy"))
    async with backend.open() as stores:
        assert await stores.sessions.get("kept") == record(
            "kept", now, principal="alice", metadata={"a": 1}
        )
        assert await stores.sessions.count_for_principal("alice") == 1
        assert await stores.events.replay_after(prime) == (
            "s",
            [(i, message(n)) for n, i in enumerate(ids)],
        )
        # New events continue the numbering: no id is ever issued twice.
        more = await stores.events.append("s", message(3))
        assert more not in ids and (await stores.events.replay_after(ids[-1]))[1] == [
            (more, message(3))
        ]
        stored = await stores.tasks.get("t")
        assert stored is not None and stored.status_message == "busy"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(
    max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(messages=st.lists(st.none() | st.dictionaries(st.text(max_size=8), json_values), max_size=5))
async def test_event_messages_round_trip_through_the_store(
    backend: Backend, messages: list[dict[str, Any] | None]
) -> None:
    async with backend.open() as stores:
        prime = await stores.events.append("rt", None)
        ids = [await stores.events.append("rt", m) for m in messages]
        assert await stores.events.replay_after(prime) == (
            "rt",
            list(zip(ids, messages, strict=True)),
        )


async def test_two_store_sets_on_one_location_share_the_streams(backend: Backend) -> None:
    if backend.kind not in DURABLE:
        pytest.skip("a memory store is one process's own")
    async with backend.open() as one, backend.open() as two:
        prime = await one.events.append("shared", None)
        issued: list[tuple[str, dict[str, Any]]] = []

        async def writer(stores: StoreSet, tag: int) -> None:
            for n in range(25):
                msg = {"from": tag, "n": n}
                issued.append((await stores.events.append("shared", msg), msg))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer, one, 1)
            nursery.start_soon(writer, two, 2)
        _, replayed = await two.events.replay_after(prime)
        assert sorted(replayed) == sorted(issued)
        assert len({event_id for event_id, _ in replayed}) == 50
        now = backend.clock()
        await one.tasks.create(task("one-task", now))
        with pytest.raises(ValueError, match="already exists"):
            await two.tasks.create(task("one-task", now))
        await two.sessions.put(record("from-two", now, principal="p"))
        assert await one.sessions.count_for_principal("p") == 1
