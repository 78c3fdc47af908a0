"""Our client against a server that sends malformed messages: only those messages fail."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
import trio

from mcptrio import (
    ConnectionClosed,
    InternalError,
    InvalidParams,
    open_client,
    open_stdio_process,
)
from mcptrio.types import LoggingMessageNotificationParams, TextContent

HOSTILE = [sys.executable, str(Path(__file__).parent / "helpers" / "hostile_server.py")]


async def test_client_survives_a_hostile_stdio_server(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="mcptrio")
    logs: list[LoggingMessageNotificationParams] = []

    async def on_log(params: LoggingMessageNotificationParams) -> None:
        logs.append(params)

    async with (
        open_stdio_process(HOSTILE, stderr="capture") as transport,
        open_client(transport, on_log=on_log) as client,
    ):
        with trio.fail_after(60):
            # Malformed answers fail their own call at once, saying what was wrong.
            with pytest.raises(InternalError, match='malformed response: "result" must be'):
                await client.call_tool("result-array")
            with pytest.raises(InternalError, match='malformed response: "error" must be'):
                await client.call_tool("error-mangled")
            with pytest.raises(InvalidParams, match=r"result\.content: expected an array"):
                await client.call_tool("bad-content")
            # Odd but well-formed answers are taken as they are.
            deep = await client.call_tool("deep")
            assert isinstance(deep.structured_content, dict)
            huge = await client.call_tool("huge-int")
            assert huge.structured_content == {"n": 1e40}
            # Bad notifications (wrong-typed ids, tokens, log levels) are dropped.
            after = await client.call_tool("notify-garbage")
            assert after.content == [TextContent(text="after garbage")]
            result = await client.call_tool("ok")
            assert result.content == [TextContent(text="fine")]
            await client.ping()
            assert not client.peer.closed
    # The well-formed log message arrived (twice: after initialize and after the call).
    assert [params.level for params in logs] == ["info", "info"]
    messages = [record.getMessage() for record in caplog.records]
    assert any("ignored notifications/cancelled: requestId must be" in m for m in messages)
    assert any("dropped notifications/message" in m for m in messages)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_pending_calls_fail_when_the_hostile_server_dies() -> None:
    async with (
        open_stdio_process(
            [sys.executable, "-c", "import sys; sys.stdin.readline(); print('garbage')"],
            stderr="devnull",
        ) as transport,
    ):
        with trio.fail_after(60), pytest.raises(ConnectionClosed):
            async with open_client(transport):
                pass  # pragma: no cover
