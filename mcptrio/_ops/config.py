"""Configuration: attrs classes validated when created, loaded from TOML and ``MCPTRIO_*``.

Every setting lives on a frozen attrs class whose fields all have defaults and whose validators
run at creation, so ``ServerConfig(page_size=0)`` fails just like a bad TOML file does. The
machinery here is generic: a new section is a new config class plus a field on :class:`Config`.

Environment overrides name a field by its path, sections separated by a double underscore:
``MCPTRIO_SERVER__PAGE_SIZE=50`` sets ``server.page_size``. Values are parsed by the field's type
(``true/false/1/0/yes/no`` for booleans, comma-separated lists for tuples, an empty value for
``None`` on optional fields). A key or variable that names no field is an error, never ignored.

Sans-IO: no trio here.
"""

from __future__ import annotations

import difflib
import enum
import math
import os
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

import attrs

__all__ = [
    "AuthConfig",
    "ClusterConfig",
    "Config",
    "ConfigError",
    "HttpClientConfig",
    "HttpConfig",
    "LogLevel",
    "ServerConfig",
    "StdioConfig",
    "StoreConfig",
    "TlsConfig",
    "config_from_mapping",
    "config_to_mapping",
    "load_config",
]

ENV_PREFIX = "MCPTRIO_"
"""Environment variables starting with this (any case) are configuration overrides."""

_ENV_SEP = "__"
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})

C = TypeVar("C")


class ConfigError(ValueError):
    """Invalid configuration: an unknown key or variable, a wrong type, a value out of range."""


class _FieldError(ConfigError):
    """Raised by field validators; carries the field name so loaders can report the full path."""

    def __init__(self, inst: Any, field: str, problem: str) -> None:
        super().__init__(f"{type(inst).__name__}.{field}: {problem}")
        self.field = field
        self.problem = problem


# --------------------------------------------------------------------------- validators


def _int_at_least(bound: int) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _FieldError(inst, attribute.name, f"expected int, got {_type_name(value)}")
        if value < bound:
            raise _FieldError(inst, attribute.name, f"must be >= {bound}, got {value}")

    return check


def _port(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _FieldError(inst, attribute.name, f"expected int, got {_type_name(value)}")
    if not 0 <= value <= 65535:
        raise _FieldError(
            inst, attribute.name, f"must be 1-65535, or 0 for a free port, got {value}"
        )


def _float_check(
    *, above: float | None = None, at_least: float | None = None
) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, float):
            raise _FieldError(inst, attribute.name, f"expected float, got {_type_name(value)}")
        # Written as "not ok" so that NaN, which fails every comparison, is rejected too.
        if above is not None and not value > above:
            raise _FieldError(inst, attribute.name, f"must be > {above}, got {value}")
        if at_least is not None and not value >= at_least:
            raise _FieldError(inst, attribute.name, f"must be >= {at_least}, got {value}")

    return check


def _to_float(value: Any) -> Any:
    """Let ``timeout=2`` mean ``2.0``; anything else is left for the validator to judge."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _one_of(*choices: object) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value not in choices or isinstance(value, bool):
            raise _FieldError(
                inst, attribute.name, f"expected one of {_choices(choices)}, got {value!r}"
            )

    return check


# --------------------------------------------------------------------------- the classes

LogLevel = Literal["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]
"""The eight RFC 5424 severities MCP logging uses, least severe first."""

_LOG_LEVELS: tuple[str, ...] = typing.get_args(LogLevel)


class _ConfigBase:
    """Shared behaviour of config classes."""

    __slots__ = ()

    def to_mapping(self) -> dict[str, Any]:
        """A plain dict of this config; ``config_from_mapping`` turns it back into an equal one."""
        return config_to_mapping(self)


@attrs.frozen(kw_only=True)
class ServerConfig(_ConfigBase):
    """How a server treats each connection."""

    page_size: int = attrs.field(default=100, validator=_int_at_least(1))
    """Items per page of every list result (tools, resources, prompts, ...)."""

    max_in_flight_requests: int = attrs.field(default=256, validator=_int_at_least(1))
    """Requests one connection may have running at once; beyond it a request is refused at once."""

    max_message_bytes: int = attrs.field(default=4 * 1024 * 1024, validator=_int_at_least(1024))
    """Largest JSON-RPC message accepted, in bytes."""

    cancel_notify_timeout: float = attrs.field(
        default=1.0, converter=_to_float, validator=_float_check(above=0.0)
    )
    """Seconds a cancelled caller may spend telling the peer with ``notifications/cancelled``."""

    shutdown_grace: float = attrs.field(
        default=5.0, converter=_to_float, validator=_float_check(at_least=0.0)
    )
    """Seconds in-flight requests may run on after shutdown starts before they are cancelled."""

    log_level: LogLevel = attrs.field(default="info", validator=_one_of(*_LOG_LEVELS))
    """Lowest level of log notifications sent before a client chooses one."""

    sync_handler_limit: int = attrs.field(default=16, validator=_int_at_least(1))
    """Worker threads available to synchronous (``def``) handlers."""

    max_input_rounds: int = attrs.field(default=8, validator=_int_at_least(1))
    """Rounds of client input (MRTR, or legacy server-to-client requests) one call may take."""

    request_state_ttl: float = attrs.field(
        default=600.0, converter=_to_float, validator=_float_check(above=0.0)
    )
    """Seconds a sealed MRTR ``requestState`` stays valid."""

    request_state_keys: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(str))
    )
    """Keys sealing ``requestState``: ``kid:base64url32,...`` (first seals, all open). Processes
    sharing these keys accept each other's retries; unset, each process makes its own key."""

    cache_ttl_ms: int = attrs.field(default=0, validator=_int_at_least(0))
    """The ``ttlMs`` caching hint on 2026-07-28 list and read results."""

    cache_scope: Literal["public", "private"] = attrs.field(
        default="public", validator=_one_of("public", "private")
    )
    """The ``cacheScope`` caching hint on 2026-07-28 list and read results."""


