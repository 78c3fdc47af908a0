"""The Streamable HTTP endpoint (legacy era), the deprecated HTTP+SSE transport, and serving.

:class:`HttpEndpoint` holds the logic, written against :class:`HttpExchange`; ASGI is one
adapter (:meth:`HttpEndpoint.asgi_app`), and :func:`serve_http` runs it on Hypercorn
inside the caller's nursery.
"""

from __future__ import annotations

import contextlib
import logging
import math
import ssl
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import orjson
import trio

from .._auth.resource_server import (
    PRM_PATH,
    AuthorizationServerUnavailable,
    Challenge,
    InsufficientScope,
    InvalidToken,
    Principal,
    ResourceServer,
    principal_key,
)
from .._intercept.actions import HttpMetadata
from .._intercept.chain import InterceptorChain, combine
from .._ops.config import AuthConfig, HttpConfig, StoreConfig
from .._ops.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .._ops.metrics import Outcome, render_prometheus
from .._protocol.errors import MCPError, ParseError
from .._protocol.jsonrpc import (
    ErrorResponse,
    InvalidMessage,
    Message,
    Notification,
    Request,
    RequestId,
    Response,
    decode,
    error_response,
    malformed_response_error,
)
from .._protocol.sse import encode_comment, encode_event
from .._protocol.versions import META_PROTOCOL_VERSION, SUPPORTED_VERSIONS, supports_batches
from .._runtime.peer import ProgressCallback
from .._runtime.pipeline import PipelineFacts, Stages
from .._runtime.transport import Incoming
from .._state.event_store import EventEvicted, EventStore, MemoryEventStore, parse_event_id
from .._state.sessions import (
    MemorySessionStore,
    SessionConfig,
    SessionLimitExceeded,
    SessionManager,
    SessionNotFound,
    SessionPrincipalMismatch,
    SessionRecord,
)
from .._state.stores import open_stores
from .._state.task_store import MemoryTaskStore
from .._transports.http.asgi import AsgiApp
from .._transports.http.budgets import Budget, RateLimiter, connection_cap, raise_file_limit
from .._transports.http.exchange import BodyTooLarge, Headers, HttpExchange
from .._transports.http.security import HostPolicy, check_request, client_address
from .._transports.http.tls import ServerTls
from .connection import ServerSession, serve_connection
from .context import Outbound
from .http_modern import ModernResponder, check_modern_headers, is_modern_http_request
from .http_session import Delivery, HttpSessionTransport, SessionStream
from .modern import serve_modern
from .server import Server

__all__ = ["HttpEndpoint", "HttpServerInfo", "serve_http"]

log = logging.getLogger("mcptrio.http")

_WATCH_AFTER = 0.02
"""Seconds a 2026-07-28 request runs before its connection is watched for a disconnect."""
_VERDICT_MEMO = 256
"""Distinct Host/Origin combinations whose verdict is remembered."""
_SPILL_WAIT = 1.0
"""Seconds a JSON answer waits for the messages about its request on the GET stream to be
written first (a stalled GET stream must not hold answers back for long)."""
_PRIMING_WAIT = 0.05
"""Seconds the priming event waits to share a write with the first message (under load a
short wait expires often and costs a timer plus a write per request)."""
_LISTEN = "subscriptions/listen"
_HEALTH_PATHS = ("/health", "/ready", "/metrics")
_JSON = "application/json"
_SSE = "text/event-stream"
_JSON_HEADERS = (("content-type", _JSON),)
_CALLS = (Request, Notification)
_ANSWERS = (Response, ErrorResponse)
_SSE_HEADERS = (
    ("content-type", _SSE),
    ("cache-control", "no-cache"),
    ("x-accel-buffering", "no"),
)


@attrs.frozen
class HttpServerInfo:
    """What :func:`serve_http` reports once it is listening."""

    url: str
    """The MCP endpoint URL, e.g. ``http://127.0.0.1:8000/mcp``."""
    endpoint: HttpEndpoint
    """The endpoint, for statistics."""
    tls: ServerTls | None = None
    """With ``config.tls.certfile`` set: the TLS settings in force (:meth:`ServerTls.reload`)."""


class _Watch:
    """A 2026-07-28 request whose client is to be watched once it runs past ``due``."""

    __slots__ = ("due", "ex", "scope", "watcher")

    def __init__(self, ex: HttpExchange, scope: trio.CancelScope, due: float) -> None:
        self.ex: HttpExchange | None = ex
        self.scope = scope
        self.due = due
        self.watcher: trio.CancelScope | None = None

    def finish(self) -> None:
        """The request is over: no watch from now on."""
        self.ex = None
        if self.watcher is not None:
            self.watcher.cancel()


class _LiveSession:
    """A session's in-process state: its transport, peer task and protocol state."""

    __slots__ = ("busy", "done", "handler", "id", "legacy_sse", "streams", "transport")

    def __init__(self, session_id: str, transport: HttpSessionTransport) -> None:
        self.id = session_id
        self.transport = transport
        self.handler: ServerSession | None = None
        self.done = trio.Event()
        self.legacy_sse = False
        # Long-lived streams open, and POSTs being answered: a session with neither is idle.
        self.streams = 0
        self.busy = 0

    def idle(self) -> bool:
        """True when nothing runs on the session: no stream, no request (it may be evicted)."""
        if self.streams or self.busy or self.legacy_sse:
            return False
        handler = self.handler
        if handler is None:
            return False
        try:
            return handler.peer.statistics().in_flight_incoming == 0
        except RuntimeError:
            return False


class _InterceptedOutbound:
    """A 2026-07-28 request's outbound side with the chain on each notification."""

    def __init__(self, inner: ModernResponder, stages: Stages, facts: PipelineFacts) -> None:
        self._inner = inner
        self._stages = stages
        self._facts = facts

    async def notify(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        related_request_id: RequestId | None = None,
    ) -> None:
        admitted = await self._stages.on_notification(
            self._facts, "server->client", Notification(method, params)
        )
        if admitted is not None:
            await self._inner.notify(
                admitted.method, admitted.params, related_request_id=related_request_id
            )

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        related_request_id: RequestId | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        return await self._inner.request(
            method, params, related_request_id=related_request_id, on_progress=on_progress
        )


def _failed_answer(body: bytes, exc: InvalidMessage) -> ErrorResponse | None:
    """The error ending our request that ``body`` (a malformed response) answers, if any."""
    if exc.request_id is None:
        return None
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return malformed_response_error(obj, exc)


def _accepts(header: str | None, *wanted: str) -> bool:
    """True if the Accept header admits every media type in ``wanted``."""
    if not header:
        return False
    # Clients send the same few Accept headers on every request: the verdict is remembered
    # (bounded against hostile variety).
    key = (header, wanted)
    verdict = _ACCEPT_MEMO.get(key)
    if verdict is None:
        verdict = _parse_accepts(header, wanted)
        if len(_ACCEPT_MEMO) >= _VERDICT_MEMO:
            _ACCEPT_MEMO.clear()
        _ACCEPT_MEMO[key] = verdict
    return verdict


def _parse_accepts(header: str, wanted: tuple[str, ...]) -> bool:
    offered = set()
    for part in header.split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media:
            offered.add(media)
    for media in wanted:
        major = media.split("/", 1)[0]
        if media not in offered and "*/*" not in offered and f"{major}/*" not in offered:
            return False
    return True


_ACCEPT_MEMO: dict[tuple[str, tuple[str, ...]], bool] = {}


def _answers(message: dict[str, Any], stream: SessionStream | None) -> bool:
    """True when ``message`` is the response ending ``stream``."""
    return (
        stream is not None
        and stream.request_id is not None
        and ("result" in message or "error" in message)
        and message.get("id") == stream.request_id
    )


def _json_body(message: dict[str, Any] | list[dict[str, Any]]) -> bytes:
    return orjson.dumps(message)


def _error_body(
    code: int, message: str, request_id: RequestId | None = None, data: Any = None
) -> bytes:
    return orjson.dumps(ErrorResponse(request_id, code, message, data).to_dict())


