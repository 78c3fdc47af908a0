"""The protocol runtime: concurrency, cancellation, progress, failures, batches."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing

from mcptrio import ConnectionClosed, InternalError, InvalidParams, InvalidRequest, MCPError
from mcptrio._protocol.jsonrpc import ErrorResponse, Notification, Request, Response
from mcptrio._runtime.peer import Peer, open_peer
from mcptrio.testing import MemoryTransport, memory_transport_pair

PairFactory = Callable[[], tuple[MemoryTransport, MemoryTransport]]


@pytest.fixture(params=["direct", "queued"])
def make_pair(request: pytest.FixtureRequest) -> PairFactory:
    """Transport pairs with the direct hand-over between peers, and without it (a wire)."""
    return partial(memory_transport_pair, direct=request.param == "direct")


class Recorder:
    """A handler whose methods are driven by the test."""

    def __init__(self) -> None:
        self.notifications: list[Notification] = []
        self.cancelled: list[Any] = []
        self.started: dict[Any, trio.Event] = {}
        self.release: dict[Any, trio.Event] = {}

    async def handle_request(self, peer: Peer, request: Request) -> dict[str, Any]:
        params = request.params or {}
        if request.method == "echo":
            return {"echo": params}
        if request.method == "fail":
            raise InvalidParams("bad thing", {"why": "test"})
        if request.method == "crash":
            raise RuntimeError("boom")
        if request.method == "wait":
            key = params["key"]
            self.started.setdefault(key, trio.Event()).set()
            try:
                await self.release.setdefault(key, trio.Event()).wait()
            except trio.Cancelled:
                self.cancelled.append(key)
                raise
            return {"released": key}
        if request.method == "progress":
            token = params["_meta"]["progressToken"]
            for step in (1, 2, 3):
                await peer.notify(
                    "notifications/progress",
                    {"progressToken": token, "progress": step, "total": 3, "message": f"s{step}"},
                )
            return {}
        if request.method == "ask_back":
            answer = await peer.request("echo", {"from": "server"}, related_request_id=request.id)
            return {"answer": answer}
        raise MCPError(f"unknown {request.method}", code=-32601)

    async def handle_notification(self, peer: Peer, notification: Notification) -> None:
        self.notifications.append(notification)


async def test_request_response_and_errors(make_pair: PairFactory) -> None:
    a, b = make_pair()
    async with open_peer(a, Recorder(), name="a") as left, open_peer(b, Recorder(), name="b"):
        assert await left.request("echo", {"x": 1}) == {"echo": {"x": 1}}
        with pytest.raises(InvalidParams) as info:
            await left.request("fail")
        assert info.value.code == -32602
        assert info.value.data == {"why": "test"}
        with pytest.raises(InternalError, match="RuntimeError: boom"):
            await left.request("crash")
        # The connection still serves after errors.
        assert await left.request("echo") == {"echo": {}}


async def test_requests_run_concurrently_and_both_directions(make_pair: PairFactory) -> None:
    a, b = make_pair()
    server = Recorder()
    async with open_peer(a, Recorder()) as left, open_peer(b, server):
        results: dict[str, Any] = {}

        async def call(key: str) -> None:
            results[key] = await left.request("wait", {"key": key})

        async with trio.open_nursery() as nursery:
            nursery.start_soon(call, "one")
            nursery.start_soon(call, "two")
            # Both are in the handler at the same time: neither was serialized.
            await server.started.setdefault("one", trio.Event()).wait()
            await server.started.setdefault("two", trio.Event()).wait()
            server.release.setdefault("two", trio.Event()).set()
            server.release.setdefault("one", trio.Event()).set()
        assert results == {"one": {"released": "one"}, "two": {"released": "two"}}
        assert await left.request("ask_back") == {"answer": {"echo": {"from": "server"}}}


async def test_caller_cancellation_sends_notification_and_cancels_handler(
    make_pair: PairFactory,
) -> None:
    a, b = make_pair()
    server = Recorder()
    async with open_peer(a, Recorder()) as left, open_peer(b, server) as right:
        with trio.move_on_after(5) as scope:
            async with trio.open_nursery() as nursery:

                async def cancel_when_started() -> None:
                    await server.started.setdefault("k", trio.Event()).wait()
                    nursery.cancel_scope.cancel()

                nursery.start_soon(cancel_when_started)
                await left.request("wait", {"key": "k"})
        assert not scope.cancelled_caught
        with trio.fail_after(5):
            await right.wait_in_flight_done()
        assert server.cancelled == ["k"]
        assert right.statistics().cancelled_incoming == 1
        assert left.statistics().pending_outgoing == 0
        assert await left.request("echo") == {"echo": {}}


async def test_progress_is_delivered_in_order(make_pair: PairFactory) -> None:
    a, b = make_pair()
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with open_peer(a, Recorder()) as left, open_peer(b, Recorder()):
        await left.request("progress", on_progress=on_progress)
    assert seen == [(1.0, 3.0, "s1"), (2.0, 3.0, "s2"), (3.0, 3.0, "s3")]


async def test_pending_requests_fail_at_once_when_peer_dies(make_pair: PairFactory) -> None:
    a, b = make_pair()
    server = Recorder()
    async with open_peer(a, Recorder()) as left:
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                outcome: list[BaseException] = []

                async def call() -> None:
                    try:
                        await left.request("wait", {"key": "z"})
                    except ConnectionClosed as exc:
                        outcome.append(exc)

                async with open_peer(b, server):
                    nursery.start_soon(call)
                    await server.started.setdefault("z", trio.Event()).wait()
                # The server side is gone now.
        assert len(outcome) == 1
        assert "before answering request" in str(outcome[0])
        with pytest.raises(ConnectionClosed):
            await left.request("echo")


async def test_duplicate_in_flight_id_is_refused_and_original_survives(
    make_pair: PairFactory,
) -> None:
    a, b = make_pair()
    server = Recorder()
    async with open_peer(b, server):
        await a.send(Request(7, "wait", {"key": "d"}))
        await server.started.setdefault("d", trio.Event()).wait()
        await a.send(Request(7, "echo", {}))
        reply = await a.receive()
        assert isinstance(reply, ErrorResponse)
        assert reply.id == 7
        assert reply.code == InvalidRequest.default_code
        assert "already in use" in reply.message
        server.release.setdefault("d", trio.Event()).set()
        assert await a.receive() == Response(7, {"released": "d"})


async def test_too_many_in_flight_requests_are_refused_not_queued(make_pair: PairFactory) -> None:
    a, b = make_pair()
    server = Recorder()
    async with open_peer(b, server, max_in_flight=2) as right:
        for key in ("p", "q"):
            await a.send(Request(key, "wait", {"key": key}))
            await server.started.setdefault(key, trio.Event()).wait()
        await a.send(Request("r", "echo", {}))
        reply = await a.receive()
        assert isinstance(reply, ErrorResponse)
        assert reply.id == "r"
        assert "too many requests in flight" in reply.message
        assert right.statistics().refused_incoming == 1


async def test_cancelled_notification_for_unknown_id_is_ignored(make_pair: PairFactory) -> None:
    a, b = make_pair()
    server = Recorder()
    async with open_peer(b, server):
        await a.send(Notification("notifications/cancelled", {"requestId": 999}))
        await a.send(Request(1, "echo", {}))
        assert await a.receive() == Response(1, {"echo": {}})


async def test_batches_need_2025_03_26(make_pair: PairFactory) -> None:
    a, b = make_pair()
    async with open_peer(b, Recorder()) as right:
        await a.send_batch([Request(1, "echo", {}), Request(2, "echo", {"y": 2})])
        refused = await a.receive()
        assert isinstance(refused, ErrorResponse)
        assert refused.id is None
        assert "2025-03-26" in refused.message
        right.batches_allowed = True
        await a.send_batch([Request(1, "echo", {}), Request(2, "fail", {})])
        replies = await a.receive()
        assert isinstance(replies, list)
        by_id = {r.id: r for r in replies}  # type: ignore[union-attr]
        assert by_id[1] == Response(1, {"echo": {}})
        assert isinstance(by_id[2], ErrorResponse)


async def test_notifications_reach_the_handler_in_order(make_pair: PairFactory) -> None:
    a, b = make_pair()
    server = Recorder()
    async with open_peer(a, Recorder()) as left, open_peer(b, server):
        for i in range(5):
            await left.notify("notifications/custom", {"i": i})
        await left.request("echo")
    assert [n.params for n in server.notifications] == [{"i": i} for i in range(5)]


async def test_timeout_with_fail_after(
    make_pair: PairFactory, autojump_clock: trio.testing.MockClock
) -> None:
    a, b = make_pair()
    server = Recorder()
    async with open_peer(a, Recorder()) as left, open_peer(b, server) as right:
        with pytest.raises(trio.TooSlowError):
            with trio.fail_after(10):
                await left.request("wait", {"key": "slow"})
        # The handler was told: it is no longer in flight.
        with trio.fail_after(1):
            await right.wait_in_flight_done()
        assert server.cancelled == ["slow"]


class TaskRecorder(Recorder):
    """Also notes which task served each request."""

    def __init__(self) -> None:
        super().__init__()
        self.tasks: list[trio.lowlevel.Task] = []

    async def handle_request(self, peer: Peer, request: Request) -> dict[str, Any]:
        self.tasks.append(trio.lowlevel.current_task())
        return await super().handle_request(peer, request)


@pytest.mark.parametrize("direct", [True, False])
async def test_direct_requests_are_served_in_the_callers_task(direct: bool) -> None:
    a, b = memory_transport_pair(direct=direct)
    server = TaskRecorder()
    async with open_peer(a, Recorder()) as left, open_peer(b, server) as right:
        assert await left.request("echo", {"x": 1}) == {"echo": {"x": 1}}
        assert (server.tasks[0] is trio.lowlevel.current_task()) is direct
        assert right.statistics().requests_received == 1
        assert right.statistics().in_flight_incoming == 0


async def test_a_plain_send_of_a_request_never_waits_for_its_answer() -> None:
    a, b = memory_transport_pair()
    server = Recorder()
    async with open_peer(b, server):
        # Not a waiting caller (think of a long-lived subscription): sending returns at once.
        await a.send(Request(7, "wait", {"key": "k"}))
        await server.started.setdefault("k", trio.Event()).wait()
        server.release["k"].set()
        assert await a.receive() == Response(7, {"released": "k"})


class GatedRecorder(Recorder):
    """Handles notifications only once ``gate`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = trio.Event()

    async def handle_notification(self, peer: Peer, notification: Notification) -> None:
        await self.gate.wait()
        await super().handle_notification(peer, notification)


class Notifier(Recorder):
    async def handle_request(self, peer: Peer, request: Request) -> dict[str, Any]:
        if request.method == "notify_then_answer":
            await peer.notify("notifications/message", {"data": "first"})
            return {"answer": "second"}
        return await super().handle_request(peer, request)


async def test_an_answer_never_overtakes_what_was_sent_before_it() -> None:
    a, b = memory_transport_pair()
    client = GatedRecorder()
    async with open_peer(a, client) as left, open_peer(b, Notifier()):
        answers: list[dict[str, Any]] = []

        async def call() -> None:
            answers.append(await left.request("notify_then_answer"))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(call)
            await trio.testing.wait_all_tasks_blocked()
            # The notification waits for the client's reader, so the answer waits too.
            assert answers == [] and client.notifications == []
            client.gate.set()
        assert [n.params for n in client.notifications] == [{"data": "first"}]
        assert answers == [{"answer": "second"}]


class Fragile(Recorder):
    """A handler that fails on some notifications and returns an unencodable result."""

    async def handle_request(self, peer: Peer, request: Request) -> dict[str, Any]:
        if request.method == "unencodable":
            return {"value": {1, 2}}  # a set: not JSON
        return await super().handle_request(peer, request)

    async def handle_notification(self, peer: Peer, notification: Notification) -> None:
        if notification.method == "notifications/explode":
            raise KeyError("boom")
        await super().handle_notification(peer, notification)


def _deep(levels: int) -> Any:
    value: Any = 0
    for _ in range(levels):
        value = [value]
    return value


async def test_bad_notifications_are_dropped_and_the_connection_goes_on() -> None:
    a, b = memory_transport_pair(serialize=False, direct=False)
    server = Fragile()
    async with open_peer(b, server):
        await a.send(Request("slow", "wait", {"key": "k"}))
        for params in (
            {"requestId": [1, 2]},
            {"requestId": {"id": "slow"}},
            {"requestId": None},
            {"requestId": True},
        ):
            await a.send(Notification("notifications/cancelled", params))
        await a.send(Notification("notifications/progress", {"progressToken": {"t": 1}}))
        await a.send(Notification("notifications/progress", {"progressToken": [1]}))
        await a.send(Notification("notifications/explode"))
        await a.send(Notification("notifications/after"))
        await a.send(Request(1, "echo", {}))
        assert await a.receive() == Response(1, {"echo": {}})
        # None of those cancellations named the waiting request.
        server.release.setdefault("k", trio.Event()).set()
        assert await a.receive() == Response("slow", {"released": "k"})
        assert [n.method for n in server.notifications][-1] == "notifications/after"


async def test_progress_with_bad_values_is_ignored() -> None:
    a, b = memory_transport_pair(serialize=False, direct=False)
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with open_peer(a, Recorder()) as left, trio.open_nursery() as nursery:

        async def call() -> None:
            await left.request("work", on_progress=on_progress)

        nursery.start_soon(call)
        request = await b.receive()
        assert isinstance(request, Request) and request.params is not None
        token = request.params["_meta"]["progressToken"]
        for progress, total, message in (
            (10**400, None, None),
            ("half", None, None),
            (True, None, None),
            ([1], None, None),
            (1, 10**400, ["not", "text"]),
        ):
            params = {"progressToken": token, "progress": progress, "total": total}
            params["message"] = message
            await b.send(Notification("notifications/progress", params))
        await b.send(Response(request.id, {}))
    assert seen == [(1.0, None, None)]


async def test_params_nested_too_deep_are_invalid_params(make_pair: PairFactory) -> None:
    a, b = make_pair()
    async with open_peer(a, Recorder()) as left, open_peer(b, Recorder()):
        with pytest.raises(InvalidParams, match=r"params\.x\[0\]\[0\].* more than 100 levels"):
            await left.request("echo", {"x": _deep(101)})
        assert await left.request("echo", {"x": _deep(99)}) == {"echo": {"x": _deep(99)}}
    a, b = make_pair()
    async with open_peer(b, Recorder()) as right:
        right.batches_allowed = True
        await a.send_batch([Request(7, "echo", {"x": _deep(150)})])
        (reply,) = await a.receive()  # type: ignore[misc]
        assert isinstance(reply, ErrorResponse) and reply.code == -32602


async def test_a_batch_with_an_unencodable_result_answers_the_others(
    make_pair: PairFactory,
) -> None:
    a, b = make_pair()
    async with open_peer(b, Fragile()) as right:
        right.batches_allowed = True
        await a.send_batch([Request(1, "unencodable"), Request(2, "echo", {"y": 2})])
        replies = await a.receive()
        assert isinstance(replies, list)
        by_id = {r.id: r for r in replies}  # type: ignore[union-attr]
        assert by_id[2] == Response(2, {"echo": {"y": 2}})
        failed = by_id[1]
        assert isinstance(failed, ErrorResponse) and failed.code == -32603
        assert "could not be encoded" in failed.message
        # The connection still serves.
        await a.send(Request(3, "echo", {}))
        assert await a.receive() == Response(3, {"echo": {}})
