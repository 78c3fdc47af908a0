"""Opaque cursors for paginated lists (sans-IO)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import TypeVar

from .errors import InvalidParams

__all__ = ["decode_cursor", "encode_cursor", "paginate"]

T = TypeVar("T")
_PREFIX = "o:"


def encode_cursor(offset: int) -> str:
    """An opaque cursor for the page starting at ``offset``."""
    return base64.urlsafe_b64encode(f"{_PREFIX}{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The offset a cursor points at; ``None`` or ``""`` is the first page.

    Raises :class:`InvalidParams` (-32602) for a cursor this server did not issue.
    """
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith(_PREFIX):
            raise ValueError(raw)
        offset = int(raw[len(_PREFIX) :])
        if offset < 0:
            raise ValueError(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidParams(
            f"invalid cursor {cursor!r}: pass back a nextCursor exactly as this server sent it"
        ) from None
    return offset


def paginate(items: Sequence[T], cursor: str | None, page_size: int) -> tuple[list[T], str | None]:
    """One page of ``items`` and the cursor of the next page (None at the end)."""
    start = decode_cursor(cursor)
    if start > len(items):
        raise InvalidParams(f"invalid cursor {cursor!r}: it points past the end of the list")
    end = start + page_size
    page = list(items[start:end])
    return page, (encode_cursor(end) if end < len(items) else None)
