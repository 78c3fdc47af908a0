"""The client in both protocol eras: era probing and its cache, MRTR, ``listen()``, 2026 headers.

Scripted peers play the server: in memory (stdio-like, message by message), as a tiny stdio
process, and as an ASGI app on Hypercorn for the HTTP headers. Then the real thing: the official
SDK's server (both eras) and our own example server, over stdio and Streamable HTTP.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any, Final

import attrs
import orjson
import pytest
import trio
import trio.testing
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from hypothesis import given
from hypothesis import strategies as st
from sdk import open_sdk_http_server, sdk_server_command

from mcptrio import (
    HttpConfig,
    MCPError,
    MissingRequiredClientCapability,
    Server,
    UnsupportedProtocolVersion,
    open_client,
    open_http_transport,
    open_stdio_process,
    serve_http,
)
from mcptrio._client.client import Client, forget_eras
from mcptrio._protocol.errors import HeaderMismatch, InvalidParams, MethodNotFound
from mcptrio._protocol.http_headers import (
    decode_header_value,
    encode_header_value,
    mcp_param_headers,
    x_mcp_header_paths,
    x_mcp_header_problem,
)
from mcptrio._protocol.jsonrpc import Message, Notification, Request, Response, error_response
from mcptrio._protocol.versions import (
    META_CLIENT_CAPABILITIES,
    META_CLIENT_INFO,
    META_LOG_LEVEL,
    META_PROTOCOL_VERSION,
    META_SERVER_INFO,
    META_SUBSCRIPTION_ID,
    Era,
)
from mcptrio._transports.memory import MemoryTransport, memory_transport_pair
from mcptrio.testing import open_memory_client
from mcptrio.types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequestFormParams,
    ElicitRequestURLParams,
    ElicitResult,
    Implementation,
    Root,
    SubscriptionFilter,
    TextContent,
)

MODERN: Final = "2026-07-28"
LEGACY = "2025-11-25"
ROOT = Path(__file__).resolve().parent.parent
OUR_SERVER = [sys.executable, "-m", "mcptrio", "serve", str(ROOT / "examples" / "everything.py")]


@pytest.fixture(autouse=True)
def fresh_era_memory() -> None:
    """Every test starts without remembered era decisions."""
    forget_eras()


def discover_result(**capabilities: Any) -> dict[str, Any]:
    return {
        "resultType": "complete",
        "supportedVersions": [MODERN],
        "capabilities": capabilities or {"tools": {"listChanged": True}},
        "instructions": "be nice",
        "ttlMs": 0,
        "cacheScope": "public",
        "_meta": {META_SERVER_INFO: {"name": "scripted", "version": "7"}},
    }


def init_result(version: str = LEGACY) -> dict[str, Any]:
    return {
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": True}},
        "serverInfo": {"name": "legacy-scripted", "version": "1"},
    }


def tool_text(text: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "resultType": "complete"}


def text_of(result: Any) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent), block
    return block.text


# =========================================================================== header values


@given(st.text() | st.text(alphabet=" \t=?abse64é"))
def test_header_values_round_trip_and_are_always_header_safe(value: str) -> None:
    encoded = encode_header_value(value)
    assert decode_header_value(encoded) == value
    assert all(" " <= c <= "~" for c in encoded)
    assert encoded == encoded.strip(" ")
    plain = (
        value.isascii()
        and value.isprintable()
        and value == value.strip(" ")
        and not (value.startswith("=?base64?") and value.endswith("?="))
    )
    assert (encoded == value) == plain


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("us-west1", "us-west1"),
        ("Hello, 世界", "=?base64?SGVsbG8sIOS4lueVjA==?="),
        (" padded ", "=?base64?IHBhZGRlZCA=?="),
        ("trailing ", "=?base64?dHJhaWxpbmcg?="),
        ("line1\nline2", "=?base64?bGluZTEKbGluZTI=?="),
        ("=?base64?literal?=", "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="),
        ("tab\there", "=?base64?dGFiCWhlcmU=?="),
        ("inner space", "inner space"),
        ("", ""),
    ],
)
def test_header_values_encode_as_the_spec_examples_show(value: str, encoded: str) -> None:
    assert encode_header_value(value) == encoded


@pytest.mark.parametrize("bad", ["=?base64?!!!?=", "=?base64?/w==?=", "=?base64?SGk?="])
def test_malformed_sentinels_are_header_mismatches(bad: str) -> None:
    with pytest.raises(HeaderMismatch, match="not valid"):
        decode_header_value(bad)


def obj(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        (obj(region={"type": "string", "x-mcp-header": "Region"}), None),
        (
            obj(
                a={"type": "object", "properties": {"b": {"type": "integer", "x-mcp-header": "B"}}}
            ),
            None,
        ),
        (obj(flag={"type": "boolean", "x-mcp-header": "Flag"}), None),
        ({"type": "object", "x-mcp-header": "Root"}, "reached from the schema root"),
        (obj(xs={"type": "array", "items": {"type": "string", "x-mcp-header": "X"}}), "reached"),
        (
            {
                **obj(a={"$ref": "#/$defs/a"}),
                "$defs": {"a": {"type": "string", "x-mcp-header": "A"}},
            },
            "reached",
        ),
        ({"type": "object", "anyOf": [obj(a={"type": "string", "x-mcp-header": "A"})]}, "reached"),
        (obj(a={"type": "string", "x-mcp-header": "Not A Token"}), "not an HTTP header token"),
        (obj(a={"type": "string", "x-mcp-header": ""}), "not an HTTP header token"),
        (obj(a={"type": "string", "x-mcp-header": 7}), "not an HTTP header token"),
        (obj(a={"type": "number", "x-mcp-header": "A"}), "type string, integer or boolean"),
        (obj(a={"type": ["string", "null"], "x-mcp-header": "A"}), "type string, integer"),
        (
            obj(
                a={"type": "string", "x-mcp-header": "Dup"},
                b={"type": "string", "x-mcp-header": "dUP"},
            ),
            "also used by",
        ),
    ],
)
def test_x_mcp_header_annotations_are_checked(schema: dict[str, Any], problem: str | None) -> None:
    found = x_mcp_header_problem(schema)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_param_headers_mirror_present_primitive_values_only() -> None:
    schema = obj(
        region={"type": "string", "x-mcp-header": "Region"},
        count={"type": "integer", "x-mcp-header": "Count"},
        dry={"type": "boolean", "x-mcp-header": "Dry"},
        note={"type": "string", "x-mcp-header": "Note"},
        nested={"type": "object", "properties": {"id": {"type": "integer", "x-mcp-header": "Id"}}},
    )
    paths = x_mcp_header_paths(schema)
    assert paths[("nested", "id")] == "Id"
    headers = mcp_param_headers(
        paths, {"region": "Zürich", "count": 3.0, "dry": False, "note": None, "nested": {"id": -7}}
    )
    assert headers == {
        "Mcp-Param-Region": "=?base64?WsO8cmljaA==?=",
        "Mcp-Param-Count": "3",
        "Mcp-Param-Dry": "false",
        "Mcp-Param-Id": "-7",
    }
    assert mcp_param_headers(paths, {"nested": "not an object", "count": [1]}) == {}


@given(st.none() | st.booleans() | st.integers() | st.text() | st.lists(st.integers()))
def test_a_param_header_is_sent_exactly_when_the_value_is_a_present_primitive(value: Any) -> None:
    paths: dict[tuple[str, ...], str] = {("v",): "V"}
    headers = mcp_param_headers(paths, {"v": value})
    if value is None or isinstance(value, list):
        assert headers == {}
    else:
        shown = ("true" if value else "false") if isinstance(value, bool) else str(value)
        assert decode_header_value(headers["Mcp-Param-V"]) == shown


# =========================================================================== scripted peer


@attrs.define
class Peer:
    """The server end of an in-memory connection, answering with a script."""

    end: MemoryTransport
    seen: list[Message] = attrs.Factory(list)

    async def send(self, message: Message) -> None:
        await self.end.send(message)

    def requests(self, method: str | None = None) -> list[Request]:
        return [m for m in self.seen if isinstance(m, Request) and method in (None, m.method)]

    def notifications(self, method: str) -> list[Notification]:
        return [m for m in self.seen if isinstance(m, Notification) and m.method == method]


Script = Callable[[Peer, Request], Awaitable["dict[str, Any] | MCPError | None"]]


@asynccontextmanager
async def scripted_peer(script: Script) -> AsyncIterator[tuple[MemoryTransport, Peer]]:
    """Yield (the client's end, the scripted server); ``None`` from the script: no answer."""
    client_end, server_end = memory_transport_pair()
    peer = Peer(server_end)

    async def answer(request: Request) -> None:
        outcome = await script(peer, request)
        if outcome is None:
            return
        reply = (
            error_response(request.id, outcome)
            if isinstance(outcome, MCPError)
            else Response(request.id, outcome)
        )
        with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await server_end.send(reply)

    async def read() -> None:
        async with trio.open_nursery() as nursery:
            while True:
                try:
                    message = await server_end.receive()
                except (trio.EndOfChannel, trio.ClosedResourceError):
                    return
                assert not isinstance(message, list)
                peer.seen.append(message)
                if isinstance(message, Request):
                    nursery.start_soon(answer, message)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        yield client_end, peer
        nursery.cancel_scope.cancel()


def modern_server(calls: Callable[[Peer, Request], Awaitable[Any]] | None = None) -> Script:
    """A 2026 server: discover answered, everything else handed to ``calls``."""

    async def script(peer: Peer, request: Request) -> dict[str, Any] | MCPError | None:
        if request.method == "server/discover":
            return discover_result()
        if calls is None:
            return MethodNotFound(request.method)
        result: dict[str, Any] | MCPError | None = await calls(peer, request)
        return result

    return script


async def legacy_server(peer: Peer, request: Request) -> dict[str, Any] | MCPError | None:
    if request.method == "initialize":
        return init_result(request.params["protocolVersion"] if request.params else LEGACY)
    if request.method == "tools/call":
        return tool_text("legacy answer")
    return MethodNotFound(f"Method not found: {request.method}")


# =========================================================================== era selection


async def test_auto_picks_2026_from_a_discover_result_and_sends_no_handshake() -> None:
    async with scripted_peer(modern_server()) as (end, peer), open_client(end, mode="auto") as c:
        assert (c.era, c.protocol_version) == (Era.MODERN, MODERN)
        assert c.server_info == Implementation(name="scripted", version="7")
        assert c.instructions == "be nice"
        assert c.server_capabilities.tools is not None
        assert c.discover_result is not None and c.discover_result.ttl_ms == 0
    assert [r.method for r in peer.requests()] == ["server/discover"]
    assert not peer.notifications("notifications/initialized")


@pytest.mark.parametrize(
    "refusal",
    [
        MethodNotFound("Method not found"),
        InvalidParams("unexpected params"),
        MCPError("Server not initialized", code=-32002),
        UnsupportedProtocolVersion("use initialize", {"supported": [LEGACY], "requested": MODERN}),
    ],
)
async def test_auto_falls_back_to_initialize_on_any_legacy_answer(refusal: MCPError) -> None:
    async def script(peer: Peer, request: Request) -> dict[str, Any] | MCPError | None:
        return (
            refusal if request.method == "server/discover" else await legacy_server(peer, request)
        )

    async with scripted_peer(script) as (end, peer), open_client(end, mode="auto") as c:
        assert (c.era, c.protocol_version) == (Era.LEGACY, LEGACY)
        assert c.server_info.name == "legacy-scripted"
        assert text_of(await c.call_tool("x")) == "legacy answer"
    assert [r.method for r in peer.requests()] == ["server/discover", "initialize", "tools/call"]
    assert peer.notifications("notifications/initialized")
    call = peer.requests("tools/call")[0]
    assert call.params is not None and "_meta" not in call.params


async def test_auto_falls_back_when_the_probe_goes_unanswered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def script(peer: Peer, request: Request) -> dict[str, Any] | MCPError | None:
        if request.method == "server/discover":
            return None  # silence, as many legacy servers keep before initialize
        return await legacy_server(peer, request)

    start = trio.current_time()
    async with scripted_peer(script) as (end, peer):
        async with open_client(end, mode="auto", probe_timeout=3) as client:
            assert client.era is Era.LEGACY
        assert trio.current_time() - start == pytest.approx(3)
        (cancel,) = peer.notifications("notifications/cancelled")
        assert cancel.params is not None
        assert cancel.params["requestId"] == peer.requests("server/discover")[0].id


async def test_a_slow_2026_server_that_refuses_initialize_is_discovered_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def script(peer: Peer, request: Request) -> dict[str, Any] | MCPError | None:
        if request.method == "server/discover":
            if len(peer.requests("server/discover")) == 1:
                await trio.sleep(60)  # still starting up when the probe gives up
            return discover_result()
        return UnsupportedProtocolVersion("2026 only", {"supported": [MODERN]})

    async with (
        scripted_peer(script) as (end, peer),
        open_client(end, probe_timeout=1, mode="auto") as c,
    ):
        assert c.era is Era.MODERN
    assert [r.method for r in peer.requests()] == [
        "server/discover",
        "initialize",
        "server/discover",
    ]


async def test_a_refused_version_the_server_lists_is_tried_once_more() -> None:
    async def script(peer: Peer, request: Request) -> dict[str, Any] | MCPError | None:
        if len(peer.requests("server/discover")) == 1:
            return UnsupportedProtocolVersion("try again", {"supported": [MODERN]})
        return discover_result()

    async with scripted_peer(script) as (end, peer), open_client(end, mode=MODERN) as c:
        assert c.era is Era.MODERN
    assert [r.method for r in peer.requests()] == ["server/discover", "server/discover"]

    async def always(peer: Peer, request: Request) -> dict[str, Any] | MCPError | None:
        return UnsupportedProtocolVersion("never", {"supported": [MODERN]})

    async with scripted_peer(always) as (end, peer):
        with pytest.raises(UnsupportedProtocolVersion, match="refused"):
            async with open_client(end, mode=MODERN):
                pass  # pragma: no cover
    assert len(peer.requests("server/discover")) == 2


@pytest.mark.parametrize("mode", ["auto", MODERN])
async def test_no_common_version_is_an_error_not_a_fallback(mode: Any) -> None:
    async def script(peer: Peer, request: Request) -> dict[str, Any] | MCPError | None:
        return UnsupportedProtocolVersion(
            "nope", {"supported": ["2099-01-01"], "requested": MODERN}
        )

    async with scripted_peer(script) as (end, peer):
        with pytest.raises(UnsupportedProtocolVersion, match="2099-01-01"):
            async with open_client(end, mode=mode):
                pass  # pragma: no cover
    assert not peer.requests("initialize")


async def test_pinned_modes_never_probe_the_other_era() -> None:
    async with scripted_peer(legacy_server) as (end, peer):
        async with open_client(end, mode="legacy") as client:
            assert client.era is Era.LEGACY
        assert [r.method for r in peer.requests()] == ["initialize"]
    async with scripted_peer(legacy_server) as (end, peer):
        with pytest.raises(MethodNotFound):
            async with open_client(end, mode=MODERN):
                pass  # pragma: no cover
        assert [r.method for r in peer.requests()] == ["server/discover"]


@pytest.mark.parametrize("mode", ["modern", "2025-11-25", ""])
async def test_unknown_modes_are_refused(mode: Any) -> None:
    end, _ = memory_transport_pair()
    with pytest.raises(ValueError, match="mode must be"):
        async with open_client(end, mode=mode):
            pass  # pragma: no cover


# =========================================================================== 2026 requests


async def test_every_2026_request_carries_the_meta_and_log_level_is_local() -> None:
    async def calls(peer: Peer, request: Request) -> dict[str, Any]:
        return tool_text("ok") if request.method == "tools/call" else {"tools": []}

    async def roots() -> list[Root]:
        return [Root(uri="file:///r")]

    info = Implementation(name="tester", version="3")
    async with (
        scripted_peer(modern_server(calls)) as (end, peer),
        open_client(end, mode="auto", client_info=info, roots=roots) as client,
    ):
        await client.list_tools()
        await client.set_logging_level("debug")
        await client.call_tool("x", {"a": 1}, meta={"custom/key": 1})
        with pytest.raises(InvalidParams, match="unknown log level"):
            await client.set_logging_level("loud")  # type: ignore[arg-type]
        with pytest.raises(MethodNotFound, match="listen"):
            await client.subscribe_resource("file:///r")
        await client.notify_roots_changed()  # nothing to send in 2026
    assert not peer.requests("logging/setLevel")
    assert not peer.notifications("notifications/roots/list_changed")
    for request in peer.requests():
        assert request.params is not None
        meta = request.params["_meta"]
        assert meta[META_PROTOCOL_VERSION] == MODERN
        assert meta[META_CLIENT_INFO] == {"name": "tester", "version": "3"}
        assert meta[META_CLIENT_CAPABILITIES] == {"roots": {}}
    listed, called = peer.requests("tools/list")[0], peer.requests("tools/call")[0]
    assert listed.params is not None and META_LOG_LEVEL not in listed.params["_meta"]
    assert called.params is not None
    assert called.params["_meta"][META_LOG_LEVEL] == "debug"
    assert called.params["_meta"]["custom/key"] == 1
    assert called.params["arguments"] == {"a": 1}


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ({"resultType": "input_required", "requestState": "s"}, "only"),
        ({"resultType": "task", "taskId": "t"}, "tasks extension"),
        ({"resultType": "eventually", "tools": []}, "unknown resultType"),
    ],
)
async def test_results_a_method_may_not_have_are_errors(
    result: dict[str, Any], message: str
) -> None:
    async def calls(peer: Peer, request: Request) -> dict[str, Any]:
        return result

    async with scripted_peer(modern_server(calls)) as (end, _), open_client(end, mode=MODERN) as c:
        with pytest.raises(MCPError, match=message):
            await c.list_tools()


