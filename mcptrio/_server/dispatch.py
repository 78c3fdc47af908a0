"""Method dispatch for both eras: one handler per method, written against a :class:`CallScope`.

A legacy request's scope comes from its session (negotiated version, capabilities, log
level); a 2026-07-28 request's scope comes from its own ``_meta``. Handlers never look at
where the scope came from, so no code assumes a handshake happened.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .._auth.resource_server import InsufficientScope
from .._protocol.converter import from_wire, to_wire
from .._protocol.errors import InvalidParams, MethodNotFound, ResourceNotFound
from .._protocol.jsonrpc import Request
from .._protocol.methods import MRTR_METHODS
from .._protocol.pagination import paginate
from .._protocol.versions import Era
from ..types import (
    LOGGING_LEVELS,
    CallToolRequestParams,
    ClientCapabilities,
    CompleteRequestParams,
    CompleteResult,
    Completion,
    GetPromptRequestParams,
    Implementation,
    InputRequiredResult,
    LoggingLevel,
    PromptReference,
    ReadResourceRequestParams,
    ResourceTemplateReference,
    SubscribeRequestParams,
    UnsubscribeRequestParams,
)
from .context import Outbound, enter_request, exit_request
from .mrtr import InputRequired, finish_input_required, open_round
from .resources import ResourceNotFoundError

if TYPE_CHECKING:
    from .._auth.resource_server import Principal
    from .connection import ServerSession
    from .modern import ModernMeta
    from .server import Server

__all__ = ["CallScope", "DispatchTable", "dispatch"]


@attrs.define(kw_only=True)
class CallScope:
    """Everything a method handler needs to know about the request it serves."""

    server: Server
    era: Era
    protocol_version: str
    client_info: Implementation | None
    client_capabilities: ClientCapabilities
    log_level: LoggingLevel | None
    """The least severe level the client wants (None: no log messages at all)."""
    outbound: Outbound
    cancel_scope: trio.CancelScope | None = None
    session: ServerSession | None = None
    """The legacy session the request belongs to (None in the 2026-07-28 era)."""
    principal: Principal | None = None
    """Who authenticated the request (None: no authorization in front of this server)."""
    stopping: trio.Event | None = None
    """Set when the transport begins a graceful shutdown (long listens then end)."""

    @classmethod
    def for_session(
        cls, session: ServerSession, outbound: Outbound, cancel_scope: trio.CancelScope | None
    ) -> CallScope:
        """The scope of a legacy request: what the session's handshake negotiated."""
        assert session.protocol_version is not None
        return cls(
            server=session.server,
            era=Era.LEGACY,
            protocol_version=session.protocol_version,
            client_info=session.client_info,
            client_capabilities=session.client_capabilities,
            log_level=session.log_level,
            outbound=outbound,
            cancel_scope=cancel_scope,
            session=session,
            principal=session.principal,
        )

    @classmethod
    def for_modern(
        cls,
        server: Server,
        meta: ModernMeta,
        outbound: Outbound,
        *,
        cancel_scope: trio.CancelScope | None = None,
        principal: Principal | None = None,
        stopping: trio.Event | None = None,
    ) -> CallScope:
        """The scope of a 2026-07-28 request: what its own ``params._meta`` says."""
        return cls(
            server=server,
            era=Era.MODERN,
            protocol_version=meta.protocol_version,
            client_info=meta.client_info,
            client_capabilities=meta.client_capabilities,
            log_level=meta.log_level,
            outbound=outbound,
            cancel_scope=cancel_scope,
            principal=principal,
            stopping=stopping,
        )

    @property
    def principal_key(self) -> str | None:
        """The identity request states, tasks and sessions are bound to (None: anonymous)."""
        principal = self.principal
        return None if principal is None else principal.key


Handler = Callable[[CallScope, Request, dict[str, Any]], Awaitable[Any]]
CallRunner = Callable[[], Awaitable[dict[str, Any]]]
ToolCallHook = Callable[
    [CallScope, Request, dict[str, Any], CallRunner], Awaitable[dict[str, Any] | None]
]
"""Sees every ``tools/call`` first; returns a result to answer instead of running the call
now (the tasks extension answers with a task), or None to let it run."""
_BOTH = frozenset({Era.LEGACY, Era.MODERN})
_LEGACY = frozenset({Era.LEGACY})
_MODERN = frozenset({Era.MODERN})
_BUILTIN: dict[str, tuple[Handler, frozenset[Era]]] = {}
"""The handlers every server starts with; filled once, at import, by ``_handles``."""


def _handles(method: str, eras: frozenset[Era] = _BOTH) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _BUILTIN[method] = (fn, eras)
        return fn

    return register


_SESSION_METHODS = frozenset({"initialize", "ping"})