class HttpEndpoint:
    """The MCP endpoint: sessions, streams, validation, health and metrics."""

    def __init__(
        self,
        server: Server,
        config: HttpConfig | None = None,
        *,
        event_store: EventStore | None = None,
        session_manager: SessionManager | None = None,
        auth: AuthConfig | ResourceServer | None = None,
        interceptors: InterceptorChain | None = None,
    ) -> None:
        self.server = server
        self.interceptors = interceptors
        """This endpoint's own chain, run around the server's on every message it carries."""
        self.stages: Stages = combine(interceptors, server.interceptors)
        self.config = config if config is not None else HttpConfig()
        cfg = self.config
        if auth is None:
            auth = cfg.auth
        self.auth = ResourceServer(auth) if isinstance(auth, AuthConfig) else auth
        """The OAuth resource server checking bearer tokens (None: no authorization)."""
        if self.auth is not None:
            server.scope_requirements.hide_from_lists = self.auth.config.hide_unauthorized
        budget = StoreConfig()
        self.events: EventStore = event_store or MemoryEventStore(
            max_events_per_stream=cfg.event_history,
            max_age=cfg.event_history_age,
            max_bytes_per_stream=budget.event_bytes_per_stream,
            max_bytes=budget.event_bytes_total,
        )
        self.sessions = session_manager or SessionManager(
            MemorySessionStore(),
            SessionConfig(idle_timeout=cfg.session_idle_timeout, max_sessions=cfg.max_sessions),
        )
        self.sessions.on_expire(self._on_expire)
        self.policy = HostPolicy(
            allowed_hosts=cfg.allowed_hosts,
            allowed_origins=cfg.allowed_origins,
            trust_forwarded_from=cfg.trust_forwarded_from,
        )
        self._live: dict[str, _LiveSession] = {}
        # 2026-07-28 requests in the order they started, for the disconnect watchdog.
        self._watches: deque[_Watch] = deque()
        self._watches_added = trio.Event()
        self._host_verdicts: dict[tuple[str | None, ...], str | None] = {}
        self._nursery: trio.Nursery | None = None
        self._shutting_down = trio.Event()
        self._ready = False
        self._open_streams = 0
        self._resumptions = 0
        self._evictions = 0
        # Separate budgets: spending one never refuses work that needs only another.
        self.connection_budget: Budget | None = None
        """TCP connections (set when served by the h11 server, which counts them)."""
        self.health_connection_budget: Budget | None = None
        """Connections beyond the cap that only answer health probes (h11 server)."""
        self.in_flight_budget = Budget("in_flight", cfg.max_in_flight_requests)
        self.stream_budget = Budget("streams", cfg.max_streams)
        self.session_stream_budget = Budget("session_streams", cfg.max_streams_per_session)
        self.session_budget = Budget("sessions", cfg.max_sessions)
        self.session_rate = (
            RateLimiter(cfg.session_rate, cfg.session_burst, clock=trio.current_time)
            if cfg.session_rate is not None
            else None
        )

    # -- lifetime ---------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the background work (session peers, expiry) until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self.sessions.serve)
            await nursery.start(self.server.serve_background)
            nursery.start_soon(self._watchdog)
            self._ready = True
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._ready = False
                self._nursery = None
                nursery.cancel_scope.cancel()
                if self.auth is not None:
                    with trio.CancelScope(shield=True):
                        await self.auth.aclose()

    def begin_shutdown(self) -> None:
        """Stop taking new work and end every SSE stream cleanly (clients can resume)."""
        self._ready = False
        self._shutting_down.set()
        for live in self._live.values():
            live.transport.detach_all()

    def asgi_app(self) -> AsgiApp:
        """This endpoint as an ASGI 3 application (with lifespan) to mount anywhere."""
        cfg = self.config
        return AsgiApp(
            self.handle,
            max_body=cfg.max_body_bytes,
            background=self.run,
            body_timeout=cfg.body_timeout,
            min_body_rate=cfg.min_body_rate,
            body_rate_grace=cfg.body_rate_grace,
        )

    def statistics(self) -> dict[str, int]:
        """Live sessions, open SSE streams (long-lived ones apart), requests in flight,
        connections, resumptions and sessions evicted to make room."""
        connections = self.connection_budget
        return {
            "sessions": len(self._live),
            "sse_streams": self._open_streams,
            "long_lived_streams": self.stream_budget.in_use,
            "in_flight": self.in_flight_budget.in_use,
            "connections": connections.in_use if connections is not None else 0,
            "resumptions": self._resumptions,
            "evicted_sessions": self._evictions,
        }

    def budgets(self) -> list[Budget]:
        """Every budget this endpoint keeps, with its use and refusals."""
        session_streams = self.session_stream_budget
        session_streams.in_use = max((live.streams for live in self._live.values()), default=0)
        sessions = self.session_budget
        sessions.in_use = self.sessions.statistics().active
        found = [
            self.connection_budget,
            self.health_connection_budget,
            self.in_flight_budget,
            self.stream_budget,
            session_streams,
            sessions,
        ]
        budgets = [b for b in found if b is not None]
        if self.session_rate is not None:
            rate = Budget("session_rate", self.session_rate.burst)
            rate.rejected = self.session_rate.rejected
            budgets.append(rate)
        return budgets

    # -- routing ----------------------------------------------------------------------------

    async def handle(self, ex: HttpExchange) -> None:
        """Answer one HTTP request."""
        if ex.path in _HEALTH_PATHS and await self._health(ex):
            return
        await self._route(ex)

    async def handle_reserved(self, ex: HttpExchange) -> None:
        """Answer a request on a connection beyond the TCP cap: health probes only, then close."""
        close = (("connection", "close"),)
        if ex.path in _HEALTH_PATHS and await self._health(ex, close):
            return
        if self.connection_budget is not None:
            self.connection_budget.refuse()
        limit = self.connection_budget.limit if self.connection_budget is not None else 0
        await self._over_budget(
            ex,
            "connections",
            f"server busy: {limit} connections open, its limit (max_connections); retry shortly",
            extra=close,
        )

    async def _health(self, ex: HttpExchange, extra: Sequence[tuple[str, str]] = ()) -> bool:
        """Answer ``/health``, ``/ready`` or ``/metrics``; False for anything else. These use
        no MCP budget, so they answer while every one is spent."""
        if ex.method != "GET":
            return False
        path = ex.path
        headers = [("content-type", _JSON), *extra]
        if path == "/health":
            await ex.respond(200, headers, b'{"status":"ok"}')
        elif path == "/ready":
            ready = self._ready and not self._shutting_down.is_set()
            status = b'{"status":"ready"}' if ready else b'{"status":"not ready"}'
            await ex.respond(200 if ready else 503, headers, status)
        elif path == "/metrics" and self.config.metrics:
            await self._metrics(ex, extra)
        else:
            return False
        return True

    async def _over_budget(
        self,
        ex: HttpExchange,
        budget: str,
        message: str,
        *,
        request_id: RequestId | None = None,
        status: int = 503,
        retry_after: float = 1,
        extra: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Refuse work because ``budget`` is spent: ``status`` with Retry-After, and a JSON-RPC
        error whose data names the budget."""
        await self._error(
            ex,
            status,
            -32000,
            message,
            request_id=request_id,
            data={"budget": budget},
            extra=[("retry-after", str(max(1, math.ceil(retry_after)))), *extra],
        )

    async def _route(self, ex: HttpExchange) -> None:
        cfg = self.config
        path = ex.path
        if self.auth is not None and path.startswith(PRM_PATH) and ex.method == "GET":
            await self._protected_resource_metadata(ex)
            return
        known = path == cfg.path or (cfg.legacy_sse and path in (cfg.sse_path, cfg.messages_path))
        if not known:
            await self._error(ex, 404, -32601, f"no MCP endpoint at {path!r}; use {cfg.path!r}")
            return
        reason = self._check_origin_and_host(ex.headers, ex.client_host)
        if reason is not None:
            await self._error(ex, 403, -32000, f"Forbidden: {reason}")
            return
        principal = None
        if self.auth is not None:
            principal = await self._authenticate(ex)
            if principal is None:
                return
        if path == cfg.path:
            if ex.method == "POST":
                await self._post(ex, principal)
            elif ex.method == "GET":
                await self._get(ex, principal)
            elif ex.method == "DELETE":
                await self._delete(ex, principal)
            else:
                await self._error(
                    ex,
                    405,
                    -32000,
                    f"method {ex.method} is not allowed on the MCP endpoint",
                    extra=[("allow", "GET, POST, DELETE")],
                )
        elif path == cfg.sse_path and ex.method == "GET":
            await self._legacy_sse_get(ex, principal)
        elif path == cfg.messages_path and ex.method == "POST":
            await self._legacy_sse_post(ex, principal)
        else:
            allowed = "GET" if path == cfg.sse_path else "POST"
            await self._error(
                ex, 405, -32000, f"use {allowed} on {path}", extra=[("allow", allowed)]
            )

    # -- authorization --------------------------------------------------------------------------

    def _resource(self, ex: HttpExchange) -> str:
        assert self.auth is not None
        return self.auth.resource_for("http", ex.headers.get("host"), self.config.path)

    async def _protected_resource_metadata(self, ex: HttpExchange) -> None:
        """RFC 9728: the document at the path-specific and the root well-known URL."""
        assert self.auth is not None
        if ex.path not in (PRM_PATH, PRM_PATH + self.config.path):
            await self._error(ex, 404, -32601, f"no protected resource metadata at {ex.path!r}")
            return
        body = orjson.dumps(self.auth.metadata(self._resource(ex)))
        await ex.respond(
            200,
            [("content-type", _JSON), ("access-control-allow-origin", "*")],
            body,
        )

    async def _authenticate(self, ex: HttpExchange) -> Principal | None:
        """The caller's principal, or None after answering 401/403 (tokens are never logged)."""
        auth = self.auth
        assert auth is not None
        resource = self._resource(ex)
        try:
            principal = await auth.authenticate(ex.headers.get("authorization"), resource)
        except InvalidToken as exc:
            challenge = auth.refusal(exc, resource)
        except AuthorizationServerUnavailable as exc:
            log.warning("cannot check an access token: %s", exc)
            await self._error(
                ex,
                503,
                -32000,
                f"cannot check the access token right now ({exc}); retry shortly",
                extra=[("retry-after", "5")],
            )
            return None
        except Exception:
            log.exception("token validation failed unexpectedly")
            await self._error(ex, 500, -32603, "internal error while checking the access token")
            return None
        else:
            needed = auth.config.required_scopes
            if principal.has_scopes(needed):
                return principal
            challenge = auth.forbidden(needed, "this server", resource)
        await self._refuse(ex, challenge)
        return None

    async def _refuse(
        self, ex: HttpExchange, challenge: Challenge, request_id: RequestId | None = None
    ) -> None:
        data = None
        if challenge.status == 401:
            code, message = -32000, f"Unauthorized: {challenge.message}"
        else:
            code, message = InsufficientScope.default_code, f"Forbidden: {challenge.message}"
            data = {"requiredScopes": list(challenge.scopes)}
        await self._error(
            ex,
            challenge.status,
            code,
            message,
            request_id=request_id,
            data=data,
            extra=[("www-authenticate", challenge.www_authenticate)],
        )

    async def _check_scopes(
        self, ex: HttpExchange, principal: Principal | None, incoming: Incoming
    ) -> bool:
        """False after answering 403 when ``principal`` lacks the scopes a request needs."""
        if principal is None or not isinstance(incoming, Request):
            # Batches are checked message by message where they run.
            return True
        rules = self.server.scope_requirements
        if not rules:
            return True
        needed, what = rules.for_request(self.server, incoming.method, incoming.params)
        if principal.has_scopes(needed):
            return True
        assert self.auth is not None
        challenge = self.auth.forbidden(needed, what, self._resource(ex))
        await self._refuse(ex, challenge, incoming.id)
        return False

    def _check_origin_and_host(self, headers: Headers, peer_ip: str | None) -> str | None:
        """The DNS-rebinding verdict, remembered per distinct header combination (the same few
        repeat on every request of a client; the memo is bounded against hostile variety)."""
        forwarded_host = headers.get("x-forwarded-host")
        forwarded = headers.get("forwarded")
        key = (
            headers.get("host"),
            headers.get("origin"),
            forwarded_host,
            forwarded,
            peer_ip if forwarded_host is not None or forwarded is not None else None,
        )
        try:
            return self._host_verdicts[key]
        except KeyError:
            pass
        verdict = check_request(
            self.policy,
            host=key[0],
            origin=key[1],
            forwarded_host=forwarded_host,
            forwarded=forwarded,
            peer_ip=peer_ip,
        )
        if len(self._host_verdicts) >= _VERDICT_MEMO:
            self._host_verdicts.clear()
        self._host_verdicts[key] = verdict
        return verdict

    def _count_in(self, incoming: Incoming, nbytes: int) -> None:
        metrics = self.server.metrics
        count = len(incoming) if isinstance(incoming, list) else 1
        for n in range(count):
            metrics.record_message("in", nbytes if n == 0 else 0)

    def _count_out(self, body: bytes, count: int = 1) -> bytes:
        """``body`` (``count`` messages) is about to be sent: counted in the metrics."""
        metrics = self.server.metrics
        for n in range(count):
            metrics.record_message("out", len(body) if n == 0 else 0)
        return body

    async def _error(
        self,
        ex: HttpExchange,
        status: int,
        code: int,
        message: str,
        *,
        request_id: RequestId | None = None,
        data: Any = None,
        extra: Sequence[tuple[str, str]] = (),
    ) -> None:
        body = self._count_out(_error_body(code, message, request_id, data))
        await ex.respond(status, [("content-type", _JSON), *extra], body)

    async def _metrics(self, ex: HttpExchange, extra: Sequence[tuple[str, str]] = ()) -> None:
        metrics = self.server.metrics
        for budget in self.budgets():
            metrics.set_budget(
                budget.name, in_use=budget.in_use, limit=budget.limit, rejected=budget.rejected
            )
        metrics.set_gauge(
            "http_sessions_evicted",
            self._evictions,
            description="Idle sessions ended to make room for new ones.",
        )
        metrics.set_gauge("http_sessions", len(self._live), description="Live HTTP sessions.")
        metrics.set_gauge("http_sse_streams", self._open_streams, description="Open SSE streams.")
        metrics.set_gauge(
            "http_resumptions", self._resumptions, description="SSE streams resumed so far."
        )
        body = render_prometheus(metrics.statistics()).encode()
        await ex.respond(200, [("content-type", METRICS_CONTENT_TYPE), *extra], body)

    # -- sessions ---------------------------------------------------------------------------

    async def _start_live(self, session_id: str) -> _LiveSession:
        if self._nursery is None:
            raise MCPError("the server is not running (lifespan not started)")
        live = _LiveSession(session_id, HttpSessionTransport(session_id, self.events))
        self._live[session_id] = live
        live.handler = await self._nursery.start(self._run_live, live)
        live.handler.peer.facts.session_id = session_id
        return live

    async def _run_live(
        self, live: _LiveSession, *, task_status: trio.TaskStatus[ServerSession]
    ) -> None:
        try:
            await serve_connection(
                self.server,
                live.transport,
                name=f"http:{live.id[:8]}",
                stages=self.stages,
                task_status=task_status,
            )
        finally:
            live.done.set()
            if self._live.get(live.id) is live:
                del self._live[live.id]

    async def _close_live(self, session_id: str) -> None:
        live = self._live.pop(session_id, None)
        if live is not None:
            await live.transport.aclose()

    async def _on_expire(self, record: SessionRecord) -> None:
        await self._close_live(record.id)

    async def _session(
        self, ex: HttpExchange, session_id: str, principal: Principal | None
    ) -> _LiveSession | None:
        """The live session for ``session_id`` (noting the request on it), or None after
        answering 404 (also when it belongs to another principal: it does not exist for it)."""
        try:
            await self.sessions.use(session_id, principal=principal_key(principal))
        except (SessionNotFound, SessionPrincipalMismatch):
            await self._error(
                ex,
                404,
                -32001,
                "Session not found: it expired or was deleted; send a new initialize request"
                " without Mcp-Session-Id",
            )
            return None
        live = self._live.get(session_id)
        if live is None:
            # Known to the store but not to this process (it was restarted): the session
            # cannot be resumed without its protocol state, so the client starts over.
            await self.sessions.close(session_id)
            await self._error(
                ex,
                404,
                -32001,
                "Session not found on this server; send a new initialize request",
            )
            return None
        if live.handler is not None:
            # The same principal, perhaps with a refreshed token and other scopes.
            live.handler.principal = principal
        # Most recently used last: eviction looks from the front.
        self._live[session_id] = self._live.pop(session_id)
        return live

    async def _create_session(
        self, ex: HttpExchange, principal: Principal | None, request_id: RequestId | None = None
    ) -> SessionRecord | None:
        """A new session record, or None after answering 429 or 503.

        The creation rate per client address is checked first. At ``max_sessions`` the least
        recently used idle session is ended to make room (its client gets 404 and initializes
        again); only when none is idle is the request refused.
        """
        rate = self.session_rate
        if rate is not None:
            headers = ex.headers
            address = client_address(
                self.policy,
                peer_ip=ex.client_host,
                forwarded_for=headers.get("x-forwarded-for"),
                forwarded=headers.get("forwarded"),
            )
            wait = rate.take(address or "")
            if wait > 0:
                await self._over_budget(
                    ex,
                    "session_rate",
                    "Too Many Requests: this address creates sessions faster than"
                    f" {rate.rate:g} per second (session_rate); retry after the delay given",
                    request_id=request_id,
                    status=429,
                    retry_after=wait,
                )
                return None
        try:
            return await self.sessions.create(
                principal=principal_key(principal), make_room=self._evict_idle_session
            )
        except SessionLimitExceeded as exc:
            refusal = exc
        self.session_budget.refuse()
        busy = "" if refusal.principal is not None else "; every session is busy"
        await self._over_budget(
            ex, "sessions", f"{refusal}{busy}", request_id=request_id, retry_after=5
        )
        return None

    async def _evict_idle_session(self) -> bool:
        """End the least recently used idle session; False if none is idle."""
        victim = None
        for session_id, live in self._live.items():
            if live.idle():
                victim = session_id
                break
        if victim is None:
            return False
        self._evictions += 1
        log.info("session %s... ended to make room for a new one (max_sessions)", victim[:8])
        with contextlib.suppress(SessionNotFound):
            await self.sessions.close(victim)
        await self._close_live(victim)
        return True

    def _open_stream(self, live: _LiveSession) -> tuple[str, str] | None:
        """Count a long-lived stream of ``live``; the refusing budget and why, if any."""
        cfg = self.config
        if live.streams >= cfg.max_streams_per_session:
            self.session_stream_budget.refuse()
            return (
                "session_streams",
                f"this session already has {live.streams} streams open, its limit"
                " (max_streams_per_session); close one first",
            )
        if not self.stream_budget.try_acquire():
            return (
                "streams",
                f"server busy: {cfg.max_streams} streams open, its limit (max_streams);"
                " retry shortly",
            )
        live.streams += 1
        return None

    def _close_stream(self, live: _LiveSession) -> None:
        live.streams -= 1
        self.stream_budget.release()

    # -- POST ---------------------------------------------------------------------------------

    async def _read_messages(self, ex: HttpExchange) -> Incoming | None:
        content_type = ex.headers.get("content-type") or ""
        if content_type != _JSON:
            content_type = content_type.split(";", 1)[0].strip().lower()
        if content_type != _JSON:
            await self._error(
                ex,
                415,
                -32600,
                "Unsupported Media Type: send the body as application/json,"
                f" not {content_type or 'nothing'!r}",
            )
            return None
        try:
            body = await ex.read_body(self.config.max_body_bytes)
        except BodyTooLarge as exc:
            await self._error(
                ex,
                413,
                -32600,
                f"Payload Too Large: the body exceeds {exc.limit} bytes",
                # The body was refused before it was read: do not reuse the connection.
                extra=[("connection", "close")],
            )
            return None
        try:
            incoming = decode(body)
        except ParseError as exc:
            await self._error(ex, 400, exc.code, f"Parse error: {exc.message}")
        except InvalidMessage as exc:
            failed = _failed_answer(body, exc)
            if failed is not None:
                # A malformed answer to one of our requests ends that request at once
                # (the handler waiting for it gets the error) rather than never.
                log.warning("malformed response to request %r: %s", failed.id, exc.message)
                self._count_in(failed, len(body))
                return failed
            await self._error(
                ex, 400, exc.code, f"Invalid Request: {exc.message}", request_id=exc.request_id
            )
        else:
            self._count_in(incoming, len(body))
            return incoming
        return None

    async def _post(self, ex: HttpExchange, principal: Principal | None) -> None:
        if not _accepts(ex.headers.get("accept"), _JSON, _SSE):
            await self._error(
                ex,
                406,
                -32600,
                "Not Acceptable: the Accept header must list both application/json and"
                " text/event-stream",
            )
            return
        incoming = await self._read_messages(ex)
        if incoming is None:
            return
        if self._shutting_down.is_set():
            await self._error(
                ex,
                503,
                -32000,
                "the server is shutting down; retry shortly",
                extra=[("retry-after", "1")],
            )
            return
        if not await self._check_scopes(ex, principal, incoming):
            return
        headers = ex.headers
        session_id = headers.get("mcp-session-id")
        if isinstance(incoming, _CALLS) and is_modern_http_request(
            incoming.method, incoming.params, headers.get("mcp-protocol-version")
        ):
            await self._modern_post(ex, incoming, principal)
            return
        if isinstance(incoming, list):
            if any(isinstance(m, Request) and m.method == "initialize" for m in incoming):
                await self._error(ex, 400, -32600, "initialize must not be part of a batch")
                return
        elif isinstance(incoming, Request) and incoming.method == "initialize":
            if session_id is not None:
                await self._error(
                    ex,
                    400,
                    -32600,
                    "this request carries Mcp-Session-Id, but initialize starts a new session:"
                    " send it without the header",
                )
                return
            await self._initialize(ex, incoming, principal)
            return
        if session_id is None:
            await self._error(
                ex,
                400,
                -32000,
                "Bad Request: the Mcp-Session-Id header is required (send initialize first)",
            )
            return
        live = await self._session(ex, session_id, principal)
        if live is None:
            return
        if not await self._check_version(ex, live):
            return
        if isinstance(incoming, list):
            await self._post_batch(ex, live, incoming)
            return
        if not isinstance(incoming, Request):
            await live.transport.deliver(incoming)
            await ex.respond(202, [], b"")
            return
        await self._answer(ex, live, incoming)

    async def _modern_post(
        self, ex: HttpExchange, message: Request | Notification, principal: Principal | None
    ) -> None:
        """A stateless 2026-07-28 request: its own POST, answered on its own response."""
        if isinstance(message, Notification):
            # Stateless: a notification changes nothing here, but the chain sees it.
            if self.stages.active:
                facts = self._modern_facts(ex, message, principal)
                await self.stages.on_notification(facts, "client->server", message)
            await ex.respond(202, [], b"")
            return
        params = message.params if message.params is not None else {}
        responder = ModernResponder(
            ex,
            sse=not self.config.json_response,
            keepalive=self.config.keepalive_interval,
            metrics=self.server.metrics,
        )
        try:
            check_modern_headers(ex.headers, message.method, params, self.server)
        except MCPError as exc:
            await responder.fail(message.id, exc)
            return
        # A listen stream lasts as long as its client wants: it counts as a stream, not as a
        # request in flight.
        if message.method == _LISTEN:
            budget, name, setting = self.stream_budget, "streams", "max_streams"
        else:
            budget, name, setting = self.in_flight_budget, "in_flight", "max_in_flight_requests"
        if not budget.try_acquire():
            await self._over_budget(
                ex,
                name,
                f"server busy: {budget.in_use} {name.replace('_', ' ')} at once, its limit"
                f" ({setting}); retry shortly",
                request_id=message.id,
            )
            return
        metrics = self.server.metrics
        start = trio.current_time()
        metrics.increment_in_flight()
        # Closing the response stream is how a 2026-07-28 client cancels.
        scope = trio.CancelScope()
        responder.cancel_scope = scope
        try:
            if self._nursery is not None:
                watch = self._watch_for_disconnect(ex, scope, start)
                # A streamed answer's keep-alives run there too.
                responder.nursery = self._nursery
                try:
                    await self._run_modern(message, responder, scope, start, principal, ex)
                finally:
                    watch.finish()
            else:
                # Not under :meth:`run` (an ASGI server without lifespan): the request
                # keeps its own watcher.
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._cancel_when_gone, scope, ex)
                    responder.nursery = nursery
                    await self._run_modern(message, responder, scope, start, principal, ex)
                    nursery.cancel_scope.cancel()
        finally:
            responder.close()
            budget.release()
            metrics.decrement_in_flight()

    async def _run_modern(
        self,
        message: Request,
        responder: ModernResponder,
        scope: trio.CancelScope,
        start: float,
        principal: Principal | None = None,
        ex: HttpExchange | None = None,
    ) -> None:
        """Serve and answer a 2026-07-28 request under ``scope``, and count it."""
        outcome: Outcome = "ok"
        code: int | None = None
        answered = False
        stages = self.stages
        try:
            with scope:
                if stages.active:
                    reply = await self._modern_intercepted(
                        stages, message, responder, scope, principal, ex
                    )
                else:
                    reply = await self._modern_reply(message, responder, scope, principal)
                if isinstance(reply, Response):
                    await responder.finish(message.id, reply.result)
                else:
                    outcome, code = "error", reply.code
                    await responder.fail(message.id, reply.to_exception())
                answered = True
            if not answered:
                outcome = "cancelled"
        finally:
            self.server.metrics.record_request(
                message.method if self.server.methods.knows(message.method) else "other",
                duration=trio.current_time() - start,
                outcome=outcome,
                code=code,
            )

    async def _modern_intercepted(
        self,
        stages: Stages,
        message: Request,
        responder: ModernResponder,
        scope: trio.CancelScope,
        principal: Principal | None,
        ex: HttpExchange | None,
    ) -> Response | ErrorResponse:
        """The pipeline for one 2026-07-28 request: stages, processing, stages."""
        facts = self._modern_facts(ex, message, principal)
        admitted = await stages.on_request(facts, "client->server", message)
        if isinstance(admitted, Request):
            outbound = _InterceptedOutbound(responder, stages, facts)
            reply = await self._modern_reply(admitted, outbound, scope, principal)
        else:
            reply = admitted
        return await stages.on_response(facts, "server->client", reply)

    def _modern_facts(
        self, ex: HttpExchange | None, message: Request | Notification, principal: Principal | None
    ) -> PipelineFacts:
        facts = PipelineFacts("server", "http")
        meta = (message.params or {}).get("_meta")
        version = meta.get(META_PROTOCOL_VERSION) if isinstance(meta, dict) else None
        facts.protocol_version = version if isinstance(version, str) else None
        facts.principal = principal
        if ex is not None:
            facts.http = HttpMetadata(
                method=ex.method,
                path=ex.path,
                headers={k: v for k, v in ex.headers.items() if k != "authorization"},
                client=ex.client_host,
            )
        return facts

    async def _modern_reply(
        self,
        message: Request,
        responder: Outbound,
        scope: trio.CancelScope,
        principal: Principal | None,
    ) -> Response | ErrorResponse:
        try:
            result = await serve_modern(
                self.server,
                message,
                responder,
                cancel_scope=scope,
                principal=principal,
                stopping=self._shutting_down,
            )
        except MCPError as exc:
            return error_response(message.id, exc)
        except Exception as exc:
            log.exception("%s failed", message.method)
            return error_response(
                message.id, MCPError(f"internal error while handling {message.method}: {exc}")
            )
        return Response(message.id, result)

    async def _cancel_when_gone(self, scope: trio.CancelScope, ex: HttpExchange) -> None:
        await trio.sleep(_WATCH_AFTER)
        await ex.wait_disconnected()
        scope.cancel()

    def _watch_for_disconnect(
        self, ex: HttpExchange, scope: trio.CancelScope, now: float
    ) -> _Watch:
        """Cancel ``scope`` if the client leaves while the request is still running.

        Watching the socket costs system calls and a task; most requests are answered
        before a short timer fires, so only slower ones pay for the watch. One task (the
        watchdog) keeps that timer for every request.
        """
        watch = _Watch(ex, scope, now + _WATCH_AFTER)
        queue = self._watches
        queue.append(watch)
        if len(queue) == 1:
            self._watches_added.set()
        return watch

    async def _watchdog(self) -> None:
        """Start a disconnect watcher for each request still running when its time comes."""
        queue = self._watches
        while True:
            if not queue:
                self._watches_added = trio.Event()
                await self._watches_added.wait()
                continue
            await trio.sleep_until(queue[0].due)
            now = trio.current_time()
            while queue and queue[0].due <= now:
                watch = queue.popleft()
                if watch.ex is not None and self._nursery is not None:
                    watch.watcher = trio.CancelScope()
                    self._nursery.start_soon(self._watch_one, watch, watch.ex, watch.watcher)

    async def _watch_one(self, watch: _Watch, ex: HttpExchange, watcher: trio.CancelScope) -> None:
        with watcher:
            try:
                await ex.wait_disconnected()
            except Exception:
                log.exception("watching a client for a disconnect failed")
                return
            watch.scope.cancel()

    async def _check_version(self, ex: HttpExchange, live: _LiveSession) -> bool:
        version = ex.headers.get("mcp-protocol-version")
        if version is None or version in SUPPORTED_VERSIONS:
            return True
        await self._error(
            ex,
            400,
            -32600,
            f"Bad Request: unsupported MCP-Protocol-Version {version!r}; supported:"
            f" {', '.join(SUPPORTED_VERSIONS)}",
            data={"supported": list(SUPPORTED_VERSIONS), "requested": version},
        )
        return False

    async def _initialize(
        self, ex: HttpExchange, request: Request, principal: Principal | None
    ) -> None:
        record = await self._create_session(ex, principal, request.id)
        if record is None:
            return
        live = await self._start_live(record.id)
        if live.handler is not None:
            live.handler.principal = principal
        await self._answer(ex, live, request, extra=[("mcp-session-id", record.id)])
        handler = live.handler
        if handler is not None and handler.initialized:
            await self.sessions.update(
                record.id,
                protocol_version=handler.protocol_version,
                client_info=request.params.get("clientInfo") if request.params else None,
                client_capabilities=(request.params or {}).get("capabilities") or {},
            )
        else:
            # initialize failed: the session never became usable.
            await self.sessions.close(record.id)
            await self._close_live(record.id)

    async def _answer(
        self,
        ex: HttpExchange,
        live: _LiveSession,
        request: Request,
        *,
        extra: Sequence[tuple[str, str]] = (),
    ) -> None:
        # initialize is governed by the session budget, so a server busy with requests still
        # takes new clients.
        budget = self.in_flight_budget if request.method != "initialize" else None
        if budget is not None and not budget.try_acquire():
            await self._over_budget(
                ex,
                "in_flight",
                f"server busy: {budget.in_use} requests in flight, its limit"
                " (max_in_flight_requests); retry shortly",
                request_id=request.id,
                extra=extra,
            )
            return
        live.busy += 1
        try:
            if self.config.json_response and live.handler is not None:
                await self._answer_inline(ex, live, live.handler, request, extra)
            else:
                await self._answer_streamed(ex, live, request, extra)
        finally:
            live.busy -= 1
            if budget is not None:
                budget.release()

    async def _answer_streamed(
        self,
        ex: HttpExchange,
        live: _LiveSession,
        request: Request,
        extra: Sequence[tuple[str, str]],
    ) -> None:
        sse = not self.config.json_response
        stream = live.transport.open_request_stream(request.id, resumable=sse)
        receive = stream.attach()
        try:
            priming: str | None = None
            if sse:
                version = live.handler.protocol_version if live.handler else None
                if version is None and request.params:
                    requested = request.params.get("protocolVersion")
                    version = requested if isinstance(requested, str) else None
                if version is None or version >= "2025-11-25":
                    # Stored before the request runs, so it precedes every answer; it
                    # gives the client an id to resume from even if nothing else arrives.
                    priming = await self.events.append(stream.id, None)
                await live.transport.deliver(request)
                await self._stream_response(ex, live, stream, receive, priming, extra=extra)
            else:
                await live.transport.deliver(request)
                await self._json_response(ex, live, stream, receive, extra=extra)
        finally:
            stream.detach(receive)
            if stream.finished or not sse:
                live.transport.forget(stream)

    async def _answer_inline(
        self,
        ex: HttpExchange,
        live: _LiveSession,
        handler: ServerSession,
        request: Request,
        extra: Sequence[tuple[str, str]],
    ) -> None:
        """A JSON answer: the request runs right here in the POST's task.

        Nothing else goes on a JSON answer, so no writer waits on a channel: the stream
        holds the response, which is there once the request returns. No watcher tasks
        either (this is the hot path): a legacy disconnect is not a cancellation.
        """
        transport = live.transport
        stream = transport.open_request_stream(request.id, resumable=False)
        stream.hold()
        try:
            await handler.peer.serve_inline(request)
        finally:
            stream.detach()
            transport.forget(stream)
        if stream.spilled:
            # Progress and other messages about this request went out on the GET stream;
            # a client stops listening for them once it has the answer.
            with trio.move_on_after(_SPILL_WAIT):
                await transport.standalone.written_through(stream.spilled)
        await self._send_answer(ex, stream, stream.reply, extra)

    async def _send_answer(
        self,
        ex: HttpExchange,
        stream: SessionStream,
        answer: Message | None,
        extra: Sequence[tuple[str, str]],
    ) -> None:
        """End a JSON-answered POST with the request's answer (None: it has none)."""
        if answer is None:
            if stream.abandoned:
                # Cancelled by the client: no answer, as the spec asks; just end the POST.
                await ex.respond(202, [], b"")
                return
            answer = error_response(
                stream.request_id, MCPError("the session ended before the request was answered")
            )
        headers = [("content-type", _JSON), *extra] if extra else _JSON_HEADERS
        await ex.respond(200, headers, self._count_out(_json_body(answer.to_dict())))

    async def _json_response(
        self,
        ex: HttpExchange,
        live: _LiveSession,
        stream: SessionStream,
        receive: trio.MemoryReceiveChannel[Delivery],
        *,
        extra: Sequence[tuple[str, str]],
    ) -> None:
        # The request runs in the session's peer (it had no handler yet): wait for its
        # answer. A legacy disconnect is not a cancellation, so the answer is awaited
        # either way, and the stream's channel closes when the session ends or the
        # request is cancelled.
        answer: Message | None = None
        try:
            async for _event_id, message in receive:
                if (
                    isinstance(message, Response | ErrorResponse)
                    and message.id == stream.request_id
                ):
                    answer = message
                    break
        except trio.ClosedResourceError:
            pass
        await self._send_answer(ex, stream, answer, extra)

    async def _cancel_on(
        self, scope: trio.CancelScope, ex: HttpExchange, live: _LiveSession
    ) -> None:
        async with trio.open_nursery() as nursery:

            async def wait(event: Any) -> None:
                await event()
                nursery.cancel_scope.cancel()

            nursery.start_soon(wait, ex.wait_disconnected)
            nursery.start_soon(wait, self._shutting_down.wait)
            nursery.start_soon(wait, live.done.wait)
        scope.cancel()

    async def _stream_response(
        self,
        ex: HttpExchange,
        live: _LiveSession,
        stream: SessionStream,
        receive: trio.MemoryReceiveChannel[Delivery],
        priming: str | None,
        *,
        extra: Sequence[tuple[str, str]],
    ) -> None:
        await ex.start_stream(200, [*_SSE_HEADERS, *extra])
        first = None
        if priming is not None:
            first = encode_event(None, id=priming, retry_ms=self.config.sse_retry_ms)
        await self._pump(ex, live, stream, receive, skip_through=None, first=first)

    async def _pump(
        self,
        ex: HttpExchange,
        live: _LiveSession,
        stream: SessionStream,
        receive: trio.MemoryReceiveChannel[Delivery],
        *,
        skip_through: int | None,
        first: bytes | None = None,
    ) -> None:
        """Write a stream's events to the client until its response, a disconnect or shutdown.

        No watcher tasks (this is the hot path): the session's end, a shutdown and a
        resume elsewhere close the stream's channel; a vanished client makes the next write
        (a keep-alive at the latest) raise ClientDisconnected. Every event is in the event
        store before it is written, so nothing is lost either way.
        """
        self._open_streams += 1
        try:
            last = await self._write_events(ex, stream, receive, skip_through, first)
            if last is not None:
                # The response and the end of the stream share one write, made like every
                # write of an event before it.
                await ex.end_stream(last)
                stream.wrote()
            else:
                with trio.CancelScope(shield=True) as scope:
                    scope.relative_deadline = 1.0
                    await ex.end_stream()
        finally:
            self._open_streams -= 1

    async def _write_events(
        self,
        ex: HttpExchange,
        stream: SessionStream,
        receive: trio.MemoryReceiveChannel[Delivery],
        skip_through: int | None,
        first: bytes | None = None,
    ) -> bytes | None:
        """Write events until the stream's response (returned unwritten, to end the stream
        with) or the end of its channel (None)."""
        keepalive = self.config.keepalive_interval
        # ``first`` (the priming event) rides with the first message when that comes at
        # once, saving a write; otherwise it goes out alone after a moment.
        pending = first
        while True:
            with trio.move_on_after(keepalive if pending is None else _PRIMING_WAIT) as idle:
                try:
                    event_id, message = await receive.receive()
                except (trio.EndOfChannel, trio.ClosedResourceError):
                    if pending is not None:
                        await ex.send_chunk(pending)
                    return None
            if idle.cancelled_caught:
                await ex.send_chunk(pending if pending is not None else encode_comment())
                pending = None
                continue
            if skip_through is not None and event_id is not None:
                parsed = parse_event_id(event_id)
                if parsed is not None and parsed[1] <= skip_through:
                    stream.wrote()
                    continue
            chunk = self._count_out(encode_event(orjson.dumps(message.to_dict()), id=event_id))
            if pending is not None:
                chunk, pending = pending + chunk, None
            if (
                stream.request_id is not None
                and isinstance(message, _ANSWERS)
                and message.id == stream.request_id
            ):
                return chunk
            await ex.send_chunk(chunk)
            stream.wrote()

    async def _post_batch(
        self, ex: HttpExchange, live: _LiveSession, batch: list[Message | InvalidMessage]
    ) -> None:
        handler = live.handler
        if handler is None or not supports_batches(handler.protocol_version):
            await self._error(
                ex,
                400,
                -32600,
                "JSON-RPC batches are only allowed with protocol revision 2025-03-26;"
                " send one message per POST",
            )
            return
        requests = [m for m in batch if isinstance(m, Request)]
        streams = [live.transport.open_request_stream(r.id, resumable=False) for r in requests]
        channels = [s.attach() for s in streams]
        replies: list[dict[str, Any]] = [
            error_response(m.request_id, m).to_dict()
            for m in batch
            if isinstance(m, InvalidMessage)
        ]
        try:
            await live.transport.deliver(batch)
            for stream, channel in zip(streams, channels, strict=True):
                async for _event_id, message in channel:
                    if (
                        isinstance(message, Response | ErrorResponse)
                        and message.id == stream.request_id
                    ):
                        replies.append(message.to_dict())
                        break
        finally:
            for stream in streams:
                stream.detach()
                live.transport.forget(stream)
        if not replies:
            await ex.respond(202, [], b"")
            return
        await ex.respond(
            200, [("content-type", _JSON)], self._count_out(_json_body(replies), len(replies))
        )

    # -- GET / DELETE -----------------------------------------------------------------------

    async def _get(self, ex: HttpExchange, principal: Principal | None) -> None:
        if not _accepts(ex.headers.get("accept"), _SSE):
            await self._error(
                ex, 406, -32600, "Not Acceptable: a GET stream needs Accept: text/event-stream"
            )
            return
        session_id = ex.headers.get("mcp-session-id")
        if session_id is None:
            await self._error(
                ex,
                400,
                -32000,
                "Bad Request: the Mcp-Session-Id header is required to open a GET stream",
            )
            return
        live = await self._session(ex, session_id, principal)
        if live is None or not await self._check_version(ex, live):
            return
        last_event_id = ex.headers.get("last-event-id")
        standalone = live.transport.standalone
        if not last_event_id and standalone.attached:
            await self._error(
                ex,
                409,
                -32000,
                "Conflict: this session already has a GET stream open; one at a time",
            )
            return
        refusal = self._open_stream(live)
        if refusal is not None:
            await self._over_budget(ex, *refusal)
            return
        try:
            # A long-lived stream may go quiet for a long time: its budget is given back as
            # soon as its client leaves, not at the next keep-alive.
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._end_when_gone, nursery.cancel_scope, ex)
                if last_event_id:
                    await self._resume(ex, live, last_event_id)
                else:
                    await self._standalone(ex, live)
                nursery.cancel_scope.cancel()
        finally:
            self._close_stream(live)

    async def _end_when_gone(self, scope: trio.CancelScope, ex: HttpExchange) -> None:
        await ex.wait_disconnected()
        scope.cancel()

    async def _standalone(self, ex: HttpExchange, live: _LiveSession) -> None:
        standalone = live.transport.standalone
        receive = standalone.attach()
        try:
            await ex.start_stream(200, list(_SSE_HEADERS))
            event_id = await self.events.append(standalone.id, None)
            first = encode_event(None, id=event_id, retry_ms=self.config.sse_retry_ms)
            await self._pump(ex, live, standalone, receive, skip_through=None, first=first)
        finally:
            standalone.detach(receive)

    async def _resume(self, ex: HttpExchange, live: _LiveSession, last_event_id: str) -> None:
        parsed = parse_event_id(last_event_id)
        if parsed is None or not live.transport.owns(parsed[0]):
            await self._error(
                ex,
                400,
                -32600,
                f"Last-Event-ID {last_event_id!r} does not name an event of this session",
            )
            return
        stream = live.transport.stream(parsed[0])
        receive = None
        if stream is not None and not stream.finished:
            # A resume means the previous connection is gone, even if its writer has not
            # noticed yet: take the stream over.
            stream.detach()
            receive = stream.attach()
        try:
            try:
                _stream_id, events = await self.events.replay_after(last_event_id)
            except EventEvicted as exc:
                await self._error(
                    ex,
                    409,
                    -32000,
                    f"cannot resume: {exc}; the events after it are no longer available",
                )
                return
            self._resumptions += 1
            await ex.start_stream(200, list(_SSE_HEADERS))
            last_seq = parsed[1]
            answered = False
            for event_id, message in events:
                if message is not None:
                    chunk = encode_event(orjson.dumps(message), id=event_id)
                    await ex.send_chunk(self._count_out(chunk))
                    answered = answered or _answers(message, stream)
                event = parse_event_id(event_id)
                if event is not None:
                    last_seq = max(last_seq, event[1])
            # A store that awaits lets the response be stored and pushed while the replay
            # ran: then it is either in the replay or waiting in ``receive``, never lost.
            if stream is not None and receive is not None and not answered:
                await self._pump(ex, live, stream, receive, skip_through=last_seq)
            else:
                await ex.end_stream()
        finally:
            if stream is not None and receive is not None:
                stream.detach(receive)
                if stream.finished:
                    live.transport.forget(stream)

    async def _delete(self, ex: HttpExchange, principal: Principal | None) -> None:
        session_id = ex.headers.get("mcp-session-id")
        if session_id is None:
            await self._error(
                ex, 400, -32000, "Bad Request: DELETE needs the Mcp-Session-Id header"
            )
            return
        live = await self._session(ex, session_id, principal)
        if live is None:
            return
        await self.sessions.close(session_id)
        await self._close_live(session_id)
        await ex.respond(200, [("content-type", _JSON)], b"{}")

    # -- deprecated HTTP+SSE (2024-11-05) -----------------------------------------------------

    async def _legacy_sse_get(self, ex: HttpExchange, principal: Principal | None) -> None:
        if self._shutting_down.is_set():
            await self._error(ex, 503, -32000, "the server is shutting down")
            return
        if self.stream_budget.full:
            self.stream_budget.refuse()
            await self._over_budget(
                ex,
                "streams",
                f"server busy: {self.config.max_streams} streams open, its limit"
                " (max_streams); retry shortly",
            )
            return
        record = await self._create_session(ex, principal)
        if record is None:
            return
        live = await self._start_live(record.id)
        live.legacy_sse = True
        if live.handler is not None:
            live.handler.principal = principal
        self.stream_budget.acquire()
        live.streams += 1
        standalone = live.transport.standalone
        receive = standalone.attach()
        try:
            await ex.start_stream(200, list(_SSE_HEADERS))
            endpoint = f"{self.config.messages_path}?session_id={record.id}"
            await ex.send_chunk(encode_event(endpoint, event="endpoint"))
            # Every message of the session, responses included, goes on this one stream.
            self._open_streams += 1
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._cancel_on, nursery.cancel_scope, ex, live)
                    keepalive = self.config.keepalive_interval
                    while True:
                        with trio.move_on_after(keepalive) as idle:
                            try:
                                _event_id, message = await receive.receive()
                            except (trio.EndOfChannel, trio.ClosedResourceError):
                                break
                        if idle.cancelled_caught:
                            await ex.send_chunk(encode_comment())
                            continue
                        await ex.send_chunk(
                            self._count_out(
                                encode_event(orjson.dumps(message.to_dict()), event="message")
                            )
                        )
                        standalone.wrote()
                    nursery.cancel_scope.cancel()
            finally:
                self._open_streams -= 1
        finally:
            self._close_stream(live)
            standalone.detach(receive)
            with trio.CancelScope(shield=True):
                with contextlib.suppress(SessionNotFound):  # it may have expired meanwhile
                    await self.sessions.close(record.id)
                await self._close_live(record.id)

    async def _legacy_sse_post(self, ex: HttpExchange, principal: Principal | None) -> None:
        session_id = None
        for part in ex.query_string.split("&"):
            key, _, value = part.partition("=")
            if key == "session_id":
                session_id = value
        if not session_id:
            await self._error(ex, 400, -32000, "the session_id query parameter is required")
            return
        incoming = await self._read_messages(ex)
        if incoming is None:
            return
        if not await self._check_scopes(ex, principal, incoming):
            return
        live = self._live.get(session_id)
        if (
            live is None
            or not live.legacy_sse
            or live.handler is None
            or principal_key(live.handler.principal) != principal_key(principal)
        ):
            await self._error(ex, 404, -32001, "Session not found; open a new /sse stream")
            return
        live.handler.principal = principal
        self._live[session_id] = self._live.pop(session_id)
        self.sessions.touch(session_id)
        await live.transport.deliver(incoming)
        await ex.respond(202, [("content-type", "text/plain")], b"Accepted")


