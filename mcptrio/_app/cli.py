"""The command line: ``python -m mcptrio serve TARGET``.

Every mistake a person can make on it (a bad option, a config file or variable, a server file
that does not import, a port in use, a missing extra) ends with one ``mcptrio: ...`` line on
stderr saying what to do, and exit status 2; tracebacks are for bugs.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

import attrs
import trio

from .._ops.config import Config, ConfigError, HttpConfig, load_config
from .._server.serve_stdio import serve_stdio
from .._server.server import Server
from .._transports.http.tls import ServerTls
from .target import TargetError, load_target

__all__ = ["main"]

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_WILDCARDS = frozenset({"0.0.0.0", "::", ""})
_LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
_FREE_PORT_HINT = "pick another with --port, or 0 for a free one"
# HttpConfig fields the options set, to name the option in an error about its value.
_OPTIONS: dict[str | None, str] = {
    "host": "--host",
    "port": "--port",
    "path": "--path",
    "allowed_hosts": "--allowed-host",
    "json_response": "--json-response",
    "server": "--http-server",
}
# TlsConfig fields the options set.
_TLS_OPTIONS: dict[str | None, str] = {
    "certfile": "--certfile",
    "keyfile": "--keyfile",
    "ca_certs": "--ca-certs",
}


class UsageError(Exception):
    """A mistake in how the command was run; its message says what to do instead."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"mcptrio: {message} (see '{self.prog} --help')\n")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a port number; give 1-65535, or 0 for a free port"
        ) from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"port {value} is out of range; give 1-65535, or 0 for a free port"
        )
    return value


def _log_level(text: str) -> str:
    level = text.strip().upper()
    if level not in _LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"unknown log level {text!r}; choose one of {', '.join(_LOG_LEVELS)}"
        )
    return level


