"""The conformance "everything" fixture set, served by the official MCP Python SDK (mcp==2.3.0).

Runs inside the SDK's own virtualenv (see ``tests/sdk.py``), never under the project's Python:

    sdk_server.py stdio
    sdk_server.py streamable-http --port N [--json-response]

Over Streamable HTTP the endpoint is ``http://127.0.0.1:<port>/mcp``; ``--port 0`` picks a free
port. ``READY <url>`` is printed on stderr once the socket listens.

Payloads follow the conformance suite's scenario descriptions
(``modelcontextprotocol/conformance``, ``src/scenarios/server/*.ts``) plus five extras the
interop checks need: ``wait_for_cancellation``, ``get_cancellation_count``,
``test_trigger_resource_update``, ``test_trigger_tool_change`` and ``test_list_roots``.
``sdk_client.py`` asserts exactly these payloads, so any server that passes it against this one
can be trusted to match.

Both protocol eras are served. On 2025-11-25 and earlier the sampling, elicitation and roots
fixtures send server-to-client requests; on 2026-07-28 they return an ``InputRequiredResult``
and finish when the client retries with ``inputResponses`` (MRTR).

Where the SDK's high-level ``MCPServer`` cannot say something directly:

- ``json_schema_2020_12_tool``: ``MCPServer`` derives input schemas from function signatures,
  so the tool is built with ``Tool.from_function`` and its advertised schema replaced by the raw
  JSON Schema 2020-12 document before registration. Arguments are still validated against the
  function signature, which does not reject unknown properties.
- Unknown tools: ``MCPServer`` answers ``tools/call`` for an unregistered name with an
  ``isError`` result; the spec (and our checks) want JSON-RPC error -32602, so a middleware
  rejects unknown names first.
- ``resources/subscribe``, ``resources/unsubscribe`` and ``logging/setLevel`` have no
  ``MCPServer`` decorator; they are registered on the low-level server (a private attribute).
  Subscriptions are process-wide, not per session, as in the TypeScript reference server.
- ``test_reconnection`` (SSE polling) is not exposed: it needs an event store and only means
  something to the conformance suite's HTTP scenarios.
- With ``--json-response`` a call's answer is one JSON body, so nothing can travel before it:
  progress and log notifications are dropped, and the sampling, elicitation and roots fixtures
  fail on 2025-11-25 ("no back-channel"). On 2026-07-28 the SDK also does not cancel a call
  whose connection closes in this mode, so ``wait_for_cancellation`` is never counted.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import warnings
from typing import Annotated, Any

import anyio
import mcp_types as types
from everything_fixtures import (
    ELICITATION_SCHEMA,
    JSON_SCHEMA_2020_12,
    SEP1034_MESSAGE,
    SEP1034_SCHEMA,
    SEP1330_MESSAGE,
    SEP1330_SCHEMA,
    TEST_AUDIO_BASE64,
    TEST_IMAGE_BASE64,
    WATCHED_URI,
)
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp.server.mcpserver.tools import Tool
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import Field

# Logging, sampling and roots are deprecated in 2026-07-28 but are exactly what these fixtures
# exercise; the warnings would only clutter the captured stderr.
warnings.filterwarnings("ignore", category=MCPDeprecationWarning)

SERVER_NAME = "mcp-conformance-test-server"
SERVER_VERSION = "1.0.0"

# 1x1 red PNG and a minimal WAV, the same bytes the conformance reference servers use.

WATCHED_CONTENT = "Watched resource content"

# SEP-1613 + SEP-2106: every keyword here must survive tools/list untouched.


COMPLETION_VALUES = ("paris", "park", "party")

# Process-wide state (one stdio client, or every HTTP session of this process).
subscriptions: set[str] = set()
cancellations = 0
known_tools: set[str] = set()


def compact_json(value: Any) -> str:
    """JSON as JavaScript's ``JSON.stringify`` writes it, which the fixture texts use."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def text_result(text: str, *, is_error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], is_error=is_error
    )


def is_modern(ctx: Context) -> bool:
    return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS


def current_request_metadata(ctx: Context) -> ServerMessageMetadata:
    # Server-to-client requests tied to the tool call ride its response stream over HTTP.
    return ServerMessageMetadata(related_request_id=ctx.request_id)


async def reject_unknown_tools(ctx: Any, call_next: Any) -> Any:
    """Answer ``tools/call`` for an unregistered tool with -32602, as the spec asks."""
    if ctx.method == "tools/call" and ctx.request_id is not None:
        name = (ctx.params or {}).get("name")
        if isinstance(name, str) and name not in known_tools:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {name}")
    return await call_next(ctx)


# ----- json_schema_2020_12_tool --------------------------------------------------------------


