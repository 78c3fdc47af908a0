"""Server features end to end through a real client over the in-memory transport."""

from __future__ import annotations

import enum
import threading
from typing import Annotated, Any, Literal

import attrs
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from mcptrio import (
    InvalidParams,
    InvalidRequest,
    MethodNotFound,
    ResourceNotFound,
    Server,
    ServerConfig,
    ToolError,
    current_request,
)
from mcptrio._protocol.converter import to_wire
from mcptrio._protocol.jsonrpc import ErrorResponse, Notification, Request, Response
from mcptrio._server.connection import serve_connection
from mcptrio._server.tools import shape_result
from mcptrio.testing import memory_transport_pair, open_memory_client
from mcptrio.types import (
    CallToolResult,
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequestFormParams,
    ElicitRequestURLParams,
    ElicitResult,
    LoggingMessageNotificationParams,
    PromptReference,
    Root,
    TextContent,
    ToolAnnotations,
)


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.frozen
class Point:
    x: int
    y: int


def make_server(**config: Any) -> Server:
    server = Server("test-server", "9.9.9", config=ServerConfig(**config))

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def add(a: int, b: Annotated[int, "second addend"] = 2) -> int:
        """Add two integers.

        Args:
            a: first addend
        """
        return a + b

    @server.tool()
    def thread_name() -> str:
        """Which thread runs sync tools."""
        return threading.current_thread().name

    @server.tool()
    async def paint(color: Color, where: Point, mode: Literal["fill", "stroke"] = "fill") -> Point:
        """Paint a point."""
        assert isinstance(color, Color)
        assert isinstance(where, Point)
        return Point(x=where.x + 1, y=where.y + (1 if mode == "fill" else 2))

    @server.tool()
    async def fails() -> str:
        """Always fails."""
        raise ToolError("nope, on purpose")

    @server.tool()
    async def protocol_error() -> str:
        """Raises a protocol error."""
        raise InvalidParams("this is a protocol error")

    @server.tool()
    async def ask_llm(question: str) -> str:
        """Uses sampling."""
        result = await current_request().sample(question, max_tokens=10)
        assert isinstance(result.content, TextContent)
        return result.content.text

    @server.tool()
    async def ask_user() -> str:
        """Uses elicitation."""
        result = await current_request().elicit(
            "Name?", {"type": "object", "properties": {"name": {"type": "string"}}}
        )
        return f"{result.action}:{(result.content or {}).get('name')}"

    @server.tool()
    async def roots() -> list[str]:
        """Lists client roots."""
        return [r.uri for r in await current_request().list_roots()]

    @server.tool()
    async def chatty() -> str:
        """Logs at several levels and reports progress."""
        ctx = current_request()
        await ctx.debug("debug message")
        await ctx.warning("warning message")
        await ctx.report_progress(1, 2)
        await ctx.report_progress(2, 2, "done")
        return "ok"

    @server.resource("mem://greeting", mime_type="text/plain")
    def greeting() -> str:
        """A greeting."""
        return "hello"

    @server.resource("mem://blob")
    async def blob() -> bytes:
        return b"\x00\x01\x02"

    @server.resource("mem://items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @server.prompt()
    async def review(code: str, language: str = "python") -> str:
        """Review code.

        Args:
            code: the code to review
            language: its language
        """
        return f"Review this {language}: {code}"

    @server.completion()
    async def complete(ref: Any, argument: Any, context: Any) -> list[str]:
        return [v for v in ("python", "pascal", "perl") if v.startswith(argument.value)]

    return server


async def test_initialize_reports_server_and_capabilities() -> None:
    async with open_memory_client(make_server()) as client:
        assert client.server_info.name == "test-server"
        assert client.server_info.version == "9.9.9"
        assert client.protocol_version == "2025-11-25"
        caps = client.server_capabilities
        assert caps.tools is not None and caps.tools.list_changed
        assert caps.resources is not None and caps.resources.subscribe
        assert caps.completions is not None and caps.logging is not None


async def test_tool_schemas_come_from_type_hints_and_docstrings() -> None:
    async with open_memory_client(make_server()) as client:
        tools = {t.name: t for t in await client.all_tools()}
    add = tools["add"]
    assert add.description == "Add two integers."
    assert add.input_schema["properties"]["a"]["type"] == "integer"
    assert add.input_schema["properties"]["a"]["description"] == "first addend"
    assert add.input_schema["properties"]["b"]["description"] == "second addend"
    assert add.input_schema["required"] == ["a"]
    assert add.output_schema is not None
    assert add.annotations is not None and add.annotations.read_only_hint is True
    paint = tools["paint"]
    assert paint.output_schema is not None
    assert paint.output_schema["type"] == "object"


async def test_tool_calls_structured_output_and_errors() -> None:
    async with open_memory_client(make_server()) as client:
        result = await client.call_tool("add", {"a": 2, "b": 3})
        assert not result.is_error
        assert result.structured_content == {"result": 5}
        assert isinstance(result.content[0], TextContent)
        painted = await client.call_tool(
            "paint", {"color": "red", "where": {"x": 1, "y": 1}, "mode": "stroke"}
        )
        assert painted.structured_content == {"x": 2, "y": 3}
        # Invalid arguments are a tool execution error, so the model can fix them.
        bad = await client.call_tool("add", {"a": "two"})
        assert bad.is_error
        assert "a" in bad.content[0].text  # type: ignore[union-attr]
        failed = await client.call_tool("fails")
        assert failed.is_error
        assert failed.content[0].text == "nope, on purpose"  # type: ignore[union-attr]
        with pytest.raises(InvalidParams, match="unknown tool 'nope'"):
            await client.call_tool("nope")
        with pytest.raises(InvalidParams, match="this is a protocol error"):
            await client.call_tool("protocol_error")
        thread = await client.call_tool("thread_name")
        assert thread.content[0].text != threading.current_thread().name  # type: ignore[union-attr]


async def test_pagination_covers_every_list() -> None:
    server = make_server(page_size=2)
    async with open_memory_client(server) as client:
        first = await client.list_tools()
        assert len(first.tools) == 2
        assert first.next_cursor is not None
        names = [t.name for t in await client.all_tools()]
        assert len(names) == len(server.tools)
        assert len(set(names)) == len(names)
        with pytest.raises(InvalidParams, match="invalid cursor"):
            await client.list_tools(cursor="garbage!")
        assert len(await client.all_resources()) == 2
        assert len(await client.all_resource_templates()) == 1
        assert len(await client.all_prompts()) == 1


async def test_resources_static_template_and_not_found() -> None:
    async with open_memory_client(make_server()) as client:
        text = await client.read_resource("mem://greeting")
        assert text.contents[0].text == "hello"  # type: ignore[union-attr]
        assert text.contents[0].mime_type == "text/plain"
        blob = await client.read_resource("mem://blob")
        assert blob.contents[0].blob == b"\x00\x01\x02"  # type: ignore[union-attr]
        item = await client.read_resource("mem://items/42")
        assert item.contents[0].text == '{"id":42}'  # type: ignore[union-attr]
        assert item.contents[0].mime_type == "application/json"
        with pytest.raises(ResourceNotFound) as info:
            await client.read_resource("mem://missing")
        assert info.value.code == -32002
        assert info.value.data == {"uri": "mem://missing"}


async def test_subscriptions_and_list_changed_notifications() -> None:
    server = make_server()
    seen: list[Notification] = []
    got = trio.Event()

    async def on_notification(notification: Notification) -> None:
        seen.append(notification)
        if len(seen) == 2:
            got.set()

    async with open_memory_client(server, on_notification=on_notification) as client:
        await client.subscribe_resource("mem://greeting")
        await server.notify_resource_updated("mem://other")
        await server.notify_resource_updated("mem://greeting")
        await server.notify_tools_changed()
        with trio.fail_after(5):
            await got.wait()
        await client.unsubscribe_resource("mem://greeting")
    assert [n.method for n in seen] == [
        "notifications/resources/updated",
        "notifications/tools/list_changed",
    ]
    assert seen[0].params == {"uri": "mem://greeting"}


async def test_prompts_and_completion() -> None:
    async with open_memory_client(make_server()) as client:
        prompts = await client.all_prompts()
        assert prompts[0].name == "review"
        args = {a.name: a for a in prompts[0].arguments or []}
        assert args["code"].required is True
        assert args["language"].required is False
        assert args["code"].description == "the code to review"
        got = await client.get_prompt("review", {"code": "x = 1"})
        assert got.messages[0].content.text == "Review this python: x = 1"  # type: ignore[union-attr]
        with pytest.raises(InvalidParams, match="missing required argument"):
            await client.get_prompt("review")
        with pytest.raises(InvalidParams, match="unknown prompt"):
            await client.get_prompt("nope")
        completion = await client.complete(PromptReference(name="review"), "language", "p")
        assert completion.values == ["python", "pascal", "perl"]
        with pytest.raises(InvalidParams):
            await client.complete(PromptReference(name="nope"), "language", "p")


async def test_sampling_elicitation_roots_round_trips() -> None:
    async def sampling(params: CreateMessageRequestParams) -> CreateMessageResult:
        question = params.messages[0].content
        assert isinstance(question, TextContent)
        return CreateMessageResult(
            role="assistant", content=TextContent(text=f"A:{question.text}"), model="m"
        )

    async def elicitation(params: ElicitRequestFormParams | ElicitRequestURLParams) -> ElicitResult:
        return ElicitResult(action="accept", content={"name": "Ada"})

    async with open_memory_client(
        make_server(),
        sampling_handler=sampling,
        elicitation_handler=elicitation,
        roots=[Root(uri="file:///work", name="work")],
    ) as client:
        assert (await client.call_tool("ask_llm", {"question": "Q"})).content[0].text == "A:Q"  # type: ignore[union-attr]
        assert (await client.call_tool("ask_user")).content[0].text == "accept:Ada"  # type: ignore[union-attr]
        roots = await client.call_tool("roots")
        assert roots.structured_content == {"result": ["file:///work"]}


async def test_server_to_client_request_without_capability_is_a_clear_error() -> None:
    async with open_memory_client(make_server()) as client:
        with pytest.raises(Exception, match="sampling"):
            await client.call_tool("ask_llm", {"question": "Q"})
        # Still serving.
        assert (await client.call_tool("add", {"a": 1})).structured_content == {"result": 3}


async def test_logging_levels_and_progress() -> None:
    logs: list[LoggingMessageNotificationParams] = []
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_log(params: LoggingMessageNotificationParams) -> None:
        logs.append(params)

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        progress.append((p, total, message))

    async with open_memory_client(make_server(), on_log=on_log) as client:
        await client.call_tool("chatty", on_progress=on_progress)
        assert [entry.data for entry in logs] == ["warning message"]  # default level: info
        await client.set_logging_level("debug")
        await client.call_tool("chatty")
        assert [entry.data for entry in logs][1:] == ["debug message", "warning message"]
        with pytest.raises(InvalidParams, match="unknown log level"):
            await client.set_logging_level("loud")  # type: ignore[arg-type]
    assert progress == [(1.0, 2.0, None), (2.0, 2.0, "done")]


async def test_cancelling_a_call_cancels_the_tool() -> None:
    server = Server("cancel")
    started = trio.Event()
    cancelled = trio.Event()

    @server.tool()
    async def slow() -> str:
        """Waits forever."""
        started.set()
        try:
            await trio.sleep_forever()
        finally:
            cancelled.set()

    async with open_memory_client(server) as client:
        async with trio.open_nursery() as nursery:

            async def cancel_after_start() -> None:
                await started.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(cancel_after_start)
            await client.call_tool("slow")
        with trio.fail_after(5):
            await cancelled.wait()
        assert client.statistics().pending_outgoing == 0


async def test_protocol_rules_on_a_raw_connection() -> None:
    client_end, server_end = memory_transport_pair()
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_connection, make_server(), server_end)
        await client_end.send(Request(1, "tools/list", {}))
        early = await client_end.receive()
        assert isinstance(early, ErrorResponse)
        assert early.code == InvalidRequest.default_code
        assert "before initialization" in early.message
        await client_end.send(Request(2, "ping"))
        assert await client_end.receive() == Response(2, {})
        await client_end.send(
            Request(
                3,
                "initialize",
                {
                    "protocolVersion": "1999-01-01",
                    "capabilities": {},
                    "clientInfo": {"name": "raw", "version": "0"},
                },
            )
        )
        init = await client_end.receive()
        assert isinstance(init, Response)
        # An unknown version is answered with the server's latest legacy one.
        assert init.result["protocolVersion"] == "2025-11-25"
        await client_end.send(Notification("notifications/initialized"))
        await client_end.send(Request(4, "no/such/method"))
        unknown = await client_end.receive()
        assert isinstance(unknown, ErrorResponse)
        assert unknown.code == MethodNotFound.default_code
        await client_end.send(Request(5, "tools/call", {"name": 5}))
        wrong = await client_end.receive()
        assert isinstance(wrong, ErrorResponse)
        assert wrong.code == InvalidParams.default_code
        # Malformed fields beyond name and arguments are checked as strictly.
        for params in (
            {"name": "add", "arguments": [1, 2]},
            {"name": "add", "arguments": {"a": 1}, "task": 5},
        ):
            await client_end.send(Request(5, "tools/call", params))
            wrong = await client_end.receive()
            assert isinstance(wrong, ErrorResponse), params
            assert wrong.code == InvalidParams.default_code, params
        await client_end.send(
            Request(5, "tools/call", {"name": "add", "arguments": {"a": 1}, "_meta": {"k": 1}})
        )
        assert await client_end.receive() == Response(
            5,
            {
                "content": [{"type": "text", "text": '{"result":3}'}],
                "structuredContent": {"result": 3},
            },
        )
        await client_end.send(Request(6, "sampling/createMessage", {}))
        wrong_direction = await client_end.receive()
        assert isinstance(wrong_direction, ErrorResponse)
        assert wrong_direction.code == MethodNotFound.default_code
        await client_end.send(Request(7, "initialize", init.result))
        again = await client_end.receive()
        assert isinstance(again, ErrorResponse)
        assert "already initialized" in again.message
        await client_end.aclose()


