"""One legacy Streamable HTTP session as a :class:`Transport`, with per-request SSE streams.

POSTs feed client messages in; the session's :class:`Peer` sends messages out and this
transport routes each to the right stream: a response (and messages related to a
request) to that request's stream, everything else to the standalone GET stream. On
SSE streams every message is first written to the event store, so a client that lost
its connection resumes with ``Last-Event-ID`` and misses nothing.
"""

from __future__ import annotations

import itertools
import secrets
from typing import Any

import trio

from .._protocol.jsonrpc import ErrorResponse, Message, RequestId, Response
from .._runtime.transport import Incoming, TransportBase
from .._state.event_store import EventStore

__all__ = ["HttpSessionTransport", "SessionStream"]

Delivery = tuple[str | None, Message]
"""(event id, message); the id is None on streams that are not resumable."""

_ANSWERS = (Response, ErrorResponse)


class SessionStream:
    """One outgoing stream: the SSE or JSON response of a POST, or the standalone stream."""

    __slots__ = (
        "_buffer",
        "_consumer",
        "_consumer_receive",
        "_holding",
        "_written_event",
        "abandoned",
        "finished",
        "id",
        "pushed",
        "reply",
        "request_id",
        "resumable",
        "spilled",
        "written",
    )

    def __init__(
        self, stream_id: str, request_id: RequestId | None, *, resumable: bool, buffer: int
    ) -> None:
        self.id = stream_id
        self.request_id = request_id
        self.resumable = resumable
        self._buffer = buffer
        self._consumer: trio.MemorySendChannel[Delivery] | None = None
        self._consumer_receive: trio.MemoryReceiveChannel[Delivery] | None = None
        self._holding = False
        self.reply: Message | None = None
        """The response to ``request_id``, kept here while the stream is held (:meth:`hold`)."""
        self.finished = False
        """True once the response to ``request_id`` went out on this stream."""
        self.abandoned = False
        """True once the request was cancelled: it will never be answered."""
        self.pushed = 0
        """Messages handed to writers so far."""
        self.written = 0
        """Messages writers reported written (:meth:`wrote`) so far."""
        self._written_event: trio.Event | None = None
        self.spilled = 0
        """For a held stream: how far the standalone stream must be written before the
        response, because messages about this request went there (0: none did)."""

    @property
    def attached(self) -> bool:
        """True while a writer is streaming this to a client."""
        return self._consumer is not None or self._holding

    def attach(self) -> trio.MemoryReceiveChannel[Delivery]:
        """Start receiving this stream's messages (one writer at a time)."""
        if self.attached:
            raise RuntimeError(f"stream {self.id} already has a writer")
        send, receive = trio.open_memory_channel[Delivery](self._buffer)
        self._consumer = send
        self._consumer_receive = receive
        return receive

    def hold(self) -> None:
        """Keep the response in :attr:`reply` instead of handing it over a channel.

        For a writer that produces the response in its own task (a JSON answer served
        inline): the response is there once the request returns, so no hand-over between
        tasks is needed. Only the response is kept; a held stream takes nothing else.
        """
        if self.attached:
            raise RuntimeError(f"stream {self.id} already has a writer")
        self._holding = True

    def detach(self, receive: trio.MemoryReceiveChannel[Delivery] | None = None) -> None:
        """The writer went away: further messages are only stored (if resumable).

        A writer passes its own channel, so a writer that was replaced (by a resume)
        cannot detach its successor.
        """
        if receive is not None and receive is not self._consumer_receive:
            return
        self._holding = False
        consumer, self._consumer = self._consumer, None
        self._consumer_receive = None
        if consumer is not None:
            consumer.close()
        self._wake_written()

    def wrote(self) -> None:
        """The writer wrote one more message (or skipped it) to its client."""
        self.written += 1
        self._wake_written()

    def _wake_written(self) -> None:
        event = self._written_event
        if event is not None:
            self._written_event = None
            event.set()

    async def written_through(self, count: int) -> None:
        """Wait until the writer has written ``count`` messages, or there is no writer."""
        while self.written < count and self._consumer is not None:
            if self._written_event is None:
                self._written_event = trio.Event()
            await self._written_event.wait()

    async def push(self, event_id: str | None, message: Message) -> None:
        answers = (
            self.request_id is not None
            and isinstance(message, _ANSWERS)
            and message.id == self.request_id
        )
        if self._holding:
            if answers:
                self.reply = message
        else:
            consumer = self._consumer
            if consumer is not None:
                try:
                    await consumer.send((event_id, message))
                    self.pushed += 1
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    self._consumer = None
        if answers:
            self.finished = True


