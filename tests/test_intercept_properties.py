"""Properties of the interceptor chain over any message."""

from __future__ import annotations

from typing import Any

import trio
from hypothesis import given
from hypothesis import strategies as st

from mcptrio import (
    Action,
    Block,
    Continue,
    InterceptContext,
    InterceptorChain,
    InvalidRequest,
    Modify,
)
from mcptrio._protocol.jsonrpc import (
    ErrorResponse,
    InvalidMessage,
    Message,
    Notification,
    Request,
    Response,
    message_from_dict,
)
from mcptrio._runtime.pipeline import PipelineFacts
from mcptrio.testing import (
    RecordingInterceptor,
    intercept_contexts,
    json_values,
    jsonrpc_messages,
    mcp_requests,
)

FACTS = PipelineFacts("server", "memory")


async def run(chain: InterceptorChain, message: Message) -> Message | None:
    direction = FACTS.incoming()
    if isinstance(message, Request):
        return await chain.on_request(FACTS, direction, message)
    if isinstance(message, Notification):
        return await chain.on_notification(FACTS, direction, message)
    return await chain.on_response(FACTS, direction, message)


def run_sync(chain: InterceptorChain, message: Message) -> Message | None:
    async def main() -> Message | None:
        return await run(chain, message)

    return trio.run(main)


async def keep(context: InterceptContext) -> Action:
    return Continue()


@given(jsonrpc_messages(), st.integers(min_value=1, max_value=10))
def test_a_chain_of_continue_is_the_identity(message: Message, length: int) -> None:
    recorder = RecordingInterceptor()
    chain = InterceptorChain([(f"c{i}", keep) for i in range(length)])
    chain.register("recorder", recorder)
    assert run_sync(chain, message) == message
    # Every interceptor was shown the message as it is on the wire.
    assert recorder.messages() == [message.to_dict()]


@given(mcp_requests(), st.integers(min_value=0, max_value=3))
def test_block_answers_any_request_with_exactly_one_error_carrying_its_id(
    request: Request, before: int
) -> None:
    recorder = RecordingInterceptor()

    async def block(context: InterceptContext) -> Action:
        return Block(InvalidRequest("blocked"))

    chain = InterceptorChain([(f"c{i}", keep) for i in range(before)])
    chain.register("block", block)
    chain.register("after", recorder)
    answer = run_sync(chain, request)
    assert isinstance(answer, ErrorResponse)
    assert answer.id == request.id and answer.code == InvalidRequest.default_code
    assert recorder.contexts == []  # nothing after the block saw the request


@given(jsonrpc_messages(), json_values(max_leaves=6) | st.builds(dict))
def test_modify_output_is_always_revalidated(message: Message, replacement: Any) -> None:
    async def modify(context: InterceptContext) -> Action:
        return Modify(replacement)

    recorder = RecordingInterceptor()
    chain = InterceptorChain([("modifier", modify), ("after", recorder)])
    outcome = run_sync(chain, message)
    try:
        valid = message_from_dict(replacement)
    except InvalidMessage:
        valid = None
    if outcome is None:
        # Only a notification is dropped; an invalid replacement never goes on.
        assert isinstance(message, Notification)
        assert recorder.contexts == [] or valid is not None
        return
    if outcome == valid and recorder.messages() == [replacement]:
        return  # accepted: it was a valid message of the same kind and id
    # Rejected: the message is answered with an error naming the interceptor.
    assert isinstance(outcome, ErrorResponse)
    assert not isinstance(message, Notification)
    assert outcome.id == message.id
    assert outcome.code == -32603 and "'modifier'" in outcome.message
    assert recorder.contexts == []


@given(intercept_contexts())
def test_contexts_describe_their_message(context: InterceptContext) -> None:
    message = message_from_dict(dict(context.message))
    kinds = {Request: "request", Notification: "notification", Response: "response"}
    assert context.kind == kinds.get(type(message), "error")
    assert context.era is None or context.protocol_version is not None