async def test_a_missing_result_type_means_complete() -> None:
    async def calls(peer: Peer, request: Request) -> dict[str, Any]:
        return {"content": [{"type": "text", "text": "old style"}]}

    async with scripted_peer(modern_server(calls)) as (end, _), open_client(end, mode=MODERN) as c:
        assert text_of(await c.call_tool("x")) == "old style"


# =========================================================================== MRTR


SAMPLE = {
    "method": "sampling/createMessage",
    "params": {
        "messages": [{"role": "user", "content": {"type": "text", "text": "2+2?"}}],
        "maxTokens": 5,
    },
}
ELICIT = {
    "method": "elicitation/create",
    "params": {"message": "name?", "requestedSchema": {"type": "object", "properties": {}}},
}
ROOTS = {"method": "roots/list"}


class Asker:
    """A tool that needs input for several rounds, then says what it got."""

    def __init__(self, rounds: list[dict[str, Any]]) -> None:
        self.rounds = rounds

    async def __call__(self, peer: Peer, request: Request) -> dict[str, Any]:
        assert request.params is not None
        state = request.params.get("requestState")
        step = int(state.split("-")[1]) if state else 0
        if step < len(self.rounds):
            return {
                "resultType": "input_required",
                "inputRequests": self.rounds[step],
                "requestState": f"opaque-{step + 1}-\u00e9\u00df",
            }
        return tool_text(json.dumps(request.params.get("inputResponses"), sort_keys=True))


