"""The interceptor chain and the pause controller that ``Pause`` parks messages in."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable
from typing import Any, Literal

import attrs
import trio

from .._protocol.converter import from_wire
from .._protocol.errors import InternalError, MCPError
from .._protocol.jsonrpc import (
    ErrorResponse,
    InvalidMessage,
    Message,
    Notification,
    Request,
    Response,
    error_response,
    message_from_dict,
)
from .._protocol.methods import method_spec
from .._protocol.versions import era_of
from .._runtime.pipeline import Direction, PipelineFacts, Stages
from .actions import (
    Action,
    Block,
    Continue,
    Delay,
    InterceptContext,
    Interceptor,
    MessageKind,
    Mock,
    Modify,
    Pause,
)

__all__ = ["ChainedStages", "InterceptorChain", "PauseController", "PausedMessage", "combine"]

log = logging.getLogger("mcptrio.intercept")

Final = Continue | Modify | Block | Mock


class PausedMessage:
    """A message held by :class:`Pause` until it is resumed, dropped or times out."""

    def __init__(self, hold_id: int, interceptor: str, context: InterceptContext) -> None:
        self.id = hold_id
        """The hold's number, unique within its controller."""
        self.interceptor = interceptor
        """The name of the interceptor that paused it."""
        self.context = context
        """The message as the interceptor saw it."""
        self._released = trio.Event()
        self._outcome: Final = Continue()

    def _release(self, outcome: Final) -> None:
        if not self._released.is_set():
            self._outcome = outcome
            self._released.set()


class PauseController:
    """Holds paused messages until they are resumed, dropped, or their timeout passes.

    ``default_timeout`` (seconds) applies to a :class:`Pause` without its own;
    ``on_timeout`` says what a hold that times out does: ``"continue"`` lets the message
    go on, ``"drop"`` blocks it (a request is answered with a -32603 error).
    """

    def __init__(
        self,
        *,
        default_timeout: float = 60.0,
        on_timeout: Literal["continue", "drop"] = "drop",
    ) -> None:
        if not default_timeout > 0:
            raise ValueError("default_timeout must be a positive number of seconds")
        if on_timeout not in ("continue", "drop"):
            raise ValueError('on_timeout must be "continue" or "drop"')
        self.default_timeout = default_timeout
        self.on_timeout = on_timeout
        self._held: dict[int, PausedMessage] = {}
        self._ids = itertools.count(1)

    def paused(self) -> list[PausedMessage]:
        """The messages held now, oldest first."""
        return list(self._held.values())

    def _take(self, hold_id: int) -> PausedMessage:
        try:
            return self._held[hold_id]
        except KeyError:
            raise LookupError(f"no paused message with id {hold_id}") from None

    def resume(self, hold_id: int, message: dict[str, Any] | None = None) -> None:
        """Let a held message go on, or its replacement ``message`` (validated like Modify)."""
        held = self._take(hold_id)
        held._release(Continue() if message is None else Modify(message))

    def drop(self, hold_id: int, error: MCPError | None = None) -> None:
        """Stop a held message; a request is answered with ``error`` (default -32603)."""
        held = self._take(hold_id)
        held._release(Block(error or InternalError("the message was dropped while paused")))

    async def hold(
        self, interceptor: str, context: InterceptContext, hold_for: float | None
    ) -> Final:
        """Park one message until it is released; cancellation ends the hold."""
        held = PausedMessage(next(self._ids), interceptor, context)
        self._held[held.id] = held
        try:
            with trio.move_on_after(self.default_timeout if hold_for is None else hold_for):
                await held._released.wait()
                return held._outcome
            if self.on_timeout == "continue":
                return Continue()
            return Block(
                InternalError(f"the message paused by interceptor {interceptor!r} timed out")
            )
        finally:
            del self._held[held.id]


@attrs.frozen
class _Stopped:
    """The chain ended a message: answer it with ``answer`` (a result or an error)."""

    answer: dict[str, Any] | MCPError
    by: str


