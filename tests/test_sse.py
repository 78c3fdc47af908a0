from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcptrio._protocol.sse import SSEDecoder, SSEError, SSEEvent, encode_comment, encode_event


def decode_all(stream: bytes, *, chunks: list[int] | None = None) -> list[SSEEvent]:
    """Feed ``stream`` cut at the given offsets (default: one byte at a time)."""
    decoder = SSEDecoder()
    cuts = sorted(set(chunks)) if chunks is not None else list(range(1, len(stream)))
    events: list[SSEEvent] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        events += decoder.feed(stream[start:cut])
        start = cut
    return events


# --------------------------------------------------------------------------- encoding


def test_encode_simple_event() -> None:
    assert encode_event('{"a":1}', id="s:1") == b'id: s:1\ndata: {"a":1}\n\n'
    assert encode_event(b"{}", event="message") == b"event: message\ndata: {}\n\n"


def test_encode_multiline_data_one_data_line_each() -> None:
    assert encode_event("a\nb\r\nc\rd") == b"data: a\ndata: b\ndata: c\ndata: d\n\n"
    assert encode_event("x\n") == b"data: x\ndata: \n\n"
    assert encode_event("") == b"data: \n\n"


def test_priming_event_has_an_id_and_empty_data() -> None:
    raw = encode_event(id="stream:0", retry_ms=500)
    assert raw == b"id: stream:0\nretry: 500\ndata: \n\n"
    (event,) = decode_all(raw)
    assert event == SSEEvent(data="", id="stream:0", retry=500)


def test_retry_only_dispatches_nothing_but_sets_the_delay() -> None:
    raw = encode_event(retry_ms=2500)
    assert raw == b"retry: 2500\n\n"
    decoder = SSEDecoder()
    assert decoder.feed(raw) == []
    assert decoder.retry == 2500


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"id": "a\nb"}, "line break"),
        ({"id": "a\rb"}, "line break"),
        ({"event": "x\ny", "data": "d"}, "line break"),
        ({"id": "a\0b"}, "NUL"),
        ({"retry_ms": -1}, "retry_ms"),
        ({"retry_ms": True}, "retry_ms"),
        ({}, "nothing to encode"),
    ],
)
def test_encode_rejects(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        encode_event(**kwargs)


def test_encode_comment() -> None:
    assert encode_comment() == b":\n\n"
    assert encode_comment("keep-alive") == b": keep-alive\n\n"
    assert encode_comment("a\nb") == b": a\n: b\n\n"
    decoder = SSEDecoder()
    assert decoder.feed(encode_comment("x") + encode_comment()) == []


# --------------------------------------------------------------------------- decoding


def test_whatwg_examples() -> None:
    stream = (
        b": test stream\n\n"
        b"data: first event\nid: 1\n\n"
        b"data:second event\nid\n\n"
        b"data:  third event\n\n"
    )
    assert decode_all(stream) == [
        SSEEvent(data="first event", id="1"),
        SSEEvent(data="second event", id=""),
        SSEEvent(data=" third event", id=""),
    ]
    # A field without a colon is a field with an empty value; the unterminated last
    # event is discarded.
    assert decode_all(b"data\n\ndata\ndata\n\ndata:") == [
        SSEEvent(data=""),
        SSEEvent(data="\n"),
    ]
    assert decode_all(b"data: YHOO\ndata: +2\ndata: 10\n\n") == [SSEEvent(data="YHOO\n+2\n10")]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending(eol: bytes) -> None:
    stream = eol.join(
        [b"event: update", b"id: 3", b"data: a", b"data: b", b"", b"data: c", b"", b""]
    )
    expected = [SSEEvent(data="a\nb", event="update", id="3"), SSEEvent(data="c", id="3")]
    assert decode_all(stream, chunks=[]) == expected
    assert decode_all(stream) == expected


def test_crlf_split_across_chunks_is_one_line_ending() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    # Read as CR then LF, the LF would end the event early and give two events.
    assert decoder.feed(b"\ndata: b\r\n\r\n") == [SSEEvent(data="a\nb")]


def test_cr_at_chunk_end_followed_by_cr() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\r") == [SSEEvent(data="a")]


def test_leading_bom_is_dropped_once() -> None:
    bom = b"\xef\xbb\xbf"
    assert decode_all(bom + b"data: x\n\n") == [SSEEvent(data="x")]
    # A second BOM is part of the first field name, which is then unknown.
    assert decode_all(bom + bom + b"data: x\n\n") == []
    # Bytes that only look like the start of a BOM are kept.
    assert decode_all(b"\xef\xbbdata: x\n\ndata: y\n\n") == [SSEEvent(data="y")]


def test_id_with_nul_is_ignored() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 1\n\nid: a\0b\ndata: x\n\n") == [SSEEvent(data="x", id="1")]
    assert decoder.last_event_id == "1"


def test_blocks_without_data_update_id_and_retry_only() -> None:
    decoder = SSEDecoder()
    assert (decoder.last_event_id, decoder.retry) == (None, None)
    assert decoder.feed(b"id: 7\nretry: 300\nevent: ignored\n\n") == []
    assert decoder.last_event_id == "7"
    assert decoder.retry == 300
    # The event type was reset by the empty dispatch; the retry belonged to the last block.
    assert decoder.feed(b"data: x\n\n") == [SSEEvent(data="x", id="7")]


def test_bad_retry_values_are_ignored() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"retry: 100\n\nretry: 1a\n\nretry: -5\n\nretry:\n\nretry: \xd9\xa3\n\n")
    assert decoder.retry == 100
    decoder.feed(b"retry: " + b"9" * 5000 + b"\n\n")
    assert decoder.retry == 100


