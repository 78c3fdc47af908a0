"""Server-Sent Events: encoding events and decoding a stream incrementally.

The decoder follows the WHATWG "event stream interpretation" rules: CRLF, LF and CR all end
lines (even when a CRLF pair is split across chunks), a leading BOM is dropped, comments and
unknown fields are ignored, an ``id`` containing NUL is ignored, and a block without ``data``
lines dispatches nothing but still updates the last event id and the retry delay.

Sans-IO: no trio here.
"""

from __future__ import annotations

import codecs
from typing import Final

import attrs

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "SSEDecoder",
    "SSEError",
    "SSEEvent",
    "encode_comment",
    "encode_event",
]

DEFAULT_MAX_EVENT_BYTES: Final = 16 * 1024 * 1024
"""Largest event (or single line) an :class:`SSEDecoder` accepts unless told otherwise."""

_BOM: Final = codecs.BOM_UTF8
# Longer retry values (over 115 days) are ignored rather than fed to int() unbounded.
_MAX_RETRY_DIGITS: Final = 10
_CR: Final = 0x0D
_LF: Final = 0x0A


class SSEError(ValueError):
    """The event stream broke a limit; the decoder cannot be used afterwards."""


@attrs.frozen
class SSEEvent:
    """One dispatched event."""

    data: str
    """The ``data`` lines joined with LF."""

    event: str = "message"
    """The event type; ``message`` when the stream named none."""

    id: str | None = None
    """The stream's last event id when this event was dispatched (ids persist across events)."""

    retry: int | None = None
    """The reconnection delay in milliseconds, when this event's block carried a ``retry`` field."""


# --------------------------------------------------------------------------- encoding


def encode_event(
    data: bytes | str | None = None,
    *,
    id: str | None = None,
    event: str | None = None,
    retry_ms: int | None = None,
) -> bytes:
    """Encode one event, terminated by a blank line.

    Each line of ``data`` (split on CRLF, CR or LF) becomes its own ``data:`` line, so a reader
    gets the lines back joined with LF. ``data=None`` with an ``id`` or ``event`` writes an empty
    ``data:`` line: with an id that is the priming event a resumable stream starts with. With
    only ``retry_ms`` nothing is dispatched; the reader just learns the reconnection delay.
    ``bytes`` data must be UTF-8. Raises ValueError for a line break in ``id`` or ``event``,
    a NUL in ``id`` (readers ignore such ids), or a negative ``retry_ms``.
    """
    parts: list[bytes] = []
    if id is not None:
        _check_single_line("id", id)
        if "\0" in id:
            raise ValueError(f"event id {id!r} contains NUL; readers would ignore it")
        parts.append(b"id: " + id.encode())
    if event is not None:
        _check_single_line("event", event)
        parts.append(b"event: " + event.encode())
    if retry_ms is not None:
        if isinstance(retry_ms, bool) or not isinstance(retry_ms, int) or retry_ms < 0:
            raise ValueError(f"retry_ms must be a non-negative int, got {retry_ms!r}")
        parts.append(b"retry: %d" % retry_ms)
    if data is None:
        if id is None and event is None:
            if retry_ms is None:
                raise ValueError("nothing to encode: give data, id, event or retry_ms")
        else:
            parts.append(b"data: ")
    else:
        raw = data.encode() if isinstance(data, str) else data
        if b"\n" in raw or b"\r" in raw:
            parts.extend(b"data: " + line for line in _split_lines(raw))
        else:
            parts.append(b"data: " + raw)
    parts.append(b"\n")
    return b"\n".join(parts)


def encode_comment(text: str = "") -> bytes:
    """Encode a comment (readers ignore it), e.g. a keep-alive that stops proxies timing out."""
    if not text:
        return b":\n\n"
    lines = _split_lines(text.encode())
    return b"".join(b": " + line + b"\n" for line in lines) + b"\n"


def _check_single_line(name: str, value: str) -> None:
    if "\n" in value or "\r" in value:
        raise ValueError(f"SSE {name} {value!r} contains a line break")


