"""The command line: ``python -m mcptrio serve TARGET``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

import attrs
import trio

from ._config import Config, ConfigError, load_config
from ._serve import serve_stdio
from ._server import Server
from ._target import TargetError, load_target

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mcptrio", description="mcptrio: Model Context Protocol toolkit for Trio."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve an mcptrio Server",
        description="Serve an mcptrio Server found in a Python file or module.",
    )
    serve.add_argument(
        "target",
        help="path/to/file.py[:object] or package.module[:object]"
        " (default object: the module's Server instance)",
    )
    serve.add_argument(
        "--transport",
        choices=["stdio", "http"],
        default="stdio",
        help="how to serve (default: stdio)",
    )
    serve.add_argument("--host", help="HTTP: address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="HTTP: port (default 8000; 0 picks a free one)")
    serve.add_argument("--path", help="HTTP: the MCP endpoint path (default /mcp)")
    serve.add_argument(
        "--json-response",
        action="store_true",
        default=None,
        help="HTTP: answer requests with plain JSON rather than SSE when the client accepts both",
    )
    serve.add_argument(
        "--http-server",
        choices=["hypercorn", "h11"],
        help="HTTP: the server implementation (default h11)",
    )
    serve.add_argument(
        "--config", metavar="FILE", help="TOML config file (MCPTRIO_* variables override it)"
    )
    serve.add_argument(
        "--log-level",
        default="WARNING",
        help="level of the server's own diagnostics on stderr (default: WARNING)",
    )
    return parser


def _configured(args: argparse.Namespace) -> Config:
    config = load_config(path=args.config)
    overrides = {
        name: value
        for name, value in (
            ("host", args.host),
            ("port", args.port),
            ("path", args.path),
            ("json_response", args.json_response),
            ("server", args.http_server),
        )
        if value is not None
    }
    if overrides:
        try:
            config = attrs.evolve(config, http=attrs.evolve(config.http, **overrides))
        except ValueError as exc:
            raise ConfigError(f"command line: {exc}") from None
    return config


async def _serve_http(server: Server, config: Config) -> None:
    from ._http_server import serve_http

    async with trio.open_nursery() as nursery:
        info = await nursery.start(serve_http, server, config.http)
        # The URL goes to stderr: stdout is kept free for programs that wrap us.
        print(f"mcptrio: serving {server.name!r} on {info.url}", file=sys.stderr, flush=True)


async def _until_signalled(serve: Callable[[], Awaitable[None]]) -> int:
    """Run ``serve`` until SIGINT or SIGTERM, then shut it down gracefully.

    Cancelling the serve scope is the graceful shutdown (streams end, in-flight work gets
    its grace period); a second signal while that runs stops at once.
    """
    received: list[int] = []
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                async for signum in signals:
                    received.append(signum)
                    nursery.cancel_scope.cancel()
                    return

            async def run() -> None:
                await serve()
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            nursery.start_soon(run)
    if not received:
        return 0
    return 130 if received[0] == signal.SIGINT else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        config = _configured(args)
        server = load_target(args.target, Server)
    except (ConfigError, TargetError) as exc:
        print(f"mcptrio: {exc}", file=sys.stderr)
        return 2
    if args.config is not None or any(k.upper().startswith("MCPTRIO_SERVER__") for k in os.environ):
        server.config = config.server
    if config.cluster.redis_url is not None:
        from ._redis_bus import RedisChangeBus

        server.use_change_bus(
            RedisChangeBus(config.cluster.redis_url, channel=config.cluster.channel)
        )
    if args.transport == "http":
        return trio.run(_until_signalled, partial(_serve_http, server, config))
    return trio.run(_until_signalled, partial(serve_stdio, server))
