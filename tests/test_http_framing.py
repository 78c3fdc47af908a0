"""HTTP/1.1 framing (RFC 9112) and slow clients, on raw sockets, on both HTTP adapters.

Every refusal closes the connection: a head whose framing is in doubt cannot say where the
next request starts. Slow heads and bodies are dropped with 408 while other clients are
served, and a slow body holds no budget of the endpoint while it trickles in.

Hypercorn parses request heads itself and is lax where the ASGI app cannot see it: it
unfolds obs-fold header lines and upper-cases methods before the app gets the request, and
it closes a slow head's connection without a 408. Those cases are checked on h11 only.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from urllib.parse import unquote

import h11
import orjson
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from test_h11 import Raw, _heads
from test_http_server import ACCEPT, INIT, running
from test_http_server import adapter as adapter  # the adapter-parametrized fixture

from mcptrio._server.http_endpoint import HttpServerInfo
from mcptrio._transports.http.asgi import AsgiApp
from mcptrio._transports.http.exchange import BodyTooLarge, ClientDisconnected, HttpExchange
from mcptrio._transports.http.h11 import _Connection, _Server
from mcptrio._transports.http.head import BodyPace, absolute_form, head_error

HOST = b"host: 127.0.0.1\r\n"


@pytest.fixture
def clock() -> trio.testing.MockClock:
    """Virtual time: deadlines of seconds pass at once. Real sockets take real (tiny) time,
    so the clock jumps only once everything has been idle for a few milliseconds."""
    return trio.testing.MockClock(autojump_threshold=0.02)


def port_of(info: HttpServerInfo) -> int:
    return int(info.url.rsplit(":", 1)[1].split("/")[0])


# A request that makes the h11 adapter hand the connection to h11 for good (a chunked body),
# so the request after it is read by h11 rather than by the adapter's own reader.
TO_H11 = b"GET /health HTTP/1.1\r\n" + HOST + b"transfer-encoding: chunked\r\n\r\n0\r\n\r\n"

# name: (request, status, words in the answer, whether Hypercorn lets it through)
FRAMING_CASES: dict[str, tuple[bytes, int, bytes, bool]] = {
    "transfer-encoding-and-content-length": (
        b"POST /mcp HTTP/1.1\r\n" + HOST + b"content-type: application/json\r\n"
        b"transfer-encoding: chunked\r\ncontent-length: 4\r\n\r\n0\r\n\r\n",
        400,
        b"Transfer-Encoding and Content-Length",
        False,
    ),
    "content-length-and-transfer-encoding": (
        b"POST /mcp HTTP/1.1\r\n" + HOST + b"content-length: 5\r\n"
        b"transfer-encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        b"Transfer-Encoding and Content-Length",
        False,
    ),
    "transfer-encoding-on-http-1.0": (
        b"POST /mcp HTTP/1.0\r\n" + HOST + b"transfer-encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        b"HTTP/1.0",
        False,
    ),
    "obs-fold": (
        b"GET /health HTTP/1.1\r\n" + HOST + b"x-a: one\r\n two\r\n\r\n",
        400,
        b"folding",
        True,
    ),
    "obs-fold-on-content-length": (
        b"POST /mcp HTTP/1.1\r\n" + HOST + b"content-length:\r\n 2\r\n\r\n{}",
        400,
        b"folding",
        True,
    ),
    "http-2.0-request-line": (
        b"GET /health HTTP/2.0\r\n" + HOST + b"\r\n",
        505,
        b"HTTP/2.0",
        False,
    ),
    "http-1.2-request-line": (
        b"GET /health HTTP/1.2\r\n" + HOST + b"\r\n",
        505,
        b"HTTP/1.2",
        False,
    ),
    "lower-case-method": (
        b"get /health HTTP/1.1\r\n" + HOST + b"\r\n",
        501,
        b"case-sensitive",
        True,
    ),
    "unknown-method": (
        b"BREW /health HTTP/1.1\r\n" + HOST + b"\r\n",
        501,
        b"'BREW'",
        False,
    ),
    "asterisk-target-without-options": (
        b"GET * HTTP/1.1\r\n" + HOST + b"\r\n",
        400,
        b"only for OPTIONS",
        False,
    ),
    "absolute-form-with-userinfo": (
        b"GET http://user@127.0.0.1/health HTTP/1.1\r\n" + HOST + b"\r\n",
        400,
        b"absolute http(s) URL",
        False,
    ),
}


async def refused(raw: Raw, status: int, words: bytes, *, within: float = 10) -> None:
    """The next answer on ``raw`` is ``status`` naming ``words``, then the server closes."""
    with trio.fail_after(within):
        got, headers, body = await raw.response()
        assert got == status, body
        assert words in body, body
        assert headers["connection"] == "close"
        assert await raw.until_eof() == b""


@pytest.mark.parametrize("how", ["fresh", "after-a-chunked-request", "pipelined"])
async def test_framing_violations_are_refused_and_the_connection_closed(
    adapter: str, how: str
) -> None:
    async with running(server=adapter) as (info, _):
        for case, (request, status, words, hypercorn_lax) in FRAMING_CASES.items():
            if adapter == "hypercorn" and hypercorn_lax:
                continue  # Hypercorn rewrites this head before the ASGI app sees it
            raw = await Raw.connect(port_of(info))
            if how == "after-a-chunked-request":
                await raw.send(TO_H11)
                assert (await raw.response())[0] == 200, case
                await raw.send(request)
            elif how == "pipelined":
                await raw.send(TO_H11 + request)
                assert (await raw.response())[0] == 200, case
            else:
                await raw.send(request)
            await refused(raw, status, words)
        # The server is unharmed.
        ok = await Raw.connect(port_of(info))
        await ok.send(b"GET /health HTTP/1.1\r\n" + HOST + b"\r\n")
        assert (await ok.response())[0] == 200


async def test_hypercorn_is_lax_where_the_app_cannot_see() -> None:
    """What Hypercorn lets through that the h11 adapter refuses (the app never sees the raw
    head); if this starts failing, Hypercorn got stricter and the skip above can go."""
    async with running(server="hypercorn") as (info, _):
        for case in ("obs-fold", "lower-case-method"):
            raw = await Raw.connect(port_of(info))
            await raw.send(FRAMING_CASES[case][0])
            with trio.fail_after(10):
                assert (await raw.response())[0] == 200, case


async def test_a_fold_split_across_reads_is_still_seen() -> None:
    async with running(server="h11") as (info, _):
        raw = await Raw.connect(port_of(info))
        await raw.send(TO_H11)
        assert (await raw.response())[0] == 200
        for part in (b"GET /health HTTP/1.1\r\n", HOST, b"x-a: one\r\n", b" two\r\n\r\n"):
            await raw.send(part)
            await trio.testing.wait_all_tasks_blocked()
        await refused(raw, 400, b"folding")


@pytest.mark.parametrize(
    ("data", "folded"),
    [
        (b"GET / HTTP/1.1\r\nhost: x\r\nx-a: one\r\n two\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nhost: x\r\nx-a: one\r\n\ttwo\r\n\r\n", True),
        (b"GET / HTTP/1.1\nhost: x\nx-a: one\n two\n\n", True),
        # What follows the head is body, whatever it looks like.
        (b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\na\r\n b", False),
        (b"POST / HTTP/1.1\nhost: x\ncontent-length: 5\n\na\n\tb", False),
        (b"GET / HTTP/1.1\r\nhost: x\r\nx-a: one two\r\n\r\n", False),
    ],
)
async def test_folded_lines_are_seen_however_the_head_is_read(data: bytes, folded: bool) -> None:
    conn = _Connection(_test_server(), trio.testing.memory_stream_pair()[0], None)
    for size in range(1, len(data) + 1):
        conn.folded, conn.head_scan = False, b""
        for i in range(0, len(data), size):
            conn._scan_head(data[i : i + size])
        assert (conn.folded, conn.head_scan) == (folded, None), size


def init_request(target: bytes, host: bytes) -> bytes:
    body = orjson.dumps(INIT)
    return (
        b"POST %s HTTP/1.1\r\nhost: %s\r\ncontent-type: application/json\r\n"
        b"accept: %s\r\ncontent-length: %d\r\n\r\n%s"
        % (target, host, ACCEPT.encode(), len(body), body)
    )


@pytest.mark.parametrize("h11_path", [False, True])
async def test_an_absolute_form_target_is_host_checked_by_its_own_authority(
    adapter: str, h11_path: bool
) -> None:
    async with running(server=adapter) as (info, _):
        port = port_of(info)
        local = b"127.0.0.1:%d" % port

        async def ask(target: bytes, host: bytes) -> tuple[int, bytes]:
            raw = await Raw.connect(port)
            if h11_path:
                await raw.send(TO_H11)
                assert (await raw.response())[0] == 200
            await raw.send(init_request(target, host))
            with trio.fail_after(10):
                status, _, body = await raw.response()
            return status, body

        # The authority in the target is what the client asked for, whatever Host says.
        status, body = await ask(b"http://evil.example:%d/mcp" % port, local)
        assert status == 403 and b"evil.example" in body, body
        status, body = await ask(b"http://%s/mcp" % local, b"evil.example")
        assert status == 200 and b"protocolVersion" in body, body
        # Its path routes, as an origin-form target would.
        status, body = await ask(b"http://%s/nowhere" % local, local)
        assert status == 404 and b"/nowhere" in body, body


# -- slow clients -------------------------------------------------------------------------

SLOW = {
    "header_timeout": 5.0,
    "body_timeout": 30.0,
    "min_body_rate": 100.0,
    "body_rate_grace": 2.0,
    # One MCP request in flight at a time: a slow body that took that budget would make the
    # well-behaved client's tools/call wait (503). (The slow client does hold its own TCP
    # connection until the 408: that is the connection budget's business, not this one's.)
    "max_in_flight_requests": 1,
}


async def served_meanwhile(info: HttpServerInfo) -> None:
    """A well-behaved client: initialize, then call a tool."""
    raw = await Raw.connect(port_of(info))
    await raw.send(init_request(b"/mcp", b"127.0.0.1"))
    status, headers, body = await raw.response()
    assert status == 200, body
    session = headers["mcp-session-id"]
    call = orjson.dumps(
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "still here"}},
        }
    )
    await raw.send(
        b"POST /mcp HTTP/1.1\r\n" + HOST + b"content-type: application/json\r\n"
        b"accept: %s\r\nmcp-session-id: %s\r\nmcp-protocol-version: 2025-11-25\r\n"
        b"content-length: %d\r\n\r\n%s" % (ACCEPT.encode(), session.encode(), len(call), call)
    )
    status, _, body = await raw.response()
    assert status == 200 and b"still here" in body, body


@asynccontextmanager
async def attack(
    info: HttpServerInfo, head: bytes, trickle: bytes, interval: float, size: int = 1
) -> AsyncIterator[Raw]:
    """A client that sends ``head``, then ``trickle`` ``size`` bytes every ``interval``
    seconds until the server stops it."""
    raw = await Raw.connect(port_of(info))
    await raw.send(head)

    async def dribble() -> None:
        try:
            for i in range(0, len(trickle), size):
                await raw.send(trickle[i : i + size])
                await trio.sleep(interval)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async with trio.open_nursery() as nursery:
        nursery.start_soon(dribble)
        yield raw
        nursery.cancel_scope.cancel()


def slow_post(length: int) -> bytes:
    return (
        b"POST /mcp HTTP/1.1\r\n" + HOST + b"content-type: application/json\r\n"
        b"accept: %s\r\ncontent-length: %d\r\n\r\n" % (ACCEPT.encode(), length)
    )


async def test_a_body_sent_a_byte_at_a_time_gets_408_while_others_are_served(
    adapter: str, clock: trio.testing.MockClock
) -> None:
    async with running(server=adapter, **SLOW) as (info, _):
        async with attack(info, slow_post(1000), b"x" * 1000, 1.0) as raw:
            await trio.sleep(0.5)  # the body has started to trickle in
            await served_meanwhile(info)
            await refused(raw, 408, b"bytes/s")
        await served_meanwhile(info)


async def test_a_byte_every_ten_seconds_is_dropped_with_the_default_settings(
    adapter: str, clock: trio.testing.MockClock
) -> None:
    async with (
        running(server=adapter) as (info, _),
        attack(info, slow_post(100), b"x" * 100, 10.0) as raw,
    ):
        await refused(raw, 408, b"bytes/s", within=60)


async def test_a_body_fast_enough_but_too_long_in_all_gets_408(
    adapter: str, clock: trio.testing.MockClock
) -> None:
    # 200 bytes/s keeps above the minimum rate, but 10,000 bytes take 50 s: past the 30 s.
    async with (
        running(server=adapter, **SLOW) as (info, _),
        attack(info, slow_post(10_000), b"x" * 10_000, 1.0, size=200) as raw,
    ):
        await trio.sleep(10)
        await served_meanwhile(info)
        await refused(raw, 408, b"within 30 s", within=60)


async def test_a_head_sent_a_byte_at_a_time_is_dropped_while_others_are_served(
    adapter: str, clock: trio.testing.MockClock
) -> None:
    async with running(server=adapter, **SLOW) as (info, _):
        async with attack(info, b"POST /mcp HTTP/1.1\r\n", b"x-slow: " + b"y" * 100, 1.0) as raw:
            await trio.sleep(0.5)
            await served_meanwhile(info)
            with trio.fail_after(10):
                if adapter == "h11":
                    await refused(raw, 408, b"headers came too slowly")
                else:
                    # Hypercorn closes the connection without an answer.
                    assert await raw.until_eof() == b""
        await served_meanwhile(info)


# -- units of the rules -------------------------------------------------------------------


def test_the_pace_allows_the_grace_then_the_rate_then_the_total() -> None:
    pace = BodyPace(100.0, timeout=30.0, min_rate=100.0, grace=2.0)
    assert pace.deadline(0) == 102.0  # the grace
    assert pace.deadline(199) == 102.0
    assert pace.deadline(500) == 105.0  # 500 bytes at 100 bytes/s
    assert pace.deadline(10**9) == 130.0  # the total
    assert BodyPace(0.0, timeout=30.0, min_rate=0.0, grace=2.0).deadline(0) == 30.0
    assert "bytes/s" in pace.reason(150, 102.0)
    assert "within 30 s" in pace.reason(5000, 130.0)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("http://127.0.0.1:8000/mcp?x=1", ("127.0.0.1:8000", "/mcp")),
        ("HTTPS://[::1]/", ("[::1]", "/")),
        ("http://host", ("host", "/")),
        ("ftp://host/mcp", None),
        ("http:///mcp", None),
        ("http://user:pw@host/mcp", None),
        ("http://[::1/mcp", None),
        ("/mcp", None),
    ],
)
def test_absolute_form(target: str, expected: tuple[str, str] | None) -> None:
    assert absolute_form(target) == expected


def test_every_rule_names_its_status() -> None:
    def check(method: str = "GET", version: str = "1.1", target: str = "/", **kw: bool) -> int:
        kw.setdefault("content_length", False)
        kw.setdefault("transfer_encoding", False)
        refusal = head_error(method, version, target, **kw)
        return 0 if refusal is None else refusal[0]

    assert check() == 0
    assert check(version="1.0") == 0
    assert check(version="2.0") == check(version="0.9") == 505
    assert check(folded=True) == 400
    assert check("get") == check("FOO") == 501
    assert check("POST", content_length=True, transfer_encoding=True) == 400
    assert check("POST", version="1.0", transfer_encoding=True) == 400
    assert check("POST", transfer_encoding=True) == 0
    assert check("OPTIONS", target="*") == 0
    assert check(target="*") == 400
    assert check("CONNECT", target="example.com:443") == 501
    assert check(target="example.com:443") == 400
    assert check(target="http://example.com/x") == 0


# -- every head gets a well-formed answer --------------------------------------------------


async def _echo(ex: HttpExchange) -> None:
    try:
        body = await ex.read_body(1024)
    except BodyTooLarge:
        await ex.respond(413, [("content-type", "text/plain")], b"too large")
        return
    except ClientDisconnected:
        return
    await ex.respond(200, [("content-type", "text/plain")], b"%d" % len(body))


def _test_server() -> _Server:
    return _Server(
        _echo,
        max_body=1024,
        ssl_context=None,
        header_timeout=5.0,
        body_timeout=5.0,
        min_body_rate=10.0,
        body_rate_grace=1.0,
        keep_alive_timeout=5.0,
        max_header_bytes=4096,
        max_connections=None,
    )


async def _serve_one_connection(data: list[bytes]) -> bytes:
    """Send ``data`` (in pieces) to one in-memory connection; every byte it answers with."""
    server = _test_server()
    client, ours = trio.testing.memory_stream_pair()
    received = bytearray()

    async def serve() -> None:
        # Straight to the connection, not through _Server.connection, which would log
        # and swallow a crash: here a crash fails the test.
        try:
            await _Connection(server, ours, "127.0.0.1").serve()
        finally:
            await ours.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        try:
            for part in data:
                await client.send_all(part)
        except trio.BrokenResourceError:
            pass  # the server answered and closed before the rest was sent
        while chunk := await client.receive_some():
            received += chunk
    return bytes(received)


def _first_response(request: bytes, answer: bytes) -> tuple[int, dict[bytes, bytes]]:
    """The status and headers of the first response in ``answer``, parsed by an HTTP
    client that fails on anything malformed."""
    method = request.split(b" ", 1)[0]
    reader = h11.Connection(h11.CLIENT)
    reader.send(
        h11.Request(
            method=b"HEAD" if method == b"HEAD" else b"GET", target="/", headers=[("host", "x")]
        )
    )
    reader.send(h11.EndOfMessage())
    reader.receive_data(answer)
    reader.receive_data(b"")
    response = None
    while True:
        event = reader.next_event()
        if type(event) is h11.Response:
            response = event
        elif type(event) is h11.EndOfMessage:
            break
        else:
            assert type(event) in (h11.InformationalResponse, h11.Data), event
    assert response is not None
    return response.status_code, dict(response.headers)


_BODIES = st.one_of(st.just(b""), st.binary(max_size=40), st.just(b"3\r\nabc\r\n0\r\n\r\n"))


@st.composite
def _odd_heads(draw: st.DrawFn) -> bytes:
    """The heads of ``test_h11``, with methods and versions the rules judge more often."""
    head = draw(_heads())
    method = draw(st.sampled_from([None, b"HEAD", b"head", b"BREW", b"OPTIONS", b"CONNECT"]))
    if method is not None:
        head = method + b" " + head.partition(b" ")[2]
    version = draw(st.sampled_from([None, b"HTTP/2.0", b"HTTP/1.0", b"HTTP/0.9"]))
    if version is not None:
        head = re.sub(rb"HTTP/\d\.\d", version, head, count=1)
    return head


@settings(max_examples=500)
@given(head=_odd_heads(), body=_BODIES, cuts=st.lists(st.integers(min_value=0), max_size=4))
def test_every_head_gets_a_well_formed_answer(head: bytes, body: bytes, cuts: list[int]) -> None:
    request = head + b"\r\n\r\n" + body
    points = sorted({c % (len(request) + 1) for c in cuts} | {0, len(request)})
    pieces = [request[a:b] for a, b in itertools.pairwise(points) if b > a]
    answer = trio.run(
        _serve_one_connection, pieces, clock=trio.testing.MockClock(autojump_threshold=0)
    )
    status, headers = _first_response(request, answer)
    assert 100 <= status <= 599
    if status >= 400:
        # Refused (by the adapter, or 413 for a body too large): said so, and nothing more
        # is read from the connection.
        assert headers.get(b"connection") == b"close", (status, headers)
    refusal = _refusal_of(head)
    if refusal is not None:
        assert status == refusal, (status, answer)


def _refusal_of(head: bytes) -> int | None:
    """The status the framing rules give ``head`` when h11 itself takes it."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(head + b"\r\n\r\n")
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError:
        return None
    if type(event) is not h11.Request:
        return None
    names = {name for name, _ in event.headers}
    refusal = head_error(
        event.method.decode("ascii"),
        event.http_version.decode("ascii"),
        event.target.decode("latin-1"),
        content_length=b"content-length" in names,
        transfer_encoding=b"transfer-encoding" in names,
        folded=re.search(rb"\n[ \t]", head) is not None,
    )
    return None if refusal is None else refusal[0]


