"""HTTP/1.1 server on h11 over trio streams, serving an :class:`HttpExchange` handler.

One task per connection. Requests on a connection are answered one at a time and in order
(the next request is parsed only once the previous response is complete), so pipelining
is safe. Complete responses carry Content-Length; streamed ones use chunked transfer
encoding (or close-delimited bodies for HTTP/1.0 peers). While a response streams, one
watcher task reads the socket so a client that leaves is noticed; bytes a pipelining client
sends meanwhile are kept for the next request.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import ssl
from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import h11
import trio

from ._http_types import BodyTooLarge, ClientDisconnected, Headers, HttpExchange

__all__ = ["H11Exchange", "serve_h11"]

log = logging.getLogger("mcptrio.http")

Handler = Callable[[HttpExchange], Awaitable[None]]
Background = Callable[..., Awaitable[None]]

_READ_SIZE = 64 * 1024
# Bytes a client may pipeline while a response streams before we stop reading from it.
_STASH_LIMIT = 256 * 1024
# An HTTP/1.1 client writes its whole body before reading the answer: after refusing a body,
# keep swallowing it this long so the client gets to read the refusal.
_DRAIN_SECONDS = 10.0
# After an error answer, read (and drop) what the client still sends for this long before
# closing, so the kernel does not reset the connection over unread bytes and lose the answer.
_LINGER_SECONDS = 2.0
_ACCEPT_RETRY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
_REASONS = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}
_NO_BODY_STATUS = (204, 304)
_CLOSE = (b"connection", b"close")
_INTERNAL_ERROR = (
    b'{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal server error"}}'
)


class _Timeout(Exception):
    """The client made no progress within its time limit."""


def split_target(target: bytes) -> tuple[str, str]:
    """The decoded path and the raw query string of a request target."""
    raw_path, _, query = target.partition(b"?")
    path = raw_path.decode("latin-1")
    if not path.startswith("/") and path != "*":
        # Absolute form (``http://host/path``), as sent to proxies.
        path = urlsplit(path).path or "/"
    if "%" in path:
        path = unquote(path, errors="replace")
    return path, query.decode("latin-1")


def _header_size(request: h11.Request) -> int:
    """About how many bytes the request line and headers took on the wire."""
    size = len(request.method) + len(request.target) + 14
    for name, value in request.headers.raw_items():
        size += len(name) + len(value) + 4
    return size


class _Server:
    """Settings and live state shared by every connection of one :func:`serve_h11`."""

    def __init__(
        self,
        handler: Handler,
        *,
        max_body: int,
        ssl_context: ssl.SSLContext | None,
        header_timeout: float,
        keep_alive_timeout: float,
        max_header_bytes: int,
        max_connections: int | None,
    ) -> None:
        self.handler = handler
        self.max_body = max_body
        self.ssl_context = ssl_context
        self.header_timeout = header_timeout
        self.keep_alive_timeout = keep_alive_timeout
        self.max_header_bytes = max_header_bytes
        self.slots = trio.Semaphore(max_connections) if max_connections is not None else None
        self.shutting_down = False
        self.connections: set[_Connection] = set()

    def begin_shutdown(self) -> None:
        """Close idle connections now; busy ones close once their exchange is done."""
        self.shutting_down = True
        for conn in self.connections:
            if conn.idle_scope is not None:
                conn.idle_scope.cancel()

    async def accept(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        """Accept connections into ``nursery`` until cancelled."""
        slots = self.slots
        while True:
            if slots is not None:
                await slots.acquire()
            try:
                stream = await listener.accept()
            except OSError as exc:
                if slots is not None:
                    slots.release()
                if exc.errno not in _ACCEPT_RETRY_ERRNOS:
                    raise
                log.error("cannot accept a connection (%s); retrying shortly", exc)
                await trio.sleep(0.1)
                continue
            except BaseException:
                if slots is not None:
                    slots.release()
                raise
            nursery.start_soon(self.connection, stream)

    async def connection(self, sock: trio.SocketStream) -> None:
        """Serve one accepted connection to its end."""
        try:
            try:
                client_host: str | None = sock.socket.getpeername()[0]
            except OSError:
                client_host = None
            stream: trio.abc.Stream = sock
            if self.ssl_context is not None:
                stream = trio.SSLStream(
                    sock, self.ssl_context, server_side=True, https_compatible=True
                )
            conn = _Connection(self, stream, client_host)
            self.connections.add(conn)
            try:
                await conn.serve()
            finally:
                self.connections.discard(conn)
                await trio.aclose_forcefully(stream)
        except Exception:
            log.exception("error serving an HTTP connection")
        finally:
            if self.slots is not None:
                self.slots.release()


class _Connection:
    """One client connection: the h11 state machine, the socket, and who is reading it."""

    __slots__ = (
        "client_host",
        "gone",
        "h11",
        "idle_scope",
        "nursery",
        "reading",
        "server",
        "started_at",
        "stash",
        "stream",
        "wake",
    )

    def __init__(self, server: _Server, stream: trio.abc.Stream, client_host: str | None) -> None:
        self.server = server
        self.stream = stream
        self.client_host = client_host
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=server.max_header_bytes)
        self.started_at = trio.current_time()
        # Bytes read by the disconnect watcher, not yet given to h11.
        self.stash = bytearray()
        self.reading = False
        self.gone = False
        self.wake: trio.Event | None = None
        self.idle_scope: trio.CancelScope | None = None
        self.nursery: trio.Nursery | None = None

    # -- input --------------------------------------------------------------------------------
    #
    # Exactly one task reads the socket at a time: the request loop (parsing), or the watcher
    # of a streamed response. Whoever cannot read waits for the reader to finish.

    def _notify(self) -> None:
        wake = self.wake
        if wake is not None:
            self.wake = None
            wake.set()

    async def _changed(self) -> None:
        if self.wake is None:
            self.wake = trio.Event()
        await self.wake.wait()

    async def _recv(self) -> bytes:
        self.reading = True
        try:
            # SocketStream gives bytes, SSLStream a bytearray; h11 takes either.
            data = cast("bytes", await self.stream.receive_some(_READ_SIZE))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        finally:
            self.reading = False
            self._notify()
        if not data:
            self.gone = True
        return data

    def _flush_stash(self) -> bool:
        if self.stash:
            self.h11.receive_data(bytes(self.stash))
            self.stash.clear()
            self._notify()
            return True
        return False

    async def _fill(self) -> None:
        """Give h11 more input: what the watcher kept, one socket read, or end of file."""
        if self._flush_stash():
            await trio.lowlevel.checkpoint()
        elif self.reading:
            await self._changed()
            self._flush_stash()
        elif self.gone:
            self.h11.receive_data(b"")
            await trio.lowlevel.checkpoint()
        else:
            self.h11.receive_data(await self._recv())

    async def _event(self, deadline: float, progress: float | None = None) -> Any:
        """The next h11 event; ``progress`` moves the deadline on after every read."""
        h = self.h11
        while True:
            event = h.next_event()
            if event is not h11.NEED_DATA:
                return event
            if progress is not None:
                deadline = trio.current_time() + progress
            with trio.move_on_at(deadline) as scope:
                await self._fill()
            if scope.cancelled_caught:
                raise _Timeout

    async def wait_disconnected(self) -> None:
        """Read the socket until end of file, keeping what arrives for the request loop."""
        while not self.gone:
            if self.reading or len(self.stash) >= _STASH_LIMIT:
                await self._changed()
                continue
            self.stash += await self._recv()

    async def _watch(self, scope: trio.CancelScope) -> None:
        with scope:
            await self.wait_disconnected()

    def watch(self) -> trio.CancelScope:
        """Start the disconnect watcher of a streamed response; cancel the scope to stop it."""
        scope = trio.CancelScope()
        assert self.nursery is not None
        self.nursery.start_soon(self._watch, scope)
        return scope

    # -- output -------------------------------------------------------------------------------

    async def send(self, data: bytes) -> None:
        """Write to the client; :class:`ClientDisconnected` once it is gone."""
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self.gone = True
            self._notify()
            raise ClientDisconnected("the client disconnected") from exc

    async def _reject(self, status: int, message: str, *, head: bool = False) -> None:
        """Answer a request we could not take (bad, too large, too slow) before closing."""
        body = message.encode("utf-8")
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"%d" % len(body)),
            _CLOSE,
        ]
        h = self.h11
        try:
            data = h.send(
                h11.Response(status_code=status, headers=headers, reason=_REASONS[status])
            )
            if not head:
                data += h.send(h11.Data(data=body))
            data += h.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            return  # a response was already under way; closing is all that is left
        with contextlib.suppress(ClientDisconnected):
            await self.send(data)

    async def _linger(self) -> None:
        """Half-close, then drop what the client still sends, so our answer is not reset."""
        stream = self.stream
        if self.gone or not isinstance(stream, trio.SocketStream):
            return
        if self.server.shutting_down:
            return
        # Counts as idle: shutdown need not wait for it.
        with trio.move_on_after(_LINGER_SECONDS) as self.idle_scope:
            try:
                await stream.send_eof()
                while await stream.receive_some(_READ_SIZE):
                    pass
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
        self.idle_scope = None

    # -- the request loop ---------------------------------------------------------------------

    async def serve(self) -> None:
        """Answer requests until the client or the server ends the connection."""
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            first = True
            while True:
                try:
                    request = await self._next_request(first)
                except _Timeout:
                    await self._reject(408, "request timeout: the request headers came too slowly")
                    await self._linger()
                    break
                except h11.RemoteProtocolError as exc:
                    if not self.gone:
                        status = exc.error_status_hint
                        if status == 431:
                            message = self._too_large_message()
                        else:
                            message = f"malformed HTTP/1.1 request: {exc}"
                        await self._reject(status, message)
                        await self._linger()
                    break
                if request is None:
                    break
                first = False
                if _header_size(request) > self.server.max_header_bytes:
                    # h11 only bounds headers still incomplete; one read can hold more.
                    await self._reject(431, self._too_large_message())
                    await self._linger()
                    break
                exchange = H11Exchange(self, request)
                if not await self._exchange(exchange):
                    break
                self.h11.start_next_cycle()
            nursery.cancel_scope.cancel()

    def _too_large_message(self) -> str:
        return (
            "request header fields too large: the request line and headers must fit in "
            f"{self.server.max_header_bytes} bytes"
        )

    async def _next_request(self, first: bool) -> h11.Request | None:
        h = self.h11
        server = self.server
        self._flush_stash()
        event = h.next_event()
        if event is h11.NEED_DATA:
            deadline = None
            if not h.trailing_data[0]:
                # Idle: nothing of the next request has arrived yet.
                if server.shutting_down:
                    return None
                if first:
                    deadline = self.started_at + server.header_timeout
                    idle_deadline = deadline
                else:
                    idle_deadline = trio.current_time() + server.keep_alive_timeout
                with trio.CancelScope(deadline=idle_deadline) as idle:
                    self.idle_scope = idle
                    try:
                        await self._fill()
                    finally:
                        self.idle_scope = None
                if idle.cancelled_caught:
                    return None
            if deadline is None:
                deadline = trio.current_time() + server.header_timeout
            event = await self._event(deadline)
        if type(event) is h11.Request:
            return event
        return None  # ConnectionClosed

    async def _exchange(self, ex: H11Exchange) -> bool:
        """Run the handler on one exchange; True if the connection can take another request."""
        try:
            await self.server.handler(ex)
        except ClientDisconnected:
            pass
        except Exception:
            log.exception("unhandled error serving %s %s", ex.method, ex.path)
            if ex._streaming and not ex._ended:
                return False  # end abruptly: a clean end would pass off a truncated stream
        finally:
            if ex._watcher is not None:
                ex._watcher.cancel()
        if self.gone:
            return False
        try:
            if not ex._started:
                if ex._failed is not None:
                    status, message = ex._failed
                    await self._reject(status, message, head=ex.method == "HEAD")
                    await self._linger()
                    return False
                await ex.respond(500, [("content-type", "application/json")], _INTERNAL_ERROR)
            elif ex._streaming and not ex._ended:
                await ex.end_stream()
        except ClientDisconnected:
            return False
        h = self.h11
        if h.our_state is not h11.DONE and h.our_state is not h11.MUST_CLOSE:
            return False  # the handler failed half-way through its response
        try:
            # Whatever of the body is already here (all of it, for a request without one).
            while h.their_state is h11.SEND_BODY and h.next_event() is not h11.NEED_DATA:
                pass
        except h11.RemoteProtocolError:
            return False
        if h.their_state is h11.SEND_BODY:
            if ex._expect_refused:
                return False  # the client still waits for 100 Continue: it sends no body
            if ex._too_large:
                if not await self._drain(math.inf):
                    await self._linger()
                return False
            if h.our_state is h11.MUST_CLOSE or not await self._drain(self.server.max_body):
                await self._linger()
                return False
        return (
            h.our_state is h11.DONE and h.their_state is h11.DONE and not self.server.shutting_down
        )

    async def _drain(self, budget: float) -> bool:
        """Read and drop the rest of a request body; True once it has all arrived."""
        with trio.move_on_after(_DRAIN_SECONDS):
            while True:
                try:
                    event = await self._event(math.inf, progress=self.server.header_timeout)
                except (_Timeout, h11.RemoteProtocolError):
                    return False
                if type(event) is h11.Data:
                    budget -= len(event.data)
                    if budget < 0:
                        return False
                else:
                    return type(event) is h11.EndOfMessage
        return False


class H11Exchange:
    """One HTTP/1.1 request on an h11 connection, as an :class:`HttpExchange`."""

    __slots__ = (
        "_body",
        "_conn",
        "_ended",
        "_expect_refused",
        "_failed",
        "_headers",
        "_method",
        "_no_body",
        "_path",
        "_pending_head",
        "_query",
        "_started",
        "_streaming",
        "_too_large",
        "_watcher",
    )

    def __init__(self, conn: _Connection, request: h11.Request) -> None:
        self._conn = conn
        method = request.method.decode("ascii").upper()
        self._method = method
        self._path, self._query = split_target(request.target)
        self._headers = Headers.from_raw(request.headers.raw_items())
        self._body: bytes | None = None
        self._too_large = False
        self._started = False
        self._streaming = False
        self._ended = False
        self._no_body = method == "HEAD"
        self._expect_refused = False
        self._failed: tuple[int, str] | None = None
        self._watcher: trio.CancelScope | None = None
        self._pending_head: bytes | None = None

    @property
    def method(self) -> str:
        return self._method

    @property
    def path(self) -> str:
        return self._path

    @property
    def query_string(self) -> str:
        return self._query

    @property
    def headers(self) -> Headers:
        return self._headers

    @property
    def client_host(self) -> str | None:
        return self._conn.client_host

    @property
    def started(self) -> bool:
        """True once a response (or stream) has begun."""
        return self._started

    async def read_body(self, limit: int) -> bytes:
        conn = self._conn
        cap = min(limit, conn.server.max_body)
        if self._body is not None:
            if len(self._body) > cap:
                raise BodyTooLarge(cap)
            return self._body
        if self._too_large:
            raise BodyTooLarge(cap)
        declared = self._headers.get("content-length")
        if declared is not None and int(declared) > cap:
            self._too_large = True
            raise BodyTooLarge(cap)
        h = conn.h11
        if h.they_are_waiting_for_100_continue:
            await conn.send(h.send(h11.InformationalResponse(status_code=100, headers=[])))
        parts: list[bytes] = []
        size = 0
        while True:
            try:
                event = await conn._event(math.inf, progress=conn.server.header_timeout)
            except _Timeout:
                self._failed = (408, "request timeout: the request body came too slowly")
                raise ClientDisconnected("the client stopped sending its request body") from None
            except h11.RemoteProtocolError as exc:
                if not conn.gone:
                    self._failed = (400, f"malformed HTTP/1.1 request body: {exc}")
                raise ClientDisconnected(f"the request body could not be read: {exc}") from None
            if type(event) is h11.Data:
                size += len(event.data)
                if size > cap:
                    self._too_large = True
                    raise BodyTooLarge(cap)
                parts.append(event.data)
            elif type(event) is h11.EndOfMessage:
                break
            else:
                raise ClientDisconnected("the client disconnected before sending its body")
        body = parts[0] if len(parts) == 1 and type(parts[0]) is bytes else b"".join(parts)
        self._body = body
        return body

    def _head(self, status: int, headers: Sequence[tuple[str, str]], length: int | None) -> bytes:
        if self._started:
            raise RuntimeError("the response has already started")
        self._started = True
        conn = self._conn
        h = conn.h11
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        if status in _NO_BODY_STATUS:
            self._no_body = True
        elif length is not None:
            raw.append((b"content-length", b"%d" % length))
        if h.they_are_waiting_for_100_continue:
            # The body was never asked for: the client may or may not send it, so the
            # connection cannot carry another request.
            self._expect_refused = True
            raw.append(_CLOSE)
        elif self._too_large or conn.server.shutting_down:
            raw.append(_CLOSE)
        return h.send(
            h11.Response(status_code=status, headers=raw, reason=_REASONS.get(status, b""))
        )

    async def respond(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        h = self._conn.h11
        data = self._head(status, headers, len(body))
        if body and not self._no_body:
            data += h.send(h11.Data(data=body))
        data += h.send(h11.EndOfMessage())
        await self._conn.send(data)

    async def start_stream(self, status: int, headers: Sequence[tuple[str, str]]) -> None:
        # The head goes out with the first chunk (one write instead of two), and no
        # disconnect watcher is started: a write to a vanished client fails on its own,
        # and ``wait_disconnected`` starts the watch when someone asks for it.
        self._pending_head = self._head(status, headers, None)
        self._streaming = True
        await trio.lowlevel.checkpoint()

    async def send_chunk(self, data: bytes) -> None:
        conn = self._conn
        if conn.gone:
            raise ClientDisconnected("the client disconnected")
        if not self._streaming or self._ended:
            raise RuntimeError("send_chunk needs an open stream: call start_stream first")
        head, self._pending_head = self._pending_head, None
        if data and not self._no_body:
            payload = conn.h11.send(h11.Data(data=data))
            await conn.send(payload if head is None else head + payload)
        elif head is not None:
            await conn.send(head)
        else:
            await trio.lowlevel.checkpoint()

    async def end_stream(self) -> None:
        if not self._streaming or self._ended:
            await trio.lowlevel.checkpoint()
            return
        self._ended = True
        if self._watcher is not None:
            self._watcher.cancel()
        conn = self._conn
        if conn.gone:
            await trio.lowlevel.checkpoint()
            return
        head, self._pending_head = self._pending_head, None
        end = conn.h11.send(h11.EndOfMessage())
        with contextlib.suppress(ClientDisconnected):
            await conn.send(end if head is None else head + end)

    async def wait_disconnected(self) -> None:
        await self._conn.wait_disconnected()


def _url(listener: trio.SocketListener, scheme: str) -> str:
    host, port = listener.socket.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


async def serve_h11(
    handler: Handler,
    *,
    host: str,
    port: int,
    max_body: int,
    background: Background | None = None,
    ssl_context: ssl.SSLContext | None = None,
    shutdown_trigger: Callable[[], Awaitable[None]],
    graceful_timeout: float,
    request_header_timeout: float = 30.0,
    keep_alive_timeout: float = 75.0,
    max_header_bytes: int = 64 * 1024,
    max_connections: int | None = None,
    on_shutdown: Callable[[], None] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``handler`` over HTTP/1.1 (h11 on trio streams) until ``shutdown_trigger`` returns.

    ``background`` is started first (``await nursery.start(background)``) and runs until every
    connection is done. ``task_status.started`` gets the bound URLs (``["http://127.0.0.1:PORT"]``,
    ``https`` with ``ssl_context``). Once ``shutdown_trigger`` returns: no new connections,
    idle keep-alive connections close at once, exchanges in progress get ``graceful_timeout``
    seconds, then are cancelled. ``request_header_timeout`` bounds the time to receive a
    request's headers and each wait for more of its body; ``keep_alive_timeout`` how long an
    idle connection is kept; ``max_connections`` caps open connections (further clients wait
    in the listen backlog).
    ``on_shutdown`` is called the moment shutdown begins (the MCP endpoint ends its SSE
    streams there).
    """
    server = _Server(
        handler,
        max_body=max_body,
        ssl_context=ssl_context,
        header_timeout=request_header_timeout,
        keep_alive_timeout=keep_alive_timeout,
        max_header_bytes=max_header_bytes,
        max_connections=max_connections,
    )
    # Accept "[::1]" as well as "::1".
    listeners = await trio.open_tcp_listeners(port, host=host.strip("[]") or None)
    scheme = "https" if ssl_context is not None else "http"
    try:
        async with trio.open_nursery() as outer:
            if background is not None:
                await outer.start(background)
            async with trio.open_nursery() as connections:
                async with trio.open_nursery() as acceptors:
                    for listener in listeners:
                        acceptors.start_soon(server.accept, listener, connections)
                    task_status.started([_url(listener, scheme) for listener in listeners])
                    await shutdown_trigger()
                    # Mark shutdown before anything else runs, so a connection whose
                    # exchange ends from here on closes instead of waiting for another.
                    server.begin_shutdown()
                    if on_shutdown is not None:
                        on_shutdown()
                    acceptors.cancel_scope.cancel()
                for listener in listeners:
                    await trio.aclose_forcefully(listener)
                server.begin_shutdown()
                connections.cancel_scope.deadline = trio.current_time() + graceful_timeout
            outer.cancel_scope.cancel()
    finally:
        for listener in listeners:
            await trio.aclose_forcefully(listener)
