"""One legacy Streamable HTTP session as a :class:`Transport`, with per-request SSE streams.

POSTs feed client messages in; the session's :class:`Peer` sends messages out and this
transport routes each to the right stream: a response (and messages related to a
request) to that request's stream, everything else to the standalone GET stream. On
SSE streams every message is first written to the event store, so a client that lost
its connection resumes with ``Last-Event-ID`` and misses nothing.
"""

from __future__ import annotations

import secrets
from typing import Any

import trio

from ._event_store import EventStore
from ._jsonrpc import ErrorResponse, Message, RequestId, Response
from ._transport import Incoming

__all__ = ["HttpSessionTransport", "SessionStream"]

Delivery = tuple[str | None, Message]
"""(event id, message); the id is None on streams that are not resumable."""


class SessionStream:
    """One outgoing stream: the SSE or JSON response of a POST, or the standalone stream."""

    def __init__(
        self, stream_id: str, request_id: RequestId | None, *, resumable: bool, buffer: int
    ) -> None:
        self.id = stream_id
        self.request_id = request_id
        self.resumable = resumable
        self._buffer = buffer
        self._consumer: trio.MemorySendChannel[Delivery] | None = None
        self._consumer_receive: trio.MemoryReceiveChannel[Delivery] | None = None
        self.finished = False
        """True once the response to ``request_id`` went out on this stream."""
        self.finished_event = trio.Event()
        self.abandoned = False
        """True once the request was cancelled: it will never be answered."""

    @property
    def attached(self) -> bool:
        """True while a writer is streaming this to a client."""
        return self._consumer is not None

    def attach(self) -> trio.MemoryReceiveChannel[Delivery]:
        """Start receiving this stream's messages (one writer at a time)."""
        if self._consumer is not None:
            raise RuntimeError(f"stream {self.id} already has a writer")
        send, receive = trio.open_memory_channel[Delivery](self._buffer)
        self._consumer = send
        self._consumer_receive = receive
        return receive

    def detach(self, receive: trio.MemoryReceiveChannel[Delivery] | None = None) -> None:
        """The writer went away: further messages are only stored (if resumable).

        A writer passes its own channel, so a writer that was replaced (by a resume)
        cannot detach its successor.
        """
        if receive is not None and receive is not self._consumer_receive:
            return
        consumer, self._consumer = self._consumer, None
        self._consumer_receive = None
        if consumer is not None:
            consumer.close()

    async def push(self, event_id: str | None, message: Message) -> None:
        consumer = self._consumer
        if consumer is not None:
            try:
                await consumer.send((event_id, message))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._consumer = None
        if (
            self.request_id is not None
            and isinstance(message, Response | ErrorResponse)
            and message.id == self.request_id
        ):
            self.finished = True
            self.finished_event.set()


class HttpSessionTransport:
    """The transport of one HTTP session's :class:`Peer`."""

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
        self.standalone = self._new_stream(None, resumable=True)
        self._closed = False

    def _new_stream(self, request_id: RequestId | None, *, resumable: bool) -> SessionStream:
        # The session id in the stream id lets a resume prove the stream is this session's.
        stream_id = f"{self.session_id}.{secrets.token_urlsafe(9)}"
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
        if isinstance(message, Response | ErrorResponse) and message.id is not None:
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
        if stream.finished:
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
            stream.finished_event.set()

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