@attrs.frozen(kw_only=True)
class StdioConfig(_ConfigBase):
    """How the stdio transport runs and stops a child process."""

    terminate_grace: float = attrs.field(
        default=2.0, converter=_to_float, validator=_float_check(at_least=0.0)
    )
    """Seconds a child has to exit after its stdin closes, before it is terminated, then killed."""

    stderr: Literal["inherit", "capture", "devnull"] = attrs.field(
        default="inherit", validator=_one_of("inherit", "capture", "devnull")
    )
    """Where a child's stderr goes: our stderr, a captured log, or nowhere."""


def _path(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value.startswith("/") or any(c in value for c in "?# "):
        raise _FieldError(
            inst, attribute.name, f"must be a URL path starting with '/', got {value!r}"
        )


def _str_tuple(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
        raise _FieldError(inst, attribute.name, f"expected a list of strings, got {value!r}")


def _optional_path(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise _FieldError(inst, attribute.name, f"expected a non-empty str, got {value!r}")


@attrs.frozen(kw_only=True)
class TlsConfig(_ConfigBase):
    """HTTPS for the HTTP server (both implementations); off until ``certfile`` is set.

    The files are read when the server starts, and again on :meth:`ServerTls.reload
    <mcptrio.ServerTls.reload>`: when they change (``watch_interval``) and, under
    ``python -m mcptrio serve``, on SIGHUP. New connections get the files read last;
    connections already open keep theirs, so no stream is dropped. Files that fail to load
    are reported in the log and the ones in force are kept. A client's TLS handshake must
    end within ``HttpConfig.header_timeout`` (on h11 it counts toward the first request
    head; on Hypercorn it is the handshake's own limit).
    """

    certfile: str | None = attrs.field(default=None, validator=_optional_path)
    """PEM file with the server certificate followed by its chain; setting it turns TLS on."""

    keyfile: str | None = attrs.field(default=None, validator=_optional_path)
    """PEM file with the private key; unset: the key is in ``certfile``."""

    password: str | None = attrs.field(default=None, validator=_optional_path, repr=False)
    """Password of an encrypted private key."""

    ca_certs: str | None = attrs.field(default=None, validator=_optional_path)
    """PEM bundle of the certificate authorities that sign client certificates; setting it
    turns on mutual TLS (client certificates are checked against it)."""

    client_cert_required: bool = attrs.field(
        default=True, validator=attrs.validators.instance_of(bool)
    )
    """With ``ca_certs``: refuse clients that present no certificate (false: ask for one,
    accept clients without, still refuse a certificate that does not verify)."""

    min_version: Literal["1.2", "1.3"] = attrs.field(default="1.2", validator=_one_of("1.2", "1.3"))
    """Oldest TLS version accepted."""

    watch_interval: float = attrs.field(
        default=5.0, converter=_to_float, validator=_float_check(at_least=0.0)
    )
    """Seconds between checks of the files' modification times, size and inode; a change
    reloads them (0 turns the checks off)."""

    def __attrs_post_init__(self) -> None:
        if self.certfile is None:
            for name in ("keyfile", "password", "ca_certs"):
                if getattr(self, name) is not None:
                    raise _FieldError(self, name, "needs certfile (TLS is off without it)")


@attrs.frozen(kw_only=True)
class HttpConfig(_ConfigBase):
    """How the Streamable HTTP server listens, checks requests and streams."""

    host: str = attrs.field(default="127.0.0.1", validator=attrs.validators.instance_of(str))
    """Address to bind; 127.0.0.1 keeps a local server unreachable from other machines."""

    port: int = attrs.field(default=8000, validator=_port)
    """Port to bind, 1-65535; 0 picks a free one."""

    path: str = attrs.field(default="/mcp", validator=_path)
    """The MCP endpoint."""

    json_response: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    """Answer requests with plain JSON instead of an SSE stream when the client accepts both."""

    allowed_hosts: tuple[str, ...] = attrs.field(
        default=("127.0.0.1", "localhost", "[::1]"), validator=_str_tuple
    )
    """Host header values accepted (DNS-rebinding guard); ``*`` accepts any."""

    allowed_origins: tuple[str, ...] = attrs.field(default=(), validator=_str_tuple)
    """Origin header values accepted; empty means the http(s) origins of ``allowed_hosts``."""

    trust_forwarded_from: tuple[str, ...] = attrs.field(default=(), validator=_str_tuple)
    """Proxy addresses (IPs or CIDRs) whose X-Forwarded-Host / Forwarded headers are believed."""

    # Slow clients
    header_timeout: float = attrs.field(
        default=10.0, converter=_to_float, validator=_float_check(above=0.0)
    )
    """Seconds a client has to send a whole request head: from connecting for the first
    request, from its first byte for the next ones on a kept-alive connection. Beyond it: 408
    and the connection closes. With ``server = "hypercorn"`` it is Hypercorn's
    ``keep_alive_timeout``, which closes such a connection without an answer."""

    body_timeout: float = attrs.field(
        default=60.0, converter=_to_float, validator=_float_check(above=0.0)
    )
    """Seconds a request body may take as a whole, from when the server starts reading it.
    Beyond it: 408 and the connection closes."""

    min_body_rate: float = attrs.field(
        default=500.0, converter=_to_float, validator=_float_check(at_least=0.0)
    )
    """Slowest average rate, in bytes per second, a request body may come at once
    ``body_rate_grace`` has passed (0 turns the check off). Slower: 408 and the connection
    closes."""

    body_rate_grace: float = attrs.field(
        default=5.0, converter=_to_float, validator=_float_check(at_least=0.0)
    )
    """Seconds from when the server starts reading a body before ``min_body_rate`` applies; a
    body shorter than ``min_body_rate * body_rate_grace`` bytes must be complete by then."""

    max_body_bytes: int = attrs.field(default=4 * 1024 * 1024, validator=_int_at_least(1024))
    """Largest request body accepted (413 beyond)."""

    keepalive_interval: float = attrs.field(
        default=15.0, converter=_to_float, validator=_float_check(above=0.0)
    )
    """Seconds between ``:`` keep-alive comments on an idle SSE stream."""

    sse_retry_ms: int = attrs.field(default=1000, validator=_int_at_least(0))
    """The ``retry`` hint sent with the priming event of each SSE stream."""

    event_history: int = attrs.field(default=1000, validator=_int_at_least(1))
    """Events kept per SSE stream for resumption with Last-Event-ID."""

    event_history_age: float = attrs.field(
        default=300.0, converter=_to_float, validator=_float_check(above=0.0)
    )
    """Seconds events are kept for resumption."""

    session_idle_timeout: float = attrs.field(
        default=1800.0, converter=_to_float, validator=_float_check(above=0.0)
    )
    """Seconds without activity after which a session expires (then 404)."""

    # Budgets
    max_connections: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(_int_at_least(1))
    )
    """Open TCP connections (h11 server). At the cap a new connection takes the place of the
    oldest idle one; with none idle, it is served from ``health_connections``, and beyond those
    further clients wait in the listen backlog. None: sized at start-up from the open-file
    limit (raised to the hard limit first) minus ``reserved_file_descriptors`` and
    ``health_connections``."""

    reserved_file_descriptors: int = attrs.field(default=256, validator=_int_at_least(0))
    """File descriptors the derived ``max_connections`` leaves for files, stores and child
    processes (at most a quarter of the limit)."""

    health_connections: int = attrs.field(default=4, validator=_int_at_least(0))
    """Connections taken beyond ``max_connections`` that answer only ``/health``, ``/ready``
    and ``/metrics`` (one request each; anything else gets 503), so probes get in at the cap."""

    max_in_flight_requests: int = attrs.field(default=1000, validator=_int_at_least(1))
    """MCP requests running at once across all sessions (503 with Retry-After beyond);
    ``initialize`` and long-lived streams are not counted here."""

    max_streams: int = attrs.field(default=10_000, validator=_int_at_least(1))
    """Long-lived streams open at once: GET streams (new or resumed), legacy ``GET /sse``
    streams and 2026-07-28 ``subscriptions/listen`` (503 with Retry-After beyond)."""

    max_streams_per_session: int = attrs.field(default=4, validator=_int_at_least(1))
    """Long-lived streams one session may hold open at once (503 with Retry-After beyond)."""

    max_sessions: int = attrs.field(default=10_000, validator=_int_at_least(1))
    """Sessions held at once. At the limit a new session replaces the least recently used idle
    one (no requests running, no streams open; its client gets 404 and initializes again);
    only when none is idle does initialize get 503."""

    session_rate: float | None = attrs.field(
        default=100.0,
        converter=_to_float,
        validator=attrs.validators.optional(_float_check(above=0.0)),  # type: ignore[arg-type]
    )
    """Sessions one client address may create per second once its burst is spent (429 with
    Retry-After beyond); None: no limit. Behind a proxy in ``trust_forwarded_from`` the
    address is the one it forwards (``X-Forwarded-For`` or ``Forwarded: for=``)."""

    session_burst: int = attrs.field(default=1000, validator=_int_at_least(1))
    """Sessions one client address may create at once before ``session_rate`` applies."""

    legacy_sse: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    """Also serve the deprecated HTTP+SSE transport (2024-11-05) at ``sse_path``."""

    sse_path: str = attrs.field(default="/sse", validator=_path)
    """GET endpoint of the deprecated HTTP+SSE transport."""

    messages_path: str = attrs.field(default="/messages", validator=_path)
    """POST endpoint of the deprecated HTTP+SSE transport."""

    metrics: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    """Serve Prometheus text at ``/metrics``."""

    server: Literal["hypercorn", "h11"] = attrs.field(
        default="h11", validator=_one_of("hypercorn", "h11")
    )
    """The HTTP implementation: h11 directly on trio streams (several times cheaper per
    request), or Hypercorn (ASGI, HTTP/2). Both pass the same test suite and conformance runs."""

    auth: AuthConfig | None = attrs.field(default=None)
    """Require OAuth bearer tokens on the MCP endpoints (the ``[http.auth]`` table); unset:
    no authorization."""

    # TLS
    tls: TlsConfig = attrs.field(factory=TlsConfig)
    """HTTPS: certificate, key, client-certificate checks, reload (off by default)."""


@attrs.frozen(kw_only=True)
class ClusterConfig(_ConfigBase):
    """How several server processes share work (list changes, resource updates)."""

    redis_url: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(str))
    )
    """Redis to publish changes through (``redis://127.0.0.1:6379``); unset: this process only."""

    channel: str = attrs.field(
        default="mcptrio:changes", validator=attrs.validators.instance_of(str)
    )
    """The Redis pub/sub channel; processes serving the same server use the same one."""


