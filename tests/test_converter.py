"""Tests for the wire converter in mcptrio._protocol.converter."""

from __future__ import annotations

import base64
import re
import typing
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcptrio import types as t
from mcptrio._protocol.converter import (
    content_from_wire,
    from_wire,
    result_from_wire,
    to_wire,
    wire_name,
)
from mcptrio._protocol.errors import InvalidParams
from mcptrio.testing._strategies import json_values, wire_objects

CLASSES = sorted(
    (obj for obj in vars(t).values() if isinstance(obj, type) and attrs.has(obj)),
    key=lambda cls: cls.__name__,
)
UNIONS = {
    "ContentBlock": t.ContentBlock,
    "SamplingContent": t.SamplingContent,
    "ResourceContents": t.ResourceContents,
    "CompletionReference": t.CompletionReference,
    "ElicitRequestParams": t.ElicitRequestParams,
    "InputRequest": t.InputRequest,
    "InputResponse": t.InputResponse,
}
CAMEL = re.compile(r"_meta|[a-z][A-Za-z0-9]*")

quick = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- round trips over every type ---------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@quick
@given(data=st.data())
def test_every_class_round_trips(cls: type, data: st.DataObject) -> None:
    obj = data.draw(wire_objects(cls))
    wire = to_wire(obj)
    assert from_wire(cls, wire) == obj
    # Through real JSON too: the wire form is plain JSON with no Python-only values.
    assert from_wire(cls, orjson.loads(orjson.dumps(wire))) == obj
    _check_wire_form(obj, wire)


@pytest.mark.parametrize("alias", UNIONS.values(), ids=list(UNIONS))
@quick
@given(data=st.data())
def test_every_union_round_trips(alias: Any, data: st.DataObject) -> None:
    obj = data.draw(wire_objects(alias))
    assert from_wire(alias, orjson.loads(orjson.dumps(to_wire(obj)))) == obj


def _check_wire_form(obj: Any, wire: dict[str, Any]) -> None:
    """Keys are the camelCase wire names; None is left out unless the field is required."""
    names = {f.name: wire_name(type(obj), f.name) for f in attrs.fields(type(obj))}
    assert set(wire) <= set(names.values())
    for field in attrs.fields(type(obj)):
        value = getattr(obj, field.name)
        key = names[field.name]
        if field.default is None and value is None:
            assert key not in wire
        else:
            assert key in wire, f"{type(obj).__name__}.{field.name} dropped"
        nested = wire.get(key)
        if attrs.has(type(value)):
            _check_wire_form(value, nested)  # type: ignore[arg-type]
        elif isinstance(value, list):
            for item, item_wire in zip(value, nested, strict=True):  # type: ignore[arg-type]
                if attrs.has(type(item)):
                    _check_wire_form(item, item_wire)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_wire_names_are_camel_case(cls: type) -> None:
    for field in attrs.fields(cls):
        name = wire_name(cls, field.name)
        assert CAMEL.fullmatch(name), name
        assert name.lower() == field.name.replace("_", "").lower() or name == "_meta"


def test_wire_name_examples() -> None:
    assert wire_name(t.Resource, "mime_type") == "mimeType"
    assert wire_name(t.Resource, "meta") == "_meta"
    assert wire_name(t.ResourceTemplate, "uri_template") == "uriTemplate"
    assert wire_name(t.Tool, "input_schema") == "inputSchema"
    assert wire_name(t.ToolAnnotations, "read_only_hint") == "readOnlyHint"
    assert wire_name(t.Implementation, "website_url") == "websiteUrl"
    assert wire_name(t.DetailedTask, "poll_interval_ms") == "pollIntervalMs"
    with pytest.raises(AttributeError):
        wire_name(t.Tool, "nope")


@quick
@given(obj=wire_objects(t.CallToolRequestParams), extra=json_values(max_leaves=3))
def test_unknown_members_are_ignored(obj: t.CallToolRequestParams, extra: Any) -> None:
    wire = to_wire(obj)
    wire["someFutureField"] = extra
    wire["_private"] = {"x": 1}
    assert from_wire(t.CallToolRequestParams, wire) == obj


# --- specific encodings ------------------------------------------------------------------


