"""StreamTransport over in-memory byte streams: framing, edge errors, send serialization."""

from __future__ import annotations

import itertools
import tracemalloc
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from mcptrio._ops.metrics import Metrics
from mcptrio._protocol.jsonrpc import (
    ErrorResponse,
    InvalidMessage,
    Message,
    Notification,
    Request,
    Response,
    encode,
)
from mcptrio._runtime.transport import Transport
from mcptrio._transports.stream import (
    DEFAULT_MAX_MESSAGE_BYTES,
    StreamTransport,
    StreamTransportStatistics,
)


class Wire:
    """A StreamTransport under test plus the raw ends a test drives it with."""

    def __init__(self, *, limit: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.to_transport, transport_in = trio.testing.memory_stream_one_way_pair()
        transport_out, self.from_transport = trio.testing.memory_stream_one_way_pair()
        self.transport = StreamTransport(
            transport_out, transport_in, max_message_bytes=limit, name="test"
        )
        self._buffer = b""

    async def write(self, data: bytes) -> None:
        await self.to_transport.send_all(data)

    async def read_line(self) -> Any:
        """The next line the transport wrote, parsed."""
        while b"\n" not in self._buffer:
            chunk = await self.from_transport.receive_some()
            assert chunk, "the transport closed its output"
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        parsed = orjson.loads(line)
        assert isinstance(parsed, dict)
        return parsed


class ChunkedReceiveStream(trio.abc.ReceiveStream):
    """Yields the given chunks one per call, then end of input (or a break)."""

    def __init__(self, chunks: Iterator[bytes], *, then_break: bool = False) -> None:
        self._chunks = chunks
        self._then_break = then_break

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint()
        for chunk in self._chunks:
            return chunk
        if self._then_break:
            raise trio.BrokenResourceError("the peer went away")
        return b""

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


class TricklingSendStream(trio.abc.SendStream):
    """Writes a byte at a time with a checkpoint in between, like a slow pipe."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.stall_after: int | None = None

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        for byte in bytes(data):
            if self.stall_after is not None and len(self.data) >= self.stall_after:
                await trio.sleep_forever()
            self.data.append(byte)
            await trio.lowlevel.checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


def line(obj: object) -> bytes:
    return orjson.dumps(obj) + b"\n"


messages = st.one_of(
    st.builds(
        Request,
        st.one_of(st.integers(-(2**53), 2**53), st.text(max_size=5)),
        st.text(max_size=10),
        st.none() | st.dictionaries(st.text(max_size=5), st.text(max_size=20), max_size=3),
    ),
    st.builds(Notification, st.text(max_size=10)),
    st.builds(
        Response,
        st.integers(0, 1000),
        st.dictionaries(st.text(max_size=5), st.integers(-(2**63), 2**63 - 1), max_size=3),
    ),
    st.builds(ErrorResponse, st.none() | st.integers(0, 9), st.integers(-33000, 0), st.text()),
)


def test_is_a_transport() -> None:
    assert isinstance(Wire().transport, Transport)


async def test_round_trip_between_two_transports() -> None:
    a_out, b_in = trio.testing.memory_stream_one_way_pair()
    b_out, a_in = trio.testing.memory_stream_one_way_pair()
    a = StreamTransport(a_out, a_in)
    b = StreamTransport(b_out, b_in)
    sent: list[Message] = [
        Request(1, "tools/call", {"name": "x", "arguments": {"text": "line\nbreak"}}),
        Notification("notifications/initialized"),
        Response("abc", {"content": []}),
        ErrorResponse(None, -32700, "Parse error"),
    ]
    for message in sent:
        await a.send(message)
    await a.send_batch([Request(2, "ping"), Notification("n")])
    for message in sent:
        assert await b.receive() == message
    assert await b.receive() == [Request(2, "ping"), Notification("n")]
    await a.aclose()
    with pytest.raises(trio.EndOfChannel):
        await b.receive()


@settings(max_examples=50, deadline=None)
@given(batch=st.lists(messages, min_size=1, max_size=8), cuts=st.lists(st.integers(0), max_size=8))
async def test_any_chunking_of_the_input_gives_the_same_messages(
    batch: list[Message], cuts: list[int]
) -> None:
    data = b"".join(encode(m) + b"\n" for m in batch)
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    chunks = iter([data[a:b] for a, b in itertools.pairwise(bounds) if b > a])
    transport = StreamTransport(None, ChunkedReceiveStream(chunks))
    received = []
    with pytest.raises(trio.EndOfChannel):
        while True:
            received.append(await transport.receive())
    assert received == batch


async def test_non_json_line_is_answered_with_a_parse_error_and_reading_goes_on() -> None:
    wire = Wire()
    await wire.write(b"this is not json\n" + line({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
    assert await wire.transport.receive() == Request(1, "ping")
    reply = await wire.read_line()
    assert reply["id"] is None
    assert reply["error"]["code"] == -32700
    assert reply["error"]["message"].startswith("Parse error: ")


async def test_invalid_utf8_is_a_parse_error() -> None:
    wire = Wire()
    await wire.write(
        b'{"jsonrpc":"2.0","method":"\xff"}\n' + line({"jsonrpc": "2.0", "method": "n"})
    )
    assert await wire.transport.receive() == Notification("n")
    assert (await wire.read_line())["error"]["code"] == -32700


async def test_json_that_is_not_jsonrpc_is_answered_with_its_id() -> None:
    wire = Wire()
    await wire.write(line({"jsonrpc": "1.0", "id": 7, "method": "x"}))
    await wire.write(line([]))
    await wire.write(line(42))
    await wire.write(line({"jsonrpc": "2.0", "method": "ok"}))
    assert await wire.transport.receive() == Notification("ok")
    first, second, third = [await wire.read_line() for _ in range(3)]
    assert first["id"] == 7
    assert first["error"] == {
        "code": -32600,
        "message": 'Invalid Request: the "jsonrpc" member must be exactly "2.0"',
    }
    assert second["id"] is None and second["error"]["code"] == -32600
    assert third["id"] is None and third["error"]["code"] == -32600


async def test_invalid_response_is_answered_without_its_id() -> None:
    # Its id belongs to our own requests; echoing it could resolve one of the peer's.
    wire = Wire()
    await wire.write(line({"jsonrpc": "2.0", "id": 3, "result": "not an object"}))
    await wire.write(line({"jsonrpc": "2.0", "method": "ok"}))
    # Our request 3 fails at once, saying why, instead of waiting for an answer forever.
    assert await wire.transport.receive() == ErrorResponse(
        3, -32603, 'the peer sent a malformed response: "result" must be an object, got a string'
    )
    assert await wire.transport.receive() == Notification("ok")
    reply = await wire.read_line()
    assert reply["id"] is None
    assert reply["error"]["code"] == -32600


async def test_batch_keeps_invalid_members_in_place() -> None:
    wire = Wire()
    await wire.write(line([{"jsonrpc": "2.0", "id": 1, "method": "a"}, {"id": 2}]))
    batch = await wire.transport.receive()
    assert isinstance(batch, list)
    assert batch[0] == Request(1, "a")
    assert isinstance(batch[1], InvalidMessage)
    assert wire.transport.statistics().rejected_lines == 0


async def test_oversized_line_is_discarded_and_answered() -> None:
    wire = Wire(limit=64)
    await wire.write(b'{"jsonrpc":"2.0","id":1,"method":"big","params":{"x":"')
    await wire.write(b"y" * 10_000 + b'"}}\n')
    await wire.write(line({"jsonrpc": "2.0", "id": 2, "method": "small"}))
    assert await wire.transport.receive() == Request(2, "small")
    assert await wire.read_line() == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {
            "code": -32600,
            "message": "message too large: more than 64 bytes; the line was discarded",
        },
    }
    stats = wire.transport.statistics()
    assert (stats.rejected_lines, stats.oversized_lines, stats.messages_received) == (1, 1, 1)


async def test_ten_megabyte_line_with_default_limit_keeps_memory_bounded() -> None:
    chunk = b"x" * 65536
    size = 10 * 1024 * 1024
    after = line({"jsonrpc": "2.0", "method": "after"})

    def chunks() -> Iterator[bytes]:
        for _ in range(size // len(chunk)):
            yield chunk
        yield b"\n" + after

    out_send, out_receive = trio.testing.memory_stream_one_way_pair()
    transport = StreamTransport(out_send, ChunkedReceiveStream(chunks()))
    tracemalloc.start()
    try:
        assert await transport.receive() == Notification("after")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The limit's worth of buffer plus small change; holding the line would need > 10 MiB.
    assert peak < DEFAULT_MAX_MESSAGE_BYTES + 2 * 1024 * 1024
    reply = orjson.loads((await out_receive.receive_some()).rstrip(b"\n"))
    assert reply["error"]["message"] == (
        "message too large: more than 4194304 bytes; the line was discarded"
    )


async def test_end_of_input_delivers_an_unterminated_last_line() -> None:
    wire = Wire()
    await wire.write(b'\r\n{"jsonrpc":"2.0","method":"last"}')
    await wire.to_transport.aclose()
    assert await wire.transport.receive() == Notification("last")
    for _ in range(2):
        with pytest.raises(trio.EndOfChannel):
            await wire.transport.receive()


async def test_broken_stream_raises_broken_resource_error() -> None:
    stream = ChunkedReceiveStream(iter([line({"jsonrpc": "2.0", "method": "a"})]), then_break=True)
    transport = StreamTransport(None, stream)
    assert await transport.receive() == Notification("a")
    with pytest.raises(trio.BrokenResourceError):
        await transport.receive()


async def test_concurrent_sends_never_interleave() -> None:
    out = TricklingSendStream()
    transport = StreamTransport(out, ChunkedReceiveStream(iter([])))
    sent = [Request(i, "m" * 20, {"payload": str(i) * 30}) for i in range(8)]
    async with trio.open_nursery() as nursery:
        for message in sent:
            nursery.start_soon(transport.send, message)
    lines = bytes(out.data).splitlines()
    assert sorted(orjson.loads(raw)["id"] for raw in lines) == list(range(8))


async def test_interrupted_send_costs_only_that_message(autojump_clock: trio.abc.Clock) -> None:
    out = TricklingSendStream()
    out.stall_after = 10
    transport = StreamTransport(out, ChunkedReceiveStream(iter([])))
    with trio.move_on_after(1):
        await transport.send(Request(1, "first", {"x": "y" * 50}))
    out.stall_after = None
    await transport.send(Request(2, "second"))
    lines = bytes(out.data).split(b"\n")
    # The partial line is ended, so the peer rejects it alone and reads the next one.
    assert len(lines[0]) == 10
    assert orjson.loads(lines[1]) == {"jsonrpc": "2.0", "id": 2, "method": "second"}
    assert lines[2:] == [b""]


async def test_interrupted_wait_for_the_lock_sends_nothing() -> None:
    out = TricklingSendStream()
    transport = StreamTransport(out, ChunkedReceiveStream(iter([])))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(transport.send, Request(1, "first"))
        await trio.testing.wait_all_tasks_blocked()
        with trio.CancelScope() as scope:
            scope.cancel()
            await transport.send(Request(2, "cancelled"))
    await transport.send(Request(3, "third"))
    assert [orjson.loads(raw)["id"] for raw in bytes(out.data).splitlines()] == [1, 3]


async def test_statistics_count_both_directions() -> None:
    wire = Wire()
    request = line({"jsonrpc": "2.0", "id": 1, "method": "ping"})
    await wire.write(b"junk\n" + request)
    await wire.transport.receive()
    await wire.transport.send(Response(1, {}))
    written = await wire.from_transport.receive_some()
    assert written.count(b"\n") == 2
    assert wire.transport.statistics() == StreamTransportStatistics(
        name="test",
        messages_sent=2,
        messages_received=1,
        bytes_sent=len(written),
        bytes_received=len(b"junk\n" + request),
        rejected_lines=1,
        oversized_lines=0,
    )


async def test_messages_and_bytes_reach_the_server_metrics() -> None:
    metrics = Metrics()
    a_out, b_in = trio.testing.memory_stream_one_way_pair()
    b_out, a_in = trio.testing.memory_stream_one_way_pair()
    a = StreamTransport(a_out, a_in)
    b = StreamTransport(b_out, b_in, metrics=metrics)
    await a.send(Request(1, "ping"))
    await b.receive()
    await b.send(Response(1, {}))
    await a.receive()
    snapshot = metrics.statistics()
    assert (snapshot.messages_in, snapshot.messages_out) == (1, 1)
    assert snapshot.bytes_in == a.statistics().bytes_sent
    assert snapshot.bytes_out == b.statistics().bytes_sent == a.statistics().bytes_received


async def test_receive_only_transport_counts_but_does_not_answer() -> None:
    stream = ChunkedReceiveStream(iter([b"junk\n", line({"jsonrpc": "2.0", "method": "a"})]))
    transport = StreamTransport(None, stream)
    assert await transport.receive() == Notification("a")
    assert transport.statistics().rejected_lines == 1
    with pytest.raises(trio.ClosedResourceError, match="receive-only"):
        await transport.send(Notification("x"))


async def test_answer_to_a_bad_line_may_fail_without_stopping_the_reader() -> None:
    wire = Wire()
    await wire.from_transport.aclose()
    await wire.write(b"junk\n" + line({"jsonrpc": "2.0", "method": "a"}))
    assert await wire.transport.receive() == Notification("a")
    with pytest.raises(trio.BrokenResourceError):
        await wire.transport.send(Notification("b"))


async def test_two_receivers_at_once_is_an_error() -> None:
    wire = Wire()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(wire.transport.receive)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.BusyResourceError):
            await wire.transport.receive()
        nursery.cancel_scope.cancel()


async def test_aclose_is_idempotent_and_final() -> None:
    wire = Wire()
    await wire.transport.aclose()
    await wire.transport.aclose()
    with pytest.raises(trio.ClosedResourceError):
        await wire.transport.send(Notification("x"))
    with pytest.raises(trio.ClosedResourceError):
        await wire.transport.receive()
    assert await wire.from_transport.receive_some() == b""


async def test_empty_batch_cannot_be_sent() -> None:
    with pytest.raises(ValueError, match="at least one"):
        await Wire().transport.send_batch([])
