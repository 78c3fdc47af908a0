"""Hostile input against real servers: whatever a message holds, it fails only itself.

One real server process per transport serves ``examples/everything.py``; Hypothesis
sends it requests and notifications of every method with wrong values in their params
(:func:`mcptrio.testing.hostile_messages`) and checks that each request gets exactly one
answer, that errors carry a code the spec gives for bad input, and that a normal tool
call still works afterwards. The tests talk to the processes with blocking pipes and
sockets, so one process can serve every Hypothesis example.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcptrio._protocol.http_headers import encode_header_value
from mcptrio.testing import hostile_messages

ROOT = Path(__file__).resolve().parent.parent
EVERYTHING = str(ROOT / "examples" / "everything.py")
SERVE = [sys.executable, "-m", "mcptrio", "serve", EVERYTHING]
MODERN = "2026-07-28"
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
}
INITIALIZE = {
    "protocolVersion": "2025-11-25",
    "capabilities": {},
    "clientInfo": {"name": "hostile", "version": "0"},
}
# Error codes the spec gives for bad input (JSON-RPC's, and MCP's resource not found,
# header mismatch, missing client capability, unsupported version, URL elicitation).
BAD_INPUT_CODES = {-32600, -32601, -32602, -32002, -32020, -32021, -32022, -32042}
# Tools that answer at once whatever their arguments; the slow ones (waiting for a
# cancellation, asking the client) would only make the run longer.
QUICK_TOOLS = (
    "test_simple_text",
    "json_schema_2020_12_tool",
    "test_sampling",
    "test_elicitation",
    "test_tool_with_logging",
    "get_cancellation_count",
    "test_input_required_result_elicitation",
    "test_custom_headers",
)
# A step bound: each answer comes within this on a loaded machine, or the server is stuck.
ANSWER_WITHIN = 60.0

_ids = itertools.count()


def _dumps(message: dict[str, Any]) -> bytes:
    # The standard library encodes integers of any size (orjson stops at 64 bits).
    return json.dumps(message, separators=(",", ":")).encode()


def _with_tool_names(message: dict[str, Any], tool: str | None) -> dict[str, Any]:
    """Point most tools/call messages at a real tool, so its validation runs too."""
    params = message.get("params")
    if (
        tool is not None
        and message.get("method") in ("tools/call", "tasks/get")
        and isinstance(params, dict)
        and isinstance(params.get("name"), str)
    ):
        message = {**message, "params": {**params, "name": tool}}
    return message


def _batches(era: str) -> st.SearchStrategy[list[dict[str, Any]]]:
    one = st.builds(
        _with_tool_names, hostile_messages(era), st.none() | st.sampled_from(QUICK_TOOLS)
    )
    return st.lists(one, min_size=1, max_size=8)


def _slow(message: dict[str, Any]) -> bool:
    """Messages whose answer may legitimately take long or never come on its own."""
    params = message.get("params")
    name = params.get("name") if isinstance(params, dict) else None
    return message.get("method") == "subscriptions/listen" or name == "wait_for_cancellation"


def _cancelled_ids(messages: list[dict[str, Any]]) -> set[Any]:
    """Ids a batch itself cancels: their requests may end without an answer."""
    out = set()
    for message in messages:
        params = message.get("params")
        if message.get("method") == "notifications/cancelled" and isinstance(params, dict):
            request_id = params.get("requestId")
            if isinstance(request_id, int | str):
                out.add(request_id)
    return out


def _check_error(response: dict[str, Any]) -> None:
    error = response.get("error")
    if error is not None:
        assert error["code"] in BAD_INPUT_CODES, response
        assert isinstance(error["message"], str) and error["message"], response


# -- stdio ----------------------------------------------------------------------------------


class StdioServer:
    """A server process on pipes, read line by line with a deadline."""

    def __init__(self, stderr_path: Path) -> None:
        self._stderr = stderr_path.open("wb")
        self.stderr_path = stderr_path
        self.process = subprocess.Popen(
            SERVE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=ROOT,
        )
        assert self.process.stdout is not None
        self._fd = self.process.stdout.fileno()
        os.set_blocking(self._fd, False)
        self._buffer = b""

    def write(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def send(self, messages: list[dict[str, Any]]) -> None:
        """Write ``messages`` in one write, one per line."""
        self.write(b"".join(_dumps(m) + b"\n" for m in messages))

    def read(self, within: float = ANSWER_WITHIN) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no message from the server in time")
            ready, _, _ = select.select([self._fd], [], [], left)
            if ready:
                chunk = os.read(self._fd, 65536)
                if not chunk:
                    raise EOFError(f"the server closed stdout (exit {self.process.poll()})")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        value = json.loads(line)
        assert isinstance(value, dict)
        return value

    def exchange(self, messages: list[dict[str, Any]]) -> dict[Any, list[dict[str, Any]]]:
        """Send ``messages`` and a closing ping; the answers by id.

        Waits for the ping's answer and for every request's, except those the batch
        cancels itself. Requests from the server (sampling, elicitation...) are refused
        as a client without those capabilities would.
        """
        closing = f"closing-{next(_ids)}"
        cancelled = _cancelled_ids(messages)
        waiting = {m["id"] for m in messages if "id" in m and m["id"] not in cancelled}
        waiting.add(closing)
        self.send([*messages, {"jsonrpc": "2.0", "id": closing, "method": "ping"}])
        answers: dict[Any, list[dict[str, Any]]] = {}
        while waiting:
            message = self.read()
            if "method" in message:
                if "id" in message:
                    self.send([_refusal(message["id"])])
                continue
            answers.setdefault(message.get("id"), []).append(message)
            waiting.discard(message.get("id"))
        return answers

    def stderr_text(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._stderr.close()
        assert self.process.stdout is not None
        self.process.stdout.close()


def _refusal(request_id: Any) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "error": {"code": -32601, "message": "this client answers no requests"},
    }


def _initialize(server: StdioServer) -> None:
    server.send([{"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": INITIALIZE}])
    assert "result" in server.read()
    server.send([{"jsonrpc": "2.0", "method": "notifications/initialized"}])


def _tool_call(name: str = "test_simple_text", **extra: Any) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": f"call-{next(_ids)}",
        "method": "tools/call",
        "params": {"name": name, "arguments": {}, **extra},
    }


def _assert_tool_call_works(answers: dict[Any, list[dict[str, Any]]], call_id: str) -> None:
    (answer,) = answers[call_id]
    assert answer["result"]["content"][0]["text"] == "This is a simple text response for testing."


@pytest.fixture(scope="module")
def stdio_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StdioServer]:
    server = StdioServer(tmp_path_factory.mktemp("stdio") / "stderr.txt")
    try:
        _initialize(server)
        yield server
    finally:
        server.close()


def _prepare(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Unique ids for the requests (a batch must not reuse an id still in flight)."""
    out = []
    for message in messages:
        if "id" in message:
            message = {**message, "id": f"h{next(_ids)}"}
        out.append(message)
    return out


