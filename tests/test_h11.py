"""The h11 server over real sockets: keep-alive, pipelining, streams, limits, TLS, shutdown."""

from __future__ import annotations

import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import attrs
import h11
import httpx
import orjson
import pytest
import trio
import trustme
from hypothesis import given, settings
from hypothesis import strategies as st

from mcptrio import Server, ServerConfig
from mcptrio._protocol.sse import SSEDecoder
from mcptrio._server.http_endpoint import HttpEndpoint
from mcptrio._transports.http.exchange import BodyTooLarge, ClientDisconnected, HttpExchange
from mcptrio._transports.http.h11 import _H11, _Head, _parse_head, _Refused, serve_h11, split_target
from mcptrio._transports.http.head import head_error

MAX_BODY = 64 * 1024


@attrs.define
class App:
    """A small handler with hooks the tests drive."""

    gate: trio.Event = attrs.Factory(trio.Event)
    entered: trio.Event = attrs.Factory(trio.Event)
    seen_disconnect: trio.Event = attrs.Factory(trio.Event)
    stream_cancelled: trio.Event = attrs.Factory(trio.Event)
    steps: list[trio.Event] = attrs.Factory(lambda: [trio.Event() for _ in range(3)])
    log: list[str] = attrs.Factory(list)
    send_after_disconnect: list[str] = attrs.Factory(list)

    async def __call__(self, ex: HttpExchange) -> None:
        path = ex.path
        self.log.append(f"{ex.method} {path}?{ex.query_string}")
        if path == "/echo":
            try:
                body = await ex.read_body(1 << 30)
            except BodyTooLarge as exc:
                await ex.respond(413, [("content-type", "text/plain")], str(exc).encode())
                return
            answer = f"{ex.method} {ex.query_string} ".encode() + body
            await ex.respond(200, [("content-type", "text/plain")], answer)
        elif path == "/sse":
            await ex.start_stream(200, [("content-type", "text/event-stream")])
            for i, step in enumerate(self.steps):
                await ex.send_chunk(f"data: {i}\n\n".encode())
                await step.wait()
            await ex.end_stream()
        elif path == "/gated-stream":
            await ex.start_stream(200, [("content-type", "text/plain")])
            await ex.send_chunk(b"first;")
            self.entered.set()
            await self.gate.wait()
            await ex.send_chunk(b"last")
            await ex.end_stream()
        elif path == "/watch":
            await ex.start_stream(200, [("content-type", "text/event-stream")])
            await ex.send_chunk(b": hello\n\n")
            await ex.wait_disconnected()
            self.seen_disconnect.set()
            try:
                await ex.send_chunk(b"data: too late\n\n")
            except ClientDisconnected:
                self.send_after_disconnect.append("refused")
        elif path == "/wait-then-answer":
            await ex.read_body(MAX_BODY)
            self.entered.set()
            await ex.wait_disconnected()
            self.seen_disconnect.set()
        elif path == "/forever":
            await ex.start_stream(200, [("content-type", "text/event-stream")])
            await ex.send_chunk(b"data: open\n\n")
            self.entered.set()
            try:
                await trio.sleep_forever()
            finally:
                self.stream_cancelled.set()
        elif path == "/slow":
            self.entered.set()
            await self.gate.wait()
            await ex.respond(200, [("content-type", "text/plain")], b"slow done")
        elif path == "/close":
            await ex.respond(200, [("connection", "close")], b"bye")
        elif path == "/boom":
            raise RuntimeError("handler bug")
        elif path == "/silent":
            return
        elif path == "/big":
            await ex.respond(200, [("content-type", "application/octet-stream")], b"x" * 300_000)
        else:
            await ex.respond(404, [("content-type", "text/plain")], b"no such thing")


@attrs.define
class Running:
    url: str
    port: int
    shutdown: trio.Event
    done: trio.Event


