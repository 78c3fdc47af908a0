"""The benchmark server on the official MCP Python SDK: the same ``echo`` and ``add`` as ours.

Runs with the SDK virtualenv's python (``tests/sdk.py``), never the project's:

    sdk_server.py stdio
    sdk_server.py streamable-http --port N [--json-response] [--production]
    sdk_server.py inprocess --seconds S

Over HTTP it prints ``READY <url>`` on stderr once the socket listens and serves with uvicorn,
as the SDK does: by default as ``pip install mcp`` gives it (uvicorn's h11 parser on the
asyncio loop), with ``--production`` as deployments run it (``uvicorn[standard]``: httptools
on uvloop). Both are named explicitly, since uvicorn's ``auto`` picks httptools and uvloop
whenever they are installed. ``inprocess`` runs the SDK's own client against this server in
memory for ``S`` seconds and prints ``{"calls", "seconds", "cpu_seconds", "bad"}`` on stdout.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time

import anyio
from mcp.server import MCPServer  # type: ignore[import-not-found]

mcp = MCPServer("bench", version="1.0.0")


# structured_output=False: ours answers a str with text content only, so both send the same.
# (mcp is installed in the SDK's virtualenv only, hence the ignores for the project's mypy.)
@mcp.tool(structured_output=False)  # type: ignore[untyped-decorator]
async def echo(text: str) -> str:
    """Return ``text`` unchanged."""
    return text


@mcp.tool(structured_output=False)  # type: ignore[untyped-decorator]
async def add(a: int, b: int) -> int:
    """Return ``a + b``."""
    return a + b


def serve_http(port: int, json_response: bool, production: bool) -> None:
    import uvicorn  # type: ignore[import-not-found]

    app = mcp.streamable_http_app(json_response=json_response, host="127.0.0.1")
    # Bound before READY is printed, so the URL is usable the moment it is read.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    print(f"READY http://127.0.0.1:{sock.getsockname()[1]}/mcp", file=sys.stderr, flush=True)
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="on",
        backlog=1024,
        http="httptools" if production else "h11",
        loop="uvloop" if production else "asyncio",
    )
    # Server.run sets up the event loop the config names (uvloop or asyncio) and runs on it.
    uvicorn.Server(config).run(sockets=[sock])


async def inprocess(seconds: float) -> None:
    from mcp import Client  # type: ignore[import-not-found]

    calls = bad = 0
    # mode="legacy": the initialize handshake over in-memory streams, like our memory client.
    async with Client(mcp, mode="legacy") as client:
        await client.call_tool("echo", {"text": "warm-up"})
        start = time.perf_counter()
        cpu_start = time.process_time()
        deadline = start + seconds
        while True:
            text = f"m{calls}"
            result = await client.call_tool("echo", {"text": text})
            calls += 1
            content = result.content[0]
            if getattr(content, "text", None) != text:
                bad += 1
            if calls % 64 == 0 and time.perf_counter() >= deadline:
                break
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
    report = {"calls": calls, "seconds": elapsed, "cpu_seconds": cpu, "bad": bad}
    print(json.dumps(report), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("stdio", help="serve one client on stdin/stdout")
    http = sub.add_parser("streamable-http", help="serve Streamable HTTP on 127.0.0.1")
    http.add_argument("--port", type=int, required=True, help="TCP port (0: pick a free one)")
    http.add_argument("--json-response", action="store_true", help="answer POSTs with JSON")
    http.add_argument(
        "--production",
        action="store_true",
        help="serve as uvicorn[standard] does: httptools on uvloop (default: h11 on asyncio)",
    )
    inproc = sub.add_parser("inprocess", help="time in-memory round trips with the SDK client")
    inproc.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args()
    if args.command == "stdio":
        mcp.run("stdio")
    elif args.command == "streamable-http":
        serve_http(args.port, args.json_response, args.production)
    else:
        anyio.run(inprocess, args.seconds)


if __name__ == "__main__":
    main()
