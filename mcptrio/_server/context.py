"""The request context: what a handler can do while serving one request.

``current_request()`` returns it from inside any tool, resource, prompt or completion
handler (sync handlers in worker threads too: trio copies context variables into them).
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import trio

from .._protocol.converter import from_wire, to_wire
from .._protocol.errors import InvalidParams, MCPError, MissingRequiredClientCapability
from .._protocol.jsonrpc import Request, RequestId
from .._protocol.versions import Era
from .._runtime.peer import Peer, ProgressCallback
from ..types import (
    LOGGING_LEVELS,
    ClientCapabilities,
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequestFormParams,
    ElicitRequestURLParams,
    ElicitResult,
    Implementation,
    InputRequest,
    InputRequiredResult,
    ListRootsResult,
    LoggingLevel,
    ModelPreferences,
    Root,
    SamplingMessage,
    TextContent,
    Tool,
    ToolChoice,
)
from .mrtr import InputRequired, InputRound

if TYPE_CHECKING:
    from .._auth.resource_server import Principal
    from .dispatch import CallScope
    from .server import Server

__all__ = ["Outbound", "RequestContext", "current_request"]


class Outbound(Protocol):
    """Where a request's server-to-client messages go (a :class:`~mcptrio.Peer` fits)."""

    async def notify(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        related_request_id: RequestId | None = None,
    ) -> None: ...

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        related_request_id: RequestId | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> dict[str, Any]: ...


class LogLevelSource(Protocol):
    """Something that knows the minimum level the client wants (a session, or a request)."""

    @property
    def log_level(self) -> LoggingLevel | None: ...


_LEVEL_RANK = {name: rank for rank, name in enumerate(LOGGING_LEVELS)}


class _Serving:
    """The request a handler runs for; its :class:`RequestContext` is built on first use,
    since most handlers never ask for it."""

    __slots__ = ("context", "input_round", "params", "request", "scope")

    def __init__(
        self,
        scope: CallScope,
        request: Request,
        params: dict[str, Any],
        input_round: InputRound | None,
    ) -> None:
        self.scope = scope
        self.request = request
        self.params = params
        self.input_round = input_round
        self.context: RequestContext | None = None


_current: contextvars.ContextVar[_Serving] = contextvars.ContextVar("mcptrio_request")


def current_request() -> RequestContext:
    """The context of the request being handled; raises ``LookupError`` outside a handler."""
    try:
        serving = _current.get()
    except LookupError:
        raise LookupError(
            "current_request() was called outside an MCP request handler; call it from inside"
            " a tool, resource, prompt or completion function"
        ) from None
    context = serving.context
    if context is None:
        context = serving.context = RequestContext.for_scope(
            serving.scope, serving.request, serving.params, serving.input_round
        )
    return context


def enter_request(
    scope: CallScope, request: Request, params: dict[str, Any], input_round: InputRound | None
) -> contextvars.Token[_Serving]:
    """Make ``request`` the one :func:`current_request` describes, until :func:`exit_request`."""
    return _current.set(_Serving(scope, request, params, input_round))


def exit_request(token: contextvars.Token[_Serving]) -> None:
    """Undo the matching :func:`enter_request`."""
    _current.reset(token)


