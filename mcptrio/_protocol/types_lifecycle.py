"""MCP wire types for capabilities, lifecycle, discovery and the base utilities.

Covers ``initialize`` (legacy), ``server/discover`` and ``subscriptions/listen`` (2026-07-28),
``ping``, progress, cancellation and logging. Sans-IO.
"""

from __future__ import annotations

from typing import Any

import attrs

from .types_common import (
    CacheScope,
    Implementation,
    LoggingLevel,
    Meta,
    ProgressToken,
    RequestId,
    ResultType,
)

__all__ = [
    "CancelledNotificationParams",
    "ClientCapabilities",
    "DiscoverRequestParams",
    "DiscoverResult",
    "ElicitationCapability",
    "EmptyResult",
    "InitializeRequestParams",
    "InitializeResult",
    "LoggingMessageNotificationParams",
    "NotificationParams",
    "PaginatedRequestParams",
    "ProgressNotificationParams",
    "PromptsCapability",
    "RequestParams",
    "ResourcesCapability",
    "RootsCapability",
    "SamplingCapability",
    "ServerCapabilities",
    "SetLevelRequestParams",
    "SubscriptionFilter",
    "SubscriptionsAcknowledgedNotificationParams",
    "SubscriptionsListenRequestParams",
    "SubscriptionsListenResult",
    "ToolsCapability",
]

# --- generic params and results ----------------------------------------------------------


@attrs.frozen(kw_only=True)
class RequestParams:
    """Params of a request that carries nothing but ``_meta`` (``ping``, ``roots/list``)."""

    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class NotificationParams:
    """Params of a notification that carries nothing but ``_meta`` (the ``list_changed`` ones)."""

    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class PaginatedRequestParams:
    """Params of the list requests (``tools/list``, ``resources/list``, ...)."""

    cursor: str | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class EmptyResult:
    """A result that carries no data (2026-07-28: just ``resultType``)."""

    result_type: ResultType | None = None
    meta: Meta | None = None


# --- capabilities ------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class RootsCapability:
    """Client capability ``roots``; ``listChanged`` is legacy only."""

    list_changed: bool | None = None


@attrs.frozen(kw_only=True)
class SamplingCapability:
    """Client capability ``sampling``; ``context`` and ``tools`` since 2025-11-25."""

    context: dict[str, Any] | None = None
    tools: dict[str, Any] | None = None


@attrs.frozen(kw_only=True)
class ElicitationCapability:
    """Client capability ``elicitation`` (2025-06-18+); an empty one means form mode only."""

    form: dict[str, Any] | None = None
    url: dict[str, Any] | None = None


@attrs.frozen(kw_only=True)
class ClientCapabilities:
    """What a client supports; a present member means "supported"."""

    experimental: dict[str, dict[str, Any]] | None = None
    roots: RootsCapability | None = None
    sampling: SamplingCapability | None = None
    elicitation: ElicitationCapability | None = None
    tasks: dict[str, Any] | None = None
    extensions: dict[str, dict[str, Any]] | None = None


@attrs.frozen(kw_only=True)
class PromptsCapability:
    """Server capability ``prompts``."""

    list_changed: bool | None = None


@attrs.frozen(kw_only=True)
class ResourcesCapability:
    """Server capability ``resources``."""

    subscribe: bool | None = None
    list_changed: bool | None = None


@attrs.frozen(kw_only=True)
class ToolsCapability:
    """Server capability ``tools``."""

    list_changed: bool | None = None


@attrs.frozen(kw_only=True)
class ServerCapabilities:
    """What a server supports; a present member means "supported"."""

    experimental: dict[str, dict[str, Any]] | None = None
    logging: dict[str, Any] | None = None
    completions: dict[str, Any] | None = None
    prompts: PromptsCapability | None = None
    resources: ResourcesCapability | None = None
    tools: ToolsCapability | None = None
    tasks: dict[str, Any] | None = None
    extensions: dict[str, dict[str, Any]] | None = None


# --- lifecycle: legacy handshake, 2026 discovery -----------------------------------------


@attrs.frozen(kw_only=True)
class InitializeRequestParams:
    """Params of ``initialize`` (legacy)."""

    protocol_version: str
    capabilities: ClientCapabilities
    client_info: Implementation
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class InitializeResult:
    """Result of ``initialize`` (legacy)."""

    protocol_version: str
    capabilities: ServerCapabilities
    server_info: Implementation
    instructions: str | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class DiscoverRequestParams:
    """Params of ``server/discover`` (2026-07-28): only ``_meta``."""

    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class DiscoverResult:
    """Result of ``server/discover`` (2026-07-28)."""

    supported_versions: list[str]
    capabilities: ServerCapabilities
    instructions: str | None = None
    ttl_ms: int | None = None
    cache_scope: CacheScope | None = None
    result_type: ResultType | None = None
    meta: Meta | None = None


# --- progress, cancellation, logging -----------------------------------------------------


@attrs.frozen(kw_only=True)
class ProgressNotificationParams:
    """Params of ``notifications/progress``; ``message`` since 2025-03-26."""

    progress_token: ProgressToken
    progress: float
    total: float | None = None
    message: str | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class CancelledNotificationParams:
    """Params of ``notifications/cancelled`` (``requestId`` is optional only in 2025-11-25)."""

    request_id: RequestId | None = None
    reason: str | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class SetLevelRequestParams:
    """Params of ``logging/setLevel`` (legacy)."""

    level: LoggingLevel
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class LoggingMessageNotificationParams:
    """Params of ``notifications/message``; ``data`` is any JSON value."""

    level: LoggingLevel
    data: Any
    logger: str | None = None
    meta: Meta | None = None


# --- 2026 subscriptions ------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class SubscriptionFilter:
    """Which notifications a ``subscriptions/listen`` stream carries (2026-07-28).

    ``task_ids`` is added by the tasks extension.
    """

    tools_list_changed: bool | None = None
    prompts_list_changed: bool | None = None
    resources_list_changed: bool | None = None
    resource_subscriptions: list[str] | None = None
    task_ids: list[str] | None = None


@attrs.frozen(kw_only=True)
class SubscriptionsListenRequestParams:
    """Params of ``subscriptions/listen`` (2026-07-28)."""

    notifications: SubscriptionFilter
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class SubscriptionsAcknowledgedNotificationParams:
    """Params of ``notifications/subscriptions/acknowledged``: the filter the server honours."""

    notifications: SubscriptionFilter
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class SubscriptionsListenResult:
    """Result that ends a listen stream gracefully; ``_meta`` names the subscription."""

    result_type: ResultType | None = None
    meta: Meta | None = None
