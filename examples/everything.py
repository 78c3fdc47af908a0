"""A server exposing every fixture of the official MCP conformance suite, plus a few extras.

Run it with ``python -m mcptrio serve examples/everything.py`` or
``python -m examples.everything``. The fixture names and payloads are fixed by the
conformance suite; the extras (``wait_for_cancellation``, ``get_cancellation_count``,
``test_trigger_resource_update``, ``test_list_roots``, ...) let interop tests observe
cancellation, subscriptions and roots.

The 2026-07-28 fixtures ask the client for input in the explicit multi-round form: the
handler reads ``current_request().input_responses`` and ``.request_state`` and returns an
:class:`~mcptrio.types.InputRequiredResult` until it has what it needs. The same handlers
serve legacy clients, which the framework asks with real requests.
"""

from __future__ import annotations

import base64
import importlib
import json
from typing import Annotated, Any, TypeGuard

import trio

import mcptrio
from mcptrio import Field, ToolError, current_request, embedded_resource, image, text
from mcptrio.types import (
    AudioContent,
    Completion,
    CompletionArgument,
    CompletionContext,
    CreateMessageRequest,
    CreateMessageRequestParams,
    ElicitRequest,
    ElicitRequestFormParams,
    EmbeddedResource,
    ImageContent,
    InputRequest,
    InputRequiredResult,
    ListRootsRequest,
    PromptMessage,
    PromptReference,
    RequestParams,
    ResourceTemplateReference,
    SamplingMessage,
    TextContent,
    TextResourceContents,
)

# A 1x1 red PNG and a minimal WAV file, as the conformance suite expects them.
TEST_IMAGE = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)
TEST_AUDIO = base64.b64decode("UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=")
WATCHED_URI = "test://watched-resource"

JSON_SCHEMA_2020_12_INPUT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}

ELICITATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "username": {"type": "string", "description": "User's response"},
        "email": {"type": "string", "description": "User's email address"},
    },
    "required": ["username", "email"],
}

SEP1034_MESSAGE = "Please review and update the form fields with defaults"
SEP1034_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "User name", "default": "John Doe"},
        "age": {"type": "integer", "description": "User age", "default": 30},
        "score": {"type": "number", "description": "User score", "default": 95.5},
        "status": {
            "type": "string",
            "description": "User status",
            "enum": ["active", "inactive", "pending"],
            "default": "active",
        },
        "verified": {"type": "boolean", "description": "Verification status", "default": True},
    },
    "required": [],
}

SEP1330_MESSAGE = "Please select options from the enum fields"
SEP1330_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "untitledSingle": {
            "type": "string",
            "description": "Select one option",
            "enum": ["option1", "option2", "option3"],
        },
        "titledSingle": {
            "type": "string",
            "description": "Select one option with titles",
            "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ],
        },
        "legacyEnum": {
            "type": "string",
            "description": "Select one option (legacy)",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {
            "type": "array",
            "description": "Select multiple options",
            "minItems": 1,
            "maxItems": 3,
            "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
        },
        "titledMulti": {
            "type": "array",
            "description": "Select multiple options with titles",
            "minItems": 1,
            "maxItems": 3,
            "items": {
                "anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"},
                ]
            },
        },
    },
    "required": [],
}

COMPLETION_VALUES = ("paris", "park", "party")

server = mcptrio.Server(
    "mcp-conformance-test-server",
    version="1.0.0",
    instructions="Every fixture of the MCP conformance suite, served by mcptrio.",
)

_state: dict[str, Any] = {"cancelled": 0, "watched": "Watched resource content"}
_cancel_seen = trio.Event()


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


# ---- tools --------------------------------------------------------------------------------


@server.tool(description="Tests simple text content response")
async def test_simple_text() -> str:
    return "This is a simple text response for testing."


@server.tool(description="Tests image content response")
async def test_image_content() -> ImageContent:
    return image(TEST_IMAGE, "image/png")


@server.tool(description="Tests audio content response")
async def test_audio_content() -> AudioContent:
    return mcptrio.audio(TEST_AUDIO, "audio/wav")


@server.tool(description="Tests embedded resource content response")
async def test_embedded_resource() -> EmbeddedResource:
    return embedded_resource(
        "test://embedded-resource",
        "This is an embedded resource content.",
        mime_type="text/plain",
    )


@server.tool(description="Tests response with multiple content types (text, image, resource)")
async def test_multiple_content_types() -> list[TextContent | ImageContent | EmbeddedResource]:
    return [
        text("Multiple content types test:"),
        image(TEST_IMAGE, "image/png"),
        embedded_resource(
            "test://mixed-content-resource",
            _compact({"test": "data", "value": 123}),
            mime_type="application/json",
        ),
    ]