def _check_answers(sent: list[dict[str, Any]], answers: dict[Any, list[dict[str, Any]]]) -> None:
    cancelled = _cancelled_ids(sent)
    for message in sent:
        if "id" not in message:
            continue
        got = answers.get(message["id"], [])
        assert len(got) <= 1, got
        if not got:
            assert message["id"] in cancelled or _slow(message), f"no answer to {message}"
            continue
        _check_error(got[0])
    assert None not in answers, answers.get(None)


_HYPOTHESIS = settings(
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    deadline=None,
)


@_HYPOTHESIS
@given(legacy=_batches("legacy"), modern=_batches(MODERN))
def test_stdio_server_survives_hostile_params(
    stdio_server: StdioServer, legacy: list[dict[str, Any]], modern: list[dict[str, Any]]
) -> None:
    sent = _prepare([m for m in legacy + modern if not _slow(m)])
    answers = stdio_server.exchange(sent)
    _check_answers(sent, answers)
    call = _tool_call()
    _assert_tool_call_works(stdio_server.exchange([call]), call["id"])
    assert stdio_server.process.poll() is None


def _deep(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"a": value}
    return value


def test_stdio_cancelled_with_a_list_or_object_request_id(stdio_server: StdioServer) -> None:
    notes = [
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": rid}}
        for rid in ([1, 2], {"id": 1}, None, 1.5, True)
    ]
    notes.append(
        {
            "jsonrpc": "2.0",
            "method": "notifications/progress",
            "params": {"progressToken": {"t": 1}, "progress": 10**40},
        }
    )
    call = _tool_call()
    answers = stdio_server.exchange([*notes, call])
    _assert_tool_call_works(answers, call["id"])
    assert stdio_server.process.poll() is None


def test_stdio_arguments_nested_500_deep_are_invalid_params(stdio_server: StdioServer) -> None:
    calls = [
        _tool_call("json_schema_2020_12_tool", arguments={"a": _deep(500)}),
        _tool_call("test_simple_text", arguments={"a": [_deep(499)]}),
        _tool_call("test_simple_text", arguments={"a": _deep(500)}, _meta=MODERN_META),
    ]
    answers = stdio_server.exchange(calls)
    for call in calls:
        (answer,) = answers[call["id"]]
        assert answer["error"]["code"] == -32602, answer
        assert "params.arguments.a" in answer["error"]["message"]
    assert "Traceback" not in stdio_server.stderr_text()


