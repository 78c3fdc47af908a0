"""Drive an MCP server through the interop checks with the official MCP Python SDK (mcp==2.3.0).

Runs inside the SDK's own virtualenv (see ``tests/sdk.py``) and uses only the SDK's public API:

    sdk_client.py --mode legacy|auto|2026-07-28 [--only a,b] --url URL
    sdk_client.py --mode legacy|auto|2026-07-28 [--only a,b] -- command args...

The server must expose the conformance "everything" fixture set plus the extras
``wait_for_cancellation``, ``get_cancellation_count``, ``test_trigger_resource_update`` and
``test_list_roots`` (``sdk_server.py`` is the reference). The expected payloads are those of the
conformance suite's scenario descriptions (``modelcontextprotocol/conformance``,
``src/scenarios/server/*.ts``); they are restated here on purpose, so this script judges any
server, ``sdk_server.py`` included, against its own copy.

Every check runs isolated: one that fails or times out never stops the others. Checks of
features the 2026-07-28 revision removed are reported as skipped (``ok: null``) when that era is
negotiated. Output is one JSON object on stdout:

    {"protocol_version": "...", "checks": [{"name": "...", "ok": true|false|null, "detail": "..."}]}

Exit status 0 means the report was printed (whatever the checks say); anything else means the
script could not run the checks, and stderr says why.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import traceback
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

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
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.session import ClientRequestContext, IncomingMessage
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

# The deprecated legacy-era calls (ping, setLevel, subscribe) are exactly what is under test.
warnings.filterwarnings("ignore", category=MCPDeprecationWarning)

CHECK_TIMEOUT = 15.0
"""Seconds one check may take before it is reported as failed."""

NOTIFICATION_WAIT = 5.0
"""Seconds to wait for a notification that should follow a call."""

MODES = ("legacy", "auto", "2026-07-28")
EXPECTED_VERSIONS = {
    "legacy": {"2025-11-25"},
    "2026-07-28": {"2026-07-28"},
    "auto": {"2025-11-25", "2026-07-28"},
}

TOOL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_./-]{1,64}$")

FIXTURE_TOOLS = (
    "test_simple_text",
    "test_image_content",
    "test_audio_content",
    "test_embedded_resource",
    "test_multiple_content_types",
    "test_tool_with_logging",
    "test_tool_with_progress",
    "test_error_handling",
    "test_sampling",
    "test_elicitation",
    "test_elicitation_sep1034_defaults",
    "test_elicitation_sep1330_enums",
    "json_schema_2020_12_tool",
    "wait_for_cancellation",
    "get_cancellation_count",
    "test_trigger_resource_update",
    "test_list_roots",
)
FIXTURE_PROMPTS = (
    "test_simple_prompt",
    "test_prompt_with_arguments",
    "test_prompt_with_embedded_resource",
    "test_prompt_with_image",
)


SAMPLING_PROMPT = "Test prompt for sampling"
SAMPLING_ANSWER = "This is a test response from the client"

ELICITATION_MESSAGE = "Please provide your information"
# What the elicitation callback answers, per requested property (the conformance answers).
ELICITATION_ANSWERS: dict[str, Any] = {
    "username": "testuser",
    "email": "test@example.com",
    "name": "Jane Smith",
    "age": 25,
    "score": 88.0,
    "status": "inactive",
    "verified": False,
    "untitledSingle": "option1",
    "titledSingle": "value1",
    "legacyEnum": "opt1",
    "untitledMulti": ["option1", "option2"],
    "titledMulti": ["value1", "value2"],
}

ROOTS = (
    types.Root(uri="file:///tmp/mcptrio-interop/alpha", name="alpha"),
    types.Root(uri="file:///tmp/mcptrio-interop/beta", name="beta"),
)


class CheckFailed(Exception):
    """A check saw something other than what it expected."""


def expect(condition: object, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def expect_equal(actual: Any, expected: Any, what: str) -> None:
    if actual != expected:
        raise CheckFailed(f"{what}: expected {short(expected)}, got {short(actual)}")


def short(value: Any, limit: int = 600) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


def dump(model: Any) -> Any:
    """A model (or list of models) as its JSON wire form, absent fields left out."""
    if isinstance(model, list):
        return [dump(item) for item in model]
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


def text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


class Recorder:
    """What the client-side callbacks saw, and the fixed answers they gave."""

    def __init__(self) -> None:
        self.samplings: list[types.CreateMessageRequestParams] = []
        self.elicitations: list[types.ElicitRequestParams] = []
        self.roots_requests = 0
        self.logs: list[types.LoggingMessageNotificationParams] = []
        self.updated_uris: list[str] = []
        self._changed = anyio.Event()

    def changed(self) -> None:
        """Wake whoever waits for something to be recorded."""
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_until(self, condition: Callable[[], bool], seconds: float) -> bool:
        """Wait for ``condition``: notifications travel apart from the result they follow."""
        with anyio.move_on_after(seconds):
            while not condition():
                await self._changed.wait()
        return condition()

    async def sampling(
        self, context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        self.samplings.append(params)
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=SAMPLING_ANSWER),
            model="test-model",
            stop_reason="endTurn",
        )

    async def elicitation(
        self, context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult:
        self.elicitations.append(params)
        schema = getattr(params, "requested_schema", None) or {}
        requested = schema.get("properties", {})
        content = {key: ELICITATION_ANSWERS[key] for key in requested if key in ELICITATION_ANSWERS}
        return types.ElicitResult(action="accept", content=content)

    async def list_roots(self, context: ClientRequestContext) -> types.ListRootsResult:
        self.roots_requests += 1
        return types.ListRootsResult(roots=list(ROOTS))

    async def logging(self, params: types.LoggingMessageNotificationParams) -> None:
        self.logs.append(params)
        self.changed()

    async def message(self, message: IncomingMessage) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            self.updated_uris.append(str(message.params.uri))
            self.changed()


CheckFn = Callable[["Checker"], Awaitable[str]]
CHECKS: list[tuple[str, CheckFn, bool]] = []


def check(name: str, *, legacy_only: bool = False) -> Callable[[CheckFn], CheckFn]:
    """Register a check; ``legacy_only`` ones are skipped when 2026-07-28 is negotiated."""

    def register(fn: CheckFn) -> CheckFn:
        CHECKS.append((name, fn, legacy_only))
        return fn

    return register


class Checker:
    """One connected client plus the helpers the checks share."""

    def __init__(self, client: Client, recorder: Recorder, mode: str) -> None:
        self.client = client
        self.recorder = recorder
        self.mode = mode

    @property
    def modern(self) -> bool:
        return self.client.protocol_version in MODERN_PROTOCOL_VERSIONS

    async def call(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> types.CallToolResult:
        return await self.client.call_tool(name, arguments or {})

    async def call_ok(self, name: str, arguments: dict[str, Any] | None = None) -> list[Any]:
        """Call a tool that must succeed; return its content in wire form."""
        result = await self.call(name, arguments)
        content = dump(result.content)
        expect(not result.is_error, f"{name} returned isError: {short(content)}")
        return content

    async def call_text(self, name: str, arguments: dict[str, Any] | None = None) -> str:
        """Call a tool that must answer with exactly one text block; return the text."""
        content = await self.call_ok(name, arguments)
        expect(
            len(content) == 1 and content[0].get("type") == "text",
            f"{name}: expected one text block, got {short(content)}",
        )
        return str(content[0]["text"])

    async def expect_content(self, name: str, expected: list[dict[str, Any]]) -> str:
        expect_equal(await self.call_ok(name), expected, f"{name} content")
        return ""


# ----- lifecycle and tools -------------------------------------------------------------------


@check("initialize")
async def check_initialize(c: Checker) -> str:
    version = c.client.protocol_version
    expect(
        version in EXPECTED_VERSIONS[c.mode],
        f"negotiated {version!r} in mode {c.mode}, expected one of "
        f"{sorted(EXPECTED_VERSIONS[c.mode])}",
    )
    caps = c.client.server_capabilities
    if c.mode in MODERN_PROTOCOL_VERSIONS:
        # A pinned version skips the probe, so the client knows no capabilities yet: ask.
        discovered = await c.client.session.send_discover(c.mode)
        caps = types.DiscoverResult.model_validate(discovered).capabilities
    for capability in ("tools", "resources", "prompts", "completions"):
        expect(getattr(caps, capability) is not None, f"server does not declare {capability}")
    info = c.client.server_info
    if not c.modern:
        expect(caps.logging is not None, "server does not declare logging")
        expect(caps.resources and caps.resources.subscribe, "resources.subscribe is not true")
        expect(info is not None and info.name and info.version, f"incomplete serverInfo {info}")
    name = f"{info.name}/{info.version}" if info else "anonymous server"
    return f"{version}, {name}"


async def list_all_tools(c: Checker) -> list[types.Tool]:
    tools: list[types.Tool] = []
    cursor: str | None = None
    while True:
        page = await c.client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if cursor is None:
            return tools


@check("tools_list")
async def check_tools_list(c: Checker) -> str:
    tools = {tool.name: tool for tool in await list_all_tools(c)}
    missing = [name for name in FIXTURE_TOOLS if name not in tools]
    expect(not missing, f"missing tools: {missing}")
    problems = []
    for name, tool in tools.items():
        if not TOOL_NAME_PATTERN.match(name):
            problems.append(f"{name!r}: name is not 1-64 chars of [A-Za-z0-9_./-]")
        if not tool.description:
            problems.append(f"{name}: no description")
        if tool.input_schema.get("type") != "object":
            problems.append(f"{name}: inputSchema type is not 'object'")
    expect(not problems, "; ".join(problems))
    schema = tools["json_schema_2020_12_tool"].input_schema
    expect_equal(schema, JSON_SCHEMA_2020_12, "json_schema_2020_12_tool inputSchema")
    return f"{len(tools)} tools"


@check("test_simple_text")
async def check_simple_text(c: Checker) -> str:
    return await c.expect_content(
        "test_simple_text", [text_block("This is a simple text response for testing.")]
    )


@check("test_image_content")
async def check_image_content(c: Checker) -> str:
    image = {"type": "image", "data": TEST_IMAGE_BASE64, "mimeType": "image/png"}
    return await c.expect_content("test_image_content", [image])


@check("test_audio_content")
async def check_audio_content(c: Checker) -> str:
    audio = {"type": "audio", "data": TEST_AUDIO_BASE64, "mimeType": "audio/wav"}
    return await c.expect_content("test_audio_content", [audio])


@check("test_embedded_resource")
async def check_embedded_resource(c: Checker) -> str:
    resource = {
        "uri": "test://embedded-resource",
        "mimeType": "text/plain",
        "text": "This is an embedded resource content.",
    }
    return await c.expect_content(
        "test_embedded_resource", [{"type": "resource", "resource": resource}]
    )


@check("test_multiple_content_types")
async def check_multiple_content_types(c: Checker) -> str:
    resource = {
        "uri": "test://mixed-content-resource",
        "mimeType": "application/json",
        "text": '{"test":"data","value":123}',
    }
    expected = [
        text_block("Multiple content types test:"),
        {"type": "image", "data": TEST_IMAGE_BASE64, "mimeType": "image/png"},
        {"type": "resource", "resource": resource},
    ]
    return await c.expect_content("test_multiple_content_types", expected)


@check("test_error_handling")
async def check_error_handling(c: Checker) -> str:
    result = await c.call("test_error_handling")
    expect(result.is_error, f"isError is not true: {short(dump(result))}")
    expected = [text_block("This tool intentionally returns an error for testing")]
    expect_equal(dump(result.content), expected, "test_error_handling content")
    return ""


@check("test_tool_with_progress")
async def check_tool_with_progress(c: Checker) -> str:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))
        c.recorder.changed()

    result = await c.client.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)
    expect(not result.is_error, f"isError: {short(dump(result.content))}")
    expected = [text_block("Tool with progress executed successfully")]
    expect_equal(dump(result.content), expected, "test_tool_with_progress content")
    await c.recorder.wait_until(lambda: len(seen) >= 3, 1.0)
    steps = [(progress, total) for progress, total, _ in seen]
    expect_equal(steps, [(0, 100), (50, 100), (100, 100)], "progress (progress, total) seen")
    return f"messages {[message for _, _, message in seen]}"


@check("test_tool_with_logging")
async def check_tool_with_logging(c: Checker) -> str:
    if not c.modern:
        await c.client.set_logging_level("debug")
    logs = c.recorder.logs
    logs.clear()
    text = await c.call_text("test_tool_with_logging")
    expect_equal(text, "Tool with logging executed successfully", "test_tool_with_logging text")
    wanted = ["Tool execution started", "Tool processing data", "Tool execution completed"]

    def info_messages() -> list[Any]:
        return [log.data for log in logs if log.level == "info" and log.data in wanted]

    await c.recorder.wait_until(lambda: len(info_messages()) >= len(wanted), 1.0)
    expect_equal(info_messages(), wanted, "info-level log messages, in order")
    return f"{len(logs)} log notifications"


@check("test_sampling")
async def check_sampling(c: Checker) -> str:
    c.recorder.samplings.clear()
    text = await c.call_text("test_sampling", {"prompt": SAMPLING_PROMPT})
    requests = c.recorder.samplings
    expect(len(requests) == 1, f"sampling callback called {len(requests)} times, expected once")
    expected_messages = [{"role": "user", "content": text_block(SAMPLING_PROMPT)}]
    expect_equal(dump(requests[0].messages), expected_messages, "sampling messages")
    expect_equal(requests[0].max_tokens, 100, "sampling maxTokens")
    expect_equal(text, f"LLM response: {SAMPLING_ANSWER}", "test_sampling text")
    return ""


async def check_one_elicitation(
    c: Checker,
    tool: str,
    arguments: dict[str, Any],
    message: str,
    schema: dict[str, Any],
    prefix: str,
) -> str:
    c.recorder.elicitations.clear()
    text = await c.call_text(tool, arguments)
    requests = c.recorder.elicitations
    expect(len(requests) == 1, f"elicitation callback called {len(requests)} times, expected once")
    request = requests[0]
    expect(isinstance(request, types.ElicitRequestFormParams), f"not a form elicitation: {request}")
    assert isinstance(request, types.ElicitRequestFormParams)
    expect_equal(request.message, message, "elicitation message")
    requested = request.requested_schema
    if requested != schema:
        differing = sorted(
            key
            for key in set(schema.get("properties", {})) | set(requested.get("properties", {}))
            if schema.get("properties", {}).get(key) != requested.get("properties", {}).get(key)
        )
        raise CheckFailed(
            f"requestedSchema differs (properties {differing}): expected {short(schema)}, "
            f"got {short(requested)}"
        )
    answer = {key: ELICITATION_ANSWERS[key] for key in schema["properties"]}
    head = f"{prefix}: action=accept, content="
    expect(text.startswith(head), f"text {text!r} does not start with {head!r}")
    try:
        echoed = json.loads(text[len(head) :])
    except ValueError:
        raise CheckFailed(f"content in {text!r} is not JSON") from None
    expect_equal(echoed, answer, "content echoed in the tool result")
    return ""


@check("test_elicitation")
async def check_elicitation(c: Checker) -> str:
    return await check_one_elicitation(
        c,
        "test_elicitation",
        {"message": ELICITATION_MESSAGE},
        ELICITATION_MESSAGE,
        ELICITATION_SCHEMA,
        "User response",
    )


@check("test_elicitation_sep1034_defaults")
async def check_elicitation_sep1034(c: Checker) -> str:
    return await check_one_elicitation(
        c,
        "test_elicitation_sep1034_defaults",
        {},
        SEP1034_MESSAGE,
        SEP1034_SCHEMA,
        "Elicitation completed",
    )


@check("test_elicitation_sep1330_enums")
async def check_elicitation_sep1330(c: Checker) -> str:
    return await check_one_elicitation(
        c,
        "test_elicitation_sep1330_enums",
        {},
        SEP1330_MESSAGE,
        SEP1330_SCHEMA,
        "Elicitation completed",
    )


@check("test_list_roots")
async def check_list_roots(c: Checker) -> str:
    before = c.recorder.roots_requests
    text = await c.call_text("test_list_roots")
    expect(c.recorder.roots_requests > before, "the list_roots callback was not called")
    expect_equal(text, "\n".join(str(root.uri) for root in ROOTS), "test_list_roots text")
    return ""


# ----- resources ------------------------------------------------------------------------------


@check("resources_list")
async def check_resources_list(c: Checker) -> str:
    resources: list[types.Resource] = []
    cursor: str | None = None
    while True:
        page = await c.client.list_resources(cursor=cursor)
        resources.extend(page.resources)
        cursor = page.next_cursor
        if cursor is None:
            break
    by_uri = {str(resource.uri): resource for resource in resources}
    expected_types = {
        "test://static-text": "text/plain",
        "test://static-binary": "image/png",
        WATCHED_URI: "text/plain",
    }
    for uri, mime_type in expected_types.items():
        expect(uri in by_uri, f"{uri} not listed (listed: {sorted(by_uri)})")
        resource = by_uri[uri]
        expect(resource.name, f"{uri}: no name")
        expect(resource.description, f"{uri}: no description")
        expect_equal(resource.mime_type, mime_type, f"{uri} mimeType")
    return f"{len(resources)} resources"


async def read_contents(c: Checker, uri: str) -> list[Any]:
    return dump((await c.client.read_resource(uri)).contents)


@check("read_static_text")
async def check_read_static_text(c: Checker) -> str:
    expected = [
        {
            "uri": "test://static-text",
            "mimeType": "text/plain",
            "text": "This is the content of the static text resource.",
        }
    ]
    expect_equal(await read_contents(c, "test://static-text"), expected, "contents")
    return ""


@check("read_static_binary")
async def check_read_static_binary(c: Checker) -> str:
    expected = [{"uri": "test://static-binary", "mimeType": "image/png", "blob": TEST_IMAGE_BASE64}]
    expect_equal(await read_contents(c, "test://static-binary"), expected, "contents")
    return ""


@check("read_template")
async def check_read_template(c: Checker) -> str:
    templates = (await c.client.list_resource_templates()).resource_templates
    listed = [template.uri_template for template in templates]
    expect("test://template/{id}/data" in listed, f"template not listed (listed: {listed})")
    expected = [
        {
            "uri": "test://template/123/data",
            "mimeType": "application/json",
            "text": '{"id":"123","templateTest":true,"data":"Data for ID: 123"}',
        }
    ]
    expect_equal(await read_contents(c, "test://template/123/data"), expected, "contents")
    return ""


@check("subscribe_unsubscribe", legacy_only=True)
async def check_subscribe_unsubscribe(c: Checker) -> str:
    updates = c.recorder.updated_uris
    updates.clear()
    await c.client.subscribe_resource(WATCHED_URI)
    text = await c.call_text("test_trigger_resource_update")
    expect_equal(text, f"Sent resource update for {WATCHED_URI}", "trigger text while subscribed")
    arrived = await c.recorder.wait_until(lambda: WATCHED_URI in updates, NOTIFICATION_WAIT)
    expect(arrived, f"no notifications/resources/updated for {WATCHED_URI} (got {updates})")
    await c.client.unsubscribe_resource(WATCHED_URI)
    text = await c.call_text("test_trigger_resource_update")
    expect_equal(text, f"No subscribers for {WATCHED_URI}", "trigger text after unsubscribe")
    return ""


# ----- prompts and completion -----------------------------------------------------------------


@check("prompts_list")
async def check_prompts_list(c: Checker) -> str:
    prompts = {prompt.name: prompt for prompt in (await c.client.list_prompts()).prompts}
    missing = [name for name in FIXTURE_PROMPTS if name not in prompts]
    expect(not missing, f"missing prompts: {missing}")
    undescribed = [name for name, prompt in prompts.items() if not prompt.description]
    expect(not undescribed, f"prompts without description: {undescribed}")
    expected_arguments = {
        "test_simple_prompt": [],
        "test_prompt_with_arguments": [("arg1", True), ("arg2", True)],
        "test_prompt_with_embedded_resource": [("resourceUri", True)],
        "test_prompt_with_image": [],
    }
    for name, expected in expected_arguments.items():
        arguments = [(arg.name, bool(arg.required)) for arg in prompts[name].arguments or []]
        expect_equal(arguments, expected, f"{name} arguments (name, required)")
    return f"{len(prompts)} prompts"


async def prompt_messages(c: Checker, name: str, arguments: dict[str, str] | None = None) -> Any:
    return dump((await c.client.get_prompt(name, arguments)).messages)


@check("test_simple_prompt")
async def check_simple_prompt(c: Checker) -> str:
    expected = [{"role": "user", "content": text_block("This is a simple prompt for testing.")}]
    expect_equal(await prompt_messages(c, "test_simple_prompt"), expected, "messages")
    return ""


@check("test_prompt_with_arguments")
async def check_prompt_with_arguments(c: Checker) -> str:
    arguments = {"arg1": "testValue1", "arg2": "testValue2"}
    text = "Prompt with arguments: arg1='testValue1', arg2='testValue2'"
    expected = [{"role": "user", "content": text_block(text)}]
    expect_equal(
        await prompt_messages(c, "test_prompt_with_arguments", arguments), expected, "messages"
    )
    return ""


@check("test_prompt_with_embedded_resource")
async def check_prompt_with_embedded_resource(c: Checker) -> str:
    resource = {
        "uri": "test://example-resource",
        "mimeType": "text/plain",
        "text": "Embedded resource content for testing.",
    }
    expected = [
        {"role": "user", "content": {"type": "resource", "resource": resource}},
        {"role": "user", "content": text_block("Please process the embedded resource above.")},
    ]
    arguments = {"resourceUri": "test://example-resource"}
    actual = await prompt_messages(c, "test_prompt_with_embedded_resource", arguments)
    expect_equal(actual, expected, "messages")
    return ""


@check("test_prompt_with_image")
async def check_prompt_with_image(c: Checker) -> str:
    expected = [
        {
            "role": "user",
            "content": {"type": "image", "data": TEST_IMAGE_BASE64, "mimeType": "image/png"},
        },
        {"role": "user", "content": text_block("Please analyze the image above.")},
    ]
    expect_equal(await prompt_messages(c, "test_prompt_with_image"), expected, "messages")
    return ""


@check("completion")
async def check_completion(c: Checker) -> str:
    ref = types.PromptReference(type="ref/prompt", name="test_prompt_with_arguments")
    for partial, values in (("par", ["paris", "park", "party"]), ("part", ["party"])):
        completion = (await c.client.complete(ref, {"name": "arg1", "value": partial})).completion
        got = {
            "values": completion.values,
            "total": completion.total,
            "hasMore": completion.has_more,
        }
        expected = {"values": values, "total": len(values), "hasMore": False}
        expect_equal(got, expected, f"completion of arg1={partial!r}")
    return ""


# ----- utilities and errors -------------------------------------------------------------------


@check("logging_set_level", legacy_only=True)
async def check_logging_set_level(c: Checker) -> str:
    await c.client.set_logging_level("info")
    return ""


@check("ping", legacy_only=True)
async def check_ping(c: Checker) -> str:
    await c.client.send_ping()
    return ""


@check("unknown_tool")
async def check_unknown_tool(c: Checker) -> str:
    try:
        result = await c.call("mcptrio_interop_no_such_tool")
    except MCPError as error:
        expect_equal(error.code, types.INVALID_PARAMS, f"error code (message {error.message!r})")
        return error.message
    raise CheckFailed(f"expected JSON-RPC error -32602, got a result: {short(dump(result))}")


@check("bad_arguments")
async def check_bad_arguments(c: Checker) -> str:
    c.recorder.samplings.clear()
    result = await c.call("test_sampling", {})
    expect(result.is_error, f"missing required 'prompt' gave no isError: {short(dump(result))}")
    expect(not c.recorder.samplings, "the tool ran (it asked for sampling) despite bad arguments")
    return ""


@check("cancellation")
async def check_cancellation(c: Checker) -> str:
    before = int(await c.call_text("get_cancellation_count"))
    with anyio.move_on_after(0.3) as scope:
        await c.call("wait_for_cancellation")
    expect(scope.cancelled_caught, "wait_for_cancellation returned before it was cancelled")
    # The server learns of the cancellation asynchronously, and only its counter shows it.
    after = before
    for _ in range(int(NOTIFICATION_WAIT / 0.05)):
        after = int(await c.call_text("get_cancellation_count"))
        if after != before:
            break
        await anyio.sleep(0.05)
    expect_equal(after, before + 1, "get_cancellation_count after one cancelled call")
    return ""


# ----- runner ---------------------------------------------------------------------------------


async def run_checks(c: Checker, only: list[str] | None) -> list[dict[str, Any]]:
    report: list[dict[str, Any]] = []
    for name, fn, legacy_only in CHECKS:
        if only is not None and name not in only:
            continue
        if legacy_only and c.modern:
            detail = f"removed in {c.client.protocol_version}"
            report.append({"name": name, "ok": None, "detail": detail})
            continue
        try:
            with anyio.fail_after(CHECK_TIMEOUT):
                detail = await fn(c)
            report.append({"name": name, "ok": True, "detail": detail})
        except CheckFailed as failure:
            report.append({"name": name, "ok": False, "detail": str(failure)})
        except TimeoutError:
            report.append({"name": name, "ok": False, "detail": f"timed out ({CHECK_TIMEOUT} s)"})
        except Exception as error:
            detail = f"{type(error).__name__}: {error}"
            report.append({"name": name, "ok": False, "detail": detail})
    return report


async def run(mode: str, target: str | StdioServerParameters, only: list[str] | None) -> None:
    recorder = Recorder()
    client = Client(
        target,
        mode=mode,
        sampling_callback=recorder.sampling,
        elicitation_callback=recorder.elicitation,
        list_roots_callback=recorder.list_roots,
        logging_callback=recorder.logging,
        message_handler=recorder.message,
        log_level="debug",
        client_info=types.Implementation(name="mcptrio-sdk-interop", version="1.0.0"),
        # Every listing must reach the server: a cached one would hide what it answers.
        cache=None,
    )
    report: dict[str, Any] | None = None
    try:
        async with client:
            checks = await run_checks(Checker(client, recorder, mode), only)
            report = {"protocol_version": client.protocol_version, "checks": checks}
    except Exception as error:
        traceback.print_exc()
        if report is None:
            print(f"sdk_client: could not connect in mode {mode}: {error!r}", file=sys.stderr)
            raise SystemExit(2) from None
        # The checks ran; an unclean shutdown is one more finding, not a crash.
        report["checks"].append({"name": "disconnect", "ok": False, "detail": repr(error)})
    print(json.dumps(report), flush=True)


def parse_args(argv: list[str]) -> tuple[str, str | StdioServerParameters, list[str] | None]:
    command: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, command = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(
        prog="sdk_client.py",
        description="Run the interop checks against an MCP server with the official SDK.",
        epilog="Give the server as --url URL or as a stdio command after '--'.",
    )
    parser.add_argument("--mode", choices=MODES, default="legacy")
    parser.add_argument("--only", help="comma-separated check names to run (default: all)")
    parser.add_argument("--url", help="Streamable HTTP endpoint of the server")
    args = parser.parse_args(argv)
    if (args.url is None) == (not command):
        parser.error("give exactly one of --url URL or '-- command args...'")
    only = None
    if args.only is not None:
        only = [name.strip() for name in args.only.split(",") if name.strip()]
        known = {name for name, _, _ in CHECKS}
        unknown = sorted(set(only) - known)
        if unknown:
            parser.error(f"unknown checks {unknown}; known: {', '.join(sorted(known))}")
    target: str | StdioServerParameters
    if args.url is not None:
        target = args.url
    else:
        # The SDK passes only a few "safe" variables by default; the server under test may
        # need the rest (PYTHONPATH, MCPTRIO_*), so hand it the whole environment.
        target = StdioServerParameters(command=command[0], args=command[1:], env=dict(os.environ))
    return args.mode, target, only


def main() -> None:
    mode, target, only = parse_args(sys.argv[1:])
    anyio.run(run, mode, target, only)


if __name__ == "__main__":
    main()