async def sampler(params: CreateMessageRequestParams) -> CreateMessageResult:
    return CreateMessageResult(role="assistant", content=TextContent(text="4"), model="m")


async def decliner(params: ElicitRequestFormParams | ElicitRequestURLParams) -> ElicitResult:
    return ElicitResult(action="decline")


async def test_input_requests_are_fulfilled_by_the_callbacks_and_the_call_retried() -> None:
    asker = Asker([{"s": SAMPLE, "e": ELICIT}, {"r": ROOTS}])
    async with (
        scripted_peer(modern_server(asker)) as (end, peer),
        open_client(
            end,
            mode=MODERN,
            sampling_handler=sampler,
            elicitation_handler=decliner,
            roots=[Root(uri="file:///w", name="w")],
        ) as client,
    ):
        result = await client.call_tool("ask", {"q": 1})
    calls = peer.requests("tools/call")
    assert len(calls) == 3
    assert len({c.id for c in calls}) == 3  # a new id for every retry
    first, second, third = (c.params or {} for c in calls)
    assert "inputResponses" not in first and "requestState" not in first
    assert second["requestState"] == "opaque-1-\u00e9\u00df"  # echoed exactly
    assert second["arguments"] == third["arguments"] == {"q": 1}
    assert second["inputResponses"] == {
        "s": {"role": "assistant", "content": {"type": "text", "text": "4"}, "model": "m"},
        "e": {"action": "decline"},  # a declined elicitation is still an answer
    }
    assert third["requestState"] == "opaque-2-\u00e9\u00df"
    assert third["inputResponses"] == {"r": {"roots": [{"uri": "file:///w", "name": "w"}]}}
    assert json.loads(text_of(result)) == third["inputResponses"]