# -- HTTP -------------------------------------------------------------------------------------


class HttpServer:
    """A server process on Streamable HTTP (port 0), and a blocking client for it."""

    def __init__(self, stderr_path: Path) -> None:
        self._stderr = stderr_path.open("wb")
        self.stderr_path = stderr_path
        self.process = subprocess.Popen(
            [*SERVE, "--transport", "http", "--port", "0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            cwd=ROOT,
        )
        self.url = self._wait_for_url()
        self.client = httpx.Client(timeout=ANSWER_WITHIN)
        self.session_id: str | None = None

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + ANSWER_WITHIN
        while time.monotonic() < deadline:
            self._stderr.flush()
            match = re.search(r" on (http://\S+)", self.stderr_path.read_text(errors="replace"))
            if match:
                return match.group(1)
            assert self.process.poll() is None, self.stderr_path.read_text(errors="replace")
            time.sleep(0.05)
        raise TimeoutError("the HTTP server did not start")

    def post(self, message: dict[str, Any], *, modern: bool) -> httpx.Response:
        headers = {
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
        }
        params = message.get("params")
        if modern:
            headers["mcp-protocol-version"] = MODERN
            method = message.get("method")
            headers["mcp-method"] = method if isinstance(method, str) else ""
            source = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
            name = params.get(source.get(str(method), "name")) if isinstance(params, dict) else None
            if isinstance(name, str):
                headers["mcp-name"] = encode_header_value(name)
        elif self.session_id is not None:
            headers["mcp-session-id"] = self.session_id
            headers["mcp-protocol-version"] = INITIALIZE["protocolVersion"]
        return self.client.post(self.url, content=_dumps(message), headers=headers)

    def answers(self, response: httpx.Response) -> list[dict[str, Any]]:
        """The JSON-RPC responses in an HTTP response (JSON or an SSE stream)."""
        if not response.content:
            return []
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            out = []
            for line in response.text.splitlines():
                if line.startswith("data:") and line[5:].strip():
                    value = json.loads(line[5:])
                    if isinstance(value, dict) and "method" not in value:
                        out.append(value)
            return out
        value = response.json()
        return [value] if isinstance(value, dict) else list(value)

    def initialize(self) -> None:
        response = self.post(
            {"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": INITIALIZE},
            modern=False,
        )
        assert response.status_code == 200, response.text
        self.session_id = response.headers["mcp-session-id"]
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert self.post(note, modern=False).status_code == 202

    def close(self) -> None:
        self.client.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._stderr.close()


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    server = HttpServer(tmp_path_factory.mktemp("http") / "stderr.txt")
    try:
        server.initialize()
        yield server
    finally:
        server.close()


def _http_exchange(server: HttpServer, messages: list[dict[str, Any]], *, modern: bool) -> None:
    for message in messages:
        response = server.post(message, modern=modern)
        if "id" not in message:
            # A notification gets no answer; a bad one must not be an internal error.
            assert response.status_code in (202, 400), (response.status_code, response.text)
            continue
        assert response.status_code in (200, 400, 404), (response.status_code, response.text)
        answers = server.answers(response)
        assert [a.get("id") for a in answers] == [message["id"]], (message, answers)
        _check_error(answers[0])


def _http_tool_call_works(server: HttpServer, *, modern: bool) -> None:
    extra = {"_meta": MODERN_META} if modern else {}
    call = _tool_call(**extra)
    (answer,) = server.answers(server.post(call, modern=modern))
    assert answer["id"] == call["id"]
    assert answer["result"]["content"][0]["text"] == "This is a simple text response for testing."


@_HYPOTHESIS
@given(messages=_batches("legacy"))
def test_http_legacy_session_survives_hostile_params(
    http_server: HttpServer, messages: list[dict[str, Any]]
) -> None:
    sent = _prepare([m for m in messages if not _slow(m) and m["method"] != "initialize"])
    _http_exchange(http_server, sent, modern=False)
    _http_tool_call_works(http_server, modern=False)


@_HYPOTHESIS
@given(messages=_batches(MODERN))
def test_http_modern_requests_survive_hostile_params(
    http_server: HttpServer, messages: list[dict[str, Any]]
) -> None:
    sent = _prepare([m for m in messages if not _slow(m)])
    _http_exchange(http_server, sent, modern=True)
    _http_tool_call_works(http_server, modern=True)
    assert http_server.process.poll() is None


def test_http_cancelled_with_a_list_or_object_request_id(http_server: HttpServer) -> None:
    for request_id in ([1, 2], {"id": 1}):
        note = {
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": {"requestId": request_id},
        }
        assert http_server.post(note, modern=False).status_code == 202
    _http_tool_call_works(http_server, modern=False)
    assert http_server.process.poll() is None


def test_http_arguments_nested_500_deep_are_invalid_params(http_server: HttpServer) -> None:
    for modern in (False, True):
        extra = {"_meta": MODERN_META} if modern else {}
        call = _tool_call("json_schema_2020_12_tool", arguments={"a": _deep(500)}, **extra)
        (answer,) = http_server.answers(http_server.post(call, modern=modern))
        assert answer["error"]["code"] == -32602, answer
        assert "params.arguments.a" in answer["error"]["message"]
    http_server._stderr.flush()
    assert "Traceback" not in http_server.stderr_path.read_text(errors="replace")


def _sse_messages(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event, data) pairs from an SSE stream's lines."""
    event, data = "message", []
    for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


def test_http_sse_2024_endpoint_survives_hostile_messages(http_server: HttpServer) -> None:
    base = http_server.url.split("/", 3)
    origin = "/".join(base[:3])
    with (
        httpx.Client(timeout=ANSWER_WITHIN) as client,
        client.stream("GET", f"{origin}/sse", headers={"accept": "text/event-stream"}) as stream,
    ):
        events = _sse_messages(stream.iter_lines())
        kind, endpoint = next(events)
        assert kind == "endpoint"

        def post(message: dict[str, Any]) -> None:
            response = client.post(
                f"{origin}{endpoint}",
                content=_dumps(message),
                headers={"content-type": "application/json"},
            )
            assert response.status_code == 202, response.text

        def answer(request_id: str) -> dict[str, Any]:
            for kind, data in events:
                value = json.loads(data)
                if kind == "message" and value.get("id") == request_id and "method" not in value:
                    assert isinstance(value, dict)
                    return value
            raise AssertionError("the stream ended")

        post({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": INITIALIZE})
        # Pipelined: initialized and a first call go out before the answer is read.
        post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        first = _tool_call()
        post(first)
        assert "result" in answer("init")
        assert "result" in answer(first["id"])
        for request_id in ([1, 2], {"id": 1}):
            post(
                {
                    "jsonrpc": "2.0",
                    "method": "notifications/cancelled",
                    "params": {"requestId": request_id},
                }
            )
        deep = _tool_call("json_schema_2020_12_tool", arguments={"a": _deep(500)})
        post(deep)
        error = answer(deep["id"])["error"]
        assert error["code"] == -32602 and "params.arguments.a" in error["message"]
        call = _tool_call()
        post(call)
        assert answer(call["id"])["result"]["content"][0]["text"].startswith("This is a simple")
    assert http_server.process.poll() is None


def test_http_malformed_answer_to_a_server_request_fails_only_that_request(
    http_server: HttpServer,
) -> None:
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    init = {**INITIALIZE, "capabilities": {"sampling": {}}}
    with httpx.Client(timeout=ANSWER_WITHIN) as client:
        response = client.post(
            http_server.url,
            content=_dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init}),
            headers=headers,
        )
        headers["mcp-session-id"] = response.headers["mcp-session-id"]
        headers["mcp-protocol-version"] = INITIALIZE["protocolVersion"]
        call = _tool_call("test_sampling", arguments={"prompt": "hi"})
        with client.stream(
            "POST", http_server.url, content=_dumps(call), headers=headers
        ) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            events = _sse_messages(stream.iter_lines())
            sampling = json.loads(next(data for _, data in events if '"method"' in data))
            assert sampling["method"] == "sampling/createMessage"
            # The answer's result is an array: not a JSON-RPC response at all.
            malformed = {"jsonrpc": "2.0", "id": sampling["id"], "result": [1, 2]}
            posted = client.post(http_server.url, content=_dumps(malformed), headers=headers)
            assert posted.status_code == 202, posted.text
            answer = next(json.loads(data) for _, data in events if '"method"' not in data)
        assert answer["id"] == call["id"]
        # The tool saw its request fail, and says so; the session goes on.
        outcome = json.dumps(answer)
        assert "malformed response" in outcome, answer
        ok = _tool_call()
        response = client.post(http_server.url, content=_dumps(ok), headers=headers)
        (result,) = http_server.answers(response)
        assert result["result"]["content"][0]["text"].startswith("This is a simple")
