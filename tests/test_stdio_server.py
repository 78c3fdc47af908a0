"""Our stdio server as a real process: the CLI, a full client session, and bad input."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio

from mcptrio import open_client, open_stdio_process
from mcptrio.types import TextContent

ROOT = Path(__file__).resolve().parent.parent
SERVE = [sys.executable, "-m", "mcptrio", "serve", str(ROOT / "examples" / "everything.py")]
INIT = {
    "jsonrpc": "2.0",
    "id": "init",
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}


class RawPeer:
    """Writes raw bytes to a server process and reads its output line by line."""

    def __init__(self, process: trio.Process) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.process = process
        self._stdin = process.stdin
        self._stdout = process.stdout
        self._buffer = b""

    async def write(self, data: bytes) -> None:
        await self._stdin.send_all(data)

    async def send(self, message: dict[str, Any]) -> None:
        await self.write(orjson.dumps(message) + b"\n")

    async def read(self) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            chunk = await self._stdout.receive_some(65536)
            if not chunk:
                raise EOFError("server closed stdout")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        value = orjson.loads(line)
        assert isinstance(value, dict)
        return value

    async def read_response(self, request_id: Any) -> dict[str, Any]:
        """Read until the response to ``request_id`` (skipping notifications)."""
        while True:
            message = await self.read()
            if "id" in message and message.get("id") == request_id and "method" not in message:
                return message


@asynccontextmanager
async def raw_server() -> AsyncIterator[RawPeer]:
    process = await trio.lowlevel.open_process(
        SERVE, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT
    )
    try:
        yield RawPeer(process)
    finally:
        assert process.stdin is not None
        await process.stdin.aclose()
        with trio.move_on_after(10) as scope:
            await process.wait()
        if scope.cancelled_caught:
            process.kill()
            await process.wait()


async def test_cli_server_full_session_over_stdio() -> None:
    with trio.fail_after(30):
        async with (
            open_stdio_process(SERVE, cwd=ROOT, stderr="capture") as transport,
            open_client(transport) as client,
        ):
            assert client.server_info.name == "mcp-conformance-test-server"
            names = {tool.name for tool in await client.all_tools()}
            assert {"test_simple_text", "test_tool_with_progress", "test_sampling"} <= names
            result = await client.call_tool("test_simple_text")
            assert result.content == [
                TextContent(text="This is a simple text response for testing.")
            ]
            static = await client.read_resource("test://static-text")
            assert static.contents[0].text == (  # type: ignore[union-attr]
                "This is the content of the static text resource."
            )
            await client.ping()
        # Closing stdin ends the server cleanly (no signal needed).
        assert transport.returncode == 0, transport.stderr_text()


async def test_bad_input_gets_errors_and_the_server_keeps_serving() -> None:
    with trio.fail_after(60):
        async with raw_server() as peer:
            # A request before initialize.
            await peer.send({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
            early = await peer.read_response(1)
            assert early["error"]["code"] == -32600
            assert "initialize" in early["error"]["message"]

            await peer.send(INIT)
            assert (await peer.read_response("init"))["result"]["protocolVersion"] == "2025-11-25"
            await peer.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

            # Not JSON at all.
            await peer.write(b"this is not json\n")
            parse = await peer.read()
            assert parse["id"] is None
            assert parse["error"]["code"] == -32700

            # JSON, but not JSON-RPC.
            await peer.write(b'{"hello": "world"}\n')
            invalid = await peer.read()
            assert invalid["error"]["code"] == -32600

            # An unknown method.
            await peer.send({"jsonrpc": "2.0", "id": 2, "method": "no/such"})
            unknown = await peer.read_response(2)
            assert unknown["error"]["code"] == -32601
            assert "no/such" in unknown["error"]["message"]

            # Wrong params.
            await peer.send(
                {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": 42}}
            )
            wrong = await peer.read_response(3)
            assert wrong["error"]["code"] == -32602
            assert "name" in wrong["error"]["message"]

            # Invalid tool arguments are a tool execution error.
            await peer.send(
                {
                    "jsonrpc": "2.0",
                    "id": 4,
                    "method": "tools/call",
                    "params": {"name": "test_sampling", "arguments": {"prompt": 5}},
                }
            )
            bad_args = await peer.read_response(4)
            assert bad_args["result"]["isError"] is True

            # A duplicate id while the first request is still in flight.
            slow = {
                "jsonrpc": "2.0",
                "id": 5,
                "method": "tools/call",
                "params": {"name": "wait_for_cancellation", "arguments": {"seconds": 2}},
            }
            await peer.send(slow)
            await peer.send({"jsonrpc": "2.0", "id": 5, "method": "ping"})
            duplicate = await peer.read_response(5)
            assert duplicate["error"]["code"] == -32600
            assert "already in use" in duplicate["error"]["message"]
            original = await peer.read_response(5)
            assert original["result"]["content"][0]["text"] == "not cancelled"

            # A 10 MB line is refused without buffering it, and nothing else is lost.
            await peer.write(b'{"jsonrpc":"2.0","id":6,"method":"ping","params":{"pad":"')
            await peer.write(b"x" * (10 * 1024 * 1024))
            await peer.write(b'"}}\n')
            huge = await peer.read()
            assert huge["error"]["code"] == -32600
            assert "too large" in huge["error"]["message"]

            # After all that, the server still serves.
            await peer.send({"jsonrpc": "2.0", "id": 7, "method": "ping"})
            assert await peer.read_response(7) == {"jsonrpc": "2.0", "id": 7, "result": {}}
            await peer.send(
                {
                    "jsonrpc": "2.0",
                    "id": 8,
                    "method": "tools/call",
                    "params": {"name": "test_simple_text"},
                }
            )
            ok = await peer.read_response(8)
            assert ok["result"]["content"][0]["type"] == "text"


async def test_cancellation_reaches_the_server_process() -> None:
    with trio.fail_after(30):
        async with (
            open_stdio_process(SERVE, cwd=ROOT) as transport,
            open_client(transport) as client,
        ):
            with trio.move_on_after(0.5):
                await client.call_tool("wait_for_cancellation", {"seconds": 20})
            count = await client.call_tool("get_cancellation_count", {"at_least": 1})
            assert count.content[0].text == "1"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "args, message",
    [
        (["serve", "examples/nope.py"], "nope.py"),
        (["serve", "examples/everything.py:missing"], "missing"),
    ],
)
async def test_cli_errors_are_clear(args: list[str], message: str) -> None:
    result = await trio.run_process(
        [sys.executable, "-m", "mcptrio", *args], cwd=ROOT, capture_stderr=True, check=False
    )
    assert result.returncode == 2
    assert message in result.stderr.decode()
