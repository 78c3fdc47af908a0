"""What an interceptor decides about one message, and what it is shown of it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol, TypeAlias

import attrs

from .._auth.resource_server import Principal
from .._protocol.errors import MCPError
from .._runtime.pipeline import Direction

__all__ = [
    "Action",
    "Block",
    "Continue",
    "Delay",
    "HttpMetadata",
    "InterceptContext",
    "Interceptor",
    "MessageKind",
    "Mock",
    "Modify",
    "Pause",
]

MessageKind: TypeAlias = Literal["request", "notification", "response", "error"]
"""The JSON-RPC kind of a message."""


@attrs.frozen
class HttpMetadata:
    """The HTTP request a message arrived in (the Authorization header left out)."""

    method: str
    """The request method, e.g. ``"POST"``."""
    path: str
    """The request target's path."""
    headers: Mapping[str, str]
    """Request headers, names lower-cased, without ``authorization``."""
    client: str | None
    """The client's address, when known."""


@attrs.frozen
class InterceptContext:
    """One message as an interceptor sees it."""

    message: Mapping[str, Any]
    """The raw JSON-RPC message as a dict (do not mutate it: return :class:`Modify`)."""
    direction: Direction
    """``"client->server"`` or ``"server->client"``."""
    kind: MessageKind
    """``"request"``, ``"notification"``, ``"response"`` or ``"error"``."""
    era: Literal["legacy", "modern"] | None
    """The protocol era, once known."""
    protocol_version: str | None
    """The negotiated (or per-request) protocol revision, once known."""
    session_id: str | None
    """The session id, on transports that have one."""
    session: object | None
    """The session record, where there is one."""
    principal: Principal | None
    """Who sent it, when authenticated."""
    transport: str
    """The transport's name (``"stdio"``, ``"memory"``, ``"http"``, ...)."""
    http: HttpMetadata | None
    """The HTTP request it came in, when there is one."""
    time: float
    """``trio.current_time()`` when the chain started on this message."""

    @property
    def method(self) -> str | None:
        """The method of a request or notification."""
        method = self.message.get("method")
        return method if isinstance(method, str) else None


@attrs.frozen
class Continue:
    """Let the message go on unchanged."""


@attrs.frozen
class Modify:
    """Replace the message with ``message`` (re-validated before it goes on)."""

    message: Mapping[str, Any]


@attrs.frozen
class Block:
    """Stop the message; a request is answered with ``error``, a notification dropped."""

    error: MCPError


@attrs.frozen
class Mock:
    """Answer a request with the result ``response`` without processing it."""

    response: Mapping[str, Any]


@attrs.frozen
class Pause:
    """Park the message in the chain's :class:`PauseController` until released.

    ``timeout`` (seconds) overrides the controller's default; None uses it.
    """

    timeout: float | None = None


@attrs.frozen
class Delay:
    """Hold the message for ``duration`` seconds, then apply ``then``."""

    duration: float
    then: Continue | Modify | Block | Mock = attrs.field(factory=Continue)


Action: TypeAlias = Continue | Modify | Block | Mock | Pause | Delay
"""What an interceptor returns."""


class Interceptor(Protocol):
    """An async callable that decides what happens to one message."""

    async def __call__(self, context: InterceptContext, /) -> Action: ...