@asynccontextmanager
async def serving(
    handler: Callable[[HttpExchange], Awaitable[None]], **options: Any
) -> AsyncIterator[Running]:
    options.setdefault("max_body", MAX_BODY)
    options.setdefault("graceful_timeout", 2.0)
    shutdown = trio.Event()
    done = trio.Event()

    async def run(task_status: trio.TaskStatus[list[str]]) -> None:
        try:
            await serve_h11(
                handler,
                host="127.0.0.1",
                port=0,
                shutdown_trigger=shutdown.wait,
                task_status=task_status,
                **options,
            )
        finally:
            done.set()

    async with trio.open_nursery() as nursery:
        urls: list[str] = await nursery.start(run)
        [url] = urls
        yield Running(url, int(url.rsplit(":", 1)[1]), shutdown, done)
        shutdown.set()
        with trio.fail_after(5):
            await done.wait()


class Raw:
    """A raw HTTP/1.1 client that can pipeline and misbehave."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buf = bytearray()

    @classmethod
    async def connect(cls, port: int) -> Raw:
        return cls(await trio.open_tcp_stream("127.0.0.1", port))

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def _more(self) -> None:
        data = await self.stream.receive_some(65536)
        if not data:
            raise EOFError("the server closed the connection")
        self.buf += data

    async def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            await self._more()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    async def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            await self._more()
        line, _, rest = bytes(self.buf).partition(b"\r\n")
        self.buf = bytearray(rest)
        return line

    async def head(self) -> tuple[int, dict[str, str]]:
        status = int((await self._line()).split()[1])
        headers: dict[str, str] = {}
        while line := await self._line():
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    async def response(self, *, head: bool = False) -> tuple[int, dict[str, str], bytes]:
        status, headers = await self.head()
        if head or status in (204, 304):
            return status, headers, b""
        if "content-length" in headers:
            return status, headers, await self._take(int(headers["content-length"]))
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while size := int(await self._line(), 16):
                body += await self._take(size)
                await self._line()
            await self._line()
            return status, headers, body
        return status, headers, await self.until_eof()

    async def chunk(self) -> bytes:
        size = int(await self._line(), 16)
        data = await self._take(size)
        await self._line()
        return data

    async def until_eof(self) -> bytes:
        try:
            while True:
                await self._more()
        except (EOFError, trio.BrokenResourceError):
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out


def get(target: str, **headers: str) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "host: 127.0.0.1"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def post(target: str, body: bytes, **headers: str) -> bytes:
    lines = [f"POST {target} HTTP/1.1", "host: 127.0.0.1", f"content-length: {len(body)}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# -- requests, keep-alive, pipelining ------------------------------------------------------


async def test_keep_alive_reuses_one_connection() -> None:
    async with serving(App()) as srv, httpx.AsyncClient(base_url=srv.url) as http:
        ports = set()
        for i in range(20):
            response = await http.post(f"/echo?n={i}", content=b"hello")
            assert response.status_code == 200
            assert response.content == f"POST n={i} hello".encode()
            assert response.headers["content-length"] == str(len(response.content))
            stream = response.extensions["network_stream"]
            ports.add(stream.get_extra_info("client_addr")[1])
        assert len(ports) == 1


async def test_pipelined_requests_answered_in_order() -> None:
    app = App()
    async with serving(app) as srv:
        raw = await Raw.connect(srv.port)
        await raw.send(
            get("/echo?n=1")
            + post("/echo?n=2", b"two")
            + b"HEAD /echo?n=3 HTTP/1.1\r\nhost: x\r\n\r\n"
            + get("/missing")
            + post("/echo?n=5", b"five")
        )
        assert await raw.response() == (200, ANY_HEADERS, b"GET n=1 ")
        assert (await raw.response())[2] == b"POST n=2 two"
        status, headers, body = await raw.response(head=True)
        assert (status, body) == (200, b"")
        assert headers["content-length"] == str(len(b"HEAD n=3 "))
        assert (await raw.response())[0] == 404
        assert (await raw.response())[2] == b"POST n=5 five"
        assert [entry.split("?")[0] for entry in app.log] == [
            "GET /echo",
            "POST /echo",
            "HEAD /echo",
            "GET /missing",
            "POST /echo",
        ]


class _AnyHeaders(dict[str, str]):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, dict)

    __hash__ = None  # type: ignore[assignment]


ANY_HEADERS = _AnyHeaders()


async def test_request_pipelined_during_a_stream_is_kept() -> None:
    app = App()
    sent = trio.Event()

    async def handler(ex: HttpExchange) -> None:
        if ex.path == "/gated-stream":
            app.log.append("stream")
            await ex.start_stream(200, [("content-type", "text/plain")])
            await ex.send_chunk(b"first;")
            # The next request arrives while this stream is still open.
            await sent.wait()
            await ex.send_chunk(b"last")
            await ex.end_stream()
        else:
            await app(ex)

    async with serving(handler) as srv:
        raw = await Raw.connect(srv.port)
        await raw.send(get("/gated-stream"))
        status, headers = await raw.head()
        assert status == 200 and headers["transfer-encoding"] == "chunked"
        assert await raw.chunk() == b"first;"
        await raw.send(post("/echo?n=2", b"second"))
        sent.set()
        with trio.fail_after(5):
            assert await raw.chunk() == b"last"
            assert await raw.chunk() == b""
            # Kept and answered after the stream, in order.
            assert (await raw.response())[2] == b"POST n=2 second"


async def test_connection_close_honoured_both_ways() -> None:
    async with serving(App()) as srv:
        raw = await Raw.connect(srv.port)
        await raw.send(get("/echo", connection="close"))
        status, headers, _ = await raw.response()
        assert status == 200 and headers["connection"] == "close"
        assert await raw.until_eof() == b""

        raw = await Raw.connect(srv.port)
        await raw.send(get("/close") + get("/echo"))  # the second must not be answered
        status, headers, body = await raw.response()
        assert (status, body, headers["connection"]) == (200, b"bye", "close")
        assert await raw.until_eof() == b""


async def test_http10_stream_is_close_delimited() -> None:
    app = App()
    for step in app.steps:
        step.set()
    async with serving(app) as srv:
        raw = await Raw.connect(srv.port)
        await raw.send(b"GET /sse HTTP/1.0\r\n\r\n")
        status, headers, body = await raw.response()
        assert status == 200 and "transfer-encoding" not in headers
        assert body == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"


async def test_handler_errors_answer_500_and_keep_the_connection() -> None:
    async with serving(App()) as srv, httpx.AsyncClient(base_url=srv.url) as http:
        boom = await http.get("/boom")
        assert boom.status_code == 500
        assert boom.json()["error"]["code"] == -32603
        silent = await http.get("/silent")
        assert silent.status_code == 500
        assert (await http.get("/echo")).status_code == 200
        big = await http.get("/big")
        assert big.content == b"x" * 300_000


# -- streaming and disconnects -------------------------------------------------------------


async def test_chunked_sse_read_incrementally() -> None:
    app = App()
    async with (
        serving(app) as srv,
        httpx.AsyncClient(base_url=srv.url) as http,
        http.stream("GET", "/sse") as response,
    ):
        assert response.headers["transfer-encoding"] == "chunked"
        decoder = SSEDecoder()
        received: list[str] = []
        with trio.fail_after(5):
            async for chunk in response.aiter_raw():
                for event in decoder.feed(chunk):
                    received.append(event.data)
                    # The next event is only sent once this one was seen by the client.
                    app.steps[len(received) - 1].set()
        assert received == ["0", "1", "2"]


async def test_disconnect_detected_during_a_stream() -> None:
    app = App()
    async with serving(app) as srv:
        raw = await Raw.connect(srv.port)
        await raw.send(get("/watch"))
        status, _ = await raw.head()
        assert status == 200
        assert await raw.chunk() == b": hello\n\n"
        await raw.stream.aclose()
        with trio.fail_after(5):
            await app.seen_disconnect.wait()
        assert app.send_after_disconnect == ["refused"]


async def test_disconnect_detected_while_an_answer_is_pending() -> None:
    app = App()
    async with serving(app) as srv:
        raw = await Raw.connect(srv.port)
        await raw.send(post("/wait-then-answer", b"{}"))
        with trio.fail_after(5):
            await app.entered.wait()
        await raw.stream.aclose()
        with trio.fail_after(5):
            await app.seen_disconnect.wait()


# -- limits and slow clients ---------------------------------------------------------------


async def test_oversized_body_gets_413_that_the_client_sees() -> None:
    async with serving(App(), max_body=1024) as srv, httpx.AsyncClient(base_url=srv.url) as http:
        response = await http.post("/echo", content=b"x" * (4 * 1024 * 1024))
        assert response.status_code == 413
        assert b"1024" in response.content
        # Chunked bodies are counted as they arrive.

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(64):
                yield b"y" * 1000

        response = await http.post("/echo", content=chunks())
        assert response.status_code == 413
        assert (await http.post("/echo", content=b"small")).status_code == 200


async def test_expect_100_continue() -> None:
    async with serving(App(), max_body=1024) as srv:
        raw = await Raw.connect(srv.port)
        request = post("/echo", b"", expect="100-continue").replace(
            b"content-length: 0", b"content-length: 5"
        )
        await raw.send(request)
        assert (await raw.head())[0] == 100
        await raw.send(b"hello")
        assert (await raw.response())[2] == b"POST  hello"

        # Too big: refused at once, without 100 Continue, and the connection is closed.
        raw = await Raw.connect(srv.port)
        await raw.send(
            b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 999999\r\n"
            b"expect: 100-continue\r\n\r\n"
        )
        status, headers, _ = await raw.response()
        assert status == 413 and headers["connection"] == "close"
        assert await raw.until_eof() == b""


async def test_malformed_request_gets_400() -> None:
    async with serving(App()) as srv:
        raw = await Raw.connect(srv.port)
        await raw.send(b"NOT HTTP AT ALL\r\n\r\n")
        status, headers, body = await raw.response()
        assert status == 400 and headers["connection"] == "close"
        assert b"malformed" in body
        assert await raw.until_eof() == b""


async def test_huge_headers_get_431() -> None:
    async with serving(App(), max_header_bytes=2048) as srv:
        raw = await Raw.connect(srv.port)
        await raw.send(get("/echo", x_big="a" * 8000))
        status, _, body = await raw.response()
        assert status == 431
        assert b"2048" in body
        assert await raw.until_eof() == b""


async def test_slow_headers_are_dropped_after_the_timeout() -> None:
    async with serving(App(), request_header_timeout=0.3) as srv:
        raw = await Raw.connect(srv.port)
        await raw.send(b"GET /echo HTTP/1.1\r\nhost: x\r\n")  # never finished
        with trio.fail_after(3):
            status, _, _ = await raw.response()
            assert status == 408
            assert await raw.until_eof() == b""

        silent = await Raw.connect(srv.port)  # never sends a byte
        with trio.fail_after(3):
            assert await silent.until_eof() == b""


async def test_slow_body_is_dropped_after_the_timeout() -> None:
    async with serving(App(), body_timeout=0.3) as srv:
        raw = await Raw.connect(srv.port)
        await raw.send(post("/echo", b"0123456789")[:-7])  # 3 of 10 body bytes
        with trio.fail_after(3):
            status, _, _ = await raw.response()
            assert status == 408
            assert await raw.until_eof() == b""


async def test_idle_keep_alive_connection_is_closed() -> None:
    async with serving(App(), keep_alive_timeout=0.3) as srv:
        raw = await Raw.connect(srv.port)
        await raw.send(get("/echo"))
        assert (await raw.response())[0] == 200
        with trio.fail_after(3):
            assert await raw.until_eof() == b""


async def test_max_connections_holds_further_clients_back() -> None:
    app = App()
    async with serving(app, max_connections=1) as srv:
        first = await Raw.connect(srv.port)
        await first.send(get("/slow"))
        with trio.fail_after(5):
            await app.entered.wait()
        second = await Raw.connect(srv.port)
        await second.send(get("/echo?n=2"))
        with trio.move_on_after(0.2):
            await second._more()
        assert second.buf == b"" and app.log == ["GET /slow?"]
        app.gate.set()
        assert (await first.response())[2] == b"slow done"
        await first.stream.aclose()
        with trio.fail_after(5):
            assert (await second.response())[2] == b"GET n=2 "


# -- TLS -----------------------------------------------------------------------------------


async def test_tls_round_trip() -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    app = App()
    for step in app.steps:
        step.set()
    async with (
        serving(app, ssl_context=server_ctx) as srv,
        httpx.AsyncClient(base_url=srv.url, verify=client_ctx) as http,
    ):
        assert srv.url.startswith("https://127.0.0.1:")
        for i in range(3):
            response = await http.post(f"/echo?n={i}", content=b"secret")
            assert response.content == f"POST n={i} secret".encode()
        response = await http.get("/sse")
        assert response.text == "data: 0\n\ndata: 1\n\ndata: 2\n\n"
        assert response.http_version == "HTTP/1.1"


# -- graceful shutdown ---------------------------------------------------------------------


async def test_shutdown_cancels_an_open_stream_after_the_grace() -> None:
    app = App()
    async with serving(app, graceful_timeout=0.3) as srv:
        raw = await Raw.connect(srv.port)
        await raw.send(get("/forever"))
        await raw.head()
        assert await raw.chunk() == b"data: open\n\n"
        started = trio.current_time()
        srv.shutdown.set()
        with trio.fail_after(5):
            await srv.done.wait()
        assert trio.current_time() - started >= 0.3
        assert app.stream_cancelled.is_set()
        assert await raw.until_eof() == b""
        with pytest.raises(OSError):
            await trio.open_tcp_stream("127.0.0.1", srv.port)


async def test_shutdown_lets_an_in_flight_request_finish() -> None:
    app = App()
    async with serving(app, graceful_timeout=5.0) as srv:
        idle = await Raw.connect(srv.port)
        await idle.send(get("/echo"))
        assert (await idle.response())[0] == 200
        busy = await Raw.connect(srv.port)
        await busy.send(get("/slow"))
        with trio.fail_after(5):
            await app.entered.wait()
        srv.shutdown.set()
        with trio.fail_after(3):
            # Idle keep-alive connections close at once; nothing new is accepted.
            assert await idle.until_eof() == b""
        with pytest.raises(OSError):
            await trio.open_tcp_stream("127.0.0.1", srv.port)
        assert not srv.done.is_set()
        app.gate.set()
        status, headers, body = await busy.response()
        assert (status, body, headers["connection"]) == (200, b"slow done", "close")
        with trio.fail_after(3):
            await srv.done.wait()


async def test_background_runs_for_the_server_lifetime() -> None:
    states: list[str] = []

    async def background(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        states.append("started")
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            states.append("stopped")

    async def handler(ex: HttpExchange) -> None:
        await ex.respond(200, [], ",".join(states).encode())

    async with serving(handler, background=background) as srv:
        async with httpx.AsyncClient(base_url=srv.url) as http:
            assert (await http.get("/")).text == "started"
        srv.shutdown.set()
        with trio.fail_after(5):
            await srv.done.wait()
    assert states == ["started", "stopped"]


# -- the MCP endpoint ----------------------------------------------------------------------


async def test_mcp_endpoint_over_h11() -> None:
    server = Server("h11-test", config=ServerConfig(shutdown_grace=1.0))

    @server.tool()
    async def echo(text: str) -> str:
        """Echo."""
        return text

    endpoint = HttpEndpoint(server)
    accept = {"accept": "application/json, text/event-stream"}
    async with (
        serving(endpoint.handle, background=endpoint.run) as srv,
        httpx.AsyncClient(base_url=srv.url) as http,
    ):
        init = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "0"},
            },
        }
        response = await http.post("/mcp", json=init, headers=accept)
        assert response.status_code == 200, response.text
        session = {
            **accept,
            "mcp-session-id": response.headers["mcp-session-id"],
            "mcp-protocol-version": "2025-11-25",
        }
        [first] = messages_of(response)
        assert first["result"]["serverInfo"]["name"] == "h11-test"
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert (await http.post("/mcp", json=note, headers=session)).status_code == 202
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "over h11"}},
        }
        response = await http.post("/mcp", json=call, headers=session)
        assert response.status_code == 200
        [answer] = [m for m in messages_of(response) if m.get("id") == 2]
        assert answer["result"]["content"][0]["text"] == "over h11"
        assert (await http.get("/health")).json() == {"status": "ok"}
        endpoint.begin_shutdown()


def messages_of(response: httpx.Response) -> list[dict[str, Any]]:
    if response.headers["content-type"].startswith("application/json"):
        return [response.json()]
    return [orjson.loads(e.data) for e in SSEDecoder().feed(response.content) if e.data]


# -- request targets -----------------------------------------------------------------------


@given(
    segments=st.lists(st.text(min_size=1, max_size=8), max_size=4),
    query=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=12),
)
def test_split_target_decodes_the_path_and_keeps_the_query(segments: list[str], query: str) -> None:
    path = "/" + "/".join(segments)
    target = quote(path, safe="/").encode("ascii")
    if query:
        target += b"?" + query.encode("ascii")
    assert split_target(target) == (path, query)


def test_split_target_absolute_form_and_asterisk() -> None:
    assert split_target(b"http://example.com/mcp?x=1") == ("/mcp", "x=1")
    assert split_target(b"http://example.com") == ("/", "")
    assert split_target(b"*") == ("*", "")


# -- requests read without h11 -------------------------------------------------------------
#
# Plain requests are read by the connection itself; anything else goes to h11. Whatever the
# plain reader accepts, h11 must read the same way; whatever h11 refuses, the plain reader
# must hand over (so h11 answers it exactly as before).


def _h11_view(
    head: bytes,
) -> tuple[str, str, list[tuple[str, str]], int, bool] | int | None:
    """How h11 and the framing rules read a head: (method, target, headers, body length,
    keep-alive), the status the rules refuse it with, or None when h11 refuses it or needs
    a state the plain reader does not handle."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(head + b"\r\n\r\n")
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError:
        return None
    if type(event) is not h11.Request:
        return None
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers]
    names = {k for k, _ in headers}
    refusal = head_error(
        event.method.decode("ascii"),
        event.http_version.decode("ascii"),
        event.target.decode("latin-1"),
        content_length="content-length" in names,
        transfer_encoding="transfer-encoding" in names,
        folded=re.search(rb"\n[ \t]", head) is not None,
    )
    if refusal is not None:
        return refusal[0]
    lengths = [v for k, v in headers if k == "content-length"]
    # Keep-alive as h11 decides it: it says "Connection: close" when it will close.
    reply = conn.send(h11.Response(status_code=200, headers=[("content-length", "0")]))
    return (
        event.method.decode("ascii"),
        event.target.decode("latin-1"),
        headers,
        int(lengths[0]) if lengths else 0,
        b"Connection: close" not in reply,
    )


