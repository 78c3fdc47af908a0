"""Content helpers and the conversion of handler return values into MCP content (sans-IO)."""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeGuard

import attrs
import orjson

from ..types import (
    Annotations,
    AudioContent,
    BlobResourceContents,
    ContentBlock,
    EmbeddedResource,
    Icon,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
)

__all__ = [
    "CONTENT_TYPES",
    "audio",
    "embedded_resource",
    "image",
    "is_content_block",
    "json_text",
    "resource_link",
    "text",
    "to_content_blocks",
]

CONTENT_TYPES: tuple[type, ...] = (
    TextContent,
    ImageContent,
    AudioContent,
    ResourceLink,
    EmbeddedResource,
)


def is_content_block(value: object) -> TypeGuard[ContentBlock]:
    """True for any MCP content block (text, image, audio, resource link, embedded resource)."""
    return isinstance(value, CONTENT_TYPES)


def text(value: str, *, annotations: Annotations | None = None) -> TextContent:
    """A text content block."""
    return TextContent(text=value, annotations=annotations)


def _read(data: bytes | str | Path) -> tuple[bytes, str | None]:
    if isinstance(data, Path):
        return data.read_bytes(), mimetypes.guess_type(data.name)[0]
    if isinstance(data, str):
        # A str is a path: raw image bytes are bytes, base64 text would be ambiguous.
        path = Path(data)
        return path.read_bytes(), mimetypes.guess_type(path.name)[0]
    return data, None


def image(
    data: bytes | str | Path,
    mime_type: str | None = None,
    *,
    annotations: Annotations | None = None,
) -> ImageContent:
    """An image block from raw bytes or a file path (MIME type guessed from the name)."""
    raw, guessed = _read(data)
    mime = mime_type or guessed
    if mime is None:
        raise ValueError("image(): pass mime_type= (it cannot be guessed from raw bytes)")
    return ImageContent(data=raw, mime_type=mime, annotations=annotations)


def audio(
    data: bytes | str | Path,
    mime_type: str | None = None,
    *,
    annotations: Annotations | None = None,
) -> AudioContent:
    """An audio block from raw bytes or a file path (MIME type guessed from the name)."""
    raw, guessed = _read(data)
    mime = mime_type or guessed
    if mime is None:
        raise ValueError("audio(): pass mime_type= (it cannot be guessed from raw bytes)")
    return AudioContent(data=raw, mime_type=mime, annotations=annotations)


def resource_link(
    uri: str,
    name: str,
    *,
    title: str | None = None,
    description: str | None = None,
    mime_type: str | None = None,
    size: int | None = None,
    icons: Sequence[Icon] | None = None,
    annotations: Annotations | None = None,
) -> ResourceLink:
    """A link to a resource the client may read (it need not be in ``resources/list``)."""
    return ResourceLink(
        uri=uri,
        name=name,
        title=title,
        description=description,
        mime_type=mime_type,
        size=size,
        icons=list(icons) if icons is not None else None,
        annotations=annotations,
    )


def embedded_resource(
    uri: str,
    content: str | bytes,
    *,
    mime_type: str | None = None,
    annotations: Annotations | None = None,
) -> EmbeddedResource:
    """A resource embedded in a result: text for ``str``, a base64 blob for ``bytes``."""
    contents: TextResourceContents | BlobResourceContents
    if isinstance(content, str):
        contents = TextResourceContents(uri=uri, text=content, mime_type=mime_type)
    else:
        contents = BlobResourceContents(uri=uri, blob=content, mime_type=mime_type)
    return EmbeddedResource(resource=contents, annotations=annotations)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if attrs.has(type(value)):
        return attrs.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_text(value: Any) -> str:
    """Serialize any JSON-like value (attrs classes and dataclasses included) to text."""
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode()


def to_content_blocks(value: Any) -> list[ContentBlock]:
    """Turn a handler's return value into content blocks.

    ``None`` gives no blocks; a ``str`` one text block; a content block itself; a list of
    blocks and strings in order; anything else its JSON text.
    """
    if value is None:
        return []
    if isinstance(value, str):
        return [TextContent(text=value)]
    if is_content_block(value):
        return [value]
    if isinstance(value, list | tuple):
        blocks: list[ContentBlock] = []
        for item in value:
            if isinstance(item, str):
                blocks.append(TextContent(text=item))
            elif is_content_block(item):
                blocks.append(item)
            else:
                break
        else:
            return blocks
    return [TextContent(text=json_text(value))]