@server.tool(description="Tests tool that emits log messages during execution")
async def test_tool_with_logging() -> str:
    ctx = current_request()
    await ctx.info("Tool execution started")
    await trio.sleep(0.05)
    await ctx.info("Tool processing data")
    await trio.sleep(0.05)
    await ctx.info("Tool execution completed")
    return "Tool with logging executed successfully"


@server.tool(description="Tests tool that reports progress notifications")
async def test_tool_with_progress() -> str:
    ctx = current_request()
    for step in (0, 50, 100):
        await ctx.report_progress(step, 100, f"Completed step {step} of 100")
        if step < 100:
            await trio.sleep(0.05)
    return "Tool with progress executed successfully"


@server.tool(description="Tests error response handling")
async def test_error_handling() -> str:
    raise ToolError("This tool intentionally returns an error for testing")


@server.tool(description="Tests server-initiated sampling (LLM completion request)")
async def test_sampling(prompt: str) -> str:
    """Ask the client's model.

    Args:
        prompt: The prompt to send to the LLM
    """
    result = await current_request().sample(prompt, max_tokens=100)
    content = result.content
    answer = getattr(content, "text", None) or "No response"
    return f"LLM response: {answer}"


def _elicitation_text(prefix: str, action: str, content: dict[str, Any] | None) -> str:
    return f"{prefix}: action={action}, content={_compact(content or {})}"


@server.tool(description="Tests server-initiated elicitation (user input request)")
async def test_elicitation(message: str) -> str:
    """Ask the user for a response.

    Args:
        message: The message to show the user
    """
    result = await current_request().elicit(message, ELICITATION_SCHEMA)
    return _elicitation_text("User response", result.action, result.content)


@server.tool(description="Tests elicitation with default values per SEP-1034")
async def test_elicitation_sep1034_defaults() -> str:
    result = await current_request().elicit(SEP1034_MESSAGE, SEP1034_SCHEMA)
    return _elicitation_text("Elicitation completed", result.action, result.content)


@server.tool(description="Tests elicitation with enum schema improvements per SEP-1330")
async def test_elicitation_sep1330_enums() -> str:
    result = await current_request().elicit(SEP1330_MESSAGE, SEP1330_SCHEMA)
    return _elicitation_text("Elicitation completed", result.action, result.content)


@server.tool(
    description="Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)",
    input_schema=JSON_SCHEMA_2020_12_INPUT_SCHEMA,
)
async def json_schema_2020_12_tool(**arguments: Any) -> str:
    return f"JSON Schema 2020-12 tool called with: {_compact(arguments)}"


@server.tool(
    description="Tests SSE stream disconnection and client reconnection (SEP-1699)."
    " The result arrives after the client reconnects."
)
async def test_reconnection() -> str:
    current_request().close_sse_stream()
    await trio.sleep(0.1)
    return (
        "Reconnection test completed successfully. If you received this, the client properly"
        " reconnected after stream closure."
    )


# ---- extras for interop tests -------------------------------------------------------------


@server.tool(description="Waits until cancelled (or for `seconds`) and counts cancellations")
async def wait_for_cancellation(seconds: float = 60.0) -> str:
    """Sleep; a cancelled call increments the counter read by get_cancellation_count.

    Args:
        seconds: How long to wait if nobody cancels.
    """
    try:
        await trio.sleep(seconds)
    except trio.Cancelled:
        global _cancel_seen
        _state["cancelled"] += 1
        _cancel_seen.set()
        _cancel_seen = trio.Event()
        raise
    return "not cancelled"


@server.tool(description="How many wait_for_cancellation calls were cancelled so far")
async def get_cancellation_count(at_least: int = 0) -> str:
    """The number of cancelled calls, once it has reached ``at_least``.

    Args:
        at_least: Wait until this many calls were cancelled (cancellation reaches the tool
            asynchronously, so a caller that just cancelled one should pass the count it expects).
    """
    while _state["cancelled"] < at_least:
        await _cancel_seen.wait()
    return str(_state["cancelled"])


@server.tool(description="Changes test://watched-resource and notifies its subscribers")
async def test_trigger_resource_update() -> str:
    # 2026-07-28 listeners hear it through the change bus either way.
    subscribed = any(WATCHED_URI in session.subscriptions for session in server.sessions)
    await server.notify_resource_updated(WATCHED_URI)
    if not subscribed:
        return f"No subscribers for {WATCHED_URI}"
    return f"Sent resource update for {WATCHED_URI}"


