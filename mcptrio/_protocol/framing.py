"""Newline-delimited framing (sans-IO): bytes in, complete lines out, memory bounded.

Used by the stdio and stream transports, where each JSON-RPC message is one line.
"""

from __future__ import annotations

from typing import TypeAlias

import attrs

__all__ = ["LineDecoder", "LineEvent", "Oversized"]


@attrs.frozen(slots=True)
class Oversized:
    """A line longer than the limit; the decoder discards the rest of it.

    ``size_so_far`` is how many bytes of the line had arrived when the limit was
    crossed (at least ``max_line_bytes + 1``; the exact value depends on chunking).
    """

    size_so_far: int


LineEvent: TypeAlias = bytes | Oversized
"""A complete line (without its line ending) or an :class:`Oversized` marker."""


class LineDecoder:
    """Split a byte stream into lines of at most ``max_line_bytes`` bytes.

    Lines end with ``\\n``; a ``\\r`` before it is dropped and does not count towards
    the limit. Blank (whitespace-only) lines are skipped. A line over the limit yields
    one :class:`Oversized` event as soon as the limit is crossed, and its remaining
    bytes are dropped up to the next newline without being buffered, so the decoder
    never holds more than ``max_line_bytes + 1`` bytes.
    """

    def __init__(self, max_line_bytes: int) -> None:
        if max_line_bytes < 1:
            raise ValueError(f"max_line_bytes must be at least 1, got {max_line_bytes}")
        self._max = max_line_bytes
        self._buffer = bytearray()
        # True while skipping the tail of an oversized line.
        self._discarding = False

    @property
    def max_line_bytes(self) -> int:
        """The longest line accepted, in bytes (line ending excluded)."""
        return self._max

    @property
    def buffered_bytes(self) -> int:
        """Bytes of an unfinished line held right now (never above ``max_line_bytes + 1``)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[LineEvent]:
        """Add bytes; return the lines (and oversize markers) they complete."""
        events: list[LineEvent] = []
        start = 0
        size = len(data)
        while start < size:
            newline = data.find(b"\n", start)
            end = size if newline < 0 else newline
            if self._discarding:
                if newline >= 0:
                    self._discarding = False
            elif newline >= 0:
                self._finish_line(data, start, end, events)
            else:
                self._extend(data, start, end, events)
            if newline < 0:
                break
            start = newline + 1
        return events

    def eof(self) -> list[LineEvent]:
        """The input ended: return a final unterminated line, if there is one."""
        events: list[LineEvent] = []
        if not self._discarding and self._buffer:
            line = bytes(self._buffer)
            self._buffer.clear()
            self._emit(line, events)
        self._buffer.clear()
        self._discarding = False
        return events

    def _content_length(self, total: int, last_byte: int | None) -> int:
        # A trailing "\r" belongs to the line ending, not to the content.
        return total - 1 if last_byte == 0x0D else total

    def _last_byte(self, data: bytes, start: int, end: int) -> int | None:
        if end > start:
            return data[end - 1]
        if self._buffer:
            return self._buffer[-1]
        return None

    def _finish_line(self, data: bytes, start: int, end: int, events: list[LineEvent]) -> None:
        total = len(self._buffer) + (end - start)
        if self._content_length(total, self._last_byte(data, start, end)) > self._max:
            self._buffer.clear()
            events.append(Oversized(total))
            return
        if self._buffer:
            self._buffer += data[start:end]
            line = bytes(self._buffer)
            self._buffer.clear()
        else:
            line = data[start:end]
        self._emit(line, events)

    def _extend(self, data: bytes, start: int, end: int, events: list[LineEvent]) -> None:
        total = len(self._buffer) + (end - start)
        # Until the newline arrives, a final "\r" may still turn out to be part of "\r\n".
        if self._content_length(total, self._last_byte(data, start, end)) > self._max:
            self._buffer.clear()
            self._discarding = True
            events.append(Oversized(total))
            return
        self._buffer += data[start:end]

    @staticmethod
    def _emit(line: bytes, events: list[LineEvent]) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if line and not line.isspace():
            events.append(line)
