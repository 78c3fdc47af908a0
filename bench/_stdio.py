"""stdio round trips: one plain blocking client, the same for every server it drives.

The client is deliberately thin (a write, a readline, a JSON parse) so the server's cost
dominates the round trip, whichever server it is.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from typing import IO, Any

from bench._procs import BenchError, Stopwatch, pin
from bench._report import Sample

_LEGACY_VERSION = "2025-11-25"
_CHECK_EVERY = 32
_HANG_GRACE = 60.0  # seconds past a measurement after which the server counts as hung


class StdioServer:
    """A stdio MCP server child; ``ready()`` opens its session."""

    def __init__(self, name: str, command: Sequence[str]) -> None:
        self.name = name
        self.command = list(command)
        # Kept open for the server's life and closed in stop(): a file, so it never fills up.
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self.process = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._in = self.process.stdin
        self._out = self.process.stdout
        self._next_id = 1
        self.checked = 0
        self.wrong = 0
        self.first_wrong = ""

    @contextlib.contextmanager
    def _watchdog(self, seconds: float) -> Iterator[None]:
        """Kill the server if the block overruns ``seconds`` by far: a hung server then reads
        as a closed stdout (an error with its stderr) instead of a benchmark that never ends."""
        timer = threading.Timer(seconds + _HANG_GRACE, self.process.kill)
        timer.start()
        try:
            yield
        finally:
            timer.cancel()

    def ready(self, cpus: frozenset[int] | None) -> None:
        """Finish the handshake, then pin the server to ``cpus``."""
        try:
            self._send(
                {
                    "jsonrpc": "2.0",
                    "id": 0,
                    "method": "initialize",
                    "params": {
                        "protocolVersion": _LEGACY_VERSION,
                        "capabilities": {},
                        "clientInfo": {"name": "mcptrio-bench", "version": "1"},
                    },
                }
            )
            with self._watchdog(0):
                answer = self._receive(0)
            if "result" not in answer:
                raise BenchError(f"{self.name}: initialize failed: {answer}")
            self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        except BaseException:
            self.stop()
            raise
        pin(self.process.pid, cpus)

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self._in.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
            self._in.flush()
        except OSError as exc:
            raise BenchError(f"{self.name} stopped reading stdin ({exc}):\n{self._tail()}") from exc

    def _tail(self) -> str:
        """The end of what the server printed on stderr."""
        self.process.poll()
        self._stderr.seek(0)
        text = self._stderr.read()[-2000:].decode(errors="replace")
        return f"exit status {self.process.returncode}; stderr:\n{text}"

    def _receive(self, request_id: int) -> dict[str, Any]:
        while True:
            line = self._out.readline()
            if not line:
                raise BenchError(f"{self.name} closed its stdout:\n{self._tail()}")
            message: dict[str, Any] = json.loads(line)
            # Notifications (logs, list changes) may come first; only the answer counts.
            if "id" in message and message.get("id") == request_id:
                return message
            if "id" in message and "method" not in message:
                raise BenchError(f"{self.name}: expected id {request_id}, got {message}")

    def call(self) -> None:
        """One tools/call echo round trip, checked."""
        request_id = self._next_id
        self._next_id += 1
        text = f"m{request_id}"
        self._send(
            {
                "jsonrpc": "2.0",
                "id": request_id,
                "method": "tools/call",
                "params": {"name": "echo", "arguments": {"text": text}},
            }
        )
        answer = self._receive(request_id)
        self.checked += 1
        try:
            ok = answer["result"]["content"][0]["text"] == text
        except (KeyError, IndexError, TypeError):
            ok = False
        if not ok:
            self.wrong += 1
            self.first_wrong = self.first_wrong or json.dumps(answer)[:300]

    def measure(self, seconds: float) -> Sample:
        """Round trips per second for ``seconds``, with the server's CPU µs per call."""
        checked, wrong = self.checked, self.wrong
        watch = Stopwatch(self.process.pid)
        calls = 0
        with self._watchdog(seconds):
            watch.start()
            deadline = time.perf_counter() + seconds
            while True:
                self.call()
                calls += 1
                if calls % _CHECK_EVERY == 0 and time.perf_counter() >= deadline:
                    break
            watch.stop()
        return Sample(
            value=calls / watch.wall,
            cpu_us=watch.cpu / calls * 1e6,
            checked=self.checked - checked,
            wrong=self.wrong - wrong,
            first_wrong=self.first_wrong if self.wrong > wrong else "",
        )

    def stop(self) -> None:
        """Close stdin (the portable stop signal), then make sure the server is gone."""
        with contextlib.suppress(OSError):
            self._in.close()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._out.close()
        self._stderr.close()
