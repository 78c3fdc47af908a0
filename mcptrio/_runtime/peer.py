"""The protocol runtime for one connection: requests out, requests in, cancellation, progress.

One nursery per connection, one reader task, one task per in-flight incoming request,
each under its own cancel scope so ``notifications/cancelled`` stops exactly that request.
Knows JSON-RPC and the few notifications every MCP peer handles the same way
(cancellation, progress); everything else goes to the :class:`MessageHandler`.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import trio

from .._protocol.errors import ConnectionClosed, InternalError, InvalidRequest, MCPError
from .._protocol.jsonrpc import (
    ErrorResponse,
    InvalidMessage,
    Message,
    Notification,
    Request,
    RequestId,
    Response,
    encode,
    error_response,
    is_request_id,
    params_too_deep,
)
from .groups import unwrap_single_error
from .pipeline import PipelineFacts, Side, Stages
from .transport import Batch, Transport

if TYPE_CHECKING:
    from .._ops.metrics import Metrics

__all__ = ["MessageHandler", "Peer", "PeerStatistics", "ProgressCallback", "open_peer"]

log = logging.getLogger("mcptrio.peer")

ProgressCallback = Callable[[float, float | None, str | None], Awaitable[None]]
"""Called with (progress, total, message) for each progress notification of a request."""


class MessageHandler(Protocol):
    """What a :class:`Peer` calls for incoming requests and notifications."""

    async def handle_request(self, peer: Peer, request: Request) -> dict[str, Any]:
        """Return the result dict, or raise :class:`MCPError` to answer with an error."""
        ...

    async def handle_notification(self, peer: Peer, notification: Notification) -> None:
        """Handle a notification (cancellation and progress are handled by the peer)."""
        ...


@attrs.frozen
class PeerStatistics:
    """A snapshot of one connection's counters."""

    requests_sent: int
    requests_received: int
    notifications_sent: int
    notifications_received: int
    pending_outgoing: int
    in_flight_incoming: int
    cancelled_incoming: int
    refused_incoming: int
    closed: bool


class _Pending:
    __slots__ = ("done", "on_progress", "outcome")

    def __init__(self, on_progress: ProgressCallback | None) -> None:
        self.done = trio.Event()
        self.outcome: Response | ErrorResponse | MCPError | None = None
        self.on_progress = on_progress


class _InFlight:
    __slots__ = ("cancelled_by_peer", "scope")

    def __init__(self) -> None:
        self.scope = trio.CancelScope()
        self.cancelled_by_peer = False


