"""HTTP/1.1 server on h11 over trio streams, serving an :class:`HttpExchange` handler.

One task per connection. Requests on a connection are answered one at a time and in order
(the next request is parsed only once the previous response is complete), so pipelining
is safe. Complete responses carry Content-Length; streamed ones use chunked transfer
encoding (or close-delimited bodies for HTTP/1.0 peers). While a response streams, one
watcher task reads the socket so a client that leaves is noticed; bytes a pipelining client
sends meanwhile are kept for the next request.

Most requests have one plain shape: an HTTP/1.1 request line, well-formed headers with one
Host, the body (if any) framed by one Content-Length, and no Expect, Upgrade or
Transfer-Encoding. A connection reads those itself and writes their responses directly,
which costs a fraction of the general state machine. The first request of another shape
(or any bytes that are not plainly valid) hands the connection to h11 for good, with every
unparsed byte, so h11 judges everything unusual exactly as before. Heads read either way
then pass the same RFC 9112 rules (:func:`~mcptrio._transports.http.head.head_error`), which refuse
some heads h11 accepts (both Transfer-Encoding and Content-Length, folded header lines,
versions other than 1.0 and 1.1, unknown methods).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import re
import ssl
from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import h11
import trio

from .budgets import Budget
from .exchange import BodyTooLarge, ClientDisconnected, Headers, HttpExchange
from .head import BodyPace, head_error, origin_headers

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
# Pauses between accept attempts while the process is out of descriptors (doubling).
_ACCEPT_BACKOFF_MIN = 0.05
_ACCEPT_BACKOFF_MAX = 1.0
# While accepting keeps failing, at most one log line per this many seconds.
_ACCEPT_LOG_EVERY = 60.0
# How often a full server looks again for a connection that turned idle.
_ADMIT_RECHECK = 0.25
_REASONS = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}
_NO_BODY_STATUS = (204, 304)
_CLOSE = (b"connection", b"close")
_INTERNAL_ERROR = (
    b'{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal server error"}}'
)

# The grammar h11 applies (RFC 9110/9112), for requests read without it. Heads are matched
# as latin-1 text, so every byte is one character; classes are explicit because ``\s``
# means more than ASCII whitespace in text patterns.
_TOKEN = r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
_FIELD_VCHAR = r"[^\x00 \t\n\r\f\v]"
_FIELD_VALUE = rf"(?:{_FIELD_VCHAR}+(?:[ \t]+{_FIELD_VCHAR}+)*)?"
_REQUEST_LINE = re.compile(rf"({_TOKEN}) ([\x21-\x7e]+) HTTP/1\.1")
_HEADER_LINE = re.compile(rf"({_TOKEN}):[ \t]*({_FIELD_VALUE})[ \t]*")
_HEADER_NAME = re.compile(_TOKEN)
_HEADER_VALUE = re.compile(_FIELD_VALUE)
_HEAD_END = re.compile(rb"\n\r?\n")
# A header line that starts with white space continues the one before (obs-fold).
_OBS_FOLD = re.compile(rb"\n[ \t]")
# Headers that make a request one h11 must read: it knows their rules and their errors.
_H11_ONLY = frozenset({"transfer-encoding", "expect", "upgrade"})
_CHUNKED = b"transfer-encoding: chunked\r\n"
_LAST_CHUNK = b"0\r\n\r\n"


class _Head:
    """A request head read without h11."""

    __slots__ = ("headers", "keep_alive", "length", "method", "size", "target")

    def __init__(
        self,
        method: str,
        target: str,
        headers: Headers,
        length: int,
        keep_alive: bool,
        size: int,
    ) -> None:
        self.method = method
        self.target = target
        self.headers = headers
        self.length = length
        self.keep_alive = keep_alive
        self.size = size


_H11 = object()
"""What :func:`_parse_head` returns for a head only h11 should judge."""


class _Refused:
    """A well-formed request head that :func:`head_error` refuses."""

    __slots__ = ("message", "method", "status")

    def __init__(self, method: str, status: int, message: str) -> None:
        self.method = method
        self.status = status
        self.message = message


def _parse_head(head: str) -> _Head | _Refused | object:
    """A complete request head (its lines, without the blank line), ``_Refused`` or ``_H11``."""
    lines = head.split("\r\n")
    match = _REQUEST_LINE.fullmatch(lines[0])
    if match is None:
        return _H11
    method, target = match.groups()
    if method == "CONNECT":
        return _H11
    # The same estimate as ``_header_size`` makes of an h11 request.
    size = len(method) + len(target) + 14
    items: list[tuple[str, str]] = []
    hosts = 0
    length: int | None = None
    keep_alive = True
    header_line = _HEADER_LINE.fullmatch
    for line in lines[1:]:
        match = header_line(line)
        if match is None:
            return _H11
        name, value = match.groups()
        name = name.lower()
        size += len(name) + len(value) + 4
        if name == "host":
            hosts += 1
        elif name == "content-length":
            if length is not None or not (value.isascii() and value.isdigit()) or len(value) > 18:
                return _H11
            length = int(value)
        elif name == "connection":
            if "close" in (token.strip() for token in value.lower().split(",")):
                keep_alive = False
        elif name in _H11_ONLY:
            return _H11
        items.append((name, value))
    if hosts != 1:
        return _H11
    refusal = head_error(
        method, "1.1", target, content_length=length is not None, transfer_encoding=False
    )
    if refusal is not None:
        return _Refused(method, *refusal)
    return _Head(
        method,
        target,
        Headers.from_lower(items),
        0 if length is None else length,
        keep_alive,
        size,
    )


class _Timeout(Exception):
    """The client made no progress within its time limit."""


def split_target(target: bytes) -> tuple[str, str]:
    """The decoded path and the raw query string of a request target."""
    return _split_target(target.decode("latin-1"))


def _split_target(target: str) -> tuple[str, str]:
    path, _, query = target.partition("?")
    if not path.startswith("/") and path != "*":
        # Absolute form (``http://host/path``), as sent to proxies.
        path = urlsplit(path).path or "/"
    if "%" in path:
        path = unquote(path, errors="replace")
    return path, query


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
        body_timeout: float,
        min_body_rate: float,
        body_rate_grace: float,
        keep_alive_timeout: float,
        max_header_bytes: int,
        max_connections: int | None,
        reserve_connections: int = 0,
        reserve_handler: Handler | None = None,
        budget: Budget | None = None,
        reserve_budget: Budget | None = None,
    ) -> None:
        self.handler = handler
        self.max_body = max_body
        self.ssl_context = ssl_context
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.min_body_rate = min_body_rate
        self.body_rate_grace = body_rate_grace
        self.keep_alive_timeout = keep_alive_timeout
        self.max_header_bytes = max_header_bytes
        self.reserve_handler = reserve_handler if reserve_handler is not None else handler
        # Open connections against the cap (the reserve is counted apart); ``in_use`` may pass
        # the limit for the moment an evicted idle connection takes to close.
        self.budget = (
            budget
            if budget is not None
            else Budget("connections", max_connections if max_connections is not None else 0)
        )
        if max_connections is not None:
            self.budget.limit = max_connections
        self.capped = max_connections is not None
        self.reserve = reserve_budget if reserve_budget is not None else Budget("reserve", 0)
        self.reserve.limit = reserve_connections
        self.room = trio.lowlevel.ParkingLot()
        # Idle connections told to close that have not yet: [on the cap, in the reserve].
        self.evicting = [0, 0]
        self.shutting_down = False
        # Insertion order is accept order: the first idle one found is the oldest.
        self.connections: dict[_Connection, None] = {}

    def body_pace(self) -> BodyPace:
        """The pace a request body read from now on must keep."""
        return BodyPace(
            trio.current_time(),
            timeout=self.body_timeout,
            min_rate=self.min_body_rate,
            grace=self.body_rate_grace,
        )

    def begin_shutdown(self) -> None:
        """Close idle connections now; busy ones close once their exchange is done."""
        self.shutting_down = True
        for conn in self.connections:
            if conn.idle_scope is not None:
                conn.idle_scope.cancel()

    def _evict_idle(self, reserved: bool) -> bool:
        """Close the oldest idle connection of the kind given; True if there was one."""
        for conn in self.connections:
            if conn.reserved is reserved and not conn.evicted and conn.idle_scope is not None:
                conn.evicted = True
                self.evicting[reserved] += 1
                conn.idle_scope.cancel()
                return True
        return False

    def _has_idle(self) -> bool:
        return any(not c.evicted and c.idle_scope is not None for c in self.connections)

    def _room(self, reserved: bool) -> bool:
        """True if the cap (or the reserve) has room, now or once evicted connections close."""
        budget = self.reserve if reserved else self.budget
        return budget.in_use - self.evicting[reserved] < budget.limit

    def _admit(self) -> bool | None:
        """Where a new connection goes: False (the cap), True (the reserve), None (nowhere).

        At the cap the oldest idle connection is closed to make room; the reserve is used
        only when every connection is busy.
        """
        if not self.capped or self._room(False) or self._evict_idle(False):
            return False
        if self._room(True) or self._evict_idle(True):
            return True
        return None

    def _can_admit(self) -> bool:
        return not self.capped or self._room(False) or self._room(True) or self._has_idle()

    async def accept(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        """Accept connections into ``nursery`` until cancelled."""
        backoff = _ACCEPT_BACKOFF_MIN
        logged_at = -math.inf
        unlogged = 0
        while True:
            if not self._can_admit():
                # Further clients wait in the listen backlog. A connection ending wakes us;
                # one turning idle is noticed at the next look.
                with trio.move_on_after(_ADMIT_RECHECK):
                    await self.room.park()
                continue
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in _ACCEPT_RETRY_ERRNOS:
                    raise
                # Out of descriptors or memory: an idle connection gives its descriptor up,
                # and the log gets one line per episode, not one per attempt.
                self._evict_idle(False) or self._evict_idle(True)
                now = trio.current_time()
                if now - logged_at >= _ACCEPT_LOG_EVERY:
                    more = f"; {unlogged} more times since the last report" if unlogged else ""
                    log.warning(
                        "cannot accept connections (%s); pausing accept, closing idle"
                        " connections (%d open)%s",
                        exc,
                        len(self.connections),
                        more,
                    )
                    logged_at, unlogged = now, 0
                else:
                    unlogged += 1
                await trio.sleep(backoff)
                backoff = min(backoff * 2, _ACCEPT_BACKOFF_MAX)
                continue
            backoff = _ACCEPT_BACKOFF_MIN
            # Decided once the client is here: no idle connection is closed for nobody. If the
            # room seen before went meanwhile, the client is answered from the reserve.
            reserved = self._admit() is not False
            (self.reserve if reserved else self.budget).acquire()
            nursery.start_soon(self.connection, stream, reserved)

    async def connection(self, sock: trio.SocketStream, reserved: bool = False) -> None:
        """Serve one accepted connection to its end."""
        conn: _Connection | None = None
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
            conn.reserved = reserved
            conn.handler = self.reserve_handler if reserved else self.handler
            self.connections[conn] = None
            try:
                await conn.serve()
            finally:
                await trio.aclose_forcefully(stream)
        except Exception:
            log.exception("error serving an HTTP connection")
        finally:
            if conn is not None:
                self.connections.pop(conn, None)
                if conn.evicted:
                    self.evicting[reserved] -= 1
            (self.reserve if reserved else self.budget).release()
            self.room.unpark()


class _Connection:
    """One client connection: its socket, who is reading it, and how requests are read.

    Requests of the plain shape are read here (``h11`` stays None); the first of another
    shape creates the h11 state machine, which reads and answers every request after it.
    """

    __slots__ = (
        "body_left",
        "client_host",
        "evicted",
        "folded",
        "gone",
        "h11",
        "handler",
        "head_scan",
        "idle_scope",
        "keep_alive",
        "nursery",
        "reading",
        "reserved",
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
        self.h11: h11.Connection | None = None
        self.started_at = trio.current_time()
        # Bytes read and not parsed yet (with h11: read by the disconnect watcher, not yet
        # given to h11).
        self.stash = bytearray()
        # Without h11: body bytes of the current request not yet taken from the client, and
        # whether the request lets the connection carry another one.
        self.body_left = 0
        self.keep_alive = True
        self.reading = False
        self.gone = False
        self.wake: trio.Event | None = None
        self.idle_scope: trio.CancelScope | None = None
        self.nursery: trio.Nursery | None = None
        # With h11: the last bytes given to it of a request head still incomplete (None
        # once it is complete), and whether that head has a folded header line. h11 unfolds
        # such lines silently; they must be seen in the raw bytes to be refused.
        self.head_scan: bytes | None = None
        self.folded = False
        # Beyond the connection cap, for health probes only; closed to make room when idle.
        self.reserved = False
        self.evicted = False
        self.handler = server.handler

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

    def _scan_head(self, data: bytes) -> None:
        tail = self.head_scan
        if tail is None or not data:
            return
        seen = tail + data
        end = _HEAD_END.search(seen)
        if _OBS_FOLD.search(seen, 0, len(seen) if end is None else end.start() + 1):
            self.folded = True
        # Two bytes are enough to find a head end or a fold that spans two reads.
        self.head_scan = seen[-2:] if end is None else None

    def _give(self, h: h11.Connection, data: bytes) -> None:
        """Pass bytes to h11, looking for folded header lines while a head comes in."""
        self._scan_head(data)
        h.receive_data(data)

    def _start_head(self, h: h11.Connection) -> None:
        """A new request head starts with what h11 already holds (a pipelined request)."""
        self.folded = False
        self.head_scan = b""
        self._scan_head(h.trailing_data[0])

    def _flush_stash(self, h: h11.Connection) -> bool:
        if self.stash:
            self._give(h, bytes(self.stash))
            self.stash.clear()
            self._notify()
            return True
        return False

    def _take(self, count: int) -> bytes:
        """Remove and return up to ``count`` bytes from the front of the stash."""
        stash = self.stash
        data = bytes(stash[:count])
        del stash[:count]
        if self.wake is not None:
            self._notify()  # a watcher may wait for room in the stash
        return data

    async def _fill(self) -> None:
        """More input: with h11, give it what the watcher kept, one socket read, or end of file;
        without, read into the stash (nothing at end of file: callers check ``gone``)."""
        h = self.h11
        if h is None:
            if self.reading:
                await self._changed()
            elif self.gone:
                await trio.lowlevel.checkpoint()
            else:
                self.stash += await self._recv()
        elif self._flush_stash(h):
            await trio.lowlevel.checkpoint()
        elif self.reading:
            await self._changed()
            self._flush_stash(h)
        elif self.gone:
            h.receive_data(b"")
            await trio.lowlevel.checkpoint()
        else:
            self._give(h, await self._recv())

    async def _event(self, deadline: float, progress: float | None = None) -> Any:
        """The next h11 event; ``progress`` moves the deadline on after every read."""
        h = self.h11
        assert h is not None
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

    async def _more_body(self, deadline: float) -> bool:
        """Wait until ``deadline`` for more of the request body (without h11); False at end
        of file."""
        if self.gone:
            return False
        with trio.move_on_at(deadline) as scope:
            await self._fill()
        if scope.cancelled_caught:
            raise _Timeout
        return bool(self.stash) or not self.gone

    async def wait_disconnected(self) -> None:
        """Read the socket until end of file, keeping what arrives for the request loop."""
        while not self.gone:
            if self.reading or len(self.stash) >= _STASH_LIMIT:
                await self._changed()
                continue
            self.stash += await self._recv()

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
        h = self.h11
        if h is None:
            data = b"HTTP/1.1 %d %s\r\n%s\r\n" % (
                status,
                _REASONS[status],
                b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
                b"connection: close\r\n" % len(body),
            )
            if not head:
                data += body
        else:
            headers = [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", b"%d" % len(body)),
                _CLOSE,
            ]
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
            while self.h11 is None:
                try:
                    head = await self._next_head(first)
                except _Timeout:
                    await self._reject(408, "request timeout: the request headers came too slowly")
                    await self._linger()
                    nursery.cancel_scope.cancel()
                    return
                if head is None:
                    nursery.cancel_scope.cancel()
                    return
                if isinstance(head, _Refused):
                    await self._reject(head.status, head.message, head=head.method == "HEAD")
                    await self._linger()
                    nursery.cancel_scope.cancel()
                    return
                if not isinstance(head, _Head):
                    self._to_h11()
                    break
                first = False
                if head.size > self.server.max_header_bytes:
                    await self._reject(431, self._too_large_message())
                    await self._linger()
                    nursery.cancel_scope.cancel()
                    return
                self.body_left = head.length
                self.keep_alive = head.keep_alive
                exchange = H11Exchange(self, head.method, head.target, head.headers)
                if not await self._exchange_plain(exchange):
                    nursery.cancel_scope.cancel()
                    return
            await self._serve_h11(first)
            nursery.cancel_scope.cancel()

    def _to_h11(self) -> None:
        """Hand the connection to h11 from here on, with every byte not yet parsed."""
        h = h11.Connection(h11.SERVER, max_incomplete_event_size=self.server.max_header_bytes)
        self.h11 = h
        self._start_head(h)
        self._flush_stash(h)

    async def _serve_h11(self, first: bool) -> None:
        h = self.h11
        assert h is not None
        while True:
            try:
                request = await self._next_request(h, first)
            except _Timeout:
                await self._reject(408, "request timeout: the request headers came too slowly")
                await self._linger()
                return
            except h11.RemoteProtocolError as exc:
                if not self.gone:
                    status = exc.error_status_hint
                    if status == 431:
                        message = self._too_large_message()
                    else:
                        message = f"malformed HTTP/1.1 request: {exc}"
                    await self._reject(status, message)
                    await self._linger()
                return
            if request is None:
                return
            first = False
            if _header_size(request) > self.server.max_header_bytes:
                # h11 only bounds headers still incomplete; one read can hold more.
                await self._reject(431, self._too_large_message())
                await self._linger()
                return
            method = request.method.decode("ascii")
            target = request.target.decode("latin-1")
            headers = Headers.from_raw(request.headers.raw_items())
            refusal = head_error(
                method,
                request.http_version.decode("ascii"),
                target,
                content_length="content-length" in headers,
                transfer_encoding="transfer-encoding" in headers,
                folded=self.folded,
            )
            if refusal is not None:
                await self._reject(*refusal, head=method == "HEAD")
                await self._linger()
                return
            exchange = H11Exchange(self, method, target, headers)
            if not await self._exchange(exchange, h):
                return
            h.start_next_cycle()
            self._start_head(h)

    def _too_large_message(self) -> str:
        return (
            "request header fields too large: the request line and headers must fit in "
            f"{self.server.max_header_bytes} bytes"
        )

    async def _idle_wait(self, deadline: float) -> bool:
        """Wait for the next request to start arriving; False if it did not by ``deadline``."""
        with trio.CancelScope(deadline=deadline) as idle:
            self.idle_scope = idle
            try:
                await self._fill()
            finally:
                self.idle_scope = None
        return not idle.cancelled_caught

    async def _next_head(self, first: bool) -> _Head | object | None:
        """The next request's head read without h11, ``_H11`` for one that needs h11, or
        None once the connection should close."""
        server = self.server
        stash = self.stash
        deadline: float | None = None
        # Bytes already searched for the blank line (a head that trickles in is not
        # searched again from the start on every read).
        searched = 0
        while True:
            if stash:
                end = _HEAD_END.search(stash, searched)
                if end is not None:
                    start = end.start()
                    if end.end() - start != 3 or start == 0 or stash[start - 1] != 13:
                        return _H11  # bare LF line ends: h11's to judge
                    head = _parse_head(stash[: start - 1].decode("latin-1"))
                    if isinstance(head, _Head):
                        del stash[: end.end()]
                        if self.wake is not None:
                            self._notify()
                    return head
                if len(stash) > server.max_header_bytes or stash[0] < 0x21:
                    return _H11  # h11 refuses these before the head is complete
                searched = max(0, len(stash) - 2)
                if self.gone:
                    return None  # the client left half-way through a head
                if deadline is None:
                    # The whole head within the header timeout: of connecting for the
                    # first request, of its first byte for the next ones.
                    deadline = (self.started_at if first else trio.current_time()) + (
                        server.header_timeout
                    )
                with trio.move_on_at(deadline) as scope:
                    await self._fill()
                if scope.cancelled_caught:
                    raise _Timeout
                continue
            # Idle: nothing of the next request has arrived yet.
            if self.gone or server.shutting_down:
                return None
            if first:
                deadline = self.started_at + server.header_timeout
                if not await self._idle_wait(deadline):
                    return None
            elif not await self._idle_wait(trio.current_time() + server.keep_alive_timeout):
                return None

    async def _next_request(self, h: h11.Connection, first: bool) -> h11.Request | None:
        server = self.server
        self._flush_stash(h)
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
                if not await self._idle_wait(idle_deadline):
                    return None
            if deadline is None:
                deadline = (self.started_at if first else trio.current_time()) + (
                    server.header_timeout
                )
            event = await self._event(deadline)
        if type(event) is h11.Request:
            return event
        return None  # ConnectionClosed

    async def _run_handler(self, ex: H11Exchange) -> bool:
        """Run the handler; False if the connection must end at once."""
        try:
            if self.h11 is not None or self.body_left:
                # The body (up to the limit) is read before the handler runs, so a client
                # that sends it slowly holds its own connection, never what the handler
                # takes (request budgets, sessions); too slow is answered with 408. Too large
                # is the handler's to refuse when it asks for the body.
                with contextlib.suppress(BodyTooLarge):
                    await ex.read_body(self.server.max_body)
            await self.handler(ex)
        except ClientDisconnected:
            pass
        except Exception:
            log.exception("unhandled error serving %s %s", ex.method, ex.path)
            if ex._streaming and not ex._ended:
                return False  # end abruptly: a clean end would pass off a truncated stream
        return True

    async def _finish_response(self, ex: H11Exchange) -> bool:
        """Complete what the handler left unanswered; False if the connection must end."""
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
        return True

    async def _exchange_plain(self, ex: H11Exchange) -> bool:
        """:meth:`_exchange` for a request read without h11."""
        if not await self._run_handler(ex) or not await self._finish_response(ex):
            return False
        if not ex._complete:
            return False  # the handler failed half-way through its response
        left = self.body_left
        if left:
            # Whatever of the body is already here.
            dropped = min(len(self.stash), left)
            del self.stash[:dropped]
            if self.wake is not None:
                self._notify()
            left -= dropped
            self.body_left = left
        if left:
            if ex._too_large:
                if not await self._drain_plain(math.inf):
                    await self._linger()
                return False
            if ex._close or not await self._drain_plain(self.server.max_body):
                await self._linger()
                return False
        return not ex._close and not self.server.shutting_down

    async def _drain_plain(self, budget: float) -> bool:
        """Read and drop the rest of a request body; True once it has all arrived."""
        with trio.move_on_after(_DRAIN_SECONDS):
            while self.body_left:
                if not self.stash:
                    try:
                        more = await self._more_body(
                            trio.current_time() + self.server.header_timeout
                        )
                        if not more:
                            return False
                    except _Timeout:
                        return False
                    continue
                dropped = min(len(self.stash), self.body_left)
                del self.stash[:dropped]
                if self.wake is not None:
                    self._notify()
                self.body_left -= dropped
                budget -= dropped
                if budget < 0:
                    return False
            return True
        return False

    async def _exchange(self, ex: H11Exchange, h: h11.Connection) -> bool:
        """Run the handler on one exchange; True if the connection can take another request."""
        if not await self._run_handler(ex) or not await self._finish_response(ex):
            return False
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
    """One HTTP/1.1 request on a connection, as an :class:`HttpExchange`."""

    __slots__ = (
        "_body",
        "_close",
        "_complete",
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
    )

    def __init__(self, conn: _Connection, method: str, target: str, headers: Headers) -> None:
        self._conn = conn
        self._method = method
        self._path, self._query = _split_target(target)
        self._headers = origin_headers(target, headers)
        self._body: bytes | None = None
        self._too_large = False
        self._started = False
        self._streaming = False
        self._ended = False
        self._no_body = method == "HEAD"
        self._expect_refused = False
        self._failed: tuple[int, str] | None = None
        self._pending_head: bytes | None = None
        # Without h11: the response is all written out / the connection closes after it.
        self._complete = False
        self._close = False

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
        if h is None:
            body = await self._read_plain_body()
        else:
            body = await self._read_h11_body(h, cap)
        self._body = body
        return body

    def _too_slow(self, pace: BodyPace, received: int) -> ClientDisconnected:
        self._failed = (408, pace.reason(received, trio.current_time()))
        return ClientDisconnected("the client sent its request body too slowly")

    async def _read_plain_body(self) -> bytes:
        conn = self._conn
        left = conn.body_left
        if len(conn.stash) >= left:
            # The usual case: the body came with the head.
            conn.body_left = 0
            return conn._take(left)
        pace = conn.server.body_pace()
        parts: list[bytes] = []
        received = 0
        while left:
            if not conn.stash:
                try:
                    more = await conn._more_body(pace.deadline(received))
                except _Timeout:
                    raise self._too_slow(pace, received) from None
                if not more:
                    raise ClientDisconnected("the client disconnected before sending its body")
                continue
            part = conn._take(left)
            left -= len(part)
            received += len(part)
            conn.body_left = left
            parts.append(part)
        return b"".join(parts)

    async def _read_h11_body(self, h: h11.Connection, cap: int) -> bytes:
        conn = self._conn
        if h.they_are_waiting_for_100_continue:
            await conn.send(h.send(h11.InformationalResponse(status_code=100, headers=[])))
        pace = conn.server.body_pace()
        parts: list[bytes] = []
        size = 0
        while True:
            try:
                event = await conn._event(pace.deadline(size))
            except _Timeout:
                raise self._too_slow(pace, size) from None
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
        return parts[0] if len(parts) == 1 and type(parts[0]) is bytes else b"".join(parts)

    def _head(self, status: int, headers: Sequence[tuple[str, str]], length: int | None) -> bytes:
        if self._started:
            raise RuntimeError("the response has already started")
        self._started = True
        conn = self._conn
        h = conn.h11
        if h is None:
            return self._plain_head(status, headers, length)
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

    def _plain_head(
        self, status: int, headers: Sequence[tuple[str, str]], length: int | None
    ) -> bytes:
        """The response head, written as h11 would write it for this request."""
        conn = self._conn
        close = not conn.keep_alive or self._too_large or conn.server.shutting_down
        said_close = False
        lines = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b""))]
        for name, value in headers:
            if _HEADER_NAME.fullmatch(name) is None:
                raise h11.LocalProtocolError(f"Illegal header name {name!r}")
            if _HEADER_VALUE.fullmatch(value) is None:
                raise h11.LocalProtocolError(f"Illegal header value {value!r}")
            lower = name.lower()
            if lower == "content-length" or lower == "transfer-encoding":
                continue  # the framing is ours to choose, as with h11
            if lower == "connection" and "close" in (
                token.strip() for token in value.lower().split(",")
            ):
                close = said_close = True
            lines.append(b"%s: %s\r\n" % (name.encode("latin-1"), value.encode("latin-1")))
        if status in _NO_BODY_STATUS:
            self._no_body = True
        elif length is not None:
            lines.append(b"content-length: %d\r\n" % length)
        else:
            lines.append(_CHUNKED)
        if close and not said_close:
            lines.append(b"connection: close\r\n")
        lines.append(b"\r\n")
        self._close = close
        return b"".join(lines)

    async def respond(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        conn = self._conn
        h = conn.h11
        data = self._head(status, headers, len(body))
        if h is None:
            if body and not self._no_body:
                data += body
            self._complete = True
        else:
            if body and not self._no_body:
                data += h.send(h11.Data(data=body))
            data += h.send(h11.EndOfMessage())
        await conn.send(data)

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
            h = conn.h11
            if h is None:
                payload = b"%x\r\n%s\r\n" % (len(data), data)
            else:
                payload = h.send(h11.Data(data=data))
            await conn.send(payload if head is None else head + payload)
        elif head is not None:
            await conn.send(head)
        else:
            await trio.lowlevel.checkpoint()

    async def end_stream(self, data: bytes = b"") -> None:
        if not self._streaming or self._ended:
            await trio.lowlevel.checkpoint()
            return
        self._ended = True
        conn = self._conn
        if conn.gone:
            await trio.lowlevel.checkpoint()
            return
        head, self._pending_head = self._pending_head, None
        h = conn.h11
        if h is None:
            if self._no_body:
                end = b""
            elif data:
                end = b"%x\r\n%s\r\n%s" % (len(data), data, _LAST_CHUNK)
            else:
                end = _LAST_CHUNK
            self._complete = True
        else:
            end = h.send(h11.Data(data=data)) if data and not self._no_body else b""
            end += h.send(h11.EndOfMessage())
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
    request_header_timeout: float = 10.0,
    body_timeout: float = 60.0,
    min_body_rate: float = 500.0,
    body_rate_grace: float = 5.0,
    keep_alive_timeout: float = 75.0,
    max_header_bytes: int = 64 * 1024,
    max_connections: int | None = None,
    reserve_connections: int = 0,
    reserve_handler: Handler | None = None,
    connection_budget: Budget | None = None,
    reserve_budget: Budget | None = None,
    on_shutdown: Callable[[], None] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``handler`` over HTTP/1.1 (h11 on trio streams) until ``shutdown_trigger`` returns.

    ``background`` is started first (``await nursery.start(background)``) and runs until every
    connection is done. ``task_status.started`` gets the bound URLs (``["http://127.0.0.1:PORT"]``,
    ``https`` with ``ssl_context``). Once ``shutdown_trigger`` returns: no new connections,
    idle keep-alive connections close at once, exchanges in progress get ``graceful_timeout``
    seconds, then are cancelled. ``request_header_timeout`` bounds the time to receive a
    request's head (from connecting, for the first one); a body must arrive within
    ``body_timeout`` seconds of when the handler starts reading it, and at ``min_body_rate``
    bytes/s or faster once ``body_rate_grace`` seconds have passed (408 and close otherwise);
    ``keep_alive_timeout`` how long an idle connection is kept. ``max_connections`` caps
    open connections: at the cap a new connection takes the place of the oldest idle one;
    with none idle it is one of the ``reserve_connections``, whose requests go to
    ``reserve_handler`` (meant to answer health probes and refuse the rest), and beyond
    those further clients wait in the listen backlog. ``connection_budget`` and
    ``reserve_budget``, when given, are the counters used (their limits are set here), for
    whoever reports them.
    ``on_shutdown`` is called the moment shutdown begins (the MCP endpoint ends its SSE
    streams there).
    """
    server = _Server(
        handler,
        max_body=max_body,
        ssl_context=ssl_context,
        header_timeout=request_header_timeout,
        body_timeout=body_timeout,
        min_body_rate=min_body_rate,
        body_rate_grace=body_rate_grace,
        keep_alive_timeout=keep_alive_timeout,
        max_header_bytes=max_header_bytes,
        max_connections=max_connections,
        reserve_connections=reserve_connections,
        reserve_handler=reserve_handler,
        budget=connection_budget,
        reserve_budget=reserve_budget,
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