async def serve_http(
    server: Server,
    config: HttpConfig | None = None,
    *,
    event_store: EventStore | None = None,
    session_manager: SessionManager | None = None,
    auth: AuthConfig | ResourceServer | None = None,
    store: StoreConfig | None = None,
    interceptors: InterceptorChain | None = None,
    task_status: trio.TaskStatus[HttpServerInfo] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``server`` over Streamable HTTP until cancelled.

    ``url = (await nursery.start(serve_http, server, HttpConfig(port=0))).url``.
    ``config.server`` picks the HTTP implementation: ``"hypercorn"`` (ASGI) or ``"h11"``
    (h11 directly on trio streams, several times cheaper per request); both run the same
    endpoint. Cancelling it shuts down gracefully: no new connections, SSE streams end
    cleanly (clients may resume elsewhere), in-flight requests get
    ``server.config.shutdown_grace`` seconds, then everything is cancelled.

    ``auth`` (or ``config.auth``) makes it an OAuth resource server: every MCP request needs
    a valid bearer token, and the Protected Resource Metadata is served.

    At start the soft open-file limit is raised as far as the process may (the hard limit);
    with the h11 server, ``config.max_connections`` unset is derived from the result.

    ``store`` names where sessions, events and the tasks of ``server.enable_tasks()`` (when
    it was given no store) are kept; it is opened before serving and closed after, and
    ``event_store`` and ``session_manager``, when given, take precedence over it.

    ``interceptors`` run on every message of this endpoint, around ``server.interceptors``.
    """
    if store is not None:
        await serve_with_stores(
            serve_http,
            server,
            config if config is not None else HttpConfig(),
            store,
            event_store=event_store,
            session_manager=session_manager,
            auth=auth,
            interceptors=interceptors,
            task_status=task_status,
        )
        return
    cfg = config if config is not None else HttpConfig()
    tls = _server_tls(cfg)
    endpoint = HttpEndpoint(
        server,
        cfg,
        event_store=event_store,
        session_manager=session_manager,
        auth=auth,
        interceptors=interceptors,
    )
    fd_limit = raise_file_limit()
    max_connections = cfg.max_connections
    if max_connections is None:
        max_connections = connection_cap(
            fd_limit, cfg.reserved_file_descriptors, cfg.health_connections
        )
    if cfg.server == "h11":
        endpoint.connection_budget = Budget("connections", max_connections)
        endpoint.health_connection_budget = Budget("health_connections", cfg.health_connections)
    grace = server.config.shutdown_grace
    host = f"[{cfg.host}]" if ":" in cfg.host and not cfg.host.startswith("[") else cfg.host
    shutdown = trio.Event()
    finished = trio.Event()
    scope_box: list[trio.CancelScope] = []

    async def run(task_status: trio.TaskStatus[list[str]]) -> None:
        # Shielded: cancelling serve_http starts a graceful shutdown below instead
        # of tearing connections down mid-response.
        with trio.CancelScope(shield=True) as scope:
            scope_box.append(scope)
            try:
                if cfg.server == "h11":
                    from .._transports.http.h11 import serve_h11

                    await serve_h11(
                        endpoint.handle,
                        host=cfg.host,
                        port=cfg.port,
                        max_body=cfg.max_body_bytes,
                        request_header_timeout=cfg.header_timeout,
                        body_timeout=cfg.body_timeout,
                        min_body_rate=cfg.min_body_rate,
                        body_rate_grace=cfg.body_rate_grace,
                        background=endpoint.run,
                        shutdown_trigger=shutdown.wait,
                        graceful_timeout=grace,
                        max_connections=max_connections,
                        reserve_connections=cfg.health_connections,
                        reserve_handler=endpoint.handle_reserved,
                        connection_budget=endpoint.connection_budget,
                        reserve_budget=endpoint.health_connection_budget,
                        on_shutdown=endpoint.begin_shutdown,
                        ssl_context=tls.context if tls is not None else None,
                        task_status=task_status,
                    )
                else:
                    await _serve_hypercorn(
                        endpoint, cfg, host, grace, shutdown, task_status, tls=tls
                    )
            finally:
                finished.set()

    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(run)
        scheme = "https" if tls is not None else "http"
        base = binds[0] if binds else f"{scheme}://{host}:{cfg.port}"
        # Tokens must be issued for this very URL (RFC 8707 audience). A wildcard address
        # names no URL clients use: then each request's Host stands for it.
        wildcard = cfg.host in ("0.0.0.0", "::", "[::]", "")
        if endpoint.auth is not None and endpoint.auth.resource is None and not wildcard:
            endpoint.auth.resource = f"{base}{cfg.path}"
        if tls is not None:
            nursery.start_soon(tls.watch)
        task_status.started(HttpServerInfo(url=f"{base}{cfg.path}", endpoint=endpoint, tls=tls))
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                shutdown.set()
                if cfg.server != "h11":
                    # h11 calls it itself once it stops taking requests, so connections
                    # whose stream ends then close instead of waiting for another one.
                    endpoint.begin_shutdown()
                with trio.move_on_after(grace + 1 if math.isfinite(grace) else 10):
                    await finished.wait()
                for scope in scope_box:
                    scope.cancel()


async def serve_with_stores(
    serve: Callable[..., Any],
    server: Server,
    config: HttpConfig,
    store: StoreConfig,
    *,
    event_store: EventStore | None,
    session_manager: SessionManager | None,
    task_status: trio.TaskStatus[Any],
    **options: Any,
) -> None:
    """Open ``store`` and run ``serve`` (``serve_http``) with its stores until it returns;
    ``options`` go to ``serve`` as they are."""
    async with open_stores(
        store.url,
        max_events_per_stream=config.event_history,
        max_event_age=config.event_history_age,
        max_event_bytes_per_stream=store.event_bytes_per_stream,
        max_event_bytes=store.event_bytes_total,
    ) as stores:
        if session_manager is None:
            session_manager = SessionManager(
                stores.sessions,
                SessionConfig(
                    idle_timeout=config.session_idle_timeout, max_sessions=config.max_sessions
                ),
                clock=stores.clock or trio.current_time,
            )
        tasks = server.task_manager
        # Only a default store is replaced: one the application chose is its own business.
        swap = (
            tasks is not None
            and stores.kind != "memory"
            and isinstance(tasks.store, MemoryTaskStore)
            and len(tasks.store) == 0
        )
        previous = tasks.store if tasks is not None else None
        if swap:
            assert tasks is not None
            tasks.store = stores.tasks
        try:
            await serve(
                server,
                config,
                event_store=event_store if event_store is not None else stores.events,
                session_manager=session_manager,
                task_status=task_status,
                **options,
            )
        finally:
            if swap:
                assert tasks is not None and previous is not None
                tasks.store = previous


async def _serve_hypercorn(
    endpoint: HttpEndpoint,
    cfg: HttpConfig,
    host: str,
    grace: float,
    shutdown: trio.Event,
    task_status: trio.TaskStatus[list[str]],
    *,
    tls: ServerTls | None,
) -> None:
    import hypercorn.config
    import hypercorn.trio

    hconfig = hypercorn.config.Config()
    if tls is not None:
        hconfig = _hypercorn_tls_config(tls)
        hconfig.ssl_handshake_timeout = cfg.header_timeout
    hconfig.bind = [f"{host}:{cfg.port}"]
    hconfig.graceful_timeout = grace
    hconfig.accesslog = None
    hconfig.errorlog = None
    # Hypercorn counts a connection whose request head is still arriving as idle: its
    # keep-alive timeout is the only bound it puts on a slow head (it closes, without a 408).
    hconfig.keep_alive_timeout = cfg.header_timeout
    # Hypercorn's default (100) makes clients arriving together wait for SYN retries.
    hconfig.backlog = 4096
    # Hypercorn has no cap on connections: the TCP budget does not exist there. Its accept
    # loop (trio.serve_listeners) logs every failed accept with a traceback, ten a second
    # while out of descriptors: one line per minute gets through.
    quiet = _OncePerInterval(60.0)
    accept_log = logging.getLogger("trio.serve_listeners")
    accept_log.addFilter(quiet)
    app: Any = endpoint.asgi_app()
    try:
        await hypercorn.trio.serve(
            app, hconfig, shutdown_trigger=shutdown.wait, task_status=task_status
        )
    finally:
        accept_log.removeFilter(quiet)


class _OncePerInterval(logging.Filter):
    """Let one record through per ``interval`` seconds (a log line per episode, not a storm)."""

    def __init__(self, interval: float) -> None:
        super().__init__()
        self.interval = interval
        self.last = -math.inf
        self.dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        if now - self.last < self.interval:
            self.dropped += 1
            return False
        self.last = now
        if self.dropped:
            record.msg = f"{record.msg} ({self.dropped} more since the last report)"
            self.dropped = 0
        return True


def _server_tls(cfg: HttpConfig) -> ServerTls | None:
    if cfg.tls.certfile is None:
        return None
    # Hypercorn speaks HTTP/2 when the client picks it through ALPN; our h11 adapter
    # speaks HTTP/1.1 only, so it must not offer h2.
    alpn = ("h2", "http/1.1") if cfg.server == "hypercorn" else ("http/1.1",)
    return ServerTls(cfg.tls, alpn=alpn)


def _hypercorn_tls_config(tls: ServerTls) -> Any:
    """Hypercorn settings that listen with TLS and wrap sockets with ``tls.context``."""
    import hypercorn.config

    class HypercornTlsConfig(hypercorn.config.Config):
        def create_ssl_context(self) -> ssl.SSLContext:
            return tls.context

    hconfig = HypercornTlsConfig()
    # Hypercorn listens with TLS when both are set; it does not read the files itself,
    # since its context comes from create_ssl_context above.
    hconfig.certfile = tls.config.certfile
    hconfig.keyfile = tls.config.keyfile or tls.config.certfile
    return hconfig
