"""stdio transports: serve on this process's stdin/stdout, or spawn a server process.

Framing is :class:`~mcptrio._transports.stream.StreamTransport` (one message per line).
Shutdown of a spawned server follows the spec: close its stdin, wait, SIGTERM, wait,
SIGKILL; it is bounded and runs even when the surrounding scope is cancelled.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Literal, TextIO

import trio

from .._runtime.groups import unwrap_single_error
from .stream import DEFAULT_MAX_MESSAGE_BYTES, StreamTransport

if TYPE_CHECKING:
    from .._ops.metrics import Metrics

__all__ = [
    "DEFAULT_STDERR_LIMIT",
    "StderrMode",
    "StdioProcessTransport",
    "open_stdio_process",
    "open_stdio_server_transport",
]

StderrMode = Literal["inherit", "capture", "devnull"]

DEFAULT_STDERR_LIMIT = 64 * 1024
"""How many bytes of a spawned server's stderr ``stderr="capture"`` keeps (the last ones)."""

_READ_CHUNK = 65536

_server_transport_open = False


@asynccontextmanager
async def open_stdio_server_transport(
    *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, metrics: Metrics | None = None
) -> AsyncIterator[StreamTransport]:
    """Serve on this process's stdin and stdout (Unix).

    While the transport is open, only it can write to the real stdout: file
    descriptor 1 and ``sys.stdout`` point to stderr and descriptor 0 to /dev/null, so
    a stray ``print`` or a subprocess started by a handler cannot corrupt the protocol
    stream (nor consume its input). Everything is restored on exit. One per process.
    With ``metrics``, the messages and bytes are counted there.
    """
    global _server_transport_open
    if sys.platform == "win32":  # pragma: no cover
        raise NotImplementedError("the stdio server transport needs a Unix platform")
    if _server_transport_open:
        raise RuntimeError("the stdio server transport is already open in this process")
    sys.stdout.flush()
    saved_stdout: TextIO = sys.stdout
    # Two private copies each of stdin and stdout: one for the transport, one to
    # restore the standard descriptors afterwards.
    fds: list[int] = []
    try:
        for fd in (0, 1, 0, 1):
            fds.append(os.dup(fd))
    except OSError as exc:
        for fd in fds:
            os.close(fd)
        raise OSError(
            exc.errno, f"cannot serve on stdio: stdin or stdout is not open ({exc.strerror})"
        ) from exc
    protocol_in, protocol_out, restore_in, restore_out = fds
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(devnull, 0)
        os.dup2(2, 1)
    finally:
        os.close(devnull)
    sys.stdout = sys.stderr
    _server_transport_open = True
    transport = StreamTransport(
        trio.lowlevel.FdStream(protocol_out),
        trio.lowlevel.FdStream(protocol_in),
        max_message_bytes=max_message_bytes,
        name="stdio",
        metrics=metrics,
    )
    transport.kind = "stdio"
    try:
        yield transport
    finally:
        try:
            with trio.CancelScope(shield=True):
                await transport.aclose()
        finally:
            # Output written through old references to stdout while we were open
            # belongs on stderr, where descriptor 1 still points.
            for stream in (saved_stdout, sys.stderr):
                with contextlib.suppress(OSError, ValueError):
                    stream.flush()
            sys.stdout = saved_stdout
            os.dup2(restore_in, 0)
            os.dup2(restore_out, 1)
            os.close(restore_in)
            os.close(restore_out)
            _server_transport_open = False


