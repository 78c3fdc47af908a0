"""The Streamable HTTP client transport against scripted servers on real sockets.

Each scenario plays the server side with a small ASGI app on Hypercorn (127.0.0.1, port 0):
JSON and SSE replies, server requests on a POST stream, cut streams resumed with
``Last-Event-ID``, expired sessions, HTTP errors, the HTTP+SSE fallback and ``DELETE``.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import orjson
import pytest
import trio
import trio.lowlevel
import trio.testing
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from hypothesis import given, settings
from hypothesis import strategies as st

from mcptrio import ConfigError, HttpClientConfig, HttpConfig, load_config, open_client, serve_http
from mcptrio._client.http_transport import (
    HttpClientStatistics,
    _http_error_response,
    open_http_transport,
)
from mcptrio._protocol.errors import ConnectionClosed, MCPError
from mcptrio._protocol.jsonrpc import ErrorResponse, Notification, Request, Response
from mcptrio._protocol.sse import encode_event
from mcptrio._runtime.transport import Transport
from mcptrio.types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    LoggingMessageNotificationParams,
    TextContent,
)

VERSION = "2025-11-25"

# --------------------------------------------------------------------------- the server


@attrs.define
class Seen:
    """One HTTP request as the scripted server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def rpc(self) -> dict[str, Any]:
        parsed = self.json()
        assert isinstance(parsed, dict)
        return parsed

    @property
    def rpc_method(self) -> str | None:
        if self.method != "POST" or not self.body:
            return None
        method = self.rpc.get("method")
        return method if isinstance(method, str) else None