@given(st.text())
def test_plain_text_results_have_the_shape_the_converter_gives(text: str) -> None:
    server = Server("shapes")

    @server.tool()
    async def say(text: str) -> str:
        return text

    entry = server.tools.get("say")
    assert entry is not None
    assert shape_result(entry, text) == to_wire(CallToolResult(content=[TextContent(text=text)]))


async def test_the_request_context_is_one_object_per_request() -> None:
    server = Server("context")
    seen: list[Any] = []

    @server.tool()
    async def look() -> str:
        seen.append(current_request())
        seen.append(current_request())
        return str(current_request().request_id)

    async with open_memory_client(server) as client:
        first = await client.call_tool("look")
        await client.call_tool("look")
    assert seen[0] is seen[1] and seen[2] is seen[3] and seen[0] is not seen[2]
    assert first.content == [TextContent(text=str(seen[0].request_id))]
    with pytest.raises(LookupError, match="outside an MCP request handler"):
        current_request()


async def test_notifications_are_counted_in_the_metrics() -> None:
    server = Server("counted")

    @server.tool()
    async def chatty() -> str:
        await current_request().log("info", "hello")
        return "done"

    async with open_memory_client(server) as client:
        await client.set_logging_level("info")
        await client.call_tool("chatty")
    snapshot = server.metrics.statistics()
    assert snapshot.notifications_in.get("notifications/initialized") == 1
    assert snapshot.notifications_out.get("notifications/message") == 1


async def test_runtime_registration_and_metrics() -> None:
    server = make_server()
    async with open_memory_client(server) as client:
        before = len(await client.all_tools())

        async def extra() -> str:
            """Added later."""
            return "extra"

        server.add_tool(extra)
        await server.notify_tools_changed()
        assert len(await client.all_tools()) == before + 1
        assert (await client.call_tool("extra")).content[0].text == "extra"  # type: ignore[union-attr]
        server.remove_tool("extra")
        assert len(await client.all_tools()) == before
    stats = server.metrics.statistics()
    assert stats.requests_total >= 5
    assert stats.requests["tools/call"].ok >= 1