class HttpSessionTransport(TransportBase):
    """The transport of one HTTP session's :class:`Peer`."""

    kind = "http"

    def __init__(
        self,
        session_id: str,
        event_store: EventStore,
        *,
        incoming_buffer: int = 64,
        stream_buffer: int = 32,
    ) -> None:
        self.session_id = session_id
        self.event_store = event_store
        self._in_send, self._in_receive = trio.open_memory_channel[Incoming](incoming_buffer)
        self._stream_buffer = stream_buffer
        self._by_request: dict[RequestId, SessionStream] = {}
        self._streams: dict[str, SessionStream] = {}
        # The session id in a stream id lets a resume prove the stream is this session's;
        # one random part per session and a counter keep the ids unique and unguessable
        # without drawing random bytes for every request.
        self._stream_prefix = f"{session_id}.{secrets.token_urlsafe(9)}"
        self._stream_ids = itertools.count()
        self.standalone = self._new_stream(None, resumable=True)
        self._closed = False

    def _new_stream(self, request_id: RequestId | None, *, resumable: bool) -> SessionStream:
        stream_id = f"{self._stream_prefix}{next(self._stream_ids):x}"
        stream = SessionStream(
            stream_id, request_id, resumable=resumable, buffer=self._stream_buffer
        )
        self._streams[stream_id] = stream
        return stream

    def owns(self, stream_id: str) -> bool:
        """True if ``stream_id`` names a stream of this session (live or finished)."""
        return stream_id.startswith(self.session_id + ".")

    def stream(self, stream_id: str) -> SessionStream | None:
        """A stream of this session that is still open."""
        return self._streams.get(stream_id)

    def open_request_stream(self, request_id: RequestId, *, resumable: bool) -> SessionStream:
        """The stream that will carry the answer to ``request_id`` (before it is delivered)."""
        stream = self._new_stream(request_id, resumable=resumable)
        self._by_request[request_id] = stream
        return stream

    def forget(self, stream: SessionStream) -> None:
        """Drop a finished request stream from routing."""
        self._streams.pop(stream.id, None)
        if stream.request_id is not None and self._by_request.get(stream.request_id) is stream:
            del self._by_request[stream.request_id]

    async def deliver(self, message: Incoming) -> None:
        """Hand a client message (or batch) from a POST to the session's peer."""
        await self._in_send.send(message)

    # -- Transport ------------------------------------------------------------------------

    def _route(self, message: Message, related: RequestId | None) -> SessionStream:
        if isinstance(message, _ANSWERS) and message.id is not None:
            stream = self._by_request.get(message.id)
            if stream is not None:
                return stream
        if related is not None:
            stream = self._by_request.get(related)
            # A JSON response can only carry the response itself.
            if stream is not None and stream.resumable and not stream.finished:
                return stream
        return self.standalone

    async def send(self, message: Message, *, related_request_id: RequestId | None = None) -> None:
        """Route a message to its stream, storing it first on resumable streams."""
        if self._closed:
            raise trio.ClosedResourceError("the session is closed")
        stream = self._route(message, related_request_id)
        event_id: str | None = None
        if stream.resumable:
            event_id = await self.event_store.append(stream.id, message.to_dict())
        await stream.push(event_id, message)
        if related_request_id is not None and stream is self.standalone:
            # About a request whose own response is JSON: that response should not
            # overtake it on the way to the client.
            held = self._by_request.get(related_request_id)
            if held is not None and held.attached:
                held.spilled = stream.pushed
        if stream.finished:
            if stream.resumable:
                await self.event_store.close_stream(stream.id)
            if not stream.attached:
                # Nobody is reading it now; a resume replays it from the event store.
                self.forget(stream)

    async def send_batch(self, messages: list[Message]) -> None:
        """Batch answers travel one by one on their requests' streams."""
        for message in messages:
            await self.send(message)

    async def receive(self) -> Incoming:
        """The next client message; EndOfChannel once the session is closed."""
        return await self._in_receive.receive()

    async def aclose(self) -> None:
        """Close the session: no more input, every stream ends."""
        self._closed = True
        self._in_send.close()
        self._in_receive.close()
        for stream in list(self._streams.values()):
            stream.detach()

    def close_request_stream(self, request_id: RequestId) -> None:
        """End the HTTP response carrying ``request_id`` now; the client resumes it later.

        This is the 2025-11-25 "polling" pattern: the request goes on, its messages are
        stored, and a GET with ``Last-Event-ID`` delivers them.
        """
        stream = self._by_request.get(request_id)
        if stream is not None and stream.resumable:
            stream.detach()

    def detach_all(self) -> None:
        """End every writer (shutdown): their streams stay resumable from the event store."""
        for stream in list(self._streams.values()):
            stream.detach()

    def abandon_request(self, request_id: RequestId) -> None:
        """The request was cancelled and will get no answer: end its response now."""
        stream = self._by_request.get(request_id)
        if stream is not None:
            stream.abandoned = True
            stream.detach()
            self.forget(stream)

    def close_input(self) -> None:
        """End the session's input (the peer then finishes in-flight work and stops)."""
        self._in_send.close()

    def statistics(self) -> dict[str, Any]:
        """Open streams and attached writers."""
        return {
            "streams": len(self._streams),
            "attached": sum(1 for s in self._streams.values() if s.attached),
        }