async def json_schema_2020_12_tool(
    name: str | None = None, address: dict[str, Any] | None = None
) -> types.CallToolResult:
    args = {k: v for k, v in (("name", name), ("address", address)) if v is not None}
    return text_result(f"JSON Schema 2020-12 tool called with: {compact_json(args)}")


_schema_tool = Tool.from_function(
    json_schema_2020_12_tool,
    description="Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)",
    structured_output=False,
)
# The advertised schema is replaced; calls are still validated against the signature.
schema_tool = _schema_tool.model_copy(update={"parameters": JSON_SCHEMA_2020_12})
known_tools.add(schema_tool.name)


mcp = MCPServer(
    SERVER_NAME, version=SERVER_VERSION, tools=[schema_tool], middleware=[reject_unknown_tools]
)


def fixture_tool(description: str) -> Any:
    """Register a tool under its function name and remember the name for the middleware."""

    def decorator(fn: Any) -> Any:
        known_tools.add(fn.__name__)
        return mcp.tool(description=description, structured_output=False)(fn)

    return decorator


# ----- content tools -------------------------------------------------------------------------


@fixture_tool("Tests simple text content response")
async def test_simple_text() -> types.CallToolResult:
    return text_result("This is a simple text response for testing.")


@fixture_tool("Tests image content response")
async def test_image_content() -> types.CallToolResult:
    image = types.ImageContent(type="image", data=TEST_IMAGE_BASE64, mime_type="image/png")
    return types.CallToolResult(content=[image])


@fixture_tool("Tests audio content response")
async def test_audio_content() -> types.CallToolResult:
    audio = types.AudioContent(type="audio", data=TEST_AUDIO_BASE64, mime_type="audio/wav")
    return types.CallToolResult(content=[audio])


@fixture_tool("Tests embedded resource content response")
async def test_embedded_resource() -> types.CallToolResult:
    resource = types.TextResourceContents(
        uri="test://embedded-resource",
        mime_type="text/plain",
        text="This is an embedded resource content.",
    )
    return types.CallToolResult(
        content=[types.EmbeddedResource(type="resource", resource=resource)]
    )


@fixture_tool("Tests response with multiple content types (text, image, resource)")
async def test_multiple_content_types() -> types.CallToolResult:
    resource = types.TextResourceContents(
        uri="test://mixed-content-resource",
        mime_type="application/json",
        text=compact_json({"test": "data", "value": 123}),
    )
    return types.CallToolResult(
        content=[
            types.TextContent(type="text", text="Multiple content types test:"),
            types.ImageContent(type="image", data=TEST_IMAGE_BASE64, mime_type="image/png"),
            types.EmbeddedResource(type="resource", resource=resource),
        ]
    )


@fixture_tool("Tests error response handling")
async def test_error_handling() -> types.CallToolResult:
    return text_result("This tool intentionally returns an error for testing", is_error=True)


# ----- notifications during a call ---------------------------------------------------------


@fixture_tool("Tests tool that emits log messages during execution")
async def test_tool_with_logging(ctx: Context) -> types.CallToolResult:
    await ctx.log("info", "Tool execution started")
    await anyio.sleep(0.05)
    await ctx.log("info", "Tool processing data")
    await anyio.sleep(0.05)
    await ctx.log("info", "Tool execution completed")
    return text_result("Tool with logging executed successfully")


@fixture_tool("Tests tool that reports progress notifications")
async def test_tool_with_progress(ctx: Context) -> types.CallToolResult:
    for step in (0, 50, 100):
        if step:
            await anyio.sleep(0.05)
        await ctx.report_progress(step, 100, f"Completed step {step} of 100")
    return text_result("Tool with progress executed successfully")


# ----- server-to-client requests (legacy) / input requests (2026-07-28) -----------------------


def input_response(ctx: Context, key: str) -> Any:
    """The client's answer to input request ``key`` on a 2026-07-28 retry, else None."""
    responses = ctx.input_responses or {}
    return responses.get(key)


@fixture_tool("Tests server-initiated sampling (LLM completion request)")
async def test_sampling(
    prompt: str, ctx: Context
) -> types.CallToolResult | types.InputRequiredResult:
    params = types.CreateMessageRequestParams(
        messages=[
            types.SamplingMessage(role="user", content=types.TextContent(type="text", text=prompt))
        ],
        max_tokens=100,
    )
    if is_modern(ctx):
        answer = input_response(ctx, "sampling")
        if answer is None:
            return types.InputRequiredResult(
                input_requests={"sampling": types.CreateMessageRequest(params=params)}
            )
        result = types.CreateMessageResult.model_validate(answer.model_dump(by_alias=True))
    else:
        result = await ctx.session.send_request(
            types.CreateMessageRequest(params=params),
            types.CreateMessageResult,
            metadata=current_request_metadata(ctx),
        )
    content = result.content
    reply = content.text if isinstance(content, types.TextContent) else "No response"
    return text_result(f"LLM response: {reply}")


