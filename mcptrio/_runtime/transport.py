"""The transport interface: a transport frames and unframes JSON-RPC messages, nothing more.

Transports know nothing of MCP methods. Bytes that are not JSON, or JSON that is not
JSON-RPC, are answered at the edge by the transport itself; :meth:`Transport.receive`
only ever returns valid envelopes.

What only some transports can do (hand a message straight to the receiving peer, end one
request's response) is part of the interface too: :class:`TransportBase` gives the
defaults, so a peer calls these methods on any transport and never probes for them.
"""

from __future__ import annotations

from typing import Protocol, TypeAlias, runtime_checkable

from .._protocol.jsonrpc import InvalidMessage, Message, Request, RequestId

__all__ = ["Batch", "DirectReceiver", "Incoming", "Transport", "TransportBase"]

Batch: TypeAlias = list[Message | InvalidMessage]
"""A JSON array of messages (2025-03-26 only); invalid members stand in their place."""

Incoming: TypeAlias = Message | Batch


class DirectReceiver(Protocol):
    """What a receiving end hands messages to directly (a :class:`~mcptrio.Peer`)."""

    def take_now(self, message: Message) -> bool:
        """Take ``message`` without blocking, or return False to get it from ``receive()``."""
        ...

    async def serve_now(self, request: Request) -> bool:
        """Serve ``request`` in the calling task and send its answer, or return False at
        once to get it from ``receive()``."""
        ...


@runtime_checkable
class Transport(Protocol):
    """A bidirectional, message-oriented connection to one peer."""

    @property
    def kind(self) -> str:
        """What carries the messages (``"memory"``, ``"stdio"``, ``"http"``, ...), as
        interceptors are told."""
        ...

    async def send(self, message: Message, *, related_request_id: RequestId | None = None) -> None:
        """Send one message; waits while the peer is slow (backpressure).

        ``related_request_id`` names the incoming request this message belongs to, so a
        transport with per-request streams (Streamable HTTP) can route it there.
        Raises :class:`trio.BrokenResourceError` or :class:`trio.ClosedResourceError`
        when the connection is gone.
        """
        ...

    async def send_batch(self, messages: list[Message]) -> None:
        """Send several messages as one JSON array (the answer to a batch)."""
        ...

    async def receive(self) -> Incoming:
        """Wait for the next valid message (or batch).

        Raises :class:`trio.EndOfChannel` when the peer closed the connection and
        :class:`trio.BrokenResourceError` when it broke.
        """
        ...

    async def aclose(self) -> None:
        """Close the connection; idempotent."""
        ...

    def accept_direct(self, receiver: DirectReceiver | None) -> None:
        """Let the other end hand messages to ``receiver`` directly (None: stop)."""
        ...

    async def call(self, request: Request, *, related_request_id: RequestId | None = None) -> None:
        """Send a request whose answer the caller waits for next (in memory the other end
        may serve it in the calling task)."""
        ...

    def abandon_request(self, request_id: RequestId) -> None:
        """The incoming request ``request_id`` will not be answered (it was cancelled): a
        transport with a response per request may end that response now."""
        ...

    def close_request_stream(self, request_id: RequestId) -> None:
        """End the response stream of the incoming request ``request_id`` while it goes on
        (legacy Streamable HTTP: the client resumes it); a no-op elsewhere."""
        ...


class TransportBase:
    """The defaults of the optional parts of :class:`Transport`, for transports to inherit."""

    kind: str = "custom"

    async def send(self, message: Message, *, related_request_id: RequestId | None = None) -> None:
        """Send one message (every transport implements it)."""
        raise NotImplementedError

    def accept_direct(self, receiver: DirectReceiver | None) -> None:
        """Nothing is handed over directly: every message goes through ``receive()``."""

    async def call(self, request: Request, *, related_request_id: RequestId | None = None) -> None:
        """Send the request like any other message."""
        await self.send(request, related_request_id=related_request_id)

    def abandon_request(self, request_id: RequestId) -> None:
        """No response per request: nothing to end."""

    def close_request_stream(self, request_id: RequestId) -> None:
        """No response stream per request: nothing to close."""