class Peer:
    """One side of an MCP connection. Create it with :func:`open_peer`."""

    def __init__(
        self,
        transport: Transport,
        handler: MessageHandler,
        nursery: trio.Nursery,
        *,
        max_in_flight: int,
        cancel_notify_timeout: float,
        name: str,
        metrics: Metrics | None = None,
        ordered_methods: Collection[str] = (),
        stages: Stages | None = None,
        side: Side = "server",
    ) -> None:
        self.transport = transport
        self.stages = stages
        """What runs around processing each message (the interceptor chain), if anything."""
        self.facts = PipelineFacts(side, transport.kind)
        """What the pipeline's stages are told about this connection."""
        self._ordered_methods = frozenset(ordered_methods)
        # Requests start in arrival order: the next number to give out, the number whose
        # turn it is to start, and the requests waiting for their turn.
        self._next_turn = 0
        self._turn = 0
        self._turn_waiters: dict[int, trio.Event] = {}
        self._metrics = metrics
        self.handler = handler
        self.name = name
        self.batches_allowed = False
        """Set by the handler once the negotiated revision allows JSON-RPC batches."""
        self._nursery = nursery
        self._max_in_flight = max_in_flight
        self._cancel_notify_timeout = cancel_notify_timeout
        self._ids = itertools.count(1)
        self._pending: dict[RequestId, _Pending] = {}
        self._progress: dict[RequestId, _Pending] = {}
        self._in_flight: dict[RequestId, _InFlight] = {}
        self._closed = False
        self._closed_event = trio.Event()
        self._idle = trio.Event()
        self._answering = 0
        self._close_reason = "connection closed"
        self._requests_sent = 0
        self._requests_received = 0
        self._notifications_sent = 0
        self._notifications_received = 0
        self._cancelled_incoming = 0
        self._refused_incoming = 0

    # -- outgoing -------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once the transport has ended; requests then fail at once."""
        return self._closed

    async def wait_closed(self) -> None:
        """Wait until the connection has ended."""
        await self._closed_event.wait()

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        related_request_id: RequestId | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        """Send a request and wait for its result.

        Raises the :class:`MCPError` subclass matching an error response, or
        :class:`ConnectionClosed` if the connection ends first. Bound the wait with
        ``trio.fail_after``; when the caller is cancelled, the peer is sent
        ``notifications/cancelled`` (within ``cancel_notify_timeout``) before re-raising.
        """
        if self._closed:
            raise ConnectionClosed(f"{self.name}: {self._close_reason}")
        request_id = next(self._ids)
        pending = _Pending(on_progress)
        if on_progress is not None:
            params = dict(params or {})
            meta = dict(params.get("_meta") or {})
            meta["progressToken"] = request_id
            params["_meta"] = meta
            self._progress[request_id] = pending
        self._pending[request_id] = pending
        stages = self.stages
        on_wire = False
        try:
            try:
                request = Request(request_id, method, params)
                if stages is not None and stages.active:
                    sent = await stages.on_request(self.facts, self.facts.outgoing(), request)
                    if not isinstance(sent, Request):
                        # Answered by the chain: it never reaches the wire.
                        pending.outcome = sent
                        pending.done.set()
                    request = sent if isinstance(sent, Request) else request
                if not pending.done.is_set():
                    on_wire = True
                    # In memory the other end may serve it in this task (see Transport.call).
                    await self.transport.call(request, related_request_id=related_request_id)
                    self._requests_sent += 1
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise ConnectionClosed(f"{self.name}: could not send {method}: {exc}") from None
            await pending.done.wait()
        except trio.Cancelled:
            # A request the chain still held never reached the other side: nothing to cancel.
            if on_wire and not pending.done.is_set() and not self._closed:
                await self._send_cancel(request_id, "the caller cancelled the request")
            raise
        finally:
            self._pending.pop(request_id, None)
            self._progress.pop(request_id, None)
        outcome = pending.outcome
        if stages is not None and stages.active and isinstance(outcome, Response | ErrorResponse):
            outcome = await stages.on_response(self.facts, self.facts.incoming(), outcome)
        if isinstance(outcome, Response):
            return outcome.result
        if isinstance(outcome, ErrorResponse):
            raise outcome.to_exception()
        assert isinstance(outcome, MCPError)
        raise outcome

    async def _send_cancel(self, request_id: RequestId, reason: str) -> None:
        with trio.CancelScope(shield=True) as scope:
            scope.relative_deadline = self._cancel_notify_timeout
            with contextlib.suppress(MCPError):
                await self.notify(
                    "notifications/cancelled", {"requestId": request_id, "reason": reason}
                )

    async def notify(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        related_request_id: RequestId | None = None,
    ) -> None:
        """Send a notification. Raises :class:`ConnectionClosed` if the connection is gone."""
        if self._closed:
            raise ConnectionClosed(f"{self.name}: {self._close_reason}")
        notification = Notification(method, params)
        stages = self.stages
        if stages is not None and stages.active:
            admitted = await stages.on_notification(self.facts, self.facts.outgoing(), notification)
            if admitted is None:
                return
            notification = admitted
        try:
            await self.transport.send(notification, related_request_id=related_request_id)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ConnectionClosed(f"{self.name}: could not send {method}: {exc}") from None
        self._notifications_sent += 1
        if self._metrics is not None:
            self._metrics.record_notification(method, "out")

    async def _send_reply(self, message: Message, related: RequestId | None) -> None:
        # The peer may be gone; a reply nobody can read is dropped, never an error.
        try:
            await self.transport.send(message, related_request_id=related)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            log.debug("%s: dropped reply, transport closed", self.name)
        except (TypeError, ValueError) as exc:
            # A handler produced a result that cannot be encoded: the requester still
            # gets an answer, and the connection keeps serving everyone else.
            if not isinstance(message, Response):
                raise
            log.exception("%s: could not encode the result for %r", self.name, message.id)
            await self._send_reply(
                error_response(
                    message.id,
                    InternalError(f"the result could not be encoded as JSON: {exc}"),
                ),
                related,
            )

    def statistics(self) -> PeerStatistics:
        """A snapshot of this connection's counters."""
        return PeerStatistics(
            requests_sent=self._requests_sent,
            requests_received=self._requests_received,
            notifications_sent=self._notifications_sent,
            notifications_received=self._notifications_received,
            pending_outgoing=len(self._pending),
            in_flight_incoming=len(self._in_flight),
            cancelled_incoming=self._cancelled_incoming,
            refused_incoming=self._refused_incoming,
            closed=self._closed,
        )

    # -- incoming -------------------------------------------------------------------------

    async def _reader(self) -> None:
        reason = "the peer closed the connection"
        try:
            while True:
                incoming = await self.transport.receive()
                if isinstance(incoming, list):
                    await self._on_batch(incoming)
                else:
                    await self._on_message(incoming)
            # A clean end of input (stdin EOF) may still leave the output open: requests
            # in flight may finish and answer; the owner bounds that with its grace period.
        except trio.EndOfChannel:
            self._mark_closed(reason, cancel_in_flight=False)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._mark_closed(f"the connection broke: {exc or type(exc).__name__}")
        finally:
            self._mark_closed(reason, cancel_in_flight=False)

    def _mark_closed(self, reason: str, *, cancel_in_flight: bool = True) -> None:
        if cancel_in_flight:
            for entry in self._in_flight.values():
                entry.scope.cancel()
        if self._closed:
            return
        self._closed = True
        self._close_reason = reason
        for request_id, pending in list(self._pending.items()):
            if not pending.done.is_set():
                pending.outcome = ConnectionClosed(
                    f"{self.name}: {reason} before answering request {request_id!r}"
                )
                pending.done.set()
        self._closed_event.set()

    async def wait_in_flight_done(self) -> None:
        """Wait until no incoming request is being handled or answered."""
        while self._in_flight or self._answering:
            self._idle = trio.Event()
            await self._idle.wait()

    def incoming_cancel_scope(self, request_id: RequestId) -> trio.CancelScope | None:
        """The cancel scope of an incoming request in flight (None once it finished)."""
        entry = self._in_flight.get(request_id)
        return entry.scope if entry is not None else None

    async def _on_message(self, message: Message) -> None:
        if isinstance(message, Request):
            if message.method in self._ordered_methods:
                # Nothing after it is read until it was answered (a pipelined handshake).
                admitted = self._admit(message)
                if isinstance(admitted, ErrorResponse):
                    await self._send_reply(admitted, None)
                else:
                    await self._run_request(message, admitted)
            else:
                self._start_request(message)
        elif isinstance(message, Notification):
            await self._on_notification(message)
        else:
            self._on_response(message)

    def take_now(self, message: Message) -> bool:
        """Take a request or response handed over directly by the transport.

        Notifications are left to the reader (False), which keeps them in order with
        whatever else it handles.
        """
        if self._closed:
            return False
        if isinstance(message, Request):
            if message.method in self._ordered_methods:
                return False
            self._start_request(message)
            return True
        if isinstance(message, Response | ErrorResponse):
            self._on_response(message)
            return True
        return False

    async def serve_now(self, request: Request) -> bool:
        """Serve ``request`` in the calling task, handed over by the transport.

        Its cancel scope is registered like any other, so closing this peer stops it; the
        caller being cancelled is this request being cancelled by the peer.
        """
        if self._closed or request.method in self._ordered_methods:
            return False
        try:
            await self.serve_inline(request)
        except trio.Cancelled:
            self._cancelled_incoming += 1
            raise
        return True

    def _admit(self, request: Request) -> _InFlight | ErrorResponse:
        """Register an incoming request, or the error refusing it (duplicate id, too many)."""
        self._requests_received += 1
        exc: MCPError
        if request.id in self._in_flight:
            self._refused_incoming += 1
            exc = InvalidRequest(
                f"request id {request.id!r} is already in use by a request still in flight;"
                " use a new id for each request"
            )
            return error_response(request.id, exc)
        if len(self._in_flight) >= self._max_in_flight:
            self._refused_incoming += 1
            exc = InternalError(
                f"too many requests in flight on this connection (limit {self._max_in_flight});"
                " wait for some to finish and retry",
                {"retryable": True},
            )
            return error_response(request.id, exc)
        too_deep = params_too_deep(request.params)
        if too_deep is not None:
            self._refused_incoming += 1
            return error_response(request.id, too_deep)
        entry = _InFlight()
        self._in_flight[request.id] = entry
        return entry

    def _start_request(self, request: Request) -> None:
        admitted = self._admit(request)
        if isinstance(admitted, ErrorResponse):
            self._nursery.start_soon(self._send_reply, admitted, None)
        else:
            seq = self._next_turn
            self._next_turn += 1
            self._nursery.start_soon(self._run_in_turn, request, admitted, seq)

    async def _run_in_turn(self, request: Request, entry: _InFlight, seq: int) -> None:
        """Run a request once those received before it have started.

        Trio runs newly started tasks in either order. Requests then run concurrently, but
        each starts in arrival order and runs up to its first schedule point before the
        next one starts: a request that changes state without waiting (logging/setLevel,
        resources/subscribe) takes effect for every request received after it.
        """
        try:
            if self._turn != seq:
                waiter = self._turn_waiters[seq] = trio.Event()
                await waiter.wait()
        except BaseException:
            self._release(request.id, entry)
            self._check_idle()
            raise
        finally:
            self._turn = seq + 1
            following = self._turn_waiters.pop(seq + 1, None)
            if following is not None:
                following.set()
        await self._run_request(request, entry)

    async def serve_inline(self, request: Request) -> None:
        """Handle ``request`` in the caller's task, as if it had been received.

        For transports where each request already has a task of its own (an HTTP POST):
        it saves a hop through the reader and a task per request. The answer is sent
        through the transport like any other; cancellation and limits work the same.
        """
        if self._closed:
            raise ConnectionClosed(f"{self.name}: {self._close_reason}")
        admitted = self._admit(request)
        if isinstance(admitted, ErrorResponse):
            await self._send_reply(admitted, None)
        else:
            await self._run_request(request, admitted)

    async def _run_request(self, request: Request, entry: _InFlight) -> None:
        try:
            await self._run_request_unguarded(request, entry)
        except Exception:
            # Building or sending the answer failed (the handler's own errors are
            # answered below): this request is lost, the connection goes on.
            log.exception(
                "%s: could not answer %s request %r", self.name, request.method, request.id
            )

    async def _run_request_unguarded(self, request: Request, entry: _InFlight) -> None:
        reply: Message | None = None
        try:
            with entry.scope:
                reply = await self._answer(request)
            if entry.scope.cancelled_caught or entry.cancelled_by_peer:
                # The requester cancelled: the spec says not to answer. A transport with a
                # response per request (HTTP) may end that response now.
                self.transport.abandon_request(request.id)
                return
            if reply is not None:
                # The id is free once the answer is on its way: a requester that has it
                # may reuse the id at once. Shutdown still waits for the answer to be sent.
                self._release(request.id, entry)
                self._answering += 1
                try:
                    await self._send_reply(reply, request.id)
                finally:
                    self._answering -= 1
                    self._check_idle()
        finally:
            self._release(request.id, entry)
            self._check_idle()

    async def _answer(self, request: Request) -> Response | ErrorResponse:
        """The pipeline for one incoming request: stages, processing, stages."""
        stages = self.stages
        if stages is None or not stages.active:
            return await self._process(request)
        admitted = await stages.on_request(self.facts, self.facts.incoming(), request)
        reply = await self._process(admitted) if isinstance(admitted, Request) else admitted
        return await stages.on_response(self.facts, self.facts.outgoing(), reply)

    async def _process(self, request: Request) -> Response | ErrorResponse:
        try:
            return Response(request.id, await self.handler.handle_request(self, request))
        except MCPError as exc:
            return error_response(request.id, exc)
        except Exception as exc:
            log.exception("%s: handler for %s failed", self.name, request.method)
            return error_response(
                request.id,
                InternalError(
                    f"internal error while handling {request.method}: {type(exc).__name__}: {exc}"
                ),
            )

    def _release(self, request_id: RequestId, entry: _InFlight) -> None:
        if self._in_flight.get(request_id) is entry:
            del self._in_flight[request_id]

    def _check_idle(self) -> None:
        if not self._in_flight and not self._answering:
            self._idle.set()

    async def _on_notification(self, notification: Notification) -> None:
        self._notifications_received += 1
        if self._metrics is not None:
            self._metrics.record_notification(notification.method, "in")
        stages = self.stages
        try:
            if stages is not None and stages.active:
                admitted = await stages.on_notification(
                    self.facts, self.facts.incoming(), notification
                )
                if admitted is None:
                    return
                notification = admitted
            await self._handle_notification(notification)
        except Exception:
            # A notification gets no answer: a bad one is logged and dropped, and the
            # connection goes on.
            log.warning(
                "%s: dropped %s: its handling failed", self.name, notification.method, exc_info=True
            )

    async def _handle_notification(self, notification: Notification) -> None:
        params = notification.params or {}
        if notification.method == "notifications/cancelled":
            request_id = params.get("requestId")
            if not is_request_id(request_id):
                log.debug(
                    "%s: ignored notifications/cancelled: requestId must be a string or an"
                    " integer, got %s",
                    self.name,
                    type(request_id).__name__,
                )
                return
            entry = self._in_flight.get(request_id)
            if entry is not None:
                self._cancelled_incoming += 1
                entry.cancelled_by_peer = True
                entry.scope.cancel()
            # Unknown ids are ignored: the request may have just finished.
            return
        if notification.method == "notifications/progress":
            token = params.get("progressToken")
            pending = self._progress.get(token) if is_request_id(token) else None
            if pending is not None and pending.on_progress is not None:
                progress = _finite(params.get("progress"))
                if progress is None:
                    log.debug(
                        "%s: ignored notifications/progress: progress must be a finite number",
                        self.name,
                    )
                    return
                message = params.get("message")
                try:
                    await pending.on_progress(
                        progress,
                        _finite(params.get("total")),
                        message if isinstance(message, str) else None,
                    )
                except Exception:
                    log.exception("%s: progress callback failed", self.name)
                return
        await self.handler.handle_notification(self, notification)

    def _on_response(self, response: Response | ErrorResponse) -> None:
        if response.id is None:
            log.warning(
                "%s: peer reported an error without a request id: %s (%s)",
                self.name,
                getattr(response, "message", ""),
                getattr(response, "code", ""),
            )
            return
        pending = self._pending.get(response.id)
        if pending is None or pending.done.is_set():
            log.debug("%s: response for unknown request id %r ignored", self.name, response.id)
            return
        pending.outcome = response
        pending.done.set()

    async def _on_batch(self, batch: Batch) -> None:
        if not self.batches_allowed:
            exc = InvalidRequest(
                "JSON-RPC batches are only allowed with protocol revision 2025-03-26;"
                " send one message at a time"
            )
            await self._send_reply(error_response(None, exc), None)
            return
        self._nursery.start_soon(self._run_batch, batch)

    async def _run_batch(self, batch: Batch) -> None:
        replies: list[Message] = []

        async def run_one(
            request: Request, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
        ) -> None:
            task_status.started()
            too_deep = params_too_deep(request.params)
            if too_deep is not None:
                replies.append(error_response(request.id, too_deep))
                return
            replies.append(await self._answer(request))

        try:
            async with trio.open_nursery() as nursery:
                for item in batch:
                    if isinstance(item, InvalidMessage):
                        replies.append(error_response(item.request_id, item))
                    elif isinstance(item, Request):
                        self._requests_received += 1
                        # In arrival order, like single requests (see _start_request).
                        await nursery.start(run_one, item)
                    elif isinstance(item, Notification):
                        await self._on_notification(item)
                    else:
                        self._on_response(item)
            if replies:
                await self._send_batch_reply(replies)
        except Exception:
            # This batch is lost (its answers could not be sent); the connection goes on.
            log.exception("%s: could not answer a batch", self.name)

    async def _send_batch_reply(self, replies: list[Message]) -> None:
        try:
            await self.transport.send_batch(replies)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            log.debug("%s: dropped a batch reply, transport closed", self.name)
        except (TypeError, ValueError):
            # Some result cannot be encoded: it alone becomes an error, the rest go out.
            log.exception("%s: could not encode a batch reply", self.name)
            await self._send_batch_reply([_encodable(reply) for reply in replies])


