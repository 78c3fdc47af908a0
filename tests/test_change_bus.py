"""The change bus: local fan-out, bounded buffers, the Redis wire format, Redis across processes.

The Redis tests use the real server at 127.0.0.1:6379 with a channel unique to each test.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import attrs
import coredis
import orjson
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from mcptrio._state.change_bus import (
    CHANGE_KINDS,
    ChangeBus,
    ChangeBusStatistics,
    ChangeEvent,
    LocalChangeBus,
    Subscription,
)
from mcptrio._state.redis_bus import RedisChangeBus, decode_change_event, encode_change_event

REDIS_URL = "redis://127.0.0.1:6379"
PUBLISHER = str(Path(__file__).parent / "helpers" / "bus_publisher.py")
TOOLS = ChangeEvent("tools_list_changed")
PROMPTS = ChangeEvent("prompts_list_changed")
RESOURCES = ChangeEvent("resources_list_changed")


def updated(uri: str) -> ChangeEvent:
    return ChangeEvent("resource_updated", uri=uri)


async def take(subscription: Subscription, count: int) -> list[ChangeEvent]:
    return [await anext(subscription) for _ in range(count)]


def stripped(events: list[ChangeEvent]) -> list[ChangeEvent]:
    """The events without their origin, to compare with what was published."""
    return [attrs.evolve(event, origin="") for event in events]


# --- events ------------------------------------------------------------------------------


def test_event_validation() -> None:
    with pytest.raises(ValueError, match="unknown change kind 'tool_changed'"):
        ChangeEvent("tool_changed")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs the resource's uri"):
        ChangeEvent("resource_updated")
    with pytest.raises(ValueError, match="needs the task_id"):
        ChangeEvent("task_status", data={"status": "working"})
    assert ChangeEvent("task_status", task_id="t1").key == ("task_status", None, "t1")


# --- local fan-out -----------------------------------------------------------------------


async def test_local_bus_fans_out_in_publish_order() -> None:
    bus = LocalChangeBus()
    assert isinstance(bus, ChangeBus)
    published = [TOOLS, updated("file:///a"), PROMPTS, updated("file:///b"), RESOURCES]
    with trio.fail_after(5):
        await bus.publish(TOOLS)  # before anyone subscribed: nobody sees it
        async with bus.subscribe() as first, bus.subscribe(buffer=8) as second:
            for event in published:
                await bus.publish(event)
            got_first = await take(first, len(published))
            got_second = await take(second, len(published))
            assert first.pending == second.pending == 0
    assert stripped(got_first) == stripped(got_second) == published
    assert {event.origin for event in got_first} == {bus.id}
    assert bus.statistics() == ChangeBusStatistics(
        subscribers=0, published=6, delivered=10, coalesced=0, dropped=0
    )


async def test_reader_waiting_for_an_event_is_woken_by_publish() -> None:
    bus = LocalChangeBus()
    got: list[ChangeEvent] = []

    async def read(subscription: Subscription, *, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        got.append(await anext(subscription))

    with trio.fail_after(5):
        async with bus.subscribe() as subscription, trio.open_nursery() as nursery:
            await nursery.start(read, subscription)
            await bus.publish(PROMPTS)
    assert stripped(got) == [PROMPTS]


async def test_subscription_ends_when_its_context_exits() -> None:
    bus = LocalChangeBus()
    with trio.fail_after(5):
        async with bus.subscribe() as subscription:
            await bus.publish(TOOLS)
        assert bus.statistics().subscribers == 0
        await bus.publish(PROMPTS)
        assert [event async for event in subscription] == []


async def test_local_serve_starts_and_is_cancellable() -> None:
    bus = LocalChangeBus()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(bus.serve)
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize("buffer", [0, -1, True, 2.5])
def test_subscription_buffer_must_hold_an_event(buffer: Any) -> None:
    with pytest.raises(ValueError, match="at least 1 event"):
        LocalChangeBus().subscribe(buffer=buffer)


# --- bounded buffers ---------------------------------------------------------------------


async def test_full_buffer_coalesces_duplicates_before_dropping() -> None:
    bus = LocalChangeBus()
    with trio.fail_after(5):
        async with bus.subscribe(buffer=3) as subscription:
            for event in [TOOLS, PROMPTS, TOOLS, RESOURCES]:
                await bus.publish(event)
            # The first TOOLS is superseded by the second; nothing distinct was lost.
            assert stripped(await take(subscription, 3)) == [PROMPTS, TOOLS, RESOURCES]
            assert subscription.overflowed == 0
    assert bus.statistics().coalesced == 1
    assert bus.statistics().dropped == 0


async def test_coalescing_keeps_the_latest_task_status() -> None:
    bus = LocalChangeBus()
    with trio.fail_after(5):
        async with bus.subscribe(buffer=2) as subscription:
            for status in ["working", "input_required", "completed"]:
                await bus.publish(ChangeEvent("task_status", task_id="t1", data={"s": status}))
            assert [event.data for event in await take(subscription, 1)] == [{"s": "completed"}]
            assert subscription.pending == 0


async def test_full_buffer_of_distinct_events_drops_the_oldest() -> None:
    bus = LocalChangeBus()
    with trio.fail_after(5):
        async with bus.subscribe(buffer=2) as slow, bus.subscribe(buffer=100) as fast:
            for index in range(5):
                await bus.publish(updated(f"file:///{index}"))
            assert stripped(await take(slow, 2)) == [updated("file:///3"), updated("file:///4")]
            assert slow.overflowed == 3
            assert fast.overflowed == 0
            assert len(await take(fast, 5)) == 5
    assert bus.statistics().dropped == 3


async def test_slow_subscriber_never_blocks_the_publisher() -> None:
    bus = LocalChangeBus()
    with trio.fail_after(5):
        async with bus.subscribe(buffer=4) as never_read, bus.subscribe(buffer=1000) as reader:
            for index in range(1000):
                await bus.publish(updated(f"file:///{index}"))
            assert never_read.pending == 4
            assert never_read.overflowed == 996
            got = await take(reader, 1000)
    assert [event.uri for event in got] == [f"file:///{index}" for index in range(1000)]


KEYED_EVENTS = st.one_of(
    st.sampled_from([TOOLS, PROMPTS, RESOURCES]),
    st.builds(updated, st.sampled_from(["a", "b", "c"])),
    st.builds(
        lambda task, n: ChangeEvent("task_status", task_id=task, data={"n": n}),
        st.sampled_from(["t1", "t2"]),
        st.integers(0, 3),
    ),
)


@settings(deadline=None)
@given(events=st.lists(KEYED_EVENTS, max_size=40), buffer=st.integers(1, 8))
def test_buffer_properties(events: list[ChangeEvent], buffer: int) -> None:
    async def run() -> tuple[list[ChangeEvent], int, ChangeBusStatistics]:
        bus = LocalChangeBus()
        async with bus.subscribe(buffer=buffer) as subscription:
            for event in events:
                await bus.publish(event)
            pending = subscription.pending
            return await take(subscription, pending), subscription.overflowed, bus.statistics()

    got, overflowed, stats = trio.run(run)
    got = stripped(got)
    assert len(got) <= buffer
    assert len(got) + stats.coalesced + overflowed == len(events)
    assert stats.dropped == overflowed
    # What is read is the published sequence with events removed, never reordered.
    remaining = iter(range(len(events)))
    positions = [next(i for i in remaining if events[i] == event) for event in got]
    assert positions == sorted(positions)
    if events:
        assert got[-1] == events[-1]
    if overflowed == 0:
        # Only superseded events went away: the latest event of every key is still there.
        latest = {event.key: event for event in events}
        assert {event.key: event for event in got} == latest


# --- the Redis wire format ---------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)
EVENTS = st.builds(
    lambda kind, uri, task_id, data, origin: ChangeEvent(
        kind,
        uri=uri if uri is not None or kind != "resource_updated" else "file:///x",
        task_id=task_id if task_id is not None or kind != "task_status" else "t",
        data=data,
        origin=origin,
    ),
    st.sampled_from(sorted(CHANGE_KINDS)),
    st.none() | st.text(),
    st.none() | st.text(),
    st.none() | st.dictionaries(st.text(), JSON_VALUES, max_size=4),
    st.text(max_size=16),
)


@given(EVENTS)
def test_wire_format_round_trips(event: ChangeEvent) -> None:
    raw = encode_change_event(event)
    assert decode_change_event(raw) == event
    assert decode_change_event(raw.decode()) == event
    assert orjson.loads(raw)["v"] == 1


def test_wire_format_omits_absent_fields() -> None:
    raw = encode_change_event(attrs.evolve(TOOLS, origin="o1"))
    assert raw == b'{"v":1,"kind":"tools_list_changed","origin":"o1"}'


@given(st.binary() | st.text().map(str.encode))
def test_decoding_garbage_raises_value_error_only(raw: bytes) -> None:
    with contextlib.suppress(ValueError):
        decode_change_event(raw)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ([1], "JSON object"),
        ({"kind": "tools_list_changed", "origin": ""}, "version None"),
        ({"v": 2, "kind": "tools_list_changed", "origin": ""}, "version 2"),
        ({"v": True, "kind": "tools_list_changed", "origin": ""}, "version True"),
        ({"v": 1, "kind": "tools_changed", "origin": ""}, "unknown change kind"),
        ({"v": 1, "kind": "tools_list_changed"}, "origin"),
        ({"v": 1, "kind": "resource_updated", "origin": ""}, "uri"),
        ({"v": 1, "kind": "resource_updated", "uri": 3, "origin": ""}, "uri"),
        ({"v": 1, "kind": "tools_list_changed", "data": [1], "origin": ""}, "data"),
    ],
)
def test_decoding_rejects_malformed_messages(message: Any, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        decode_change_event(orjson.dumps(message))


def test_decoding_ignores_unknown_fields() -> None:
    raw = b'{"v":1,"kind":"prompts_list_changed","origin":"o","later":true}'
    assert decode_change_event(raw) == attrs.evolve(PROMPTS, origin="o")


def test_unserialisable_data_is_a_clear_type_error() -> None:
    with pytest.raises(TypeError, match="task_status change event: its data is not JSON"):
        encode_change_event(ChangeEvent("task_status", task_id="t", data={"when": object()}))


# --- Redis -------------------------------------------------------------------------------


@pytest.fixture
def channel() -> str:
    return f"mcptrio-test-{uuid.uuid4().hex}:changes"


@pytest.fixture
async def nursery() -> AsyncIterator[trio.Nursery]:
    async with trio.open_nursery() as nursery:
        yield nursery
        nursery.cancel_scope.cancel()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def wait_until(bus: RedisChangeBus, condition: Callable[[ChangeBusStatistics], bool]) -> None:
    while not condition(bus.statistics()):
        await bus._state_changed.park()


async def read_until(subscription: Subscription, *last: ChangeEvent) -> list[ChangeEvent]:
    """Read until every event in ``last`` was seen; return everything read."""
    wanted = list(last)
    got: list[ChangeEvent] = []
    while wanted:
        event = await anext(subscription)
        got.append(event)
        if (bare := attrs.evolve(event, origin="")) in wanted:
            wanted.remove(bare)
    return got


async def test_publish_before_serve_is_an_error(channel: str) -> None:
    bus = RedisChangeBus(REDIS_URL, channel=channel)
    with pytest.raises(RuntimeError, match=r"needs serve\(\) running"):
        await bus.publish(TOOLS)


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="not a Redis URL"):
        RedisChangeBus("http://127.0.0.1:6379")
    with pytest.raises(ValueError, match="channel name"):
        RedisChangeBus(channel="")


async def test_two_processes_receive_each_others_events_exactly_once(channel: str) -> None:
    one = RedisChangeBus(REDIS_URL, channel=channel)
    from_one = [TOOLS, updated("file:///a"), PROMPTS]
    from_two = [ChangeEvent("task_status", task_id="t1", data={"status": "working"})]
    end_one, end_two = updated("end://one"), updated("end://two")
    with trio.fail_after(10):
        async with (
            coredis.Redis.from_url(REDIS_URL) as client,
            trio.open_nursery() as nursery,
        ):
            two = RedisChangeBus(channel=channel, client=client)
            assert isinstance(two, ChangeBus)
            await nursery.start(one.serve)
            await nursery.start(two.serve)
            assert one.statistics().redis_connected and two.statistics().redis_connected
            async with one.subscribe() as on_one, two.subscribe() as on_two:
                for event in from_one:
                    await one.publish(event)
                for event in from_two:
                    await two.publish(event)
                # Each end marker is published after the other bus's events, so it arrives
                # after any (wrong) Redis echo of them.
                await one.publish(end_one)
                await two.publish(end_two)
                got_one = await read_until(on_one, end_one, end_two)
                got_two = await read_until(on_two, end_one, end_two)
                assert on_one.pending == on_two.pending == 0
            nursery.cancel_scope.cancel()
    for got in (got_one, got_two):
        assert stripped([e for e in got if e.origin == one.id]) == [*from_one, end_one]
        assert stripped([e for e in got if e.origin == two.id]) == [*from_two, end_two]
    stats = one.statistics()
    assert (stats.published, stats.sent, stats.received, stats.unsent) == (4, 4, 2, 0)
    assert stats.delivered == 6
    assert two.statistics().received == 4


async def test_event_from_another_os_process_reaches_a_subscriber(
    channel: str, nursery: trio.Nursery
) -> None:
    bus = RedisChangeBus(REDIS_URL, channel=channel)
    with trio.fail_after(20):
        await nursery.start(bus.serve)
        async with bus.subscribe() as subscription:
            result = await trio.run_process(
                [sys.executable, PUBLISHER, REDIS_URL, channel, "3"], capture_stdout=True
            )
            report = json.loads(result.stdout)
            got = await take(subscription, 3)
    assert [event.uri for event in got] == ["test://0", "test://1", "test://2"]
    assert {event.origin for event in got} == {report["origin"]}
    assert bus.statistics().received == 3


async def test_malformed_messages_on_the_channel_are_ignored(
    channel: str, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    bus = RedisChangeBus(REDIS_URL, channel=channel)
    async with coredis.Redis.from_url(REDIS_URL) as client:
        with trio.fail_after(10):
            await nursery.start(bus.serve)
            async with bus.subscribe() as subscription:
                await client.publish(channel, b"not json")
                await client.publish(channel, b'{"v":99,"kind":"tools_list_changed","origin":""}')
                await client.publish(
                    channel, encode_change_event(attrs.evolve(PROMPTS, origin="x"))
                )
                assert stripped(await take(subscription, 1)) == [PROMPTS]
    assert bus.statistics().invalid == 2
    assert "ignored a malformed message" in caplog.text


async def test_unreachable_redis_still_delivers_locally(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "mcptrio.change_bus")
    bus = RedisChangeBus(f"redis://:hunter2@127.0.0.1:{closed_port()}/0", channel="unused")
    with trio.fail_after(5):
        await nursery.start(bus.serve)
        async with bus.subscribe() as subscription:
            await bus.publish(TOOLS)
            await bus.publish(PROMPTS)
            assert stripped(await take(subscription, 2)) == [TOOLS, PROMPTS]
        # The listener keeps trying, with backoff.
        await wait_until(bus, lambda stats: stats.reconnects >= 3)
    stats = bus.statistics()
    assert not stats.redis_connected
    assert (stats.published, stats.sent, stats.unsent, stats.delivered) == (2, 0, 2, 2)
    assert "cannot reach Redis at redis://:***@127.0.0.1" in caplog.text
    assert "reach only this process's subscribers" in caplog.text
    assert "hunter2" not in caplog.text
    # Rate limited: one warning per topic, however often it happened.
    assert caplog.text.count("cannot reach Redis") == 1
    assert caplog.text.count("is unreachable") == 1


async def test_listener_resubscribes_after_losing_its_connection(
    channel: str, nursery: trio.Nursery
) -> None:
    name = f"mcptrio-test-{uuid.uuid4().hex}"
    publisher = RedisChangeBus(REDIS_URL, channel=channel)
    with trio.fail_after(10):
        await nursery.start(publisher.serve)
        async with (
            coredis.Redis.from_url(REDIS_URL, client_name=name) as named,
            coredis.Redis.from_url(REDIS_URL) as admin,
            trio.open_nursery() as inner,
        ):
            listener = RedisChangeBus(channel=channel, client=named)
            await inner.start(listener.serve)
            clients = await admin.client_list()
            ours = [c["id"] for c in clients if c.get("name") == name and int(c["sub"]) > 0]
            assert len(ours) == 1
            await admin.client_kill(identifier=ours[0])
            await wait_until(listener, lambda stats: stats.reconnects >= 1)
            await listener.wait_connected()
            async with listener.subscribe() as subscription:
                await publisher.publish(RESOURCES)
                assert stripped(await take(subscription, 1)) == [RESOURCES]
            assert listener.statistics().redis_connected
            inner.cancel_scope.cancel()


@pytest.mark.parametrize("reachable", [True, False])
async def test_cancelling_serve_is_prompt(channel: str, reachable: bool) -> None:
    url = REDIS_URL if reachable else f"redis://127.0.0.1:{closed_port()}"
    bus = RedisChangeBus(url, channel=channel)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(bus.serve)
            assert bus.statistics().redis_connected is reachable
            with pytest.raises(RuntimeError, match="already serving"):
                await bus.serve()
            async with bus.subscribe() as subscription:
                await bus.publish(TOOLS)
                assert subscription.pending == 1
            start = trio.current_time()
            nursery.cancel_scope.cancel()
    assert trio.current_time() - start < 0.5
    assert not bus.statistics().redis_connected
    with pytest.raises(RuntimeError, match="needs serve"):
        await bus.publish(TOOLS)
