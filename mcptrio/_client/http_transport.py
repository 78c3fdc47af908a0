"""Streamable HTTP client transport for both protocol eras, with resumption,
re-initialization and the HTTP+SSE fallback.

Every outgoing message is its own POST. Each request's reply (one JSON body or an SSE stream)
is read by its own task, so many requests run at once.

Legacy era (2024-11-05 .. 2025-11-25): server-initiated messages arrive on a GET stream opened
once the handshake is done. A stream that drops before answering is resumed with
``Last-Event-ID`` after the server's ``retry`` delay. A 404 for a known session re-runs the
handshake and re-sends the request under its original id. A server that only speaks the
deprecated HTTP+SSE transport (2024-11-05) is detected on the first ``initialize`` POST and used
through the ``endpoint`` its event stream announces.

Modern era (2026-07-28): a request whose ``params._meta`` names a 2026 protocol version is sent
statelessly, without session id, with the ``MCP-Protocol-Version``, ``Mcp-Method``, ``Mcp-Name``
and ``Mcp-Param-*`` headers mirrored from its body (the client layer hands the transport each
tool's ``x-mcp-header`` paths from its ``tools/list`` results, through
:meth:`HttpClientTransport.set_tool_headers`). Its stream is never resumed, and cancelling it
closes the stream instead of posting ``notifications/cancelled``.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import math
import secrets
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Final, Literal, TypeAlias

import attrs
import httpx
import orjson
import trio

from .._auth.oauth_client import OAuthError
from .._ops.config import HttpClientConfig
from .._protocol.errors import ConnectionClosed, ParseError
from .._protocol.http_headers import (
    HeaderPaths,
    encode_header_value,
    mcp_param_headers,
)
from .._protocol.jsonrpc import (
    ErrorResponse,
    InvalidMessage,
    Message,
    Notification,
    Request,
    RequestId,
    Response,
    decode,
    encode,
    encode_batch,
)
from .._protocol.methods import name_source
from .._protocol.sse import SSEDecoder, SSEError, SSEEvent
from .._protocol.versions import META_PROTOCOL_VERSION, Era, era_of
from .._runtime.groups import unwrap_single_error
from .._runtime.transport import Incoming, TransportBase
from .._transports.http.tls import client_ssl_context
from .._transports.stream import DEFAULT_MAX_MESSAGE_BYTES

__all__ = [
    "HttpClientStatistics",
    "HttpClientTransport",
    "HttpMode",
    "SessionExpiredCallback",
    "open_http_transport",
]

log = logging.getLogger("mcptrio.http_client")

HttpMode: TypeAlias = Literal["streamable-http", "sse"]
"""Which HTTP transport a server speaks: Streamable HTTP, or the deprecated HTTP+SSE."""

SessionExpiredCallback: TypeAlias = Callable[[str], Awaitable[None]]
"""Called with the old session id when the server answers 404 for it."""

_MAX_REISSUES: Final = 2
_ERROR_BODY_BYTES: Final = 64 * 1024
_PREVIEW_CHARS: Final = 300
_DELETE_TIMEOUT: Final = 2.0
_ENDPOINT_TIMEOUT: Final = 10.0
# No read timeout: a tool may think for minutes and an event stream may idle for hours;
# callers bound their waits with trio.fail_after.
_TIMEOUT: Final = httpx.Timeout(connect=10.0, read=None, write=30.0, pool=30.0)

# Errors raised before the request left: it can be sent again elsewhere, nothing was lost.
# Failed authorization counts too: the server refused the request (401/403) or never got it.
_NOT_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, OAuthError)

_JSON: Final = "application/json"
_EVENT_STREAM: Final = "text/event-stream"
_ACCEPT_POST: Final = "application/json, text/event-stream"
_GENERIC_SERVER_ERROR: Final = -32000
_LOCAL_ERROR: Final = ConnectionClosed.default_code


@attrs.frozen
class HttpClientStatistics:
    """Counters of one :class:`HttpClientTransport` at one moment."""

    mode: HttpMode | None
    session_id: str | None
    protocol_version: str | None
    posts: int
    gets: int
    deletes: int
    sse_streams: int
    resumptions: int
    reinitializations: int
    http_errors: int
    messages_received: int
    invalid_messages: int
    requests_in_flight: int
    bytes_sent: int
    bytes_received: int


class _Result(enum.Enum):
    ANSWERED = enum.auto()  # the response to the request arrived
    ACCEPTED = enum.auto()  # 202: the answer comes on another stream (HTTP+SSE)
    DROPPED = enum.auto()  # an event stream ended before the response
    EXPIRED = enum.auto()  # 404 for the session id that was sent
    FAILED = enum.auto()  # an error response was delivered for the request
    FALLBACK = enum.auto()  # the first POST looks like an HTTP+SSE server: try its GET


class _TooLarge(Exception):
    pass


class _Cursor:
    """Where one event stream is: what to resume from, how long to wait first (the
    server's ``retry`` hint, when it gave one) and how the stream last ended."""

    __slots__ = ("ended", "events", "last_event_id", "retry_ms")

    def __init__(self) -> None:
        self.last_event_id: str | None = None
        self.retry_ms: int | None = None
        self.events = 0
        self.ended = "the server ended the stream"


class _Exchange:
    """One outgoing request until its response has been delivered (or replaced by an error)."""

    __slots__ = (
        "answer",
        "answered",
        "cursor",
        "fallback_error",
        "internal",
        "modern",
        "request",
        "scope",
    )

    def __init__(self, request: Request, *, internal: bool = False) -> None:
        self.request = request
        self.modern = _modern_version(request)
        """The 2026-era version the request names: sent statelessly, never resumed."""
        self.internal = internal
        """Answered inside the transport (a re-initialization), never delivered."""
        self.answer: Response | ErrorResponse | None = None
        self.answered = trio.Event()
        self.scope = trio.CancelScope()
        self.cursor = _Cursor()
        self.fallback_error: ErrorResponse | None = None


class _TransportTasks:
    """The transport's tasks, in the nursery of the ``open_http_transport`` that made it.

    That nursery also runs the body of ``async with``, so the tasks are cancelled as a
    group through a cancel scope each, never through the nursery's own scope.
    """

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self._scopes: set[trio.CancelScope] = set()
        self._cancelled = False

    def cancel(self) -> None:
        """Cancel every task, and each one started from now on."""
        self._cancelled = True
        for scope in list(self._scopes):
            scope.cancel()

    def start_soon(self, fn: Callable[..., Awaitable[object]], *args: Any) -> None:
        self._nursery.start_soon(self._run, fn, args, name=fn)

    async def start(self, fn: Callable[..., Awaitable[object]], *args: Any) -> Any:
        return await self._nursery.start(self._run_started, fn, args, name=fn)

    async def _run(self, fn: Callable[..., Awaitable[object]], args: tuple[Any, ...]) -> None:
        with self._scope():
            await fn(*args)

    async def _run_started(
        self,
        fn: Callable[..., Awaitable[object]],
        args: tuple[Any, ...],
        *,
        task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        with self._scope():
            await fn(*args, task_status=task_status)

    @contextlib.contextmanager
    def _scope(self) -> Iterator[None]:
        with trio.CancelScope() as scope:
            if self._cancelled:
                scope.cancel()
            self._scopes.add(scope)
            try:
                yield
            finally:
                self._scopes.discard(scope)


class HttpClientTransport(TransportBase):
    """A :class:`~mcptrio._runtime.transport.Transport` to one MCP server over HTTP.

    Create it with :func:`open_http_transport`. Speaks Streamable HTTP in both eras (a
    request carrying 2026-07-28 ``_meta`` is sent the modern way) and falls back to the
    deprecated HTTP+SSE transport when the server only speaks that; :attr:`mode` tells which.
    """

    kind = "http"

    def __init__(
        self,
        url: httpx.URL,
        client: httpx.AsyncClient,
        nursery: trio.Nursery,
        *,
        headers: Mapping[str, str],
        auth: httpx.Auth | tuple[str, str] | None,
        config: HttpClientConfig,
        terminate_on_close: bool,
        reinitialize: bool,
        on_session_expired: SessionExpiredCallback | None,
        open_get_stream: bool,
        max_message_bytes: int,
        max_buffered_messages: int,
        max_concurrent_requests: int,
    ) -> None:
        self._url = url
        self._client = client
        self._tasks = _TransportTasks(nursery)
        self._extra_headers = dict(headers)
        self._auth = auth
        self._config = config
        self._terminate_on_close = terminate_on_close
        self._reinitialize_enabled = reinitialize
        self._on_session_expired = on_session_expired
        self._open_get_stream = open_get_stream
        self._max_message_bytes = max_message_bytes
        self._incoming_send, self._incoming_receive = trio.open_memory_channel[Incoming](
            max_buffered_messages
        )
        self._limiter = trio.CapacityLimiter(max_concurrent_requests)
        self._exchanges: dict[RequestId, _Exchange] = {}
        self._mode: HttpMode | None = None
        self._probe: trio.Event | None = None
        self._endpoint: httpx.URL | None = None
        self._session_id: str | None = None
        self._protocol_version: str | None = None
        self._modern: str | None = None
        self._tool_headers: dict[str, HeaderPaths] = {}
        self._init_request: Request | None = None
        self._initialized: Notification | None = None
        self._generation = 0
        self._reinit_done: trio.Event | None = None
        self._reinit_problem: str | None = None
        self._session_lost = False  # expired, and re-initializing it failed: try again
        self._session_ready = trio.Event()
        self._session_ready.set()
        self._session_expired = trio.Event()
        self._get_scope: trio.CancelScope | None = None
        self._closed = False
        self._broken: str | None = None
        self._posts = 0
        self._gets = 0
        self._deletes = 0
        self._sse_streams = 0
        self._resumptions = 0
        self._reinitializations = 0
        self._http_errors = 0
        self._messages_received = 0
        self._invalid_messages = 0
        self._bytes_sent = 0
        self._bytes_received = 0

    # -- public state ---------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {str(self._url)!r} mode={self._mode}>"

    @property
    def url(self) -> str:
        """The MCP endpoint this transport was opened on."""
        return str(self._url)

    @property
    def mode(self) -> HttpMode | None:
        """``"streamable-http"`` or ``"sse"`` once the first POST told; None before."""
        return self._mode

    @property
    def session_id(self) -> str | None:
        """The ``Mcp-Session-Id`` the server assigned, if any."""
        return self._session_id

    @property
    def protocol_version(self) -> str | None:
        """The revision in use: learnt from the ``initialize`` result, or the 2026-era
        version of the requests once the server answered one."""
        return self._protocol_version

    @property
    def origin(self) -> str:
        """``scheme://host:port`` of the endpoint (what era decisions are cached by)."""
        port = self._url.port or (443 if self._url.scheme == "https" else 80)
        return f"{self._url.scheme}://{self._url.host}:{port}"

    @property
    def tool_headers(self) -> Mapping[str, HeaderPaths]:
        """The ``x-mcp-header`` paths mirrored on 2026-07-28 ``tools/call`` POSTs, by tool."""
        return self._tool_headers

    def set_tool_headers(self, tool: str, paths: HeaderPaths) -> None:
        """Mirror ``paths`` of ``tool``'s arguments as ``Mcp-Param-*`` headers on its
        2026-07-28 calls (no paths: none). The client sets them from ``tools/list``."""
        if paths:
            self._tool_headers[tool] = dict(paths)
        else:
            self._tool_headers.pop(tool, None)

    @property
    def session_expired(self) -> trio.Event:
        """Set when the server answers 404 for the current session.

        A successful re-initialization starts a new session with a fresh event, so read
        this property again after waking up.
        """
        return self._session_expired

    def statistics(self) -> HttpClientStatistics:
        """A snapshot of this transport's counters."""
        return HttpClientStatistics(
            mode=self._mode,
            session_id=self._session_id,
            protocol_version=self._protocol_version,
            posts=self._posts,
            gets=self._gets,
            deletes=self._deletes,
            sse_streams=self._sse_streams,
            resumptions=self._resumptions,
            reinitializations=self._reinitializations,
            http_errors=self._http_errors,
            messages_received=self._messages_received,
            invalid_messages=self._invalid_messages,
            requests_in_flight=sum(
                1 for e in self._exchanges.values() if not (e.internal or e.answered.is_set())
            ),
            bytes_sent=self._bytes_sent,
            bytes_received=self._bytes_received,
        )

    # -- Transport ------------------------------------------------------------------------

    async def send(self, message: Message, *, related_request_id: RequestId | None = None) -> None:
        """POST one message.

        A request returns as soon as a task reading its reply has started (waiting while
        ``max_concurrent_requests`` are in flight); its response, or an error response when
        HTTP fails, arrives through :meth:`receive`. Notifications and responses return
        once the server accepted them. Raises :class:`trio.BrokenResourceError` when the
        server cannot be reached and :class:`trio.ClosedResourceError` after :meth:`aclose`.
        """
        self._check_open()
        if (
            isinstance(message, Notification)
            and message.method == "notifications/cancelled"
            and self._close_modern_stream((message.params or {}).get("requestId"))
        ):
            return
        probe = await self._settle_mode(message)
        if isinstance(message, Request):
            if message.method == "initialize":
                self._init_request = message
                self._modern = None
            elif (version := _modern_version(message)) is not None:
                self._modern = version
            exchange = _Exchange(message)
            self._exchanges[message.id] = exchange
            try:
                self._check_open()
                await self._tasks.start(self._run_request, exchange, probe)
            except BaseException as exc:
                # The task never started, so it cleans up nothing: do it here.
                if self._exchanges.get(message.id) is exchange:
                    del self._exchanges[message.id]
                if probe:
                    self._end_probe()
                if isinstance(exc, RuntimeError):  # the task nursery closed under us
                    raise trio.ClosedResourceError(f"{self!r} is closed") from exc
                raise
            return
        if isinstance(message, Notification) and message.method == "notifications/initialized":
            self._initialized = message
        await self._send_oneway(message)
        if isinstance(message, Notification):
            if message.method == "notifications/initialized":
                self._start_get_stream()
            elif message.method == "notifications/cancelled":
                # The server will not answer a cancelled request: stop reading its stream.
                cancelled = self._exchanges.get((message.params or {}).get("requestId"))  # type: ignore[arg-type]
                if cancelled is not None:
                    cancelled.scope.cancel()

    def _close_modern_stream(self, request_id: Any) -> bool:
        """2026-07-28: closing a request's response stream is its cancellation, and no
        notification is posted. True when ``request_id`` is handled that way."""
        exchange = self._exchanges.get(request_id)
        if exchange is None:
            return self._modern is not None
        if exchange.modern is None:
            return False
        exchange.scope.cancel()
        return True

    async def send_batch(self, messages: list[Message]) -> None:
        """POST several messages as one JSON array (2025-03-26)."""
        if not messages:
            raise ValueError("a batch needs at least one message")
        self._check_open()
        await self._settle_mode(messages[0])
        await self._send_oneway(messages)

    async def receive(self) -> Incoming:
        """The next message from the server, from whichever stream carried it.

        Raises :class:`trio.EndOfChannel` once the transport is closed (or the HTTP+SSE
        stream ended).
        """
        return await self._incoming_receive.receive()

    async def aclose(self) -> None:
        """Stop every stream reader, end the session with ``DELETE`` (when
        ``terminate_on_close``), and end :meth:`receive`. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._tasks.cancel()
        session = self._session_id
        try:
            if self._terminate_on_close and session is not None and self._mode != "sse":
                with trio.CancelScope(shield=True) as scope:
                    scope.relative_deadline = _DELETE_TIMEOUT
                    await self._delete_session(session)
        finally:
            await self._incoming_send.aclose()

    # -- helpers --------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError(f"{self!r} is closed")
        if self._broken is not None:
            raise trio.BrokenResourceError(self._broken)

    async def _settle_mode(self, message: Message) -> bool:
        """Wait until the first POST has told which transport the server speaks.

        Returns True when ``message`` is that first POST (an ``initialize``), which may
        fall back to HTTP+SSE.
        """
        while self._mode is None:
            if self._probe is None:
                if isinstance(message, Request) and message.method == "initialize":
                    self._probe = trio.Event()
                    return True
                if _modern_version(message) is not None:
                    # An era probe: a refusal sends the client to ``initialize``, which then
                    # decides between Streamable HTTP and HTTP+SSE.
                    return False
                self._mode = "streamable-http"
                break
            await self._probe.wait()
        return False

    def _end_probe(self) -> None:
        probe, self._probe = self._probe, None
        if probe is not None:
            probe.set()

    def _post_url(self) -> httpx.URL:
        if self._mode == "sse" and self._endpoint is not None:
            return self._endpoint
        return self._url

    def _headers(
        self,
        accept: str,
        session: str | None,
        *,
        body: bool = False,
        version: bool = True,
        last_event_id: str | None = None,
    ) -> httpx.Headers:
        headers = httpx.Headers(self._extra_headers)
        headers["Accept"] = accept
        if body:
            headers["Content-Type"] = _JSON
        if self._mode != "sse":
            if session is not None:
                headers["Mcp-Session-Id"] = session
            if version and self._protocol_version is not None:
                headers["MCP-Protocol-Version"] = self._protocol_version
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        return headers

    @asynccontextmanager
    async def _open(
        self, method: str, url: httpx.URL, headers: httpx.Headers, content: bytes | None = None
    ) -> AsyncIterator[httpx.Response]:
        if method == "POST":
            self._posts += 1
        elif method == "GET":
            self._gets += 1
        if content is not None:
            self._bytes_sent += len(content)
        async with self._client.stream(
            method,
            url,
            content=content,
            headers=headers,
            timeout=_TIMEOUT,
            auth=self._auth if self._auth is not None else httpx.USE_CLIENT_DEFAULT,
            follow_redirects=True,
        ) as response:
            yield response

    async def _read_body(self, response: httpx.Response, limit: int, *, truncate: bool) -> bytes:
        """The response body, at most ``limit`` bytes (cut there, or :class:`_TooLarge`)."""
        buf = bytearray()
        async for chunk in response.aiter_bytes():
            self._bytes_received += len(chunk)
            buf += chunk
            if len(buf) > limit:
                if truncate:
                    return bytes(buf[:limit])
                raise _TooLarge
        return bytes(buf)

    async def _error_body(self, response: httpx.Response) -> bytes:
        self._http_errors += 1
        try:
            return await self._read_body(response, _ERROR_BODY_BYTES, truncate=True)
        except httpx.TransportError:
            return b""

    def _local_error(self, request_id: RequestId | None, message: str) -> ErrorResponse:
        return ErrorResponse(request_id, _LOCAL_ERROR, message)

    async def _deliver(self, incoming: Incoming) -> None:
        """Hand a message to :meth:`receive`, noting the answers the transport waits for."""
        items = incoming if isinstance(incoming, list) else [incoming]
        swallow = False
        for item in items:
            if not isinstance(item, Response | ErrorResponse) or item.id is None:
                continue
            exchange = self._exchanges.get(item.id)
            if exchange is not None and not exchange.answered.is_set():
                exchange.answer = item
                exchange.answered.set()
                swallow = swallow or exchange.internal
                if exchange.modern is not None and isinstance(item, Response):
                    self._protocol_version = exchange.modern
            init = self._init_request
            if init is not None and item.id == init.id and isinstance(item, Response):
                self._learn_version(item.result)
        if swallow and not isinstance(incoming, list):
            return
        self._messages_received += len(items)
        with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
            await self._incoming_send.send(incoming)

    async def _deliver_data(self, data: str) -> None:
        if not data.strip():
            return  # a priming event: it carries only an id to resume from
        try:
            incoming = decode(data)
        except (ParseError, InvalidMessage) as exc:
            self._invalid_messages += 1
            log.warning("ignored an invalid message from %s: %s", self._url, exc.message)
            return
        await self._deliver(incoming)

    async def _fail(self, exchange: _Exchange, error: ErrorResponse) -> None:
        """Answer ``exchange`` with ``error`` unless the server already answered it."""
        if exchange.answered.is_set():
            return
        if exchange.internal:
            exchange.answer = error
            exchange.answered.set()
            return
        log.debug("%s: %s", self._url, error.message)
        await self._deliver(attrs.evolve(error, id=exchange.request.id))

    def _learn_version(self, result: dict[str, Any]) -> None:
        version = result.get("protocolVersion")
        if isinstance(version, str):
            self._protocol_version = version

    def _learn_session(self, response: httpx.Response) -> None:
        session = response.headers.get("mcp-session-id")
        if session is not None and not _valid_session_id(session):
            log.warning(
                "%s assigned a session id that is not visible ASCII (%r); ignoring it",
                self._url,
                session[:_PREVIEW_CHARS],
            )
            session = None
        self._session_id = session

    def _http_error(
        self, request_id: RequestId | None, what: str, response: httpx.Response, body: bytes
    ) -> ErrorResponse:
        return _http_error_response(
            request_id, f"{what} ({response.request.method} {self._url})", response, body
        )

    # -- requests -------------------------------------------------------------------------

    async def _run_request(
        self,
        exchange: _Exchange,
        probe: bool,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        try:
            async with self._limiter:
                task_status.started()
                with exchange.scope:
                    await self._drive(exchange, probe)
        finally:
            request_id = exchange.request.id
            if self._exchanges.get(request_id) is exchange:
                del self._exchanges[request_id]
            if probe:
                self._end_probe()

    async def _drive(self, exchange: _Exchange, probe: bool) -> None:
        """POST a request and see it answered: resume dropped streams, re-initialize
        expired sessions, fall back to HTTP+SSE; deliver an error when all that fails."""
        reissues = 0
        if not exchange.internal and not await self._recover_session():
            await self._fail(exchange, self._expired_error(exchange))
            return
        while True:
            if not exchange.internal:
                await self._session_ready.wait()
            generation = self._generation
            result = await self._post_request(exchange, probe=probe)
            if result is _Result.FALLBACK:
                result = await self._fall_back(exchange)
            probe = False
            if result is _Result.DROPPED and exchange.modern is not None:
                await self._fail(
                    exchange,
                    self._local_error(
                        None,
                        f"the server closed the response stream of {_describe(exchange.request)}"
                        f" before answering; {exchange.modern} streams cannot be resumed, so"
                        " send the request again",
                    ),
                )
                return
            if result is _Result.DROPPED:
                result = await self._resume(exchange, generation)
            if result is _Result.EXPIRED:
                if (
                    not exchange.internal
                    and reissues < _MAX_REISSUES
                    and await self._reinitialize(generation)
                ):
                    reissues += 1
                    exchange.cursor = _Cursor()
                    continue
                await self._fail(exchange, self._expired_error(exchange))
            elif result is _Result.ACCEPTED and self._mode != "sse":
                await self._fail(
                    exchange,
                    self._local_error(
                        None,
                        f"the server accepted {_describe(exchange.request)} (HTTP 202) but"
                        " sent no response for it",
                    ),
                )
            return

    async def _post_request(self, exchange: _Exchange, *, probe: bool = False) -> _Result:
        request = exchange.request
        if not exchange.internal:
            await self._session_ready.wait()
        modern = exchange.modern
        session = self._session_id if modern is None else None
        initialize = request.method == "initialize"
        body = encode(request)
        url = self._post_url()
        what = _describe(request)
        headers = self._headers(
            _ACCEPT_POST, session, body=True, version=not initialize and modern is None
        )
        if modern is not None:
            headers.update(_modern_request_headers(request, modern, self._tool_headers))
        try:
            async with self._open("POST", url, headers, body) as response:
                status = response.status_code
                if status == 404 and session is not None and self._mode != "sse":
                    return _Result.EXPIRED
                if not response.is_success:
                    error_body = await self._error_body(response)
                    error = self._http_error(request.id, what, response, error_body)
                    if probe and _looks_like_http_sse(status, error_body):
                        exchange.fallback_error = error
                        return _Result.FALLBACK
                    if probe:
                        self._mode = "streamable-http"
                    await self._fail(exchange, error)
                    return _Result.FAILED
                if probe or self._mode is None:
                    self._mode = "streamable-http"
                if initialize and self._mode == "streamable-http":
                    self._learn_session(response)
                if self._mode == "sse":
                    return _Result.ACCEPTED
                return await self._read_reply(exchange, response)
        except httpx.TransportError as exc:
            tls_hint = _tls_hint(url, exc)
            if isinstance(exc, _NOT_SENT) or tls_hint:
                message = f"could not send {what} to the MCP server at {url}: {_exc_text(exc)}"
            else:
                message = _unresumable_reply(what, "the connection broke", exc)
            await self._fail(exchange, self._local_error(None, message + tls_hint))
            return _Result.FAILED

    async def _read_reply(self, exchange: _Exchange, response: httpx.Response) -> _Result:
        """Read a 2xx reply to a request: an event stream or one JSON body."""
        what = _describe(exchange.request)
        content_type = _content_type(response)
        if content_type == _EVENT_STREAM:
            self._sse_streams += 1
            return await self._read_request_stream(exchange, response)
        if response.status_code in (202, 204):
            return _Result.ACCEPTED
        if exchange.modern is not None and exchange.request.method == "subscriptions/listen":
            return await self._read_json_lines(exchange, response)
        try:
            body = await self._read_body(response, self._max_message_bytes, truncate=False)
        except _TooLarge:
            await self._fail(
                exchange,
                self._local_error(
                    None,
                    f"the server's reply to {what} is larger than max_message_bytes"
                    f" ({self._max_message_bytes} bytes)",
                ),
            )
            return _Result.FAILED
        except httpx.TransportError as exc:
            message = _unresumable_reply(what, "the server's JSON reply broke off", exc)
            await self._fail(exchange, self._local_error(None, message))
            return _Result.FAILED
        if not body.strip():
            return _Result.ACCEPTED
        try:
            incoming = decode(body)
        except (ParseError, InvalidMessage) as exc:
            self._invalid_messages += 1
            await self._fail(
                exchange,
                self._local_error(
                    None,
                    f"the server's reply to {what} ({content_type or 'no content type'}) is"
                    f" not a JSON-RPC message: {exc.message}",
                ),
            )
            return _Result.FAILED
        await self._deliver(incoming)
        if exchange.answered.is_set():
            return _Result.ANSWERED
        await self._fail(
            exchange,
            self._local_error(None, f"the server's JSON reply to {what} did not answer it"),
        )
        return _Result.FAILED

    async def _read_json_lines(self, exchange: _Exchange, response: httpx.Response) -> _Result:
        """A listen stream sent as JSON, one message per line (as the conformance reference
        server does), read as it arrives; a message spread over lines is tolerated."""
        what = _describe(exchange.request)
        buffer = bytearray()
        try:
            async for chunk in response.aiter_bytes():
                self._bytes_received += len(chunk)
                start = 0
                while (end := chunk.find(b"\n", start)) >= 0:
                    buffer += chunk[start : end + 1]
                    start = end + 1
                    if buffer.strip() and await self._deliver_line(bytes(buffer)):
                        buffer.clear()
                buffer += chunk[start:]
                if len(buffer) > self._max_message_bytes:
                    await self._fail(
                        exchange,
                        self._local_error(
                            None,
                            f"a message on the stream of {what} is larger than"
                            f" max_message_bytes ({self._max_message_bytes} bytes)",
                        ),
                    )
                    return _Result.FAILED
                if exchange.answered.is_set():
                    return _Result.ANSWERED
        except httpx.TransportError as exc:
            log.debug("listen stream %r dropped: %s", exchange.request.id, _exc_text(exc))
        if buffer.strip() and not await self._deliver_line(bytes(buffer)):
            self._invalid_messages += 1
            log.warning(
                "ignored an invalid message from %s: %s", self._url, _preview(bytes(buffer))
            )
        return _Result.ANSWERED if exchange.answered.is_set() else _Result.DROPPED

    async def _deliver_line(self, data: bytes) -> bool:
        """Deliver one JSON message; False when ``data`` is not a whole message (yet)."""
        try:
            incoming = decode(data)
        except ParseError:
            return False
        except InvalidMessage as exc:
            self._invalid_messages += 1
            log.warning("ignored an invalid message from %s: %s", self._url, exc.message)
            return True
        await self._deliver(incoming)
        return True

    async def _read_request_stream(self, exchange: _Exchange, response: httpx.Response) -> _Result:
        try:
            await self._pump(
                response.aiter_bytes(), self._decoder(), exchange.cursor, until=exchange.answered
            )
        except SSEError as exc:
            await self._fail(
                exchange,
                self._local_error(
                    None, f"the event stream for {_describe(exchange.request)} broke: {exc}"
                ),
            )
            return _Result.FAILED
        except httpx.TransportError as exc:
            log.debug("event stream for %s dropped: %s", exchange.request.id, _exc_text(exc))
            exchange.cursor.ended = f"the stream broke ({_exc_text(exc)})"
        return _Result.ANSWERED if exchange.answered.is_set() else _Result.DROPPED

    def _decoder(self) -> SSEDecoder:
        return SSEDecoder(max_event_bytes=self._max_message_bytes)

    async def _pump(
        self,
        chunks: AsyncIterator[bytes],
        decoder: SSEDecoder,
        cursor: _Cursor,
        *,
        until: trio.Event | None = None,
        on_event: Callable[[SSEEvent], bool] | None = None,
    ) -> None:
        """Deliver an event stream's messages until it ends, ``until`` is set, or
        ``on_event`` (given every non-``message`` event) returns True."""
        async for chunk in chunks:
            self._bytes_received += len(chunk)
            stop = False
            for event in decoder.feed(chunk):
                cursor.events += 1
                if event.id is not None:
                    cursor.last_event_id = event.id or None
                if event.event == "message":
                    await self._deliver_data(event.data)
                elif on_event is not None:
                    stop = on_event(event) or stop
            if decoder.retry is not None:
                cursor.retry_ms = decoder.retry
            if stop or (until is not None and until.is_set()):
                return

    async def _resume(self, exchange: _Exchange, generation: int) -> _Result:
        """GET with ``Last-Event-ID`` until the request is answered or the resumption budget
        (:class:`HttpClientConfig`) is spent.

        Returns EXPIRED when the stream's session is gone: the request must be sent again.
        """
        what = _describe(exchange.request)
        budget = self._config
        attempts = 0
        since = trio.current_time()  # the drop, or the last event received since
        last = exchange.cursor.ended  # what the server did or said last
        while not exchange.answered.is_set():
            cursor = exchange.cursor
            if cursor.last_event_id is None:
                await self._fail(
                    exchange,
                    self._local_error(
                        None,
                        f"the server closed the event stream of {what} before answering, and"
                        " sent no event id to resume it from",
                    ),
                )
                return _Result.FAILED
            deadline = since + budget.resume_window
            remaining = deadline - trio.current_time()
            if attempts >= budget.resume_attempts or remaining <= 0:
                await self._fail(exchange, self._unresumable(what, attempts, since, last))
                return _Result.FAILED
            wait = budget.resume_wait(attempts, cursor.retry_ms)
            with trio.move_on_after(min(wait, remaining)):
                # Another stream may still carry the answer while we wait.
                await exchange.answered.wait()
            if exchange.answered.is_set():
                break
            if wait >= remaining:
                # The next attempt would start after the window: it is over.
                await self._fail(exchange, self._unresumable(what, attempts, since, last))
                return _Result.FAILED
            attempts += 1
            if not exchange.internal:
                await self._session_ready.wait()
                if self._generation != generation:
                    return _Result.EXPIRED
            session = self._session_id
            seen = cursor.events
            # The window bounds reaching the server; a resumed stream then stays open for as
            # long as the request takes.
            with trio.CancelScope(deadline=deadline) as reaching:
                try:
                    async with self._open(
                        "GET",
                        self._url,
                        self._headers(_EVENT_STREAM, session, last_event_id=cursor.last_event_id),
                    ) as response:
                        self._resumptions += 1
                        status = response.status_code
                        if status == 404 and session is not None:
                            return _Result.EXPIRED
                        if response.is_success and _content_type(response) == _EVENT_STREAM:
                            reaching.deadline = math.inf
                            self._sse_streams += 1
                            cursor.ended = "the server ended the resumed stream"
                            await self._pump(
                                response.aiter_bytes(),
                                self._decoder(),
                                cursor,
                                until=exchange.answered,
                            )
                            last = cursor.ended
                        elif status >= 500 or status in (408, 429):
                            body = await self._error_body(response)
                            last = f"{_status(response)}"
                            if body.strip():
                                last += f": {_preview(body)}"
                        else:
                            body = await self._error_body(response)
                            error = self._http_error(
                                None, f"resuming the event stream of {what}", response, body
                            )
                            await self._fail(exchange, error)
                            return _Result.FAILED
                except SSEError as exc:
                    await self._fail(
                        exchange,
                        self._local_error(None, f"the resumed event stream of {what} broke: {exc}"),
                    )
                    return _Result.FAILED
                except httpx.TransportError as exc:
                    last = _exc_text(exc)
                    if cursor.events > seen:
                        last = f"the resumed stream broke ({last})"
            if reaching.cancelled_caught:
                last = "no response to the resuming GET before the window ended"
            if cursor.events > seen:
                attempts = 0
                since = trio.current_time()
        return _Result.ANSWERED

    def _unresumable(self, what: str, attempts: int, since: float, last: str) -> ErrorResponse:
        budget = self._config
        elapsed = trio.current_time() - since
        return self._local_error(
            None,
            f"the event stream of {what} broke and could not be resumed within"
            f" {budget.resume_attempts} attempts / {budget.resume_window:g} s"
            f" ({attempts} made in {elapsed:.1f} s; HttpClientConfig.resume_attempts and"
            f" resume_window set this budget); the server's last word: {last}",
        )

    def _expired_error(self, exchange: _Exchange) -> ErrorResponse:
        what = _describe(exchange.request)
        reason = self._reinit_problem or "the new session expired at once"
        return self._local_error(
            None, f"the server ended the MCP session (HTTP 404) while sending {what}: {reason}"
        )

    # -- sessions -------------------------------------------------------------------------

    async def _recover_session(self) -> bool:
        """After a failed re-initialization, try once more before sending anything new."""
        return not self._session_lost or await self._reinitialize(self._generation)

    async def _reinitialize(self, failed_generation: int) -> bool:
        """Start a new session after a 404; True when requests may be re-sent.

        Everyone who saw the same session expire shares one handshake, which runs in a task
        of its own so that a cancelled caller cannot leave it half done.
        """
        if self._generation == failed_generation and not self._closed:
            done = self._reinit_done
            if done is None:
                done = self._reinit_done = trio.Event()
                # New POSTs wait for the new session instead of sending the dead one.
                self._session_ready = trio.Event()
                self._tasks.start_soon(self._run_reinitialize, done, self._session_ready)
            await done.wait()
        return self._reinit_problem is None

    async def _run_reinitialize(self, done: trio.Event, ready: trio.Event) -> None:
        old_session = self._session_id
        self._session_id = None
        self._session_expired.set()
        if self._get_scope is not None:
            self._get_scope.cancel()
        self._reinit_problem = "the re-initialization was interrupted"
        try:
            if old_session is not None and self._on_session_expired is not None:
                try:
                    await self._on_session_expired(old_session)
                except Exception:
                    log.exception("the on_session_expired callback failed")
            if not self._reinitialize_enabled or self._init_request is None:
                self._reinit_problem = (
                    "re-initialization is turned off; open a new client"
                    if not self._reinitialize_enabled
                    else "no initialize request was seen, so the handshake cannot be repeated"
                )
                # Without a session nothing more can be sent.
                self._broken = f"the server ended the MCP session: {self._reinit_problem}"
            else:
                log.info("%s: session %s expired; re-initializing", self._url, old_session)
                self._reinit_problem = await self._handshake_again(self._init_request)
                self._session_lost = self._reinit_problem is not None
                if self._reinit_problem is None:
                    self._reinitializations += 1
                    self._session_expired = trio.Event()
        finally:
            self._generation += 1
            self._reinit_done = None
            ready.set()
            done.set()
        if self._reinit_problem is None:
            self._start_get_stream()

    async def _handshake_again(self, init: Request) -> str | None:
        """Repeat ``initialize`` + ``notifications/initialized``; the problem, or None."""
        internal_id = f"mcptrio-reinitialize-{secrets.token_hex(8)}"
        exchange = _Exchange(Request(internal_id, "initialize", init.params), internal=True)
        self._exchanges[internal_id] = exchange
        try:
            generation = self._generation
            result = await self._post_request(exchange)
            if result is _Result.DROPPED:
                await self._resume(exchange, generation)
        finally:
            self._exchanges.pop(internal_id, None)
        answer = exchange.answer
        if answer is None:
            return "the server did not answer the new initialize request"
        if isinstance(answer, ErrorResponse):
            return f"the new initialize request failed: {answer.message} (code {answer.code})"
        self._learn_version(answer.result)
        if self._initialized is not None:
            try:
                await self._send_oneway(self._initialized, internal=True)
            except trio.BrokenResourceError as exc:
                return str(exc)
        return None

    async def _delete_session(self, session: str) -> None:
        self._deletes += 1
        try:
            response = await self._client.request(
                "DELETE",
                self._url,
                headers=self._headers(_ACCEPT_POST, session),
                timeout=_TIMEOUT,
                auth=self._auth if self._auth is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.HTTPError as exc:
            log.debug("DELETE of session %s failed: %s", session, _exc_text(exc))
            return
        if response.status_code not in (200, 202, 204, 404, 405):
            log.debug("DELETE of session %s answered HTTP %d", session, response.status_code)

    # -- notifications and responses ------------------------------------------------------

    async def _send_oneway(
        self, message: Message | list[Message], *, internal: bool = False
    ) -> None:
        """POST a notification, a response or a batch; returns once the server accepted it."""
        what = _describe(message)
        body = encode_batch(message) if isinstance(message, list) else encode(message)
        if not internal and not await self._recover_session():
            raise trio.BrokenResourceError(
                f"could not send {what}: the server ended the MCP session and starting a new"
                f" one failed: {self._reinit_problem}"
            )
        for attempt in range(2):
            if not internal:
                await self._session_ready.wait()
            generation = self._generation
            session = self._session_id
            url = self._post_url()
            headers = self._headers(_ACCEPT_POST, session, body=True)
            if self._modern is not None and isinstance(message, Notification):
                headers["MCP-Protocol-Version"] = self._modern
                headers["Mcp-Method"] = message.method
            try:
                async with self._open("POST", url, headers, body) as response:
                    if not (
                        response.status_code == 404 and session is not None and self._mode != "sse"
                    ):
                        await self._read_oneway_reply(response, what)
                        return
            except httpx.TransportError as exc:
                raise trio.BrokenResourceError(
                    f"could not send {what} to the MCP server at {url}: {_exc_text(exc)}"
                ) from exc
            if internal:
                return
            # The session is gone. An answer to one of its requests means nothing to the
            # next session, and re-initializing sends notifications/initialized itself.
            resend = (
                attempt == 0
                and isinstance(message, Notification)
                and message.method != "notifications/initialized"
            )
            if not await self._reinitialize(generation) or not resend:
                log.info("dropped %s: its session expired", what)
                return

    async def _read_oneway_reply(self, response: httpx.Response, what: str) -> None:
        if not response.is_success:
            body = await self._error_body(response)
            log.warning(
                "the MCP server at %s rejected %s: %s %s",
                self._url,
                what,
                _status(response),
                _preview(body),
            )
            return
        if response.status_code in (202, 204):
            return
        # Tolerate servers that answer a notification with messages of their own.
        try:
            if _content_type(response) == _EVENT_STREAM:
                self._sse_streams += 1
                await self._pump(response.aiter_bytes(), self._decoder(), _Cursor())
                return
            body = await self._read_body(response, self._max_message_bytes, truncate=False)
        except (httpx.TransportError, SSEError, _TooLarge) as exc:
            log.debug("ignored a broken reply to %s: %r", what, exc)
            return
        if body.strip():
            with contextlib.suppress(ParseError, InvalidMessage):
                await self._deliver(decode(body))

    # -- the GET stream -------------------------------------------------------------------

    def _start_get_stream(self) -> None:
        if self._mode != "streamable-http" or self._closed or not self._open_get_stream:
            return
        if self._get_scope is not None:
            self._get_scope.cancel()
        scope = trio.CancelScope()
        self._get_scope = scope
        self._tasks.start_soon(self._run_get_stream, scope)

    async def _run_get_stream(self, scope: trio.CancelScope) -> None:
        """Hold the server-to-client stream open, resuming it when it drops."""
        with scope:
            cursor = _Cursor()
            failures = 0
            while True:
                await self._session_ready.wait()
                generation = self._generation
                session = self._session_id
                if cursor.last_event_id is not None:
                    self._resumptions += 1
                seen = cursor.events
                try:
                    async with self._open(
                        "GET",
                        self._url,
                        self._headers(_EVENT_STREAM, session, last_event_id=cursor.last_event_id),
                    ) as response:
                        status = response.status_code
                        if status == 405:
                            log.debug("%s offers no GET stream", self._url)
                            return
                        if status == 404 and session is not None:
                            # Re-initialize lazily, on the next POST: doing it here would
                            # keep an idle client renewing sessions the server lets expire.
                            if self._generation == generation:
                                self._session_expired.set()
                            return
                        if response.is_success and _content_type(response) == _EVENT_STREAM:
                            self._sse_streams += 1
                            await self._pump(response.aiter_bytes(), self._decoder(), cursor)
                        elif 400 <= status < 500 and status not in (408, 429):
                            body = await self._error_body(response)
                            log.warning(
                                "%s refused the GET stream: HTTP %d %s",
                                self._url,
                                status,
                                _preview(body),
                            )
                            return
                        else:
                            await self._error_body(response)
                except SSEError as exc:
                    log.warning("%s: the GET stream broke: %s", self._url, exc)
                    return
                except httpx.TransportError as exc:
                    log.debug("%s: the GET stream dropped: %s", self._url, _exc_text(exc))
                failures = 0 if cursor.events > seen else failures + 1
                if failures > self._config.resume_attempts:
                    log.warning(
                        "%s: gave up on the GET stream after %d attempts without an event",
                        self._url,
                        failures,
                    )
                    return
                await trio.sleep(self._config.resume_wait(max(failures - 1, 0), cursor.retry_ms))

    # -- HTTP+SSE (2024-11-05) ------------------------------------------------------------

    async def _fall_back(self, exchange: _Exchange) -> _Result:
        """The first POST was refused like an HTTP+SSE server would: try its GET stream."""
        error = exchange.fallback_error
        assert error is not None
        endpoint: httpx.URL | None = await self._tasks.start(self._run_legacy_stream)
        if endpoint is None:
            self._mode = "streamable-http"
            await self._fail(
                exchange,
                attrs.evolve(
                    error,
                    message=error.message
                    + "; the server does not offer the HTTP+SSE transport (2024-11-05) either",
                ),
            )
            return _Result.FAILED
        log.info("%s speaks the deprecated HTTP+SSE transport; posting to %s", self._url, endpoint)
        self._endpoint = endpoint
        self._mode = "sse"
        return await self._post_request(exchange)

    async def _run_legacy_stream(
        self, *, task_status: trio.TaskStatus[httpx.URL | None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Read the HTTP+SSE stream: its ``endpoint`` first, then every message."""
        endpoint: httpx.URL | None = None

        def take_endpoint(event: SSEEvent) -> bool:
            nonlocal endpoint
            if event.event != "endpoint" or endpoint is not None:
                return False
            candidate = self._url.join(event.data.strip())
            if (candidate.scheme, candidate.host, candidate.port) != (
                self._url.scheme,
                self._url.host,
                self._url.port,
            ):
                # Our headers (credentials included) must not be sent to another origin.
                log.warning("ignored an HTTP+SSE endpoint on another origin: %s", candidate)
                return False
            endpoint = candidate
            return True

        started = False
        try:
            async with self._open("GET", self._url, self._headers(_EVENT_STREAM, None)) as response:
                if response.is_success and _content_type(response) == _EVENT_STREAM:
                    self._sse_streams += 1
                    decoder = self._decoder()
                    chunks = response.aiter_bytes()
                    with trio.move_on_after(_ENDPOINT_TIMEOUT):
                        await self._pump(chunks, decoder, _Cursor(), on_event=take_endpoint)
                    if endpoint is not None:
                        started = True
                        task_status.started(endpoint)
                        await self._pump(chunks, decoder, _Cursor())
        except (httpx.TransportError, SSEError) as exc:
            log.info("%s: the HTTP+SSE stream ended: %s", self._url, _exc_text(exc))
        if not started:
            task_status.started(None)
            return
        # HTTP+SSE has no resumption: the stream is the connection.
        self._broken = f"the HTTP+SSE event stream from {self._url} ended"
        await self._incoming_send.aclose()


def _modern_version(message: Message | list[Message]) -> str | None:
    """The 2026-era protocol version a request's ``params._meta`` names, else None."""
    if not isinstance(message, Request) or not isinstance(message.params, dict):
        return None
    meta = message.params.get("_meta")
    version = meta.get(META_PROTOCOL_VERSION) if isinstance(meta, dict) else None
    if isinstance(version, str) and era_of(version) is Era.MODERN:
        return version
    return None


def _modern_request_headers(
    request: Request, version: str, tool_headers: Mapping[str, HeaderPaths]
) -> dict[str, str]:
    """The headers a 2026-07-28 POST of ``request`` carries besides Accept/Content-Type."""
    headers = {"MCP-Protocol-Version": version, "Mcp-Method": request.method}
    params = request.params or {}
    source = name_source(request.method)
    name = params.get(source) if source is not None else None
    if isinstance(name, str):
        headers["Mcp-Name"] = encode_header_value(name)
    if request.method == "tools/call" and isinstance(name, str):
        paths = tool_headers.get(name)
        arguments = params.get("arguments")
        if paths and isinstance(arguments, Mapping):
            headers.update(mcp_param_headers(paths, arguments))
    return headers


def _http_error_response(
    request_id: RequestId | None, what: str, response: httpx.Response, body: bytes
) -> ErrorResponse:
    """The error response standing for an HTTP error reply to ``what``.

    A JSON-RPC error in the body is used as it is (with ``request_id``); otherwise the
    code is -32600 for 4xx and -32603 for anything else, and ``data`` carries the status.
    """
    status = response.status_code
    parsed = _rpc_error(body)
    if parsed is not None:
        return ErrorResponse(request_id, *parsed)
    text = _preview(body)
    message = f"the MCP server answered {_status(response)} to {what}"
    if text:
        message += f": {text}"
    return ErrorResponse(
        request_id, -32600 if 400 <= status < 500 else -32603, message, {"httpStatus": status}
    )


def _looks_like_http_sse(status: int, body: bytes) -> bool:
    """Whether a refused first POST may come from an HTTP+SSE server (spec 5.3).

    A Streamable HTTP endpoint always takes POST, so 405 says this URL is something else.
    A 400 or 404 counts unless its body holds a JSON-RPC error that a Streamable HTTP
    server would send about the message itself; the generic -32000 that SDKs put on
    transport-level refusals ("Method not allowed", "Not Found") does not count.
    """
    if status == 405:
        return True
    if status not in (400, 404):
        return False
    error = _rpc_error(body)
    return error is None or error[0] == _GENERIC_SERVER_ERROR


def _rpc_error(body: bytes) -> tuple[int, str, Any] | None:
    """The (code, message, data) of a JSON-RPC error object in ``body``, if there is one."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(obj, list) and len(obj) == 1:
        obj = obj[0]
    if not isinstance(obj, dict):
        return None
    error = obj.get("error")
    if not isinstance(error, dict):
        return None
    code, message = error.get("code"), error.get("message")
    if type(code) is not int or not isinstance(message, str):
        return None
    return code, message, error.get("data")


def _preview(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    if len(text) > _PREVIEW_CHARS:
        text = text[:_PREVIEW_CHARS] + "..."
    return text


def _status(response: httpx.Response) -> str:
    # HTTP/1.1 servers may send no reason phrase at all.
    status = response.status_code
    return f"HTTP {status} {response.reason_phrase or httpx.codes.get_reason_phrase(status)}"


def _content_type(response: httpx.Response) -> str:
    value: str = response.headers.get("content-type", "")
    return value.split(";", 1)[0].strip().lower()


def _valid_session_id(value: str) -> bool:
    return bool(value) and all(0x21 <= ord(c) <= 0x7E for c in value)


def _unresumable_reply(what: str, how: str, exc: BaseException) -> str:
    return (
        f"{how} before the server answered {what} ({_exc_text(exc)}); only an event stream"
        " with an event id can be resumed, and this reply had none: send the request again"
        " if repeating it is safe"
    )


def _exc_text(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _tls_hint(url: httpx.URL, exc: httpx.TransportError) -> str:
    """What went wrong with TLS, when ``exc`` hides it (its own text is often empty)."""
    if url.scheme != "https":
        return ""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f" (the server's certificate was refused: {cause.verify_message}; {cause})"
        if isinstance(cause, ssl.SSLError):
            return f" (TLS failed: {cause})"
        cause = cause.__cause__ or cause.__context__
    # A server refusing a client certificate closes the connection without a TLS alert
    # (trio drops it), so the client sees only a bare read error: say what it may mean.
    if isinstance(exc, httpx.ReadError) and not str(exc):
        return (
            " (the server closed the TLS connection without answering; a server that"
            " requires a client certificate does so when none, or one it does not trust, is"
            " shown: see HttpClientConfig.client_cert)"
        )
    return ""


def _describe(message: Message | list[Message]) -> str:
    if isinstance(message, list):
        return f"a batch of {len(message)} messages"
    if isinstance(message, Request):
        return f"the {message.method} request (id {message.id!r})"
    if isinstance(message, Notification):
        return f"the {message.method} notification"
    return f"the response to request {message.id!r}"


@asynccontextmanager
async def open_http_transport(
    url: str | httpx.URL,
    *,
    headers: Mapping[str, str] | None = None,
    auth: httpx.Auth | tuple[str, str] | None = None,
    http_client: httpx.AsyncClient | None = None,
    config: HttpClientConfig | None = None,
    terminate_on_close: bool = True,
    reinitialize: bool = True,
    on_session_expired: SessionExpiredCallback | None = None,
    open_get_stream: bool = True,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    max_buffered_messages: int = 64,
    max_concurrent_requests: int = 64,
) -> AsyncIterator[HttpClientTransport]:
    """Open a transport to the MCP endpoint at ``url`` for the duration of the block.

    Pass it to :func:`~mcptrio.open_client`. ``headers`` and ``auth`` go on every HTTP
    request. Without ``http_client`` one is created (and closed on exit); either way each
    request sets its own timeouts: 10 s to connect, none for reading, so bound waits with
    ``trio.fail_after``.

    A stream that drops before answering is resumed with ``Last-Event-ID`` within the budget
    of ``config`` (:class:`~mcptrio.HttpClientConfig`: attempts, backoff, a time window); when
    it is spent, the request fails with an error saying so and what the server said last. A
    reply that breaks off without an event id to resume from (a JSON body, or a stream
    before its first event) fails at once. On a 404 for its session the transport calls
    ``on_session_expired`` and, when ``reinitialize`` is true, repeats the handshake and
    re-sends the request (otherwise it fails it and refuses further sends). When the first
    POST (an ``initialize``) gets 405, or 400/404 without a JSON-RPC error of the server's
    own, the URL is tried as a deprecated HTTP+SSE endpoint. With ``open_get_stream`` a GET
    stream for server-initiated messages is held open after the handshake. On exit, with
    ``terminate_on_close``, the session is ended with ``DELETE``. Incoming messages wait in
    a buffer of ``max_buffered_messages``; at most ``max_concurrent_requests`` requests are
    in flight; a message or event larger than ``max_message_bytes`` is refused.

    Requests carrying 2026-07-28 ``_meta`` (as :func:`~mcptrio.open_client` sends them in that
    era) go without a session id, with the headers mirrored from their body; their streams are
    never resumed, and cancelling one closes it. ``headers``, ``auth`` and the limits apply to
    them as to everything else.

    ``config`` also holds the TLS settings (a CA bundle, a client certificate) and
    ``http2``; they configure the HTTP client this function creates, so they cannot be
    combined with ``http_client``. A server certificate that is refused (expired, for
    another host, from an unknown authority) fails the request with an error saying why.
    """
    target = httpx.URL(url)
    if target.scheme not in ("http", "https"):
        raise ValueError(f"the MCP endpoint must be an http or https URL, got {str(url)!r}")
    if config is None:
        config = HttpClientConfig()
    elif not isinstance(config, HttpClientConfig):
        raise TypeError(f"config must be an HttpClientConfig, got {type(config).__name__}")
    for name, value in (
        ("max_message_bytes", max_message_bytes),
        ("max_buffered_messages", max_buffered_messages),
        ("max_concurrent_requests", max_concurrent_requests),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    own_client_settings = (config.ca_certs, config.client_cert, config.client_key)
    if http_client is not None and (config.http2 or any(own_client_settings)):
        raise ValueError(
            "HttpClientConfig's ca_certs, client_cert, client_key and http2 configure the HTTP"
            " client this function creates; with http_client, configure that client instead"
        )
    verify: ssl.SSLContext | bool = True
    if config.ca_certs is not None or config.client_cert is not None:
        verify = client_ssl_context(
            ca_certs=config.ca_certs, certfile=config.client_cert, keyfile=config.client_key
        )
    http2 = config.http2
    with unwrap_single_error():
        async with AsyncExitStack() as stack:
            client = http_client
            if client is None:
                # Every request in flight may be answered by a reply POST of our own,
                # plus the GET stream and the DELETE.
                limits = httpx.Limits(max_connections=2 * max_concurrent_requests + 4)
                client = await stack.enter_async_context(
                    httpx.AsyncClient(
                        timeout=_TIMEOUT,
                        limits=limits,
                        verify=verify,
                        # Prior knowledge on http:// needs HTTP/1.1 off: httpx never
                        # upgrades a cleartext connection.
                        http1=not (http2 and target.scheme == "http"),
                        http2=http2,
                    )
                )
            # The transport's tasks run in this function's own nursery; closing the
            # transport cancels them (see _TransportTasks), not the body of ``async with``.
            async with trio.open_nursery() as nursery:
                transport = HttpClientTransport(
                    target,
                    client,
                    nursery,
                    headers=headers or {},
                    auth=auth,
                    config=config,
                    terminate_on_close=terminate_on_close,
                    reinitialize=reinitialize,
                    on_session_expired=on_session_expired,
                    open_get_stream=open_get_stream,
                    max_message_bytes=max_message_bytes,
                    max_buffered_messages=max_buffered_messages,
                    max_concurrent_requests=max_concurrent_requests,
                )
                try:
                    yield transport
                finally:
                    with trio.CancelScope(shield=True):
                        await transport.aclose()
