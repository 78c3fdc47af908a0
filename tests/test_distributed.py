"""Two server processes sharing Redis and requestState keys act as one 2026-07-28 server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio

from mcptrio._protocol.request_state import generate_key_spec
from mcptrio._protocol.sse import SSEDecoder

ROOT = Path(__file__).resolve().parent.parent
VERSION = "2026-07-28"
CAPS = {"sampling": {}, "elicitation": {}, "roots": {}}
URL = re.compile(rb"http://127\.0\.0\.1:\d+/mcp")


@asynccontextmanager
async def server_process(env: dict[str, str]) -> AsyncIterator[str]:
    """Run `python -m mcptrio serve examples/everything.py` over HTTP; yield its URL."""
    command = [sys.executable, "-m", "mcptrio", "serve", "examples/everything.py"]
    command += ["--transport", "http", "--port", "0"]
    process = await trio.lowlevel.open_process(
        command,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        seen = b""
        with trio.fail_after(20):
            while (match := URL.search(seen)) is None:
                chunk = await process.stderr.receive_some(4096)
                if not chunk:
                    raise AssertionError(f"server exited: {seen.decode(errors='replace')}")
                seen += chunk
        yield match.group().decode()
    finally:
        process.terminate()
        with trio.move_on_after(5):
            await process.wait()
        process.kill()
        await process.wait()


def request(request_id: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
    meta = {
        "io.modelcontextprotocol/protocolVersion": VERSION,
        "io.modelcontextprotocol/clientCapabilities": CAPS,
    }
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": method,
        "params": {**params, "_meta": meta},
    }


def headers(method: str, name: str | None = None) -> dict[str, str]:
    out = {
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": VERSION,
        "mcp-method": method,
    }
    if name is not None:
        out["mcp-name"] = name
    return out


def final_message(response: httpx.Response) -> dict[str, Any]:
    if response.headers["content-type"].startswith("application/json"):
        body = response.json()
        assert isinstance(body, dict)
        return body
    events = [e for e in SSEDecoder().feed(response.content) if e.data]
    body = orjson.loads(events[-1].data)
    assert isinstance(body, dict)
    return body


async def test_mrtr_round_and_listen_span_two_processes() -> None:
    channel = f"mcptrio-test-{uuid.uuid4().hex}:changes"
    env = {
        "MCPTRIO_SERVER__REQUEST_STATE_KEYS": generate_key_spec("shared"),
        "MCPTRIO_CLUSTER__REDIS_URL": "redis://127.0.0.1:6379",
        "MCPTRIO_CLUSTER__CHANNEL": channel,
    }
    with trio.fail_after(60):
        async with (
            server_process(env) as first,
            server_process(env) as second,
            httpx.AsyncClient(timeout=20) as http,
        ):
            # An MRTR round started on the first process...
            arguments = {"prompt": "Say hi"}
            asked = final_message(
                await http.post(
                    first,
                    json=request(
                        1, "tools/call", {"name": "test_sampling", "arguments": arguments}
                    ),
                    headers=headers("tools/call", "test_sampling"),
                )
            )["result"]
            assert asked["resultType"] == "input_required"
            [key] = asked["inputRequests"]
            answer = {"role": "assistant", "content": {"type": "text", "text": "hi"}, "model": "m"}
            # ...completes on the second.
            retry = request(
                2,
                "tools/call",
                {
                    "name": "test_sampling",
                    "arguments": arguments,
                    "inputResponses": {key: answer},
                    "requestState": asked["requestState"],
                },
            )
            done = final_message(
                await http.post(second, json=retry, headers=headers("tools/call", "test_sampling"))
            )
            assert done["result"]["content"][0]["text"] == "LLM response: hi"
            assert done["result"]["resultType"] == "complete"

            # A listener on the second process hears a change made on the first.
            listen = request(
                3, "subscriptions/listen", {"notifications": {"toolsListChanged": True}}
            )
            decoder = SSEDecoder()
            async with http.stream(
                "POST", second, json=listen, headers=headers("subscriptions/listen")
            ) as stream:
                chunks = stream.aiter_raw()
                messages: list[dict[str, Any]] = []

                async def read_until(method: str) -> dict[str, Any]:
                    while True:
                        for message in messages:
                            if message.get("method") == method:
                                messages.remove(message)
                                return message
                        for event in decoder.feed(await chunks.__anext__()):
                            if event.data:
                                messages.append(orjson.loads(event.data))

                ack = await read_until("notifications/subscriptions/acknowledged")
                assert ack["params"]["notifications"] == {"toolsListChanged": True}
                assert ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == 3
                trigger = await http.post(
                    first,
                    json=request(4, "tools/call", {"name": "test_trigger_tool_change"}),
                    headers=headers("tools/call", "test_trigger_tool_change"),
                )
                assert "result" in final_message(trigger)
                changed = await read_until("notifications/tools/list_changed")
                assert changed["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == 3