async def test_prompts_and_resources_take_input_too() -> None:
    async def calls(peer: Peer, request: Request) -> dict[str, Any]:
        assert request.params is not None
        if "inputResponses" not in request.params:
            return {"resultType": "input_required", "inputRequests": {"r": ROOTS}}
        if request.method == "prompts/get":
            return {"messages": [{"role": "user", "content": {"type": "text", "text": "p"}}]}
        return {"contents": [{"uri": "x:/y", "text": "r"}], "ttlMs": 0, "cacheScope": "private"}

    async with (
        scripted_peer(modern_server(calls)) as (end, peer),
        open_client(end, mode=MODERN, roots=[]) as client,
    ):
        prompt = await client.get_prompt("p")
        assert prompt.messages[0].content == TextContent(text="p")
        read = await client.read_resource("x:/y")
        assert read.contents[0].uri == "x:/y"
    assert len(peer.requests("prompts/get")) == len(peer.requests("resources/read")) == 2


async def test_a_request_state_alone_is_retried_at_once() -> None:
    asker = Asker([{}])
    async with (
        scripted_peer(modern_server(asker)) as (end, peer),
        open_client(end, mode=MODERN) as c,
    ):
        assert text_of(await c.call_tool("ask")) == "null"
    second = peer.requests("tools/call")[1].params or {}
    assert second["requestState"] == "opaque-1-\u00e9\u00df" and "inputResponses" not in second


@pytest.mark.parametrize(
    ("request_kind", "capability", "argument"),
    [
        (SAMPLE, "sampling", "sampling_handler"),
        (ELICIT, "elicitation", "elicitation_handler"),
        (ROOTS, "roots", "roots"),
    ],
)
async def test_input_without_a_callback_names_the_missing_capability(
    request_kind: dict[str, Any], capability: str, argument: str
) -> None:
    asker = Asker([{"k": request_kind}])
    async with (
        scripted_peer(modern_server(asker)) as (end, peer),
        open_client(end, mode=MODERN) as c,
    ):
        with pytest.raises(MissingRequiredClientCapability) as info:
            await c.call_tool("needy")
    message = info.value.message
    assert f"'{capability}'" in message and f"{argument}=" in message and "'needy'" in message
    assert info.value.data == {"requiredCapabilities": {capability: {}}}
    assert len(peer.requests("tools/call")) == 1  # nothing to retry with


async def test_input_rounds_are_bounded() -> None:
    asker = Asker([{"e": ELICIT}] * 10)
    async with (
        scripted_peer(modern_server(asker)) as (end, peer),
        open_client(end, mode=MODERN, elicitation_handler=decliner, max_input_rounds=3) as c,
    ):
        with pytest.raises(
            MCPError, match=r"still needed input after 3 round\(s\).*max_input_rounds=3"
        ):
            await c.call_tool("greedy")
    assert len(peer.requests("tools/call")) == 4


@pytest.mark.parametrize(
    "result",
    [
        {"resultType": "input_required"},
        {"resultType": "input_required", "inputRequests": {"x": {"method": "mystery/ask"}}},
        {"resultType": "input_required", "inputRequests": ["not", "a", "map"]},
    ],
)
async def test_malformed_input_requests_are_clear_errors(result: dict[str, Any]) -> None:
    async def calls(peer: Peer, request: Request) -> dict[str, Any]:
        return result

    async with scripted_peer(modern_server(calls)) as (end, _), open_client(end, mode=MODERN) as c:
        with pytest.raises(MCPError, match="tools/call 'x'"):
            await c.call_tool("x")


# =========================================================================== listen()