def test_unknown_fields_and_comments_are_ignored() -> None:
    stream = b":comment\nfoo: bar\nData: no\ndata: yes\n: another\n\n"
    assert decode_all(stream) == [SSEEvent(data="yes")]


def test_event_type_applies_to_one_event() -> None:
    stream = b"event: ping\ndata: 1\n\ndata: 2\n\n"
    assert decode_all(stream) == [SSEEvent(data="1", event="ping"), SSEEvent(data="2")]


def test_invalid_utf8_is_replaced() -> None:
    assert decode_all(b"data: \xff\xfe\n\n") == [SSEEvent(data="\ufffd\ufffd")]


def test_event_too_large() -> None:
    decoder = SSEDecoder(max_event_bytes=16)
    with pytest.raises(SSEError, match="max_event_bytes"):
        decoder.feed(b"data: 0123456789\ndata: 0123456789\n\n")


def test_unterminated_line_too_large_even_in_small_chunks() -> None:
    decoder = SSEDecoder(max_event_bytes=100)
    with pytest.raises(SSEError):
        for _ in range(20):
            decoder.feed(b"data: 0123456789")


def test_long_line_completed_in_a_later_chunk_is_checked() -> None:
    decoder = SSEDecoder(max_event_bytes=20)
    decoder.feed(b"data: 0123456789")
    with pytest.raises(SSEError):
        decoder.feed(b"0123456789\n")


def test_events_within_the_limit_pass() -> None:
    decoder = SSEDecoder(max_event_bytes=16)
    for _ in range(100):
        assert decoder.feed(b"data: 0123456789\n\n") == [SSEEvent(data="0123456789")]


def test_bad_limit() -> None:
    with pytest.raises(ValueError, match="max_event_bytes"):
        SSEDecoder(max_event_bytes=0)


# --------------------------------------------------------------------------- properties

line_free = st.text().filter(lambda s: "\n" not in s and "\r" not in s)
event_specs = st.fixed_dictionaries(
    {
        "data": st.one_of(st.text(), st.binary().map(lambda b: b.decode("latin-1"))),
        "id": st.none() | line_free.filter(lambda s: "\0" not in s),
        "event": st.none() | line_free.filter(bool),
        "retry_ms": st.none() | st.integers(0, 10**9),
        "comment": st.none() | st.text(),
    }
)


@settings(max_examples=200, deadline=None)
@given(
    specs=st.lists(event_specs, max_size=8),
    eol=st.sampled_from(["\n", "\r\n", "\r"]),
    data=st.data(),
)
def test_decode_of_encode_is_identity_under_any_chunking(
    specs: list[dict[str, Any]], eol: str, data: st.DataObject
) -> None:
    stream = b""
    expected: list[SSEEvent] = []
    last_id: str | None = None
    for spec in specs:
        if spec["comment"] is not None:
            stream += encode_comment(spec["comment"])
        stream += encode_event(
            spec["data"], id=spec["id"], event=spec["event"], retry_ms=spec["retry_ms"]
        )
        if spec["id"] is not None:
            last_id = spec["id"]
        expected.append(
            SSEEvent(
                data=spec["data"].replace("\r\n", "\n").replace("\r", "\n"),
                event=spec["event"] or "message",
                id=last_id,
                retry=spec["retry_ms"],
            )
        )
    # Payload line breaks became separate lines, so every LF left is a line ending.
    stream = stream.replace(b"\n", eol.encode())
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=20))
    assert decode_all(stream, chunks=cuts) == expected


@settings(max_examples=200, deadline=None)
@given(stream=st.binary(max_size=300), data=st.data())
def test_chunking_never_changes_what_arbitrary_bytes_decode_to(
    stream: bytes, data: st.DataObject
) -> None:
    # Arbitrary bytes with plenty of line endings and field names in them.
    stream = stream.replace(b"\x01", b"\n").replace(b"\x02", b"\r").replace(b"\x03", b"data:")
    whole = SSEDecoder()
    expected = whole.feed(stream)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=20))
    pieces = SSEDecoder()
    got: list[SSEEvent] = []
    start = 0
    for cut in [*sorted(set(cuts)), len(stream)]:
        got += pieces.feed(stream[start:cut])
        start = cut
    assert got == expected
    assert (pieces.last_event_id, pieces.retry) == (whole.last_event_id, whole.retry)