@server.tool(description="Returns the client's roots, one URI per line")
async def test_list_roots() -> str:
    roots = await current_request().list_roots()
    return "\n".join(root.uri for root in roots)


@server.tool(description="Notifies clients that the tool list changed")
async def test_trigger_tool_change() -> str:
    await server.notify_tools_changed()
    return "tools/list_changed sent"


@server.tool(description="Notifies clients that the prompt list changed")
async def test_trigger_prompt_change() -> str:
    await server.notify_prompts_changed()
    return "prompts/list_changed sent"


# ---- 2026-07-28 fixtures ------------------------------------------------------------------

NAME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}},
    "required": ["name"],
}
CONFIRM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
}
COLOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"color": {"type": "string"}},
    "required": ["color"],
}
CONTEXT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"context": {"type": "string"}},
    "required": ["context"],
}
AWAITING_CONFIRMATION = "awaiting-confirmation"


def _form(message: str, schema: dict[str, Any]) -> ElicitRequest:
    return ElicitRequest(params=ElicitRequestFormParams(message=message, requested_schema=schema))


def _sampling(prompt: str, max_tokens: int) -> CreateMessageRequest:
    message = SamplingMessage(role="user", content=TextContent(text=prompt))
    params = CreateMessageRequestParams(messages=[message], max_tokens=max_tokens)
    return CreateMessageRequest(params=params)


ROOTS_REQUEST = ListRootsRequest(params=RequestParams())
NAME_REQUEST = _form("What is your name?", NAME_SCHEMA)
CONFIRM_REQUEST = _form("Please confirm", CONFIRM_SCHEMA)
GREETING_REQUEST = _sampling("Generate a greeting", 50)
STEP1_REQUEST = _form("Step 1: What is your name?", NAME_SCHEMA)
STEP2_REQUEST = _form("Step 2: What is your favorite color?", COLOR_SCHEMA)


def _is_answer(answer: Any, input_request: InputRequest) -> TypeGuard[dict[str, Any]]:
    """True when ``answer`` has the shape of a result of ``input_request``'s method."""
    if not isinstance(answer, dict):
        return False
    if isinstance(input_request, ElicitRequest):
        action, content = answer.get("action"), answer.get("content")
        if action == "accept":
            return isinstance(content, dict)
        return action in ("decline", "cancel") and (content is None or isinstance(content, dict))
    if isinstance(input_request, CreateMessageRequest):
        return "content" in answer and isinstance(answer.get("model"), str)
    return isinstance(answer.get("roots"), list)


def _gather(requests: dict[str, InputRequest]) -> dict[str, Any] | InputRequiredResult:
    """The client's answers to ``requests``, collected over as many rounds as it takes.

    Answers from earlier rounds travel in ``request_state`` (the framework seals it, so the
    client can neither read nor change it); a round asks only the questions still open.
    Malformed answers count as missing, and keys nobody asked for are ignored.
    """
    ctx = current_request()
    answers: dict[str, Any] = json.loads(ctx.request_state) if ctx.request_state else {}
    responses = ctx.input_responses or {}
    for key, input_request in requests.items():
        if _is_answer(responses.get(key), input_request):
            answers[key] = responses[key]
    missing = {key: request for key, request in requests.items() if key not in answers}
    if missing:
        return InputRequiredResult(input_requests=missing, request_state=_compact(answers))
    return answers


def _form_text(answer: dict[str, Any], field: str) -> str | None:
    """The accepted form's ``field``; None when the user declined or cancelled."""
    value = answer["content"].get(field) if answer["action"] == "accept" else None
    return None if value is None else str(value)


def _sampled_text(answer: dict[str, Any]) -> str:
    content = answer["content"]
    blocks = content if isinstance(content, list) else [content]
    texts = [
        block["text"]
        for block in blocks
        if isinstance(block, dict) and block.get("type") == "text" and "text" in block
    ]
    return " ".join(map(str, texts)) or "No response"


def _roots_text(answer: dict[str, Any]) -> str:
    uris = [root.get("uri") for root in answer["roots"] if isinstance(root, dict)]
    return ", ".join(map(str, uris)) or "none"


@server.tool(description="Needs the sampling client capability: -32021 when it is not declared")
async def test_missing_capability() -> str:
    result = await current_request().sample("Reply with one word.", max_tokens=20)
    return f"LLM response: {getattr(result.content, 'text', None) or 'No response'}"


