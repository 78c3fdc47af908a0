"""HTTP pieces: start a session, probe an endpoint, and drive it with wrk."""

from __future__ import annotations

import http.client
import json
import os
import resource
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs

from bench._procs import BenchError, pinned

Mode = Literal["legacy", "modern", "raw"]

LEGACY_VERSION = "2025-11-25"
MODERN_VERSION = "2026-07-28"
SCRIPT = Path(__file__).with_name("wrk") / "tools_call.lua"
WRK_INSTALL_HINT = (
    "wrk not found and apt-get could not install it here (needs Debian/Ubuntu and root):"
    " install the 'wrk' package yourself"
)

_BASE_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream",
}
_MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
    "io.modelcontextprotocol/clientCapabilities": {},
}


_trusted: ssl.SSLContext | None = None


def trust_ca(ca_file: str) -> None:
    """Check the certificates of https:// servers against ``ca_file`` (a test CA)."""
    global _trusted
    _trusted = ssl.create_default_context(cafile=ca_file)


def _connection(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    """A connection for ``url`` (TLS for https://, trusting ``trust_ca``'s CA) and its path."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, parts.port, timeout=timeout, context=_trusted
        )
    else:
        conn = http.client.HTTPConnection(host, parts.port, timeout=timeout)
    return conn, parts.path or "/"


def wrk_path() -> str | None:
    """The wrk executable, None when it is not installed."""
    return shutil.which("wrk")


def install_wrk() -> str | None:
    """The wrk executable, installed with apt-get (Debian package ``wrk``) when it is missing.

    Needs root and apt-get; a fresh machine's package lists may not know wrk yet, so a failed
    install is retried once after ``apt-get update``. None when wrk cannot be had here.
    """
    found = wrk_path()
    if found is not None or shutil.which("apt-get") is None or os.geteuid() != 0:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for steps in (
        [["apt-get", "install", "-y", "wrk"]],
        [["apt-get", "update"], ["apt-get", "install", "-y", "wrk"]],
    ):
        if all(
            subprocess.run(step, env=env, capture_output=True, check=False).returncode == 0
            for step in steps
        ):
            break
    return wrk_path()


def request(
    url: str,
    method: str,
    body: bytes | None,
    headers: Mapping[str, str],
    timeout: float = 10.0,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request on a fresh connection: status, lower-cased headers, whole body."""
    conn, path = _connection(url, timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers))
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    except OSError as exc:
        raise BenchError(f"{method} {url} failed: {exc}") from exc
    finally:
        conn.close()


def _json(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def initialize(url: str) -> str:
    """Open a legacy session (initialize, then notifications/initialized); return its id."""
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": LEGACY_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "mcptrio-bench", "version": "1"},
        },
    }
    status, headers, body = request(url, "POST", _json(init), _BASE_HEADERS)
    session = headers.get("mcp-session-id")
    if status != 200 or b'"protocolVersion"' not in body or not session:
        raise BenchError(f"initialize at {url} answered {status}: {body[:300]!r}")
    followup = {**_BASE_HEADERS, "Mcp-Session-Id": session, "MCP-Protocol-Version": LEGACY_VERSION}
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    status, _, body = request(url, "POST", _json(note), followup)
    if status not in (200, 202):
        raise BenchError(f"notifications/initialized at {url} answered {status}: {body[:300]!r}")
    return session


def call_headers(mode: Mode, session: str | None) -> dict[str, str]:
    """The headers of a tools/call echo in ``mode`` (what the wrk script sends)."""
    headers = dict(_BASE_HEADERS)
    if mode == "modern":
        headers |= {
            "MCP-Protocol-Version": MODERN_VERSION,
            "Mcp-Method": "tools/call",
            "Mcp-Name": "echo",
        }
    elif mode == "legacy":
        assert session is not None
        headers |= {"Mcp-Session-Id": session, "MCP-Protocol-Version": LEGACY_VERSION}
    return headers