def test_discriminators_are_always_written() -> None:
    assert to_wire(t.TextContent(text="a")) == {"type": "text", "text": "a"}
    assert to_wire(t.ElicitRequestFormParams(message="m", requested_schema={})) == {
        "mode": "form",
        "message": "m",
        "requestedSchema": {},
    }
    assert to_wire(t.PromptReference(name="p")) == {"type": "ref/prompt", "name": "p"}
    assert to_wire(t.ListRootsRequest()) == {"method": "roots/list"}
    assert to_wire(t.InputRequiredResult(request_state="s")) == {
        "resultType": "input_required",
        "requestState": "s",
    }


def test_none_is_left_out_but_false_zero_and_empty_are_kept() -> None:
    result = t.CallToolResult(content=[], is_error=False, structured_content=0, meta={})
    assert to_wire(result) == {"content": [], "isError": False, "structuredContent": 0, "_meta": {}}
    assert to_wire(t.ServerCapabilities(logging={}, tools=t.ToolsCapability())) == {
        "logging": {},
        "tools": {},
    }
    # Required fields that may be null are written as null.
    task = t.Task(task_id="1", status="working", created_at="a", last_updated_at="b", ttl=None)
    assert to_wire(task)["ttl"] is None
    log = t.LoggingMessageNotificationParams(level="info", data=None)
    assert to_wire(log) == {"level": "info", "data": None}


def test_bytes_are_standard_base64() -> None:
    raw = bytes([0xFB, 0xFF, 0xFE, 0x00])
    image = t.ImageContent(data=raw, mime_type="image/png")
    assert to_wire(image)["data"] == base64.b64encode(raw).decode() == "+//+AA=="
    assert from_wire(t.ImageContent, {"type": "image", "data": "+//+AA==", "mimeType": "x"}) == (
        t.ImageContent(data=raw, mime_type="x")
    )
    blob = from_wire(t.BlobResourceContents, {"uri": "u", "blob": ""})
    assert blob.blob == b""
    with pytest.raises(InvalidParams, match=r"^blob: expected standard base64"):
        from_wire(t.BlobResourceContents, {"uri": "u", "blob": "-_-_"})  # urlsafe alphabet


def test_request_ids_and_progress_tokens_pass_through() -> None:
    assert from_wire(t.CancelledNotificationParams, {"requestId": 7}).request_id == 7
    assert from_wire(t.CancelledNotificationParams, {"requestId": "7"}).request_id == "7"
    token = from_wire(t.ProgressNotificationParams, {"progressToken": "abc", "progress": 1})
    assert (token.progress_token, token.progress) == ("abc", 1)
    assert type(token.progress) is int  # written back as 1, not 1.0
    with pytest.raises(InvalidParams, match="requestId: expected a string or an integer, got true"):
        from_wire(t.CancelledNotificationParams, {"requestId": True})
    with pytest.raises(InvalidParams, match=r"progressToken: .* got 1\.5"):
        from_wire(t.ProgressNotificationParams, {"progressToken": 1.5, "progress": 1})


def test_open_json_is_shared_not_copied() -> None:
    arguments = {"a": [1, {"b": None}]}
    params = from_wire(t.CallToolRequestParams, {"name": "n", "arguments": arguments})
    assert params.arguments is arguments
    assert to_wire(params)["arguments"] is arguments


def test_unions_decode_by_discriminator_or_member() -> None:
    assert content_from_wire({"type": "audio", "data": "AA==", "mimeType": "audio/wav"}) == (
        t.AudioContent(data=b"\x00", mime_type="audio/wav")
    )
    embedded = from_wire(
        t.EmbeddedResource, {"type": "resource", "resource": {"uri": "u", "blob": "AA=="}}
    )
    assert embedded.resource == t.BlobResourceContents(uri="u", blob=b"\x00")
    # An elicitation without "mode" is form mode.
    form = from_wire(t.ElicitRequestParams, {"message": "m", "requestedSchema": {}})
    assert isinstance(form, t.ElicitRequestFormParams)
    url = from_wire(t.ElicitRequestParams, {"mode": "url", "message": "m", "url": "https://x"})
    assert isinstance(url, t.ElicitRequestURLParams)
    assert from_wire(t.InputResponse, {"roots": []}) == t.ListRootsResult(roots=[])
    single = from_wire(
        t.SamplingMessage, {"role": "user", "content": {"type": "text", "text": "x"}}
    )
    assert single.content == t.TextContent(text="x")
    many = from_wire(
        t.SamplingMessage, {"role": "user", "content": [{"type": "text", "text": "x"}]}
    )
    assert many.content == [t.TextContent(text="x")]


