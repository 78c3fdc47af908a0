"""A transport over any pair of trio byte streams: one JSON-RPC message per line.

This is the stdio framing (spec: newline-delimited, no embedded newlines, UTF-8), also
usable over TCP or Unix sockets. Lines that are not valid JSON-RPC are answered here,
at the edge, and never reach the layers above.
"""

from __future__ import annotations

import collections
import logging
from typing import TYPE_CHECKING

import attrs
import orjson
import trio

from .._protocol.errors import ParseError
from .._protocol.framing import LineDecoder, LineEvent, Oversized
from .._protocol.jsonrpc import (
    ErrorResponse,
    InvalidMessage,
    Message,
    RequestId,
    decode,
    encode,
    encode_batch,
    malformed_response_error,
)
from .._runtime.transport import Incoming, TransportBase

if TYPE_CHECKING:
    from .._ops.metrics import Metrics

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "StreamTransport", "StreamTransportStatistics"]

DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
"""The longest incoming line accepted by default (4 MiB)."""

_RECEIVE_CHUNK = 65536
_PREVIEW_BYTES = 120

logger = logging.getLogger("mcptrio.transport")


@attrs.frozen(slots=True)
class StreamTransportStatistics:
    """Counters of one :class:`StreamTransport` at one moment.

    A line is one message, so a batch counts once. Replies the transport wrote itself
    (edge errors) count as sent messages; ``rejected_lines`` counts the lines that
    caused them, ``oversized_lines`` the subset rejected for their size.
    """

    name: str
    messages_sent: int
    messages_received: int
    bytes_sent: int
    bytes_received: int
    rejected_lines: int
    oversized_lines: int