def _parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(
        prog="python -m mcptrio", description="mcptrio: Model Context Protocol toolkit for Trio."
    )
    parser.add_argument("--version", action="version", version=f"mcptrio {__version__}")
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
    serve.add_argument(
        "--host",
        help="HTTP: address to bind (default 127.0.0.1; 0.0.0.0 or :: for every interface)",
    )
    serve.add_argument(
        "--port", type=_port, help="HTTP: port, 1-65535 (default 8000; 0 picks a free one)"
    )
    serve.add_argument("--path", help="HTTP: the MCP endpoint path (default /mcp)")
    serve.add_argument(
        "--allowed-host",
        action="append",
        metavar="NAME",
        dest="allowed_hosts",
        help="HTTP: also accept requests whose Host header names NAME (a host name, 'name:port',"
        " an IP address, '*.domain' or '*'); repeat for several",
    )
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
    # TLS
    serve.add_argument(
        "--certfile",
        metavar="PEM",
        help="HTTP: serve HTTPS with this certificate chain (reloaded on SIGHUP and on change)",
    )
    serve.add_argument(
        "--keyfile", metavar="PEM", help="HTTPS: the private key (default: in --certfile)"
    )
    serve.add_argument(
        "--ca-certs",
        metavar="PEM",
        help="HTTPS: require client certificates signed by these authorities (mutual TLS)",
    )
    serve.add_argument(
        "--store",
        metavar="URL",
        help="HTTP: where sessions, resumable events and tasks are kept: memory:// (default),"
        " sqlite:///path/file.db or redis://host:port/db?prefix=...",
    )
    serve.add_argument(
        "--config", metavar="FILE", help="TOML config file (MCPTRIO_* variables override it)"
    )
    serve.add_argument(
        "--log-level",
        type=_log_level,
        default="WARNING",
        help="level of the server's own diagnostics on stderr: "
        f"{', '.join(_LOG_LEVELS)} (default: WARNING)",
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
    if args.store is not None:
        if args.transport != "http":
            raise UsageError("--store: sessions are kept only with --transport http")
        try:
            config = attrs.evolve(config, store=attrs.evolve(config.store, url=args.store))
        except ValueError as exc:
            raise UsageError(f"--store: {getattr(exc, 'problem', exc)}") from None
    if args.allowed_hosts:
        from .._transports.http.security import HostPolicy

        try:
            HostPolicy(allowed_hosts=tuple(args.allowed_hosts))
        except ValueError as exc:
            message = str(exc).removeprefix("allowed_hosts: ")
            raise UsageError(f"--allowed-host: {message}") from None
        hosts = (*config.http.allowed_hosts, *args.allowed_hosts)
        overrides["allowed_hosts"] = tuple(dict.fromkeys(hosts))
    tls_overrides = {
        name: value
        for name, value in (
            ("certfile", args.certfile),
            ("keyfile", args.keyfile),
            ("ca_certs", args.ca_certs),
        )
        if value is not None
    }
    if tls_overrides:
        try:
            overrides["tls"] = attrs.evolve(config.http.tls, **tls_overrides)
        except ValueError as exc:
            field = getattr(exc, "field", None)
            problem = getattr(exc, "problem", str(exc))
            option = _TLS_OPTIONS.get(field, "command line")
            raise UsageError(f"{option}: {problem}") from None
    if overrides:
        try:
            config = attrs.evolve(config, http=attrs.evolve(config.http, **overrides))
        except ValueError as exc:
            field = getattr(exc, "field", None)
            problem = getattr(exc, "problem", str(exc))
            option = _OPTIONS.get(field, "command line")
            raise UsageError(f"{option}: {problem}") from None
    return config


def _bind_problem(exc: OSError, cfg: HttpConfig) -> str:
    """What to do when the HTTP server cannot listen where ``cfg`` says."""
    host, port = cfg.host, cfg.port
    if isinstance(exc, socket.gaierror):
        return (
            f"cannot resolve the host {host!r} ({exc.strerror}): give --host an IP address,"
            " or a name this machine resolves"
        )
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is in use: {_FREE_PORT_HINT}"
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"cannot listen on {host}: no network interface of this machine has that address;"
            " use --host 127.0.0.1 (this machine only) or --host 0.0.0.0 (every interface)"
        )
    if exc.errno == errno.EACCES:
        return (
            f"not allowed to listen on port {port} on {host} (ports below 1024 need"
            f" privileges): {_FREE_PORT_HINT}"
        )
    return f"cannot listen on port {port} on {host}: {exc.strerror or exc}"


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _startup_lines(name: str, url: str, cfg: HttpConfig) -> list[str]:
    """The line naming the URL, and a hint when clients of that address would be refused."""
    from .._transports.http.security import HostPolicy, check_request

    parts = urlsplit(url)
    bound = cfg.host.strip("[]")
    wildcard = bound in _WILDCARDS
    port = parts.port
    if wildcard:
        # This machine can always reach a wildcard socket through the loopback address.
        loopback = "127.0.0.1" if bound == "0.0.0.0" else "[::1]"
        url = urlunsplit(parts._replace(netloc=f"{loopback}:{port}"))
    first = f"serving {name!r} on {url}"
    if wildcard:
        first += f" (listening on every interface: {cfg.host})"
    lines = [first]
    if "*" in cfg.allowed_hosts:
        return lines
    policy = HostPolicy(allowed_hosts=cfg.allowed_hosts)

    def refused(host: str) -> bool:
        reason = check_request(
            policy, host=host, origin=None, forwarded_host=None, forwarded=None, peer_ip=None
        )
        return reason is not None

    accepted = ", ".join(cfg.allowed_hosts)
    if refused(urlsplit(url).netloc):
        lines.append(
            f"the Host check accepts only {accepted}, so requests to {url} are refused:"
            f" add --allowed-host {urlsplit(url).hostname}"
        )
    elif wildcard:
        # Names other machines can use: the allowed ones that are not this machine's own.
        named = [
            host
            for host in cfg.allowed_hosts
            if not host.startswith("*") and host.lower() not in _LOOPBACK_NAMES
        ]
        netlocs = [
            netloc
            for netloc in dict.fromkeys(
                host if ":" in host.split("]")[-1] else f"{host}:{port}" for host in named
            )
            # An entry for another port names another server.
            if netloc.rsplit(":", 1)[1] == str(port) and not refused(netloc)
        ]
        if netlocs:
            for netloc in netlocs:
                lines.append(
                    f"other machines can connect as {urlunsplit(parts._replace(netloc=netloc))}"
                )
        else:
            other = socket.gethostname() or "NAME"
            other_url = urlunsplit(parts._replace(netloc=f"{other}:{port}"))
            lines.append(
                f"the Host check accepts only {accepted}: for other machines to connect"
                f" (e.g. as {other_url}), add --allowed-host NAME for each name they use,"
                f" e.g. --allowed-host {other}"
            )
    return lines


