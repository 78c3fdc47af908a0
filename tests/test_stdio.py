"""stdio transports with real child processes (tests/helpers/echo_peer.py)."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
import pytest
import trio

from mcptrio._protocol.jsonrpc import ErrorResponse, Notification, Request, Response
from mcptrio._transports.stdio import StderrMode, StdioProcessTransport, open_stdio_process

ECHO_PEER = str(Path(__file__).parent / "helpers" / "echo_peer.py")
GRACE = 0.2
# Generous bound for "promptly" with real processes: several graces, far below a hang.
PROMPT = 5.0


@asynccontextmanager
async def echo_peer(
    *flags: str, stderr: StderrMode = "devnull", grace: float = PROMPT
) -> AsyncIterator[StdioProcessTransport]:
    """The helper, started and past its ``ready`` notification.

    The default grace is long so a cooperative child exits on its own even on a busy
    machine; tests about signals pass a short one.
    """
    async with open_stdio_process(
        [sys.executable, ECHO_PEER, *flags], stderr=stderr, terminate_grace=grace
    ) as transport:
        with trio.fail_after(PROMPT * 2):
            ready = await transport.receive()
        assert isinstance(ready, Notification) and ready.method == "ready"
        yield transport


async def call(transport: StdioProcessTransport, request: Request) -> object:
    await transport.send(request)
    with trio.fail_after(PROMPT):
        return await transport.receive()


async def test_round_trip_with_a_child_process() -> None:
    async with echo_peer() as transport:
        assert transport.pid > 0 and transport.returncode is None
        params = {"text": "multi\nline", "n": [1, 2.5, None], "u": "é😀"}
        assert await call(transport, Request(1, "echo", params)) == Response(1, params)
        await transport.send_batch([Request("a", "echo", {"x": 1}), Request("b", "echo")])
        assert await transport.receive() == [Response("a", {"x": 1}), Response("b", {})]
        stats = transport.statistics()
        assert stats.messages_sent == 2 and stats.messages_received == 3
    assert transport.returncode == 0


async def test_edge_errors_are_answered_and_the_stream_goes_on() -> None:
    async with echo_peer() as transport:
        stdin = transport.process.stdin
        assert stdin is not None
        await stdin.send_all(b"not json\n")
        await stdin.send_all(orjson.dumps({"jsonrpc": "2.0", "id": 5, "method": 1}) + b"\n")
        await stdin.send_all(b"x" * (10 * 1024 * 1024) + b"\n")
        with trio.fail_after(PROMPT):
            parse_error = await transport.receive()
            invalid = await transport.receive()
            too_large = await transport.receive()
        assert isinstance(parse_error, ErrorResponse)
        assert (parse_error.id, parse_error.code) == (None, -32700)
        assert parse_error.message.startswith("Parse error: ")
        assert isinstance(invalid, ErrorResponse)
        assert (invalid.id, invalid.code) == (5, -32600)
        assert too_large == ErrorResponse(
            None, -32600, "message too large: more than 4194304 bytes; the line was discarded"
        )
        assert await call(transport, Request(6, "echo", {"still": "here"})) == Response(
            6, {"still": "here"}
        )
    assert transport.returncode == 0


async def test_stray_stdout_output_does_not_reach_the_protocol_stream() -> None:
    async with echo_peer(stderr="capture") as transport:
        assert await call(transport, Request(1, "print")) == Response(1, {"ok": True})
        assert await call(transport, Request(2, "echo", {"a": 1})) == Response(2, {"a": 1})
        assert transport.statistics().rejected_lines == 0
        # Leaving the transport restores stdout: the helper's next print reaches us.
        assert await call(transport, Request(3, "finish")) == Response(3, {})
        with trio.fail_after(PROMPT):
            assert await transport.receive() == Notification("restored")
            with pytest.raises(trio.EndOfChannel):
                await transport.receive()
    text = transport.stderr_text()
    for expected in ("stray print to stdout", "raw write to fd 1", "subprocess output"):
        assert expected in text
    assert transport.returncode == 0


async def test_child_that_exits_on_stdin_eof_gets_no_signal() -> None:
    with trio.fail_after(PROMPT):
        async with echo_peer() as transport:
            pass
    assert transport.returncode == 0


async def test_child_that_ignores_stdin_eof_gets_sigterm() -> None:
    with trio.fail_after(PROMPT):
        async with echo_peer("--ignore-eof", grace=GRACE) as transport:
            pass
    assert transport.returncode == -signal.SIGTERM


async def test_child_that_ignores_sigterm_gets_sigkill() -> None:
    with trio.fail_after(PROMPT):
        async with echo_peer("--ignore-eof", "--ignore-sigterm", grace=GRACE) as transport:
            pass
    assert transport.returncode == -signal.SIGKILL


async def test_cancelling_the_surrounding_scope_still_reaps_the_child() -> None:
    with trio.fail_after(PROMPT):
        with trio.CancelScope() as scope:
            async with echo_peer("--ignore-eof", grace=GRACE) as transport:
                scope.cancel()
                await trio.sleep_forever()
    assert scope.cancelled_caught
    assert transport.returncode == -signal.SIGTERM


async def test_errors_in_the_body_propagate_unwrapped() -> None:
    with pytest.raises(KeyError, match="boom"):
        async with echo_peer() as transport:
            raise KeyError("boom")
    assert transport.returncode == 0


async def test_pending_receive_ends_when_the_child_dies() -> None:
    async with echo_peer() as transport:
        await transport.send(Notification("die"))
        with trio.fail_after(PROMPT), pytest.raises(trio.EndOfChannel):
            await transport.receive()
        # Its stdout can close a moment before its stdin does; once it is gone, writes fail.
        with trio.fail_after(PROMPT):
            await transport.process.wait()
        with pytest.raises(trio.BrokenResourceError):
            await transport.send(Notification("anyone there?"))
    assert transport.returncode == 3


async def test_last_answer_before_exit_is_delivered() -> None:
    async with echo_peer() as transport:
        assert await call(transport, Request(9, "exit", {"code": 4})) == Response(9, {})
        with trio.fail_after(PROMPT), pytest.raises(trio.EndOfChannel):
            await transport.receive()
    assert transport.returncode == 4


async def test_receive_ends_even_if_a_descendant_keeps_stdout_open() -> None:
    grandchild = None
    try:
        async with echo_peer("--grandchild", grace=GRACE) as transport:
            with trio.fail_after(PROMPT):
                message = await transport.receive()
                assert isinstance(message, Notification) and message.params is not None
                grandchild = message.params["pid"]
                with pytest.raises(trio.EndOfChannel):
                    await transport.receive()
        assert transport.returncode == 0
    finally:
        if grandchild is not None:
            os.kill(grandchild, signal.SIGKILL)


async def test_stderr_capture_keeps_the_last_bytes() -> None:
    async with open_stdio_process(
        [sys.executable, ECHO_PEER], stderr="capture", terminate_grace=PROMPT, stderr_limit=1000
    ) as transport:
        await transport.receive()
        request = Request(1, "stderr", {"text": "0123456789", "repeat": 10_000})
        assert await call(transport, request) == Response(1, {"ok": True})
        request = Request(2, "stderr", {"text": "the end\n"})
        assert await call(transport, request) == Response(2, {"ok": True})
    text = transport.stderr_text()
    assert len(text) == 1000
    assert text.endswith("0123456789the end\n")


async def test_a_command_that_does_not_exist_is_a_clear_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-server")
    with pytest.raises(FileNotFoundError, match="cannot start the MCP server"):
        async with open_stdio_process([missing]):
            pass  # pragma: no cover


async def test_bad_arguments_are_rejected_before_spawning() -> None:
    with pytest.raises(TypeError, match="list of arguments"):
        async with open_stdio_process("python server.py"):
            pass  # pragma: no cover
    with pytest.raises(ValueError, match="must not be empty"):
        async with open_stdio_process([]):
            pass  # pragma: no cover
    with pytest.raises(ValueError, match="stderr must be"):
        async with open_stdio_process(["true"], stderr="pipe"):  # type: ignore[arg-type]
            pass  # pragma: no cover
