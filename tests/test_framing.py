"""LineDecoder: newline framing with a bounded buffer."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcptrio._protocol.framing import LineDecoder, LineEvent, Oversized


def decode_all(chunks: list[bytes], limit: int) -> tuple[list[LineEvent], int]:
    """All events for ``chunks``, and the largest buffer seen on the way."""
    decoder = LineDecoder(limit)
    events: list[LineEvent] = []
    peak = 0
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
        peak = max(peak, decoder.buffered_bytes)
    events.extend(decoder.eof())
    return events, peak


def normalized(events: list[LineEvent]) -> list[bytes | str]:
    # Oversized.size_so_far depends on where the chunks were cut; its place does not.
    return [e if isinstance(e, bytes) else "oversized" for e in events]


def reference(data: bytes, limit: int) -> list[bytes | str]:
    """What the decoder must produce, computed the obvious (unbounded) way."""
    out: list[bytes | str] = []
    for raw in data.split(b"\n"):
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if len(line) > limit:
            out.append("oversized")
        elif line and not line.isspace():
            out.append(line)
    return out


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


line_bytes = st.lists(
    st.sampled_from([b"a", b"{", b" ", b"\r", b"\n", b"\r\n", b"\xff", b"xyz"]), max_size=60
).map(b"".join)


def test_lines_without_newlines_and_crlf() -> None:
    decoder = LineDecoder(100)
    assert decoder.feed(b'{"a":1}\n{"b"') == [b'{"a":1}']
    assert decoder.feed(b":2}\r\n\n  \r\n\t\n[3]") == [b'{"b":2}']
    assert decoder.eof() == [b"[3]"]
    assert decoder.eof() == []


def test_oversized_is_reported_once_and_tail_dropped() -> None:
    decoder = LineDecoder(4)
    events = decoder.feed(b"12345")
    assert events == [Oversized(5)]
    assert decoder.buffered_bytes == 0
    assert decoder.feed(b"6789" * 1000) == []
    assert decoder.buffered_bytes == 0
    assert decoder.feed(b"0\nok\n") == [b"ok"]


def test_limit_excludes_the_line_ending() -> None:
    decoder = LineDecoder(3)
    assert decoder.feed(b"abc\r") == []
    assert decoder.buffered_bytes == 4
    assert decoder.feed(b"\n") == [b"abc"]
    assert decoder.feed(b"abc\rd") == [Oversized(5)]
    assert decoder.feed(b"\nabcd\n") == [Oversized(4)]
    assert decoder.feed(b"abc\r") == []
    assert decoder.eof() == [b"abc"]


def test_oversized_line_ending_at_eof_is_not_emitted_as_a_line() -> None:
    decoder = LineDecoder(2)
    assert decoder.feed(b"abcdef") == [Oversized(6)]
    assert decoder.eof() == []
    assert decoder.feed(b"ok") == []
    assert decoder.eof() == [b"ok"]


def test_rejects_a_useless_limit() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LineDecoder(0)


@given(data=line_bytes, cuts=st.lists(st.integers(min_value=0), max_size=10))
def test_any_chunking_gives_the_same_lines(data: bytes, cuts: list[int]) -> None:
    whole, _ = decode_all([data], 5)
    split, _ = decode_all(split_at(data, cuts), 5)
    assert normalized(split) == normalized(whole)


@given(
    data=line_bytes,
    cuts=st.lists(st.integers(min_value=0), max_size=10),
    limit=st.integers(min_value=1, max_value=12),
)
def test_matches_reference_and_stays_bounded(data: bytes, cuts: list[int], limit: int) -> None:
    events, peak = decode_all(split_at(data, cuts), limit)
    assert normalized(events) == reference(data, limit)
    assert peak <= limit + 1
    for event in events:
        if isinstance(event, Oversized):
            assert event.size_so_far > limit