def test_result_from_wire_picks_the_2026_result_shape() -> None:
    plain = result_from_wire(t.CallToolResult, {"content": [], "resultType": "complete"})
    assert plain == t.CallToolResult(content=[], result_type="complete")
    legacy = result_from_wire(t.CallToolResult, {"content": []})
    assert legacy == t.CallToolResult(content=[])
    more = result_from_wire(t.CallToolResult, {"resultType": "input_required", "requestState": "s"})
    assert more == t.InputRequiredResult(request_state="s")
    task = result_from_wire(
        t.CallToolResult,
        {
            "resultType": "task",
            "taskId": "t1",
            "status": "working",
            "createdAt": "2026-01-01T00:00:00Z",
            "lastUpdatedAt": "2026-01-01T00:00:00Z",
            "ttlMs": None,
            "pollIntervalMs": 500,
        },
    )
    assert isinstance(task, t.DetailedTask)
    assert (task.ttl_ms, task.poll_interval_ms) == (None, 500)


def test_to_wire_refuses_foreign_objects() -> None:
    with pytest.raises(TypeError, match=r"mcptrio\.types"):
        to_wire({"type": "text"})
    with pytest.raises(TypeError, match="expected one of"):
        to_wire(t.PromptMessage(role="user", content="hello"))  # type: ignore[arg-type]


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "data", "message"),
    [
        (
            t.CompleteRequestParams,
            {"ref": {"type": "x"}, "argument": {"name": "a", "value": ""}},
            "ref.type: expected 'ref/prompt' or 'ref/resource', got 'x'",
        ),
        (
            t.CompleteRequestParams,
            {"ref": {"name": "p"}, "argument": {"name": "a", "value": ""}},
            "ref.type: required field missing",
        ),
        (
            t.CompleteRequestParams,
            {"ref": {"type": None}, "argument": {"name": "a", "value": ""}},
            "ref.type: expected 'ref/prompt' or 'ref/resource', got null",
        ),
        (t.CallToolRequestParams, {}, "name: required field missing"),
        (t.CallToolRequestParams, {"name": 3}, "name: expected a string, got 3"),
        (t.CallToolRequestParams, {"name": "n", "arguments": [1]}, "arguments: expected an object"),
        (t.CallToolRequestParams, [], "expected a CallToolRequestParams object, got an array"),
        (t.CallToolRequestParams, "x", "expected a CallToolRequestParams object, got 'x'"),
        (t.CallToolResult, {"content": {}}, "content: expected an array, got an object"),
        (
            t.CallToolResult,
            {"content": [{"type": "text", "text": "ok"}, {"type": "video"}]},
            "content[1].type: expected 'text', 'image', 'audio', 'resource_link' or 'resource'",
        ),
        (t.CallToolResult, {"content": [], "isError": 1}, "isError: expected true or false, got 1"),
        (
            t.GetPromptRequestParams,
            {"name": "p", "arguments": {"a": "1", "b": 2}},
            "arguments.b: expected a string, got 2",
        ),
        (
            t.ReadResourceResult,
            {"contents": [{"uri": "u"}]},
            "contents[0]: expected an object with a 'text' or 'blob' member",
        ),
        (t.SetLevelRequestParams, {"level": "loud"}, "level: expected 'debug', 'info'"),
        (
            t.ElicitRequestURLParams,
            {"mode": "url", "message": "m"},
            "url: required field missing",
        ),
        (
            t.ElicitRequestParams,
            {"mode": "popup", "message": "m"},
            "mode: expected 'form' or 'url', got 'popup'",
        ),
        (
            t.InputRequiredResult,
            {"inputRequests": {"k": {"method": "tools/call"}}},
            "inputRequests.k.method: expected 'sampling/createMessage'",
        ),
        (
            t.InitializeRequestParams,
            {"protocolVersion": "2025-11-25", "capabilities": {"roots": True}, "clientInfo": {}},
            "capabilities.roots: expected a RootsCapability object, got true",
        ),
        (
            t.ProgressNotificationParams,
            {"progressToken": 1, "progress": "1"},
            "progress: expected a number",
        ),
        (t.Completion, {"values": ["a", None]}, "values[1]: expected a string, got null"),
    ],
)
def test_bad_input_names_the_field_path(cls: Any, data: Any, message: str) -> None:
    with pytest.raises(InvalidParams) as info:
        from_wire(cls, data)
    assert info.value.code == -32602
    assert message in info.value.message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_error_path_prefix_and_several_problems() -> None:
    with pytest.raises(InvalidParams) as info:
        from_wire(t.CompleteRequestParams, {"ref": {"type": "x"}}, path="params")
    assert info.value.message == (
        "params.ref.type: expected 'ref/prompt' or 'ref/resource', got 'x'; "
        "params.argument: required field missing"
    )
    with pytest.raises(InvalidParams) as info:
        from_wire(t.Completion, {"values": [1, 2, 3, 4, 5]})
    assert re.fullmatch(r"values\[0\]: .*; values\[2\]: .*; and 2 more", info.value.message)
    with pytest.raises(InvalidParams) as info:
        from_wire(t.UpdateTaskRequestParams, {"taskId": "t", "inputResponses": {"a b": 1}})
    assert info.value.message.startswith("inputResponses['a b']: expected an object")