class StdioProcessTransport(StreamTransport):
    """A :class:`StreamTransport` to a spawned server process (see :func:`open_stdio_process`)."""

    kind = "stdio"

    def __init__(
        self,
        process: trio.Process,
        *,
        max_message_bytes: int,
        terminate_grace: float,
        stderr_limit: int,
        name: str,
    ) -> None:
        assert process.stdin is not None and process.stdout is not None
        super().__init__(
            process.stdin, process.stdout, max_message_bytes=max_message_bytes, name=name
        )
        self.process = process
        """The child process (a :class:`trio.Process`)."""
        self._grace = terminate_grace
        self._stderr_limit = stderr_limit
        self._stderr = bytearray()
        self._stderr_done = trio.Event()
        self._exited = False
        self._read_scope: trio.CancelScope | None = None

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        """The exit status once the child was reaped (negative: killed by that signal)."""
        return self.process.returncode

    def stderr_text(self) -> str:
        """The captured end of the child's stderr (``stderr="capture"`` only), decoded leniently."""
        return self._stderr.decode("utf-8", errors="replace")

    async def _receive_some(self) -> bytes | bytearray:
        # Once the child has exited, its output ends when its stdout closes; a
        # descendant that inherited stdout could keep it open forever, so reads then
        # wait at most the grace period for more bytes and report end of input.
        with trio.CancelScope() as scope:
            if self._exited:
                scope.deadline = trio.current_time() + self._grace
            self._read_scope = scope
            try:
                return await super()._receive_some()
            finally:
                self._read_scope = None
        return b""

    async def _watch_exit(self) -> None:
        await self.process.wait()
        self._exited = True
        if self._read_scope is not None:
            self._read_scope.deadline = trio.current_time() + self._grace

    async def _capture_stderr(self, stream: trio.abc.ReceiveStream) -> None:
        try:
            while data := await stream.receive_some(_READ_CHUNK):
                self._stderr += data
                excess = len(self._stderr) - self._stderr_limit
                if excess > 0:
                    del self._stderr[:excess]
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self._stderr_done.set()

    async def _drain_stdout(self) -> None:
        # Keep reading (and dropping) output during shutdown so a child that is still
        # writing never blocks on a full pipe and can see stdin EOF and exit.
        assert self.process.stdout is not None
        try:
            while await self.process.stdout.receive_some(_READ_CHUNK):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError):
            pass

    async def _shutdown(self, *, capturing: bool) -> None:
        """Close stdin, wait, SIGTERM, wait, SIGKILL; always reaps. Call shielded."""
        process = self.process
        assert process.stdin is not None
        await process.stdin.aclose()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._drain_stdout)
            with trio.move_on_after(self._grace):
                await process.wait()
            if process.returncode is None:
                process.terminate()
                with trio.move_on_after(self._grace):
                    await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
            if capturing:
                # The child is gone; collect what it wrote last (bounded, since a
                # descendant may hold stderr open).
                with trio.move_on_after(self._grace):
                    await self._stderr_done.wait()
            nursery.cancel_scope.cancel()
        await self.aclose()
        if process.stderr is not None:
            await process.stderr.aclose()


@asynccontextmanager
async def open_stdio_process(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    stderr: StderrMode = "inherit",
    terminate_grace: float = 2.0,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    stderr_limit: int = DEFAULT_STDERR_LIMIT,
) -> AsyncIterator[StdioProcessTransport]:
    """Spawn an MCP server speaking stdio and yield a transport to it.

    ``command`` is an argument list (``[sys.executable, "server.py"]``); ``env``, when
    given, replaces the environment. ``stderr`` is passed through (``"inherit"``), kept
    (``"capture"``: the last ``stderr_limit`` bytes, see
    :meth:`StdioProcessTransport.stderr_text`) or dropped (``"devnull"``).

    On exit (including cancellation) the child's stdin is closed; if it has not exited
    after ``terminate_grace`` seconds it gets SIGTERM, and after as long again SIGKILL.
    The child is always reaped. If it exits early, a pending ``receive()`` raises
    :class:`trio.EndOfChannel` once its output is read.
    """
    if isinstance(command, str | bytes):
        raise TypeError(
            "command must be a list of arguments, e.g. [sys.executable, 'server.py'], "
            f"not the string {command!r}"
        )
    argv = list(command)
    if not argv:
        raise ValueError("command must not be empty")
    if stderr not in ("inherit", "capture", "devnull"):
        raise ValueError(f'stderr must be "inherit", "capture" or "devnull", got {stderr!r}')
    if not (terminate_grace >= 0 and math.isfinite(terminate_grace)):
        raise ValueError(f"terminate_grace must be a finite number >= 0, got {terminate_grace}")
    if stderr_limit < 0:
        raise ValueError(f"stderr_limit must be >= 0, got {stderr_limit}")
    stderr_arg = {"inherit": None, "capture": subprocess.PIPE, "devnull": subprocess.DEVNULL}
    try:
        process = await trio.lowlevel.open_process(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr_arg[stderr],
            env=env,
            cwd=cwd,
        )
    except OSError as exc:
        raise OSError(
            exc.errno, f"cannot start the MCP server {argv[0]!r}: {exc.strerror}", exc.filename
        ) from exc
    transport = StdioProcessTransport(
        process,
        max_message_bytes=max_message_bytes,
        terminate_grace=terminate_grace,
        stderr_limit=stderr_limit,
        name=f"stdio:{os.path.basename(argv[0])}[{process.pid}]",
    )
    capturing = stderr == "capture"
    with unwrap_single_error():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(transport._watch_exit)
            if capturing:
                assert process.stderr is not None
                nursery.start_soon(transport._capture_stderr, process.stderr)
            try:
                yield transport
            finally:
                with trio.CancelScope(shield=True):
                    await transport._shutdown(capturing=capturing)
                nursery.cancel_scope.cancel()