def _mostly(usual: str, *odd: str) -> st.SearchStrategy[str]:
    """``usual`` eight times in nine, else one of ``odd``."""
    return st.sampled_from([*odd, *[usual] * (8 * len(odd))])


_HEADERS = st.one_of(
    st.tuples(
        st.sampled_from(["Content-Length", "content-length"]),
        st.sampled_from(["5", "05", "0", " 7 ", "5, 5", "5,6", "-1", "+5", "", "\xb2", "1" * 25]),
    ),
    st.tuples(
        st.sampled_from(["Connection", "connection"]),
        st.sampled_from(["close", "Close", "a, close", " close ,x", "keep-alive", "closed", "x,"]),
    ),
    st.tuples(
        st.sampled_from(["Accept", "X-A", "Mcp-Session-Id"]),
        st.one_of(
            st.sampled_from(["a  b", "\tx", "x\t", "caf\xe9", "a\x01b", "\x85", "\xa0", "\x1c"]),
            st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0xFF), max_size=6),
        ),
    ),
    st.tuples(
        st.sampled_from(
            ["Transfer-Encoding", "Expect", "Upgrade", "Host", "bad name", "", "x\xe9"]
        ),
        st.sampled_from(["chunked", "100-continue", "h2c", "x"]),
    ),
)
# Mostly plain requests, so both readers are compared on what they both take.
_LINE_ENDS = _mostly("\r\n", "\n", "\r\n ", "\r\n\t", "\r")


