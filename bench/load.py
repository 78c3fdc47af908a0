"""``python -m bench.load``: many SDK-like clients against one server process, for a while.

Each client initializes a session, opens its GET stream and holds it, then calls a tool at a
steady rate until the run ends, and deletes its session. The server is the default h11
adapter with default budgets, in a child process. Printed: errors (the target is none),
latency percentiles per operation, requests per second, and the server's resident memory
before the clients came, at its peak, and after they left.

It is not part of the test suite (``nox -s load`` runs it): 1,000 clients for 60 seconds
need about 2,100 file descriptors on each side, and the driver raises its own limit.
"""

from __future__ import annotations

import argparse
import collections
import math
import os
import random
import resource
import ssl
import subprocess
import sys
import time
from typing import Any

import httpx
import orjson
import trio

ACCEPT = "application/json, text/event-stream"
VERSION = "2025-11-25"

_SERVER = """
import sys
import trio
from mcptrio import HttpConfig, Server, serve_http

server = Server("load")


@server.tool()
async def echo(text: str) -> str:
    \"\"\"Echo the text.\"\"\"
    return text


async def main() -> None:
    async with trio.open_nursery() as nursery:
        info = await nursery.start(serve_http, server, HttpConfig(port=0))
        print(info.url, flush=True)
        await trio.sleep_forever()


trio.run(main)
"""


