"""JSON-RPC and MCP error classes, one per error code, usable in both directions.

A server handler raises one of these to answer with that JSON-RPC error; a client
receiving an error response raises the matching class. Sans-IO: no trio here.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "ConnectionClosed",
    "HeaderMismatch",
    "InternalError",
    "InvalidParams",
    "InvalidRequest",
    "MCPError",
    "MethodNotFound",
    "MissingRequiredClientCapability",
    "ParseError",
    "RequestTimeout",
    "ResourceNotFound",
    "URLElicitationRequired",
    "UnsupportedProtocolVersion",
]


class MCPError(Exception):
    """A JSON-RPC error: raise it in a handler to answer with it; clients raise it on errors.

    ``MCPError(code, message, data)`` works for any code; the subclasses fix the code.
    """

    default_code: ClassVar[int] = -32603
    _by_code: ClassVar[dict[int, type[MCPError]]] = {}

    def __init__(self, message: str, data: Any = None, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code: int = self.default_code if code is None else code
        self.message = message
        self.data = data

    def __init_subclass__(cls, *, register: bool = True, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if register:
            MCPError._by_code.setdefault(cls.default_code, cls)

    @classmethod
    def from_error(cls, code: int, message: str, data: Any = None) -> MCPError:
        """Build the most specific error class for ``code``."""
        klass = MCPError._by_code.get(code)
        if klass is None:
            return MCPError(message, data, code=code)
        return klass(message, data)

    def to_error_dict(self) -> dict[str, Any]:
        """The JSON-RPC ``error`` member for this exception."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            out["data"] = self.data
        return out

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code}, message={self.message!r}, data={self.data!r})"
        )

    def __str__(self) -> str:
        return f"{self.message} (code {self.code})"


class ParseError(MCPError):
    """-32700: the bytes received were not valid JSON."""

    default_code = -32700


class InvalidRequest(MCPError):
    """-32600: valid JSON, but not a valid JSON-RPC message (or not allowed here)."""

    default_code = -32600


class MethodNotFound(MCPError):
    """-32601: the method does not exist or its capability was not advertised."""

    default_code = -32601


class InvalidParams(MCPError):
    """-32602: unknown tool/prompt, bad arguments, bad cursor, missing ``_meta`` fields (2026)."""

    default_code = -32602


class InternalError(MCPError):
    """-32603: the handler failed in a way the caller cannot fix."""

    default_code = -32603


class RequestTimeout(MCPError):
    """-32001: a request was abandoned because it took too long (SDK convention)."""

    default_code = -32001


class ResourceNotFound(MCPError):
    """-32002: resource not found (legacy era; 2026-07-28 uses -32602 with ``data.uri``)."""

    default_code = -32002


class HeaderMismatch(MCPError):
    """-32020: an HTTP header is missing, malformed, or disagrees with the body (2026-07-28)."""

    default_code = -32020


class MissingRequiredClientCapability(MCPError):
    """-32021: the request needs a client capability that was not declared (2026-07-28)."""

    default_code = -32021


class UnsupportedProtocolVersion(MCPError):
    """-32022: the requested protocol version is not supported (2026-07-28)."""

    default_code = -32022


class URLElicitationRequired(MCPError):
    """-32042: the user must complete a URL-mode elicitation first (2025-11-25)."""

    default_code = -32042


class ConnectionClosed(MCPError, register=False):
    """The transport closed while a request was pending; raised locally, never sent."""

    default_code = -32000

    def __init__(self, message: str = "connection closed", data: Any = None) -> None:
        super().__init__(message, data)