class InterceptorChain:
    """Interceptors run in registration order on every message of what it is attached to.

    Attach it with ``Server(..., interceptors=chain)``, ``open_client(...,
    interceptors=chain)`` or ``serve_http(..., interceptors=chain)``; the same
    interceptors work on all of them. Register and unregister by name at any time.
    """

    def __init__(
        self,
        interceptors: Iterable[tuple[str, Interceptor]] = (),
        *,
        pause_controller: PauseController | None = None,
    ) -> None:
        self._entries: dict[str, Interceptor] = {}
        # What a message runs through: replaced, never changed, so a message in the
        # chain finishes with the interceptors it started with.
        self._snapshot: tuple[tuple[str, Interceptor], ...] = ()
        self.active = False
        """True while at least one interceptor is registered."""
        self.pause_controller = (
            pause_controller if pause_controller is not None else PauseController()
        )
        """Where :class:`Pause` parks messages."""
        for name, interceptor in interceptors:
            self.register(name, interceptor)

    @property
    def names(self) -> list[str]:
        """The registered interceptors' names, in the order they run."""
        return list(self._entries)

    def register(self, name: str, interceptor: Interceptor) -> None:
        """Add ``interceptor`` at the end of the chain under ``name`` (unique)."""
        if name in self._entries:
            raise ValueError(f"an interceptor named {name!r} is already registered")
        self._entries[name] = interceptor
        self._snapshot = tuple(self._entries.items())
        self.active = True

    def unregister(self, name: str) -> None:
        """Remove the interceptor named ``name``; messages it is handling finish with it."""
        try:
            del self._entries[name]
        except KeyError:
            raise LookupError(f"no interceptor named {name!r} is registered") from None
        self._snapshot = tuple(self._entries.items())
        self.active = bool(self._entries)

    # -- the pipeline's stages ---------------------------------------------------------

    async def on_request(
        self, facts: PipelineFacts, direction: Direction, request: Request
    ) -> Request | Response | ErrorResponse:
        """Run the chain on a request: the request to process, or its answer."""
        outcome = await self._run(facts, direction, request, "request")
        if isinstance(outcome, _Stopped):
            return _answer(request.id, outcome.answer)
        assert isinstance(outcome, Request)
        return outcome

    async def on_notification(
        self, facts: PipelineFacts, direction: Direction, notification: Notification
    ) -> Notification | None:
        """Run the chain on a notification: the one to deliver, or None (dropped)."""
        outcome = await self._run(facts, direction, notification, "notification")
        if isinstance(outcome, _Stopped):
            if isinstance(outcome.answer, dict):
                log.warning(
                    "interceptor %r mocked an answer to %s; a notification is never"
                    " answered, so it was dropped",
                    outcome.by,
                    notification.method,
                )
            return None
        assert isinstance(outcome, Notification)
        return outcome

    async def on_response(
        self, facts: PipelineFacts, direction: Direction, response: Response | ErrorResponse
    ) -> Response | ErrorResponse:
        """Run the chain on an answer: the answer to deliver."""
        kind: MessageKind = "response" if isinstance(response, Response) else "error"
        outcome = await self._run(facts, direction, response, kind)
        if isinstance(outcome, _Stopped):
            return _answer(response.id, outcome.answer)
        assert isinstance(outcome, Response | ErrorResponse)
        return outcome

    async def _run(
        self, facts: PipelineFacts, direction: Direction, message: Message, kind: MessageKind
    ) -> Message | _Stopped:
        context = self._context(facts, direction, message, kind, trio.current_time())
        for name, interceptor in self._snapshot:
            try:
                action: Action = await interceptor(context)
                if type(action) is Continue:
                    continue
                action = await self._settle(name, context, action)
            except Exception as exc:
                log.exception("interceptor %r failed on a %s", name, kind)
                return _Stopped(
                    InternalError(f"interceptor {name!r} failed: {type(exc).__name__}: {exc}"),
                    name,
                )
            if isinstance(action, Continue):
                continue
            if isinstance(action, Modify):
                try:
                    message = _revalidate(message, action.message)
                except MCPError as exc:
                    log.warning("interceptor %r made an invalid modification: %s", name, exc)
                    return _Stopped(
                        InternalError(
                            f"interceptor {name!r} modified the message into an invalid one:"
                            f" {exc.message}"
                        ),
                        name,
                    )
                if isinstance(message, Response):
                    kind = "response"
                elif isinstance(message, ErrorResponse):
                    kind = "error"
                context = self._context(facts, direction, message, kind, context.time)
                continue
            if isinstance(action, Block):
                return _Stopped(action.error, name)
            return _Stopped(dict(action.response), name)
        return message

    @staticmethod
    def _context(
        facts: PipelineFacts,
        direction: Direction,
        message: Message,
        kind: MessageKind,
        now: float,
    ) -> InterceptContext:
        # One context per message (rebuilt only after a Modify): interceptors share it.
        version = facts.protocol_version
        return InterceptContext(
            message=message.to_dict(),
            direction=direction,
            kind=kind,
            era=era_of(version).value if version is not None else None,
            protocol_version=version,
            session_id=facts.session_id,
            session=facts.session,
            principal=facts.principal,
            transport=facts.transport,
            http=facts.http,
            time=now,
        )

    async def _settle(self, name: str, context: InterceptContext, action: Action) -> Final:
        """A Pause or Delay waited out: the action it ends with."""
        if isinstance(action, Pause):
            return await self.pause_controller.hold(name, context, action.timeout)
        if isinstance(action, Delay):
            await trio.sleep(action.duration)
            return action.then
        if not isinstance(action, Continue | Modify | Block | Mock):
            raise TypeError(f"an interceptor must return an action, got {type(action).__name__}")
        return action


