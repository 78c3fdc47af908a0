"""The interceptor chain: its semantics on every message of a connection, on both sides."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from mcptrio import (
    Action,
    Block,
    Client,
    Continue,
    Delay,
    HttpConfig,
    HttpServerInfo,
    InterceptContext,
    InterceptorChain,
    InvalidRequest,
    MCPError,
    Mock,
    Modify,
    Pause,
    PauseController,
    Server,
    current_request,
    open_client,
    open_http_transport,
    open_stdio_process,
    serve_http,
)
from mcptrio.testing import RecordingInterceptor, open_memory_client
from mcptrio.types import LoggingMessageNotificationParams, TextContent

MEMORY = {
    "memory-serialized-direct": (True, True),
    "memory-serialized-queued": (True, False),
    "memory-objects-direct": (False, True),
    "memory-objects-queued": (False, False),
}
HTTP = {
    # mode, JSON answers instead of SSE
    "http-legacy-json": ("legacy", True),
    "http-legacy-sse": ("legacy", False),
    "http-2026": ("2026-07-28", False),
}
MODES = [*MEMORY, *HTTP]


def make_server(chain: InterceptorChain) -> tuple[Server, list[dict[str, Any]]]:
    server = Server("intercepted", interceptors=chain)
    calls: list[dict[str, Any]] = []

    @server.tool()
    async def echo(text: str) -> str:
        """Echo text back."""
        calls.append({"text": text})
        return text

    @server.tool()
    async def chatty() -> str:
        """Log a line."""
        await current_request().warning("hello")
        return "said"

    return server, calls


async def until(condition: Callable[[], bool]) -> None:
    """Wait until ``condition`` holds; the other end may be behind a real socket."""
    with trio.fail_after(10):
        while not condition():  # noqa: ASYNC110 (state changed by the other end's tasks)
            await trio.sleep(0.002)


def text(result: Any) -> str:
    first = result.content[0]
    assert isinstance(first, TextContent)
    return first.text


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@asynccontextmanager
async def connect(
    chain: InterceptorChain, mode: str, **options: Any
) -> AsyncIterator[tuple[Client, list[dict[str, Any]]]]:
    """A client connected to a server with ``chain``, over the transport ``mode`` names."""
    server, calls = make_server(chain)
    if mode in MEMORY:
        serialize, direct = MEMORY[mode]
        async with open_memory_client(
            server, serialize=serialize, direct=direct, **options
        ) as client:
            yield client, calls
        return
    era, json_response = HTTP[mode]
    async with trio.open_nursery() as nursery:
        info: HttpServerInfo = await nursery.start(
            serve_http, server, HttpConfig(port=0, json_response=json_response)
        )
        async with (
            open_http_transport(info.url) as transport,
            open_client(transport, mode=era, **options) as client,
        ):
            yield client, calls
        nursery.cancel_scope.cancel()


def only(method: str, action: Callable[[InterceptContext], Action]) -> Any:
    async def interceptor(context: InterceptContext) -> Action:
        if context.method == method and context.kind == "request":
            return action(context)
        return Continue()

    return interceptor


async def test_blocked_request_gets_one_error_with_its_id(mode: str) -> None:
    chain = InterceptorChain()
    async with connect(chain, mode) as (client, calls):
        seen: list[dict[str, Any]] = []

        async def watch(context: InterceptContext) -> Action:
            seen.append(dict(context.message))
            return Continue()

        chain.register("block", only("tools/call", lambda _: Block(InvalidRequest("not today"))))
        chain.register("watch", watch)
        with pytest.raises(InvalidRequest, match="not today"):
            await client.call_tool("echo", {"text": "hi"})
        assert calls == []
        errors = [m for m in seen if "error" in m]
        assert len(errors) == 1
        request_ids = [m["id"] for m in seen if m.get("method") == "tools/call"]
        # The blocking interceptor stops the chain: later ones see only the answer.
        assert request_ids == []
        assert errors[0]["error"]["message"] == "not today"
        chain.unregister("block")
        assert text(await client.call_tool("echo", {"text": "hi"})) == "hi"


async def test_mocked_request_never_reaches_the_handler(mode: str) -> None:
    chain = InterceptorChain()
    mocked = {"content": [{"type": "text", "text": "mocked"}], "isError": False}
    chain.register("mock", only("tools/call", lambda _: Mock(mocked)))
    async with connect(chain, mode) as (client, calls):
        result = await client.call_tool("echo", {"text": "hi"})
    assert calls == []
    assert result.content[0].text == "mocked"  # type: ignore[union-attr]


async def test_modified_request_is_revalidated(mode: str) -> None:
    def shout(context: InterceptContext) -> Action:
        params = {**context.message["params"], "arguments": {"text": "LOUD"}}
        return Modify({**context.message, "params": params})

    def break_it(context: InterceptContext) -> Action:
        params = dict(context.message["params"])
        del params["name"]  # tools/call needs a name
        return Modify({**context.message, "params": params})

    def change_id(context: InterceptContext) -> Action:
        return Modify({**context.message, "id": "other"})

    chain = InterceptorChain([("shout", only("tools/call", shout))])
    async with connect(chain, mode) as (client, calls):
        result = await client.call_tool("echo", {"text": "quiet"})
        assert text(result) == "LOUD"
        assert calls == [{"text": "LOUD"}]
        chain.unregister("shout")
        chain.register("breaker", only("tools/call", break_it))
        with pytest.raises(MCPError, match="interceptor 'breaker' modified") as caught:
            await client.call_tool("echo", {"text": "quiet"})
        assert caught.value.code == -32603
        chain.unregister("breaker")
        chain.register("renamer", only("tools/call", change_id))
        with pytest.raises(MCPError, match=r"interceptor 'renamer'.*cannot be changed"):
            await client.call_tool("echo", {"text": "quiet"})
    assert calls == [{"text": "LOUD"}]


async def test_raising_interceptor_fails_only_that_message(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(context: InterceptContext) -> Action:
        raise RuntimeError("kaboom")

    chain = InterceptorChain([("exploder", only("tools/call", boom))])
    async with connect(chain, mode) as (client, _):
        with (
            caplog.at_level(logging.ERROR, logger="mcptrio.intercept"),
            pytest.raises(MCPError, match="interceptor 'exploder' failed") as caught,
        ):
            await client.call_tool("echo", {"text": "x"})
        assert caught.value.code == -32603
        assert any("exploder" in record.getMessage() for record in caplog.records)
        chain.unregister("exploder")
        # The connection goes on.
        assert text(await client.call_tool("echo", {"text": "y"})) == "y"


async def test_notifications_are_blocked_or_modified_never_answered(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    logs: list[Any] = []

    async def on_log(params: LoggingMessageNotificationParams) -> None:
        logs.append(params.data)

    async def rewrite(context: InterceptContext) -> Action:
        if context.method == "notifications/message":
            params = dict(context.message["params"])
            params["data"] = "rewritten"
            return Modify({**context.message, "params": params})
        return Continue()

    async def answer(context: InterceptContext) -> Action:
        if context.method == "notifications/message":
            return Mock({})
        return Continue()

    async def block(context: InterceptContext) -> Action:
        if context.method == "notifications/message":
            return Block(InvalidRequest("quiet"))
        return Continue()

    client_chain = InterceptorChain([("rewrite", rewrite)])
    server_chain = InterceptorChain()
    async with connect(server_chain, mode, on_log=on_log, interceptors=client_chain) as (
        client,
        _,
    ):
        await client.set_logging_level("info")
        await client.call_tool("chatty")
        assert logs == ["rewritten"]
        server_chain.register("block", block)
        await client.call_tool("chatty")
        server_chain.unregister("block")
        with caplog.at_level(logging.WARNING, logger="mcptrio.intercept"):
            server_chain.register("answer", answer)
            await client.call_tool("chatty")
        assert logs == ["rewritten"]
        assert any("never answered" in r.getMessage() for r in caplog.records)


async def test_pause_holds_only_itself_and_resumes(mode: str) -> None:
    controller = PauseController(default_timeout=3600)
    chain = InterceptorChain(pause_controller=controller)

    async def pause_first(context: InterceptContext) -> Action:
        params = context.message.get("params") or {}
        if context.method == "tools/call" and params.get("arguments") == {"text": "hold"}:
            return Pause()
        return Continue()

    chain.register("pauser", pause_first)
    results: list[Any] = []
    async with connect(chain, mode) as (client, calls):
        async with trio.open_nursery() as nursery:

            async def held() -> None:
                results.append(text(await client.call_tool("echo", {"text": "hold"})))

            nursery.start_soon(held)
            await until(lambda: bool(controller.paused()))
            # Another request on the same session flows past the held one.
            assert text(await client.call_tool("echo", {"text": "free"})) == "free"
            [paused] = controller.paused()
            assert paused.interceptor == "pauser"
            assert paused.context.message["params"]["arguments"] == {"text": "hold"}
            original = paused.context.message
            params = {**original["params"], "arguments": {"text": "edited"}}
            controller.resume(paused.id, {**original, "params": params})
        assert results == ["edited"]
        assert calls == [{"text": "free"}, {"text": "edited"}]
        # Dropped: the request is answered with an error.
        async with trio.open_nursery() as nursery:
            failures: list[MCPError] = []

            async def dropped() -> None:
                try:
                    await client.call_tool("echo", {"text": "hold"})
                except MCPError as exc:
                    failures.append(exc)

            nursery.start_soon(dropped)
            await until(lambda: bool(controller.paused()))
            controller.drop(controller.paused()[0].id, InvalidRequest("dropped by operator"))
        assert [f.message for f in failures] == ["dropped by operator"]


async def test_cancelling_a_paused_request_ends_the_hold(mode: str) -> None:
    controller = PauseController(default_timeout=3600)
    chain = InterceptorChain([("pauser", only("tools/call", lambda _: Pause()))])
    chain.pause_controller = controller
    async with connect(chain, mode) as (client, calls):
        async with trio.open_nursery() as nursery:

            async def doomed() -> None:
                await client.call_tool("echo", {"text": "x"})

            nursery.start_soon(doomed)
            await until(lambda: len(controller.paused()) == 1)
            nursery.cancel_scope.cancel()
        await until(lambda: controller.paused() == [])
        chain.unregister("pauser")
        assert text(await client.call_tool("echo", {"text": "y"})) == "y"
    assert calls == [{"text": "y"}]


@pytest.mark.parametrize("on_timeout", ["continue", "drop"])
async def test_pause_timeout_applies_the_default_action(
    autojump_clock: trio.abc.Clock, on_timeout: Any
) -> None:
    controller = PauseController(default_timeout=30, on_timeout=on_timeout)
    chain = InterceptorChain(
        [("pauser", only("tools/call", lambda _: Pause()))], pause_controller=controller
    )
    async with connect(chain, "memory-serialized-direct") as (client, calls):
        start = trio.current_time()
        if on_timeout == "continue":
            result = await client.call_tool("echo", {"text": "late"})
            assert text(result) == "late"
        else:
            with pytest.raises(MCPError, match="paused by interceptor 'pauser' timed out"):
                await client.call_tool("echo", {"text": "late"})
        assert trio.current_time() - start >= 30
    assert calls == ([{"text": "late"}] if on_timeout == "continue" else [])


async def test_delay_holds_then_applies(autojump_clock: trio.abc.Clock) -> None:
    chain = InterceptorChain(
        [("slow", only("tools/call", lambda _: Delay(10, Block(InvalidRequest("late")))))]
    )
    async with connect(chain, "memory-serialized-queued") as (client, calls):
        start = trio.current_time()
        with pytest.raises(InvalidRequest, match="late"):
            await client.call_tool("echo", {"text": "x"})
        assert trio.current_time() - start >= 10
    assert calls == []


async def test_client_chain_can_mock_its_own_requests(mode: str) -> None:
    mocked = {"content": [{"type": "text", "text": "local"}]}
    client_chain = InterceptorChain([("local", only("tools/call", lambda _: Mock(mocked)))])
    async with connect(InterceptorChain(), mode, interceptors=client_chain) as (client, calls):
        result = await client.call_tool("echo", {"text": "x"})
    assert result.content[0].text == "local"  # type: ignore[union-attr]
    assert calls == []


def test_register_and_unregister_by_name() -> None:
    chain = InterceptorChain()
    assert not chain.active

    async def nothing(context: InterceptContext) -> Action:
        return Continue()

    chain.register("a", nothing)
    chain.register("b", nothing)
    assert chain.names == ["a", "b"] and chain.active
    with pytest.raises(ValueError, match="already registered"):
        chain.register("a", nothing)
    chain.unregister("a")
    assert chain.names == ["b"]
    with pytest.raises(LookupError, match="no interceptor named 'a'"):
        chain.unregister("a")
    chain.unregister("b")
    assert not chain.active


async def test_server_chain_semantics_over_stdio() -> None:
    command = [sys.executable, str(Path(__file__).parent / "helpers" / "intercepted_server.py")]
    with trio.fail_after(30):
        async with (
            open_stdio_process(command, stderr="capture") as transport,
            open_client(transport) as client,
        ):
            with pytest.raises(InvalidRequest, match="blocked here"):
                await client.call_tool("echo", {"text": "block"})
            assert text(await client.call_tool("echo", {"text": "mock"})) == "mocked"
            assert text(await client.call_tool("echo", {"text": "shout"})) == "SHOUT"
            with pytest.raises(MCPError, match="interceptor 'acts' modified") as invalid:
                await client.call_tool("echo", {"text": "bad"})
            assert invalid.value.code == -32603
            with pytest.raises(MCPError, match="interceptor 'acts' failed") as failed:
                await client.call_tool("echo", {"text": "raise"})
            assert failed.value.code == -32603
            async with trio.open_nursery() as nursery:

                async def held() -> None:
                    await client.call_tool("echo", {"text": "hold"})

                nursery.start_soon(held)
                await until_async(client, 1)
                # Other requests on the same connection keep flowing past the held one.
                assert text(await client.call_tool("echo", {"text": "free"})) == "free"
                nursery.cancel_scope.cancel()
            # The client's cancel ended the hold.
            await until_async(client, 0)
            # Only "shout" (as SHOUT) and "free" reached the tool.
            assert (await client.call_tool("calls")).structured_content == {"result": 2}
    assert "interceptor 'acts' failed" in transport.stderr_text()


async def until_async(client: Client, held: int) -> None:
    """Wait until the stdio server holds ``held`` paused messages."""
    with trio.fail_after(10):
        # The count lives in the server process: asking is the only way to know.
        while (await client.call_tool("paused")).structured_content != {"result": held}:  # noqa: ASYNC110
            await trio.sleep(0.005)


async def test_contexts_name_the_transport_era_and_session(mode: str) -> None:
    server_recorder, client_recorder = RecordingInterceptor(), RecordingInterceptor()
    chain = InterceptorChain([("recorder", server_recorder)])
    client_chain = InterceptorChain([("recorder", client_recorder)])
    async with connect(chain, mode, interceptors=client_chain) as (client, _):
        await client.call_tool("echo", {"text": "x"})
    carrier = "memory" if mode in MEMORY else "http"
    assert {c.transport for c in server_recorder.contexts} == {carrier}
    assert {c.transport for c in client_recorder.contexts} == {carrier}
    call = next(c for c in server_recorder.contexts if c.method == "tools/call")
    assert call.direction == "client->server" and call.kind == "request"
    answer = next(
        c
        for c in server_recorder.contexts
        if c.message.get("id") == call.message["id"] and c.kind == "response"
    )
    assert answer.direction == "server->client"
    if mode == "http-2026":
        assert (call.era, call.protocol_version) == ("modern", "2026-07-28")
        assert call.http is not None and call.http.method == "POST"
        assert "authorization" not in call.http.headers
    else:
        assert call.era == "legacy" and call.protocol_version is not None
        assert call.session is not None
    if mode.startswith("http-legacy"):
        assert call.session_id is not None