@settings(max_examples=200, deadline=None)
@given(cls=st.sampled_from(CLASSES), value=json_values(max_leaves=6))
def test_arbitrary_json_decodes_or_raises_invalid_params(cls: type, value: Any) -> None:
    try:
        obj = from_wire(cls, value)
    except InvalidParams as exc:
        assert exc.message
    else:
        assert isinstance(obj, cls)


@pytest.mark.parametrize(
    "cls", [t.CallToolResult, t.CreateMessageRequestParams, t.InitializeRequestParams]
)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_corrupted_members_are_reported_not_crashed_on(cls: type, data: st.DataObject) -> None:
    wire = to_wire(data.draw(wire_objects(cls)))
    key = data.draw(st.sampled_from(sorted(wire)))
    wire[key] = data.draw(json_values(max_leaves=4))
    try:
        from_wire(cls, wire)
    except InvalidParams as exc:
        assert exc.message.startswith(key) or exc.message.startswith("expected")


# --- golden examples ---------------------------------------------------------------------

GOLDEN: list[tuple[Any, dict[str, Any]]] = [
    (
        t.InitializeRequestParams,
        {
            "protocolVersion": "2025-11-25",
            "capabilities": {
                "roots": {"listChanged": True},
                "sampling": {"tools": {}},
                "elicitation": {"form": {}, "url": {}},
                "tasks": {"list": {}, "requests": {"elicitation": {"create": {}}}},
            },
            "clientInfo": {
                "name": "example-client",
                "title": "Example Client",
                "version": "1.0.0",
                "description": "An example",
                "icons": [
                    {
                        "src": "https://example.com/i.png",
                        "mimeType": "image/png",
                        "sizes": ["48x48"],
                    }
                ],
                "websiteUrl": "https://example.com",
            },
        },
    ),
    (
        t.InitializeResult,
        {
            "protocolVersion": "2025-06-18",
            "capabilities": {
                "logging": {},
                "completions": {},
                "prompts": {"listChanged": True},
                "resources": {"subscribe": True, "listChanged": True},
                "tools": {"listChanged": True},
                "tasks": {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}},
                "experimental": {"com.example/feature": {}},
            },
            "serverInfo": {"name": "ExampleServer", "title": "Example Server", "version": "1.0.0"},
            "instructions": "Optional instructions for the client",
        },
    ),
    (
        t.ListToolsResult,
        {
            "tools": [
                {
                    "name": "get_weather",
                    "title": "Weather",
                    "description": "Current weather for a place",
                    "inputSchema": {
                        "type": "object",
                        "properties": {"location": {"type": "string"}},
                        "required": ["location"],
                    },
                    "outputSchema": {"type": "object", "properties": {"t": {"type": "number"}}},
                    "annotations": {
                        "title": "Weather",
                        "readOnlyHint": True,
                        "destructiveHint": False,
                        "idempotentHint": True,
                        "openWorldHint": True,
                    },
                    "icons": [
                        {
                            "src": "https://example.com/w.svg",
                            "mimeType": "image/svg+xml",
                            "sizes": ["any"],
                            "theme": "dark",
                        }
                    ],
                    "execution": {"taskSupport": "optional"},
                    "_meta": {"com.example/owner": "weather-team"},
                }
            ],
            "nextCursor": "next-page-cursor",
            "ttlMs": 60000,
            "cacheScope": "public",
            "resultType": "complete",
        },
    ),
    (
        t.CreateMessageRequestParams,
        {
            "messages": [
                {"role": "user", "content": {"type": "text", "text": "Weather in Paris?"}},
                {
                    "role": "assistant",
                    "content": [
                        {
                            "type": "tool_use",
                            "id": "call_1",
                            "name": "get_weather",
                            "input": {"city": "Paris"},
                        }
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "toolUseId": "call_1",
                            "content": [{"type": "text", "text": "18C"}],
                            "structuredContent": {"t": 18},
                            "isError": False,
                        }
                    ],
                },
            ],
            "tools": [
                {
                    "name": "get_weather",
                    "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}},
                }
            ],
            "toolChoice": {"mode": "auto"},
            "maxTokens": 1000,
            "modelPreferences": {
                "hints": [{"name": "claude-3-sonnet"}],
                "intelligencePriority": 0.8,
                "speedPriority": 0.5,
            },
            "systemPrompt": "You are helpful.",
            "includeContext": "none",
            "temperature": 0.7,
            "stopSequences": ["\n\n"],
            "metadata": {"k": "v"},
        },
    ),
    (
        t.CreateMessageResult,
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "call_2",
                    "name": "get_weather",
                    "input": {"city": "Oslo"},
                }
            ],
            "model": "claude-3-sonnet-20240307",
            "stopReason": "toolUse",
        },
    ),
    # The 2026-07-28 tools/call exchange observed against the Python SDK (spec digest 5.4).
    (
        t.CallToolRequestParams,
        {
            "name": "add",
            "arguments": {"a": 1, "b": 2},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "curl", "version": "0"},
            },
        },
    ),
    (
        t.CallToolResult,
        {
            "content": [{"text": "3", "type": "text"}],
            "isError": False,
            "resultType": "complete",
            "structuredContent": {"result": 3},
            "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "Demo", "version": ""}},
        },
    ),
    (
        t.ReadResourceResult,
        {
            "contents": [
                {"uri": "file:///a.png", "mimeType": "image/png", "blob": "iVBORw0KGgo="},
                {"uri": "file:///a.txt", "text": "hello", "_meta": {"k": 1}},
            ],
            "ttlMs": 0,
            "cacheScope": "private",
            "resultType": "complete",
        },
    ),
    (
        t.GetPromptResult,
        {
            "description": "Code review",
            "messages": [
                {"role": "user", "content": {"type": "text", "text": "Review this"}},
                {
                    "role": "user",
                    "content": {
                        "type": "resource",
                        "resource": {
                            "uri": "file:///x.py",
                            "mimeType": "text/x-python",
                            "text": "pass",
                        },
                        "annotations": {
                            "audience": ["user", "assistant"],
                            "priority": 1,
                            "lastModified": "2025-01-12T15:00:58Z",
                        },
                    },
                },
                {
                    "role": "assistant",
                    "content": {"type": "image", "data": "AAEC", "mimeType": "image/png"},
                },
                {
                    "role": "assistant",
                    "content": {
                        "type": "resource_link",
                        "uri": "file:///y",
                        "name": "y",
                        "size": 10,
                    },
                },
            ],
        },
    ),
    (
        t.InputRequiredResult,
        {
            "resultType": "input_required",
            "inputRequests": {
                "github_login": {
                    "method": "elicitation/create",
                    "params": {
                        "mode": "form",
                        "message": "Please provide your GitHub username",
                        "requestedSchema": {
                            "type": "object",
                            "properties": {"name": {"type": "string"}},
                            "required": ["name"],
                        },
                    },
                },
                "summary": {
                    "method": "sampling/createMessage",
                    "params": {
                        "messages": [
                            {"role": "user", "content": {"type": "text", "text": "Summarize"}}
                        ],
                        "maxTokens": 100,
                    },
                },
                "roots": {"method": "roots/list"},
            },
            "requestState": "eyJzdGF0ZSI6MX0=",
        },
    ),
    (
        t.SubscriptionsListenRequestParams,
        {
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
            },
            "notifications": {
                "toolsListChanged": True,
                "promptsListChanged": True,
                "resourcesListChanged": True,
                "resourceSubscriptions": ["file:///a"],
            },
        },
    ),
    (
        t.DiscoverResult,
        {
            "resultType": "complete",
            "supportedVersions": ["2026-07-28"],
            "capabilities": {
                "tools": {"listChanged": True},
                "extensions": {"io.modelcontextprotocol/tasks": {}},
            },
            "ttlMs": 300000,
            "cacheScope": "public",
            "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "s", "version": "1"}},
        },
    ),
    (
        t.CreateTaskResult,
        {
            "task": {
                "taskId": "786512e2",
                "status": "working",
                "statusMessage": "The operation is now in progress.",
                "createdAt": "2025-11-25T10:30:00Z",
                "lastUpdatedAt": "2025-11-25T10:40:00Z",
                "ttl": None,
                "pollInterval": 5000,
            }
        },
    ),
    (
        t.CompleteRequestParams,
        {
            "ref": {"type": "ref/prompt", "name": "code_review"},
            "argument": {"name": "language", "value": "py"},
            "context": {"arguments": {"framework": "flask"}},
        },
    ),
    (
        t.ElicitRequestURLParams,
        {
            "mode": "url",
            "message": "Sign in",
            "url": "https://example.com/login",
            "elicitationId": "e-1",
        },
    ),
]


