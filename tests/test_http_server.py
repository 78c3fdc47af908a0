"""The Streamable HTTP server over real sockets: sessions, streams, resumption, bad input."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
import trio
import trio.testing

from mcptrio import HttpConfig, Server, ServerConfig, current_request, serve_http
from mcptrio._protocol.sse import SSEDecoder, SSEEvent
from mcptrio._server.http_endpoint import HttpEndpoint, HttpServerInfo
from mcptrio._transports.http.exchange import Headers

ACCEPT = "application/json, text/event-stream"
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}


@pytest.fixture(params=["hypercorn", "h11"])
def adapter(request: pytest.FixtureRequest) -> str:
    """Every HTTP test runs on both server implementations."""
    value = request.param
    assert isinstance(value, str)
    return value


def make_server() -> Server:
    server = Server("http-test", config=ServerConfig(shutdown_grace=2.0))

    @server.tool()
    async def echo(text: str) -> str:
        """Echo."""
        return text

    @server.tool()
    async def ticks(count: int, gap: float = 0.05) -> str:
        """Report progress `count` times, `gap` seconds apart."""
        ctx = current_request()
        for i in range(1, count + 1):
            await ctx.report_progress(i, count, f"tick {i}")
            await trio.sleep(gap)
        return f"ticked {count}"

    @server.tool()
    async def forever() -> str:
        """Never returns."""
        await trio.sleep_forever()
        raise AssertionError

    return server


@asynccontextmanager
async def running(**config: Any) -> AsyncIterator[tuple[HttpServerInfo, httpx.AsyncClient]]:
    server = make_server()
    async with trio.open_nursery() as nursery:
        info: HttpServerInfo = await nursery.start(serve_http, server, HttpConfig(port=0, **config))
        async with httpx.AsyncClient(timeout=10) as http:
            yield info, http
        nursery.cancel_scope.cancel()


def parse_sse(body: bytes) -> list[SSEEvent]:
    return SSEDecoder().feed(body)


def messages_of(response: httpx.Response | bytes) -> list[dict[str, Any]]:
    if isinstance(response, httpx.Response):
        if response.headers["content-type"].startswith("application/json"):
            return [response.json()]
        response = response.content
    return [orjson.loads(e.data) for e in parse_sse(response) if e.data]


async def initialize(info: HttpServerInfo, http: httpx.AsyncClient) -> str:
    response = await http.post(info.url, json=INIT, headers={"accept": ACCEPT})
    assert response.status_code == 200, response.text
    session_id = response.headers["mcp-session-id"]
    assert all(0x21 <= ord(c) <= 0x7E for c in session_id)
    assert len(session_id) >= 22
    [result] = messages_of(response)
    assert result["result"]["protocolVersion"] == "2025-11-25"
    note = await http.post(
        info.url,
        json={"jsonrpc": "2.0", "method": "notifications/initialized"},
        headers=headers(session_id),
    )
    assert note.status_code == 202
    return session_id


def headers(session_id: str, **extra: str) -> dict[str, str]:
    return {
        "accept": ACCEPT,
        "mcp-session-id": session_id,
        "mcp-protocol-version": "2025-11-25",
        **extra,
    }


def call(request_id: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments, "_meta": {"progressToken": request_id}},
    }


async def test_session_lifecycle_sse_and_json_answers(adapter: str) -> None:
    async with running(server=adapter) as (info, http):
        session_id = await initialize(info, http)
        response = await http.post(
            info.url, json=call(2, "echo", {"text": "hi"}), headers=headers(session_id)
        )
        assert response.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(response.content)
        # A priming event (id, no data) comes first, with a retry hint.
        assert events[0].data == "" and events[0].id and events[0].retry == 1000
        [answer] = messages_of(response)
        assert (
            answer
            == {
                "jsonrpc": "2.0",
                "id": 2,
                "result": {"content": [{"type": "text", "text": "hi"}], "isError": False},
            }
            or answer["result"]["content"][0]["text"] == "hi"
        )
        gone = await http.delete(info.url, headers=headers(session_id))
        assert gone.status_code == 200
        after = await http.post(
            info.url, json=call(3, "echo", {"text": "x"}), headers=headers(session_id)
        )
        assert after.status_code == 404
        assert after.json()["error"]["code"] == -32001

    async with running(json_response=True, server=adapter) as (info, http):
        session_id = await initialize(info, http)
        response = await http.post(
            info.url, json=call(2, "echo", {"text": "hi"}), headers=headers(session_id)
        )
        assert response.headers["content-type"] == "application/json"
        assert response.json()["result"]["content"][0]["text"] == "hi"


async def test_progress_goes_on_the_request_stream(adapter: str) -> None:
    async with running(server=adapter) as (info, http):
        session_id = await initialize(info, http)
        response = await http.post(
            info.url, json=call(5, "ticks", {"count": 3, "gap": 0}), headers=headers(session_id)
        )
        messages = messages_of(response)
        assert [m.get("method") for m in messages] == [
            "notifications/progress",
            "notifications/progress",
            "notifications/progress",
            None,
        ]
        assert messages[-1]["result"]["content"][0]["text"] == "ticked 3"


async def test_cut_stream_resumes_with_every_event_exactly_once(adapter: str) -> None:
    async with running(server=adapter) as (info, http):
        session_id = await initialize(info, http)
        seen: list[SSEEvent] = []
        decoder = SSEDecoder()
        async with http.stream(
            "POST",
            info.url,
            json=call(7, "ticks", {"count": 6, "gap": 0.1}),
            headers=headers(session_id),
        ) as response:
            async for chunk in response.aiter_raw():
                seen.extend(decoder.feed(chunk))
                if sum(1 for e in seen if e.data) >= 2:
                    break  # drop the connection mid-response
        last_id = [e for e in seen if e.id][-1].id
        assert last_id is not None
        resumed = await http.get(
            info.url, headers=headers(session_id, **{"last-event-id": last_id})
        )
        assert resumed.status_code == 200
        before = [orjson.loads(e.data) for e in seen if e.data]
        after = messages_of(resumed)
        progress = [m["params"]["progress"] for m in before + after if m.get("method")]
        assert progress == [1, 2, 3, 4, 5, 6]
        assert (before + after)[-1]["result"]["content"][0]["text"] == "ticked 6"
        # An id from another session, or garbage, is refused.
        other = await initialize(info, http)
        stolen = await http.get(info.url, headers=headers(other, **{"last-event-id": last_id}))
        assert stolen.status_code == 400


async def test_bad_input_gets_the_right_status_and_the_server_survives(adapter: str) -> None:
    async with running(server=adapter) as (info, http):
        session_id = await initialize(info, http)
        cases: list[tuple[dict[str, Any], int]] = [
            (
                {
                    "content": b"{not json",
                    "headers": headers(session_id, **{"content-type": "application/json"}),
                },
                400,
            ),
            ({"json": [call(1, "echo", {"text": "a"})], "headers": headers(session_id)}, 400),
            ({"json": call(1, "echo", {"text": "a"}), "headers": {"accept": ACCEPT}}, 400),
            ({"json": call(1, "echo", {"text": "a"}), "headers": headers("no-such-session")}, 404),
            (
                {
                    "json": call(1, "echo", {"text": "a"}),
                    "headers": headers(session_id, **{"mcp-protocol-version": "1999-01-01"}),
                },
                400,
            ),
            (
                {
                    "json": call(1, "echo", {"text": "a"}),
                    "headers": headers(session_id, origin="http://evil.example"),
                },
                403,
            ),
            (
                {
                    "json": call(1, "echo", {"text": "a"}),
                    "headers": headers(session_id, host="evil.example"),
                },
                403,
            ),
            (
                {
                    "content": b"x" * (5 * 1024 * 1024),
                    "headers": headers(session_id, **{"content-type": "application/json"}),
                },
                413,
            ),
            (
                {
                    "content": b"{}",
                    "headers": headers(session_id, **{"content-type": "text/plain"}),
                },
                415,
            ),
            (
                {
                    "json": call(1, "echo", {"text": "a"}),
                    "headers": headers(session_id, accept="application/json"),
                },
                406,
            ),
            (
                {
                    "json": {"jsonrpc": "1.0", "id": 1, "method": "x"},
                    "headers": headers(session_id),
                },
                400,
            ),
        ]
        for kwargs, status in cases:
            response = await http.post(info.url, **kwargs)
            assert response.status_code == status, (kwargs.get("headers"), response.text)
            body = response.json()
            assert body["error"]["message"], body
        no_accept = await http.get(
            info.url, headers={"mcp-session-id": session_id, "accept": "application/json"}
        )
        assert no_accept.status_code == 406
        put = await http.put(info.url, headers=headers(session_id))
        assert put.status_code == 405
        assert "POST" in put.headers["allow"]
        # Still serving.
        ok = await http.post(
            info.url, json=call(9, "echo", {"text": "still"}), headers=headers(session_id)
        )
        assert messages_of(ok)[-1]["result"]["content"][0]["text"] == "still"


async def test_health_ready_metrics(adapter: str) -> None:
    async with running(server=adapter) as (info, http):
        base = info.url.removesuffix("/mcp")
        assert (await http.get(f"{base}/health")).json() == {"status": "ok"}
        assert (await http.get(f"{base}/ready")).status_code == 200
        session_id = await initialize(info, http)
        await http.post(info.url, json=call(2, "echo", {"text": "m"}), headers=headers(session_id))
        metrics = (await http.get(f"{base}/metrics")).text
        assert 'mcptrio_requests_total{method="tools/call",outcome="ok"} 1' in metrics
        assert "mcptrio_http_sessions 1" in metrics
        # initialize, notifications/initialized and the call came in; two answers went out.
        assert 'mcptrio_messages_total{direction="in"} 3' in metrics
        assert 'mcptrio_messages_total{direction="out"} 2' in metrics
        bad = await http.post(
            info.url,
            content=b"{nope",
            headers=headers(session_id, **{"content-type": "application/json"}),
        )
        assert bad.status_code == 400
        metrics = (await http.get(f"{base}/metrics")).text
        assert 'mcptrio_messages_total{direction="in"} 3' in metrics
        assert 'mcptrio_messages_total{direction="out"} 3' in metrics  # the parse error
        sizes = dict(
            re.findall(r'mcptrio_message_bytes_total\{direction="(in|out)"\} (\d+)', metrics)
        )
        assert int(sizes["in"]) > 0 and int(sizes["out"]) > 0
        modern = await http.post(
            info.url, json=modern_call(3, "echo", {"text": "m"}), headers=modern_headers("echo")
        )
        assert modern.status_code == 200
        metrics = (await http.get(f"{base}/metrics")).text
        assert 'mcptrio_messages_total{direction="in"} 4' in metrics
        assert 'mcptrio_messages_total{direction="out"} 4' in metrics


async def test_deprecated_http_sse_transport(adapter: str) -> None:
    async with running(server=adapter) as (info, http):
        base = info.url.removesuffix("/mcp")
        decoder = SSEDecoder()
        async with http.stream(
            "GET", f"{base}/sse", headers={"accept": "text/event-stream"}
        ) as stream:
            chunks = stream.aiter_raw()
            events: list[SSEEvent] = []
            while not events:
                events.extend(decoder.feed(await chunks.__anext__()))
            assert events[0].event == "endpoint"
            post_url = f"{base}{events[0].data}"
            accepted = await http.post(post_url, json=INIT)
            assert accepted.status_code == 202
            while len(events) < 2:
                events.extend(decoder.feed(await chunks.__anext__()))
            answer = orjson.loads(events[1].data)
            assert events[1].event == "message"
            assert answer["result"]["serverInfo"]["name"] == "http-test"


async def test_shutdown_with_many_open_streams_is_prompt(adapter: str) -> None:
    server = make_server()
    async with trio.open_nursery() as outer:
        scope = trio.CancelScope()

        stopped = trio.Event()

        async def serve(task_status: trio.TaskStatus[HttpServerInfo]) -> None:
            with scope:
                await serve_http(
                    server, HttpConfig(port=0, server=adapter), task_status=task_status
                )
            stopped.set()

        info: HttpServerInfo = await outer.start(serve)
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(timeout=20, limits=limits) as http:
            session_id = await initialize(info, http)
            opened = trio.Semaphore(0)

            async def hold(i: int) -> None:
                async with http.stream(
                    "POST", info.url, json=call(100 + i, "forever", {}), headers=headers(session_id)
                ) as response:
                    chunks = response.aiter_raw()
                    await chunks.__anext__()  # the priming event: the stream is open
                    opened.release()
                    async for _ in chunks:
                        pass

            async with trio.open_nursery() as clients:
                for i in range(100):
                    clients.start_soon(hold, i)
                for _ in range(100):
                    await opened.acquire()
                assert info.endpoint.statistics()["sse_streams"] == 100
                # Every stream ends cleanly (a broken one would raise in `hold`) and the
                # server returns within its grace period.
                with trio.fail_after(server.config.shutdown_grace):
                    scope.cancel()
                    await stopped.wait()


async def test_vanishing_client_leaks_nothing(adapter: str) -> None:
    async with running(server=adapter) as (info, http):
        session_id = await initialize(info, http)
        baseline = info.endpoint.statistics()
        for i in range(20):
            async with http.stream(
                "POST", info.url, json=call(200 + i, "forever", {}), headers=headers(session_id)
            ) as response:
                async for _ in response.aiter_raw():
                    break
        await http.delete(info.url, headers=headers(session_id))
        # Let every task the disconnects and the DELETE woke run to completion.
        await trio.testing.wait_all_tasks_blocked(0.05)
        stats = info.endpoint.statistics()
        assert stats["in_flight"] == baseline["in_flight"] == 0
        assert stats["sessions"] == 0


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
async def test_localhost_hosts_and_origins_are_allowed(host: str, adapter: str) -> None:
    async with running(server=adapter) as (info, http):
        port = info.url.split(":")[2].split("/")[0]
        response = await http.post(
            info.url,
            json=INIT,
            headers={"accept": ACCEPT, "host": f"{host}:{port}", "origin": f"http://{host}:{port}"},
        )
        assert response.status_code == 200


async def test_limits_answer_503_with_retry_after(adapter: str) -> None:
    async with running(server=adapter, max_in_flight_requests=1) as (info, http):
        session_id = await initialize(info, http)
        async with http.stream(
            "POST", info.url, json=call(300, "forever", {}), headers=headers(session_id)
        ) as held:
            await held.aiter_raw().__anext__()  # the first request is in flight
            refused = await http.post(
                info.url, json=call(301, "echo", {"text": "x"}), headers=headers(session_id)
            )
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "1"
            body = refused.json()
            assert body["id"] == 301
            assert "requests in flight" in body["error"]["message"]
            assert body["error"]["data"] == {"budget": "in_flight"}
        await http.delete(info.url, headers=headers(session_id))
        # The held request ended with its session: the server takes requests again.
        again = await initialize(info, http)
        ok = await http.post(
            info.url, json=call(302, "echo", {"text": "y"}), headers=headers(again)
        )
        assert messages_of(ok)[-1]["result"]["content"][0]["text"] == "y"


# -- 2026-07-28 requests ---------------------------------------------------------------------

MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}


def modern_call(request_id: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {
            "name": name,
            "arguments": arguments,
            "_meta": {**MODERN_META, "progressToken": request_id},
        },
    }


def modern_headers(name: str) -> dict[str, str]:
    return {
        "accept": ACCEPT,
        "content-type": "application/json",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": name,
    }


@pytest.mark.parametrize("json_response", [False, True])
async def test_a_2026_request_ends_when_its_client_leaves(
    adapter: str, json_response: bool
) -> None:
    async with running(server=adapter, json_response=json_response) as (info, http):
        port = int(info.url.split(":")[2].split("/")[0])
        body = orjson.dumps(modern_call(1, "forever", {}))
        head = "".join(f"{k}: {v}\r\n" for k, v in modern_headers("forever").items())
        client = await trio.open_tcp_stream("127.0.0.1", port)
        await client.send_all(
            f"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n{head}"
            f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        with trio.fail_after(5):
            while info.endpoint.statistics()["in_flight"] == 0:  # noqa: ASYNC110
                await trio.sleep(0.01)
            # Longer than the moment the server waits before it watches the client.
            await trio.sleep(0.1)
            await client.aclose()
            while info.endpoint.statistics()["in_flight"]:  # noqa: ASYNC110
                await trio.sleep(0.01)
        metrics = (await http.get(info.url.removesuffix("/mcp") + "/metrics")).text
        assert 'mcptrio_requests_total{method="tools/call",outcome="cancelled"} 1' in metrics


async def test_a_streamed_2026_answer_leaves_no_task_behind(adapter: str) -> None:
    async with running(server=adapter) as (info, http):
        await trio.testing.wait_all_tasks_blocked(0.05)
        nursery = info.endpoint._nursery
        assert nursery is not None
        tasks = len(nursery.child_tasks)
        response = await http.post(
            info.url,
            json=modern_call(4, "ticks", {"count": 3, "gap": 0}),
            headers=modern_headers("ticks"),
        )
        assert response.headers["content-type"].startswith("text/event-stream")
        messages = messages_of(response)
        assert [m.get("method") for m in messages] == ["notifications/progress"] * 3 + [None]
        assert messages[-1]["result"]["content"][0]["text"] == "ticked 3"
        await trio.testing.wait_all_tasks_blocked(0.05)
        assert len(nursery.child_tasks) == tasks


class _Exchange:
    """An in-memory HttpExchange; writes to a stream wait for ``gate``."""

    def __init__(self, method: str, headers: dict[str, str], body: bytes = b"") -> None:
        self.method = method
        self.path = "/mcp"
        self.query_string = ""
        self.headers = Headers(headers.items())
        self.client_host = "127.0.0.1"
        self.body = body
        self.gate = trio.Event()
        self.gate.set()
        self.answered = trio.Event()
        self.response_headers: dict[str, str] = {}
        self.out: list[bytes] = []

    async def read_body(self, limit: int) -> bytes:
        return self.body

    async def respond(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        self.response_headers = dict(headers)
        self.out.append(body)
        self.answered.set()

    async def start_stream(self, status: int, headers: Sequence[tuple[str, str]]) -> None:
        await trio.lowlevel.checkpoint()

    async def send_chunk(self, data: bytes) -> None:
        await self.gate.wait()
        self.out.append(data)

    async def end_stream(self, data: bytes = b"") -> None:
        await self.send_chunk(data)

    async def wait_disconnected(self) -> None:
        await trio.sleep_forever()


async def test_a_json_answer_follows_the_progress_sent_on_the_get_stream() -> None:
    endpoint = HttpEndpoint(make_server(), HttpConfig(json_response=True))
    base = {"accept": ACCEPT, "content-type": "application/json", "host": "127.0.0.1"}
    async with trio.open_nursery() as nursery:
        await nursery.start(endpoint.run)
        init = _Exchange("POST", base, orjson.dumps(INIT))
        await endpoint.handle(init)
        session = {**base, "mcp-session-id": init.response_headers["mcp-session-id"]}
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        await endpoint.handle(_Exchange("POST", session, orjson.dumps(note)))
        stream = _Exchange("GET", session)
        stream.gate = trio.Event()  # the GET stream's client reads slowly
        nursery.start_soon(endpoint.handle, stream)
        await trio.testing.wait_all_tasks_blocked()  # the GET stream is open
        post = _Exchange("POST", session, orjson.dumps(call(8, "ticks", {"count": 1, "gap": 0})))
        nursery.start_soon(endpoint.handle, post)
        with trio.move_on_after(0.3):
            await post.answered.wait()
        # Answered only once the progress about it is out: a client stops listening for
        # that once it has the answer.
        assert not post.answered.is_set()
        stream.gate.set()
        with trio.fail_after(5):
            await post.answered.wait()
        assert b"notifications/progress" in b"".join(stream.out)
        assert orjson.loads(post.out[0])["result"]["content"][0]["text"] == "ticked 1"
        endpoint.begin_shutdown()
        nursery.cancel_scope.cancel()