@server.tool(
    description="Asks for confirmation; its response stream carries notifications and the"
    " result, never a request (2026-07-28: input_required)"
)
async def test_streaming_elicitation() -> str:
    ctx = current_request()
    await ctx.report_progress(1, 2, "asking for confirmation")
    result = await ctx.elicit("Please confirm to continue", CONFIRM_SCHEMA)
    return _elicitation_text("Streaming elicitation completed", result.action, result.content)


@server.tool(description="Logs at info level: sent only to a client that asked for log messages")
async def test_logging_tool() -> str:
    await current_request().info("test_logging_tool ran")
    return "Logged one info message"


@server.tool(
    description="Echoes an argument that 2026-07-28 HTTP clients mirror into the"
    " Mcp-Param-Message header (SEP-2243)"
)
async def test_custom_headers(
    message: Annotated[
        str,
        Field(
            description="Text to echo (header Mcp-Param-Message)", extra={"x-mcp-header": "Message"}
        ),
    ],
) -> str:
    return f"Echo: {message}"


# These return ``Any``: a handler's return annotation becomes its output schema, and an
# InputRequiredResult is not part of the tool's output.


@server.tool(description="Asks the user's name with an input_required result (SEP-2322)")
async def test_input_required_result_elicitation() -> Any:
    answers = _gather({"user_name": NAME_REQUEST})
    if isinstance(answers, InputRequiredResult):
        return answers
    name = _form_text(answers["user_name"], "name")
    return f"Hello, {name}!" if name is not None else "No name given"


@server.tool(description="Asks the client's model a question with an input_required result")
async def test_input_required_result_sampling() -> Any:
    question = _sampling("What is the capital of France?", 100)
    answers = _gather({"capital_question": question})
    if isinstance(answers, InputRequiredResult):
        return answers
    return f"LLM response: {_sampled_text(answers['capital_question'])}"


@server.tool(description="Asks for the client's roots with an input_required result")
async def test_input_required_result_list_roots() -> Any:
    answers = _gather({"client_roots": ROOTS_REQUEST})
    if isinstance(answers, InputRequiredResult):
        return answers
    return f"Client roots: {_roots_text(answers['client_roots'])}"


@server.tool(description="Round-trips its own requestState and checks it on the retry")
async def test_input_required_result_request_state() -> Any:
    ctx = current_request()
    confirm = (ctx.input_responses or {}).get("confirm")
    if ctx.request_state == AWAITING_CONFIRMATION and _is_answer(confirm, CONFIRM_REQUEST):
        return f"state-ok: the requestState came back intact (action={confirm['action']})"
    return InputRequiredResult(
        input_requests={"confirm": CONFIRM_REQUEST}, request_state=AWAITING_CONFIRMATION
    )


@server.tool(description="Asks for a name, a sampled greeting and the roots in one round")
async def test_input_required_result_multiple_inputs() -> Any:
    answers = _gather(
        {"user_name": NAME_REQUEST, "greeting": GREETING_REQUEST, "client_roots": ROOTS_REQUEST}
    )
    if isinstance(answers, InputRequiredResult):
        return answers
    name = _form_text(answers["user_name"], "name") or "(declined)"
    greeting = _sampled_text(answers["greeting"])
    return f"name={name}; greeting={greeting}; roots={_roots_text(answers['client_roots'])}"


@server.tool(description="Asks two questions in two rounds, carrying the first answer along")
async def test_input_required_result_multi_round() -> Any:
    # Step 2 is asked only once step 1 is answered: a round that answers step 1 gets a
    # new input_required result whose state now carries the name.
    step1 = _gather({"step1": STEP1_REQUEST})
    if isinstance(step1, InputRequiredResult):
        return step1
    both = _gather({"step1": STEP1_REQUEST, "step2": STEP2_REQUEST})
    if isinstance(both, InputRequiredResult):
        return both
    name = _form_text(both["step1"], "name") or "(declined)"
    color = _form_text(both["step2"], "color") or "(declined)"
    return f"{name}'s favorite color is {color}"


@server.tool(description="Issues an integrity-protected requestState; a tampered one is rejected")
async def test_input_required_result_tampered_state() -> Any:
    answers = _gather({"confirm": CONFIRM_REQUEST})
    if isinstance(answers, InputRequiredResult):
        return answers
    return f"requestState verified (action={answers['confirm']['action']})"