async def elicit(
    ctx: Context, key: str, message: str, schema: dict[str, Any]
) -> types.ElicitResult | types.InputRequiredResult:
    params = types.ElicitRequestFormParams(message=message, requested_schema=schema)
    if is_modern(ctx):
        answer = input_response(ctx, key)
        if answer is None:
            return types.InputRequiredResult(
                input_requests={key: types.ElicitRequest(params=params)}
            )
        return types.ElicitResult.model_validate(answer.model_dump(by_alias=True))
    return await ctx.session.send_request(
        types.ElicitRequest(params=params),
        types.ElicitResult,
        metadata=current_request_metadata(ctx),
    )


def elicitation_text(prefix: str, result: types.ElicitResult) -> str:
    return f"{prefix}: action={result.action}, content={compact_json(result.content or {})}"


@fixture_tool("Tests server-initiated elicitation (user input request)")
async def test_elicitation(
    message: str, ctx: Context
) -> types.CallToolResult | types.InputRequiredResult:
    result = await elicit(ctx, "elicitation", message, ELICITATION_SCHEMA)
    if isinstance(result, types.InputRequiredResult):
        return result
    return text_result(elicitation_text("User response", result))


@fixture_tool("Tests elicitation with default values per SEP-1034")
async def test_elicitation_sep1034_defaults(
    ctx: Context,
) -> types.CallToolResult | types.InputRequiredResult:
    result = await elicit(ctx, "sep1034", SEP1034_MESSAGE, SEP1034_SCHEMA)
    if isinstance(result, types.InputRequiredResult):
        return result
    return text_result(elicitation_text("Elicitation completed", result))


@fixture_tool("Tests elicitation with enum schema improvements per SEP-1330")
async def test_elicitation_sep1330_enums(
    ctx: Context,
) -> types.CallToolResult | types.InputRequiredResult:
    result = await elicit(ctx, "sep1330", SEP1330_MESSAGE, SEP1330_SCHEMA)
    if isinstance(result, types.InputRequiredResult):
        return result
    return text_result(elicitation_text("Elicitation completed", result))


@fixture_tool("Returns the client's roots, one URI per line")
async def test_list_roots(ctx: Context) -> types.CallToolResult | types.InputRequiredResult:
    if is_modern(ctx):
        answer = input_response(ctx, "roots")
        if answer is None:
            return types.InputRequiredResult(input_requests={"roots": types.ListRootsRequest()})
        roots = types.ListRootsResult.model_validate(answer.model_dump(by_alias=True))
    else:
        roots = await ctx.session.send_request(
            types.ListRootsRequest(), types.ListRootsResult, metadata=current_request_metadata(ctx)
        )
    return text_result("\n".join(str(root.uri) for root in roots.roots))


# ----- cancellation and subscriptions --------------------------------------------------------


@fixture_tool("Blocks until the call is cancelled (at most 60 s), counting cancellations")
async def wait_for_cancellation() -> types.CallToolResult:
    global cancellations
    try:
        await anyio.sleep(60)
    except anyio.get_cancelled_exc_class():
        cancellations += 1
        raise
    return text_result("not cancelled")


@fixture_tool("Returns how many wait_for_cancellation calls were cancelled so far")
async def get_cancellation_count() -> types.CallToolResult:
    return text_result(str(cancellations))


@fixture_tool("Sends notifications/resources/updated for test://watched-resource if subscribed")
async def test_trigger_resource_update(ctx: Context) -> types.CallToolResult:
    if is_modern(ctx):
        await ctx.notify_resource_updated(WATCHED_URI)
    elif WATCHED_URI in subscriptions:
        await ctx.session.send_resource_updated(WATCHED_URI)
    else:
        return text_result(f"No subscribers for {WATCHED_URI}")
    return text_result(f"Sent resource update for {WATCHED_URI}")


@fixture_tool("Sends notifications/tools/list_changed (to listen streams on 2026-07-28)")
async def test_trigger_tool_change(ctx: Context) -> types.CallToolResult:
    if is_modern(ctx):
        await ctx.notify_tools_changed()
    else:
        await ctx.session.send_tool_list_changed()
    return text_result("tools/list_changed sent")


async def handle_subscribe(ctx: Any, params: types.SubscribeRequestParams) -> types.EmptyResult:
    subscriptions.add(str(params.uri))
    return types.EmptyResult()