async def test_listen_demultiplexes_by_subscription_id_and_cancels_on_exit() -> None:
    async def calls(peer: Peer, request: Request) -> dict[str, Any] | None:
        if request.method != "subscriptions/listen":
            return tool_text("ok")
        assert request.params is not None
        meta = {META_SUBSCRIPTION_ID: request.id}
        await peer.send(
            Notification(
                "notifications/subscriptions/acknowledged",
                {"notifications": request.params["notifications"], "_meta": meta},
            )
        )
        return None  # the stream stays open

    seen: list[Notification] = []

    async def on_notification(notification: Notification) -> None:
        seen.append(notification)

    async with (
        scripted_peer(modern_server(calls)) as (end, peer),
        open_client(end, mode=MODERN, on_notification=on_notification) as client,
        client.listen(tools=True) as tools,
        client.listen(resource_uris=["file:///a"]) as updates,
    ):
        assert tools.acknowledged == SubscriptionFilter(tools_list_changed=True)
        assert updates.acknowledged.resource_subscriptions == ["file:///a"]
        tools_id, updates_id = tools.subscription_id, updates.subscription_id
        assert tools_id != updates_id
        listen = peer.requests("subscriptions/listen")[0].params or {}
        assert listen["notifications"] == {"toolsListChanged": True}
        assert listen["_meta"][META_PROTOCOL_VERSION] == MODERN
        for sid, method in [(updates_id, "resources/updated"), (tools_id, "tools/list_changed")]:
            params: dict[str, Any] = {"_meta": {META_SUBSCRIPTION_ID: sid}}
            if "updated" in method:
                params["uri"] = "file:///a"
            await peer.send(Notification(f"notifications/{method}", params))
        got = await tools.__anext__()
        assert got.method == "notifications/tools/list_changed"
        got = await updates.__anext__()
        assert got.method == "notifications/resources/updated"
        assert await client.call_tool("still works")
    # Both reached on_notification too; the acknowledgements did not.
    assert sorted(n.method for n in seen) == [
        "notifications/resources/updated",
        "notifications/tools/list_changed",
    ]
    cancelled = {
        (n.params or {}).get("requestId") for n in peer.notifications("notifications/cancelled")
    }
    assert cancelled == {tools_id, updates_id}


@pytest.mark.parametrize("ending", ["result", "cancelled"])
async def test_the_server_ending_a_listen_ends_the_iteration(ending: str) -> None:
    async def calls(peer: Peer, request: Request) -> dict[str, Any] | None:
        meta = {META_SUBSCRIPTION_ID: request.id}
        await peer.send(
            Notification(
                "notifications/subscriptions/acknowledged", {"notifications": {}, "_meta": meta}
            )
        )
        await peer.send(Notification("notifications/prompts/list_changed", {"_meta": meta}))
        if ending == "cancelled":
            await peer.send(Notification("notifications/cancelled", {"requestId": request.id}))
            return None
        return {"resultType": "complete", "_meta": meta}

    async with (
        scripted_peer(modern_server(calls)) as (end, peer),
        open_client(end, mode=MODERN) as client,
    ):
        with trio.fail_after(5):
            async with client.listen(prompts=True) as subscription:
                assert subscription.acknowledged == SubscriptionFilter()
                methods = [n.method async for n in subscription]
        assert methods == ["notifications/prompts/list_changed"]
    # Already ended by the server: nothing to cancel.
    assert not peer.notifications("notifications/cancelled")


async def test_a_refused_listen_raises_and_a_dropped_connection_fails_the_iteration() -> None:
    async def calls(peer: Peer, request: Request) -> dict[str, Any] | MCPError | None:
        if (request.params or {}).get("notifications") == {"toolsListChanged": True}:
            return MethodNotFound("no listening here")
        meta = {META_SUBSCRIPTION_ID: request.id}
        await peer.send(
            Notification(
                "notifications/subscriptions/acknowledged", {"notifications": {}, "_meta": meta}
            )
        )
        await peer.end.aclose()  # the server goes away
        return None

    async with scripted_peer(modern_server(calls)) as (end, _), open_client(end, mode=MODERN) as c:
        with pytest.raises(MethodNotFound, match="no listening here"):
            async with c.listen(tools=True):
                pass  # pragma: no cover
        async with c.listen(prompts=True) as subscription:
            with pytest.raises(MCPError, match="closed"):
                async for _ in subscription:
                    pass  # pragma: no cover


def test_listen_needs_something_to_listen_for() -> None:
    client = Client.__new__(Client)
    with pytest.raises(ValueError, match="at least one"):
        client.listen()
    with pytest.raises(TypeError, match="not a string"):
        client.listen(resource_uris="file:///a")


def changing_server() -> Server:
    server = Server("changing", "1")

    @server.tool()
    async def poke() -> str:
        """Change things."""
        await server.notify_tools_changed()
        await server.notify_resource_updated("mem://watched")
        return "poked"

    @server.resource("mem://watched")
    async def watched() -> str:
        """A resource that changes."""
        return "now"

    return server


@pytest.mark.parametrize("mode", ["legacy", MODERN])
async def test_the_same_listen_code_works_in_both_eras(mode: Any) -> None:
    server = changing_server()
    async with open_memory_client(server, mode=mode) as client:
        assert client.era is (Era.LEGACY if mode == "legacy" else Era.MODERN)
        with trio.fail_after(5):
            async with client.listen(tools=True, resource_uris=["mem://watched"]) as changes:
                assert changes.acknowledged.tools_list_changed
                assert changes.acknowledged.resource_subscriptions == ["mem://watched"]
                assert text_of(await client.call_tool("poke")) == "poked"
                got = [await changes.__anext__() for _ in range(2)]
        assert {n.method for n in got} == {
            "notifications/tools/list_changed",
            "notifications/resources/updated",
        }
        # Leaving the block ends the legacy subscription too.
        assert all(not session.subscriptions for session in server.sessions)
        assert text_of(await client.call_tool("poke")) == "poked"


# =========================================================================== stdio era cache

LEGACY_STDIO_SERVER = r"""
import json, sys
for line in sys.stdin:
    message = json.loads(line)
    print(message.get("method"), file=sys.stderr, flush=True)
    if "id" not in message:
        continue
    if message["method"] == "initialize":
        reply = {"result": {"protocolVersion": message["params"]["protocolVersion"],
                            "capabilities": {}, "serverInfo": {"name": "old", "version": "1"}}}
    elif message["method"] == "ping":
        reply = {"result": {}}
    else:
        reply = {"error": {"code": -32601, "message": "Method not found"}}
    print(json.dumps({"jsonrpc": "2.0", "id": message["id"], **reply}), flush=True)
"""


