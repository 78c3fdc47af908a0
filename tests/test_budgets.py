"""Budgets that cannot starve each other: connections, requests in flight, streams, sessions.

Real sockets on 127.0.0.1; the low file-descriptor case runs the server in a subprocess.
"""

from __future__ import annotations

import os
import ssl
import statistics
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from mcptrio import HttpConfig, Server, ServerConfig, serve_http
from mcptrio._ops.metrics import Metrics, render_prometheus
from mcptrio._protocol.sse import SSEDecoder
from mcptrio._server.http_endpoint import HttpServerInfo
from mcptrio._transports.http.budgets import Budget, RateLimiter, connection_cap, raise_file_limit
from mcptrio._transports.http.security import HostPolicy, client_address

ACCEPT = "application/json, text/event-stream"
VERSION = "2025-11-25"
ROOT = Path(__file__).resolve().parent.parent


def init_message(request_id: int = 1) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "initialize",
        "params": {
            "protocolVersion": VERSION,
            "capabilities": {},
            "clientInfo": {"name": "budget-test", "version": "0"},
        },
    }


def call(request_id: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


def headers(session_id: str | None = None, **extra: str) -> dict[str, str]:
    out = {"accept": ACCEPT, "mcp-protocol-version": VERSION, **extra}
    if session_id is not None:
        out["mcp-session-id"] = session_id
    return out


def make_server() -> Server:
    server = Server("budget-test", config=ServerConfig(shutdown_grace=1.0))

    @server.tool()
    async def echo(text: str) -> str:
        """Echo."""
        return text

    @server.tool()
    async def forever() -> str:
        """Never returns."""
        await trio.sleep_forever()
        raise AssertionError

    return server


@asynccontextmanager
async def running(**config: Any) -> AsyncIterator[HttpServerInfo]:
    async with trio.open_nursery() as nursery:
        info: HttpServerInfo = await nursery.start(
            serve_http, make_server(), HttpConfig(port=0, **config)
        )
        yield info
        nursery.cancel_scope.cancel()


def base(info: HttpServerInfo) -> str:
    return info.url.removesuffix("/mcp")


def answer_of(response: httpx.Response) -> dict[str, Any]:
    """The last JSON-RPC message of a JSON or SSE answer."""
    if response.headers["content-type"].startswith("application/json"):
        message = response.json()
    else:
        events = SSEDecoder().feed(response.content)
        message = [orjson.loads(e.data) for e in events if e.data][-1]
    assert isinstance(message, dict)
    return message


async def initialize(http: httpx.AsyncClient, info: HttpServerInfo) -> str:
    response = await http.post(info.url, json=init_message(), headers=headers())
    assert response.status_code == 200, response.text
    session_id = response.headers["mcp-session-id"]
    note = await http.post(
        info.url,
        json={"jsonrpc": "2.0", "method": "notifications/initialized"},
        headers=headers(session_id),
    )
    assert note.status_code == 202, note.text
    return session_id


async def echo(http: httpx.AsyncClient, info: HttpServerInfo, session_id: str, n: int) -> None:
    response = await http.post(
        info.url, json=call(n, "echo", {"text": f"m{n}"}), headers=headers(session_id)
    )
    assert response.status_code == 200, response.text
    assert answer_of(response)["result"]["content"][0]["text"] == f"m{n}"


def refused(response: httpx.Response, status: int, budget: str) -> None:
    """``response`` is a refusal by ``budget``: status, Retry-After and a JSON-RPC error."""
    assert response.status_code == status, response.text
    assert int(response.headers["retry-after"]) >= 1
    body = response.json()
    assert body["error"]["code"] == -32000
    assert body["error"]["data"] == {"budget": budget}, body


@asynccontextmanager
async def get_stream(
    http: httpx.AsyncClient, info: HttpServerInfo, session_id: str, **extra: str
) -> AsyncIterator[httpx.Response]:
    """Open and hold a GET stream (its priming event has arrived when this yields)."""
    async with http.stream(
        "GET",
        info.url,
        headers=headers(session_id, accept="text/event-stream", **extra),
    ) as response:
        if response.status_code == 200:
            # Kept referenced: a dropped iterator closes the response, and so the stream.
            chunks = response.aiter_raw()
            await chunks.__anext__()
            yield response
        else:
            await response.aread()
            yield response


@asynccontextmanager
async def held_call(
    http: httpx.AsyncClient, info: HttpServerInfo, session_id: str, request_id: int
) -> AsyncIterator[None]:
    """A ``forever`` call in flight for the duration of the block."""
    async with http.stream(
        "POST", info.url, json=call(request_id, "forever", {}), headers=headers(session_id)
    ) as response:
        assert response.status_code == 200
        chunks = response.aiter_raw()
        await chunks.__anext__()  # the priming event: the request runs
        yield


@pytest.fixture(params=["h11", "hypercorn"])
def adapter(request: pytest.FixtureRequest) -> str:
    """The budgets above the TCP level hold on both HTTP implementations."""
    value = request.param
    assert isinstance(value, str)
    return value


# -- the pieces, without sockets ------------------------------------------------------------


def test_budget_counts_use_and_refusals() -> None:
    budget = Budget("streams", 2)
    assert budget.try_acquire() and budget.try_acquire()
    assert budget.full and not budget.try_acquire()
    assert budget.rejected == 1
    budget.release()
    assert budget.try_acquire() and budget.in_use == 2


def test_rate_limiter_refills_and_says_how_long_to_wait() -> None:
    now = [0.0]
    limiter = RateLimiter(2.0, 3, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") == 0.0  # another address has its own bucket
    now[0] = 0.5
    assert limiter.take("a") == 0.0
    assert limiter.rejected == 1


def test_rate_limiter_keeps_a_bounded_number_of_addresses() -> None:
    limiter = RateLimiter(1.0, 1, clock=lambda: 0.0, max_keys=10)
    for i in range(100):
        limiter.take(f"10.0.0.{i}")
    assert len(limiter) == 10


@given(
    rate=st.floats(0.1, 1000.0),
    burst=st.integers(1, 50),
    gaps=st.lists(st.floats(0.0, 2.0), min_size=1, max_size=200),
)
def test_rate_limiter_never_admits_more_than_burst_plus_rate(
    rate: float, burst: int, gaps: list[float]
) -> None:
    now = [0.0]
    limiter = RateLimiter(rate, burst, clock=lambda: now[0])
    admitted = 0
    for gap in gaps:
        now[0] += gap
        wait = limiter.take("x")
        assert wait >= 0.0
        admitted += wait == 0.0
    assert admitted <= burst + rate * now[0] + 1e-6


def test_connection_cap_leaves_room_for_files_and_probes() -> None:
    assert connection_cap(20_000, 256, 4) == 20_000 - 256 - 4
    # A small limit keeps at most a quarter for other files.
    assert connection_cap(128, 256, 4) == 128 - 32 - 4
    assert connection_cap(None, 256, 4) == 10_000


def test_client_address_believes_forwarding_only_from_trusted_proxies() -> None:
    policy = HostPolicy(trust_forwarded_from=("10.0.0.0/8",))

    def address(peer: str, xff: str | None = None, fwd: str | None = None) -> str | None:
        return client_address(policy, peer_ip=peer, forwarded_for=xff, forwarded=fwd)

    assert address("203.0.113.9", "198.51.100.1") == "203.0.113.9"  # not a proxy: ignored
    assert address("10.0.0.1", "198.51.100.1") == "198.51.100.1"
    # The client wrote the left part; the first address no trusted proxy added is the one.
    assert address("10.0.0.1", "1.1.1.1, 198.51.100.1, 10.0.0.7") == "198.51.100.1"
    assert address("10.0.0.1", "10.0.0.5, 10.0.0.7") == "10.0.0.1"
    assert address("10.0.0.1", "198.51.100.1:4711") == "198.51.100.1"
    assert address("10.0.0.1", "garbage") == "10.0.0.1"
    assert address("10.0.0.1", None) == "10.0.0.1"
    assert address("10.0.0.1", None, 'for="[2001:db8::1]:4711";proto=https') == "2001:db8::1"
    assert address("10.0.0.1", None, "for=198.51.100.2, for=10.0.0.9") == "198.51.100.2"
    assert address("10.0.0.1", None, "for=unknown") == "10.0.0.1"
    assert address("10.0.0.1", None, 'for="unterminated') == "10.0.0.1"


_ips = st.ip_addresses(v=4).map(str)


@given(peer=_ips, hops=st.lists(_ips, max_size=6), junk=st.text(max_size=40))
def test_client_address_never_takes_a_name_from_an_untrusted_peer(
    peer: str, hops: list[str], junk: str
) -> None:
    policy = HostPolicy(trust_forwarded_from=("10.0.0.0/8",))
    result = client_address(
        policy, peer_ip=peer, forwarded_for=", ".join([junk, *hops]), forwarded=None
    )
    if not peer.startswith("10."):
        assert result == peer
    else:
        untrusted = [h for h in hops if not h.startswith("10.")]
        # The rightmost address no trusted proxy wrote, or the proxy itself.
        assert result in ([untrusted[-1]] if untrusted else []) + [peer] + [junk.strip()]
        if hops and not hops[-1].startswith("10."):
            assert result == hops[-1]


def test_budgets_are_rendered_for_prometheus() -> None:
    metrics = Metrics()
    metrics.set_budget("streams", in_use=3, limit=10, rejected=2)
    metrics.set_budget("sessions", in_use=1, limit=5, rejected=0)
    text = render_prometheus(metrics.statistics())
    assert "# TYPE mcptrio_budget_in_use gauge" in text
    assert 'mcptrio_budget_in_use{budget="streams"} 3' in text
    assert 'mcptrio_budget_limit{budget="sessions"} 5' in text
    assert "# TYPE mcptrio_budget_rejections_total counter" in text
    assert 'mcptrio_budget_rejections_total{budget="streams"} 2' in text
    with pytest.raises(ValueError, match="budget name"):
        metrics.set_budget("no spaces", in_use=0, limit=0, rejected=0)
    with pytest.raises(ValueError, match="built-in"):
        metrics.set_gauge("budget_limit", 1)


def test_default_budgets_fit_a_thousand_clients_with_get_streams() -> None:
    cfg = HttpConfig()
    # Each SDK-like client holds a GET stream and a keep-alive connection for its POSTs.
    assert cfg.max_streams >= 1000 and cfg.max_sessions >= 1000
    assert cfg.session_burst >= 1000 or cfg.session_rate is None
    assert cfg.max_connections is None  # sized from the file-descriptor limit


# -- many clients ---------------------------------------------------------------------------


@pytest.mark.slow
async def test_three_hundred_clients_with_get_streams_see_no_errors() -> None:
    # Server and clients share this process: four descriptors per client (two sockets on
    # each side). A machine whose hard limit is below that runs fewer clients.
    limit = raise_file_limit()
    clients = 300 if limit is None else min(300, (limit - 200) // 4)
    calls = 3
    errors: list[str] = []
    # Each client has its own connection pool, as separate SDK clients would (one TLS
    # context for all of them: building one per client costs more than the test).
    tls = ssl.create_default_context()
    async with running() as info, httpx.AsyncClient(timeout=30, verify=tls) as probe:
        streams_open = trio.Semaphore(0)
        done = trio.Event()

        async def client(n: int) -> None:
            try:
                async with httpx.AsyncClient(timeout=30, verify=tls) as http:
                    session_id = await initialize(http, info)
                    async with get_stream(http, info, session_id) as stream:
                        assert stream.status_code == 200, stream.status_code
                        streams_open.release()
                        for i in range(calls):
                            await echo(http, info, session_id, 1000 * n + i)
                        await done.wait()
                    gone = await http.delete(info.url, headers=headers(session_id))
                    assert gone.status_code == 200
            except Exception as exc:
                errors.append(f"client {n}: {exc!r}")
                streams_open.release()

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for n in range(clients):
                    nursery.start_soon(client, n)
                for _ in range(clients):
                    await streams_open.acquire()
                if not errors:
                    stats = info.endpoint.statistics()
                    assert stats["long_lived_streams"] == clients
                    assert stats["sessions"] == clients
                    health = await probe.get(base(info) + "/health")
                    assert health.status_code == 200
                done.set()
        assert errors == []
        metrics = (await probe.get(base(info) + "/metrics")).text
        assert 'mcptrio_budget_rejections_total{budget="in_flight"} 0' in metrics
        assert 'mcptrio_budget_rejections_total{budget="streams"} 0' in metrics


# -- every budget spent; /health still answers ----------------------------------------------


async def test_health_answers_fast_while_every_budget_is_spent() -> None:
    config = {
        "max_connections": 10,
        "health_connections": 2,
        "max_in_flight_requests": 2,
        "max_streams": 2,
        "max_sessions": 3,
        "session_rate": None,
    }
    async with running(**config) as info, trio.open_nursery() as holders:
        port = int(info.url.split(":")[2].split("/")[0])
        endpoint = info.endpoint
        # One connection per client and no keep-alive pool left idle: every connection of
        # ours stays busy, as a server at its limit sees them.
        fresh = httpx.Limits(max_keepalive_connections=0)
        ready = trio.Semaphore(0)
        calling: list[str] = []

        async def hold(kind: str) -> None:
            async with httpx.AsyncClient(timeout=30, limits=fresh) as http:
                session_id = await initialize(http, info)
                if kind == "stream":
                    async with get_stream(http, info, session_id) as stream:
                        assert stream.status_code == 200
                        ready.release()
                        await trio.sleep_forever()
                else:
                    calling.append(session_id)
                    async with held_call(http, info, session_id, 7):
                        ready.release()
                        await trio.sleep_forever()

        for kind in ("stream", "stream", "call"):
            holders.start_soon(hold, kind)
        for _ in range(3):
            await ready.acquire()
        async with httpx.AsyncClient(timeout=30, limits=fresh) as http:
            # The third session's second call fills the in-flight budget.
            [session_id] = calling
            async with held_call(http, info, session_id, 8):
                busy = await http.post(
                    info.url, json=call(9, "echo", {"text": "x"}), headers=headers(session_id)
                )
                refused(busy, 503, "in_flight")
                refused(
                    await http.post(info.url, json=init_message(), headers=headers()),
                    503,
                    "sessions",
                )
                async with get_stream(http, info, session_id) as extra:
                    refused(extra, 503, "streams")
                # Fill the TCP cap with connections that are mid-request (not idle).
                sockets = []
                budget = endpoint.connection_budget
                assert budget is not None
                with trio.fail_after(10):
                    while budget.in_use < budget.limit:
                        sock = await trio.open_tcp_stream("127.0.0.1", port)
                        await sock.send_all(b"GET /health HTTP/1.1\r\n")
                        sockets.append(sock)
                        await trio.sleep(0.01)
                assert budget.in_use == budget.limit
                # A new MCP request now lands on a health-only connection: 503 naming it.
                over = await http.post(
                    info.url, json=call(10, "echo", {"text": "x"}), headers=headers(session_id)
                )
                refused(over, 503, "connections")
                assert over.headers["connection"] == "close"
                # /health, /ready and /metrics answer, each on a fresh connection.
                times = []
                for _ in range(5):
                    start = trio.current_time()
                    probe = await http.get(base(info) + "/health")
                    times.append(trio.current_time() - start)
                    assert probe.status_code == 200
                assert statistics.median(times) < 0.1, times
                assert (await http.get(base(info) + "/ready")).status_code == 200
                metrics = (await http.get(base(info) + "/metrics")).text
                for name in ("connections", "in_flight", "streams", "sessions"):
                    assert f'mcptrio_budget_in_use{{budget="{name}"}}' in metrics
                assert 'mcptrio_budget_rejections_total{budget="connections"} 1' in metrics
                assert 'mcptrio_budget_rejections_total{budget="in_flight"} 1' in metrics
                for sock in sockets:
                    await sock.aclose()
        holders.cancel_scope.cancel()


async def test_idle_connections_make_room_at_the_cap() -> None:
    async with running(max_connections=5, health_connections=0) as info:
        port = int(info.url.split(":")[2].split("/")[0])
        # Idle sockets (nothing sent) fill the cap ...
        idle = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(8)]
        async with httpx.AsyncClient(timeout=10) as http:
            # ... and a client still gets in: the oldest idle connection gave way.
            with trio.fail_after(10):
                session_id = await initialize(http, info)
                await echo(http, info, session_id, 1)
        budget = info.endpoint.connection_budget
        assert budget is not None and budget.in_use <= budget.limit + 1
        for sock in idle:
            await sock.aclose()


# -- sessions -------------------------------------------------------------------------------


async def test_a_session_flood_evicts_idle_sessions_and_locks_no_one_out(adapter: str) -> None:
    async with (
        running(server=adapter, max_sessions=20, session_rate=None) as info,
        httpx.AsyncClient(timeout=30) as http,
    ):
        # A well-behaved client: its GET stream open, calling tools throughout.
        steady = await initialize(http, info)
        async with get_stream(http, info, steady) as stream:
            assert stream.status_code == 200
            flood: list[str] = []
            for i in range(150):
                response = await http.post(info.url, json=init_message(), headers=headers())
                assert response.status_code == 200, response.text
                flood.append(response.headers["mcp-session-id"])
                if i % 10 == 0:
                    await echo(http, info, steady, i)
            assert info.endpoint.statistics()["evicted_sessions"] >= 130
            assert info.endpoint.statistics()["sessions"] <= 20
            # A newcomer starts; the oldest flood sessions are gone (404: initialize again).
            newcomer = await initialize(http, info)
            await echo(http, info, newcomer, 999)
            await echo(http, info, steady, 1000)
            gone = await http.post(
                info.url, json=call(1, "echo", {"text": "x"}), headers=headers(flood[0])
            )
            assert gone.status_code == 404
            assert gone.json()["error"]["code"] == -32001


async def test_sessions_are_refused_only_when_every_one_is_busy(adapter: str) -> None:
    async with (
        running(server=adapter, max_sessions=2, session_rate=None) as info,
        httpx.AsyncClient(timeout=30) as http,
    ):
        first = await initialize(http, info)
        second = await initialize(http, info)
        async with get_stream(http, info, first), held_call(http, info, second, 5):
            response = await http.post(info.url, json=init_message(), headers=headers())
            refused(response, 503, "sessions")
            assert response.json()["id"] == 1
            # A legacy client leaving is no cancellation: the call still runs, so ``second``
            # stays busy until it is cancelled.
            cancel = {
                "jsonrpc": "2.0",
                "method": "notifications/cancelled",
                "params": {"requestId": 5},
            }
            sent = await http.post(info.url, json=cancel, headers=headers(second))
            assert sent.status_code == 202
        with trio.fail_after(10):
            while info.endpoint.stream_budget.in_use:  # noqa: ASYNC110
                await trio.sleep(0.01)
        # Both idle again: a newcomer evicts the least recently used one.
        await echo(http, info, first, 6)
        await initialize(http, info)
        gone = await http.post(
            info.url, json=call(7, "echo", {"text": "x"}), headers=headers(second)
        )
        assert gone.status_code == 404
        await echo(http, info, first, 8)


async def test_session_creation_rate_per_address_answers_429(adapter: str) -> None:
    async with (
        running(server=adapter, session_rate=0.5, session_burst=3) as info,
        httpx.AsyncClient(timeout=30) as http,
    ):
        for _ in range(3):
            await initialize(http, info)
        response = await http.post(info.url, json=init_message(4), headers=headers())
        refused(response, 429, "session_rate")
        assert int(response.headers["retry-after"]) == 2
        assert response.json()["id"] == 4
        # The legacy HTTP+SSE transport creates sessions too, under the same rate.
        legacy = await http.get(base(info) + "/sse", headers={"accept": "text/event-stream"})
        refused(legacy, 429, "session_rate")
        metrics = (await http.get(base(info) + "/metrics")).text
        assert 'mcptrio_budget_rejections_total{budget="session_rate"} 2' in metrics
        # Forwarded addresses are believed only from a trusted proxy: here, none is.
        forged = await http.post(
            info.url, json=init_message(5), headers=headers(**{"x-forwarded-for": "192.0.2.1"})
        )
        refused(forged, 429, "session_rate")


async def test_behind_a_trusted_proxy_each_client_address_has_its_own_rate(adapter: str) -> None:
    async with (
        running(
            server=adapter,
            session_rate=0.5,
            session_burst=1,
            trust_forwarded_from=("127.0.0.1",),
        ) as info,
        httpx.AsyncClient(timeout=30) as http,
    ):
        for client in ("192.0.2.1", "192.0.2.2"):
            forwarded = headers(**{"x-forwarded-for": client})
            response = await http.post(info.url, json=init_message(), headers=forwarded)
            assert response.status_code == 200, response.text
        again = await http.post(
            info.url, json=init_message(), headers=headers(**{"x-forwarded-for": "192.0.2.1"})
        )
        refused(again, 429, "session_rate")


# -- budgets are separate -------------------------------------------------------------------


async def test_streams_at_their_cap_do_not_block_requests(adapter: str) -> None:
    async with (
        running(server=adapter, max_streams=1, session_rate=None) as info,
        httpx.AsyncClient(timeout=30) as http,
    ):
        first = await initialize(http, info)
        second = await initialize(http, info)
        async with get_stream(http, info, first) as stream:
            assert stream.status_code == 200
            async with get_stream(http, info, second) as other:
                refused(other, 503, "streams")
            legacy = await http.get(base(info) + "/sse", headers={"accept": "text/event-stream"})
            refused(legacy, 503, "streams")
            await echo(http, info, second, 1)
            await echo(http, info, first, 2)
            await initialize(http, info)


async def test_requests_in_flight_at_their_cap_do_not_block_new_sessions(adapter: str) -> None:
    async with (
        running(server=adapter, max_in_flight_requests=1, session_rate=None) as info,
        httpx.AsyncClient(timeout=30) as http,
    ):
        first = await initialize(http, info)
        async with held_call(http, info, first, 1):
            refused(
                await http.post(
                    info.url, json=call(2, "echo", {"text": "x"}), headers=headers(first)
                ),
                503,
                "in_flight",
            )
            newcomer = await initialize(http, info)
            async with get_stream(http, info, newcomer) as stream:
                assert stream.status_code == 200


async def test_streams_per_session_have_their_own_cap(adapter: str) -> None:
    async with (
        running(server=adapter, max_streams_per_session=1, session_rate=None) as info,
        httpx.AsyncClient(timeout=30) as http,
    ):
        first = await initialize(http, info)
        answered = await http.post(
            info.url, json=call(1, "echo", {"text": "x"}), headers=headers(first)
        )
        primed = [e.id for e in SSEDecoder().feed(answered.content) if e.id]
        async with get_stream(http, info, first) as stream:
            assert stream.status_code == 200
            # Resuming the answered stream would be a second stream of this session.
            resumed = await http.get(
                info.url,
                headers=headers(first, accept="text/event-stream", **{"last-event-id": primed[0]}),
            )
            refused(resumed, 503, "session_streams")
            # Another session is not held back by it.
            second = await initialize(http, info)
            async with get_stream(http, info, second) as other:
                assert other.status_code == 200
        # With the GET stream closed, the resume is taken.
        with trio.fail_after(10):
            while info.endpoint.stream_budget.in_use:  # noqa: ASYNC110
                await trio.sleep(0.01)
        resumed = await http.get(
            info.url,
            headers=headers(first, accept="text/event-stream", **{"last-event-id": primed[0]}),
        )
        assert resumed.status_code == 200


# -- a low file-descriptor limit ------------------------------------------------------------

_SERVER_SCRIPT = textwrap.dedent(
    """
    import logging, resource, sys
    import trio
    from mcptrio import HttpConfig, Server, serve_http

    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    server = Server("low-fd")
    extra = {} if sys.argv[2] == "auto" else {"max_connections": int(sys.argv[2])}
    extra["server"] = sys.argv[3]

    async def main():
        async with trio.open_nursery() as nursery:
            info = await nursery.start(serve_http, server, HttpConfig(port=0, **extra))
            print(info.url, flush=True)
            await trio.sleep_forever()

    trio.run(main)
    """
)


@pytest.mark.parametrize(
    ("server", "cap"), [("h11", "auto"), ("h11", "1000"), ("hypercorn", "auto")]
)
async def test_low_file_limit_neither_starves_health_nor_floods_the_log(
    tmp_path: Path, server: str, cap: str
) -> None:
    """``auto``: the cap is sized from the limit. ``1000``: a cap the limit cannot hold, so
    accept fails with EMFILE: it backs off, closes idle connections and logs once.
    Hypercorn has no connection cap: its accept fails too, and logs once; probes wait for
    descriptors there, so only the log is checked."""
    stderr = tmp_path / "stderr.txt"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with stderr.open("wb") as err:
        proc = await trio.lowlevel.open_process(
            [sys.executable, "-c", _SERVER_SCRIPT, "128", cap, server],
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
        )
    try:
        assert proc.stdout is not None
        line = b""
        with trio.fail_after(30):
            while not line.endswith(b"\n"):
                more = await proc.stdout.receive_some(1024)
                assert more, stderr.read_text()
                line += more
        url = line.decode().strip()
        assert url.endswith("/mcp"), (url, stderr.read_text())
        port = int(url.split(":")[2].split("/")[0])
        # More than the 128 descriptors the server may hold.
        idle = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(200)]
        if server == "hypercorn":
            await trio.sleep(2)  # twenty failed accepts, at Hypercorn's pace
        else:
            await probe_health(url)
        for sock in idle:
            await sock.aclose()
    finally:
        proc.terminate()
        with trio.move_on_after(10):
            await proc.wait()
        proc.kill()
    log = stderr.read_text()
    assert "Traceback" not in log or server == "hypercorn", log
    accept_lines = [
        line for line in log.splitlines() if "cannot accept" in line or "accept returned" in line
    ]
    if cap == "auto" and server == "h11":
        assert accept_lines == [], log
    else:
        assert len(accept_lines) == 1, log


async def probe_health(url: str) -> None:
    """Three health probes, each on a new connection, answered in time."""
    for _ in range(3):
        async with httpx.AsyncClient(timeout=10) as http:
            with trio.fail_after(10):
                health = await http.get(url.removesuffix("/mcp") + "/health")
            assert health.status_code == 200


async def test_a_2026_listen_counts_as_a_stream_not_as_a_request(adapter: str) -> None:
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    listen = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "subscriptions/listen",
        "params": {"_meta": meta, "notifications": {"toolsListChanged": True}},
    }
    modern = {
        "accept": ACCEPT,
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "subscriptions/listen",
    }
    async with (
        running(server=adapter, max_streams=1, max_in_flight_requests=1) as info,
        httpx.AsyncClient(timeout=30) as http,
        http.stream("POST", info.url, json=listen, headers=modern) as held,
    ):
        assert held.status_code == 200
        with trio.fail_after(10):
            while info.endpoint.stream_budget.in_use == 0:  # noqa: ASYNC110
                await trio.sleep(0.01)
        assert info.endpoint.in_flight_budget.in_use == 0
        second = await http.post(info.url, json={**listen, "id": 2}, headers=modern)
        refused(second, 503, "streams")
        assert second.json()["id"] == 2
        # A request still has the whole in-flight budget.
        session_id = await initialize(http, info)
        await echo(http, info, session_id, 3)