class DispatchTable:
    """One server's method handlers, each with the eras it serves.

    Every :class:`~mcptrio.Server` has its own (``server.methods``), which starts as a copy
    of the built-in handlers; extensions register their methods on that server's table
    only, so enabling one on a server changes no other server in the process.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Handler, frozenset[Era]]] = dict(_BUILTIN)

    def register(self, method: str, handler: Handler, *, eras: frozenset[Era] = _BOTH) -> None:
        """Serve ``method`` with ``handler`` in ``eras``."""
        self._entries[method] = (handler, eras)

    def handler_for(self, method: str, era: Era) -> Handler | None:
        """The handler serving ``method`` in ``era``, if there is one."""
        entry = self._entries.get(method)
        if entry is None or era not in entry[1]:
            return None
        return entry[0]

    def knows(self, method: str) -> bool:
        """True for any method some era serves, ``initialize`` and ``ping`` included."""
        return method in self._entries or method in _SESSION_METHODS


async def dispatch(scope: CallScope, request: Request) -> dict[str, Any]:
    """Serve one request (``initialize`` and ``ping`` are the session's business)."""
    table = scope.server.methods
    handler = table.handler_for(request.method, scope.era)
    if handler is None:
        if table.knows(request.method):
            other = "2026-07-28" if scope.era is Era.LEGACY else "the initialize-based revisions"
            raise MethodNotFound(
                f"{request.method!r} is not part of protocol {scope.protocol_version}"
                f" (it exists only in {other})"
            )
        raise MethodNotFound(f"unknown method {request.method!r}")
    params = request.params if request.params is not None else {}
    principal = scope.principal
    if principal is not None and scope.server.scope_requirements:
        needed, what = scope.server.scope_requirements.for_request(
            scope.server, request.method, params
        )
        if not principal.has_scopes(needed):
            raise InsufficientScope.naming(needed, what)
    if request.method not in MRTR_METHODS:
        result = await handler(scope, request, params)
        return result if isinstance(result, dict) else to_wire(result)

    async def run() -> dict[str, Any]:
        return await _with_input_rounds(scope, request, params, handler)

    if request.method == "tools/call":
        for hook in scope.server.tool_call_hooks:
            answer = await hook(scope, request, params, run)
            if answer is not None:
                return answer
    return await run()


async def _with_input_rounds(
    scope: CallScope, request: Request, params: dict[str, Any], handler: Handler
) -> dict[str, Any]:
    """Run a handler that may need input from the client, in either era.

    2026-07-28: the answers arrive with the retried request and a missing one ends this
    round with an ``InputRequiredResult``. Legacy: the input is asked for with real
    server-to-client requests and the handler runs again with the answers.
    """
    round_ = open_round(scope, request, params)
    for _ in range(scope.server.config.max_input_rounds):
        token = enter_request(scope, request, params, round_)
        try:
            result = await handler(scope, request, params)
        except InputRequired as needed:
            result = needed.result
        finally:
            exit_request(token)
        if not isinstance(result, InputRequiredResult):
            return result if isinstance(result, dict) else to_wire(result)
        if scope.era is Era.MODERN:
            return finish_input_required(scope, request, params, round_, result)
        await round_.ask_legacy(scope, request, result)
    raise InvalidParams(
        f"{request.method} still needed input after {scope.server.config.max_input_rounds} rounds"
    )


# -- lists ------------------------------------------------------------------------------


def _page(
    scope: CallScope, items: list[Any], params: Mapping[str, Any], key: str
) -> dict[str, Any]:
    cursor = params.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise InvalidParams(f"params.cursor must be a string, got {type(cursor).__name__}")
    page, next_cursor = paginate(items, cursor, scope.server.config.page_size)
    out: dict[str, Any] = {key: page}
    if next_cursor is not None:
        out["nextCursor"] = next_cursor
    return out


def _hidden(scope: CallScope, table: str) -> frozenset[str]:
    """Names in a scope table (``tools``, ``resources``, ``prompts``) the caller may not see."""
    principal = scope.principal
    rules = scope.server.scope_requirements
    if principal is None or not rules.hide_from_lists:
        return frozenset()
    needs: dict[str, frozenset[str]] = getattr(rules, table)
    return frozenset(name for name, needed in needs.items() if not principal.has_scopes(needed))


@_handles("tools/list")
async def _tools_list(scope: CallScope, request: Request, params: dict[str, Any]) -> Any:
    items = scope.server.tools.wire_list()
    hidden = _hidden(scope, "tools")
    if hidden:
        items = [t for t in items if t["name"] not in hidden]
    return _page(scope, items, params, "tools")


@_handles("resources/list")
async def _resources_list(scope: CallScope, request: Request, params: dict[str, Any]) -> Any:
    hidden = _hidden(scope, "resources")
    items = [to_wire(r) for r in scope.server.resources.resources() if r.uri not in hidden]
    return _page(scope, items, params, "resources")


@_handles("resources/templates/list")
async def _templates_list(scope: CallScope, request: Request, params: dict[str, Any]) -> Any:
    hidden = _hidden(scope, "resources")
    items = [to_wire(t) for t in scope.server.resources.templates() if t.uri_template not in hidden]
    return _page(scope, items, params, "resourceTemplates")


@_handles("prompts/list")
async def _prompts_list(scope: CallScope, request: Request, params: dict[str, Any]) -> Any:
    hidden = _hidden(scope, "prompts")
    items = [to_wire(p) for p in scope.server.prompts.prompts() if p.name not in hidden]
    return _page(scope, items, params, "prompts")


# -- calls that may ask for input -----------------------------------------------------------


_PLAIN_CALL_KEYS = frozenset({"name", "arguments", "_meta"})


@_handles("tools/call")
async def _tools_call(scope: CallScope, request: Request, params: dict[str, Any]) -> Any:
    name = params.get("name")
    arguments = params.get("arguments")
    if (
        type(name) is not str
        or (arguments is not None and type(arguments) is not dict)
        or not _PLAIN_CALL_KEYS.issuperset(params)
    ):
        # Anything beyond a plain call gets the converter's full checks and messages.
        call = from_wire(CallToolRequestParams, params, path="params")
        name, arguments = call.name, call.arguments
    return await scope.server.tools.call(
        name, arguments, thread_limiter=scope.server.thread_limiter
    )


@_handles("resources/read")
async def _resources_read(scope: CallScope, request: Request, params: dict[str, Any]) -> Any:
    read = from_wire(ReadResourceRequestParams, params, path="params")
    try:
        return await scope.server.resources.read(
            read.uri, thread_limiter=scope.server.thread_limiter
        )
    except ResourceNotFoundError as exc:
        message = (
            f"resource {read.uri!r} not found; resources/list and resources/templates/list"
            " show what this server has"
        )
        if scope.era is Era.MODERN:
            # 2026-07-28 moved resource-not-found to -32602 with the URI in data.
            raise InvalidParams(message, {"uri": read.uri}) from exc
        raise ResourceNotFound(message, {"uri": read.uri}) from exc


@_handles("prompts/get")
async def _prompts_get(scope: CallScope, request: Request, params: dict[str, Any]) -> Any:
    get = from_wire(GetPromptRequestParams, params, path="params")
    return await scope.server.prompts.render(
        get.name, get.arguments, thread_limiter=scope.server.thread_limiter
    )


# -- completion, subscriptions, logging ---------------------------------------------------------


@_handles("completion/complete")
async def _complete(scope: CallScope, request: Request, params: dict[str, Any]) -> Any:
    complete = from_wire(CompleteRequestParams, params, path="params")
    server = scope.server
    ref = complete.ref
    if isinstance(ref, PromptReference):
        if server.prompts.get_prompt(ref.name) is None:
            raise InvalidParams(f"unknown prompt {ref.name!r} in completion reference")
    elif isinstance(ref, ResourceTemplateReference):
        known = {t.uri_template for t in server.resources.templates()}
        known |= {r.uri for r in server.resources.resources()}
        if ref.uri not in known:
            raise InvalidParams(f"unknown resource or template {ref.uri!r} in completion reference")
    completion = Completion(values=[])
    if server.completion_handler is not None:
        token = enter_request(scope, request, params, None)
        try:
            value = await server.completion_handler(ref, complete.argument, complete.context)
        finally:
            exit_request(token)
        if isinstance(value, Completion):
            completion = value
        elif value is not None:
            values = list(value)
            completion = Completion(
                values=values[:100], total=len(values), has_more=len(values) > 100
            )
    return CompleteResult(completion=completion)


@_handles("resources/subscribe", _LEGACY)
async def _subscribe(scope: CallScope, request: Request, params: dict[str, Any]) -> Any:
    assert scope.session is not None
    scope.session.subscriptions.add(from_wire(SubscribeRequestParams, params, path="params").uri)
    return {}


@_handles("resources/unsubscribe", _LEGACY)
async def _unsubscribe(scope: CallScope, request: Request, params: dict[str, Any]) -> Any:
    assert scope.session is not None
    unsubscribe = from_wire(UnsubscribeRequestParams, params, path="params")
    scope.session.subscriptions.discard(unsubscribe.uri)
    return {}


@_handles("logging/setLevel", _LEGACY)
async def _set_level(scope: CallScope, request: Request, params: dict[str, Any]) -> Any:
    assert scope.session is not None
    level = params.get("level")
    if not isinstance(level, str) or level not in LOGGING_LEVELS:
        raise InvalidParams(
            f"params.level: unknown log level {level!r}; use one of {', '.join(LOGGING_LEVELS)}"
        )
    scope.session.log_level = level
    return {}


# -- 2026-07-28 only ----------------------------------------------------------------------------


@_handles("server/discover", _MODERN)
async def _discover(scope: CallScope, request: Request, params: dict[str, Any]) -> Any:
    from .modern import discover_result

    return discover_result(scope.server)


@_handles("subscriptions/listen", _MODERN)
async def _listen(scope: CallScope, request: Request, params: dict[str, Any]) -> Any:
    from .modern import listen

    return await listen(scope, request, params)