@st.composite
def _heads(draw: st.DrawFn) -> bytes:
    method = draw(_mostly("POST", "GET", "HEAD", "get", "CONNECT", "P@ST"))
    target = draw(_mostly("/mcp", "/mcp?a=b", "*", "http://h/x", "/a b", "/\xe9", ""))
    version = draw(_mostly("HTTP/1.1", "HTTP/1.0", "HTTP/2.0"))
    space = draw(_mostly(" ", "  "))
    headers = draw(st.lists(_HEADERS, max_size=4))
    hosts = int(draw(_mostly("1", "0", "2")))
    for _ in range(hosts):
        where = draw(st.integers(min_value=0, max_value=len(headers)))
        headers.insert(where, ("Host", draw(_mostly("127.0.0.1:80", "", "a b"))))
    text = f"{method}{space}{target} {version}"
    for name, value in headers:
        colon = draw(_mostly(": ", ":", " : ", ":  \t"))
        text += draw(_LINE_ENDS) + f"{name}{colon}{value}"
    return text.encode("latin-1")


@settings(max_examples=1000)
@given(_heads())
def test_the_plain_reader_agrees_with_h11(head: bytes) -> None:
    parsed = _parse_head(head.decode("latin-1"))
    view = _h11_view(head)
    if isinstance(parsed, _Refused):
        assert view == parsed.status, "the plain reader refused a head the rules let through"
        return
    if not isinstance(parsed, _Head):
        assert parsed is _H11
        return
    assert view is not None, "the plain reader took a head h11 refuses"
    assert not isinstance(view, int), f"the plain reader took a head the rules refuse: {view}"
    method, target, headers, length, keep_alive = view
    assert (parsed.method, parsed.target) == (method, target)
    assert list(parsed.headers.items()) == headers
    assert (parsed.length, parsed.keep_alive) == (length, keep_alive)