# The ASGI adapter gets heads Hypercorn has parsed: the same property over ASGI scopes.

_SCOPES = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["GET", "POST", "OPTIONS", "get", "BREW", "CONNECT", "HEAD"]),
        "http_version": st.sampled_from(["1.1", "1.0", "2", "3", "2.0", "0.9"]),
        "raw_path": st.sampled_from(
            [b"/mcp", b"*", b"http://127.0.0.1:8000/mcp", b"http://u@h/", b"h:443", b"", b"/%zz"]
        ),
        "headers": st.lists(
            st.tuples(
                st.sampled_from([b"host", b"content-length", b"transfer-encoding", b"x-a"]),
                st.sampled_from([b"127.0.0.1", b"5", b"chunked", b""]),
            ),
            max_size=4,
        ),
    }
)


async def _asgi_exchange(
    scope: dict[str, object], pieces: list[tuple[bytes, float]]
) -> list[dict[str, object]]:
    app = AsgiApp(_echo, max_body=1024, body_timeout=5.0, min_body_rate=10.0, body_rate_grace=1)
    raw_path = scope["raw_path"]
    assert isinstance(raw_path, bytes)
    full = {
        "type": "http",
        "path": unquote(raw_path.decode("latin-1")),
        "query_string": b"",
        "client": ("127.0.0.1", 1),
        **scope,
    }
    messages: list[dict[str, object]] = [
        {"type": "http.request", "body": body, "more_body": True, "delay": delay}
        for body, delay in pieces
    ]
    messages.append({"type": "http.request", "body": b"", "more_body": False, "delay": 0.0})
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        if not messages:
            await trio.sleep_forever()
        message = messages.pop(0)
        delay = message.pop("delay")
        assert isinstance(delay, float)
        await trio.sleep(delay)
        return message

    async def send(message: MutableMapping[str, object]) -> None:
        sent.append(dict(message))

    await app(full, receive, send)
    return sent


