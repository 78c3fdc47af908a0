"""The tasks-extension fixtures of the official MCP conformance suite (SEP-2663).

``register(server)`` enables the ``io.modelcontextprotocol/tasks`` extension on ``server`` and
adds the tools the ``tasks-*`` scenarios call:

- ``greet``: never a task.
- ``slow_compute(seconds, label)``: a task when the client declares the extension; it settles
  to ``cancelled`` when cancelled while it sleeps.
- ``failing_job``: always a task; ends ``completed`` with an ``isError`` result.
- ``protocol_error_job``: a task that ends ``failed`` with a JSON-RPC error.
- ``confirm_delete(filename)``: a task that waits in ``input_required`` for a confirmation
  (answered with ``tasks/update``).
- ``multi_input``: a task asking two questions at once; each can be answered on its own.
- ``test_tool_with_task``: asks the user's name in an ordinary ``input_required`` round on
  the request, then becomes a task whose result greets that name.
"""

from __future__ import annotations

import json
from typing import Any

import trio

from mcptrio import InternalError, Server, ToolError, begin_task, current_request
from mcptrio.types import (
    ElicitRequest,
    ElicitRequestFormParams,
    InputRequest,
    InputRequiredResult,
)

__all__ = ["register"]

JOB_SECONDS = 0.3
"""How long the fixed-length jobs work before they end."""

CONFIRM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"confirm": {"type": "boolean", "description": "Delete the file?"}},
    "required": ["confirm"],
}
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "A value"},
        "confirm": {"type": "boolean", "description": "Confirm it"},
    },
}
NAME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string", "description": "Your name"}},
    "required": ["name"],
}


def _form(message: str, schema: dict[str, Any]) -> ElicitRequest:
    return ElicitRequest(params=ElicitRequestFormParams(message=message, requested_schema=schema))


def _gather(questions: dict[str, InputRequest]) -> dict[str, Any] | InputRequiredResult:
    """The answers to ``questions`` so far (carried in request_state between rounds), or the
    ``InputRequiredResult`` asking the ones still open."""
    ctx = current_request()
    answers: dict[str, Any] = json.loads(ctx.request_state) if ctx.request_state else {}
    responses = ctx.input_responses or {}
    for key in questions:
        answer = responses.get(key)
        if isinstance(answer, dict) and answer.get("action") in ("accept", "decline", "cancel"):
            answers[key] = answer
    missing = {key: question for key, question in questions.items() if key not in answers}
    if missing:
        return InputRequiredResult(input_requests=missing, request_state=json.dumps(answers))
    return answers


def _accepted(answer: dict[str, Any], field: str) -> Any:
    """The accepted form's ``field`` (None when declined, cancelled or left out)."""
    content = answer.get("content")
    if answer.get("action") != "accept" or not isinstance(content, dict):
        return None
    return content.get(field)


def register(server: Server) -> None:
    """Enable the tasks extension on ``server`` and add the fixtures (call before serving)."""
    if server.task_manager is None:
        server.enable_tasks()

    @server.tool(description="Greets someone; never runs as a task")
    async def greet(name: str) -> str:
        return f"Hello, {name}!"

    @server.tool(task="optional", description="Sleeps for a while, then reports; task optional")
    async def slow_compute(seconds: float = 1.0, label: str = "") -> str:
        await trio.sleep(max(0.0, seconds))
        return f"Computed {label or 'result'} after {seconds:g} seconds"

    @server.tool(task="required", description="A job that ends in a tool error; always a task")
    async def failing_job() -> str:
        await trio.sleep(JOB_SECONDS)
        raise ToolError("the job failed: the input data is invalid")

    @server.tool(task="optional", description="A job that ends in a JSON-RPC error")
    async def protocol_error_job() -> str:
        await trio.sleep(JOB_SECONDS)
        raise InternalError("the job's backend failed")

    # These return Any: an InputRequiredResult is not part of a tool's output schema.

    @server.tool(task="optional", description="Deletes a file after the user confirms it")
    async def confirm_delete(filename: str) -> Any:
        ctx = current_request()
        answer = await ctx.elicit(f"Delete {filename}?", CONFIRM_SCHEMA)
        confirmed = answer.action == "accept" and bool((answer.content or {}).get("confirm"))
        return f"Deleted {filename}" if confirmed else f"Kept {filename}"

    @server.tool(task="optional", description="Asks two questions at once, then reports both")
    async def multi_input() -> Any:
        answers = _gather(
            {
                "first": _form("First value?", ANSWER_SCHEMA),
                "second": _form("Second value?", ANSWER_SCHEMA),
            }
        )
        if isinstance(answers, InputRequiredResult):
            return answers
        first = _accepted(answers["first"], "name")
        second = _accepted(answers["second"], "name")
        return f"Got {first} and {second}"

    @server.tool(
        task="required",
        defer_task=True,
        description="Asks the user's name on the request, then finishes as a task",
    )
    async def test_tool_with_task() -> Any:
        answers = _gather({"user_name": _form("What is your name?", NAME_SCHEMA)})
        if isinstance(answers, InputRequiredResult):
            return answers
        name = _accepted(answers["user_name"], "name") or "stranger"
        await begin_task()
        await trio.sleep(JOB_SECONDS)
        return f"Hello, {name}! Your task is done."