def _split_lines(raw: bytes) -> list[bytes]:
    # bytes.splitlines splits on exactly CRLF, CR and LF (the SSE line endings), but drops a
    # trailing empty line, which a data value ending in a newline needs.
    lines = raw.splitlines()
    if not lines or raw.endswith((b"\n", b"\r")):
        lines.append(b"")
    return lines


# --------------------------------------------------------------------------- decoding


class SSEDecoder:
    """Incremental event stream parser: feed it bytes as they arrive, get events out.

    ``max_event_bytes`` bounds the memory one event (its data lines, or any single
    unterminated line) may take; beyond it :meth:`feed` raises :class:`SSEError`.
    """

    def __init__(self, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        if isinstance(max_event_bytes, bool) or max_event_bytes < 1:
            raise ValueError(f"max_event_bytes must be >= 1, got {max_event_bytes!r}")
        self._max = max_event_bytes
        self._head: bytes | None = b""  # bytes held until a BOM is ruled in or out; None after
        self._partial = bytearray()  # an unterminated line
        self._skip_lf = False  # the previous chunk ended in CR; a leading LF completes a CRLF
        self._data: list[str] = []
        self._data_bytes = 0
        self._event_type = ""
        self._block_retry: int | None = None
        self._last_event_id: str | None = None
        self._retry: int | None = None

    @property
    def last_event_id(self) -> str | None:
        """The last event id the stream set (``""`` once reset by an empty ``id``), else None."""
        return self._last_event_id

    @property
    def retry(self) -> int | None:
        """The latest reconnection delay in milliseconds the stream asked for, else None."""
        return self._retry

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Parse the next bytes of the stream; return the events they complete, in order."""
        if self._head is not None:
            head = self._head + chunk
            if len(head) < len(_BOM) and _BOM.startswith(head):
                self._head = head
                return []
            self._head = None
            chunk = head[len(_BOM) :] if head.startswith(_BOM) else head
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[0] == _LF:
                chunk = chunk[1:]
                if not chunk:
                    return []
        events: list[SSEEvent] = []
        lines = chunk.splitlines(keepends=True)
        last = lines[-1]
        if last[-1] not in (_CR, _LF):
            lines.pop()
        else:
            last = b""
            if chunk[-1] == _CR:
                self._skip_lf = True
        for raw in lines:
            line = raw.rstrip(b"\r\n")
            if self._partial:
                self._partial += line
                line = bytes(self._partial)
                self._partial.clear()
                if len(line) > self._max:
                    self._too_big("a line")
            self._line(line, events)
        if last:
            self._partial += last
            if len(self._partial) > self._max:
                self._too_big("a line")
        return events

    def _line(self, line: bytes, events: list[SSEEvent]) -> None:
        if not line:
            self._dispatch(events)
            return
        colon = line.find(b":")
        if colon == 0:
            return  # a comment
        if colon < 0:
            name, value = line, b""
        else:
            name = line[:colon]
            value = line[colon + 2 :] if line[colon + 1 : colon + 2] == b" " else line[colon + 1 :]
        if name == b"data":
            self._data_bytes += len(value) + 1
            if self._data_bytes > self._max:
                self._too_big("an event")
            self._data.append(value.decode("utf-8", "replace"))
        elif name == b"id":
            if b"\0" not in value:
                self._last_event_id = value.decode("utf-8", "replace")
        elif name == b"event":
            self._event_type = value.decode("utf-8", "replace")
        elif name == b"retry" and value.isdigit() and len(value) <= _MAX_RETRY_DIGITS:
            # Only ASCII digits count (bytes.isdigit); anything else is ignored.
            self._retry = self._block_retry = int(value)

    def _dispatch(self, events: list[SSEEvent]) -> None:
        retry = self._block_retry
        self._block_retry = None
        if not self._data:
            self._event_type = ""
            return
        events.append(
            SSEEvent(
                data="\n".join(self._data),
                event=self._event_type or "message",
                id=self._last_event_id,
                retry=retry,
            )
        )
        self._data = []
        self._data_bytes = 0
        self._event_type = ""

    def _too_big(self, what: str) -> None:
        raise SSEError(
            f"SSE stream sent {what} larger than {self._max} bytes; raise max_event_bytes if"
            " the server legitimately sends events this large"
        )
