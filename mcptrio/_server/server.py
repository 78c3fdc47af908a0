"""The ``Server``: registries of tools, resources and prompts, and their decorators."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

import trio

from .._auth.resource_server import ScopeRequirements
from .._intercept.chain import InterceptorChain
from .._ops.config import ServerConfig
from .._ops.metrics import Metrics
from .._protocol.converter import to_wire
from .._protocol.request_state import StateKeyring
from ..types import (
    Annotations,
    Completion,
    CompletionArgument,
    CompletionContext,
    Icon,
    Implementation,
    PromptReference,
    PromptsCapability,
    ResourcesCapability,
    ResourceTemplateReference,
    ServerCapabilities,
    ToolAnnotations,
    ToolsCapability,
)
from .dispatch import DispatchTable
from .prompts import PromptRegistry
from .resources import ResourceRegistry
from .tools import ToolRegistry

if TYPE_CHECKING:
    from .._state.change_bus import ChangeBus, ChangeKind
    from .._state.task_store import TaskStore
    from .connection import ServerSession
    from .dispatch import ToolCallHook
    from .tasks import TaskManager, TaskSupport

__all__ = ["CompletionHandler", "Server"]

log = logging.getLogger("mcptrio.server")

F = TypeVar("F", bound=Callable[..., Any])

CompletionHandler = Callable[
    [PromptReference | ResourceTemplateReference, CompletionArgument, CompletionContext | None],
    Awaitable["Completion | Sequence[str] | None"],
]
"""``async def complete(ref, argument, context) -> list[str] | Completion | None``."""


class Server:
    """An MCP server: register tools, resources and prompts, then serve it on a transport.

    >>> server = Server("notes", version="1.0.0")
    >>> @server.tool()
    ... async def add(a: int, b: int) -> int:
    ...     "Add two numbers."
    ...     return a + b

    Serve it with :func:`~mcptrio.serve_stdio`, :func:`~mcptrio.serve_connection` or
    ``python -m mcptrio serve file.py``.
    """

    def __init__(
        self,
        name: str,
        version: str = "0.1.0",
        *,
        title: str | None = None,
        description: str | None = None,
        instructions: str | None = None,
        website_url: str | None = None,
        icons: Sequence[Icon] | None = None,
        config: ServerConfig | None = None,
        change_bus: ChangeBus | None = None,
        interceptors: InterceptorChain | None = None,
    ) -> None:
        self.name = name
        self.interceptors = interceptors if interceptors is not None else InterceptorChain()
        """The interceptor chain every message of every connection passes through."""
        self.version = version
        self.instructions = instructions
        self.config = config if config is not None else ServerConfig()
        self.info = Implementation(
            name=name,
            version=version,
            title=title,
            description=description,
            website_url=website_url,
            icons=list(icons) if icons is not None else None,
        )
        self.tools = ToolRegistry()
        self.resources = ResourceRegistry()
        self.prompts = PromptRegistry()
        self.scope_requirements = ScopeRequirements()
        """OAuth scopes each tool, resource and prompt needs (``scopes=`` on the decorators)."""
        self.metrics = Metrics()
        self.completion_handler: CompletionHandler | None = None
        self.sessions: set[ServerSession] = set()
        """Live sessions (connections that completed ``initialize``)."""
        self._change_bus = change_bus
        self._thread_limiter: trio.CapacityLimiter | None = None
        self._keyring: StateKeyring | None = None
        self.extensions: dict[str, dict[str, Any]] = {}
        """Extensions this server supports, advertised under ``capabilities.extensions``."""
        self.background: list[Callable[..., Awaitable[None]]] = []
        """Long-running work the serving transport starts for the server's lifetime, each as
        ``await nursery.start(fn)`` (``fn(*, task_status)``); the change bus comes first."""
        self.methods = DispatchTable()
        """This server's method handlers (extensions such as tasks add theirs here)."""
        self.tool_call_hooks: list[ToolCallHook] = []
        """Called before each ``tools/call`` (see :data:`~.dispatch.ToolCallHook`)."""
        self.task_manager: TaskManager | None = None
        """Runs this server's tasks once :meth:`enable_tasks` was called."""
        self._info_wire: dict[str, Any] | None = None

    async def serve_background(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the change bus and :attr:`background` work until cancelled.

        :func:`~mcptrio.serve_http` and :func:`~mcptrio.serve_stdio` call this; call it
        yourself when serving a server another way (e.g. in tests).
        """
        async with trio.open_nursery() as nursery:
            await nursery.start(self.change_bus.serve)
            for work in list(self.background):
                await nursery.start(work)
            task_status.started()

    def use_change_bus(self, bus: ChangeBus) -> None:
        """Publish changes through ``bus`` (e.g. a Redis bus shared by several processes)."""
        self._change_bus = bus

    @property
    def change_bus(self) -> ChangeBus:
        """Carries list changes and resource updates to 2026-07-28 listeners (across
        processes when it is a Redis bus)."""
        if self._change_bus is None:
            from .._state.change_bus import LocalChangeBus

            self._change_bus = LocalChangeBus()
        return self._change_bus

    @property
    def info_wire(self) -> dict[str, Any]:
        """The server's ``Implementation`` in wire form (cached)."""
        if self._info_wire is None:
            self._info_wire = to_wire(self.info)
        return self._info_wire

    @property
    def state_keyring(self) -> StateKeyring:
        """The keys sealing MRTR ``requestState`` (``config.request_state_keys`` or a new one)."""
        if self._keyring is None:
            spec = self.config.request_state_keys
            self._keyring = (
                StateKeyring.from_config(spec) if spec is not None else StateKeyring.generate()
            )
        return self._keyring

    @property
    def thread_limiter(self) -> trio.CapacityLimiter:
        """Bounds the worker threads that run sync handlers."""
        # Created lazily: a CapacityLimiter must be made inside a trio run.
        if self._thread_limiter is None:
            self._thread_limiter = trio.CapacityLimiter(self.config.sync_handler_limit)
        return self._thread_limiter

    def capabilities(self) -> ServerCapabilities:
        """What this server advertises in ``initialize``/``server/discover``."""
        return ServerCapabilities(
            tools=ToolsCapability(list_changed=True),
            resources=ResourcesCapability(subscribe=True, list_changed=True),
            prompts=PromptsCapability(list_changed=True),
            logging={},
            completions={},
            extensions=dict(self.extensions) or None,
        )

    # -- tools ----------------------------------------------------------------------------

    @overload
    def tool(self, fn: F) -> F: ...

    @overload
    def tool(
        self,
        *,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        annotations: ToolAnnotations | None = None,
        icons: Sequence[Icon] | None = None,
        meta: dict[str, Any] | None = None,
        input_schema: dict[str, Any] | None = None,
        output_schema: dict[str, Any] | None = None,
        structured_output: bool | None = None,
        task: TaskSupport | None = None,
        defer_task: bool = False,
        scopes: Sequence[str] | None = None,
    ) -> Callable[[F], F]: ...

    def tool(
        self,
        fn: F | None = None,
        *,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        annotations: ToolAnnotations | None = None,
        icons: Sequence[Icon] | None = None,
        meta: dict[str, Any] | None = None,
        input_schema: dict[str, Any] | None = None,
        output_schema: dict[str, Any] | None = None,
        structured_output: bool | None = None,
        task: TaskSupport | None = None,
        defer_task: bool = False,
        scopes: Sequence[str] | None = None,
    ) -> F | Callable[[F], F]:
        """Register a function (sync or async) as a tool.

        The input schema comes from the type hints, descriptions from the docstring, and
        the return annotation gives ``outputSchema``/``structuredContent`` (for object and
        JSON types; ``str`` and content blocks stay plain content). Raise
        :class:`~mcptrio.ToolError` (or any exception) for an ``isError`` result.

        With :meth:`enable_tasks`, ``task="optional"`` or ``"required"`` lets a 2026-07-28
        call run as a task; ``defer_task=True`` starts it on the request and makes it a task
        when the tool calls ``begin_task()``.

        ``scopes`` are the OAuth scopes a caller's token needs to see and call the tool
        (checked when the HTTP endpoint has an :class:`~mcptrio.AuthConfig`).
        """

        def register(func: F) -> F:
            self.tools.add(
                func,
                name=name,
                title=title,
                description=description,
                annotations=annotations,
                icons=icons,
                meta=meta,
                input_schema=input_schema,
                output_schema=output_schema,
                structured_output=structured_output,
                task=task,
                defer_task=defer_task,
            )
            self.scope_requirements.set("tool", str(name or getattr(func, "__name__", "")), scopes)
            return func

        return register(fn) if fn is not None else register

    def enable_tasks(self, store: TaskStore | None = None, **options: Any) -> TaskManager:
        """Offer the tasks extension (call before serving); options go to
        :class:`~mcptrio._server.tasks.TaskManager` (``ttl_ms``, ``poll_interval_ms``, ...)."""
        from .tasks import enable_tasks

        return enable_tasks(self, store, **options)

    def add_tool(self, fn: Callable[..., Any], **options: Any) -> None:
        """Register a tool at run time; then ``await notify_tools_changed()``."""
        scopes = options.pop("scopes", None)
        self.tools.add(fn, **options)
        name = str(options.get("name") or getattr(fn, "__name__", ""))
        self.scope_requirements.set("tool", name, scopes)

    def remove_tool(self, name: str) -> None:
        """Unregister a tool at run time; then ``await notify_tools_changed()``."""
        self.tools.remove(name)
        self.scope_requirements.set("tool", name, None)

    # -- resources ------------------------------------------------------------------------

    def resource(
        self,
        uri: str,
        *,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        mime_type: str | None = None,
        size: int | None = None,
        annotations: Annotations | None = None,
        icons: Sequence[Icon] | None = None,
        meta: dict[str, Any] | None = None,
        scopes: Sequence[str] | None = None,
    ) -> Callable[[F], F]:
        """Register a function that returns a resource's contents.

        ``uri`` with ``{variables}`` (RFC 6570) registers a template; the variables are
        passed as keyword arguments. Return ``str`` (text), ``bytes`` (blob), resource
        contents, or any JSON value (served as ``application/json``). ``scopes``: the OAuth
        scopes a caller's token needs to see and read it.
        """

        def register(func: F) -> F:
            self.resources.add(
                func,
                uri,
                name=name,
                title=title,
                description=description,
                mime_type=mime_type,
                size=size,
                annotations=annotations,
                icons=icons,
                meta=meta,
            )
            self.scope_requirements.set("resource", uri, scopes)
            return func

        return register

    # -- prompts --------------------------------------------------------------------------

    @overload
    def prompt(self, fn: F) -> F: ...

    @overload
    def prompt(
        self,
        *,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        icons: Sequence[Icon] | None = None,
        meta: dict[str, Any] | None = None,
        scopes: Sequence[str] | None = None,
    ) -> Callable[[F], F]: ...

    def prompt(
        self,
        fn: F | None = None,
        *,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        icons: Sequence[Icon] | None = None,
        meta: dict[str, Any] | None = None,
        scopes: Sequence[str] | None = None,
    ) -> F | Callable[[F], F]:
        """Register a function that renders a prompt from string arguments.

        Return a ``str`` (one user message), a :class:`~mcptrio.types.PromptMessage`, a
        content block, or a list of those. ``scopes``: the OAuth scopes a caller's token needs
        to see and get it.
        """

        def register(func: F) -> F:
            self.prompts.add(
                func, name=name, title=title, description=description, icons=icons, meta=meta
            )
            self.scope_requirements.set(
                "prompt", str(name or getattr(func, "__name__", "")), scopes
            )
            return func

        return register(fn) if fn is not None else register

    # -- completion -----------------------------------------------------------------------

    def completion(self) -> Callable[[F], F]:
        """Register the handler for ``completion/complete`` (one per server)."""

        def register(func: F) -> F:
            self.completion_handler = func
            return func

        return register

    # -- change notifications -------------------------------------------------------------

    async def _broadcast(self, kind: ChangeKind, method: str) -> None:
        for session in list(self.sessions):
            await session.notify_quietly(method)
        from .._state.change_bus import ChangeEvent

        await self.change_bus.publish(ChangeEvent(kind))

    async def notify_tools_changed(self) -> None:
        """Tell every connected client and listener the tool list changed."""
        await self._broadcast("tools_list_changed", "notifications/tools/list_changed")

    async def notify_prompts_changed(self) -> None:
        """Tell every connected client and listener the prompt list changed."""
        await self._broadcast("prompts_list_changed", "notifications/prompts/list_changed")

    async def notify_resources_changed(self) -> None:
        """Tell every connected client and listener the resource list changed."""
        await self._broadcast("resources_list_changed", "notifications/resources/list_changed")

    async def notify_resource_updated(self, uri: str) -> None:
        """Tell the clients and listeners subscribed to ``uri`` that it changed."""
        for session in list(self.sessions):
            if uri in session.subscriptions:
                await session.notify_quietly("notifications/resources/updated", {"uri": uri})
        from .._state.change_bus import ChangeEvent

        await self.change_bus.publish(ChangeEvent("resource_updated", uri=uri))
