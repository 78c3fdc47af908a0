"""The transport interface: a transport frames and unframes JSON-RPC messages, nothing more.

Transports know nothing of MCP methods. Bytes that are not JSON, or JSON that is not
JSON-RPC, are answered at the edge by the transport itself; :meth:`Transport.receive`
only ever returns valid envelopes.
"""

from __future__ import annotations

from typing import Protocol, TypeAlias, runtime_checkable

from .._protocol.jsonrpc import InvalidMessage, Message, RequestId

__all__ = ["Batch", "Incoming", "Transport"]

Batch: TypeAlias = list[Message | InvalidMessage]
"""A JSON array of messages (2025-03-26 only); invalid members stand in their place."""

Incoming: TypeAlias = Message | Batch


@runtime_checkable
class Transport(Protocol):
    """A bidirectional, message-oriented connection to one peer."""

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