class Reply:
    """Writes one HTTP response through ASGI ``send``."""

    def __init__(self, send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        self._send = send

    async def start(self, status: int, headers: dict[str, str] | None = None) -> None:
        raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        await self._send({"type": "http.response.start", "status": status, "headers": raw})

    async def body(self, data: bytes, *, more: bool) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": more})

    async def json(
        self, obj: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        await self.start(status, {"content-type": "application/json", **(headers or {})})
        await self.body(orjson.dumps(obj), more=False)

    async def empty(self, status: int = 202, headers: dict[str, str] | None = None) -> None:
        await self.start(status, headers)
        await self.body(b"", more=False)

    async def text(self, status: int, text: str) -> None:
        await self.start(status, {"content-type": "text/plain"})
        await self.body(text.encode(), more=False)

    async def sse(self, headers: dict[str, str] | None = None) -> None:
        await self.start(200, {"content-type": "text/event-stream", **(headers or {})})

    async def event(
        self,
        message: dict[str, Any] | None = None,
        *,
        id: str | None = None,
        retry_ms: int | None = None,
        event: str | None = None,
        data: str | None = None,
    ) -> None:
        payload = orjson.dumps(message).decode() if message is not None else data
        await self.body(encode_event(payload, id=id, retry_ms=retry_ms, event=event), more=True)

    async def end(self) -> None:
        await self.body(b"", more=False)


Handler = Callable[[Seen, Reply], Awaitable[None]]


class ScriptedServer:
    """Runs ``handler`` for every request and records what arrived.

    A handler that returns before finishing its response cuts the connection there.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.seen: list[Seen] = []
        self.base = ""
        self._changed = trio.Event()

    @property
    def url(self) -> str:
        return self.base + "/mcp"

    def requests(self, method: str, rpc_method: str | None = None) -> list[Seen]:
        return [
            s
            for s in self.seen
            if s.method == method and (rpc_method is None or s.rpc_method == rpc_method)
        ]

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            await self._changed.wait()

    async def app(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"] + (
            f"?{scope['query_string'].decode()}" if scope["query_string"] else ""
        )
        seen = Seen(
            method=scope["method"],
            path=path,
            headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
            body=body,
            at=trio.current_time(),
        )
        self.seen.append(seen)
        self._changed.set()
        self._changed = trio.Event()
        await self.handler(seen, Reply(send))


@asynccontextmanager
async def scripted(handler: Handler) -> AsyncIterator[ScriptedServer]:
    """Serve ``handler``; the block fails (instead of hanging) after 10 seconds."""
    server = ScriptedServer(handler)
    config = HypercornConfig()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(serve, server.app, config)
        server.base = binds[0]
        with trio.fail_after(10):
            yield server
        nursery.cancel_scope.cancel()


def init_result(version: str = VERSION) -> dict[str, Any]:
    return {
        "protocolVersion": version,
        "capabilities": {"tools": {}, "logging": {}},
        "serverInfo": {"name": "scripted", "version": "0"},
    }


def result_of(seen: Seen, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": seen.rpc["id"], "result": result}


def tool_text(text: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": False}


async def basic(seen: Seen, reply: Reply, *, session: str | None = "s1") -> bool:
    """Answer the plumbing every scenario shares; False for anything else."""
    if seen.method == "GET" and "last-event-id" not in seen.headers:
        await reply.empty(405)
        return True
    if seen.method == "DELETE":
        await reply.empty(200)
        return True
    if seen.method != "POST":
        return False
    if seen.rpc_method == "initialize":
        headers = {"mcp-session-id": session} if session else {}
        await reply.json(result_of(seen, init_result()), headers=headers)
        return True
    if "id" not in seen.rpc or "method" not in seen.rpc:
        await reply.empty(202)  # notifications and responses
        return True
    if seen.rpc_method == "ping":
        await reply.json(result_of(seen, {}))
        return True
    return False


@pytest.fixture
def clock() -> trio.testing.MockClock:
    """Virtual time for the timed scenarios.

    These tests use real sockets, whose I/O takes real (if tiny) time; the clock jumps
    only after everything has been idle for a few milliseconds, so socket waits never look
    like expired timeouts while retry delays pass at once.
    """
    return trio.testing.MockClock(autojump_threshold=0.02)


# --------------------------------------------------------------------------- basics


async def test_json_replies_and_the_headers_that_go_with_them() -> None:
    async def handler(seen: Seen, reply: Reply) -> None:
        if await basic(seen, reply):
            return
        assert seen.rpc_method == "tools/call"
        await reply.json(result_of(seen, tool_text("hello")))

    async with scripted(handler) as server, open_http_transport(server.url) as transport:
        assert isinstance(transport, Transport)
        assert transport.mode is None
        async with open_client(transport) as client:
            result = await client.call_tool("greet", {})
            assert result.content == [TextContent(text="hello")]
            await server.wait_for(lambda: bool(server.requests("GET")))
        assert transport.mode == "streamable-http"
        assert transport.session_id == "s1"
        assert transport.protocol_version == VERSION

    (init,) = server.requests("POST", "initialize")
    assert "mcp-session-id" not in init.headers
    assert "mcp-protocol-version" not in init.headers
    (call,) = server.requests("POST", "tools/call")
    assert call.headers["mcp-session-id"] == "s1"
    assert call.headers["mcp-protocol-version"] == VERSION
    assert call.headers["accept"] == "application/json, text/event-stream"
    assert call.headers["content-type"] == "application/json"
    (initialized,) = server.requests("POST", "notifications/initialized")
    assert initialized.headers["mcp-session-id"] == "s1"
    (get,) = server.requests("GET")
    assert get.headers["accept"] == "text/event-stream"
    assert get.headers["mcp-session-id"] == "s1"
    assert get.at >= initialized.at
    stats = transport.statistics()
    assert isinstance(stats, HttpClientStatistics)
    assert stats.posts == 3  # initialize, notifications/initialized, tools/call
    assert stats.gets == 1
    assert stats.deletes == 1
    assert stats.requests_in_flight == 0
    assert stats.bytes_sent > 0 and stats.bytes_received > 0
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        stats.posts = 0  # type: ignore[misc]


async def test_sse_reply_delivers_notifications_before_the_response() -> None:
    async def handler(seen: Seen, reply: Reply) -> None:
        if await basic(seen, reply):
            return
        await reply.sse()
        log = {"level": "info", "data": "working"}
        await reply.event({"jsonrpc": "2.0", "method": "notifications/message", "params": log})
        await reply.event(result_of(seen, tool_text("done")))
        await reply.end()

    logs: list[LoggingMessageNotificationParams] = []

    async def on_log(params: LoggingMessageNotificationParams) -> None:
        logs.append(params)

    async with (
        scripted(handler) as server,
        open_http_transport(server.url) as transport,
        open_client(transport, on_log=on_log) as client,
    ):
        result = await client.call_tool("work", {})
        assert logs and logs[0].data == "working"
        assert result.content == [TextContent(text="done")]
        assert transport.statistics().sse_streams >= 1


async def test_server_request_on_a_post_stream_is_answered_by_a_post() -> None:
    answers: trio.MemorySendChannel[Seen]
    answers, answered = trio.open_memory_channel[Seen](1)

    async def handler(seen: Seen, reply: Reply) -> None:
        if seen.method == "POST" and "result" in seen.rpc:
            await reply.empty(202)
            await answers.send(seen)
            return
        if await basic(seen, reply):
            return
        await reply.sse()
        sampling = {"messages": [], "maxTokens": 5}
        await reply.event(
            {
                "jsonrpc": "2.0",
                "id": "srv-1",
                "method": "sampling/createMessage",
                "params": sampling,
            }
        )
        answer = await answered.receive()
        text = answer.rpc["result"]["content"]["text"]
        await reply.event(result_of(seen, tool_text(f"model said {text}")))
        await reply.end()

    async def sample(params: CreateMessageRequestParams) -> CreateMessageResult:
        return CreateMessageResult(
            role="assistant", content=TextContent(text="hi"), model="scripted-model"
        )

    async with (
        scripted(handler) as server,
        open_http_transport(server.url) as transport,
        open_client(transport, sampling_handler=sample) as client,
    ):
        result = await client.call_tool("ask", {})
        assert result.content == [TextContent(text="model said hi")]
    (response_post,) = [s for s in server.requests("POST") if "result" in s.rpc and "id" in s.rpc]
    posted = [s for s in server.requests("POST") if s.rpc.get("id") == "srv-1"]
    assert len(posted) == 1
    assert posted[0].headers["mcp-session-id"] == "s1"
    assert response_post is not None


async def test_get_stream_delivers_server_initiated_messages() -> None:
    async def handler(seen: Seen, reply: Reply) -> None:
        if seen.method == "GET":
            await reply.sse()
            await reply.event(
                {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}, id="g1"
            )
            await trio.sleep_forever()
        await basic(seen, reply)

    got = trio.Event()
    notes: list[Notification] = []

    async def on_notification(note: Notification) -> None:
        notes.append(note)
        got.set()

    async with (
        scripted(handler) as server,
        open_http_transport(server.url) as transport,
        open_client(transport, on_notification=on_notification),
    ):
        with trio.fail_after(5):
            await got.wait()
    assert notes[0].method == "notifications/tools/list_changed"


async def test_requests_run_concurrently() -> None:
    count = 5
    everyone_here = trio.Event()
    arrived = 0

    async def handler(seen: Seen, reply: Reply) -> None:
        nonlocal arrived
        if await basic(seen, reply):
            return
        arrived += 1
        if arrived == count:
            everyone_here.set()
        # Nobody is answered until every request is in: serialized POSTs would deadlock.
        await everyone_here.wait()
        await reply.json(result_of(seen, tool_text(seen.rpc["params"]["name"])))

    results: dict[int, str] = {}
    async with (
        scripted(handler) as server,
        open_http_transport(server.url) as transport,
        open_client(transport) as client,
    ):

        async def call(i: int) -> None:
            result = await client.call_tool(f"t{i}", {})
            content = result.content[0]
            assert isinstance(content, TextContent)
            results[i] = content.text

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                for i in range(count):
                    nursery.start_soon(call, i)
    assert results == {i: f"t{i}" for i in range(count)}


async def test_requests_in_flight_are_bounded() -> None:
    limit = 2
    in_flight = 0
    most = 0

    async def handler(seen: Seen, reply: Reply) -> None:
        nonlocal in_flight, most
        if await basic(seen, reply):
            return
        in_flight += 1
        most = max(most, in_flight)
        await trio.sleep(0.01)
        in_flight -= 1
        await reply.json(result_of(seen, tool_text("ok")))

    async with (
        scripted(handler) as server,
        open_http_transport(server.url, max_concurrent_requests=limit) as transport,
        open_client(transport) as client,
        trio.open_nursery() as nursery,
    ):
        for i in range(6):
            nursery.start_soon(client.call_tool, f"t{i}", {})
    assert most == limit


# --------------------------------------------------------------------------- resumption


@pytest.mark.parametrize("retry_ms", [500, None])
@pytest.mark.parametrize("cut", [True, False], ids=["cut", "clean-end"])
async def test_dropped_stream_is_resumed_after_the_retry_delay(
    clock: trio.testing.MockClock, retry_ms: int | None, cut: bool
) -> None:
    dropped_at: list[float] = []
    calls: list[Seen] = []

    async def handler(seen: Seen, reply: Reply) -> None:
        if seen.method == "GET" and "last-event-id" in seen.headers:
            await reply.sse()
            await reply.event(result_of(calls[0], tool_text("resumed")), id="e2")
            await reply.end()
            return
        if await basic(seen, reply):
            return
        calls.append(seen)
        await reply.sse()
        await reply.event(id="e1", retry_ms=retry_ms)  # the priming event
        await trio.sleep(0.05)
        dropped_at.append(trio.current_time())
        if not cut:
            await reply.end()

    async with (
        scripted(handler) as server,
        open_http_transport(server.url) as transport,
        open_client(transport) as client,
    ):
        result = await client.call_tool("slow", {})
        assert result.content == [TextContent(text="resumed")]
        assert transport.statistics().resumptions == 1
    (resume,) = [s for s in server.requests("GET") if "last-event-id" in s.headers]
    assert resume.headers["last-event-id"] == "e1"
    assert resume.headers["mcp-session-id"] == "s1"
    delay = resume.at - dropped_at[0]
    if retry_ms is None:
        assert 1.0 <= delay < 1.2  # the default when the server names none
    else:
        assert 0.45 <= delay <= 0.7  # the conformance window for `retry: 500`


async def test_resumption_continues_from_the_latest_event_id(clock: trio.testing.MockClock) -> None:
    calls: list[Seen] = []

    async def handler(seen: Seen, reply: Reply) -> None:
        last = seen.headers.get("last-event-id")
        if seen.method == "GET" and last is not None:
            await reply.sse()
            if last == "e1":
                progress = {"progressToken": "x", "progress": 1}
                await reply.event(
                    {"jsonrpc": "2.0", "method": "notifications/progress", "params": progress},
                    id="e2",
                )
                return  # cut again
            await reply.event(result_of(calls[0], tool_text(f"after {last}")), id="e3")
            await reply.end()
            return
        if await basic(seen, reply):
            return
        calls.append(seen)
        await reply.sse()
        await reply.event(id="e1", retry_ms=100)

    async with (
        scripted(handler) as server,
        open_http_transport(server.url) as transport,
        open_client(transport) as client,
    ):
        result = await client.call_tool("slow", {})
        assert result.content == [TextContent(text="after e2")]
        assert transport.statistics().resumptions == 2


async def test_resumption_gives_up_after_its_attempts(clock: trio.testing.MockClock) -> None:
    dropped_at: list[float] = []

    async def handler(seen: Seen, reply: Reply) -> None:
        if seen.method == "GET" and "last-event-id" in seen.headers:
            await reply.text(503, "busy restarting")
            return
        if await basic(seen, reply):
            return
        await reply.sse()
        await reply.event(id="e1", retry_ms=200)
        dropped_at.append(trio.current_time())

    budget = HttpClientConfig(resume_attempts=3, resume_window=60)
    async with (
        scripted(handler) as server,
        open_http_transport(server.url, config=budget) as transport,
        open_client(transport) as client,
    ):
        with pytest.raises(MCPError) as info:
            await client.call_tool("slow", {})
        assert info.value.code == -32000
        message = info.value.message
        assert "could not be resumed within 3 attempts / 60 s (3 made in " in message
        assert message.endswith(
            "the server's last word: HTTP 503 Service Unavailable: busy restarting"
        )
    resumes = [s.at - dropped_at[0] for s in server.requests("GET") if "last-event-id" in s.headers]
    # The server's retry hint, then twice as long each time (resume_backoff).
    assert resumes == pytest.approx([0.2, 0.6, 1.4], abs=0.1)


async def test_resumption_gives_up_when_its_window_is_over(
    clock: trio.testing.MockClock,
) -> None:
    dropped_at: list[float] = []

    async def handler(seen: Seen, reply: Reply) -> None:
        if seen.method == "GET" and "last-event-id" in seen.headers:
            await reply.text(502, "")
            return
        if await basic(seen, reply):
            return
        await reply.sse()
        await reply.event(id="e1")  # no retry hint: resume_delay applies
        dropped_at.append(trio.current_time())

    budget = HttpClientConfig(resume_attempts=100, resume_delay=1, resume_window=3.5)
    async with (
        scripted(handler) as server,
        open_http_transport(server.url, config=budget) as transport,
        open_client(transport) as client,
    ):
        with pytest.raises(MCPError) as info:
            await client.call_tool("slow", {})
        failed_at = trio.current_time()
        assert (
            "could not be resumed within 100 attempts / 3.5 s (2 made in 3.5 s;"
            in info.value.message
        )
        assert info.value.message.endswith("last word: HTTP 502 Bad Gateway")
    resumes = [s.at - dropped_at[0] for s in server.requests("GET") if "last-event-id" in s.headers]
    # After 1 s, then 2 s more; the next wait (4 s) would end after the window.
    assert resumes == pytest.approx([1.0, 3.0], abs=0.1)
    assert failed_at - dropped_at[0] == pytest.approx(3.5, abs=0.1)


async def test_a_resuming_get_left_unanswered_ends_with_the_window(
    clock: trio.testing.MockClock,
) -> None:
    dropped_at: list[float] = []

    async def handler(seen: Seen, reply: Reply) -> None:
        if seen.method == "GET" and "last-event-id" in seen.headers:
            await trio.sleep_forever()  # accepted, never answered
        if await basic(seen, reply):
            return
        await reply.sse()
        await reply.event(id="e1", retry_ms=1000)
        dropped_at.append(trio.current_time())

    budget = HttpClientConfig(resume_window=4)
    async with (
        scripted(handler) as server,
        open_http_transport(server.url, config=budget) as transport,
        open_client(transport) as client,
    ):
        with pytest.raises(MCPError) as info:
            await client.call_tool("slow", {})
        failed_at = trio.current_time()
        assert "(1 made in 4.0 s;" in info.value.message
        assert info.value.message.endswith(
            "last word: no response to the resuming GET before the window ended"
        )
    assert failed_at - dropped_at[0] == pytest.approx(4.0, abs=0.1)
    assert len([s for s in server.requests("GET") if "last-event-id" in s.headers]) == 1


async def test_an_event_renews_the_resumption_budget(clock: trio.testing.MockClock) -> None:
    calls: list[Seen] = []

    async def handler(seen: Seen, reply: Reply) -> None:
        last = seen.headers.get("last-event-id")
        if seen.method == "GET" and last is not None:
            step = int(last.removeprefix("e"))
            await reply.sse()
            if step < 4:  # each resumption brings one event, then drops again
                note = {"jsonrpc": "2.0", "method": "notifications/message", "params": {}}
                await reply.event(note, id=f"e{step + 1}")
                return
            await reply.event(result_of(calls[0], tool_text("done")), id="e5")
            await reply.end()
            return
        if await basic(seen, reply):
            return
        calls.append(seen)
        await reply.sse()
        await reply.event(id="e1", retry_ms=1000)

    # Four drops in all, but never two attempts in a row without a new event.
    budget = HttpClientConfig(resume_attempts=1, resume_window=1.5)
    async with (
        scripted(handler) as server,
        open_http_transport(server.url, config=budget) as transport,
        open_client(transport) as client,
    ):
        result = await client.call_tool("slow", {})
        assert result.content == [TextContent(text="done")]
        assert transport.statistics().resumptions == 4


@given(
    attempt=st.integers(min_value=0, max_value=60),
    retry_ms=st.none() | st.integers(min_value=0, max_value=60_000),
    delay=st.floats(min_value=0, max_value=30),
    backoff=st.floats(min_value=1, max_value=10),
    max_delay=st.floats(min_value=0, max_value=60),
)
def test_resume_waits_grow_from_the_hint_up_to_the_cap(
    attempt: int, retry_ms: int | None, delay: float, backoff: float, max_delay: float
) -> None:
    budget = HttpClientConfig(
        resume_delay=delay, resume_backoff=backoff, resume_max_delay=max_delay
    )
    base = delay if retry_ms is None else retry_ms / 1000
    wait = budget.resume_wait(attempt, retry_ms)
    following = budget.resume_wait(attempt + 1, retry_ms)
    assert budget.resume_wait(0, retry_ms) == min(base, max(max_delay, base))
    assert wait <= following  # never shorter than the wait before
    assert wait <= max(max_delay, base)  # capped, but a server's own hint is honoured


@pytest.mark.parametrize(
    "field, value",
    [
        ("resume_attempts", -1),
        ("resume_delay", -0.5),
        ("resume_backoff", 0.5),
        ("resume_max_delay", float("nan")),
        ("resume_window", 0),
    ],
)
def test_client_config_is_checked_when_created(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=f"HttpClientConfig.{field}"):
        HttpClientConfig(**{field: value})


def test_client_config_loads_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "client.toml"
    path.write_text("resume_attempts = 2\nresume_window = 30\n", encoding="utf-8")
    loaded = load_config(HttpClientConfig, path=path, env={})
    assert loaded == HttpClientConfig(resume_attempts=2, resume_window=30.0)


@asynccontextmanager
async def vanishing_server(reply: bytes) -> AsyncIterator[str]:
    """A server that takes one request, stops listening, then sends ``reply`` and hangs up:
    every later connection is refused, as when a server process is gone."""
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]

    async def serve_once() -> None:
        stream = await listener.accept()
        await listener.aclose()
        received = b""
        while b"\r\n\r\n" not in received:
            received += await stream.receive_some()
        await stream.send_all(reply)
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_once)
        yield f"http://127.0.0.1:{port}/mcp"
        nursery.cancel_scope.cancel()


SSE_THEN_GONE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
    b"id: e1\nretry: 1000\ndata:\n\n"
)


@pytest.mark.parametrize("answer", ["sse", "json"])
async def test_a_pending_call_fails_clearly_when_the_server_is_gone(
    clock: trio.testing.MockClock, answer: str
) -> None:
    reply = SSE_THEN_GONE if answer == "sse" else b""  # a JSON answer never comes
    async with vanishing_server(reply) as url, open_http_transport(url) as transport:
        sent_at = trio.current_time()
        await transport.send(Request(7, "tools/call", {"name": "slow", "arguments": {}}))
        with trio.fail_after(60):
            failure = await transport.receive()
        waited = trio.current_time() - sent_at
    assert isinstance(failure, ErrorResponse) and failure.id == 7
    assert failure.code == -32000
    if answer == "sse":
        # Resumed with the default budget: after 1 s (the server's hint), 2 s and 4 s; the
        # next wait (5 s) would end after the 10 s window, which is where the call fails.
        assert waited == pytest.approx(HttpClientConfig().resume_window, abs=0.2)
        assert "the event stream of the tools/call request" in failure.message
        assert "could not be resumed within 5 attempts / 10 s (3 made in 10.0 s;" in failure.message
        assert "the server's last word: ConnectError" in failure.message
    else:
        # Nothing to resume from: no event stream, no event id.
        assert waited < 1
        assert failure.message.startswith("the connection broke before the server answered")
        assert "only an event stream with an event id can be resumed" in failure.message


async def test_stream_cut_without_an_event_id_fails_at_once() -> None:
    async def handler(seen: Seen, reply: Reply) -> None:
        if await basic(seen, reply):
            return
        await reply.sse()
        await reply.event({"jsonrpc": "2.0", "method": "notifications/message", "params": {}})

    async with (
        scripted(handler) as server,
        open_http_transport(server.url) as transport,
        open_client(transport) as client,
    ):
        with trio.fail_after(5), pytest.raises(MCPError, match="no event id to resume"):
            await client.call_tool("slow", {})
    assert not [s for s in server.requests("GET") if "last-event-id" in s.headers]


# --------------------------------------------------------------------------- sessions


class ExpiringServer:
    """Sessions s1, s2, ...; a doomed session ends at its first ``trigger`` message (a
    tool call unless told), and every request on an ended session gets 404."""

    def __init__(
        self, doomed: set[str], trigger: str = "tools/call", refuse_reinitialize: int = 0
    ) -> None:
        self.current = 0
        self.doomed = doomed
        self.trigger = trigger
        self.refuse_reinitialize = refuse_reinitialize
        self.expired: set[str] = set()

    async def __call__(self, seen: Seen, reply: Reply) -> None:
        session = seen.headers.get("mcp-session-id")
        if session in self.expired:
            await reply.text(404, "Session not found")
            return
        if seen.method == "POST" and seen.rpc_method == "initialize":
            if self.current and self.refuse_reinitialize:
                self.refuse_reinitialize -= 1
                await reply.text(503, "try later")
                return
            self.current += 1
            await basic(seen, reply, session=f"s{self.current}")
            return
        if session in self.doomed and seen.rpc_method == self.trigger:
            self.expired.add(session)
            await reply.text(404, "Session not found")
            return
        if await basic(seen, reply):
            return
        await reply.json(result_of(seen, tool_text(f"on {session}")))


async def test_404_on_a_notification_reinitializes_and_resends_it() -> None:
    script = ExpiringServer(doomed={"s1"}, trigger="notifications/roots/list_changed")
    async with (
        scripted(script) as server,
        open_http_transport(server.url) as transport,
        open_client(transport, roots=[]) as client,
    ):
        await client.notify_roots_changed()
        assert transport.session_id == "s2"
        sent = server.requests("POST", "notifications/roots/list_changed")
        assert [s.headers["mcp-session-id"] for s in sent] == ["s1", "s2"]
        # A second expiry is handled like the first.
        script.expired.add("s2")
        content = (await client.call_tool("x", {})).content[0]
        assert content == TextContent(text="on s3")
        assert transport.statistics().reinitializations == 2


async def test_404_reinitializes_and_resends_the_request() -> None:
    expired: list[str] = []

    async def on_expired(session: str) -> None:
        expired.append(session)

    script = ExpiringServer(doomed={"s1"})
    async with (
        scripted(script) as server,
        open_http_transport(server.url, on_session_expired=on_expired) as transport,
        open_client(transport) as client,
    ):
        old_event = transport.session_expired
        results: list[str] = []

        async def call(name: str) -> None:
            content = (await client.call_tool(name, {})).content[0]
            assert isinstance(content, TextContent)
            results.append(content.text)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(call, "a")
            nursery.start_soon(call, "b")
        assert sorted(results) == ["on s2", "on s2"]
        assert old_event.is_set()
        assert not transport.session_expired.is_set()
        assert transport.session_id == "s2"
        assert transport.statistics().reinitializations == 1
    assert expired == ["s1"]
    inits = server.requests("POST", "initialize")
    assert len(inits) == 2  # the client's, and one shared re-initialization
    assert inits[1].rpc["id"] != inits[0].rpc["id"]
    assert inits[1].rpc["params"] == inits[0].rpc["params"]
    assert "mcp-session-id" not in inits[1].headers
    initialized = server.requests("POST", "notifications/initialized")
    assert [s.headers["mcp-session-id"] for s in initialized] == ["s1", "s2"]
    calls = server.requests("POST", "tools/call")
    resent = [s for s in calls if s.headers["mcp-session-id"] == "s2"]
    first = [s for s in calls if s.headers["mcp-session-id"] == "s1"]
    assert sorted(s.rpc["id"] for s in resent) == sorted(s.rpc["id"] for s in first)
    # The GET stream was reopened on the new session.
    assert any(s.headers.get("mcp-session-id") == "s2" for s in server.requests("GET"))


async def test_404_with_reinitialization_turned_off_fails_clearly() -> None:
    async with (
        scripted(ExpiringServer(doomed={"s1"})) as server,
        open_http_transport(server.url, reinitialize=False) as transport,
        open_client(transport) as client,
    ):
        with trio.fail_after(5), pytest.raises(MCPError) as info:
            await client.call_tool("a", {})
        assert info.value.code == -32000
        assert "HTTP 404" in info.value.message
        assert "turned off" in info.value.message
        assert transport.session_expired.is_set()
        assert transport.session_id is None
        with pytest.raises(ConnectionClosed, match="turned off"):
            await client.ping()
    assert len(server.requests("POST", "initialize")) == 1


async def test_failed_reinitialization_is_retried_by_the_next_request() -> None:
    script = ExpiringServer(doomed={"s1"}, refuse_reinitialize=1)
    async with (
        scripted(script) as server,
        open_http_transport(server.url) as transport,
        open_client(transport) as client,
    ):
        with pytest.raises(MCPError) as info:
            await client.call_tool("a", {})
        assert info.value.code == -32000
        assert "HTTP 503" in info.value.message and "try later" in info.value.message
        assert transport.session_id is None
        content = (await client.call_tool("b", {})).content[0]
        assert content == TextContent(text="on s2")
    assert len(server.requests("POST", "initialize")) == 3


async def test_delete_ends_the_session_on_close() -> None:
    async with scripted(basic) as server:
        async with open_http_transport(server.url) as transport, open_client(transport) as client:
            await client.ping()
        (delete,) = server.requests("DELETE")
        assert delete.headers["mcp-session-id"] == "s1"
        assert delete.headers["mcp-protocol-version"] == VERSION

        async with (
            open_http_transport(server.url, terminate_on_close=False) as transport,
            open_client(transport) as client,
        ):
            await client.ping()
        assert len(server.requests("DELETE")) == 1


async def test_no_session_means_no_session_header_and_no_delete() -> None:
    async def handler(seen: Seen, reply: Reply) -> None:
        await basic(seen, reply, session=None)

    async with scripted(handler) as server:
        async with open_http_transport(server.url) as transport, open_client(transport) as client:
            await client.ping()
        assert transport.session_id is None
        assert not server.requests("DELETE")
        assert all("mcp-session-id" not in s.headers for s in server.seen)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "content_type", "body", "code", "fragment"),
    [
        (500, "text/plain", b"boom", -32603, "HTTP 500 Internal Server Error"),
        (503, "text/plain", b"", -32603, "HTTP 503"),
        (401, "text/plain", b"who are you", -32600, "who are you"),
        (
            400,
            "application/json",
            b'{"jsonrpc":"2.0","id":null,"error":{"code":-32602,"message":"bad name"}}',
            -32602,
            "bad name",
        ),
        (200, "application/json", b"{not json", -32000, "not a JSON-RPC message"),
        (202, "text/plain", b"", -32000, "sent no response"),
        (200, "application/json", b'{"jsonrpc":"2.0","id":999,"result":{}}', -32000, "not answer"),
    ],
)
async def test_http_errors_become_error_responses(
    status: int, content_type: str, body: bytes, code: int, fragment: str
) -> None:
    async def handler(seen: Seen, reply: Reply) -> None:
        if await basic(seen, reply):
            return
        await reply.start(status, {"content-type": content_type})
        await reply.body(body, more=False)

    async with (
        scripted(handler) as server,
        open_http_transport(server.url) as transport,
        open_client(transport) as client,
    ):
        with trio.fail_after(5), pytest.raises(MCPError) as info:
            await client.call_tool("x", {})
        assert info.value.code == code
        assert fragment in info.value.message
        # The connection is still good for the next request.
        await client.ping()


async def test_unreachable_server_fails_the_handshake_promptly() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/mcp"
    async with open_http_transport(url) as transport:
        with trio.fail_after(5), pytest.raises(MCPError) as info:
            async with open_client(transport):
                pass  # pragma: no cover
        assert info.value.code == -32000
        assert "could not send the initialize request" in info.value.message
    async with open_http_transport(url) as transport:
        with pytest.raises(trio.BrokenResourceError, match="could not send"):
            await transport.send(Notification("notifications/initialized"))


async def test_cancelled_request_stops_reading_its_stream() -> None:
    opened = trio.Event()

    async def handler(seen: Seen, reply: Reply) -> None:
        if await basic(seen, reply):
            return
        await reply.sse()
        await reply.event(id="e1")
        opened.set()
        await trio.sleep_forever()

    async with (
        scripted(handler) as server,
        open_http_transport(server.url) as transport,
        open_client(transport) as client,
    ):
        async with trio.open_nursery() as nursery:

            async def call() -> None:
                await client.call_tool("forever", {})

            nursery.start_soon(call)
            await opened.wait()
            nursery.cancel_scope.cancel()
        await server.wait_for(lambda: bool(server.requests("POST", "notifications/cancelled")))
        await trio.testing.wait_all_tasks_blocked(0.01)
        assert transport.statistics().requests_in_flight == 0


async def test_closed_transport_refuses_to_send() -> None:
    async with scripted(basic) as server, open_http_transport(server.url) as transport:
        await transport.aclose()
        await transport.aclose()  # idempotent
        with pytest.raises(trio.ClosedResourceError):
            await transport.send(Request(1, "ping"))
        with pytest.raises(trio.EndOfChannel):
            await transport.receive()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_message_bytes": 0},
        {"max_buffered_messages": 0},
        {"max_concurrent_requests": 0},
    ],
)
async def test_bad_arguments_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        async with open_http_transport("http://127.0.0.1:1/mcp", **kwargs):
            pass  # pragma: no cover


async def test_config_must_be_a_client_config() -> None:
    with pytest.raises(TypeError, match="config must be an HttpClientConfig"):
        async with open_http_transport("http://127.0.0.1:1/mcp", config=HttpConfig()):  # type: ignore[arg-type]
            pass  # pragma: no cover


async def test_non_http_url_is_refused() -> None:
    with pytest.raises(ValueError, match="http or https"):
        async with open_http_transport("ftp://example.com/mcp"):
            pass  # pragma: no cover


async def test_oversized_event_fails_the_request() -> None:
    async def handler(seen: Seen, reply: Reply) -> None:
        if await basic(seen, reply):
            return
        await reply.sse()
        await reply.event(result_of(seen, tool_text("x" * 5000)))
        await reply.end()

    async with (
        scripted(handler) as server,
        open_http_transport(server.url, max_message_bytes=2000) as transport,
        open_client(transport) as client,
    ):
        with pytest.raises(MCPError, match="larger than 2000 bytes"):
            await client.call_tool("big", {})


# --------------------------------------------------------------------------- HTTP+SSE


class LegacySseServer:
    """The 2024-11-05 HTTP+SSE shape: GET /mcp streams, POST /messages?session_id=abc."""

    def __init__(self) -> None:
        self.out_send, self.out_receive = trio.open_memory_channel[dict[str, Any]](16)

    async def __call__(self, seen: Seen, reply: Reply) -> None:
        if seen.path == "/mcp" and seen.method == "POST":
            await reply.empty(405)
        elif seen.path == "/mcp" and seen.method == "GET":
            await reply.sse()
            await reply.event(event="endpoint", data="/messages?session_id=abc")
            async for message in self.out_receive:
                await reply.event(message, event="message")
        elif seen.path == "/messages?session_id=abc" and seen.method == "POST":
            await reply.empty(202)
            rpc = seen.rpc
            if rpc.get("method") == "initialize":
                await self.out_send.send(result_of(seen, init_result("2024-11-05")))
            elif rpc.get("method") == "ping":
                await self.out_send.send(result_of(seen, {}))
        else:
            await reply.empty(404)


async def test_falls_back_to_http_sse() -> None:
    async with scripted(LegacySseServer()) as server:
        async with (
            open_http_transport(server.url) as transport,
            open_client(transport, protocol_version="2024-11-05") as client,
        ):
            await client.ping()
            assert transport.mode == "sse"
            assert client.protocol_version == "2024-11-05"
        posts = [s for s in server.requests("POST") if s.path.startswith("/messages")]
        assert [s.rpc_method for s in posts] == ["initialize", "notifications/initialized", "ping"]
        assert all("mcp-session-id" not in s.headers for s in posts)
        assert not server.requests("DELETE")


async def test_fallback_that_finds_no_sse_endpoint_reports_both() -> None:
    async def handler(seen: Seen, reply: Reply) -> None:
        await reply.text(404, "no such thing")

    async with scripted(handler) as server, open_http_transport(server.url) as transport:
        with trio.fail_after(5), pytest.raises(MCPError) as info:
            async with open_client(transport):
                pass  # pragma: no cover
        assert "HTTP 404" in info.value.message
        assert "HTTP+SSE" in info.value.message
        assert transport.mode == "streamable-http"


async def test_json_rpc_error_on_the_first_post_is_not_a_fallback() -> None:
    async def handler(seen: Seen, reply: Reply) -> None:
        error = {"code": -32600, "message": "unsupported protocol version"}
        await reply.json({"jsonrpc": "2.0", "id": None, "error": error}, status=400)

    async with scripted(handler) as server:
        async with open_http_transport(server.url) as transport:
            with pytest.raises(MCPError, match="unsupported protocol version"):
                async with open_client(transport):
                    pass  # pragma: no cover
            assert transport.mode == "streamable-http"
        assert not server.requests("GET")


# --------------------------------------------------------------------------- properties


@given(
    status=st.integers(min_value=300, max_value=599),
    body=st.one_of(
        st.binary(max_size=200),
        st.builds(
            lambda code, message: orjson.dumps(
                {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
            ),
            st.integers(min_value=-(2**31), max_value=2**31),
            st.text(max_size=50),
        ),
    ),
    request_id=st.one_of(st.integers(), st.text(max_size=10)),
)
def test_http_error_mapping_keeps_the_request_id(status: int, body: bytes, request_id: Any) -> None:
    response = httpx.Response(status, request=httpx.Request("POST", "http://h/mcp"))
    error = _http_error_response(request_id, "the x request", response, body)
    assert isinstance(error, ErrorResponse)
    assert error.id == request_id
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        assert error.code == parsed["error"]["code"]
        assert error.message == parsed["error"]["message"]
    else:
        assert error.code == (-32600 if 400 <= status < 500 else -32603)
        assert f"HTTP {status}" in error.message
        assert error.data == {"httpStatus": status}


@settings(max_examples=15, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=400), max_size=8))
async def test_sse_reply_split_anywhere_gives_the_same_messages(cuts: list[int]) -> None:
    async def handler(seen: Seen, reply: Reply) -> None:
        if await basic(seen, reply):
            return
        stream = b"".join(
            [
                b": keep-alive\r\n\r\n",
                encode_event("", id="p0", retry_ms=100),
                encode_event(
                    orjson.dumps(
                        {"jsonrpc": "2.0", "method": "notifications/message", "params": {"n": 1}}
                    ),
                    id="p1",
                ).replace(b"\n", b"\r\n"),
                encode_event(orjson.dumps(result_of(seen, tool_text("é" * 50))), id="p2"),
            ]
        )
        await reply.sse()
        at = 0
        for cut in sorted(set(cuts)):
            if at < cut < len(stream):
                await reply.body(stream[at:cut], more=True)
                at = cut
        await reply.body(stream[at:], more=False)

    async with scripted(handler) as server, open_http_transport(server.url) as transport:
        await transport.send(Request(7, "tools/call", {"name": "x"}))
        note = await transport.receive()
        answer = await transport.receive()
        assert isinstance(note, Notification) and note.params == {"n": 1}
        assert isinstance(answer, Response) and answer.id == 7
        assert answer.result == tool_text("é" * 50)


# --------------------------------------------------------------------------- end to end


@asynccontextmanager
async def everything_server(deadline: float = 10, **config: Any) -> AsyncIterator[str]:
    """The conformance example server on ``serve_http``; yields its MCP endpoint URL."""
    from examples.everything import server

    async with trio.open_nursery() as nursery:
        info = await nursery.start(serve_http, server, HttpConfig(port=0, **config))
        with trio.fail_after(deadline):
            yield info.url
        nursery.cancel_scope.cancel()


async def answer_with_42(params: CreateMessageRequestParams) -> CreateMessageResult:
    return CreateMessageResult(role="assistant", content=TextContent(text="42"), model="m")


async def test_end_to_end_against_serve_http() -> None:
    progress: list[float] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(done)

    async with (
        everything_server() as url,
        open_http_transport(url) as transport,
        open_client(transport, sampling_handler=answer_with_42) as client,
    ):
        assert transport.mode == "streamable-http"
        assert transport.session_id is not None
        simple = await client.call_tool("test_simple_text", {})
        assert simple.content[0] == TextContent(text="This is a simple text response for testing.")
        sampled = await client.call_tool("test_sampling", {"prompt": "the answer?"})
        assert sampled.content == [TextContent(text="LLM response: 42")]
        await client.call_tool("test_tool_with_progress", {}, on_progress=on_progress)
        assert progress == [0, 50, 100]


async def test_end_to_end_resumes_a_stream_the_server_closed(
    clock: trio.testing.MockClock,
) -> None:
    async with (
        everything_server(sse_retry_ms=500) as url,
        open_http_transport(url) as transport,
        open_client(transport) as client,
    ):
        result = await client.call_tool("test_reconnection", {})
        content = result.content[0]
        assert isinstance(content, TextContent) and "reconnected" in content.text
        assert transport.statistics().resumptions >= 1


async def test_end_to_end_reinitializes_an_expired_session(
    clock: trio.testing.MockClock,
) -> None:
    async with (
        everything_server(deadline=120, session_idle_timeout=5.0) as url,
        open_http_transport(url) as transport,
        open_client(transport) as client,
    ):
        first = transport.session_id
        await trio.sleep(60)
        result = await client.call_tool("test_simple_text", {})
        assert not result.is_error
        assert transport.session_id not in (None, first)
        assert transport.statistics().reinitializations == 1


async def test_end_to_end_over_the_deprecated_http_sse_transport() -> None:
    async with everything_server() as url:
        sse_url = url.rsplit("/", 1)[0] + "/sse"
        async with (
            open_http_transport(sse_url) as transport,
            open_client(
                transport, sampling_handler=answer_with_42, protocol_version="2024-11-05"
            ) as client,
        ):
            assert transport.mode == "sse"
            sampled = await client.call_tool("test_sampling", {"prompt": "the answer?"})
            assert sampled.content == [TextContent(text="LLM response: 42")]


async def test_the_transport_tasks_run_in_a_nursery_its_opener_owns() -> None:
    """No nursery is borrowed from another task, and closing the transport cancels its
    tasks (a request in flight here) but not the code inside ``async with``."""
    arrived, release = trio.Event(), trio.Event()

    async def handler(seen: Seen, reply: Reply) -> None:
        if await basic(seen, reply):
            return
        arrived.set()
        await release.wait()
        await reply.json(result_of(seen, tool_text("hello")))

    this_task = trio.lowlevel.current_task()
    async with scripted(handler) as server:
        before = set(this_task.child_nurseries)
        async with open_http_transport(server.url) as transport:
            # The transport's nursery was opened by this very task, in open_http_transport.
            (owned,) = set(this_task.child_nurseries) - before

            async def call_until_closed() -> None:
                with pytest.raises(ConnectionClosed):
                    await client.call_tool("greet", {})

            async with open_client(transport) as client, trio.open_nursery() as nursery:
                nursery.start_soon(call_until_closed)
                await arrived.wait()
                names = [task.name for task in owned.child_tasks]
                assert any("_run_request" in name for name in names), names
                await transport.aclose()
                release.set()
            # The body goes on after the transport closed; the transport's tasks are gone.
            await trio.testing.wait_all_tasks_blocked()
            assert not owned.child_tasks