def test_the_plain_reader_takes_what_clients_send() -> None:
    head = (
        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: application/json\r\n"
        b"Accept: application/json, text/event-stream\r\nContent-Length: 12\r\n"
        b"Connection: keep-alive"
    )
    parsed = _parse_head(head.decode("latin-1"))
    assert isinstance(parsed, _Head)
    assert (parsed.method, parsed.target, parsed.length, parsed.keep_alive) == (
        "POST",
        "/mcp",
        12,
        True,
    )
    assert parsed.headers.get("accept") == "application/json, text/event-stream"


async def test_unusual_requests_are_answered_by_h11_on_the_same_connection() -> None:
    app = App()
    async with serving(app) as srv:
        raw = await Raw.connect(srv.port)
        await raw.send(post("/echo?n=1", b"plain"))
        assert (await raw.response())[2] == b"POST n=1 plain"
        # A chunked body: h11 reads it, and every request after it.
        await raw.send(
            b"POST /echo?n=2 HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        )
        assert (await raw.response())[2] == b"POST n=2 abcde"
        await raw.send(post("/echo?n=3", b"again"))
        assert (await raw.response())[2] == b"POST n=3 again"

        # Bare LF line ends are h11's too.
        raw = await Raw.connect(srv.port)
        await raw.send(b"POST /echo?n=4 HTTP/1.1\nhost: x\ncontent-length: 2\n\nok")
        assert (await raw.response())[2] == b"POST n=4 ok"


async def test_bad_heads_get_h11s_answers() -> None:
    async with serving(App()) as srv:
        for request, reason in [
            (b"GET /echo HTTP/1.1\r\nx-a: b\r\n\r\n", b"Host"),
            (
                b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
                b"Content-Length",
            ),
            (b"GET /echo HTTP/1.1\r\nhost: x\r\nbad header\r\n\r\n", b"header"),
            (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"request line"),
        ]:
            raw = await Raw.connect(srv.port)
            await raw.send(request)
            with trio.fail_after(5):
                status, headers, body = await raw.response()
                assert (status, headers["connection"]) == (400, "close"), body
                assert b"malformed" in body and reason in body
                assert await raw.until_eof() == b""


async def test_a_body_that_comes_in_pieces_is_read_whole() -> None:
    async with serving(App()) as srv:
        raw = await Raw.connect(srv.port)
        request = post("/echo", b"0123456789")
        await raw.send(request[:-10])
        for i in range(0, 10, 3):
            await trio.sleep(0.01)
            await raw.send(request[len(request) - 10 + i : len(request) - 7 + i])
        assert (await raw.response())[2] == b"POST  0123456789"
        # An unread body is dropped before the next request on the connection.
        await raw.send(post("/missing", b"x" * 5000) + get("/echo?n=2"))
        assert (await raw.response())[0] == 404
        assert (await raw.response())[2] == b"GET n=2 "


async def test_an_invalid_response_header_is_never_written() -> None:
    async def handler(ex: HttpExchange) -> None:
        await ex.respond(200, [("x-injected", "a\r\nset-cookie: evil")], b"body")

    async with serving(handler) as srv:
        raw = await Raw.connect(srv.port)
        await raw.send(get("/"))
        with trio.fail_after(5):
            assert await raw.until_eof() == b""
