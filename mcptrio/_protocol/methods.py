"""The MCP method table: every request and notification of every revision (sans-IO).

One :class:`MethodSpec` per method name says who may send it, its params and result
types, which capability the receiver must have advertised, and the revisions that
define it. A few methods changed shape in 2026-07-28 (the tasks methods moved to the
``io.modelcontextprotocol/tasks`` extension); :func:`method_spec` with a version gives
the spec for that revision.

In 2026-07-28 servers send no requests: sampling, roots and elicitation travel inside
``InputRequiredResult`` instead (see ``MethodSpec.input_request``), so those methods are
listed for the legacy revisions only.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias

import attrs

from .. import types as t
from .versions import LEGACY_VERSIONS, MODERN_VERSIONS, SUPPORTED_VERSIONS, Era, era_of

__all__ = [
    "CACHEABLE_METHODS",
    "METHODS",
    "MRTR_METHODS",
    "Capability",
    "MethodKind",
    "MethodSpec",
    "Sender",
    "method_exists",
    "method_spec",
    "methods_for",
    "name_source",
]

MethodKind: TypeAlias = Literal["request", "notification"]
"""Whether a method expects a response."""

Sender: TypeAlias = Literal["client", "server", "both"]
"""Which side may send a method."""

Capability: TypeAlias = tuple[str, ...]
"""A capability path: the side that must advertise it (``"server"``, ``"client"``, or
``"receiver"`` for methods either side may send), then wire member names, e.g.
``("server", "resources", "subscribe")``."""


@attrs.frozen(kw_only=True)
class MethodSpec:
    """What the protocol says about one method.

    ``params_type`` and ``result_type`` are :mod:`mcptrio.types` classes (or, for
    ``elicitation/create``, the union alias ``ElicitRequestParams``); ``result_type`` is
    None for notifications and for ``tasks/result``, whose result is the original
    request's. ``capability`` is the capability the receiver must have advertised.
    ``input_request`` marks the three requests that 2026-07-28 embeds in
    ``InputRequiredResult.inputRequests``. ``mrtr`` marks the requests a server may answer
    with ``InputRequiredResult`` (multi-round requests); ``cacheable`` the ones whose
    2026-07-28 results carry ``ttlMs`` and ``cacheScope``; ``name_source`` names the params
    member the 2026-07-28 ``Mcp-Name`` HTTP header mirrors.
    """

    method: str
    kind: MethodKind
    sender: Sender
    params_type: Any
    result_type: Any
    capability: Capability | None
    versions: tuple[str, ...]
    input_request: bool = False
    mrtr: bool = False
    cacheable: bool = False
    name_source: str | None = None

    def exists_in(self, version: str) -> bool:
        """True if revision ``version`` defines this method."""
        return version in self.versions


_ALL: Final = SUPPORTED_VERSIONS
_LEGACY: Final = LEGACY_VERSIONS
_MODERN: Final = MODERN_VERSIONS
_SINCE_2025_03: Final = SUPPORTED_VERSIONS[1:]
_ELICITATION: Final = ("2025-06-18", "2025-11-25")
_TASKS_CORE: Final = ("2025-11-25",)
_TASKS_BOTH: Final = ("2025-11-25", *MODERN_VERSIONS)
_TASKS_EXTENSION: Final = ("server", "extensions", t.TASKS_EXTENSION)


def _request(
    method: str,
    sender: Sender,
    params: Any,
    result: Any,
    capability: Capability | None,
    versions: tuple[str, ...],
    *,
    input_request: bool = False,
    mrtr: bool = False,
    cacheable: bool = False,
    name_source: str | None = None,
) -> MethodSpec:
    return MethodSpec(
        method=method,
        kind="request",
        sender=sender,
        params_type=params,
        result_type=result,
        capability=capability,
        versions=versions,
        input_request=input_request,
        mrtr=mrtr,
        cacheable=cacheable,
        name_source=name_source,
    )


def _notification(
    method: str,
    sender: Sender,
    params: Any,
    capability: Capability | None,
    versions: tuple[str, ...],
) -> MethodSpec:
    return MethodSpec(
        method=method,
        kind="notification",
        sender=sender,
        params_type=params,
        result_type=None,
        capability=capability,
        versions=versions,
    )


_SPECS: Final = (
    # lifecycle and utilities
    _request("initialize", "client", t.InitializeRequestParams, t.InitializeResult, None, _LEGACY),
    _notification("notifications/initialized", "client", t.NotificationParams, None, _LEGACY),
    _request("ping", "both", t.RequestParams, t.EmptyResult, None, _LEGACY),
    _request(
        "server/discover",
        "client",
        t.DiscoverRequestParams,
        t.DiscoverResult,
        None,
        _MODERN,
        cacheable=True,
    ),
    _notification("notifications/progress", "both", t.ProgressNotificationParams, None, _ALL),
    _notification("notifications/cancelled", "both", t.CancelledNotificationParams, None, _ALL),
    _request(
        "subscriptions/listen",
        "client",
        t.SubscriptionsListenRequestParams,
        t.SubscriptionsListenResult,
        None,
        _MODERN,
    ),
    _notification(
        "notifications/subscriptions/acknowledged",
        "server",
        t.SubscriptionsAcknowledgedNotificationParams,
        None,
        _MODERN,
    ),
    # logging
    _request(
        "logging/setLevel",
        "client",
        t.SetLevelRequestParams,
        t.EmptyResult,
        ("server", "logging"),
        _LEGACY,
    ),
    _notification(
        "notifications/message",
        "server",
        t.LoggingMessageNotificationParams,
        ("server", "logging"),
        _ALL,
    ),
    # completion (2024-11-05 had the method but no ``completions`` capability)
    _request(
        "completion/complete",
        "client",
        t.CompleteRequestParams,
        t.CompleteResult,
        ("server", "completions"),
        _ALL,
    ),
    # tools
    _request(
        "tools/list",
        "client",
        t.PaginatedRequestParams,
        t.ListToolsResult,
        ("server", "tools"),
        _ALL,
        cacheable=True,
    ),
    _request(
        "tools/call",
        "client",
        t.CallToolRequestParams,
        t.CallToolResult,
        ("server", "tools"),
        _ALL,
        mrtr=True,
        name_source="name",
    ),
    _notification(
        "notifications/tools/list_changed",
        "server",
        t.NotificationParams,
        ("server", "tools", "listChanged"),
        _ALL,
    ),
    # resources
    _request(
        "resources/list",
        "client",
        t.PaginatedRequestParams,
        t.ListResourcesResult,
        ("server", "resources"),
        _ALL,
        cacheable=True,
    ),
    _request(
        "resources/templates/list",
        "client",
        t.PaginatedRequestParams,
        t.ListResourceTemplatesResult,
        ("server", "resources"),
        _ALL,
        cacheable=True,
    ),
    _request(
        "resources/read",
        "client",
        t.ReadResourceRequestParams,
        t.ReadResourceResult,
        ("server", "resources"),
        _ALL,
        mrtr=True,
        cacheable=True,
        name_source="uri",
    ),
    _request(
        "resources/subscribe",
        "client",
        t.SubscribeRequestParams,
        t.EmptyResult,
        ("server", "resources", "subscribe"),
        _LEGACY,
    ),
    _request(
        "resources/unsubscribe",
        "client",
        t.UnsubscribeRequestParams,
        t.EmptyResult,
        ("server", "resources", "subscribe"),
        _LEGACY,
    ),
    _notification(
        "notifications/resources/updated",
        "server",
        t.ResourceUpdatedNotificationParams,
        ("server", "resources", "subscribe"),
        _ALL,
    ),
    _notification(
        "notifications/resources/list_changed",
        "server",
        t.NotificationParams,
        ("server", "resources", "listChanged"),
        _ALL,
    ),
    # prompts
    _request(
        "prompts/list",
        "client",
        t.PaginatedRequestParams,
        t.ListPromptsResult,
        ("server", "prompts"),
        _ALL,
        cacheable=True,
    ),
    _request(
        "prompts/get",
        "client",
        t.GetPromptRequestParams,
        t.GetPromptResult,
        ("server", "prompts"),
        _ALL,
        mrtr=True,
        name_source="name",
    ),
    _notification(
        "notifications/prompts/list_changed",
        "server",
        t.NotificationParams,
        ("server", "prompts", "listChanged"),
        _ALL,
    ),
    # client features: server-to-client requests in the legacy era
    _request(
        "sampling/createMessage",
        "server",
        t.CreateMessageRequestParams,
        t.CreateMessageResult,
        ("client", "sampling"),
        _LEGACY,
        input_request=True,
    ),
    _request(
        "roots/list",
        "server",
        t.RequestParams,
        t.ListRootsResult,
        ("client", "roots"),
        _LEGACY,
        input_request=True,
    ),
    _notification(
        "notifications/roots/list_changed",
        "client",
        t.NotificationParams,
        ("client", "roots", "listChanged"),
        _LEGACY,
    ),
    _request(
        "elicitation/create",
        "server",
        t.ElicitRequestParams,
        t.ElicitResult,
        ("client", "elicitation"),
        _ELICITATION,
        input_request=True,
    ),
    _notification(
        "notifications/elicitation/complete",
        "server",
        t.ElicitationCompleteNotificationParams,
        ("client", "elicitation", "url"),
        _TASKS_CORE,
    ),
    # tasks: 2025-11-25 core shapes (see _MODERN_SPECS for the 2026 extension)
    _request(
        "tasks/get",
        "both",
        t.GetTaskRequestParams,
        t.GetTaskResult,
        ("receiver", "tasks"),
        _TASKS_BOTH,
        name_source="taskId",
    ),
    _request(
        "tasks/result",
        "both",
        t.GetTaskPayloadRequestParams,
        None,
        ("receiver", "tasks"),
        _TASKS_CORE,
    ),
    _request(
        "tasks/list",
        "both",
        t.PaginatedRequestParams,
        t.ListTasksResult,
        ("receiver", "tasks", "list"),
        _TASKS_CORE,
    ),
    _request(
        "tasks/cancel",
        "both",
        t.CancelTaskRequestParams,
        t.CancelTaskResult,
        ("receiver", "tasks", "cancel"),
        _TASKS_BOTH,
        name_source="taskId",
    ),
    _notification(
        "notifications/tasks/status",
        "both",
        t.TaskStatusNotificationParams,
        None,
        _TASKS_BOTH,
    ),
    _request(
        "tasks/update",
        "client",
        t.UpdateTaskRequestParams,
        t.EmptyResult,
        _TASKS_EXTENSION,
        _MODERN,
        name_source="taskId",
    ),
)

# 2026-07-28 changes: the tasks extension reuses three names with new shapes and direction,
# and progress flows only from server to client.
_MODERN_SPECS: Final = (
    _notification("notifications/progress", "server", t.ProgressNotificationParams, None, _MODERN),
    _request(
        "tasks/get",
        "client",
        t.GetTaskRequestParams,
        t.DetailedTask,
        _TASKS_EXTENSION,
        _MODERN,
        name_source="taskId",
    ),
    _request(
        "tasks/cancel",
        "client",
        t.CancelTaskRequestParams,
        t.EmptyResult,
        _TASKS_EXTENSION,
        _MODERN,
        name_source="taskId",
    ),
    _notification("notifications/tasks/status", "server", t.DetailedTask, None, _MODERN),
)

METHODS: Final[Mapping[str, MethodSpec]] = MappingProxyType({s.method: s for s in _SPECS})
"""Every method name of every revision; ``sender`` is the union over revisions and the tasks
methods have their 2025-11-25 shape. Use :func:`method_spec` with a version for one revision."""

_MODERN_OVERRIDES: Final[Mapping[str, MethodSpec]] = MappingProxyType(
    {s.method: s for s in _MODERN_SPECS}
)


def method_spec(name: str, version: str | None = None) -> MethodSpec | None:
    """The spec of method ``name``, or None if no revision defines it.

    With ``version``, returns None when that revision lacks the method (or is unknown),
    and otherwise the spec as that revision has it (sender, tasks extension shapes).
    """
    spec = METHODS.get(name)
    if spec is None or version is None:
        return spec
    if era_of(version) is Era.MODERN:
        spec = _MODERN_OVERRIDES.get(name, spec)
    return spec if spec.exists_in(version) else None


MRTR_METHODS: Final = frozenset(s.method for s in _SPECS if s.mrtr)
"""Requests a server may answer with ``InputRequiredResult``."""

CACHEABLE_METHODS: Final = frozenset(s.method for s in (*_SPECS, *_MODERN_SPECS) if s.cacheable)
"""Requests whose 2026-07-28 results must carry ``ttlMs`` and ``cacheScope``."""


def name_source(method: str) -> str | None:
    """The params member the ``Mcp-Name`` header mirrors for ``method`` (None: no header)."""
    spec = METHODS.get(method)
    return None if spec is None else spec.name_source


def method_exists(name: str, version: str) -> bool:
    """True if revision ``version`` defines method ``name``."""
    return method_spec(name, version) is not None


def methods_for(version: str) -> tuple[MethodSpec, ...]:
    """The specs of every method revision ``version`` defines, shaped for that revision."""
    specs = (method_spec(name, version) for name in METHODS)
    return tuple(s for s in specs if s is not None)