def probe(url: str, mode: Mode, session: str | None) -> str | None:
    """Send one tools/call the way the load will; None if it was answered right, else why not."""
    params: dict[str, Any] = {"name": "echo", "arguments": {"text": "probe"}}
    if mode == "modern":
        params["_meta"] = _MODERN_META
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    try:
        status, _, body = request(url, "POST", _json(message), call_headers(mode, session))
    except BenchError as exc:
        return str(exc)
    expected = b'"text":"ok"' if mode == "raw" else b'"text":"probe"'
    if status == 200 and expected in body and b'"error"' not in body:
        return None
    return f"answered {status}: {body[:200].decode(errors='replace')}"


@attrs.frozen
class WrkResult:
    """What one wrk run reported (latencies in ms)."""

    requests: int
    seconds: float
    good: int
    bad: int
    first_bad: str
    errors: dict[str, int]
    p50_ms: float
    p99_ms: float
    max_ms: float
    load_cpu: float
    """CPU seconds wrk itself used: near ``seconds`` would mean wrk was the bottleneck."""

    @property
    def rate(self) -> float:
        """Responses per second."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def load_share(self) -> float:
        """The fraction of one CPU wrk used."""
        return self.load_cpu / self.seconds if self.seconds > 0 else 0.0


def run_wrk(
    url: str,
    mode: Mode,
    session: str | None,
    *,
    seconds: int,
    connections: int,
    load_cpus: frozenset[int] | None,
    pace_ms: int | None = None,
) -> WrkResult:
    """Run wrk (one thread) against ``url`` and return its checked results.

    ``pace_ms`` makes each connection wait that long before each request (a fixed,
    moderate load for latency figures) instead of sending as fast as answers come.
    """
    wrk = wrk_path()
    if wrk is None:
        raise BenchError(WRK_INSTALL_HINT)
    script_text = SCRIPT.read_text()
    if pace_ms is not None:
        # wrk only paces when the script defines delay(); defining it always would cost the
        # unpaced runs a timer per request.
        script_text += f"\nfunction delay()\n   return {int(pace_ms)}\nend\n"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script_text)
    command = [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        handle.name,
        url,
        "--",
        mode,
        session or "-",
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            preexec_fn=pinned(load_cpus),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish: {' '.join(command)}") from exc
    finally:
        os.unlink(handle.name)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = _bench_line(done.stdout)
    if done.returncode != 0 or report is None:
        raise BenchError(
            f"wrk exited with {done.returncode} and no report:\n{done.stdout}\n{done.stderr}"
        )
    return WrkResult(
        requests=int(report["requests"]),
        seconds=report["duration_us"] / 1e6,
        good=int(report["good"]),
        bad=int(report["bad"]),
        first_bad=str(report["first_bad"]),
        errors={k: int(v) for k, v in report["errors"].items()},
        p50_ms=report["p50_us"] / 1000,
        p99_ms=report["p99_us"] / 1000,
        max_ms=report["max_us"] / 1000,
        load_cpu=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
    )


def _bench_line(stdout: str) -> dict[str, Any] | None:
    for line in stdout.splitlines():
        if line.startswith("BENCH "):
            loaded: dict[str, Any] = json.loads(line[len("BENCH ") :])
            return loaded
    return None


def open_sse_stream(url: str, session: str, timeout: float = 10.0) -> http.client.HTTPConnection:
    """Open the session's GET SSE stream and return its connection, held open by the caller."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    headers = {
        "Accept": "text/event-stream",
        "Mcp-Session-Id": session,
        "MCP-Protocol-Version": LEGACY_VERSION,
    }
    try:
        conn.request("GET", parts.path or "/", headers=headers)
        response = conn.getresponse()
    except OSError as exc:
        conn.close()
        raise BenchError(f"GET SSE stream at {url} failed: {exc}") from exc
    content_type = response.getheader("content-type") or ""
    if response.status != 200 or not content_type.startswith("text/event-stream"):
        body = response.read(300)
        conn.close()
        raise BenchError(f"GET SSE stream at {url} answered {response.status}: {body!r}")
    return conn