class RequestContext:
    """Everything about one incoming request, and the ways to talk back while serving it."""

    def __init__(
        self,
        *,
        server: Server,
        request_id: RequestId,
        method: str,
        params: dict[str, Any],
        era: Era,
        protocol_version: str,
        client_info: Implementation | None,
        client_capabilities: ClientCapabilities,
        outbound: Outbound,
        log_level: LogLevelSource,
        cancel_scope: trio.CancelScope | None = None,
        input_round: InputRound | None = None,
        principal: Principal | None = None,
    ) -> None:
        self.server = server
        """The server handling this request."""
        self.request_id = request_id
        self.method = method
        self.params = params
        """The raw request params (including ``_meta``)."""
        self.era = era
        self.protocol_version = protocol_version
        self.client_info = client_info
        """What the client says it is (self-reported: never a security decision)."""
        self.client_capabilities = client_capabilities
        self._outbound = outbound
        self._log_level = log_level
        self._cancel_scope = cancel_scope
        meta = params.get("_meta")
        self.meta: dict[str, Any] = meta if isinstance(meta, dict) else {}
        token = self.meta.get("progressToken")
        self.progress_token: str | int | None = (
            token if isinstance(token, str) or type(token) is int else None
        )
        self._last_progress: float | None = None
        self._round = input_round
        self.principal = principal
        """Who authenticated this request (None without authorization)."""

    @classmethod
    def for_scope(
        cls,
        scope: CallScope,
        request: Request,
        params: dict[str, Any],
        input_round: InputRound | None,
    ) -> RequestContext:
        """The context of ``request`` served within ``scope``."""
        if input_round is not None:
            input_round.restart()
        return cls(
            server=scope.server,
            request_id=request.id,
            method=request.method,
            params=params,
            era=scope.era,
            protocol_version=scope.protocol_version,
            client_info=scope.client_info,
            client_capabilities=scope.client_capabilities,
            outbound=scope.outbound,
            log_level=scope,
            cancel_scope=scope.cancel_scope,
            input_round=input_round,
            principal=scope.principal,
        )

    @property
    def input_responses(self) -> dict[str, Any] | None:
        """The client's answers to the previous round's ``inputRequests`` (raw results by key),
        or None on the first round. Works in both eras."""
        return self._round.current if self._round is not None else None

    @property
    def request_state(self) -> str | None:
        """The ``request_state`` this handler put in its previous ``InputRequiredResult``
        (verified: the client cannot change it)."""
        return self._round.user_state if self._round is not None else None

    @property
    def cancel_requested(self) -> bool:
        """True once the client cancelled this request (trio delivers it at the next checkpoint)."""
        return self._cancel_scope is not None and self._cancel_scope.cancel_called

    def close_sse_stream(self) -> None:
        """On legacy Streamable HTTP, end this request's SSE response now.

        The request keeps running; the client reconnects with ``Last-Event-ID`` and
        receives what follows (the 2025-11-25 polling pattern). Elsewhere a no-op.
        """
        if isinstance(self._outbound, Peer):
            self._outbound.transport.close_request_stream(self.request_id)

    # -- notifications ----------------------------------------------------------------

    async def report_progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None:
        """Send ``notifications/progress`` if the client asked for progress; otherwise no-op.

        ``progress`` must increase with each call (the spec requires it).
        """
        if self.progress_token is None:
            return
        if self._last_progress is not None and progress <= self._last_progress:
            raise ValueError(f"progress must increase: {progress} after {self._last_progress}")
        self._last_progress = progress
        params: dict[str, Any] = {"progressToken": self.progress_token, "progress": progress}
        if total is not None:
            params["total"] = total
        if message is not None:
            params["message"] = message
        await self._outbound.notify(
            "notifications/progress", params, related_request_id=self.request_id
        )

    async def log(self, level: LoggingLevel, data: Any, *, logger: str | None = None) -> None:
        """Send a log message to the client if it asked for this level or a more severe one."""
        if level not in _LEVEL_RANK:
            raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LOGGING_LEVELS)}")
        wanted = self._log_level.log_level
        if wanted is None or _LEVEL_RANK[level] < _LEVEL_RANK[wanted]:
            return
        params: dict[str, Any] = {"level": level, "data": data}
        if logger is not None:
            params["logger"] = logger
        await self._outbound.notify(
            "notifications/message", params, related_request_id=self.request_id
        )

    async def debug(self, data: Any, *, logger: str | None = None) -> None:
        """Log at ``debug`` level."""
        await self.log("debug", data, logger=logger)

    async def info(self, data: Any, *, logger: str | None = None) -> None:
        """Log at ``info`` level."""
        await self.log("info", data, logger=logger)

    async def warning(self, data: Any, *, logger: str | None = None) -> None:
        """Log at ``warning`` level."""
        await self.log("warning", data, logger=logger)

    async def error(self, data: Any, *, logger: str | None = None) -> None:
        """Log at ``error`` level."""
        await self.log("error", data, logger=logger)

    # -- asking the client ------------------------------------------------------------

    def _require(self, capability: str, detail: str | None = None) -> None:
        caps = self.client_capabilities
        present = getattr(caps, capability, None) is not None
        if present and detail is not None:
            present = getattr(getattr(caps, capability), detail, None) is not None
        if not present:
            name = capability if detail is None else f"{capability}.{detail}"
            raise MissingRequiredClientCapability(
                f"this request needs the client capability {name!r}, which the client did not"
                " declare",
                {"requiredCapabilities": {capability: {detail: {}} if detail else {}}},
            )

    async def sample(
        self,
        messages: str | Sequence[SamplingMessage],
        *,
        max_tokens: int,
        system_prompt: str | None = None,
        temperature: float | None = None,
        stop_sequences: Sequence[str] | None = None,
        model_preferences: ModelPreferences | None = None,
        include_context: str | None = None,
        tools: Sequence[Tool] | None = None,
        tool_choice: ToolChoice | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> CreateMessageResult:
        """Ask the client's LLM for a completion (``sampling/createMessage``)."""
        self._require("sampling")
        if tools is not None:
            self._require("sampling", "tools")
        if isinstance(messages, str):
            messages = [SamplingMessage(role="user", content=TextContent(text=messages))]
        params = CreateMessageRequestParams(
            messages=list(messages),
            max_tokens=max_tokens,
            system_prompt=system_prompt,
            temperature=temperature,
            stop_sequences=list(stop_sequences) if stop_sequences is not None else None,
            model_preferences=model_preferences,
            include_context=include_context,  # type: ignore[arg-type]
            tools=list(tools) if tools is not None else None,
            tool_choice=tool_choice,
            metadata=metadata,
        )
        result = await self._ask("sampling", "sampling/createMessage", to_wire(params))
        return from_wire(CreateMessageResult, result)

    async def elicit(self, message: str, requested_schema: dict[str, Any]) -> ElicitResult:
        """Ask the user for structured input through the client (form mode)."""
        self._require("elicitation")
        if requested_schema.get("type") != "object":
            raise InvalidParams("an elicitation schema must be a flat object schema")
        params = ElicitRequestFormParams(message=message, requested_schema=requested_schema)
        wire = to_wire(params)
        if self.protocol_version < "2025-11-25":
            wire.pop("mode", None)
        result = await self._ask("elicitation", "elicitation/create", wire)
        return from_wire(ElicitResult, result)

    async def elicit_url(self, message: str, url: str, elicitation_id: str) -> ElicitResult:
        """Ask the user to complete a flow at ``url`` (URL mode, 2025-11-25)."""
        self._require("elicitation", "url")
        params = ElicitRequestURLParams(message=message, url=url, elicitation_id=elicitation_id)
        result = await self._ask("elicitation", "elicitation/create", to_wire(params))
        return from_wire(ElicitResult, result)

    async def notify_elicitation_complete(self, elicitation_id: str) -> None:
        """Tell the client a URL-mode elicitation finished (2025-11-25)."""
        await self._outbound.notify(
            "notifications/elicitation/complete",
            {"elicitationId": elicitation_id},
            related_request_id=self.request_id,
        )

    async def list_roots(self) -> list[Root]:
        """The client's roots (``roots/list``)."""
        self._require("roots")
        result = await self._ask("roots", "roots/list", None)
        return list(from_wire(ListRootsResult, result).roots)

    async def _ask(self, kind: str, method: str, params: dict[str, Any] | None) -> dict[str, Any]:
        """Legacy: a real request to the client. 2026-07-28: the answer from a retry, or
        end this round with an ``input_required`` result asking for it."""
        if self.era is not Era.MODERN:
            return await self._outbound.request(method, params, related_request_id=self.request_id)
        if self._round is None:
            raise MCPError(
                f"{self.method} cannot ask the client for input in protocol 2026-07-28"
                " (only tools/call, prompts/get and resources/read can)"
            )
        key = self._round.next_key(kind)
        answer = self._round.answer(key)
        if isinstance(answer, dict):
            return answer
        request: dict[str, Any] = {"method": method}
        if params is not None:
            request["params"] = params
        raise InputRequired(
            InputRequiredResult(input_requests={key: from_wire(InputRequest, request)})
        )