def _store_url(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    from .store_location import StoreError, parse_store_url

    if not isinstance(value, str):
        raise _FieldError(inst, attribute.name, f"expected a URL string, got {_type_name(value)}")
    try:
        parse_store_url(value)
    except StoreError as exc:
        raise _FieldError(inst, attribute.name, str(exc)) from None


@attrs.frozen(kw_only=True)
class StoreConfig(_ConfigBase):
    """Where sessions, resumable events and tasks are kept, and how much of the events."""

    url: str = attrs.field(default="memory://", validator=_store_url)
    """``memory://`` (this process; lost on exit), ``sqlite:///path/file.db`` (one file,
    survives restarts) or ``redis://host:port/db?prefix=mcptrio:`` (shared by the processes
    using the same prefix). Checked when the server starts: a store that cannot be opened
    stops it with a message naming the URL (password masked)."""

    event_bytes_per_stream: int | None = attrs.field(
        default=typing.cast("int | None", 16 * 1024 * 1024),
        validator=attrs.validators.optional(_int_at_least(1)),
    )
    """Bytes of messages (their JSON length) one SSE stream keeps for resumption; the oldest
    go first beyond it. None: only the event count and age bound a stream."""

    event_bytes_total: int | None = attrs.field(
        default=typing.cast("int | None", 256 * 1024 * 1024),
        validator=attrs.validators.optional(_int_at_least(1)),
    )
    """Bytes of messages all SSE streams keep together; beyond it the oldest events of the
    least recently used streams go first. None: no total bound."""


@attrs.frozen(kw_only=True)
class Config(_ConfigBase):
    """All mcptrio settings; each section is its own class, added here as one field."""

    server: ServerConfig = attrs.field(factory=ServerConfig)
    """Per-connection server behaviour."""

    stdio: StdioConfig = attrs.field(factory=StdioConfig)
    """Child processes spoken to over stdio."""

    http: HttpConfig = attrs.field(factory=HttpConfig)
    """The Streamable HTTP server."""

    cluster: ClusterConfig = attrs.field(factory=ClusterConfig)
    """Sharing between server processes."""

    store: StoreConfig = attrs.field(factory=StoreConfig)
    """Where sessions, events and tasks are kept."""


# --------------------------------------------------------------------------- building


def config_from_mapping(cls: type[C], data: Mapping[str, Any], *, source: str) -> C:
    """Validate ``data`` (as parsed from TOML) and build ``cls`` from it.

    ``source`` names where the data came from (a file name) and starts every error message.
    Nested tables build nested config classes; missing keys keep their defaults.
    """
    return _build(cls, data, (), lambda _path: source)


@typing.overload
def load_config(
    *, path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Config: ...


@typing.overload
def load_config(
    cls: type[C],
    *,
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> C: ...


def load_config(
    cls: type[Any] = Config,
    *,
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Any:
    """Read the TOML file at ``path`` (if any), apply ``MCPTRIO_*`` overrides, build ``cls``.

    ``env=None`` reads ``os.environ``; pass ``{}`` to ignore the environment. Environment
    values win over the file.
    """
    data: dict[str, Any] = {}
    file_source = "defaults"
    if path is not None:
        file_source = os.fspath(path)
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(f"{file_source}: config file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file_source}: not valid TOML: {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"{file_source}: cannot read config file: {exc}") from exc

    origins: dict[tuple[str, ...], str] = {}
    for name, raw in (os.environ if env is None else env).items():
        if not name.upper().startswith(ENV_PREFIX):
            continue
        key_path, value = _parse_env(cls, name, raw)
        _set_path(data, key_path, value, file_source)
        origins[key_path] = f"environment variable {name}"

    def origin(path: tuple[str, ...]) -> str:
        # A value set from the environment reports the variable; a whole section touched by
        # one variable still mostly comes from the file, so only exact paths are attributed.
        return origins.get(path, file_source)

    return _build(cls, data, (), origin)


def config_to_mapping(config: Any) -> dict[str, Any]:
    """A plain dict (nested dicts, lists, scalars, ``None``) of a config instance."""
    out: dict[str, Any] = {}
    for field in attrs.fields(type(config)):
        out[field.name] = _plain(getattr(config, field.name))
    return out


def _plain(value: Any) -> Any:
    if attrs.has(type(value)):
        return config_to_mapping(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _build(
    cls: type[C],
    data: Mapping[str, Any],
    path: tuple[str, ...],
    origin: Callable[[tuple[str, ...]], str],
) -> C:
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        key_path = (*path, str(key))
        if not isinstance(key, str) or key not in hints:
            raise ConfigError(_unknown_key(origin(key_path), key_path, list(hints)))
        kwargs[key] = _convert(hints[key], value, key_path, origin)
    try:
        return cls(**kwargs)
    except _FieldError as exc:
        field_path = (*path, exc.field)
        raise ConfigError(f"{origin(field_path)}: {_dotted(field_path)}: {exc.problem}") from None
    except (ValueError, TypeError) as exc:
        where = _dotted(path) or cls.__name__
        raise ConfigError(f"{origin(path)}: {where}: {exc}") from exc


def _convert(
    tp: Any, value: Any, path: tuple[str, ...], origin: Callable[[tuple[str, ...]], str]
) -> Any:
    """Check ``value`` against the annotation ``tp``; return it in the field's own type."""

    def wrong(expected: str) -> ConfigError:
        return ConfigError(
            f"{origin(path)}: {_dotted(path)}: expected {expected}, got {_type_name(value)}"
            f" ({_short_repr(value)})"
        )

    optional, tp = _strip_optional(tp)
    if value is None:
        if optional:
            return None
        raise wrong(_describe(tp))
    if attrs.has(tp):
        if not isinstance(value, Mapping):
            if isinstance(value, tp):
                return value
            raise wrong(f"a table ({tp.__name__})")
        return _build(tp, value, path, origin)
    origin_tp = typing.get_origin(tp)
    if origin_tp is Literal:
        choices = typing.get_args(tp)
        if isinstance(value, bool) or value not in choices:
            raise ConfigError(
                f"{origin(path)}: {_dotted(path)}: expected one of {_choices(choices)},"
                f" got {_short_repr(value)}"
            )
        return value
    if origin_tp is tuple:
        item_tp = _tuple_item(tp)
        if not isinstance(value, list | tuple):
            raise wrong(_describe(tp))
        return tuple(
            _convert(item_tp, item, (*path[:-1], f"{path[-1]}[{i}]"), origin)
            for i, item in enumerate(value)
        )
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if isinstance(value, tp):
            return value
        for member in tp:
            if member.value == value and not isinstance(value, bool):
                return member
        raise ConfigError(
            f"{origin(path)}: {_dotted(path)}: expected one of"
            f" {_choices([m.value for m in tp])}, got {_short_repr(value)}"
        )
    if tp is bool:
        if not isinstance(value, bool):
            raise wrong("bool")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong("int")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong("float")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise wrong("str")
        return value
    raise TypeError(f"config field {_dotted(path)} has an unsupported type {tp!r}")


# --------------------------------------------------------------------------- environment


def _parse_env(cls: type[Any], name: str, raw: str) -> tuple[tuple[str, ...], Any]:
    """Resolve one ``MCPTRIO_*`` variable to a key path and a typed value."""
    source = f"environment variable {name}"
    parts = tuple(p.lower() for p in name[len(ENV_PREFIX) :].split(_ENV_SEP))
    current: Any = cls
    for depth, part in enumerate(parts):
        hints = _hints(current)
        key_path = parts[: depth + 1]
        if part not in hints:
            for section, section_tp in hints.items():
                rest = part[len(section) + 1 :]
                if part.startswith(section + "_") and attrs.has(_strip_optional(section_tp)[1]):
                    fixed = _ENV_SEP.join((*key_path[:-1], section, rest, *parts[depth + 1 :]))
                    raise ConfigError(
                        f"{source}: unknown key '{_dotted(key_path)}'; separate sections"
                        f" with a double underscore: {ENV_PREFIX}{fixed.upper()}"
                    )
            raise ConfigError(_unknown_key(source, key_path, list(hints)))
        optional, field_tp = _strip_optional(hints[part])
        if depth == len(parts) - 1:
            if attrs.has(field_tp) and optional and raw.strip() == "":
                # An empty value unsets an optional section, as it does an optional value.
                return key_path, None
            if attrs.has(field_tp):
                example = f"{ENV_PREFIX}{_ENV_SEP.join(key_path).upper()}{_ENV_SEP}<FIELD>"
                raise ConfigError(
                    f"{source}: '{_dotted(key_path)}' is a section, not a value;"
                    f" set its fields one by one, e.g. {example}"
                )
            return key_path, _from_env_text(hints[part], raw, key_path, source)
        if not attrs.has(field_tp):
            raise ConfigError(
                f"{source}: '{_dotted(key_path)}' is a value, not a section;"
                f" use {ENV_PREFIX}{_ENV_SEP.join(key_path).upper()}"
            )
        current = field_tp
    raise ConfigError(f"{source}: name a field, e.g. {ENV_PREFIX}SERVER{_ENV_SEP}PAGE_SIZE")


def _from_env_text(tp: Any, raw: str, path: tuple[str, ...], source: str) -> Any:
    """Parse an environment string into a value of the annotated type (not yet validated)."""
    optional, tp = _strip_optional(tp)
    text = raw.strip()

    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{source}: {_dotted(path)}: expected {expected}, got {raw!r}")

    if optional and text == "":
        return None
    origin_tp = typing.get_origin(tp)
    if origin_tp is Literal:
        choices = typing.get_args(tp)
        for choice in choices:
            if str(choice) == text:
                return choice
        for choice in choices:
            if isinstance(choice, str) and choice.lower() == text.lower():
                return choice
        raise bad(f"one of {_choices(choices)}")
    if origin_tp is tuple:
        item_tp = _tuple_item(tp)
        items = [t.strip() for t in text.split(",")] if text else []
        return tuple(_from_env_text(item_tp, item, path, source) for item in items if item)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        for member in tp:
            if str(member.value) == text or member.name.lower() == text.lower():
                return member
        raise bad(f"one of {_choices([m.value for m in tp])}")
    if tp is bool:
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise bad("a bool (true/false/1/0/yes/no)")
    if tp is int:
        try:
            return int(text)
        except ValueError:
            raise bad("int") from None
    if tp is float:
        try:
            number = float(text)
        except ValueError:
            raise bad("float") from None
        if math.isnan(number):
            raise bad("a number")
        return number
    if tp is str:
        return raw
    raise TypeError(f"config field {_dotted(path)} has an unsupported type {tp!r}")


def _set_path(data: dict[str, Any], path: tuple[str, ...], value: Any, file_source: str) -> None:
    node = data
    for depth, part in enumerate(path[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            # Replacing it would hide a mistake in the file.
            raise ConfigError(
                f"{file_source}: {_dotted(path[: depth + 1])}: expected a table,"
                f" got {_type_name(child)} ({_short_repr(child)})"
            )
        node = child
    node[path[-1]] = value


# --------------------------------------------------------------------------- helpers


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    """Field name -> resolved annotation, in definition order (cached per class)."""
    hints = _HINTS.get(cls)
    if hints is None:
        if not attrs.has(cls):
            raise TypeError(f"{cls!r} is not an attrs config class")
        resolved = typing.get_type_hints(cls)
        hints = _HINTS[cls] = {f.name: resolved[f.name] for f in attrs.fields(cls)}
    return hints


def _strip_optional(tp: Any) -> tuple[bool, Any]:
    """``X | None`` -> ``(True, X)``; anything else -> ``(False, tp)``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return True, args[0]
        raise TypeError(f"unsupported union type in config: {tp!r}")
    return False, tp


def _tuple_item(tp: Any) -> Any:
    args = typing.get_args(tp)
    if len(args) != 2 or args[1] is not Ellipsis:
        raise TypeError(f"config tuples must be tuple[X, ...], not {tp!r}")
    return args[0]


def _describe(tp: Any) -> str:
    if typing.get_origin(tp) is tuple:
        return f"an array of {_describe(_tuple_item(tp))}"
    if attrs.has(tp):
        return f"a table ({tp.__name__})"
    return getattr(tp, "__name__", repr(tp))


def _type_name(value: Any) -> str:
    if isinstance(value, Mapping):
        return "table"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _choices(choices: typing.Iterable[object]) -> str:
    return ", ".join(repr(c) for c in choices)


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(path)


def _unknown_key(source: str, path: tuple[str, ...], known: list[str]) -> str:
    message = f"{source}: unknown key '{_dotted(path)}'"
    close = difflib.get_close_matches(path[-1], known, n=1)
    if close:
        return f"{message}; did you mean '{close[0]}'?"
    return f"{message}; known keys here: {', '.join(known)}"


# --------------------------------------------------------------------------- the HTTP client


@attrs.frozen(kw_only=True)
class HttpClientConfig(_ConfigBase):
    """How :func:`~mcptrio.open_http_transport` resumes an event stream that drops.

    A request answered on an SSE stream that ends before the answer came is resumed with
    ``GET`` and ``Last-Event-ID``: first after the server's ``retry`` hint (or
    ``resume_delay``), then each wait ``resume_backoff`` times longer, up to
    ``resume_max_delay``. The request fails with an error naming this budget and what the
    server said last once ``resume_attempts`` attempts or ``resume_window`` seconds have passed
    without a new event; an event resets both. The defaults ride out a server restart of a few
    seconds and still fail a call to a server that is gone within ten seconds.

    Its TLS and HTTP/2 settings configure the HTTP client the transport creates.
    """

    resume_attempts: int = attrs.field(default=5, validator=_int_at_least(0))
    """Attempts in a row, without a new event, to resume a dropped stream; 0 never resumes."""

    resume_delay: float = attrs.field(
        default=1.0, converter=_to_float, validator=_float_check(at_least=0.0)
    )
    """Seconds before the first attempt when the server sent no ``retry`` hint."""

    resume_backoff: float = attrs.field(
        default=2.0, converter=_to_float, validator=_float_check(at_least=1.0)
    )
    """Factor by which each further attempt waits longer than the one before."""

    resume_max_delay: float = attrs.field(
        default=5.0, converter=_to_float, validator=_float_check(at_least=0.0)
    )
    """Longest wait between two attempts, in seconds."""

    resume_window: float = attrs.field(
        default=10.0, converter=_to_float, validator=_float_check(above=0.0)
    )
    """Seconds after the drop (or the last event received) within which the stream must be
    resumed; beyond it the request fails even if attempts remain."""

    # TLS and HTTP/2
    ca_certs: str | None = attrs.field(default=None, validator=_optional_path)
    """PEM bundle of the certificate authorities trusted for ``https`` servers, instead of
    the system's (a private CA)."""

    client_cert: str | None = attrs.field(default=None, validator=_optional_path)
    """PEM file with a client certificate, followed by its key unless ``client_key`` is set,
    shown to servers that ask for one (mutual TLS)."""

    client_key: str | None = attrs.field(default=None, validator=_optional_path)
    """PEM file with the private key of ``client_cert``."""

    http2: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    """Speak HTTP/2 where the server offers it (through ALPN on ``https``); on ``http`` every
    connection starts with HTTP/2 (prior knowledge), which only servers that accept that
    answer. Needs the ``h2`` package: ``pip install mcptrio[http2]``."""

    def __attrs_post_init__(self) -> None:
        if self.client_key is not None and self.client_cert is None:
            raise _FieldError(self, "client_key", "needs client_cert")

    def resume_wait(self, attempt: int, retry_ms: int | None) -> float:
        """Seconds to wait before resumption attempt ``attempt`` (0 is the first)."""
        base = self.resume_delay if retry_ms is None else retry_ms / 1000
        return float(min(base * self.resume_backoff**attempt, max(self.resume_max_delay, base)))


# --------------------------------------------------------------------------- authorization

_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


def _algorithms(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    _str_tuple(inst, attribute, value)
    if not value:
        raise _FieldError(inst, attribute.name, "name at least one algorithm")
    for alg in value:
        if alg not in _ALGORITHMS:
            # 'none' and the shared-secret HS* algorithms are never right for a resource server
            # that does not hold the issuer's secret.
            raise _FieldError(
                inst,
                attribute.name,
                f"{alg!r} is not an accepted signing algorithm;"
                f" use {_choices(sorted(_ALGORITHMS))}",
            )


def _optional_str(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise _FieldError(inst, attribute.name, f"expected str, got {_type_name(value)}")


@attrs.frozen(kw_only=True)
class AuthConfig(_ConfigBase):
    """OAuth 2.1 resource server: how bearer tokens on the HTTP endpoint are checked."""

    authorization_servers: tuple[str, ...] = attrs.field(default=(), validator=_str_tuple)
    """Issuer URLs of the authorization servers clients get tokens from (listed in the
    Protected Resource Metadata); at least one."""

    issuer: str | None = attrs.field(default=None, validator=_optional_str)
    """The ``iss`` tokens must carry; unset: the first of ``authorization_servers``."""

    resource: str | None = attrs.field(default=None, validator=_optional_str)
    """This server's canonical URI (RFC 8707), the audience tokens must be issued for, e.g.
    ``https://mcp.example.com/mcp``; unset: the URL :func:`~mcptrio.serve_http` listens on, or,
    on a wildcard address or mounted as an ASGI app, ``http://`` with each request's Host and
    path. Set it whenever clients reach the server through another URL (TLS, a proxy, a public
    name)."""

    audiences: tuple[str, ...] = attrs.field(default=(), validator=_str_tuple)
    """More ``aud`` values accepted besides ``resource``."""

    token_validation: Literal["jwt", "introspection"] = attrs.field(
        default="jwt", validator=_one_of("jwt", "introspection")
    )
    """``jwt``: verify signed JWT access tokens with the issuer's keys; ``introspection``: ask
    the authorization server about each token (RFC 7662)."""

    jwks_uri: str | None = attrs.field(default=None, validator=_optional_str)
    """Where the issuer publishes its keys; unset: found in its RFC 8414 metadata."""

    algorithms: tuple[str, ...] = attrs.field(default=("RS256", "ES256"), validator=_algorithms)
    """Signing algorithms accepted for JWTs (``none`` and ``HS*`` are never accepted)."""

    clock_skew: float = attrs.field(
        default=60.0, converter=_to_float, validator=_float_check(at_least=0.0)
    )
    """Seconds of clock difference tolerated when checking ``exp`` and ``nbf``."""

    jwks_cache_ttl: float = attrs.field(
        default=3600.0, converter=_to_float, validator=_float_check(above=0.0)
    )
    """Seconds the fetched keys are used before they are fetched again."""

    jwks_refresh_interval: float = attrs.field(
        default=30.0, converter=_to_float, validator=_float_check(at_least=0.0)
    )
    """Least seconds between two fetches triggered by an unknown key id (rotation)."""

    introspection_endpoint: str | None = attrs.field(default=None, validator=_optional_str)
    """The RFC 7662 endpoint (``token_validation = "introspection"``)."""

    introspection_client_id: str | None = attrs.field(default=None, validator=_optional_str)
    """Client id this server authenticates to the introspection endpoint with (HTTP Basic)."""

    introspection_client_secret: str | None = attrs.field(
        default=None, validator=_optional_str, repr=False
    )
    """Its client secret."""

    introspection_cache_ttl: float = attrs.field(
        default=0.0, converter=_to_float, validator=_float_check(at_least=0.0)
    )
    """Seconds an active introspection answer is reused for the same token (never past its
    ``exp``); 0 asks for every request. A revoked token keeps working this long."""

    scopes_supported: tuple[str, ...] = attrs.field(default=(), validator=_str_tuple)
    """Scopes listed in the Protected Resource Metadata."""

    required_scopes: tuple[str, ...] = attrs.field(default=(), validator=_str_tuple)
    """Scopes every request needs (403 ``insufficient_scope`` without them)."""

    hide_unauthorized: bool = attrs.field(
        default=True, validator=attrs.validators.instance_of(bool)
    )
    """Leave tools, resources and prompts a caller lacks the scopes for out of its lists."""

    resource_name: str | None = attrs.field(default=None, validator=_optional_str)
    """A human-readable name in the Protected Resource Metadata."""

    resource_documentation: str | None = attrs.field(default=None, validator=_optional_str)
    """A URL of documentation for people, in the Protected Resource Metadata."""

    def __attrs_post_init__(self) -> None:
        if not self.authorization_servers:
            raise _FieldError(self, "authorization_servers", "name at least one")
        if self.token_validation == "introspection" and self.introspection_endpoint is None:
            raise _FieldError(
                self,
                "introspection_endpoint",
                "token_validation is 'introspection' but no endpoint is set",
            )
        for field in ("scopes_supported", "required_scopes"):
            for scope in getattr(self, field):
                if not scope or " " in scope:
                    raise _FieldError(self, field, f"{scope!r} is not a scope token")
                if scope == "offline_access":
                    # MCP: refresh tokens are between the client and the authorization server.
                    raise _FieldError(
                        self, field, "leave offline_access out (clients ask for it themselves)"
                    )