@settings(max_examples=300)
@given(
    scope=_SCOPES,
    pieces=st.lists(
        st.tuples(st.binary(max_size=20), st.sampled_from([0.0, 0.5, 3.0])), max_size=4
    ),
)
def test_every_asgi_request_gets_a_well_formed_answer(
    scope: dict[str, object], pieces: list[tuple[bytes, float]]
) -> None:
    sent = trio.run(
        _asgi_exchange, scope, pieces, clock=trio.testing.MockClock(autojump_threshold=0)
    )
    start, *bodies = sent
    assert start["type"] == "http.response.start"
    status = start["status"]
    assert isinstance(status, int) and 100 <= status <= 599
    assert [m["type"] for m in bodies] == ["http.response.body"] * len(bodies)
    assert bodies and bodies[-1]["more_body"] is False
    headers = start["headers"]
    assert isinstance(headers, list)
    if status >= 400 and status != 413:
        assert (b"connection", b"close") in headers, (status, headers)
    if status == 200:
        # Served: the head passed every rule the ASGI adapter can apply.
        assert scope["method"] in ("GET", "POST", "OPTIONS", "HEAD")
        assert scope["http_version"] in ("1.1", "1.0", "2", "3")
        names = {name for name, _ in scope["headers"]}  # type: ignore[attr-defined]
        assert not {b"content-length", b"transfer-encoding"} <= names