class StreamTransport(TransportBase):
    """A :class:`~mcptrio.Transport` over trio byte streams, one message per line.

    ``send_stream=None`` makes a receive-only transport: :meth:`send` raises
    :class:`trio.ClosedResourceError` and edge errors are counted but not answered.
    Incoming lines longer than ``max_message_bytes`` are discarded without being
    buffered and answered with a -32600 error. With ``metrics``, every message sent and
    received is counted there too, with its size.
    """

    kind = "stream"

    def __init__(
        self,
        send_stream: trio.abc.SendStream | None,
        receive_stream: trio.abc.ReceiveStream,
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        name: str = "stream",
        metrics: Metrics | None = None,
    ) -> None:
        self._send_stream = send_stream
        self._metrics = metrics
        self._receive_stream = receive_stream
        self._decoder = LineDecoder(max_message_bytes)
        self._name = name
        self._pending: collections.deque[LineEvent] = collections.deque()
        self._send_lock = trio.Lock()
        self._receiving = False
        self._eof = False
        self._closed = False
        # Set when a write was interrupted: the peer may hold a partial line, so the
        # next write starts with a newline to end it (the peer then rejects only that).
        self._resync = False
        self._messages_sent = 0
        self._messages_received = 0
        self._bytes_sent = 0
        self._bytes_received = 0
        self._rejected_lines = 0
        self._oversized_lines = 0

    @property
    def name(self) -> str:
        """The name used in logs and statistics."""
        return self._name

    @property
    def max_message_bytes(self) -> int:
        """The longest incoming line accepted, in bytes."""
        return self._decoder.max_line_bytes

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name!r}>"

    def statistics(self) -> StreamTransportStatistics:
        """A snapshot of this transport's counters."""
        return StreamTransportStatistics(
            name=self._name,
            messages_sent=self._messages_sent,
            messages_received=self._messages_received,
            bytes_sent=self._bytes_sent,
            bytes_received=self._bytes_received,
            rejected_lines=self._rejected_lines,
            oversized_lines=self._oversized_lines,
        )

    async def send(self, message: Message, *, related_request_id: RequestId | None = None) -> None:
        """Write one message as one line; waits while the peer is not reading."""
        await self._write_line(encode(message))

    async def send_batch(self, messages: list[Message]) -> None:
        """Write several messages as one JSON array on one line."""
        if not messages:
            raise ValueError("a batch needs at least one message")
        await self._write_line(encode_batch(messages))

    async def _write_line(self, payload: bytes) -> None:
        if self._send_stream is None:
            raise trio.ClosedResourceError(f"{self!r} is receive-only")
        if self._closed:
            raise trio.ClosedResourceError(f"{self!r} is closed")
        async with self._send_lock:
            data = b"\n" + payload + b"\n" if self._resync else payload + b"\n"
            self._resync = True
            await self._send_stream.send_all(data)
            self._resync = False
            self._messages_sent += 1
            self._bytes_sent += len(data)
            if self._metrics is not None:
                self._metrics.record_message("out", len(data))

    async def receive(self) -> Incoming:
        """The next valid message or batch; invalid lines are answered and skipped.

        Raises :class:`trio.EndOfChannel` at a clean end of input and
        :class:`trio.BrokenResourceError` when the stream broke.
        """
        if self._receiving:
            raise trio.BusyResourceError(f"another task is already receiving from {self!r}")
        self._receiving = True
        try:
            while True:
                while not self._pending:
                    if self._eof:
                        raise trio.EndOfChannel
                    await self._fill()
                event = self._pending.popleft()
                message = await self._accept(event)
                if message is not None:
                    return message
        finally:
            self._receiving = False

    async def _fill(self) -> None:
        data = await self._receive_some()
        if data:
            self._bytes_received += len(data)
            self._pending.extend(self._decoder.feed(bytes(data)))
        else:
            self._eof = True
            self._pending.extend(self._decoder.eof())

    async def _receive_some(self) -> bytes | bytearray:
        """Read the next chunk; ``b""`` means end of input. Subclasses may bound the wait."""
        return await self._receive_stream.receive_some(_RECEIVE_CHUNK)

    async def _accept(self, event: LineEvent) -> Incoming | None:
        """Decode one line, or answer it with an error and return None (or, for a malformed
        response to one of our requests, the error that ends that request)."""
        if isinstance(event, Oversized):
            self._oversized_lines += 1
            await self._reject(
                event,
                ErrorResponse(
                    None,
                    -32600,
                    f"message too large: more than {self.max_message_bytes} bytes; "
                    "the line was discarded",
                ),
            )
            return None
        try:
            message = decode(event)
        except ParseError as exc:
            await self._reject(event, ErrorResponse(None, exc.code, f"Parse error: {exc.message}"))
            return None
        except InvalidMessage as exc:
            await self._reject(
                event,
                ErrorResponse(
                    _reply_id(event, exc.request_id), exc.code, f"Invalid Request: {exc.message}"
                ),
            )
            # A malformed answer to one of our requests still ends that request, at once.
            return _failed_request(event, exc)
        self._messages_received += 1
        if self._metrics is not None:
            self._metrics.record_message("in", len(event) + 1)  # the line and its newline
        return message

    async def _reject(self, event: LineEvent, reply: ErrorResponse) -> None:
        self._rejected_lines += 1
        if isinstance(event, Oversized):
            preview = f"<{event.size_so_far}+ bytes>"
        else:
            preview = repr(event[:_PREVIEW_BYTES])
        logger.warning("%s: rejected a line (%s): %s", self._name, reply.message, preview)
        if self._send_stream is None:
            return
        try:
            await self.send(reply)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            # The answer is a courtesy; a dead output side shows up on the next real send.
            logger.debug("%s: could not answer a rejected line", self._name)

    async def aclose(self) -> None:
        """Close both streams; idempotent."""
        self._closed = True
        try:
            if self._send_stream is not None:
                await self._send_stream.aclose()
        finally:
            await self._receive_stream.aclose()


def _failed_request(line: bytes, exc: InvalidMessage) -> ErrorResponse | None:
    if exc.request_id is None:
        return None
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return malformed_response_error(obj, exc)


def _reply_id(line: bytes, request_id: RequestId | None) -> RequestId | None:
    """The id to answer an invalid message with.

    An invalid *response* carries an id the peer never sent us (it is one of ours);
    answering with it would resolve an unrelated request of the peer, so only
    request-shaped messages get their id back.
    """
    if request_id is None:
        return None
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if isinstance(obj, dict) and "method" not in obj and ("result" in obj or "error" in obj):
        return None
    return request_id