@pytest.mark.parametrize(("cls", "wire"), GOLDEN, ids=[cls.__name__ for cls, _ in GOLDEN])
def test_golden_messages_decode_and_encode_back_exactly(cls: Any, wire: dict[str, Any]) -> None:
    raw = orjson.dumps(wire, option=orjson.OPT_SORT_KEYS)
    obj = from_wire(cls, orjson.loads(raw))
    assert orjson.dumps(to_wire(obj), option=orjson.OPT_SORT_KEYS) == raw


def test_golden_messages_decode_to_the_expected_objects() -> None:
    tools = from_wire(t.ListToolsResult, GOLDEN[2][1])
    tool = tools.tools[0]
    assert tool.annotations == t.ToolAnnotations(
        title="Weather",
        read_only_hint=True,
        destructive_hint=False,
        idempotent_hint=True,
        open_world_hint=True,
    )
    assert tool.icons == [
        t.Icon(
            src="https://example.com/w.svg", mime_type="image/svg+xml", sizes=["any"], theme="dark"
        )
    ]
    assert tool.execution == t.ToolExecution(task_support="optional")
    assert (tools.next_cursor, tools.ttl_ms, tools.cache_scope) == (
        "next-page-cursor",
        60000,
        "public",
    )

    sampling = from_wire(t.CreateMessageRequestParams, GOLDEN[3][1])
    tool_use = sampling.messages[1].content
    assert tool_use == [t.ToolUseContent(id="call_1", name="get_weather", input={"city": "Paris"})]
    tool_result = sampling.messages[2].content
    assert isinstance(tool_result, list) and isinstance(tool_result[0], t.ToolResultContent)
    assert tool_result[0].content == [t.TextContent(text="18C")]

    call = from_wire(t.CallToolRequestParams, GOLDEN[5][1])
    assert call.arguments == {"a": 1, "b": 2}
    assert call.meta is not None and call.meta["io.modelcontextprotocol/clientCapabilities"] == {}

    resource = from_wire(t.ReadResourceResult, GOLDEN[7][1])
    assert resource.contents[0] == t.BlobResourceContents(
        uri="file:///a.png", mime_type="image/png", blob=base64.b64decode("iVBORw0KGgo=")
    )
    assert isinstance(resource.contents[1], t.TextResourceContents)

    more = from_wire(t.InputRequiredResult, GOLDEN[9][1])
    assert more.input_requests is not None
    assert set(map(type, more.input_requests.values())) == {
        t.ElicitRequest,
        t.CreateMessageRequest,
        t.ListRootsRequest,
    }


def test_type_hints_of_every_class_resolve() -> None:
    for cls in CLASSES:
        typing.get_type_hints(cls)