async def _serve_http(server: Server, config: Config) -> None:
    from .._server.http_endpoint import serve_http

    async with trio.open_nursery() as nursery:
        try:
            info = await nursery.start(partial(serve_http, server, config.http, store=config.store))
        except BaseException as exc:
            from .._ops.store_location import StoreError

            leaves = _leaves(exc)
            if len(leaves) == 1 and isinstance(leaves[0], ConfigError):
                # TLS files that cannot be used; the message names the file.
                raise UsageError(str(leaves[0])) from None
            if len(leaves) == 1 and isinstance(leaves[0], OSError):
                raise UsageError(_bind_problem(leaves[0], config.http)) from None
            if len(leaves) == 1 and isinstance(leaves[0], StoreError):
                raise UsageError(str(leaves[0])) from None
            raise
        # stderr: stdout is kept free for programs that wrap us.
        for line in _startup_lines(server.name, info.url, config.http):
            print(f"mcptrio: {line}", file=sys.stderr, flush=True)
        if info.tls is not None and hasattr(signal, "SIGHUP"):
            nursery.start_soon(_reload_on_sighup, info.tls)


async def _reload_on_sighup(tls: ServerTls) -> None:
    # The process is ours here, so SIGHUP is too (a library cannot claim signals).
    with trio.open_signal_receiver(signal.SIGHUP) as signals:
        async for _ in signals:
            ok = tls.reload()
            what = "reloaded" if ok else "NOT reloaded (see the log); the old ones stay"
            print(f"mcptrio: TLS certificate {what}", file=sys.stderr, flush=True)


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


def _fail(message: str, details: str = "") -> int:
    if details:
        sys.stderr.write(details if details.endswith("\n") else details + "\n")
    print(f"mcptrio: {message}", file=sys.stderr, flush=True)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        config = _configured(args)
        server = load_target(args.target, Server)
    except TargetError as exc:
        return _fail(str(exc), exc.details)
    except (ConfigError, UsageError) as exc:
        return _fail(str(exc))
    if args.config is not None or any(k.upper().startswith("MCPTRIO_SERVER__") for k in os.environ):
        server.config = config.server
    if config.cluster.redis_url is not None:
        from .._state.redis_bus import RedisChangeBus

        try:
            bus = RedisChangeBus(config.cluster.redis_url, channel=config.cluster.channel)
        except ImportError:
            return _fail(
                "a Redis URL is configured (cluster.redis_url, set by the config file or"
                " MCPTRIO_CLUSTER__REDIS_URL) but the coredis package is missing:"
                " install mcptrio[redis] (pip install 'mcptrio[redis]')"
            )
        except ValueError as exc:
            return _fail(f"cluster.redis_url: {exc}")
        server.use_change_bus(bus)
    serve = partial(_serve_http, server, config) if args.transport == "http" else None
    try:
        if serve is not None:
            return trio.run(_until_signalled, serve)
        return trio.run(_until_signalled, partial(serve_stdio, server))
    except BaseException as exc:
        leaves = _leaves(exc)
        if len(leaves) == 1 and isinstance(leaves[0], UsageError):
            return _fail(str(leaves[0]))
        raise
