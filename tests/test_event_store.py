from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcptrio._state.event_store import (
    EventEvicted,
    EventStore,
    EventStoreStatistics,
    MemoryEventStore,
    parse_event_id,
)

T = TypeVar("T")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Drive a coroutine that never suspends (the memory store does no I/O)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    raise AssertionError("the memory store suspended")


def msg(n: int) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": "notifications/message", "params": {"n": n}}


async def test_ids_name_the_stream_and_count_up() -> None:
    store = MemoryEventStore()
    assert isinstance(store, EventStore)
    ids = [await store.append("abc", msg(i)) for i in range(3)]
    assert [parse_event_id(i) for i in ids] == [("abc", 0), ("abc", 1), ("abc", 2)]


async def test_replay_after_returns_the_rest_of_that_stream_only() -> None:
    store = MemoryEventStore()
    prime = await store.append("one", None)
    other = await store.append("two", msg(99))
    ids = [await store.append("one", msg(i)) for i in range(3)]
    assert await store.replay_after(prime) == ("one", [(i, msg(n)) for n, i in enumerate(ids)])
    assert await store.replay_after(ids[1]) == ("one", [(ids[2], msg(2))])
    assert await store.replay_after(ids[2]) == ("one", [])
    assert await store.replay_after(other) == ("two", [])


async def test_priming_event_has_no_message() -> None:
    store = MemoryEventStore()
    prime = await store.append("s", None)
    nxt = await store.append("s", msg(1))
    first = await store.append("t", None)
    second = await store.append("t", None)
    assert await store.replay_after(prime) == ("s", [(nxt, msg(1))])
    assert await store.replay_after(first) == ("t", [(second, None)])


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "nocolon",
        "s:",
        ":5",
        "s:abc",
        "s:-1",
        "s:1.0",
        "s:\u0663",
        "s:1 ",
        "zz:0",
        "s:" + "9" * 5000,
    ],
)
async def test_malformed_or_unknown_ids_are_refused(bad: str) -> None:
    store = MemoryEventStore()
    await store.append("s", None)
    with pytest.raises(EventEvicted, match="cannot resume") as info:
        await store.replay_after(bad)
    assert info.value.event_id == bad
    assert store.statistics().misses_total == 1


async def test_an_id_never_issued_is_refused() -> None:
    store = MemoryEventStore()
    await store.append("s", None)
    with pytest.raises(EventEvicted, match="never sent") as info:
        await store.replay_after("s:5")
    assert info.value.stream_id == "s"
    assert "'s'" in str(info.value)


async def test_count_limit_drops_oldest_and_refuses_ids_before_the_gap() -> None:
    store = MemoryEventStore(max_events_per_stream=3)
    ids = [await store.append("s", msg(i)) for i in range(5)]
    # Kept: 2, 3, 4. Resuming after 1 needs only those.
    assert await store.replay_after(ids[1]) == ("s", [(i, msg(n)) for n, i in enumerate(ids)][2:])
    with pytest.raises(EventEvicted, match="too old"):
        await store.replay_after(ids[0])
    stats = store.statistics()
    assert (stats.events, stats.evicted_total, stats.appended_total) == (3, 2, 5)


async def test_age_limit_drops_old_events() -> None:
    clock = FakeClock()
    store = MemoryEventStore(max_age=300, clock=clock)
    e0 = await store.append("s", msg(0))
    clock.now += 10
    e1 = await store.append("s", msg(1))
    clock.now += 390
    e2 = await store.append("s", msg(2))  # e0 and e1 are now older than 300 s
    with pytest.raises(EventEvicted, match="too old"):
        await store.replay_after(e0)
    assert await store.replay_after(e1) == ("s", [(e2, msg(2))])
    assert store.statistics().events == 1


async def test_idle_streams_are_dropped_after_max_age() -> None:
    clock = FakeClock()
    store = MemoryEventStore(max_age=60, clock=clock)
    done = await store.append("done", msg(0))
    await store.close_stream("done")
    clock.now += 30
    assert await store.replay_after(done) == ("done", [])  # closed streams stay resumable
    clock.now += 61
    await store.append("other", msg(1))
    assert store.statistics().streams == 1
    with pytest.raises(EventEvicted, match="unknown or has expired"):
        await store.replay_after(done)


