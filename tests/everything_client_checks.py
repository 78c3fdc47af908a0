"""What our client checks against a server exposing the everything fixture set (the SDK's).

Shared by the stdio and HTTP interop tests so both directions check the same list.
"""

from __future__ import annotations

import base64

import pytest
import trio

from mcptrio import Client, MCPError
from mcptrio._protocol.jsonrpc import Notification
from mcptrio.types import (
    AudioContent,
    CallToolResult,
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequestFormParams,
    ElicitRequestURLParams,
    ElicitResult,
    EmbeddedResource,
    GetPromptResult,
    ImageContent,
    LoggingMessageNotificationParams,
    PromptReference,
    Root,
    TextContent,
)

WATCHED = "test://watched-resource"
ROOTS = [Root(uri="file:///tmp/one"), Root(uri="file:///tmp/two")]
TEST_IMAGE = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)


class Recorder:
    def __init__(self) -> None:
        self.logs: list[LoggingMessageNotificationParams] = []
        self.notifications: list[Notification] = []
        self.samplings: list[CreateMessageRequestParams] = []
        self.elicitations: list[ElicitRequestFormParams | ElicitRequestURLParams] = []
        self.updated = trio.Event()

    async def sampling(self, params: CreateMessageRequestParams) -> CreateMessageResult:
        self.samplings.append(params)
        return CreateMessageResult(
            role="assistant", content=TextContent(text="mcptrio says hi"), model="test-model"
        )

    async def elicitation(
        self, params: ElicitRequestFormParams | ElicitRequestURLParams
    ) -> ElicitResult:
        self.elicitations.append(params)
        return ElicitResult(action="accept", content={"username": "ada", "email": "a@b.c"})

    async def on_log(self, params: LoggingMessageNotificationParams) -> None:
        self.logs.append(params)

    async def on_notification(self, notification: Notification) -> None:
        self.notifications.append(notification)
        if notification.method == "notifications/resources/updated":
            self.updated.set()


def text_of(result: CallToolResult | GetPromptResult) -> str:
    block = result.content[0] if isinstance(result, CallToolResult) else result.messages[0].content
    assert isinstance(block, TextContent), block
    return block.text


async def drive_everything_server(client: Client, recorder: Recorder) -> None:
    """Every fixture: content types, errors, progress, logging, sampling, elicitation, roots,
    resources with subscriptions, prompts, completion, cancellation, ping."""
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    assert client.protocol_version == "2025-11-25"
    assert client.server_info.name == "mcp-conformance-test-server"
    tools = {tool.name: tool for tool in await client.all_tools()}
    assert {"test_simple_text", "test_sampling", "json_schema_2020_12_tool"} <= set(tools)
    assert tools["json_schema_2020_12_tool"].input_schema["$defs"]["address"]

    # Every content type.
    simple = await client.call_tool("test_simple_text")
    assert text_of(simple) == "This is a simple text response for testing."
    image = await client.call_tool("test_image_content")
    assert image.content == [ImageContent(data=TEST_IMAGE, mime_type="image/png")]
    audio = await client.call_tool("test_audio_content")
    assert isinstance(audio.content[0], AudioContent)
    assert audio.content[0].mime_type == "audio/wav"
    embedded = await client.call_tool("test_embedded_resource")
    assert isinstance(embedded.content[0], EmbeddedResource)
    assert embedded.content[0].resource.uri == "test://embedded-resource"
    mixed = await client.call_tool("test_multiple_content_types")
    assert [type(block) for block in mixed.content] == [
        TextContent,
        ImageContent,
        EmbeddedResource,
    ]

    # Errors: a tool error is a result; an unknown tool is a protocol error.
    failed = await client.call_tool("test_error_handling")
    assert failed.is_error
    with pytest.raises(MCPError) as info:
        await client.call_tool("no_such_tool")
    assert info.value.code == -32602
    bad = await client.call_tool("test_sampling", {})
    assert bad.is_error
    assert not recorder.samplings

    # Progress and logging.
    await client.set_logging_level("debug")
    progressed = await client.call_tool("test_tool_with_progress", on_progress=on_progress)
    assert text_of(progressed) == "Tool with progress executed successfully"
    assert [p[0] for p in progress] == [0.0, 50.0, 100.0]
    logged = await client.call_tool("test_tool_with_logging")
    assert text_of(logged) == "Tool with logging executed successfully"
    assert [entry.data for entry in recorder.logs][-3:] == [
        "Tool execution started",
        "Tool processing data",
        "Tool execution completed",
    ]

    # Server-to-client requests: sampling, elicitation, roots.
    sampled = await client.call_tool("test_sampling", {"prompt": "Say hi"})
    assert text_of(sampled) == "LLM response: mcptrio says hi"
    assert recorder.samplings[0].max_tokens == 100
    elicited = await client.call_tool("test_elicitation", {"message": "Who?"})
    assert text_of(elicited) == (
        'User response: action=accept, content={"username":"ada","email":"a@b.c"}'
    )
    assert recorder.elicitations[0].message == "Who?"
    roots = await client.call_tool("test_list_roots")
    assert text_of(roots) == "file:///tmp/one\nfile:///tmp/two"

    # Resources: read, templates, subscribe.
    listed = {r.uri for r in await client.all_resources()}
    assert {"test://static-text", "test://static-binary", WATCHED} <= listed
    templates = [t.uri_template for t in await client.all_resource_templates()]
    assert "test://template/{id}/data" in templates
    static = await client.read_resource("test://static-text")
    assert static.contents[0].text == (  # type: ignore[union-attr]
        "This is the content of the static text resource."
    )
    binary = await client.read_resource("test://static-binary")
    assert binary.contents[0].blob == TEST_IMAGE  # type: ignore[union-attr]
    templated = await client.read_resource("test://template/123/data")
    assert templated.contents[0].text == (  # type: ignore[union-attr]
        '{"id":"123","templateTest":true,"data":"Data for ID: 123"}'
    )
    await client.subscribe_resource(WATCHED)
    triggered = await client.call_tool("test_trigger_resource_update")
    assert text_of(triggered) == f"Sent resource update for {WATCHED}"
    await recorder.updated.wait()
    await client.unsubscribe_resource(WATCHED)

    # Prompts and completion.
    prompts = {p.name for p in await client.all_prompts()}
    assert "test_prompt_with_arguments" in prompts
    prompt = await client.get_prompt("test_prompt_with_arguments", {"arg1": "a", "arg2": "b"})
    assert text_of(prompt) == "Prompt with arguments: arg1='a', arg2='b'"
    image_prompt = await client.get_prompt("test_prompt_with_image")
    assert isinstance(image_prompt.messages[0].content, ImageContent)
    completion = await client.complete(
        PromptReference(name="test_prompt_with_arguments"), "arg1", "par"
    )
    assert completion.values == ["paris", "park", "party"]

    # Cancellation: the SDK server counts the cancelled call.
    before = int(text_of(await client.call_tool("get_cancellation_count")))
    with trio.move_on_after(0.5):
        await client.call_tool("wait_for_cancellation")
    # The SDK server learns of the cancellation asynchronously and only its
    # counter shows it, so asking again is the only way to observe it.
    with trio.fail_after(10):
        while int(text_of(await client.call_tool("get_cancellation_count"))) == before:  # noqa: ASYNC110
            await trio.sleep(0.05)
    await client.ping()
