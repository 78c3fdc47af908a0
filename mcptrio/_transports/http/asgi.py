"""ASGI adapter: serves an :class:`HttpExchange` handler from any ASGI 3 server (Hypercorn).

It implements the lifespan scope (Hypercorn's trio worker crashes if an app returns from
it) and watches ``receive()`` for ``http.disconnect``: a ``send()`` after the client left
is silently dropped by Hypercorn, so streams must learn of the disconnect that way.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any
from urllib.parse import unquote

import trio

from .exchange import BodyTooLarge, ClientDisconnected, Headers, HttpExchange
from .head import BodyPace, absolute_form, head_error, origin_headers

__all__ = ["AsgiApp", "AsgiExchange"]

log = logging.getLogger("mcptrio.http")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Handler = Callable[[HttpExchange], Awaitable[None]]
Background = Callable[..., Awaitable[None]]

_DRAIN_SECONDS = 10.0
_TEXT = [("content-type", "text/plain; charset=utf-8"), ("connection", "close")]


class AsgiExchange:
    """One ASGI HTTP request as an :class:`HttpExchange`."""

    def __init__(
        self, scope: Scope, receive: Receive, send: Send, *, max_body: int, pace: BodyPace
    ) -> None:
        self._receive = receive
        self._send = send
        self._max_body = max_body
        self._pace = pace
        # What the request line said (as far as the server passes it on); ASGI servers give
        # the path before the query, and an absolute-form target whole.
        raw_path = scope.get("raw_path")
        self.target: str = (
            raw_path.decode("latin-1") if raw_path is not None else scope.get("path", "/")
        )
        self._headers = origin_headers(self.target, Headers.from_raw(scope.get("headers", ())))
        self._method: str = scope["method"]
        self._path: str = scope.get("path", "/")
        if not self._path.startswith("/"):
            form = absolute_form(self._path)
            if form is not None:
                self._path = unquote(form[1], errors="replace")
        self._query: str = scope.get("query_string", b"").decode("latin-1")
        client = scope.get("client")
        self._client_host: str | None = client[0] if client else None
        self._body = bytearray()
        self._too_large = False
        self._body_done = trio.Event()
        self._body_drained = trio.Event()
        self._disconnected = trio.Event()
        self._started = False
        self.failed: tuple[int, str] | None = None
        """The refusal to answer with when the handler could not be given the request."""

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
        return self._client_host

    async def pump(self) -> None:
        """Read the body, then wait for the disconnect (runs for the whole exchange)."""
        received = 0
        pace = self._pace
        while True:
            if self._body_drained.is_set():
                message = await self._receive()
            else:
                with trio.move_on_at(pace.deadline(received)) as waited:
                    message = await self._receive()
                if waited.cancelled_caught:
                    # The body came too slowly: answered with a 408 once the handler gives
                    # up on it, and nothing more is read.
                    self.failed = (408, pace.reason(received, trio.current_time()))
                    self._body = bytearray()
                    self._body_done.set()
                    self._body_drained.set()
                    return
                received += len(message.get("body", b""))
            kind = message.get("type")
            if kind == "http.request":
                if not self._too_large:
                    self._body += message.get("body", b"")
                    if len(self._body) > self._max_body:
                        self._too_large = True
                        self._body = bytearray()
                        self._body_done.set()
                if not message.get("more_body", False):
                    self._body_done.set()
                    self._body_drained.set()
            elif kind == "http.disconnect":
                self._body_done.set()
                self._body_drained.set()
                self._disconnected.set()
                return

    async def drain(self) -> None:
        """Wait until the client has sent its whole body (it may be discarded)."""
        await self._body_drained.wait()

    async def read_body(self, limit: int) -> bytes:
        await self._body_done.wait()
        if self.failed is not None:
            raise ClientDisconnected("the client sent its request body too slowly")
        if self._too_large or len(self._body) > limit:
            raise BodyTooLarge(min(limit, self._max_body))
        if self._disconnected.is_set() and not self._body:
            raise ClientDisconnected("the client disconnected before sending its body")
        return bytes(self._body)

    async def _send_start(self, status: int, headers: Sequence[tuple[str, str]]) -> None:
        if self._started:
            raise RuntimeError("the response has already started")
        self._started = True
        await self._send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            }
        )

    async def respond(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        await self._send_start(status, [*headers, ("content-length", str(len(body)))])
        await self._send({"type": "http.response.body", "body": body, "more_body": False})

    async def start_stream(self, status: int, headers: Sequence[tuple[str, str]]) -> None:
        await self._send_start(status, headers)

    async def send_chunk(self, data: bytes) -> None:
        if self._disconnected.is_set():
            raise ClientDisconnected("the client disconnected")
        await self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def end_stream(self, data: bytes = b"") -> None:
        if not self._disconnected.is_set():
            await self._send({"type": "http.response.body", "body": data, "more_body": False})

    async def wait_disconnected(self) -> None:
        await self._disconnected.wait()

    @property
    def disconnected(self) -> bool:
        """True once the client went away."""
        return self._disconnected.is_set()

    @property
    def started(self) -> bool:
        """True once a response (or stream) has begun."""
        return self._started


def _refusal(scope: Scope, exchange: AsgiExchange) -> tuple[int, str] | None:
    """What :func:`head_error` says of the request, as far as the ASGI scope tells it.

    The server has parsed the head already: folded header lines are unfolded and the method
    may have been upper-cased before the app sees them, so those two rules are the
    server's to keep.
    """
    version = scope.get("http_version", "1.1")
    if version in ("2", "3"):
        version = "1.1"  # no HTTP/1 request line: the remaining rules still apply
    headers = exchange.headers
    return head_error(
        exchange.method,
        version,
        exchange.target,
        content_length="content-length" in headers,
        transfer_encoding="transfer-encoding" in headers,
    )


class AsgiApp:
    """An ASGI 3 application running ``handler`` per HTTP request.

    ``background``, when given, runs for the server's lifetime (from lifespan startup to
    shutdown) in a nursery the app owns: ``await background(task_status=...)``. A request
    body must arrive within ``body_timeout`` seconds, and at ``min_body_rate`` bytes/s or
    faster once ``body_rate_grace`` seconds have passed; otherwise it is answered with 408.
    Request heads that break the HTTP/1.1 framing rules the server passes on are refused.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        max_body: int,
        background: Background | None = None,
        body_timeout: float = 60.0,
        min_body_rate: float = 500.0,
        body_rate_grace: float = 5.0,
    ) -> None:
        self._handler = handler
        self._max_body = max_body
        self._background = background
        self._body_timeout = body_timeout
        self._min_body_rate = min_body_rate
        self._body_rate_grace = body_rate_grace

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:
            # Websocket support is a separate extra; refuse politely.
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1003})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        pace = BodyPace(
            trio.current_time(),
            timeout=self._body_timeout,
            min_rate=self._min_body_rate,
            grace=self._body_rate_grace,
        )
        exchange = AsgiExchange(scope, receive, send, max_body=self._max_body, pace=pace)
        refusal = _refusal(scope, exchange)
        if refusal is not None:
            # "connection: close" makes the server end the connection after the answer.
            status, message = refusal
            await exchange.respond(status, _TEXT, message.encode("utf-8"))
            return
        async with trio.open_nursery() as nursery:
            nursery.start_soon(exchange.pump)
            # The body (up to the limit) arrives before the handler runs, so a client that
            # sends it slowly holds its own connection, never what the handler takes
            # (request budgets, sessions).
            await exchange._body_done.wait()
            try:
                if exchange.failed is not None:
                    raise ClientDisconnected("the client sent its request body too slowly")
                await self._handler(exchange)
                if not exchange.started and not exchange.disconnected:
                    raise RuntimeError("the handler returned without answering")
            except ClientDisconnected:
                if exchange.failed is not None and not exchange.started:
                    status, message = exchange.failed
                    await exchange.respond(status, _TEXT, message.encode("utf-8"))
            except Exception:
                log.exception("unhandled error serving %s %s", exchange.method, exchange.path)
                if not exchange.started:
                    await exchange.respond(
                        500,
                        [("content-type", "application/json")],
                        b'{"jsonrpc":"2.0","id":null,"error":{"code":-32603,'
                        b'"message":"internal server error"}}',
                    )
            # An HTTP/1.1 client writes its whole body before reading the answer: after
            # refusing an oversized body early, keep reading (and discarding) it for a
            # while so the client gets to see the 413.
            with trio.move_on_after(_DRAIN_SECONDS):
                await exchange.drain()
            nursery.cancel_scope.cancel()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "lifespan.startup":
            return
        try:
            async with trio.open_nursery() as nursery:
                if self._background is not None:
                    await nursery.start(self._background)
                await send({"type": "lifespan.startup.complete"})
                while (await receive())["type"] != "lifespan.shutdown":
                    pass
                nursery.cancel_scope.cancel()
        except Exception as exc:
            log.exception("lifespan failed")
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.shutdown.complete"})
