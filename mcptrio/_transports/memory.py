"""In-memory transport pair: two bounded channels, no serialization unless asked for.

A receiving end may also take messages directly (see :meth:`MemoryTransport.accept_direct`):
a response goes straight to the waiting caller and a request sent with
:meth:`MemoryTransport.call` is served in the caller's task, like a function call, instead
of each waking a reader task and then a task of its own. Direct hand-over only happens
while nothing sent earlier is still waiting for the reader, so messages keep their order.
"""

from __future__ import annotations

import math

import trio

from .._protocol.jsonrpc import Message, Request, RequestId, decode, encode
from .._runtime.transport import DirectReceiver, Incoming, TransportBase

__all__ = ["DirectReceiver", "MemoryTransport", "memory_transport_pair"]


class MemoryTransport(TransportBase):
    """One end of an in-memory connection (see :func:`memory_transport_pair`)."""

    kind = "memory"

    def __init__(
        self,
        send_channel: trio.MemorySendChannel[Incoming],
        receive_channel: trio.MemoryReceiveChannel[Incoming],
        *,
        serialize: bool,
        direct: bool = True,
    ) -> None:
        self._send = send_channel
        self._receive = receive_channel
        self._serialize = serialize
        self._allow_direct = direct
        self._other: MemoryTransport | None = None
        self._direct: DirectReceiver | None = None
        # Messages queued for this end and not yet finished by its reader: the one being
        # handled counts until the reader asks for the next, so nothing can overtake it.
        self._unfinished = 0
        self._reader_holds_one = False
        self._closed = False

    def accept_direct(self, receiver: DirectReceiver | None) -> None:
        """Let the other end hand messages to ``receiver`` directly (None: stop)."""
        self._direct = receiver

    def _direct_target(self) -> DirectReceiver | None:
        other = self._other
        if other is None or self._closed or other._closed or other._unfinished:
            return None
        if not self._allow_direct:
            return None
        return other._direct

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
        copy = self._copy(message)
        receiver = self._direct_target()
        if receiver is not None:
            await trio.lowlevel.checkpoint_if_cancelled()
            if receiver.take_now(copy):
                # No schedule point: whoever sends a response or request waits next
                # anyway, and yielding here would cost each round trip a whole batch.
                return
        await self._enqueue(copy)

    async def call(self, request: Request, *, related_request_id: RequestId | None = None) -> None:
        """Send a request whose answer the caller waits for next.

        With a direct receiver on the other end, the request is served in the calling
        task and its answer has arrived when this returns; cancelling the caller cancels
        the request there, as ``notifications/cancelled`` would.
        """
        copy = self._copy(request)
        assert isinstance(copy, Request)
        receiver = self._direct_target()
        if receiver is not None:
            await trio.lowlevel.checkpoint_if_cancelled()
            if await receiver.serve_now(copy):
                return
        await self._enqueue(copy)

    async def send_batch(self, messages: list[Message]) -> None:
        """Send several messages as one batch."""
        await self._enqueue([self._copy(m) for m in messages])

    async def _enqueue(self, item: Incoming) -> None:
        other = self._other
        if other is not None:
            other._unfinished += 1
        try:
            await self._send.send(item)
        except BaseException:
            if other is not None:
                other._unfinished -= 1
            raise

    async def receive(self) -> Incoming:
        """Receive the next message; :class:`trio.EndOfChannel` once the other end closed."""
        if self._reader_holds_one:
            self._reader_holds_one = False
            self._unfinished -= 1
        item = await self._receive.receive()
        self._reader_holds_one = True
        return item

    async def aclose(self) -> None:
        """Close both directions of this end."""
        self._closed = True
        self._direct = None
        await self._send.aclose()
        await self._receive.aclose()


def memory_transport_pair(
    *, buffer: int = 64, serialize: bool = True, direct: bool = True
) -> tuple[MemoryTransport, MemoryTransport]:
    """Two connected transports: (client end, server end).

    ``buffer`` bounds each direction (backpressure, never unbounded). With
    ``serialize=True`` (the default) every message goes through the JSON codec.

    Between two peers, messages are handed over directly by default: a request whose
    caller waits for it is served in the caller's task (cancelled with it, rather than by
    ``notifications/cancelled``) and a response goes straight to its caller, which makes a
    round trip about twice as fast. ``direct=False`` sends everything through the channel
    and the other end's reader, as over a real wire.
    """
    if buffer < 0 or buffer == math.inf:
        raise ValueError("buffer must be a finite, non-negative number")
    a_send, b_receive = trio.open_memory_channel[Incoming](buffer)
    b_send, a_receive = trio.open_memory_channel[Incoming](buffer)
    a = MemoryTransport(a_send, a_receive, serialize=serialize, direct=direct)
    b = MemoryTransport(b_send, b_receive, serialize=serialize, direct=direct)
    a._other, b._other = b, a
    return a, b