def raise_own_limit(needed: int) -> int:
    """Raise this process's open-file limit as far as allowed; the soft limit after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 16)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft < needed:
        print(f"warning: only {soft} file descriptors (about {needed} needed)", file=sys.stderr)
    return soft


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def waited_seconds(pid: int) -> float:
    """Seconds a process has spent ready to run but waiting for a CPU (other work had it)."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return math.nan


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB: resident memory now and its peak."""
    rss = hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


class Results:
    """Latencies per operation and errors per kind."""

    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = collections.defaultdict(list)
        self.errors: collections.Counter[str] = collections.Counter()
        self.requests = 0

    def note(self, operation: str, seconds: float) -> None:
        self.latencies[operation].append(seconds)
        self.requests += 1

    def error(self, operation: str, what: str) -> None:
        self.errors[f"{operation}: {what}"] += 1


def percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return math.nan
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


def _headers(session_id: str | None = None, **extra: str) -> dict[str, str]:
    out = {"accept": ACCEPT, "mcp-protocol-version": VERSION, **extra}
    if session_id is not None:
        out["mcp-session-id"] = session_id
    return out


def _answer(response: httpx.Response) -> dict[str, Any]:
    if response.headers.get("content-type", "").startswith("application/json"):
        message = response.json()
    else:
        datas = [
            line[5:].strip()
            for line in response.text.splitlines()
            if line.startswith("data:") and line[5:].strip()
        ]
        message = orjson.loads(datas[-1])
    if not isinstance(message, dict):
        raise ValueError(f"not a JSON-RPC message: {message!r}")
    return message


class LoadClient:
    """One SDK-like client: a session, its GET stream, tool calls at a steady rate."""

    def __init__(self, n: int, url: str, results: Results, tls: ssl.SSLContext) -> None:
        self.n = n
        self.url = url
        self.results = results
        self.tls = tls
        self.next_id = 1

    async def timed(
        self, http: httpx.AsyncClient, operation: str, method: str, **kwargs: Any
    ) -> httpx.Response:
        start = time.perf_counter()
        response = await http.request(method, self.url, **kwargs)
        self.results.note(operation, time.perf_counter() - start)
        return response

    async def run(self, stop_at: float, interval: float) -> None:
        results = self.results
        async with httpx.AsyncClient(timeout=30, verify=self.tls) as http:
            init = {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {
                    "protocolVersion": VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": f"load-{self.n}", "version": "0"},
                },
            }
            response = await self.timed(http, "initialize", "POST", json=init, headers=_headers())
            if response.status_code != 200:
                results.error("initialize", f"HTTP {response.status_code}")
                return
            session_id = response.headers["mcp-session-id"]
            note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            response = await self.timed(
                http, "initialized", "POST", json=note, headers=_headers(session_id)
            )
            if response.status_code != 202:
                results.error("initialized", f"HTTP {response.status_code}")
            async with trio.open_nursery() as nursery:
                opened = trio.Event()
                nursery.start_soon(self.hold_stream, http, session_id, opened)
                await opened.wait()
                # Spread the calls of all clients evenly over the interval.
                due = trio.current_time() + random.uniform(0, interval)
                while due < stop_at:
                    await trio.sleep_until(due)
                    await self.call(http, session_id)
                    # A fixed cadence: a late call is not followed by a longer pause.
                    due = max(due + interval, trio.current_time())
                nursery.cancel_scope.cancel()
            response = await self.timed(http, "delete", "DELETE", headers=_headers(session_id))
            if response.status_code != 200:
                results.error("delete", f"HTTP {response.status_code}")

    async def hold_stream(
        self, http: httpx.AsyncClient, session_id: str, opened: trio.Event
    ) -> None:
        start = time.perf_counter()
        try:
            async with http.stream(
                "GET", self.url, headers=_headers(session_id, accept="text/event-stream")
            ) as response:
                if response.status_code != 200:
                    self.results.error("get_stream", f"HTTP {response.status_code}")
                    return
                chunks = response.aiter_raw()
                await chunks.__anext__()
                self.results.note("get_stream", time.perf_counter() - start)
                opened.set()
                async for _ in chunks:
                    pass
            self.results.error("get_stream", "ended by the server")
        except httpx.HTTPError as exc:
            self.results.error("get_stream", type(exc).__name__)
        finally:
            opened.set()

    async def call(self, http: httpx.AsyncClient, session_id: str) -> None:
        request_id = self.next_id
        self.next_id += 1
        text = f"{self.n}-{request_id}"
        body = {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": text}},
        }
        try:
            response = await self.timed(
                http, "tools/call", "POST", json=body, headers=_headers(session_id)
            )
        except httpx.HTTPError as exc:
            self.results.error("tools/call", type(exc).__name__)
            return
        if response.status_code != 200:
            self.results.error("tools/call", f"HTTP {response.status_code}")
            return
        try:
            answer = _answer(response)
            if answer["result"]["content"][0]["text"] != text:
                self.results.error("tools/call", "wrong answer")
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            self.results.error("tools/call", f"bad answer ({type(exc).__name__})")


async def drive(args: argparse.Namespace, url: str, pid: int) -> tuple[Results, float, int]:
    results = Results()
    tls = ssl.create_default_context()
    peak = 0

    async def sample_memory() -> None:
        nonlocal peak
        while True:
            peak = max(peak, rss_kib(pid)[0])
            await trio.sleep(0.5)

    start = trio.current_time()
    stop_at = start + args.ramp + args.duration
    async with trio.open_nursery() as outer:
        outer.start_soon(sample_memory)
        async with trio.open_nursery() as nursery:

            async def guarded(client: LoadClient) -> None:
                try:
                    await client.run(stop_at, args.interval)
                except Exception as exc:
                    results.error("client", f"{type(exc).__name__}: {exc}"[:120])

            for n in range(args.clients):
                nursery.start_soon(guarded, LoadClient(n, url, results, tls))
                await trio.sleep(args.ramp / args.clients)
        outer.cancel_scope.cancel()
    elapsed = trio.current_time() - start
    return results, elapsed, max(peak, rss_kib(pid)[1])


def report(
    results: Results,
    elapsed: float,
    rss: tuple[int, int, int],
    cpu: tuple[float, float, float, float],
    args: Any,
) -> str:
    lines = [
        f"clients: {args.clients}, duration: {args.duration:.0f} s after a {args.ramp:.0f} s"
        f" ramp, one tools/call per client every {args.interval:g} s",
        f"errors: {sum(results.errors.values())}",
    ]
    for what, count in results.errors.most_common():
        lines.append(f"  {count:7d}  {what}")
    lines.append(
        f"{'operation':<12} {'count':>8} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9} {'max ms':>9}"
    )
    for operation, values in sorted(results.latencies.items()):
        ordered = sorted(values)
        cells = [percentile(ordered, q) * 1000 for q in (0.5, 0.9, 0.99, 1.0)]
        lines.append(
            f"{operation:<12} {len(ordered):>8d} " + " ".join(f"{cell:>9.1f}" for cell in cells)
        )
    rate = results.requests / elapsed
    lines.append(f"requests/s: {rate:.0f} ({results.requests} in {elapsed:.1f} s)")
    server_cpu, driver_cpu, server_wait, driver_wait = cpu
    lines.append(
        f"CPU seconds during the run: server {server_cpu:.1f}, this driver {driver_cpu:.1f}"
        f" ({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})"
    )
    lines.append(
        f"seconds ready to run but waiting for a CPU: server {server_wait:.1f},"
        f" this driver {driver_wait:.1f}"
    )
    before, peak, after = rss
    lines.append(
        f"server RSS: before {before / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB,"
        f" after {after / 1024:.1f} MiB"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of steady load")
    parser.add_argument("--ramp", type=float, default=5.0, help="seconds to start every client")
    parser.add_argument(
        "--interval", type=float, default=5.0, help="seconds between one client's calls"
    )
    args = parser.parse_args(argv)
    raise_own_limit(2 * args.clients + 100)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        if not url:
            print("the server did not start", file=sys.stderr)
            return 1
        time.sleep(0.5)
        before = rss_kib(server.pid)[0]
        server_cpu = cpu_seconds(server.pid)
        server_wait = waited_seconds(server.pid)
        driver_wait = waited_seconds(os.getpid())
        usage = resource.getrusage(resource.RUSAGE_SELF)
        driver_cpu = usage.ru_utime + usage.ru_stime
        results, elapsed, peak = trio.run(drive, args, url, server.pid)
        server_cpu = cpu_seconds(server.pid) - server_cpu
        server_wait = waited_seconds(server.pid) - server_wait
        driver_wait = waited_seconds(os.getpid()) - driver_wait
        usage = resource.getrusage(resource.RUSAGE_SELF)
        driver_cpu = usage.ru_utime + usage.ru_stime - driver_cpu
        time.sleep(2.0)  # let the server let go of what the clients left behind
        after = rss_kib(server.pid)[0]
        metrics = httpx.get(url.removesuffix("/mcp") + "/metrics", timeout=30).text
        cpu = (server_cpu, driver_cpu, server_wait, driver_wait)
        print(report(results, elapsed, (before, peak, after), cpu, args))
        # What the server still holds once every client has gone (nothing, if none leaked).
        print("server budgets after the run:")
        for line in metrics.splitlines():
            if line.startswith(("mcptrio_budget_in_use", "mcptrio_budget_rejections_total")):
                print(f"  {line}")
        return 1 if results.errors else 0
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    raise SystemExit(main())