async def test_auto_on_stdio_falls_back_and_remembers_the_server_command() -> None:
    command = [sys.executable, "-c", LEGACY_STDIO_SERVER]
    logs: list[list[str]] = []
    with trio.fail_after(30):
        for _ in range(2):
            async with (
                open_stdio_process(command, stderr="capture") as transport,
                open_client(transport, mode="auto") as client,
            ):
                assert (client.era, client.server_info.name) == (Era.LEGACY, "old")
                await client.ping()
            logs.append(transport.stderr_text().split())
    assert logs[0] == ["server/discover", "initialize", "notifications/initialized", "ping"]
    assert logs[1] == ["initialize", "notifications/initialized", "ping"]  # no probe


# =========================================================================== scripted HTTP


@attrs.define
class Seen:
    method: str
    headers: dict[str, str]
    body: bytes

    @property
    def rpc(self) -> dict[str, Any]:
        parsed = orjson.loads(self.body)
        assert isinstance(parsed, dict)
        return parsed


Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
HttpScript = Callable[[Seen, Send, Receive], Awaitable[None]]


@attrs.define
class HttpServer:
    script: HttpScript
    seen: list[Seen] = attrs.Factory(list)
    disconnects: list[str] = attrs.Factory(list)
    url: str = ""

    def posts(self, rpc_method: str | None = None) -> list[Seen]:
        return [
            s for s in self.seen if s.method == "POST" and rpc_method in (None, s.rpc.get("method"))
        ]

    async def app(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode("latin-1") for k, v in scope["headers"]}
        seen = Seen(scope["method"], headers, body)
        self.seen.append(seen)
        await self.script(seen, send, receive)


@asynccontextmanager
async def http_server(script: HttpScript) -> AsyncIterator[HttpServer]:
    server = HttpServer(script)
    config = HypercornConfig()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(serve, server.app, config)
        server.url = binds[0] + "/mcp"
        with trio.fail_after(10):
            yield server
        nursery.cancel_scope.cancel()


async def respond(
    send: Send, status: int, body: Any = None, content_type: str = "application/json"
) -> None:
    data = b"" if body is None else orjson.dumps(body)
    headers = [(b"content-type", content_type.encode())] if body is not None else []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data, "more_body": False})


def reply_to(seen: Seen, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": seen.rpc["id"], "result": result}


HEADER_TOOLS = [
    {
        "name": "deploy",
        "inputSchema": obj(
            region={"type": "string", "x-mcp-header": "Region"},
            replicas={"type": "integer", "x-mcp-header": "Replicas"},
            canary={"type": "boolean", "x-mcp-header": "Canary"},
            note={"type": "string", "x-mcp-header": "Note"},
            body={"type": "string"},
        ),
    },
    {"name": "bad_type", "inputSchema": obj(n={"type": "number", "x-mcp-header": "N"})},
    {
        "name": "bad_place",
        "inputSchema": obj(xs={"type": "array", "items": {"type": "string", "x-mcp-header": "X"}}),
    },
    {"name": "plain", "inputSchema": obj(a={"type": "string"})},
]


async def modern_http(seen: Seen, send: Send, receive: Receive) -> None:
    if seen.method != "POST":
        await respond(send, 405)
        return
    method = seen.rpc.get("method")
    if "id" not in seen.rpc:
        await respond(send, 202)
    elif method == "server/discover":
        await respond(send, 200, reply_to(seen, discover_result()))
    elif method == "tools/list":
        await respond(send, 200, reply_to(seen, {"tools": HEADER_TOOLS, "resultType": "complete"}))
    elif method == "resources/read":
        contents = {
            "contents": [{"uri": seen.rpc["params"]["uri"], "text": "x"}],
            "resultType": "complete",
        }
        await respond(send, 200, reply_to(seen, contents))
    elif method == "prompts/get":
        await respond(send, 200, reply_to(seen, {"messages": [], "resultType": "complete"}))
    else:
        await respond(send, 200, reply_to(seen, tool_text("done")))


async def test_2026_http_requests_mirror_their_body_into_headers_without_a_session() -> None:
    async with http_server(modern_http) as server:
        async with (
            open_http_transport(server.url) as transport,
            open_client(transport, mode="auto") as c,
        ):
            assert c.era is Era.MODERN
            tools = await c.all_tools()
            assert [t.name for t in tools] == ["deploy", "plain"]
            assert c.last_raw_tools is not None
            assert [t.name for t in c.last_raw_tools] == [t["name"] for t in HEADER_TOOLS]
            await c.call_tool(
                "deploy",
                {"region": "eu-west-1", "replicas": 3, "canary": True, "note": None, "body": "b"},
            )
            await c.call_tool("deploy", {"region": " Genève ", "replicas": -2})
            await c.read_resource("file:///caf\u00e9.txt")
            await c.get_prompt("plain prompt")
            stats = transport.statistics()
        assert stats.session_id is None and stats.protocol_version == MODERN
    assert [s.method for s in server.seen] == ["POST"] * 6  # no GET stream, no DELETE
    for post in server.posts():
        assert post.headers["mcp-protocol-version"] == MODERN
        assert post.headers["mcp-method"] == post.rpc["method"]
        assert "mcp-session-id" not in post.headers
        assert post.headers["accept"] == "application/json, text/event-stream"
    first, second = server.posts("tools/call")
    assert first.headers["mcp-name"] == "deploy"
    assert {k: v for k, v in first.headers.items() if k.startswith("mcp-param-")} == {
        "mcp-param-region": "eu-west-1",
        "mcp-param-replicas": "3",
        "mcp-param-canary": "true",
    }
    assert decode_header_value(second.headers["mcp-param-region"]) == " Genève "
    assert second.headers["mcp-param-replicas"] == "-2"
    assert "mcp-param-canary" not in second.headers
    (read,) = server.posts("resources/read")
    assert decode_header_value(read.headers["mcp-name"]) == "file:///caf\u00e9.txt"
    assert read.headers["mcp-name"].startswith("=?base64?")
    (prompt,) = server.posts("prompts/get")
    assert prompt.headers["mcp-name"] == "plain prompt"
    (discover,) = server.posts("server/discover")
    assert "mcp-name" not in discover.headers


async def test_a_header_mismatch_relearns_the_tool_schemas_and_retries_once() -> None:
    async def script(seen: Seen, send: Send, receive: Receive) -> None:
        if (
            seen.method == "POST"
            and seen.rpc.get("method") == "tools/call"
            and "mcp-param-region" not in seen.headers
        ):
            error = {"code": -32020, "message": "Header mismatch: Mcp-Param-Region missing"}
            await respond(send, 400, {"jsonrpc": "2.0", "id": seen.rpc["id"], "error": error})
            return
        await modern_http(seen, send, receive)

    async with (
        http_server(script) as server,
        open_http_transport(server.url) as transport,
        open_client(transport, mode=MODERN) as c,
    ):
        assert text_of(await c.call_tool("deploy", {"region": "x"})) == "done"
    methods = [s.rpc["method"] for s in server.posts()]
    assert methods == ["server/discover", "tools/call", "tools/list", "tools/call"]


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, None),
        (404, {"jsonrpc": "2.0", "id": None, "error": {"code": -32601, "message": "nope"}}),
        (400, {"jsonrpc": "2.0", "id": None, "error": {"code": -32000, "message": "No session"}}),
        (500, None),
    ],
)
async def test_http_auto_falls_back_on_a_legacy_refusal_and_remembers_the_origin(
    status: int, body: Any
) -> None:
    async def script(seen: Seen, send: Send, receive: Receive) -> None:
        if seen.method == "GET":
            await respond(send, 405)
        elif seen.method == "DELETE":
            await respond(send, 200)
        elif seen.rpc.get("method") == "server/discover":
            await respond(send, status, body)
        elif seen.rpc.get("method") == "initialize":
            await send_initialize(seen, send)
        elif "id" not in seen.rpc:
            await respond(send, 202)
        else:
            await respond(send, 200, reply_to(seen, {}))

    async with http_server(script) as server:
        for _ in range(2):
            async with open_http_transport(server.url, open_get_stream=False) as transport:
                async with open_client(transport, mode="auto") as client:
                    assert client.era is Era.LEGACY
                    await client.ping()
                assert transport.mode == "streamable-http"
    methods = [s.rpc["method"] for s in server.posts()]
    assert methods.count("server/discover") == 1  # the second connection skipped the probe
    assert methods.count("initialize") == 2


