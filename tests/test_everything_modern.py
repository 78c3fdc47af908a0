"""The 2026-07-28 fixtures of ``examples/everything.py``, driven in memory with raw requests.

Each test speaks JSON-RPC to :func:`~mcptrio.serve_connection` the way the conformance
suite does over HTTP: every request carries its own ``_meta``, input is gathered in
multi-round ``input_required`` exchanges, and changes arrive on ``subscriptions/listen``.
One test checks over HTTP that a modern ``initialize`` is a removed method while a legacy
one still opens a session; the last runs the fixtures through the high-level client in
both eras.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import httpx
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from examples import everything
from mcptrio import HttpConfig, open_client, serve_http
from mcptrio._protocol.jsonrpc import ErrorResponse, Notification, Request, Response
from mcptrio._server.connection import serve_connection
from mcptrio.testing import MemoryTransport, json_objects, json_values, memory_transport_pair
from mcptrio.types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequestFormParams,
    ElicitRequestURLParams,
    ElicitResult,
    Root,
    TextContent,
)

VERSION = "2026-07-28"
ALL_CAPABILITIES: dict[str, Any] = {"sampling": {}, "elicitation": {}, "roots": {}}
SUBSCRIPTION_ID = "io.modelcontextprotocol/subscriptionId"

NAME_ANSWER = {"action": "accept", "content": {"name": "Alice"}}
CONFIRM_ANSWER = {"action": "accept", "content": {"ok": True}}
SAMPLED_ANSWER = {
    "role": "assistant",
    "content": {"type": "text", "text": "Paris."},
    "model": "test-model",
    "stopReason": "endTurn",
}
ROOTS_ANSWER = {"roots": [{"uri": "file:///test/root", "name": "Test Root"}]}


def meta(capabilities: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """The ``_meta`` every 2026-07-28 request carries."""
    return {
        "io.modelcontextprotocol/protocolVersion": VERSION,
        "io.modelcontextprotocol/clientCapabilities": (
            ALL_CAPABILITIES if capabilities is None else capabilities
        ),
        "io.modelcontextprotocol/clientInfo": {"name": "raw-test", "version": "0"},
        **extra,
    }


class RawClient:
    """Sends raw requests and reads the connection, keeping what arrived out of turn."""

    def __init__(self, transport: MemoryTransport) -> None:
        self.transport = transport
        self.notifications: list[Notification] = []
        self._next_id = 1
        self.early: dict[Any, Response | ErrorResponse] = {}
        """Answers that arrived before anyone waited for them, by request id."""

    async def send(self, method: str, params: dict[str, Any]) -> int:
        request_id = self._next_id
        self._next_id += 1
        await self.transport.send(Request(request_id, method, params))
        return request_id

    async def reply(self, request_id: int) -> Response | ErrorResponse:
        """The answer to ``request_id``; notifications on the way are kept in order."""
        while request_id not in self.early:
            message = await self.transport.receive()
            if isinstance(message, Notification):
                self.notifications.append(message)
            elif isinstance(message, Response | ErrorResponse):
                self.early[message.id] = message
            else:
                raise AssertionError(f"a 2026-07-28 server sent {message!r}")
        return self.early.pop(request_id)

    async def notification(self) -> Notification:
        """The next notification (one kept earlier first)."""
        if self.notifications:
            return self.notifications.pop(0)
        message = await self.transport.receive()
        if isinstance(message, Response | ErrorResponse):
            self.early[message.id] = message
            return await self.notification()
        assert isinstance(message, Notification), message
        return message

    async def request(self, method: str, params: dict[str, Any]) -> Response | ErrorResponse:
        return await self.reply(await self.send(method, params))

    async def result(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        answer = await self.request(method, params)
        assert isinstance(answer, Response), answer
        return answer.result

    async def call(
        self,
        tool: str,
        arguments: dict[str, Any] | None = None,
        *,
        capabilities: dict[str, Any] | None = None,
        **mrtr: Any,
    ) -> dict[str, Any]:
        """``tools/call``; ``mrtr`` holds ``inputResponses``/``requestState`` for a retry."""
        params = {"name": tool, "arguments": arguments or {}, "_meta": meta(capabilities), **mrtr}
        return await self.result("tools/call", params)

    async def call_error(self, tool: str, **params: Any) -> ErrorResponse:
        answer = await self.request(
            "tools/call", {"name": tool, "arguments": {}, "_meta": meta(), **params}
        )
        assert isinstance(answer, ErrorResponse), answer
        return answer


@asynccontextmanager
async def connect() -> AsyncIterator[RawClient]:
    client_end, server_end = memory_transport_pair()
    async with trio.open_nursery() as nursery:
        await nursery.start(everything.server.serve_background)
        await nursery.start(serve_connection, everything.server, server_end)
        yield RawClient(client_end)
        nursery.cancel_scope.cancel()


def text_of(result: dict[str, Any]) -> str:
    assert result["resultType"] == "complete", result
    assert not result.get("isError"), result
    (block,) = result["content"]
    assert block["type"] == "text"
    text: str = block["text"]
    return text


def asked(result: dict[str, Any]) -> dict[str, Any]:
    """The ``inputRequests`` of an ``input_required`` result (which always has state)."""
    assert result["resultType"] == "input_required", result
    assert isinstance(result["requestState"], str) and result["requestState"]
    assert "content" not in result and "ttlMs" not in result
    requests: dict[str, Any] = result["inputRequests"]
    return requests


def retry(result: dict[str, Any], **answers: Any) -> dict[str, Any]:
    return {"inputResponses": answers, "requestState": result["requestState"]}


# ----- one round of questions -------------------------------------------------------------------


async def test_elicitation_asks_for_the_name_then_greets() -> None:
    async with connect() as client:
        first = await client.call("test_input_required_result_elicitation")
        assert asked(first) == {
            "user_name": {
                "method": "elicitation/create",
                "params": {
                    "mode": "form",
                    "message": "What is your name?",
                    "requestedSchema": everything.NAME_SCHEMA,
                },
            }
        }
        second = await client.call(
            "test_input_required_result_elicitation", **retry(first, user_name=NAME_ANSWER)
        )
    assert text_of(second) == "Hello, Alice!"


async def test_sampling_asks_the_model_then_reports_its_answer() -> None:
    async with connect() as client:
        first = await client.call("test_input_required_result_sampling")
        assert asked(first) == {
            "capital_question": {
                "method": "sampling/createMessage",
                "params": {
                    "messages": [
                        {
                            "role": "user",
                            "content": {"type": "text", "text": "What is the capital of France?"},
                        }
                    ],
                    "maxTokens": 100,
                },
            }
        }
        second = await client.call(
            "test_input_required_result_sampling", **retry(first, capital_question=SAMPLED_ANSWER)
        )
    assert text_of(second) == "LLM response: Paris."


async def test_list_roots_asks_for_the_roots_then_names_them() -> None:
    async with connect() as client:
        first = await client.call("test_input_required_result_list_roots")
        assert asked(first) == {"client_roots": {"method": "roots/list", "params": {}}}
        second = await client.call(
            "test_input_required_result_list_roots", **retry(first, client_roots=ROOTS_ANSWER)
        )
    assert text_of(second) == "Client roots: file:///test/root"


async def test_prompt_asks_for_context_then_renders() -> None:
    name = "test_input_required_result_prompt"
    async with connect() as client:
        first = await client.result("prompts/get", {"name": name, "_meta": meta()})
        (request,) = asked(first).values()
        assert request["method"] == "elicitation/create"
        assert request["params"]["message"] == "What context should the prompt use?"
        answer = {"action": "accept", "content": {"context": "test context"}}
        second = await client.result(
            "prompts/get", {"name": name, "_meta": meta(), **retry(first, user_context=answer)}
        )
    assert second["resultType"] == "complete"
    (message,) = second["messages"]
    assert message["content"]["text"].endswith("with this context in mind: test context")


async def test_request_state_must_come_back_for_state_ok() -> None:
    tool = "test_input_required_result_request_state"
    async with connect() as client:
        first = await client.call(tool)
        assert list(asked(first)) == ["confirm"]
        without_state = await client.call(tool, inputResponses={"confirm": CONFIRM_ANSWER})
        assert list(asked(without_state)) == ["confirm"]
        second = await client.call(tool, **retry(first, confirm=CONFIRM_ANSWER))
    assert text_of(second).startswith("state-ok")


async def test_multiple_inputs_are_asked_together_and_kept_across_rounds() -> None:
    tool = "test_input_required_result_multiple_inputs"
    async with connect() as client:
        first = await client.call(tool)
        requests = asked(first)
        assert {key: r["method"] for key, r in requests.items()} == {
            "user_name": "elicitation/create",
            "greeting": "sampling/createMessage",
            "client_roots": "roots/list",
        }
        # Answering part of the questions gets the rest asked again; the answers given so
        # far travel in the new requestState.
        partial = await client.call(tool, **retry(first, user_name=NAME_ANSWER))
        assert set(asked(partial)) == {"greeting", "client_roots"}
        done = await client.call(
            tool, **retry(partial, greeting=SAMPLED_ANSWER, client_roots=ROOTS_ANSWER)
        )
    assert text_of(done) == "name=Alice; greeting=Paris.; roots=file:///test/root"


async def test_multi_round_carries_the_first_answer_into_the_third_round() -> None:
    tool = "test_input_required_result_multi_round"
    async with connect() as client:
        first = await client.call(tool)
        assert asked(first)["step1"]["params"]["message"] == "Step 1: What is your name?"
        second = await client.call(tool, **retry(first, step1=NAME_ANSWER))
        assert list(asked(second)) == ["step2"]
        assert second["inputRequests"]["step2"]["params"]["requestedSchema"] == (
            everything.COLOR_SCHEMA
        )
        assert second["requestState"] != first["requestState"]
        color = {"action": "accept", "content": {"color": "blue"}}
        third = await client.call(tool, **retry(second, step2=color))
    assert text_of(third) == "Alice's favorite color is blue"


async def test_a_declined_question_completes_without_an_answer() -> None:
    async with connect() as client:
        first = await client.call("test_input_required_result_elicitation")
        second = await client.call(
            "test_input_required_result_elicitation",
            **retry(first, user_name={"action": "decline"}),
        )
    assert text_of(second) == "No name given"


# ----- what the client sends back ---------------------------------------------------------------


async def test_tampered_state_is_rejected_with_invalid_params() -> None:
    tool = "test_input_required_result_tampered_state"
    async with connect() as client:
        first = await client.call(tool)
        assert list(asked(first)) == ["confirm"]
        error = await client.call_error(
            tool,
            inputResponses={"confirm": CONFIRM_ANSWER},
            requestState=first["requestState"] + "-TAMPERED",
        )
        assert error.code == -32602
        assert "requestState was rejected" in error.message
        intact = await client.call(tool, **retry(first, confirm=CONFIRM_ANSWER))
    assert text_of(intact) == "requestState verified (action=accept)"


async def test_state_issued_for_another_tool_is_rejected() -> None:
    async with connect() as client:
        first = await client.call("test_input_required_result_tampered_state")
        error = await client.call_error(
            "test_input_required_result_elicitation",
            inputResponses={"user_name": NAME_ANSWER},
            requestState=first["requestState"],
        )
    assert (error.code, error.data) == (-32602, {"reason": "mismatch"})


async def test_a_wrong_key_is_asked_again_and_extra_keys_are_ignored() -> None:
    tool = "test_input_required_result_elicitation"
    async with connect() as client:
        wrong = await client.call(tool, inputResponses={"wrong_key": NAME_ANSWER})
        assert list(asked(wrong)) == ["user_name"]
        extra = {"unknown_extra_key": {"action": "accept", "content": {"foo": "bar"}}}
        done = await client.call(tool, inputResponses={"user_name": NAME_ANSWER, **extra})
    assert text_of(done) == "Hello, Alice!"


ELICIT_ANSWERS = st.fixed_dictionaries(
    {"action": st.sampled_from(["accept", "decline", "cancel", "maybe"])},
    optional={"content": st.one_of(json_objects(), json_values())},
)


@settings(max_examples=60, deadline=None)
@given(answer=st.one_of(json_values(), ELICIT_ANSWERS))
async def test_a_malformed_answer_never_completes_the_call(answer: Any) -> None:
    tool = "test_input_required_result_elicitation"
    async with connect() as client:
        reply = await client.request(
            "tools/call",
            {
                "name": tool,
                "arguments": {},
                "_meta": meta(),
                "inputResponses": {"user_name": answer},
            },
        )
    action, content = (
        (answer.get("action"), answer.get("content")) if isinstance(answer, dict) else (None, None)
    )
    well_formed = (action == "accept" and isinstance(content, dict)) or (
        action in ("decline", "cancel") and (content is None or isinstance(content, dict))
    )
    if isinstance(reply, ErrorResponse):
        # The framework may refuse an answer that is no result of any input request.
        assert reply.code == -32602 and not well_formed
    elif reply.result["resultType"] == "input_required":
        assert not well_formed
        assert list(reply.result["inputRequests"]) == ["user_name"]
    else:
        assert well_formed
        assert text_of(reply.result).startswith(("Hello, ", "No name given"))


# ----- capabilities -----------------------------------------------------------------------------


async def test_missing_capability_is_minus_32021_naming_sampling() -> None:
    async with connect() as client:
        error = await client.call_error(
            "test_missing_capability", _meta=meta({"elicitation": {}, "roots": {}})
        )
        assert error.code == -32021
        assert error.data == {"requiredCapabilities": {"sampling": {}}}
        # Declared, the same tool asks for a sample and completes with it.
        first = await client.call("test_missing_capability", capabilities={"sampling": {}})
        ((key, request),) = asked(first).items()
        assert request["method"] == "sampling/createMessage"
        second = await client.call(
            "test_missing_capability",
            capabilities={"sampling": {}},
            **retry(first, **{key: SAMPLED_ANSWER}),
        )
    assert text_of(second) == "LLM response: Paris."


@pytest.mark.parametrize(
    ("capabilities", "keys"),
    [
        ({"sampling": {}}, {"greeting"}),
        ({"elicitation": {}}, {"user_name"}),
        ({"roots": {}, "sampling": {}}, {"client_roots", "greeting"}),
        (ALL_CAPABILITIES, {"user_name", "greeting", "client_roots"}),
    ],
)
async def test_capabilities_fixture_asks_only_for_declared_input(
    capabilities: dict[str, Any], keys: set[str]
) -> None:
    tool = "test_input_required_result_capabilities"
    answers = {"user_name": NAME_ANSWER, "greeting": SAMPLED_ANSWER, "client_roots": ROOTS_ANSWER}
    async with connect() as client:
        first = await client.call(tool, capabilities=capabilities)
        assert set(asked(first)) == keys
        given_answers = {key: answers[key] for key in keys}
        done = await client.call(tool, capabilities=capabilities, **retry(first, **given_answers))
    assert text_of(done) == "Answered: " + ", ".join(sorted(keys))


async def test_capabilities_fixture_asks_nothing_of_a_client_without_any() -> None:
    async with connect() as client:
        result = await client.call("test_input_required_result_capabilities", capabilities={})
    assert "nothing to ask" in text_of(result)


# ----- diagnostics on the response stream -------------------------------------------------------


async def test_logging_tool_logs_only_when_the_request_asks() -> None:
    async with connect() as client:
        quiet = await client.call("test_logging_tool")
        assert text_of(quiet) == "Logged one info message"
        assert client.notifications == []
        params = {
            "name": "test_logging_tool",
            "arguments": {},
            "_meta": meta(**{"io.modelcontextprotocol/logLevel": "info"}),
        }
        await client.result("tools/call", params)
    (log,) = client.notifications
    assert log.method == "notifications/message"
    assert log.params == {"level": "info", "data": "test_logging_tool ran"}


async def test_streaming_elicitation_sends_notifications_and_an_input_required_result() -> None:
    async with connect() as client:
        params = {
            "name": "test_streaming_elicitation",
            "arguments": {},
            "_meta": meta({"elicitation": {}}, progressToken="p1"),
        }
        first = await client.result("tools/call", params)
        ((key, request),) = asked(first).items()
        assert request["method"] == "elicitation/create"
        (progress,) = client.notifications
        assert progress.method == "notifications/progress"
        assert progress.params is not None and progress.params["progressToken"] == "p1"
        second = await client.result(
            "tools/call", {**params, **retry(first, **{key: CONFIRM_ANSWER})}
        )
    assert text_of(second) == 'Streaming elicitation completed: action=accept, content={"ok":true}'


async def test_custom_header_argument_is_marked_and_echoed() -> None:
    async with connect() as client:
        listed = await client.result("tools/list", {"_meta": meta()})
        (tool,) = [t for t in listed["tools"] if t["name"] == "test_custom_headers"]
        marked = [
            (name, schema["x-mcp-header"])
            for t in listed["tools"]
            for name, schema in t["inputSchema"].get("properties", {}).items()
            if "x-mcp-header" in schema
        ]
        result = await client.call("test_custom_headers", {"message": "Hello"})
    assert marked == [("message", "Message")]
    assert tool["inputSchema"]["properties"]["message"]["type"] == "string"
    assert text_of(result) == "Echo: Hello"


# ----- subscriptions/listen ---------------------------------------------------------------------


async def test_listen_delivers_only_the_changes_asked_for() -> None:
    async with connect() as client:
        listen_id = await client.send(
            "subscriptions/listen", {"_meta": meta(), "notifications": {"toolsListChanged": True}}
        )
        ack = await client.notification()
        assert ack.method == "notifications/subscriptions/acknowledged"
        assert ack.params == {
            "notifications": {"toolsListChanged": True},
            "_meta": {SUBSCRIPTION_ID: listen_id},
        }
        # A prompt change is not what this listen asked for; the tool change that follows is.
        assert "prompts" in text_of(await client.call("test_trigger_prompt_change"))
        assert "tools" in text_of(await client.call("test_trigger_tool_change"))
        changed = await client.notification()
        assert changed.method == "notifications/tools/list_changed"
        assert changed.params == {"_meta": {SUBSCRIPTION_ID: listen_id}}
        assert client.notifications == []
        await client.transport.send(
            Notification("notifications/cancelled", {"requestId": listen_id})
        )
        # The cancelled listen is answered no more; the connection still serves requests.
        assert text_of(await client.call("test_logging_tool")) == "Logged one info message"
        assert client.notifications == []
        assert client.early == {}


async def test_initialize_carrying_modern_meta_is_a_removed_method() -> None:
    async with connect() as client:
        answer = await client.request("initialize", {"_meta": meta()})
    assert isinstance(answer, ErrorResponse)
    assert answer.code == -32601


async def test_over_http_modern_initialize_is_404_and_legacy_initialize_still_works() -> None:
    headers = {"accept": "application/json, text/event-stream", "mcp-method": "initialize"}
    legacy_init = {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw-test", "version": "0"},
    }
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            config = HttpConfig(port=0, json_response=True)
            info = await nursery.start(partial(serve_http, everything.server, config))
            async with httpx.AsyncClient() as http:
                modern = await http.post(
                    info.url,
                    headers={**headers, "mcp-protocol-version": VERSION},
                    json={
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "initialize",
                        "params": {"_meta": meta()},
                    },
                )
                legacy = await http.post(
                    info.url,
                    headers=headers,
                    json={"jsonrpc": "2.0", "id": 2, "method": "initialize", "params": legacy_init},
                )
            nursery.cancel_scope.cancel()
    assert modern.status_code == 404
    assert modern.json()["error"]["code"] == -32601
    assert "mcp-session-id" not in modern.headers
    assert legacy.status_code == 200
    assert legacy.json()["result"]["protocolVersion"] == "2025-11-25"
    assert legacy.headers["mcp-session-id"]


# ----- the same fixtures through the client, in both eras --------------------------------------


async def _sample(params: CreateMessageRequestParams) -> CreateMessageResult:
    return CreateMessageResult(role="assistant", content=TextContent(text="Hi!"), model="m")


ELICITED = {"name": "Bob", "color": "red", "context": "tests", "ok": True}


async def _elicit(params: ElicitRequestFormParams | ElicitRequestURLParams) -> ElicitResult:
    assert isinstance(params, ElicitRequestFormParams)
    fields = params.requested_schema["properties"]
    return ElicitResult(action="accept", content={name: ELICITED[name] for name in fields})


@pytest.mark.parametrize("mode", ["legacy", VERSION])
async def test_the_explicit_form_serves_both_eras(mode: Any) -> None:
    client_end, server_end = memory_transport_pair()
    async with trio.open_nursery() as nursery:
        await nursery.start(everything.server.serve_background)
        await nursery.start(serve_connection, everything.server, server_end)
        async with open_client(
            client_end,
            mode=mode,
            sampling_handler=_sample,
            elicitation_handler=_elicit,
            roots=[Root(uri="file:///work", name="work")],
        ) as client:
            multiple = await client.call_tool("test_input_required_result_multiple_inputs")
            rounds = await client.call_tool("test_input_required_result_multi_round")
            state = await client.call_tool("test_input_required_result_request_state")
            prompt = await client.get_prompt("test_input_required_result_prompt")
        nursery.cancel_scope.cancel()
    texts = [block.text for r in (multiple, rounds, state) for block in r.content]  # type: ignore[union-attr]
    assert texts[0] == "name=Bob; greeting=Hi!; roots=file:///work"
    assert texts[1] == "Bob's favorite color is red"
    assert texts[2].startswith("state-ok")
    assert prompt.messages[0].content.text.endswith("in mind: tests")  # type: ignore[union-attr]
