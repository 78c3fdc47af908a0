"""The 2026-07-28 era: per-request ``_meta``, result shaping, discovery and listening."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .._protocol.converter import from_wire, to_wire
from .._protocol.errors import InvalidParams, MCPError, UnsupportedProtocolVersion
from .._protocol.jsonrpc import Request, params_too_deep
from .._protocol.methods import CACHEABLE_METHODS
from .._protocol.versions import (
    META_CLIENT_CAPABILITIES,
    META_CLIENT_INFO,
    META_LOG_LEVEL,
    META_PROTOCOL_VERSION,
    META_SERVER_INFO,
    META_SUBSCRIPTION_ID,
    MODERN_VERSIONS,
)
from ..types import LOGGING_LEVELS, ClientCapabilities, Implementation, LoggingLevel
from .context import Outbound
from .tasks import listen_task_ids, task_notification

if TYPE_CHECKING:
    from .._auth.resource_server import Principal
    from .._state.change_bus import ChangeEvent
    from .dispatch import CallScope
    from .server import Server

__all__ = [
    "ModernMeta",
    "discover_result",
    "finish_result",
    "is_modern_request",
    "listen",
    "parse_modern_meta",
    "serve_modern",
]


@attrs.frozen
class ModernMeta:
    """What a 2026-07-28 request says about itself in ``params._meta``."""

    protocol_version: str
    client_capabilities: ClientCapabilities
    client_info: Implementation | None
    log_level: LoggingLevel | None


def is_modern_request(params: Mapping[str, Any] | None) -> bool:
    """True when a request carries the 2026-07-28 protocol version in its ``_meta``."""
    if not params:
        return False
    meta = params.get("_meta")
    return isinstance(meta, dict) and META_PROTOCOL_VERSION in meta


def parse_modern_meta(params: Mapping[str, Any]) -> ModernMeta:
    """Validate a request's ``_meta`` in the spec's order (-32602, then -32022, then -32602)."""
    meta = params.get("_meta")
    if not isinstance(meta, dict):
        raise InvalidParams(f"params._meta is required and must hold {META_PROTOCOL_VERSION!r}")
    version = meta.get(META_PROTOCOL_VERSION)
    if not isinstance(version, str) or not version:
        raise InvalidParams(f"params._meta[{META_PROTOCOL_VERSION!r}] must be a version string")
    if version not in MODERN_VERSIONS:
        raise UnsupportedProtocolVersion(
            f"protocol version {version!r} is not supported; use one of"
            f" {', '.join(MODERN_VERSIONS)} (or 'initialize' for the earlier revisions)",
            {"supported": list(MODERN_VERSIONS), "requested": version},
        )
    raw_caps = meta.get(META_CLIENT_CAPABILITIES)
    if not isinstance(raw_caps, dict):
        raise InvalidParams(
            f"params._meta[{META_CLIENT_CAPABILITIES!r}] is required on every 2026-07-28"
            " request (an empty object declares no capabilities)"
        )
    capabilities = from_wire(
        ClientCapabilities, raw_caps, path=f"params._meta[{META_CLIENT_CAPABILITIES!r}]"
    )
    raw_info = meta.get(META_CLIENT_INFO)
    client_info = (
        from_wire(Implementation, raw_info, path=f"params._meta[{META_CLIENT_INFO!r}]")
        if isinstance(raw_info, dict)
        else None
    )
    level = meta.get(META_LOG_LEVEL)
    if level is not None and level not in LOGGING_LEVELS:
        raise InvalidParams(
            f"unknown log level {level!r} in params._meta[{META_LOG_LEVEL!r}]; use one of"
            f" {', '.join(LOGGING_LEVELS)}"
        )
    return ModernMeta(version, capabilities, client_info, level)


def finish_result(server: Server, method: str, result: dict[str, Any]) -> dict[str, Any]:
    """Add what every 2026-07-28 result carries: ``resultType``, server info, cache hints."""
    result.setdefault("resultType", "complete")
    meta = result.get("_meta")
    meta = dict(meta) if isinstance(meta, dict) else {}
    meta.setdefault(META_SERVER_INFO, server.info_wire)
    result["_meta"] = meta
    if method in CACHEABLE_METHODS and result["resultType"] == "complete":
        result.setdefault("ttlMs", server.config.cache_ttl_ms)
        result.setdefault("cacheScope", server.config.cache_scope)
    return result


def discover_result(server: Server) -> dict[str, Any]:
    """The ``server/discover`` result."""
    out: dict[str, Any] = {
        "supportedVersions": list(MODERN_VERSIONS),
        "capabilities": to_wire(server.capabilities()),
    }
    if server.instructions is not None:
        out["instructions"] = server.instructions
    return out


async def serve_modern(
    server: Server,
    request: Request,
    outbound: Outbound,
    *,
    cancel_scope: trio.CancelScope | None = None,
    principal: Principal | None = None,
    stopping: trio.Event | None = None,
) -> dict[str, Any]:
    """Serve one stateless 2026-07-28 request; the result is fully shaped."""
    from .dispatch import CallScope, dispatch

    params = request.params if request.params is not None else {}
    # Over HTTP no peer checked the nesting yet (over stdio this repeats a cheap walk).
    too_deep = params_too_deep(params)
    if too_deep is not None:
        raise too_deep
    scope = CallScope.for_modern(
        server,
        parse_modern_meta(params),
        outbound,
        cancel_scope=cancel_scope,
        principal=principal,
        stopping=stopping,
    )
    result = await dispatch(scope, request)
    return finish_result(server, request.method, result)


_FLAGS = {
    "toolsListChanged": ("tools_list_changed", "notifications/tools/list_changed"),
    "promptsListChanged": ("prompts_list_changed", "notifications/prompts/list_changed"),
    "resourcesListChanged": ("resources_list_changed", "notifications/resources/list_changed"),
}


def _honored(requested: Any, server: Server) -> dict[str, Any]:
    if not isinstance(requested, dict):
        raise InvalidParams("params.notifications must be an object naming what to listen for")
    honored: dict[str, Any] = {}
    for key in _FLAGS:
        if requested.get(key) is True:
            honored[key] = True
    uris = requested.get("resourceSubscriptions")
    if uris is not None:
        if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
            raise InvalidParams("notifications.resourceSubscriptions must be a list of URIs")
        honored["resourceSubscriptions"] = list(uris)
    return honored


def _notification_for(
    event: ChangeEvent, honored: Mapping[str, Any]
) -> tuple[str, dict[str, Any]] | None:
    for key, (kind, method) in _FLAGS.items():
        if event.kind == kind and honored.get(key):
            return method, {}
    if event.kind == "resource_updated" and event.uri in honored.get("resourceSubscriptions", ()):
        return "notifications/resources/updated", {"uri": event.uri}
    return None


async def listen(scope: CallScope, request: Request, params: dict[str, Any]) -> dict[str, Any]:
    """``subscriptions/listen``: acknowledge, then forward matching changes until the end.

    The client ends a listen by cancelling it (closing the HTTP stream, or
    ``notifications/cancelled`` on stdio); when the server stops first, the listen
    gets its result so the client knows it was not a network failure.
    """
    server = scope.server
    requested = params.get("notifications", {})
    honored = _honored(requested, server)
    task_ids = listen_task_ids(scope, requested.get("taskIds"))
    if task_ids is not None:
        honored["taskIds"] = task_ids
    tag = {META_SUBSCRIPTION_ID: request.id}
    async with server.change_bus.subscribe() as events:
        await scope.outbound.notify(
            "notifications/subscriptions/acknowledged",
            {"notifications": honored, "_meta": tag},
            related_request_id=request.id,
        )
        async with trio.open_nursery() as nursery:

            async def stop_when_server_stops(stopping: trio.Event) -> None:
                await stopping.wait()
                nursery.cancel_scope.cancel()

            if scope.stopping is not None:
                nursery.start_soon(stop_when_server_stops, scope.stopping)
            async for event in events:
                found = _notification_for(event, honored) or task_notification(
                    event, honored.get("taskIds", ()), scope.principal_key
                )
                if found is None:
                    continue
                method, body = found
                body["_meta"] = tag
                try:
                    await scope.outbound.notify(method, body, related_request_id=request.id)
                except MCPError:
                    break
            nursery.cancel_scope.cancel()
    return {"resultType": "complete", "_meta": tag}
