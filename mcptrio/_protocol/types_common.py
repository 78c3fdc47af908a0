"""Shared MCP wire types: aliases, icons, implementation info, annotations, content blocks.

Sans-IO. Field names are snake_case; :mod:`mcptrio._protocol.converter` maps them to the
camelCase wire names (``meta`` is ``_meta``). A field only some revisions define is
optional and defaults to None, which the converter leaves out of the wire form.
"""

from __future__ import annotations

from typing import Any, Final, Literal, TypeAlias

import attrs

__all__ = [
    "LOGGING_LEVELS",
    "Annotations",
    "AudioContent",
    "BlobResourceContents",
    "CacheScope",
    "ContentBlock",
    "Cursor",
    "EmbeddedResource",
    "Icon",
    "ImageContent",
    "Implementation",
    "LoggingLevel",
    "Meta",
    "ProgressToken",
    "RequestId",
    "ResourceContents",
    "ResourceLink",
    "ResultType",
    "Role",
    "SamplingContent",
    "TextContent",
    "TextResourceContents",
    "ToolResultContent",
    "ToolUseContent",
]

# --- aliases -----------------------------------------------------------------------------

RequestId: TypeAlias = int | str
"""A JSON-RPC request id: a string or an integer, never null."""

ProgressToken: TypeAlias = int | str
"""An opaque token tying ``notifications/progress`` to the request that asked for it."""

Cursor: TypeAlias = str
"""An opaque pagination cursor."""

Meta: TypeAlias = dict[str, Any]
"""The contents of a ``_meta`` member."""

Role: TypeAlias = Literal["user", "assistant"]
"""The sender or recipient of a message in a conversation."""

LoggingLevel: TypeAlias = Literal[
    "debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"
]
"""A log severity, as named by RFC 5424."""

LOGGING_LEVELS: Final[tuple[LoggingLevel, ...]] = (
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
)
"""The logging levels from least to most severe."""

ResultType: TypeAlias = str
"""2026-07-28 ``resultType``: ``"complete"``, ``"input_required"``, or an extension's value."""

CacheScope: TypeAlias = Literal["public", "private"]
"""2026-07-28 ``cacheScope``: may a cached result be shared across authorization contexts."""

# --- metadata ----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Icon:
    """An icon a user interface can show (2025-11-25+)."""

    src: str
    mime_type: str | None = None
    sizes: list[str] | None = None
    theme: Literal["light", "dark"] | None = None


@attrs.frozen(kw_only=True)
class Implementation:
    """Name and version of a client or server implementation."""

    name: str
    version: str
    title: str | None = None
    description: str | None = None
    icons: list[Icon] | None = None
    website_url: str | None = None


@attrs.frozen(kw_only=True)
class Annotations:
    """Hints for the client on how to use or show an object."""

    audience: list[Role] | None = None
    priority: float | None = None
    last_modified: str | None = None


# --- content -----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class TextContent:
    """Text given to or produced by a model."""

    type: Literal["text"] = "text"
    text: str
    annotations: Annotations | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class ImageContent:
    """An image; ``data`` holds the raw bytes (base64 on the wire)."""

    type: Literal["image"] = "image"
    data: bytes
    mime_type: str
    annotations: Annotations | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class AudioContent:
    """Audio (2025-03-26+); ``data`` holds the raw bytes (base64 on the wire)."""

    type: Literal["audio"] = "audio"
    data: bytes
    mime_type: str
    annotations: Annotations | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class ResourceLink:
    """A link to a resource the server can read (2025-06-18+)."""

    type: Literal["resource_link"] = "resource_link"
    uri: str
    name: str
    title: str | None = None
    description: str | None = None
    mime_type: str | None = None
    annotations: Annotations | None = None
    size: int | None = None
    icons: list[Icon] | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class TextResourceContents:
    """The contents of a text resource."""

    uri: str
    text: str
    mime_type: str | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class BlobResourceContents:
    """The contents of a binary resource; ``blob`` holds the raw bytes (base64 on the wire)."""

    uri: str
    blob: bytes
    mime_type: str | None = None
    meta: Meta | None = None


ResourceContents: TypeAlias = TextResourceContents | BlobResourceContents
"""Resource contents, told apart on the wire by a ``text`` or a ``blob`` member."""


@attrs.frozen(kw_only=True)
class EmbeddedResource:
    """Resource contents embedded in a prompt or a tool result."""

    type: Literal["resource"] = "resource"
    resource: ResourceContents
    annotations: Annotations | None = None
    meta: Meta | None = None


ContentBlock: TypeAlias = (
    TextContent | ImageContent | AudioContent | ResourceLink | EmbeddedResource
)
"""A content block of a tool result or prompt message, told apart by ``type``."""


@attrs.frozen(kw_only=True)
class ToolUseContent:
    """A model's request to call a tool, inside sampling (2025-11-25+)."""

    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any]
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class ToolResultContent:
    """The result of a tool use, given back to the model in sampling (2025-11-25+)."""

    type: Literal["tool_result"] = "tool_result"
    tool_use_id: str
    content: list[ContentBlock]
    structured_content: Any = None
    is_error: bool | None = None
    meta: Meta | None = None


SamplingContent: TypeAlias = (
    TextContent | ImageContent | AudioContent | ToolUseContent | ToolResultContent
)
"""A content block of a sampling message, told apart by ``type``."""