def _encodable(reply: Message) -> Message:
    """``reply``, or an internal error in its place if it cannot be encoded as JSON."""
    try:
        encode(reply)
    except (TypeError, ValueError) as exc:
        if not isinstance(reply, Response):
            raise
        return error_response(
            reply.id, InternalError(f"the result could not be encoded as JSON: {exc}")
        )
    return reply


def _finite(value: object) -> float | None:
    """``value`` as a float if it is a finite JSON number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        return None
    return number if math.isfinite(number) else None


@asynccontextmanager
async def open_peer(
    transport: Transport,
    handler: MessageHandler,
    *,
    max_in_flight: int = 256,
    cancel_notify_timeout: float = 1.0,
    name: str = "peer",
    metrics: Metrics | None = None,
    ordered_methods: Collection[str] = (),
    stages: Stages | None = None,
    side: Side = "server",
) -> AsyncIterator[Peer]:
    """Run the protocol over ``transport`` for the duration of the block.

    With ``metrics``, notifications sent and received are counted there.

    Incoming messages are taken in arrival order: a notification is handled before the
    next message is read, and a request runs up to its first schedule point before the
    next one starts (then they run concurrently). A request whose method is in
    ``ordered_methods`` is answered before anything after it is read; such a handler
    must not wait for the other side (its answer could not be read).

    On exit the reader and every in-flight incoming request are cancelled and the
    transport is closed. If the other side closes first, pending requests fail at
    once with :class:`ConnectionClosed` while the block goes on.
    """
    if max_in_flight < 1:
        raise ValueError("max_in_flight must be at least 1")
    if not (cancel_notify_timeout > 0 and math.isfinite(cancel_notify_timeout)):
        raise ValueError("cancel_notify_timeout must be a positive number of seconds")
    with unwrap_single_error():
        async with trio.open_nursery() as nursery:
            peer = Peer(
                transport,
                handler,
                nursery,
                max_in_flight=max_in_flight,
                cancel_notify_timeout=cancel_notify_timeout,
                name=name,
                metrics=metrics,
                ordered_methods=ordered_methods,
                stages=stages,
                side=side,
            )
            nursery.start_soon(peer._reader)
            transport.accept_direct(peer)
            try:
                yield peer
            finally:
                transport.accept_direct(None)
                peer._mark_closed("the connection was closed locally")
                nursery.cancel_scope.cancel()
                with trio.CancelScope(shield=True):
                    await transport.aclose()
