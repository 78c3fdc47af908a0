"""Opening stores by URL, the SQLite file's schema and durability, and wiring into serving."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import orjson
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st
from stores import REDIS_URL, delete_redis_keys, unique_prefix

import mcptrio
from mcptrio import (
    HttpConfig,
    Server,
    SessionRecord,
    SqliteEventStore,
    SqliteSessionStore,
    SqliteTaskStore,
    StoreConfig,
    StoreError,
    open_stores,
    serve_http,
)
from mcptrio._ops.config import ConfigError, load_config
from mcptrio._ops.store_location import mask_url, parse_store_url
from mcptrio._state.sqlite import SCHEMA_VERSION

ACCEPT = "application/json, text/event-stream"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("url", "kind", "detail"),
    [
        ("memory://", "memory", None),
        ("sqlite:///var/lib/x.db", "sqlite", "/var/lib/x.db"),
        ("sqlite:rel/x.db", "sqlite", "rel/x.db"),
        ("redis://127.0.0.1:6379/0", "redis", "mcptrio:"),
        ("redis://h:1/2?prefix=app:", "redis", "app:"),
        ("rediss://:pw@h/0?prefix=a&ssl_cert_reqs=none", "redis", "a"),
    ],
)
def test_store_urls_parse(url: str, kind: str, detail: str | None) -> None:
    where = parse_store_url(url)
    assert where.kind == kind
    if kind == "sqlite":
        assert where.path == detail
    if kind == "redis":
        assert where.prefix == detail
        assert where.redis_url is not None and "prefix=" not in where.redis_url


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("", "it is empty"),
        ("postgres://h/db", "unknown scheme 'postgres'"),
        ("memory://x", "takes no host"),
        ("sqlite://data.db", "'data.db' is in the host part"),
        ("sqlite:///", "names no file"),
        ("sqlite:///x.db?mode=ro", "takes no options"),
        ("redis:///0", "names no host"),
        ("redis://h:6379/zero", "'zero' is not a number"),
        ("redis://h:99999/0", "not a valid URL"),
        ("redis://h/0?prefix=", "the prefix is empty"),
        ("redis://h/0?prefix=a&prefix=b", "more than once"),
    ],
)
def test_malformed_store_urls_say_what_is_wrong(url: str, fragment: str) -> None:
    with pytest.raises(StoreError, match="store URL") as caught:
        parse_store_url(url)
    assert fragment in str(caught.value)


def test_passwords_are_masked_in_messages() -> None:
    with pytest.raises(StoreError) as caught:
        parse_store_url("redis://user:s3cret@h:6379/zero")
    assert "s3cret" not in str(caught.value)
    assert "redis://user:***@h:6379/zero" in str(caught.value)


@given(st.text(min_size=1, max_size=30).filter(lambda p: "@" not in p and "/" not in p))
def test_mask_url_hides_any_password(password: str) -> None:
    from urllib.parse import quote

    url = f"redis://:{quote(password, safe='')}@host:1/0"
    assert mask_url(url) == "redis://:***@host:1/0"


async def test_unreachable_redis_fails_at_start_with_the_masked_url() -> None:
    url = f"redis://:hunter2@127.0.0.1:{closed_port()}/0"
    with pytest.raises(StoreError) as caught:
        async with open_stores(url):
            pytest.fail("opened a store on a closed port")
    message = str(caught.value)
    assert "hunter2" not in message
    assert f"redis://:***@127.0.0.1:{url.rsplit(':', 1)[1]}" in message
    assert "cannot reach Redis" in message


async def test_an_unopenable_sqlite_file_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open the SQLite file"):
        async with open_stores(f"sqlite://{tmp_path}/missing-dir/x.db"):
            pytest.fail("opened a file in a missing directory")


def test_store_config_validates_its_url() -> None:
    with pytest.raises(ConfigError, match=r"StoreConfig\.url: store URL 'nope://'"):
        StoreConfig(url="nope://")
    with pytest.raises(ConfigError, match="event_bytes_total"):
        StoreConfig(event_bytes_total=0)


def test_store_config_loads_from_toml_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[store]\nurl = "sqlite:///tmp/a.db"\nevent_bytes_per_stream = 1000\n')
    config = load_config(path=str(path), env={"MCPTRIO_STORE__EVENT_BYTES_TOTAL": ""})
    assert config.store == StoreConfig(
        url="sqlite:///tmp/a.db", event_bytes_per_stream=1000, event_bytes_total=None
    )
    with pytest.raises(ConfigError, match="MCPTRIO_STORE__URL"):
        load_config(env={"MCPTRIO_STORE__URL": "redis:///0"})


# --------------------------------------------------------------------------- SQLite file


async def test_sqlite_file_is_wal_and_versioned(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with open_stores(f"sqlite://{path}") as stores:
        assert stores.kind == "sqlite" and stores.clock is time.time
        assert isinstance(stores.sessions, SqliteSessionStore)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        conn.close()


async def test_a_sqlite_file_from_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError) as caught:
        async with open_stores(f"sqlite://{path}"):
            pytest.fail("opened a file from a newer schema")
    message = str(caught.value)
    assert f"schema version {SCHEMA_VERSION + 1}, written by a newer mcptrio" in message
    assert f"reads versions up to {SCHEMA_VERSION}" in message


async def test_stores_refuse_use_after_their_block(tmp_path: Path) -> None:
    async with open_stores(f"sqlite://{tmp_path}/c.db") as stores:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        await stores.sessions.count()


async def test_a_cancelled_caller_does_not_abandon_its_write(tmp_path: Path) -> None:
    now = time.time()
    async with open_stores(f"sqlite://{tmp_path}/c.db") as stores:
        with trio.CancelScope() as scope:
            scope.cancel()
            await stores.sessions.put(
                SessionRecord(id="x", created_at=now, last_active_at=now, expires_at=None)
            )
        # Either the write never started or it finished: never half a transaction.
        assert await stores.sessions.count() in (0, 1)


WRITER = textwrap.dedent(
    """
    import sys, time, trio
    from mcptrio import SessionRecord, TaskRecord, open_stores

    async def main(url):
        async with open_stores(url) as stores:
            now = time.time()
            for i in range(50):
                await stores.sessions.put(SessionRecord(
                    id=f"s{i}", created_at=now, last_active_at=now, expires_at=now + 3600,
                    principal="p", metadata={"i": i}))
            ids = [await stores.events.append("stream", {"n": n}) for n in range(20)]
            await stores.tasks.create(TaskRecord(
                task_id="t", status="working", created_at=now, last_updated_at=now,
                ttl_ms=3_600_000))
            print(ids[0], flush=True)
            await trio.sleep_forever()

    trio.run(main, sys.argv[1])
    """
)


async def test_what_a_killed_process_committed_is_read_by_the_next(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/killed.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with trio.fail_after(60):
        proc = await trio.lowlevel.open_process(
            [sys.executable, "-c", WRITER, url], stdout=subprocess.PIPE, env=env
        )
        try:
            assert proc.stdout is not None
            line = b""
            while not line.endswith(b"\n"):
                chunk = await proc.stdout.receive_some(100)
                assert chunk, "the writer exited early"
                line += chunk
        finally:
            proc.send_signal(signal.SIGKILL)
            status = await proc.wait()
            if proc.stdout is not None:
                await proc.stdout.aclose()
    assert status == -signal.SIGKILL
    first = line.decode().strip()
    async with open_stores(url) as stores:
        assert await stores.sessions.count() == 50
        assert await stores.sessions.count_for_principal("p") == 50
        stored = await stores.sessions.get("s49")
        assert stored is not None and stored.metadata == {"i": 49}
        stream, replayed = await stores.events.replay_after(first)
        assert stream == "stream" and [m for _, m in replayed] == [{"n": n} for n in range(1, 20)]
        task = await stores.tasks.get("t")
        assert task is not None and task.status == "working"


# --------------------------------------------------------------------------- serving


async def test_serve_http_keeps_sessions_events_and_tasks_in_the_configured_store(
    tmp_path: Path,
) -> None:
    server = Server("stored")
    server.enable_tasks()
    url = f"sqlite://{tmp_path}/served.db"
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
    async with trio.open_nursery() as nursery:
        info = await nursery.start(
            lambda task_status: serve_http(
                server, HttpConfig(port=0), store=StoreConfig(url=url), task_status=task_status
            )
        )
        endpoint = info.endpoint
        assert isinstance(endpoint.events, SqliteEventStore)
        assert server.task_manager is not None
        assert isinstance(server.task_manager.store, SqliteTaskStore)
        async with httpx.AsyncClient() as http:
            response = await http.post(info.url, json=init, headers={"accept": ACCEPT})
            assert response.status_code == 200
            session_id = response.headers["mcp-session-id"]
        # Another connection to the same file sees the session while the server runs.
        async with open_stores(url) as stores:
            record = await stores.sessions.get(session_id)
            assert record is not None
            assert record.expires_at is not None and record.expires_at > time.time()
        nursery.cancel_scope.cancel()
    # The task store the application did not choose goes back to its default afterwards.
    assert isinstance(server.task_manager.store, mcptrio.MemoryTaskStore)
    async with open_stores(url) as stores:
        # The negotiated version is written once initialize has been answered.
        record = await stores.sessions.get(session_id)
        assert record is not None and record.protocol_version == "2025-11-25"
        assert record.client_info == {"name": "raw", "version": "0"}


async def test_serve_http_on_redis_shares_the_prefix(redis_prefix: str) -> None:
    server = Server("stored")
    url = f"{REDIS_URL}?prefix={redis_prefix}"
    async with trio.open_nursery() as nursery:
        info = await nursery.start(
            lambda task_status: serve_http(
                server, HttpConfig(port=0), store=StoreConfig(url=url), task_status=task_status
            )
        )
        async with httpx.AsyncClient() as http:
            response = await http.post(
                info.url,
                json={
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "initialize",
                    "params": {
                        "protocolVersion": "2025-11-25",
                        "capabilities": {},
                        "clientInfo": {"name": "raw", "version": "0"},
                    },
                },
                headers={"accept": ACCEPT},
            )
            session_id = response.headers["mcp-session-id"]
        async with open_stores(url) as stores:
            assert await stores.sessions.get(session_id) is not None
        nursery.cancel_scope.cancel()


async def test_serve_http_with_an_unreachable_store_fails_to_start() -> None:
    url = f"redis://:pw@127.0.0.1:{closed_port()}/0"
    with pytest.RaisesGroup(
        pytest.RaisesExc(StoreError, match=r"redis://:\*\*\*@127\.0\.0\.1"),
        flatten_subgroups=True,
    ):
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: serve_http(
                    Server("x"),
                    HttpConfig(port=0),
                    store=StoreConfig(url=url),
                    task_status=task_status,
                )
            )
            pytest.fail("serving started")


async def test_cli_store_option_fails_at_start_with_one_clear_line(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text("import mcptrio\n\nserver = mcptrio.Server('cli-test')\n")
    port = closed_port()
    with trio.fail_after(60):
        result = await trio.run_process(
            [
                sys.executable, "-m", "mcptrio", "serve", str(app), "--transport", "http",
                "--port", "0", "--store", f"redis://:pw@127.0.0.1:{port}/0",
            ],
            capture_stdout=True, capture_stderr=True, check=False, cwd=tmp_path,
        )  # fmt: skip
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("mcptrio:")]
    assert lines == [
        f"mcptrio: store URL 'redis://:***@127.0.0.1:{port}/0': cannot reach Redis"
        f" (Unable to establish a connection to 127.0.0.1:{port})"
    ], stderr


async def test_cli_store_option_is_checked_before_serving(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text("import mcptrio\n\nserver = mcptrio.Server('cli-test')\n")
    for args, fragment in (
        (["--transport", "http", "--store", "sqlite://x.db"], "--store: store URL 'sqlite://x.db'"),
        (["--store", "memory://"], "--store: sessions are kept only with --transport http"),
    ):
        with trio.fail_after(60):
            result = await trio.run_process(
                [sys.executable, "-m", "mcptrio", "serve", str(app), *args],
                capture_stdout=True, capture_stderr=True, check=False, cwd=tmp_path,
            )  # fmt: skip
        assert result.returncode == 2
        assert fragment in result.stderr.decode()


async def test_redis_stores_keep_to_their_prefix() -> None:
    prefix = unique_prefix()
    try:
        async with open_stores(f"{REDIS_URL}?prefix={prefix}") as stores:
            now = time.time()
            await stores.sessions.put(
                SessionRecord(id="a", created_at=now, last_active_at=now, expires_at=now + 60)
            )
            await stores.events.append("s", {"x": 1})
        import coredis

        async with coredis.Redis.from_url(REDIS_URL) as client:
            keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
            assert keys and all(k.decode().startswith(prefix) for k in keys)
            ttl = await client.pttl(f"{prefix}s:a")
            assert 60_000 < ttl <= 120_000  # the record's expiry plus the key's grace
    finally:
        await delete_redis_keys(prefix)


async def test_the_endpoints_default_event_store_is_bounded_in_bytes() -> None:
    endpoint = mcptrio.HttpEndpoint(Server("x"), HttpConfig())
    events = endpoint.events
    assert isinstance(events, mcptrio.MemoryEventStore)
    budget = StoreConfig().event_bytes_per_stream
    assert budget is not None
    result = {"jsonrpc": "2.0", "id": 1, "result": {"text": "x" * (1024 * 1024)}}
    # Large results on one stream: what is kept stays within the per-stream budget.
    for _ in range(budget // (1024 * 1024) + 8):
        await events.append("stream", result)
    assert budget - 1024 * 1024 - 100 < events.bytes_held <= budget


@given(
    host=st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z0-9-]{1,10}){0,2}", fullmatch=True),
    port=st.integers(1, 65535),
    db=st.integers(0, 15),
    prefix=st.text(
        st.characters(codec="ascii", exclude_characters="&#%+"), min_size=1, max_size=20
    ),
)
def test_redis_urls_keep_their_prefix_and_connection_parts(
    host: str, port: int, db: int, prefix: str
) -> None:
    from urllib.parse import quote, urlsplit

    url = f"redis://{host}:{port}/{db}?prefix={quote(prefix, safe='')}"
    where = parse_store_url(url)
    assert where.prefix == prefix
    assert where.redis_url is not None
    parts = urlsplit(where.redis_url)
    assert (parts.hostname, parts.port, parts.path, parts.query) == (host, port, f"/{db}", "")


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_a_cut_stream_resumes_from_the_durable_event_store(
    kind: str, tmp_path: Path, redis_prefix: str
) -> None:
    from mcptrio import current_request
    from mcptrio._protocol.sse import SSEDecoder, SSEEvent

    url = (
        f"sqlite://{tmp_path}/events.db"
        if kind == "sqlite"
        else f"{REDIS_URL}?prefix={redis_prefix}"
    )
    go_on = trio.Event()
    server = Server("resumable")

    @server.tool()
    async def ticks() -> str:
        """Two ticks, a pause until the test says so, a third tick."""
        ctx = current_request()
        await ctx.report_progress(1, 3)
        await ctx.report_progress(2, 3)
        await go_on.wait()
        await ctx.report_progress(3, 3)
        return "ticked"

    def headers(session_id: str, **extra: str) -> dict[str, str]:
        return {
            "accept": ACCEPT,
            "mcp-session-id": session_id,
            "mcp-protocol-version": "2025-11-25",
            **extra,
        }

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
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "ticks", "arguments": {}, "_meta": {"progressToken": 2}},
    }
    async with trio.open_nursery() as nursery:
        info = await nursery.start(
            lambda task_status: serve_http(
                server, HttpConfig(port=0), store=StoreConfig(url=url), task_status=task_status
            )
        )
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(info.url, json=init, headers={"accept": ACCEPT})
            session_id = response.headers["mcp-session-id"]
            note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            await http.post(info.url, json=note, headers=headers(session_id))
            seen: list[SSEEvent] = []
            decoder = SSEDecoder()
            async with http.stream("POST", info.url, json=call, headers=headers(session_id)) as r:
                async for chunk in r.aiter_raw():
                    seen.extend(decoder.feed(chunk))
                    if sum(1 for e in seen if e.data) >= 2:
                        break  # the connection drops mid-response
            last_id = [e for e in seen if e.id][-1].id
            assert last_id is not None
            # What was sent so far is in the store, readable by any process.
            async with open_stores(url) as stores:
                _, replayed = await stores.events.replay_after(last_id)
                assert replayed == []
            go_on.set()
            resumed = await http.get(
                info.url, headers=headers(session_id, **{"last-event-id": last_id})
            )
            assert resumed.status_code == 200
            after = [orjson.loads(e.data) for e in SSEDecoder().feed(resumed.content) if e.data]
            before = [orjson.loads(e.data) for e in seen if e.data]
            progress = [m["params"]["progress"] for m in before + after if m.get("method")]
            assert progress == [1, 2, 3]
            assert after[-1]["result"]["content"][0]["text"] == "ticked"
            async with open_stores(url) as stores:
                _, stored = await stores.events.replay_after(last_id)
                assert [m for _, m in stored if m is not None] == after
        nursery.cancel_scope.cancel()


async def test_a_redis_prefix_from_a_newer_schema_is_refused(redis_prefix: str) -> None:
    import coredis

    from mcptrio._state.store_redis import SCHEMA_VERSION as REDIS_SCHEMA

    url = f"{REDIS_URL}?prefix={redis_prefix}"
    async with open_stores(url):
        pass
    async with coredis.Redis.from_url(REDIS_URL) as client:
        assert await client.get(f"{redis_prefix}schema") == str(REDIS_SCHEMA).encode()
        await client.set(f"{redis_prefix}schema", str(REDIS_SCHEMA + 1))
    with pytest.raises(StoreError) as caught:
        async with open_stores(url):
            pytest.fail("opened keys from a newer schema")
    message = str(caught.value)
    assert f"schema version {REDIS_SCHEMA + 1}, written by a newer mcptrio" in message
    assert redis_prefix in message