async def send_initialize(seen: Seen, send: Send) -> None:
    data = orjson.dumps(reply_to(seen, init_result()))
    headers = [(b"content-type", b"application/json"), (b"mcp-session-id", b"s-1")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": data, "more_body": False})


@pytest.mark.parametrize("framing", ["sse", "json-lines"])
async def test_http_listen_streams_notifications_and_closing_it_is_the_cancellation(
    framing: str,
) -> None:
    async def script(seen: Seen, send: Send, receive: Receive) -> None:
        if seen.method != "POST" or seen.rpc.get("method") != "subscriptions/listen":
            await modern_http(seen, send, receive)
            return
        meta = {META_SUBSCRIPTION_ID: seen.rpc["id"]}
        messages = [
            {
                "method": "notifications/subscriptions/acknowledged",
                "params": {"notifications": {"toolsListChanged": True}, "_meta": meta},
            },
            {"method": "notifications/tools/list_changed", "params": {"_meta": meta}},
        ]
        content_type = b"text/event-stream" if framing == "sse" else b"application/json"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", content_type)],
            }
        )
        for message in messages:
            line = orjson.dumps({"jsonrpc": "2.0", **message})
            chunk = b"data: " + line + b"\n\n" if framing == "sse" else line + b"\n"
            # Split mid-message: the client must reassemble it.
            await send({"type": "http.response.body", "body": chunk[:7], "more_body": True})
            await send({"type": "http.response.body", "body": chunk[7:], "more_body": True})
        while (await receive())["type"] != "http.disconnect":
            pass
        server.disconnects.append(seen.rpc["id"])

    async with (
        http_server(script) as server,
        open_http_transport(server.url) as transport,
        open_client(transport, mode=MODERN) as c,
    ):
        async with c.listen(tools=True) as subscription:
            assert subscription.acknowledged.tools_list_changed
            got = await subscription.__anext__()
            assert got.method == "notifications/tools/list_changed"
        with trio.fail_after(5):
            while not server.disconnects:  # noqa: ASYNC110
                await trio.sleep(0.01)
        assert server.disconnects == [subscription.subscription_id]
        assert text_of(await c.call_tool("after")) == "done"
    # Cancelling a 2026 HTTP request posts nothing: the closed stream says it all.
    assert not [s for s in server.posts() if s.rpc.get("method") == "notifications/cancelled"]


async def test_a_cancelled_2026_http_call_closes_its_stream_and_posts_nothing() -> None:
    async def script(seen: Seen, send: Send, receive: Receive) -> None:
        if seen.method == "POST" and seen.rpc.get("method") == "tools/call":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")],
                }
            )
            await send({"type": "http.response.body", "body": b": working\n\n", "more_body": True})
            while (await receive())["type"] != "http.disconnect":
                pass
            server.disconnects.append(seen.rpc["id"])
            return
        await modern_http(seen, send, receive)

    async with (
        http_server(script) as server,
        open_http_transport(server.url) as transport,
        open_client(transport, mode=MODERN) as c,
    ):
        with trio.move_on_after(0.2):
            await c.call_tool("slow")
        with trio.fail_after(5):
            while not server.disconnects:  # noqa: ASYNC110
                await trio.sleep(0.01)
    assert [s.rpc["method"] for s in server.posts()] == ["server/discover", "tools/call"]


async def test_a_2026_stream_that_ends_early_is_not_resumed() -> None:
    async def script(seen: Seen, send: Send, receive: Receive) -> None:
        if seen.method == "POST" and seen.rpc.get("method") == "tools/call":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")],
                }
            )
            await send(
                {"type": "http.response.body", "body": b"id: 1\ndata:\n\n", "more_body": False}
            )
            return
        await modern_http(seen, send, receive)

    async with (
        http_server(script) as server,
        open_http_transport(server.url) as transport,
        open_client(transport, mode=MODERN) as c,
    ):
        with pytest.raises(MCPError, match="cannot be resumed"):
            await c.call_tool("cut")
    assert [s.method for s in server.seen] == ["POST", "POST"]  # no GET with Last-Event-ID


