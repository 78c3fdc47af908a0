"""The tasks extension: records and the memory store, and task-capable tool calls served in the
2026-07-28 era (creation, polling, input, cancellation, expiry, status events)."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import attrs
import orjson
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from examples.everything_tasks import register
from mcptrio import (
    InternalError,
    InvalidParams,
    MCPError,
    Principal,
    Server,
    ToolError,
    current_request,
)
from mcptrio._protocol.converter import from_wire
from mcptrio._protocol.jsonrpc import Request, RequestId
from mcptrio._protocol.versions import META_CLIENT_CAPABILITIES, META_PROTOCOL_VERSION, Era
from mcptrio._server.dispatch import CallScope
from mcptrio._server.modern import serve_modern
from mcptrio._server.tasks import begin_task, listen_task_ids, task_notification
from mcptrio._state.change_bus import ChangeEvent, Subscription
from mcptrio._state.task_store import MemoryTaskStore, TaskRecord, iso_timestamp
from mcptrio.types import (
    TASKS_EXTENSION,
    ClientCapabilities,
    InputRequest,
    InputRequiredResult,
)

TASKS_CAPS: dict[str, Any] = {"elicitation": {}, "extensions": {TASKS_EXTENSION: {}}}
EPOCH = 1_700_000_000.0
CONFIRM = {"type": "object", "properties": {"ok": {"type": "boolean"}}}


# --- records and the memory store -----------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
json_objects = st.dictionaries(st.text(max_size=6), json_values, max_size=3)
timestamps = st.floats(min_value=0, max_value=4e9, allow_nan=False)
records = st.builds(
    TaskRecord,
    task_id=st.text(min_size=1, max_size=12),
    status=st.sampled_from(["working", "input_required", "completed", "failed", "cancelled"]),
    created_at=timestamps,
    last_updated_at=timestamps,
    ttl_ms=st.none() | st.integers(min_value=1, max_value=10**9),
    poll_interval_ms=st.none() | st.integers(min_value=1, max_value=10**6),
    status_message=st.none() | st.text(max_size=10),
    principal=st.none() | st.text(max_size=6),
    tool=st.none() | st.text(max_size=6),
    input_requests=st.none() | json_objects,
    input_keys=st.none() | st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=3),
    input_responses=st.none() | json_objects,
    resume_state=st.none() | json_objects,
    issued_keys=st.lists(st.text(max_size=4), max_size=4),
    result=st.none() | json_objects,
    error=st.none() | json_objects,
)


@given(records)
def test_record_json_round_trip(record: TaskRecord) -> None:
    assert TaskRecord.from_json(orjson.loads(orjson.dumps(record.to_json()))) == record


@given(records)
def test_wire_shapes_follow_the_status(record: TaskRecord) -> None:
    created = record.create_result_wire()
    assert created["resultType"] == "task"
    assert created["ttlMs"] == record.ttl_ms
    assert not {"result", "error", "inputRequests", "requestState", "ttl", "task"} & set(created)
    detailed = record.detailed_wire()
    assert "resultType" not in detailed and "requestState" not in detailed
    assert ("inputRequests" in detailed) == (record.status == "input_required")
    assert ("result" in detailed) == (record.status == "completed" and record.result is not None)
    assert ("error" in detailed) == (record.status == "failed" and record.error is not None)
    if record.status == "input_required":
        answered = set(record.input_responses or {})
        assert set(detailed["inputRequests"]) == set(record.input_requests or {}) - answered


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_iso_timestamps_read_back(epoch: float) -> None:
    text = iso_timestamp(epoch)
    assert text.endswith("Z") and text[10] == "T"
    assert math.isclose(datetime.fromisoformat(text).timestamp(), epoch, abs_tol=0.001)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"task_id": "t", "status": "done"}, "not a task record|unknown task status"),
        ({"nonsense": 1}, "unknown task record fields: nonsense"),
        ([], "must be a JSON object"),
    ],
)
def test_from_json_rejects_what_is_not_a_record(data: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        TaskRecord.from_json(data)


def test_from_json_checks_types() -> None:
    good = TaskRecord(
        task_id="t", status="working", created_at=1.0, last_updated_at=1.0, ttl_ms=None
    ).to_json()
    for field, value, problem in [
        ("created_at", "yesterday", "epoch seconds"),
        ("result", [1], "result must be an object"),
        ("principal", 7, "principal must be a string"),
        ("ttl_ms", 0, "ttl_ms must be a positive integer"),
        ("task_id", "", "task_id must be a non-empty string"),
    ]:
        with pytest.raises(ValueError, match=problem):
            TaskRecord.from_json({**good, field: value})


async def test_memory_store_create_save_purge() -> None:
    store = MemoryTaskStore()
    short = TaskRecord(
        task_id="a", status="working", created_at=10.0, last_updated_at=10.0, ttl_ms=1000
    )
    forever = attrs.evolve(short, task_id="b", ttl_ms=None)
    await store.create(short)
    await store.create(forever)
    with pytest.raises(ValueError, match="already exists"):
        await store.create(short)
    with pytest.raises(KeyError):
        await store.save(attrs.evolve(short, task_id="gone"))
    with pytest.raises(ValueError, match="never change"):
        await store.save(attrs.evolve(short, ttl_ms=5))
    await store.save(attrs.evolve(short, status="completed"))
    assert (await store.get("a")) == attrs.evolve(short, status="completed")
    assert await store.purge_expired(10.999) == []
    assert await store.purge_expired(11.0) == ["a"]
    assert await store.get("a") is None and len(store) == 1
    await store.delete("b")
    await store.delete("b")
    assert len(store) == 0


# --- serving -----------------------------------------------------------------------------------


class Recorder:
    """An outbound that keeps what the server sends for the request."""

    def __init__(self) -> None:
        self.notifications: list[tuple[str, dict[str, Any] | None]] = []

    async def notify(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        related_request_id: RequestId | None = None,
    ) -> None:
        self.notifications.append((method, params))

    async def request(self, method: str, params: Any = None, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError("2026-07-28 servers never send requests")


class Client:
    """Sends 2026-07-28 requests straight to ``serve_modern``."""

    def __init__(
        self, server: Server, capabilities: dict[str, Any], principal: str | None = None
    ) -> None:
        self.server = server
        self.capabilities = capabilities
        self.principal = principal
        self.outbound = Recorder()
        self._next_id = 0

    async def request(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        params["_meta"] = {
            META_PROTOCOL_VERSION: "2026-07-28",
            META_CLIENT_CAPABILITIES: self.capabilities,
        }
        request = Request(self._next_id, method, params)
        principal = None if self.principal is None else Principal(subject=self.principal)
        return await serve_modern(self.server, request, self.outbound, principal=principal)

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        return await self.request("tools/call", name=tool, arguments=arguments)

    async def get(self, task_id: str) -> dict[str, Any]:
        return await self.request("tasks/get", taskId=task_id)


async def wait_status(events: Subscription, task_id: str, *statuses: str) -> dict[str, Any]:
    """The task as published when it first reaches one of ``statuses``."""
    with trio.fail_after(600):
        async for event in events:
            assert event.data is not None
            task: dict[str, Any] = event.data["task"]
            if event.task_id == task_id and task["status"] in statuses:
                return task
    raise AssertionError("the change bus closed")


def question(message: str) -> InputRequest:
    """A form elicitation asking ``message``."""
    wire = {
        "method": "elicitation/create",
        "params": {"message": message, "requestedSchema": CONFIRM},
    }
    request: InputRequest = from_wire(InputRequest, wire)
    return request


class Probe:
    """What the test tools saw."""

    def __init__(self) -> None:
        self.started = 0
        self.cancelled = 0
        self.runs: dict[str, int] = {}


def make_server(probe: Probe, **options: Any) -> Server:
    server = Server("tasks-test")
    options.setdefault("clock", lambda: EPOCH + trio.current_time())
    server.enable_tasks(**options)

    @server.tool()
    async def greet(name: str) -> str:
        return f"Hello, {name}!"

    @server.tool(task="optional")
    async def sleepy(seconds: float) -> str:
        probe.started += 1
        try:
            await current_request().report_progress(1, 2)
            await trio.sleep(seconds)
        except trio.Cancelled:
            probe.cancelled += 1
            raise
        return f"slept {seconds:g}"

    @server.tool(task="required")
    async def must_task() -> str:
        return "done"

    @server.tool(task="optional")
    async def tool_error() -> str:
        raise ToolError("bad input")

    @server.tool(task="optional")
    async def protocol_error() -> str:
        raise InvalidParams("the job cannot run", {"why": "test"})

    @server.tool(task="optional")
    async def crash() -> str:
        raise MCPError("disk on fire")

    @server.tool(task="optional")
    async def ask_twice() -> Any:
        probe.runs["ask_twice"] = probe.runs.get("ask_twice", 0) + 1
        ctx = current_request()
        first = await ctx.elicit("First?", CONFIRM)
        second = await ctx.elicit("Second?", CONFIRM)
        return f"{first.action}/{second.action}"

    @server.tool(task="optional")
    async def same_key() -> Any:
        # Asks under the key "q" twice: the client must see two distinct keys.
        ctx = current_request()
        asked = int(ctx.request_state or "0")
        if ctx.input_responses and "q" in ctx.input_responses:
            asked += 1
        if asked < 2:
            return InputRequiredResult(
                input_requests={"q": question(f"q{asked}")}, request_state=str(asked)
            )
        return "asked twice"

    @server.tool(task="required", defer_task=True)
    async def deferred() -> Any:
        ctx = current_request()
        answer = (ctx.input_responses or {}).get("name")
        if answer is None:
            return InputRequiredResult(input_requests={"name": question("Name?")})
        probe.started += 1
        await trio.sleep(1)  # checks the answer before committing to a task
        await begin_task()
        await begin_task()
        await trio.sleep(5)
        probe.runs["deferred"] = probe.runs.get("deferred", 0) + 1
        return f"hello {answer['content']['who']}"

    return server


@asynccontextmanager
async def serving(
    probe: Probe | None = None, **options: Any
) -> AsyncIterator[tuple[Server, Subscription]]:
    server = make_server(probe or Probe(), **options)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve_background)
        async with server.change_bus.subscribe() as events:
            yield server, events
        nursery.cancel_scope.cancel()


async def test_the_extension_is_advertised_and_gated(autojump_clock: trio.abc.Clock) -> None:
    async with serving() as (server, _):
        caps = server.capabilities().extensions
        assert caps == {TASKS_EXTENSION: {}}
        plain = Client(server, {})
        gated: list[tuple[str, dict[str, Any]]] = [
            ("tasks/get", {"taskId": "x"}),
            ("tasks/update", {"taskId": "x", "inputResponses": {}}),
            ("tasks/cancel", {"taskId": "x"}),
        ]
        for method, params in gated:
            with pytest.raises(MCPError) as info:
                await plain.request(method, **params)
            assert info.value.code == -32021
            assert info.value.data == {
                "requiredCapabilities": {"extensions": {TASKS_EXTENSION: {}}}
            }
        with pytest.raises(MCPError) as info:
            await plain.call("must_task")
        assert info.value.code == -32021
        # An optional tool runs inline for a client without the extension.
        inline = await plain.call("sleepy", seconds=0.5)
        assert inline["resultType"] == "complete" and "taskId" not in inline
        client = Client(server, TASKS_CAPS)
        for method in ("tasks/result", "tasks/list"):
            with pytest.raises(MCPError) as info:
                await client.request(method, taskId="x")
            assert info.value.code == -32601
        with pytest.raises(MCPError) as info:
            await client.get("no-such-task")
        assert info.value.code == -32602
        with pytest.raises(MCPError, match="taskId"):
            await client.request("tasks/get")
        with pytest.raises(MCPError, match="inputResponses"):
            await client.request("tasks/update", taskId="x", inputResponses=[])
        greeting = await client.call("greet", name="Ann")
        assert greeting["resultType"] == "complete" and "taskId" not in greeting


async def test_a_task_runs_to_completion(autojump_clock: trio.abc.Clock) -> None:
    probe = Probe()
    async with serving(probe) as (server, events):
        client = Client(server, TASKS_CAPS)
        created = await client.call("sleepy", seconds=10)
        assert created["resultType"] == "task" and created["status"] == "working"
        assert created["ttlMs"] == 3_600_000 and created["pollIntervalMs"] == 500
        task_id = created["taskId"]
        # Durably created before the answer: an immediate get resolves.
        working = await client.get(task_id)
        assert working["status"] == "working" and working["resultType"] == "complete"
        assert "result" not in working
        done = await wait_status(events, task_id, "completed")
        assert done["result"]["content"] == [{"type": "text", "text": "slept 10"}]
        assert done["result"]["resultType"] == "complete"
        got = await client.get(task_id)
        assert got["result"] == done["result"] and got["lastUpdatedAt"] > got["createdAt"]
        # Progress inside a task goes nowhere, and nothing else reached the request.
        assert client.outbound.notifications == []
        assert server.task_manager is not None
        assert server.task_manager.statistics()["completed"] == 1


async def test_errors_complete_or_fail_the_task(autojump_clock: trio.abc.Clock) -> None:
    async with serving() as (server, events):
        client = Client(server, TASKS_CAPS)
        tool_error = (await client.call("tool_error"))["taskId"]
        assert (await wait_status(events, tool_error, "completed", "failed"))[
            "status"
        ] == "completed"
        assert (await client.get(tool_error))["result"]["isError"] is True
        for tool, code in [("protocol_error", -32602), ("crash", -32603)]:
            task_id = (await client.call(tool))["taskId"]
            failed = await wait_status(events, task_id, "completed", "failed")
            assert failed["status"] == "failed" and "result" not in failed
            assert failed["error"]["code"] == code
            assert failed["statusMessage"] == failed["error"]["message"]
        assert failed["error"]["message"] == "disk on fire"


async def test_cancelling_a_task_stops_its_work(autojump_clock: trio.abc.Clock) -> None:
    probe = Probe()
    async with serving(probe) as (server, events):
        client = Client(server, TASKS_CAPS)
        task_id = (await client.call("sleepy", seconds=100))["taskId"]
        await wait_status(events, task_id, "working")
        ack = await client.request("tasks/cancel", taskId=task_id)
        assert ack == {"resultType": "complete", "_meta": ack["_meta"]}
        assert (await client.get(task_id))["status"] == "cancelled"
        await trio.testing.wait_all_tasks_blocked()
        assert probe.cancelled == 1
        # Cancelling a finished task is acknowledged the same way; an unknown one is not.
        assert (await client.request("tasks/cancel", taskId=task_id))["resultType"] == "complete"
        with pytest.raises(MCPError) as info:
            await client.request("tasks/cancel", taskId="unknown")
        assert info.value.code == -32602


async def test_tasks_belong_to_their_principal(autojump_clock: trio.abc.Clock) -> None:
    async with serving() as (server, _):
        alice = Client(server, TASKS_CAPS, principal="alice")
        task_id = (await alice.call("sleepy", seconds=1))["taskId"]
        mallory = Client(server, TASKS_CAPS, principal="mallory")
        for method in ("tasks/get", "tasks/cancel"):
            with pytest.raises(MCPError, match="unknown task") as info:
                await mallory.request(method, taskId=task_id)
            assert info.value.code == -32602
        assert (await alice.get(task_id))["taskId"] == task_id


async def test_input_parks_the_task_until_answered(autojump_clock: trio.abc.Clock) -> None:
    probe = Probe()
    async with serving(probe) as (server, events):
        client = Client(server, TASKS_CAPS)
        task_id = (await client.call("ask_twice"))["taskId"]
        parked = await wait_status(events, task_id, "input_required")
        [first_key] = parked["inputRequests"]
        assert parked["inputRequests"][first_key]["method"] == "elicitation/create"
        assert "requestState" not in parked
        # Unknown keys are ignored; the task keeps waiting.
        ack = await client.request(
            "tasks/update", taskId=task_id, inputResponses={"other": {"ignored": True}}
        )
        assert ack["resultType"] == "complete" and "status" not in ack
        assert (await client.get(task_id))["status"] == "input_required"
        with pytest.raises(MCPError, match="result object"):
            await client.request("tasks/update", taskId=task_id, inputResponses={first_key: 1})
        await client.request(
            "tasks/update",
            taskId=task_id,
            inputResponses={first_key: {"action": "accept", "content": {}}},
        )
        again = await wait_status(events, task_id, "input_required")
        [second_key] = again["inputRequests"]
        assert second_key != first_key
        await client.request(
            "tasks/update", taskId=task_id, inputResponses={second_key: {"action": "decline"}}
        )
        done = await wait_status(events, task_id, "completed", "failed")
        assert done["result"]["content"][0]["text"] == "accept/decline"
        assert probe.runs["ask_twice"] == 3
        # A finished task ignores further answers.
        await client.request(
            "tasks/update", taskId=task_id, inputResponses={second_key: {"action": "accept"}}
        )
        assert (await client.get(task_id))["status"] == "completed"


async def test_a_key_is_never_reused(autojump_clock: trio.abc.Clock) -> None:
    async with serving() as (server, events):
        client = Client(server, TASKS_CAPS)
        task_id = (await client.call("same_key"))["taskId"]
        first = await wait_status(events, task_id, "input_required")
        assert list(first["inputRequests"]) == ["q"]
        await client.request(
            "tasks/update", taskId=task_id, inputResponses={"q": {"action": "accept"}}
        )
        second = await wait_status(events, task_id, "input_required")
        assert list(second["inputRequests"]) == ["q#2"]
        assert second["inputRequests"]["q#2"]["params"]["message"] == "q1"
        # The retired key is no longer outstanding: answering it does nothing.
        await client.request(
            "tasks/update", taskId=task_id, inputResponses={"q": {"action": "accept"}}
        )
        assert (await client.get(task_id))["status"] == "input_required"
        await client.request(
            "tasks/update", taskId=task_id, inputResponses={"q#2": {"action": "accept"}}
        )
        done = await wait_status(events, task_id, "completed", "failed")
        assert done["result"]["content"][0]["text"] == "asked twice"


async def test_a_slow_answer_outlives_the_request_state_ttl(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "time", lambda: EPOCH + trio.current_time())
    async with serving() as (server, events):
        ttl = server.config.request_state_ttl
        client = Client(server, TASKS_CAPS)
        task_id = (await client.call("same_key"))["taskId"]
        await wait_status(events, task_id, "input_required")
        await trio.sleep(ttl * 2)
        await client.request(
            "tasks/update", taskId=task_id, inputResponses={"q": {"action": "accept"}}
        )
        second = await wait_status(events, task_id, "input_required", "failed")
        assert second["status"] == "input_required"


async def test_deferred_task_asks_on_the_request_first(autojump_clock: trio.abc.Clock) -> None:
    probe = Probe()
    async with serving(probe) as (server, events):
        client = Client(server, TASKS_CAPS)
        first = await client.call("deferred")
        assert first["resultType"] == "input_required" and "taskId" not in first
        assert list(first["inputRequests"]) == ["name"]
        answer = {"name": {"action": "accept", "content": {"who": "Zed"}}}
        created = await client.request(
            "tools/call", name="deferred", arguments={}, inputResponses=answer
        )
        assert created["resultType"] == "task" and "requestState" not in created
        assert probe.started == 1 and "deferred" not in probe.runs
        done = await wait_status(events, created["taskId"], "completed", "failed")
        assert done["result"]["content"][0]["text"] == "hello Zed"
        # Without the extension a required deferred tool is refused before it runs.
        with pytest.raises(MCPError) as info:
            await Client(server, {}).call("deferred")
        assert info.value.code == -32021


async def test_cancelling_the_request_stops_the_call(autojump_clock: trio.abc.Clock) -> None:
    probe = Probe()
    async with serving(probe) as (server, _):
        manager = server.task_manager
        assert manager is not None
        client = Client(server, TASKS_CAPS)
        answer = {"name": {"action": "accept", "content": {"who": "Zed"}}}
        with trio.move_on_after(0.5):
            await client.request("tools/call", name="deferred", arguments={}, inputResponses=answer)
        await trio.testing.wait_all_tasks_blocked()
        assert probe.started == 1 and "deferred" not in probe.runs
        assert manager.statistics()["created"] == 0
        # Cancelled as its task is being created: the task (never seen) is cancelled too.
        with trio.move_on_after(0):
            await client.call("sleepy", seconds=100)
        await trio.testing.wait_all_tasks_blocked()
        stats = manager.statistics()
        assert stats["live"] == 0 and stats["created"] == stats["cancelled"]


async def test_expired_tasks_are_purged_and_stopped(autojump_clock: trio.abc.Clock) -> None:
    probe = Probe()
    async with serving(probe, ttl_ms=2000, sweep_interval=1.0) as (server, events):
        client = Client(server, TASKS_CAPS)
        done_id = (await client.call("must_task"))["taskId"]
        await wait_status(events, done_id, "completed")
        running_id = (await client.call("sleepy", seconds=100))["taskId"]
        await trio.sleep(1.5)
        assert (await client.get(done_id))["status"] == "completed"
        await trio.sleep(1.0)
        with pytest.raises(MCPError, match=r"expired|unknown task"):
            await client.get(running_id)
        await trio.sleep(1.0)
        assert server.task_manager is not None
        assert await server.task_manager.store.get(done_id) is None
        assert probe.cancelled == 1
        assert server.task_manager.statistics()["expired"] == 2


async def test_stopping_the_server_fails_running_tasks(autojump_clock: trio.abc.Clock) -> None:
    server = make_server(Probe())
    client = Client(server, TASKS_CAPS)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve_background)
        task_id = (await client.call("sleepy", seconds=100))["taskId"]
        nursery.cancel_scope.cancel()
    assert server.task_manager is not None and not server.task_manager.running
    record = await server.task_manager.store.get(task_id)
    assert record is not None and record.status == "failed"
    assert record.error is not None and "stopped" in record.error["message"]


class FlakyStore(MemoryTaskStore):
    """Fails the next ``create`` when told to."""

    fail = False

    async def create(self, record: TaskRecord) -> None:
        if self.fail:
            self.fail = False
            raise RuntimeError("store unreachable")
        await super().create(record)


async def test_a_failing_store_fails_only_that_call(autojump_clock: trio.abc.Clock) -> None:
    store = FlakyStore()
    async with serving(store=store) as (server, events):
        client = Client(server, TASKS_CAPS)
        store.fail = True
        with pytest.raises(RuntimeError, match="store unreachable"):
            await client.call("sleepy", seconds=1)
        task_id = (await client.call("sleepy", seconds=1))["taskId"]
        assert (await wait_status(events, task_id, "completed"))["status"] == "completed"


async def test_without_a_running_manager(autojump_clock: trio.abc.Clock) -> None:
    server = make_server(Probe())
    client = Client(server, TASKS_CAPS)
    inline = await client.call("sleepy", seconds=1)
    assert inline["resultType"] == "complete"
    with pytest.raises(InternalError, match="not running"):
        await client.call("must_task")
    with pytest.raises(RuntimeError, match="already enabled"):
        server.enable_tasks()


async def test_a_call_made_from_a_task_to_another_server_gets_its_task(
    autojump_clock: trio.abc.Clock,
) -> None:
    # In-process calls run in the caller's task and context: the task work of one server
    # must not pass for the work of another.
    async with serving() as (inner, inner_events):
        outer = Server("outer")
        outer.enable_tasks()
        got: dict[str, Any] = {}

        @outer.tool(task="required")
        async def relay() -> str:
            got["inner"] = await Client(inner, TASKS_CAPS).call("sleepy", seconds=5)
            return "relayed"

        async with trio.open_nursery() as nursery:
            await nursery.start(outer.serve_background)
            async with outer.change_bus.subscribe() as outer_events:
                created = await Client(outer, TASKS_CAPS).call("relay")
                assert created["resultType"] == "task"
                await wait_status(outer_events, created["taskId"], "completed")
            assert got["inner"]["resultType"] == "task"
            done = await wait_status(inner_events, got["inner"]["taskId"], "completed")
            assert done["result"]["content"] == [{"type": "text", "text": "slept 5"}]
            nursery.cancel_scope.cancel()


async def test_servers_without_tasks_do_not_know_the_methods() -> None:
    make_server(Probe())  # registers the methods process-wide
    plain = Server("plain")
    client = Client(plain, TASKS_CAPS)
    with pytest.raises(MCPError) as info:
        await client.get("x")
    assert info.value.code == -32601
    assert plain.capabilities().extensions is None


async def test_legacy_calls_run_inline() -> None:
    server = make_server(Probe())
    assert server.task_manager is not None
    scope = CallScope(
        server=server,
        era=Era.LEGACY,
        protocol_version="2025-11-25",
        client_info=None,
        client_capabilities=ClientCapabilities(extensions={TASKS_EXTENSION: {}}),
        log_level=None,
        outbound=Recorder(),
    )

    async def run() -> dict[str, Any]:
        raise AssertionError("not called by the hook")

    params = {"name": "must_task", "arguments": {}}
    assert (
        await server.task_manager.on_tool_call(scope, Request(1, "tools/call", params), params, run)
        is None
    )


def test_registration_checks_the_task_options() -> None:
    server = Server("checks")
    with pytest.raises(ValueError, match="task must be"):
        server.tool(task="always")(greet_fn)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="defer_task=True needs"):
        server.tool(defer_task=True)(greet_fn)
    with pytest.raises(ValueError, match="positive number"):
        server.enable_tasks(ttl_ms=0)


def greet_fn(name: str) -> str:
    return name


# --- status events for subscriptions/listen ---------------------------------------------------


def _scope(server: Server, caps: dict[str, Any]) -> CallScope:
    return CallScope(
        server=server,
        era=Era.MODERN,
        protocol_version="2026-07-28",
        client_info=None,
        client_capabilities=ClientCapabilities(**caps),
        log_level=None,
        outbound=Recorder(),
    )


def test_listen_task_ids() -> None:
    server = make_server(Probe())
    assert listen_task_ids(_scope(server, {"extensions": {TASKS_EXTENSION: {}}}), None) is None
    assert listen_task_ids(
        _scope(server, {"extensions": {TASKS_EXTENSION: {}}}), ["a", "b", "a"]
    ) == ["a", "b"]
    with pytest.raises(MCPError) as info:
        listen_task_ids(_scope(server, {}), ["a"])
    assert info.value.code == -32021
    with pytest.raises(InvalidParams, match="taskIds"):
        listen_task_ids(_scope(server, {"extensions": {TASKS_EXTENSION: {}}}), "a")
    assert listen_task_ids(_scope(Server("plain"), {}), ["a"]) is None


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            ChangeEvent(
                "task_status", task_id="a", data={"task": {"taskId": "a"}, "principal": "p"}
            ),
            True,
        ),
        (
            ChangeEvent(
                "task_status", task_id="b", data={"task": {"taskId": "b"}, "principal": "p"}
            ),
            False,
        ),
        (
            ChangeEvent(
                "task_status", task_id="a", data={"task": {"taskId": "a"}, "principal": "q"}
            ),
            False,
        ),
        (ChangeEvent("tools_list_changed"), False),
    ],
)
def test_task_notification(event: ChangeEvent, expected: bool) -> None:
    found = task_notification(event, ["a"], "p")
    assert (found == ("notifications/tasks", {"taskId": "a"})) is expected


async def test_every_change_is_published_in_order(autojump_clock: trio.abc.Clock) -> None:
    async with serving() as (server, events):
        client = Client(server, TASKS_CAPS)
        task_id = (await client.call("ask_twice"))["taskId"]
        seen: list[str] = []
        key = None
        with trio.fail_after(60):
            async for event in events:
                if event.task_id != task_id:
                    continue
                assert event.data is not None
                task = event.data["task"]
                seen.append(task["status"])
                if task["status"] == "input_required":
                    key = next(iter(task["inputRequests"]))
                    await client.request(
                        "tasks/update", taskId=task_id, inputResponses={key: {"action": "cancel"}}
                    )
                if task["status"] == "completed":
                    assert task == await _without_result_type(client.get(task_id))
                    break
        assert seen == [
            "working",
            "input_required",
            "working",
            "input_required",
            "working",
            "completed",
        ]


async def _without_result_type(pending: Any) -> dict[str, Any]:
    result = dict(await pending)
    del result["resultType"], result["_meta"]
    return result


# --- the conformance fixtures --------------------------------------------------------------------


async def test_the_conformance_fixtures(autojump_clock: trio.abc.Clock) -> None:
    server = Server("fixtures")
    register(server)
    client = Client(server, TASKS_CAPS)
    async with trio.open_nursery() as nursery, server.change_bus.subscribe() as events:
        await nursery.start(server.serve_background)
        task_id = (await client.call("multi_input"))["taskId"]
        parked = await wait_status(events, task_id, "input_required")
        first, second = parked["inputRequests"]
        answer_a = {first: {"action": "accept", "content": {"name": "A"}}}
        await client.request("tasks/update", taskId=task_id, inputResponses=answer_a)
        still = await client.get(task_id)
        assert still["status"] == "input_required" and list(still["inputRequests"]) == [second]
        answer_b = {second: {"action": "accept", "content": {"name": "B"}}}
        await client.request("tasks/update", taskId=task_id, inputResponses=answer_b)
        done = await wait_status(events, task_id, "completed", "failed")
        assert done["result"]["content"][0]["text"] == "Got A and B"

        round1 = await client.call("test_tool_with_task")
        [key] = round1["inputRequests"]
        round2 = await client.request(
            "tools/call",
            name="test_tool_with_task",
            arguments={},
            inputResponses={key: {"action": "accept", "content": {"name": "Alice"}}},
            requestState=round1["requestState"],
        )
        done = await wait_status(events, round2["taskId"], "completed", "failed")
        assert "Alice" in done["result"]["content"][0]["text"]

        deleting = (await client.call("confirm_delete", filename="a.txt"))["taskId"]
        parked = await wait_status(events, deleting, "input_required")
        [key] = parked["inputRequests"]
        confirm = {key: {"action": "accept", "content": {"confirm": True}}}
        await client.request("tasks/update", taskId=deleting, inputResponses=confirm)
        done = await wait_status(events, deleting, "completed", "failed")
        assert done["result"]["content"][0]["text"] == "Deleted a.txt"

        for tool, status in [("failing_job", "completed"), ("protocol_error_job", "failed")]:
            task_id = (await client.call(tool))["taskId"]
            assert (await wait_status(events, task_id, "completed", "failed"))["status"] == status
        nursery.cancel_scope.cancel()


async def test_enabling_tasks_changes_only_that_server(autojump_clock: trio.abc.Clock) -> None:
    """The tasks methods live in one server's dispatch table, not in one shared by all."""
    async with serving() as (server, _):
        plain_server = Server("no-tasks")
        assert server.methods.handler_for("tasks/get", Era.MODERN) is not None
        assert plain_server.methods.handler_for("tasks/get", Era.MODERN) is None
        other = Client(plain_server, TASKS_CAPS)
        for method in ("tasks/get", "tasks/cancel"):
            with pytest.raises(MCPError, match="unknown method") as info:
                await other.request(method, taskId="x")
            assert info.value.code == -32601
        with pytest.raises(MCPError) as info:
            await Client(server, TASKS_CAPS).get("no-such-task")
        assert info.value.code == -32602
