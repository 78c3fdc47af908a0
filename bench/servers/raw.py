"""Raw HTTP baselines: the servers underneath ours, doing no MCP work at all.

    python -m bench.servers.raw hypercorn   # an ASGI app on Hypercorn's trio worker
    python -m bench.servers.raw h11         # h11 directly on trio streams
    python -m bench.servers.raw adapter     # our own HTTP/1.1 adapter (_transports/http/h11.py)

Each reads a POST's body and answers 200 with the same fixed JSON-RPC body, so the gap between
one of them and our server is what everything above it costs per request: over ``adapter``
exactly the MCP layer, since our server runs on that same adapter. Each
prints ``READY <url>`` on stderr once it listens on 127.0.0.1 (a free port).
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from typing import Any

import h11
import trio

BODY = b'{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}]}}'
"""The fixed answer; ``bench/wrk/tools_call.lua`` checks for its text in ``raw`` mode."""

_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]
_MAX_BODY = 4 * 1024 * 1024


def _ready(url: str) -> None:
    print(f"READY {url}", file=sys.stderr, flush=True)


# ----- Hypercorn --------------------------------------------------------------------------------


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """ASGI app: drain the request body, answer ``BODY``; lifespan is acknowledged."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": BODY})


async def serve_hypercorn() -> None:
    import hypercorn.config
    import hypercorn.trio

    config = hypercorn.config.Config()
    config.bind = ["127.0.0.1:0"]
    # The settings our server uses, so the two differ only by the MCP layer.
    config.accesslog = None
    config.errorlog = None
    config.keep_alive_timeout = 75
    app: Any = echo_app  # a plain ASGI callable; Hypercorn's own types are narrower
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            lambda task_status: hypercorn.trio.serve(app, config, task_status=task_status)
        )
        _ready(f"{binds[0]}/mcp")


# ----- h11 on trio ------------------------------------------------------------------------------


async def _h11_connection(stream: trio.SocketStream) -> None:
    conn = h11.Connection(h11.SERVER)
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                conn.receive_data(data)
                if not data:
                    return
                continue
            if isinstance(event, h11.Request | h11.Data):
                continue
            if isinstance(event, h11.EndOfMessage):
                response = h11.Response(status_code=200, headers=_HEADERS)
                await stream.send_all(
                    conn.send(response) + conn.send(h11.Data(data=BODY)) + conn.send(event)
                )
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
                continue
            return  # ConnectionClosed, PAUSED without a cycle to start: the peer is done
    except (h11.RemoteProtocolError, trio.BrokenResourceError):
        return
    finally:
        await stream.aclose()


async def serve_h11() -> None:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            partial(trio.serve_tcp, _h11_connection, 0, host="127.0.0.1", backlog=1024)
        )
        host, port = listeners[0].socket.getsockname()[:2]
        _ready(f"http://{host}:{port}/mcp")


# ----- our own adapter ---------------------------------------------------------------------------


async def serve_adapter() -> None:
    from mcptrio._transports.http.exchange import HttpExchange
    from mcptrio._transports.http.h11 import serve_h11 as serve_on_our_adapter

    async def echo(ex: HttpExchange) -> None:
        await ex.read_body(_MAX_BODY)
        await ex.respond(200, [("content-type", "application/json")], BODY)

    async with trio.open_nursery() as nursery:
        urls: list[str] = await nursery.start(
            partial(
                serve_on_our_adapter,
                echo,
                host="127.0.0.1",
                port=0,
                max_body=_MAX_BODY,
                shutdown_trigger=trio.sleep_forever,
                graceful_timeout=1.0,
            )
        )
        _ready(f"{urls[0]}/mcp")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("server", choices=["hypercorn", "h11", "adapter"])
    args = parser.parse_args()
    servers = {"hypercorn": serve_hypercorn, "h11": serve_h11, "adapter": serve_adapter}
    trio.run(servers[args.server])


if __name__ == "__main__":
    main()