# =========================================================================== the official SDK


class Answers:
    def __init__(self) -> None:
        self.elicitations: list[str] = []

    async def sampling(self, params: CreateMessageRequestParams) -> CreateMessageResult:
        return CreateMessageResult(
            role="assistant", content=TextContent(text="hi from mcptrio"), model="m"
        )

    async def elicitation(
        self, params: ElicitRequestFormParams | ElicitRequestURLParams
    ) -> ElicitResult:
        self.elicitations.append(params.message)
        if params.message == "no thanks":
            return ElicitResult(action="decline")
        return ElicitResult(action="accept", content={"username": "ada", "email": "a@b.c"})

    def options(self) -> dict[str, Any]:
        return {
            "sampling_handler": self.sampling,
            "elicitation_handler": self.elicitation,
            "roots": [Root(uri="file:///one"), Root(uri="file:///two")],
        }


async def drive_in_2026(client: Client, answers: Answers, *, resource_updates: bool = True) -> None:
    """The MRTR fixtures and a listen, which only work when the era really is 2026."""
    assert (client.era, client.protocol_version) == (Era.MODERN, MODERN)
    assert client.server_info.name == "mcp-conformance-test-server"
    sampled = await client.call_tool("test_sampling", {"prompt": "hello"})
    assert text_of(sampled) == "LLM response: hi from mcptrio"
    accepted = await client.call_tool("test_elicitation", {"message": "who?"})
    assert text_of(accepted) == (
        'User response: action=accept, content={"username":"ada","email":"a@b.c"}'
    )
    declined = await client.call_tool("test_elicitation", {"message": "no thanks"})
    assert text_of(declined) == "User response: action=decline, content={}"
    assert answers.elicitations == ["who?", "no thanks"]
    roots = await client.call_tool("test_list_roots")
    assert text_of(roots) == "file:///one\nfile:///two"
    uris = ["test://watched-resource"] if resource_updates else []
    with trio.fail_after(10):
        async with client.listen(tools=True, resource_uris=uris) as changes:
            assert changes.acknowledged.tools_list_changed
            await client.call_tool("test_trigger_tool_change")
            expected = {"notifications/tools/list_changed"}
            if resource_updates:
                await client.call_tool("test_trigger_resource_update")
                expected.add("notifications/resources/updated")
            got = {(await changes.__anext__()).method for _ in expected}
            assert got == expected


@pytest.mark.interop
async def test_auto_picks_2026_against_the_sdk_over_stdio_and_legacy_still_works(
    sdk_python: Path,
) -> None:
    command = sdk_server_command(sdk_python, "stdio")
    answers = Answers()
    with trio.fail_after(60):
        async with (
            open_stdio_process(command, stderr="capture") as transport,
            open_client(transport, mode="auto", **answers.options()) as client,
        ):
            await drive_in_2026(client, answers)
        async with (
            open_stdio_process(command, stderr="capture") as transport,
            open_client(transport, mode="legacy", **Answers().options()) as client,
        ):
            assert (client.era, client.protocol_version) == (Era.LEGACY, LEGACY)
            async with client.listen(
                tools=True, resource_uris=["test://watched-resource"]
            ) as changes:
                assert changes.acknowledged.resource_subscriptions == ["test://watched-resource"]
                await client.call_tool("test_trigger_tool_change")
                await client.call_tool("test_trigger_resource_update")
                got = {(await changes.__anext__()).method for _ in range(2)}
            assert got == {"notifications/tools/list_changed", "notifications/resources/updated"}
            sampled = await client.call_tool("test_sampling", {"prompt": "hello"})
            assert text_of(sampled) == "LLM response: hi from mcptrio"


@pytest.mark.interop
async def test_auto_picks_2026_against_the_sdk_over_http(sdk_python: Path) -> None:
    answers = Answers()
    with trio.fail_after(60):
        async with open_sdk_http_server(sdk_python) as url:
            async with open_http_transport(url) as transport:
                async with open_client(transport, mode="auto", **answers.options()) as client:
                    await drive_in_2026(client, answers)
                    before = text_of(await client.call_tool("get_cancellation_count"))
                    with trio.move_on_after(0.3):
                        await client.call_tool("wait_for_cancellation")
                    # Closing the stream cancelled the call on the server.
                    while text_of(await client.call_tool("get_cancellation_count")) == before:  # noqa: ASYNC110
                        await trio.sleep(0.05)
                stats = transport.statistics()
                assert (stats.session_id, stats.gets, stats.deletes) == (None, 0, 0)
            async with (
                open_http_transport(url) as transport,
                open_client(transport, mode="legacy") as client,
            ):
                assert client.protocol_version == LEGACY
                assert transport.session_id is not None


# =========================================================================== our own server


@pytest.mark.interop
async def test_auto_picks_2026_against_our_server_over_stdio() -> None:
    answers = Answers()
    with trio.fail_after(60):
        async with (
            open_stdio_process(OUR_SERVER, stderr="capture") as transport,
            open_client(transport, mode="auto", **answers.options()) as client,
        ):
            await drive_in_2026(client, answers, resource_updates=False)
            echoed = await client.call_tool("test_custom_headers", {"message": "ünïcode"})
            assert text_of(echoed) == "Echo: ünïcode"


async def test_auto_picks_2026_against_our_server_over_http() -> None:
    from examples.everything import server

    answers = Answers()
    async with trio.open_nursery() as nursery:
        info = await nursery.start(serve_http, server, HttpConfig(port=0))
        with trio.fail_after(20):
            async with (
                open_http_transport(info.url) as transport,
                open_client(transport, mode="auto", **answers.options()) as client,
            ):
                await drive_in_2026(client, answers, resource_updates=False)
                # The server checks the mirrored header against the body (-32020 otherwise).
                echoed = await client.call_tool("test_custom_headers", {"message": " ünïcode "})
                assert text_of(echoed) == "Echo:  ünïcode "
                assert transport.tool_headers["test_custom_headers"] == {("message",): "Message"}
        nursery.cancel_scope.cancel()