@server.tool(description="Asks only for the kinds of input the request's capabilities declare")
async def test_input_required_result_capabilities() -> Any:
    capabilities = current_request().client_capabilities
    wanted: dict[str, InputRequest] = {}
    if capabilities.elicitation is not None:
        wanted["user_name"] = NAME_REQUEST
    if capabilities.sampling is not None:
        wanted["greeting"] = GREETING_REQUEST
    if capabilities.roots is not None:
        wanted["client_roots"] = ROOTS_REQUEST
    if not wanted:
        return "The client declared none of elicitation, sampling and roots: nothing to ask"
    answers = _gather(wanted)
    if isinstance(answers, InputRequiredResult):
        return answers
    return "Answered: " + ", ".join(sorted(answers))


# ---- resources ----------------------------------------------------------------------------


@server.resource(
    "test://static-text",
    name="static-text",
    title="Static Text Resource",
    description="A static text resource for testing",
    mime_type="text/plain",
)
async def static_text() -> str:
    return "This is the content of the static text resource."


@server.resource(
    "test://static-binary",
    name="static-binary",
    title="Static Binary Resource",
    description="A static binary resource (image) for testing",
    mime_type="image/png",
)
async def static_binary() -> bytes:
    return TEST_IMAGE


@server.resource(
    "test://template/{id}/data",
    name="template",
    title="Resource Template",
    description="A resource template with parameter substitution",
    mime_type="application/json",
)
async def template(id: str) -> TextResourceContents:
    return TextResourceContents(
        uri=f"test://template/{id}/data",
        mime_type="application/json",
        text=_compact({"id": id, "templateTest": True, "data": f"Data for ID: {id}"}),
    )


@server.resource(
    WATCHED_URI,
    name="watched-resource",
    title="Watched Resource",
    description="A resource that changes when test_trigger_resource_update is called",
    mime_type="text/plain",
)
async def watched_resource() -> str:
    return str(_state["watched"])


# ---- prompts ------------------------------------------------------------------------------


@server.prompt(title="Simple Test Prompt", description="A simple prompt without arguments")
async def test_simple_prompt() -> str:
    return "This is a simple prompt for testing."


@server.prompt(title="Prompt With Arguments", description="A prompt with required arguments")
async def test_prompt_with_arguments(arg1: str, arg2: str) -> str:
    """Render both arguments.

    Args:
        arg1: First test argument
        arg2: Second test argument
    """
    return f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"


@server.prompt(
    title="Prompt With Embedded Resource",
    description="A prompt that includes an embedded resource",
)
async def test_prompt_with_embedded_resource(resourceUri: str) -> list[Any]:
    """Embed a resource.

    Args:
        resourceUri: URI of the resource to embed
    """
    return [
        PromptMessage(
            role="user",
            content=embedded_resource(
                resourceUri, "Embedded resource content for testing.", mime_type="text/plain"
            ),
        ),
        "Please process the embedded resource above.",
    ]


@server.prompt(title="Prompt With Image", description="A prompt that includes image content")
async def test_prompt_with_image() -> list[Any]:
    return [image(TEST_IMAGE, "image/png"), "Please analyze the image above."]


@server.prompt(
    title="Prompt Needing Input",
    description="Asks the user for context (input_required) before rendering (SEP-2322)",
)
async def test_input_required_result_prompt() -> Any:
    question = _form("What context should the prompt use?", CONTEXT_SCHEMA)
    answers = _gather({"user_context": question})
    if isinstance(answers, InputRequiredResult):
        return answers
    context = _form_text(answers["user_context"], "context") or "no particular context"
    return f"Answer the next question with this context in mind: {context}"


# ---- completion ---------------------------------------------------------------------------


@server.completion()
async def complete(
    ref: PromptReference | ResourceTemplateReference,
    argument: CompletionArgument,
    context: CompletionContext | None,
) -> Completion:
    if (
        isinstance(ref, PromptReference)
        and ref.name == "test_prompt_with_arguments"
        and argument.name == "arg1"
    ):
        values = [v for v in COMPLETION_VALUES if v.startswith(argument.value)]
        return Completion(values=values, total=len(values), has_more=False)
    return Completion(values=[], total=0, has_more=False)


# ---- the tasks extension ------------------------------------------------------------------

# A sibling module: found through the package when this file runs as ``examples.everything``,
# and by its bare name when ``python -m mcptrio serve`` loads this file by path (which puts
# the file's directory on sys.path).
_tasks = importlib.import_module(
    f"{__package__}.everything_tasks" if __package__ else "everything_tasks"
)
_tasks.register(server)


if __name__ == "__main__":
    trio.run(mcptrio.serve_stdio, server)