async def handle_unsubscribe(ctx: Any, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
    subscriptions.discard(str(params.uri))
    return types.EmptyResult()


async def handle_set_level(ctx: Any, params: types.SetLevelRequestParams) -> types.EmptyResult:
    return types.EmptyResult()


lowlevel = mcp._lowlevel_server
lowlevel.add_request_handler("resources/subscribe", types.SubscribeRequestParams, handle_subscribe)
lowlevel.add_request_handler(
    "resources/unsubscribe", types.UnsubscribeRequestParams, handle_unsubscribe
)
lowlevel.add_request_handler("logging/setLevel", types.SetLevelRequestParams, handle_set_level)


# ----- resources ----------------------------------------------------------------------------


@mcp.resource(
    "test://static-text",
    name="static-text",
    title="Static Text Resource",
    description="A static text resource for testing",
    mime_type="text/plain",
)
def static_text() -> str:
    return "This is the content of the static text resource."


@mcp.resource(
    "test://static-binary",
    name="static-binary",
    title="Static Binary Resource",
    description="A static binary resource (image) for testing",
    mime_type="image/png",
)
def static_binary() -> bytes:
    import base64

    return base64.b64decode(TEST_IMAGE_BASE64)


@mcp.resource(
    "test://template/{id}/data",
    name="template",
    title="Resource Template",
    description="A resource template with parameter substitution",
    mime_type="application/json",
)
def template(id: str) -> str:
    return compact_json({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})


@mcp.resource(
    WATCHED_URI,
    name="watched-resource",
    title="Watched Resource",
    description="A resource that can be subscribed to for updates",
    mime_type="text/plain",
)
def watched_resource() -> str:
    return WATCHED_CONTENT


# ----- prompts and completion ----------------------------------------------------------------


@mcp.prompt(title="Simple Test Prompt", description="A simple prompt without arguments")
def test_simple_prompt() -> list[UserMessage]:
    return [UserMessage(content="This is a simple prompt for testing.")]


@mcp.prompt(title="Prompt With Arguments", description="A prompt with required arguments")
def test_prompt_with_arguments(
    arg1: Annotated[str, Field(description="First test argument")],
    arg2: Annotated[str, Field(description="Second test argument")],
) -> list[UserMessage]:
    return [UserMessage(content=f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'")]


@mcp.prompt(
    title="Prompt With Embedded Resource",
    description="A prompt that includes an embedded resource",
)
def test_prompt_with_embedded_resource(
    resourceUri: Annotated[str, Field(description="URI of the resource to embed")],
) -> list[UserMessage]:
    resource = types.TextResourceContents(
        uri=resourceUri, mime_type="text/plain", text="Embedded resource content for testing."
    )
    return [
        UserMessage(content=types.EmbeddedResource(type="resource", resource=resource)),
        UserMessage(content="Please process the embedded resource above."),
    ]


@mcp.prompt(title="Prompt With Image", description="A prompt that includes image content")
def test_prompt_with_image() -> list[UserMessage]:
    image = types.ImageContent(type="image", data=TEST_IMAGE_BASE64, mime_type="image/png")
    return [UserMessage(content=image), UserMessage(content="Please analyze the image above.")]


@mcp.completion()
async def complete(
    ref: types.PromptReference | types.ResourceTemplateReference,
    argument: types.CompletionArgument,
    context: types.CompletionContext | None,
) -> types.Completion:
    if (
        isinstance(ref, types.PromptReference)
        and ref.name == "test_prompt_with_arguments"
        and argument.name == "arg1"
    ):
        values = [v for v in COMPLETION_VALUES if v.startswith(argument.value)]
        return types.Completion(values=values, total=len(values), has_more=False)
    return types.Completion(values=[], total=0, has_more=False)


# ----- entry point ----------------------------------------------------------------------------


async def serve_http(port: int, json_response: bool) -> None:
    import uvicorn

    app = mcp.streamable_http_app(json_response=json_response, host="127.0.0.1")
    # Binding first lets --port 0 work and makes READY true: the kernel queues connections
    # from the moment listen() returns, before uvicorn starts accepting them.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    bound_port = sock.getsockname()[1]
    print(f"READY http://127.0.0.1:{bound_port}/mcp", file=sys.stderr, flush=True)
    # h11 named, not uvicorn's "auto": the virtualenv also holds httptools (for the
    # benchmarks), and these tests talk to the SDK as a plain `pip install mcp` serves it.
    config = uvicorn.Config(app, log_level="warning", lifespan="on", http="h11")
    await uvicorn.Server(config).serve(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="transport", required=True)
    sub.add_parser("stdio", help="serve one client on stdin/stdout")
    http = sub.add_parser("streamable-http", help="serve Streamable HTTP on 127.0.0.1")
    http.add_argument("--port", type=int, required=True, help="TCP port (0: pick a free one)")
    http.add_argument("--json-response", action="store_true", help="answer POSTs with JSON")
    args = parser.parse_args()
    if args.transport == "stdio":
        mcp.run("stdio")
    else:
        anyio.run(serve_http, args.port, args.json_response)


if __name__ == "__main__":
    main()