def _answer(request_id: Any, answer: dict[str, Any] | MCPError) -> Response | ErrorResponse:
    if isinstance(answer, MCPError):
        return error_response(request_id, answer)
    return Response(request_id, answer)


def _revalidate(original: Message, replacement: Any) -> Message:
    """``replacement`` parsed as a message of the same kind and id as ``original``."""
    try:
        message = message_from_dict(
            dict(replacement) if isinstance(replacement, dict) else replacement
        )
    except InvalidMessage as exc:
        raise InternalError(exc.message) from None
    if type(message) is not type(original) and not (
        isinstance(original, Response | ErrorResponse)
        and isinstance(message, Response | ErrorResponse)
    ):
        raise InternalError(f"a {type(original).__name__} cannot become a {type(message).__name__}")
    old_id = None if isinstance(original, Notification) else original.id
    if isinstance(message, Request | Response | ErrorResponse) and message.id != old_id:
        raise InternalError(f"the id {old_id!r} cannot be changed to {message.id!r}")
    if isinstance(message, Request | Notification):
        spec = method_spec(message.method)
        if spec is not None and spec.params_type is not None:
            params = {k: v for k, v in (message.params or {}).items() if k != "_meta"}
            try:
                from_wire(spec.params_type, params, path="params")
            except MCPError as exc:
                raise InternalError(exc.message) from None
    return message


class ChainedStages:
    """Two chains in a row (an endpoint's around a server's): ``outer`` sees a message
    first on its way in and last on its way out."""

    def __init__(self, outer: Stages, inner: Stages) -> None:
        self.outer = outer
        self.inner = inner

    @property
    def active(self) -> bool:
        """True when either chain has interceptors."""
        return self.outer.active or self.inner.active

    async def on_request(
        self, facts: PipelineFacts, direction: Direction, request: Request
    ) -> Request | Response | ErrorResponse:
        """The outer chain, then (unless it answered) the inner one."""
        admitted = await self.outer.on_request(facts, direction, request)
        if not isinstance(admitted, Request):
            return admitted
        return await self.inner.on_request(facts, direction, admitted)

    async def on_notification(
        self, facts: PipelineFacts, direction: Direction, notification: Notification
    ) -> Notification | None:
        """The outer chain, then (unless it dropped it) the inner one."""
        admitted = await self.outer.on_notification(facts, direction, notification)
        if admitted is None:
            return None
        return await self.inner.on_notification(facts, direction, admitted)

    async def on_response(
        self, facts: PipelineFacts, direction: Direction, response: Response | ErrorResponse
    ) -> Response | ErrorResponse:
        """The inner chain, then the outer one."""
        inner = await self.inner.on_response(facts, direction, response)
        return await self.outer.on_response(facts, direction, inner)


def combine(outer: Stages | None, inner: Stages) -> Stages:
    """``inner`` alone, or both chains with ``outer`` around it."""
    return inner if outer is None else ChainedStages(outer, inner)
