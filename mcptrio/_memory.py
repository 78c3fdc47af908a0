"""In-memory transport pair: two bounded channels, no serialization unless asked for."""

from __future__ import annotations

import math

import trio

from ._jsonrpc import Message, RequestId, decode, encode
from ._transport import Incoming

__all__ = ["MemoryTransport", "memory_transport_pair"]


class MemoryTransport:
    """One end of an in-memory connection (see :func:`memory_transport_pair`)."""

    def __init__(
        self,
        send_channel: trio.MemorySendChannel[Incoming],
        receive_channel: trio.MemoryReceiveChannel[Incoming],
        *,
        serialize: bool,
    ) -> None:
        self._send = send_channel
        self._receive = receive_channel
        self._serialize = serialize

    def _copy(self, message: Message) -> Message:
        # Serializing proves every message survives the wire and keeps the two ends
        # from sharing mutable dicts.
        if not self._serialize:
            return message
        decoded = decode(encode(message))
        assert not isinstance(decoded, list)
        return decoded

    async def send(self, message: Message, *, related_request_id: RequestId | None = None) -> None:
        """Send one message to the other end."""
        await self._send.send(self._copy(message))

    async def send_batch(self, messages: list[Message]) -> None:
        """Send several messages as one batch."""
        await self._send.send([self._copy(m) for m in messages])

    async def receive(self) -> Incoming:
        """Receive the next message; :class:`trio.EndOfChannel` once the other end closed."""
        return await self._receive.receive()

    async def aclose(self) -> None:
        """Close both directions of this end."""
        await self._send.aclose()
        await self._receive.aclose()


def memory_transport_pair(
    *, buffer: int = 64, serialize: bool = True
) -> tuple[MemoryTransport, MemoryTransport]:
    """Two connected transports: (client end, server end).

    ``buffer`` bounds each direction (backpressure, never unbounded). With
    ``serialize=True`` (the default) every message goes through the JSON codec.
    """
    if buffer < 0 or buffer == math.inf:
        raise ValueError("buffer must be a finite, non-negative number")
    a_send, b_receive = trio.open_memory_channel[Incoming](buffer)
    b_send, a_receive = trio.open_memory_channel[Incoming](buffer)
    return (
        MemoryTransport(a_send, a_receive, serialize=serialize),
        MemoryTransport(b_send, b_receive, serialize=serialize),
    )