async def test_least_recently_used_stream_goes_beyond_max_streams() -> None:
    store = MemoryEventStore(max_streams=2)
    a = await store.append("a", None)
    b = await store.append("b", None)
    await store.replay_after(a)  # "a" is now more recently used than "b"
    await store.append("c", None)
    assert store.statistics().streams == 2
    with pytest.raises(EventEvicted):
        await store.replay_after(b)
    assert await store.replay_after(a) == ("a", [])


async def test_a_stream_id_used_again_never_repeats_event_ids() -> None:
    store = MemoryEventStore(max_streams=1)
    old = [await store.append("s", msg(i)) for i in range(2)]
    await store.append("t", None)  # drops "s"
    new = [await store.append("s", msg(10 + i)) for i in range(5)]
    assert not set(old) & set(new)
    for event_id in old:
        with pytest.raises(EventEvicted):
            await store.replay_after(event_id)


async def test_closing_a_stream_keeps_it_resumable() -> None:
    store = MemoryEventStore()
    first = await store.append("s", None)
    last = await store.append("s", msg(1))
    await store.close_stream("s")
    assert await store.replay_after(first) == ("s", [(last, msg(1))])
    late = await store.append("s", msg(2))  # recorded, not refused
    assert await store.replay_after(last) == ("s", [(late, msg(2))])
    await store.close_stream("never-seen")  # no error
    assert store.statistics().streams == 1


@pytest.mark.parametrize("stream_id", ["", "a:b"])
async def test_bad_stream_ids(stream_id: str) -> None:
    with pytest.raises(ValueError, match="stream id"):
        await MemoryEventStore().append(stream_id, None)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_events_per_stream": 0},
        {"max_events_per_stream": 1.5},
        {"max_age": 0},
        {"max_age": float("nan")},
        {"max_streams": -1},
        {"max_streams": True},
    ],
)
def test_bad_limits(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be a number > 0"):
        MemoryEventStore(**kwargs)


async def test_statistics() -> None:
    store = MemoryEventStore()
    first = await store.append("s", None)
    await store.append("s", msg(1))
    await store.replay_after(first)
    with pytest.raises(EventEvicted):
        await store.replay_after("x:0")
    assert store.statistics() == EventStoreStatistics(
        streams=1, events=2, appended_total=2, evicted_total=0, replays_total=1, misses_total=1
    )


# --------------------------------------------------------------------------- the model

operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.sampled_from("abc"), st.booleans()),
        st.tuples(st.just("tick"), st.floats(0, 40), st.just(False)),
        st.tuples(st.just("close"), st.sampled_from("abc"), st.just(False)),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(
    ops=operations,
    max_events=st.integers(1, 5),
    max_streams=st.integers(1, 3),
)
def test_replay_is_exact_or_refused(ops: list[Any], max_events: int, max_streams: int) -> None:
    """Every id ever issued either replays exactly what its stream sent after it, or fails."""
    clock = FakeClock()
    store = MemoryEventStore(
        max_events_per_stream=max_events, max_age=100, max_streams=max_streams, clock=clock
    )
    sent: dict[str, list[tuple[str, dict[str, Any] | None]]] = {}
    counter = 0
    for op, arg, priming in ops:
        if op == "tick":
            clock.now += arg
        elif op == "close":
            run(store.close_stream(arg))
        else:
            message = None if priming else msg(counter)
            counter += 1
            sent.setdefault(arg, []).append((run(store.append(arg, message)), message))
    all_ids = [event_id for events in sent.values() for event_id, _ in events]
    assert len(all_ids) == len(set(all_ids))
    for stream_id, events in sent.items():
        for i, (event_id, _) in enumerate(events):
            try:
                got_stream, replayed = run(store.replay_after(event_id))
            except EventEvicted as exc:
                assert exc.event_id == event_id
                continue
            assert got_stream == stream_id
            # What comes back is exactly the events sent after it, unless the store lost some
            # of them, which it must have refused instead.
            assert replayed == events[i + 1 :]
