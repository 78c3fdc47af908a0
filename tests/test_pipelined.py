"""A client may write initialize, notifications/initialized and a request in one go.

The server must handle them in that order every time, not only when the scheduler happens
to run the initialize task first.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import trio
import trio.testing

from mcptrio import Server, serve_connection
from mcptrio._transports.stream import StreamTransport

ROOT = Path(__file__).resolve().parent.parent
SERVE = [sys.executable, "-m", "mcptrio", "serve", str(ROOT / "examples" / "everything.py")]

PIPELINE = b"".join(
    orjson.dumps(message) + b"\n"
    for message in (
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "pipelined", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "logging/setLevel", "params": {"level": "error"}},
        {"jsonrpc": "2.0", "id": 4, "method": "ping"},
    )
)


class Lines:
    """Reads newline-delimited JSON from a trio receive stream."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buffer = b""

    async def read(self) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            chunk = await self._stream.receive_some(65536)
            if not chunk:
                raise EOFError("the server closed its output")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        value = orjson.loads(line)
        assert isinstance(value, dict)
        return value

    async def answers(self, count: int) -> dict[Any, dict[str, Any]]:
        out: dict[Any, dict[str, Any]] = {}
        while len(out) < count:
            message = await self.read()
            if "method" not in message:
                out[message["id"]] = message
        return out


def check(answers: dict[Any, dict[str, Any]], tool: str) -> None:
    assert answers[1]["result"]["protocolVersion"] == "2025-11-25", answers[1]
    assert tool in [t["name"] for t in answers[2]["result"]["tools"]], answers[2]
    assert answers[3] == {"jsonrpc": "2.0", "id": 3, "result": {}}
    assert answers[4] == {"jsonrpc": "2.0", "id": 4, "result": {}}


def small_server() -> Server:
    server = Server("pipelined")

    @server.tool()
    async def echo(text: str) -> str:
        """Echo the text."""
        return text

    return server


async def test_pipelined_handshake_200_fresh_stdio_connections() -> None:
    # The stdio transport's code path (StreamTransport and serve_connection) over an
    # in-process byte stream, one fresh connection per round.
    server = small_server()
    answered = 0
    for _ in range(200):
        client, server_end = trio.testing.memory_stream_pair()
        transport = StreamTransport(server_end, server_end, name="stdio")
        async with trio.open_nursery() as nursery:
            session = await nursery.start(serve_connection, server, transport)
            await client.send_all(PIPELINE)
            check(await Lines(client).answers(4), "echo")
            assert session.client_initialized
            assert session.log_level == "error"
            answered += 1
            await client.aclose()
    assert answered == 200


async def test_pipelined_handshake_with_real_server_processes() -> None:
    async def one_round() -> None:
        process = await trio.lowlevel.open_process(
            SERVE, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT
        )
        assert process.stdin is not None and process.stdout is not None
        try:
            await process.stdin.send_all(PIPELINE)
            check(await Lines(process.stdout).answers(4), "test_simple_text")
        finally:
            await process.stdin.aclose()
            with trio.move_on_after(10):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert process.returncode == 0

    # 20 processes, a few at a time (two cores, shared).
    limiter = trio.CapacityLimiter(3)

    async def limited() -> None:
        async with limiter:
            await one_round()

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(limited)


async def test_requests_start_in_arrival_order() -> None:
    # setLevel changes the session without waiting; a request read after it must see it.
    server = small_server()
    levels: list[str | None] = []

    @server.tool()
    async def level() -> str:
        """The session's log level when the call started."""
        (session,) = server.sessions
        levels.append(session.log_level)
        return str(session.log_level)

    client, server_end = trio.testing.memory_stream_pair()
    transport = StreamTransport(server_end, server_end, name="stdio")
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_connection, server, transport)
        lines = Lines(client)
        await client.send_all(PIPELINE)
        await lines.answers(4)
        batch = b""
        for n, name in enumerate(["debug", "warning", "critical", "info"] * 10):
            for message in (
                {
                    "jsonrpc": "2.0",
                    "id": f"set{n}",
                    "method": "logging/setLevel",
                    "params": {"level": name},
                },
                {
                    "jsonrpc": "2.0",
                    "id": f"call{n}",
                    "method": "tools/call",
                    "params": {"name": "level", "arguments": {}},
                },
            ):
                batch += orjson.dumps(message) + b"\n"
        await client.send_all(batch)
        await lines.answers(80)
        assert levels == ["debug", "warning", "critical", "info"] * 10
        await client.aclose()
