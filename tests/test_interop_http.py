"""Interop over Streamable HTTP with the official MCP Python SDK (mcp 2.3.0, own virtualenv).

Both directions run over real sockets on 127.0.0.1: the SDK's ``Client`` and its low-level
``streamable_http_client`` drive our server (``examples/everything.py``, served in-process by
``serve_http``), and our client drives the SDK's server (``sdk_server.py streamable-http``).
The restart test needs no SDK: our server goes away and comes back on the same port with an
empty in-memory session store, and our client must re-initialize by itself.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from everything_client_checks import ROOTS, WATCHED, Recorder, drive_everything_server, text_of
from sdk import SCRIPTS_DIR, SdkError, open_sdk_http_server, run_sdk_client

from examples import everything
from mcptrio import (
    HttpConfig,
    HttpServerInfo,
    open_client,
    open_http_transport,
    serve_http,
)

LOWLEVEL_SCRIPT = SCRIPTS_DIR / "sdk_lowlevel_client.py"
RECONNECTION_TEXT = (
    "Reconnection test completed successfully. If you received this, the client properly"
    " reconnected after stream closure."
)
# The retry hint of every priming event: how long an SDK client waits before resuming a
# dropped stream. Small, so the resumption test does not idle for the default second.
RETRY_MS = 20
# Bound on one run of an SDK script: it starts a fresh interpreter (pydantic, httpx2) and runs
# about thirty checks of at most 15 s each, so only a hang comes near this.
SDK_RUN_DEADLINE = 120
# Bound on anything that runs inside this process only.
LOCAL_DEADLINE = 30


@asynccontextmanager
async def serving(config: HttpConfig) -> AsyncIterator[HttpServerInfo]:
    """Serve the everything example over Streamable HTTP for the duration of the block."""
    async with trio.open_nursery() as nursery:
        info: HttpServerInfo = await nursery.start(partial(serve_http, everything.server, config))
        try:
            yield info
        finally:
            nursery.cancel_scope.cancel()


# -- the SDK's Client against our server ------------------------------------------------------


@pytest.mark.interop
async def test_sdk_client_drives_our_http_server(sdk_python: Path) -> None:
    with trio.fail_after(SDK_RUN_DEADLINE):
        async with serving(HttpConfig(port=0, sse_retry_ms=RETRY_MS)) as info:
            report = await run_sdk_client(sdk_python, url=info.url, mode="legacy")
    assert report.protocol_version == "2025-11-25"
    failures = {name: check.detail for name, check in report.items() if check.ok is False}
    assert not failures, failures
    skipped = [name for name, check in report.items() if check.ok is None]
    assert not skipped, skipped
    assert len(report) >= 30


@pytest.mark.interop
@pytest.mark.parametrize("mode", ["2026-07-28", "auto"])
async def test_sdk_client_drives_our_http_server_in_the_2026_era(
    sdk_python: Path, mode: str
) -> None:
    """MRTR sampling/elicitation/roots, every content type, errors and cancellation, stateless."""
    with trio.fail_after(SDK_RUN_DEADLINE):
        async with serving(HttpConfig(port=0, sse_retry_ms=RETRY_MS)) as info:
            report = await run_sdk_client(sdk_python, url=info.url, mode=mode)
    assert report.protocol_version == "2026-07-28"
    failures = {name: check.detail for name, check in report.items() if check.ok is False}
    assert not failures, failures
    # Only the checks of methods 2026-07-28 removed (subscribe, setLevel, ping) are skipped.
    skipped = sorted(name for name, check in report.items() if check.ok is None)
    assert skipped == ["logging_set_level", "ping", "subscribe_unsubscribe"], skipped


async def response_content_type(url: str) -> str:
    """The media type our server answers an ``initialize`` POST with."""
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "probe", "version": "1"},
        },
    }
    headers = {"accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient() as http:
        response = await http.post(url, json=init, headers=headers)
        await http.delete(url, headers={"mcp-session-id": response.headers["mcp-session-id"]})
    return response.headers["content-type"].split(";")[0]


@pytest.mark.interop
async def test_sdk_client_drives_our_http_server_with_json_responses(sdk_python: Path) -> None:
    with trio.fail_after(SDK_RUN_DEADLINE):
        async with serving(HttpConfig(port=0, json_response=True)) as info:
            # Otherwise this would only repeat the SSE test.
            assert await response_content_type(info.url) == "application/json"
            report = await run_sdk_client(sdk_python, url=info.url, mode="legacy")
    assert report.protocol_version == "2025-11-25"
    failures = {name: check.detail for name, check in report.items() if check.ok is False}
    # A JSON body carries only the answer, so whatever a call sends before it (progress, logs,
    # sampling, elicitation and roots requests) cannot travel with it. Our server sends those
    # on the session's GET stream instead, which the SDK holds open from the handshake on, so
    # the checks that need them (test_tool_with_progress, test_tool_with_logging, test_sampling,
    # the three test_elicitation*, test_list_roots) pass here too: no check is expected to fail.
    #
    # One known wrinkle is the SDK's, at shutdown: a cancelled call's POST stays open (a JSON
    # body cannot be withdrawn) until the session's DELETE ends it with an error, and the SDK
    # may already have closed the stream it would deliver that late answer to. When it has,
    # its transport raises ClosedResourceError as it exits, reported as "disconnect".
    late_answer = failures.pop("disconnect", None)
    assert late_answer is None or "ClosedResourceError" in late_answer, late_answer
    assert not failures, failures
    skipped = [name for name, check in report.items() if check.ok is None]
    assert not skipped, skipped
    assert {"test_tool_with_progress", "test_sampling", "cancellation"} <= set(report)


# -- the SDK's low-level streamable_http_client against our server ------------------------------


async def run_lowlevel_client(python: os.PathLike[str] | str, url: str) -> dict[str, Any]:
    """Run ``sdk_lowlevel_client.py`` against ``url`` and return its report."""
    command = [os.fspath(python), os.fspath(LOWLEVEL_SCRIPT), "--url", url]
    done = await trio.run_process(
        command, stdin=subprocess.DEVNULL, capture_stdout=True, capture_stderr=True, check=False
    )
    stderr = done.stderr.decode(errors="replace")
    if done.returncode != 0:
        raise SdkError(f"sdk_lowlevel_client.py exited with {done.returncode}:\n{stderr}")
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except ValueError as error:
        raise SdkError(f"sdk_lowlevel_client.py printed no report ({error}):\n{stderr}") from None
    return report


@pytest.mark.interop
async def test_sdk_lowlevel_client_resumes_a_closed_stream(sdk_python: Path) -> None:
    with trio.fail_after(SDK_RUN_DEADLINE):
        async with serving(HttpConfig(port=0, sse_retry_ms=RETRY_MS)) as info:
            report = await run_lowlevel_client(sdk_python, info.url)
            resumptions = info.endpoint.statistics()["resumptions"]
    steps = report["steps"]
    errors = {name: step["error"] for name, step in steps.items() if "error" in step}
    assert not errors, errors
    assert "disconnect_error" not in report, report["disconnect_error"]
    assert report["protocol_version"] == "2025-11-25"
    assert report["server"] == {"name": "mcp-conformance-test-server", "version": "1.0.0"}
    assert steps["initialize"] == {"tools": True, "logging": True}
    assert {"test_tool_with_progress", "test_reconnection"} <= set(steps["tools_list"]["names"])

    progress = steps["progress"]
    assert not progress["is_error"]
    assert progress["content"] == [
        {"type": "text", "text": "Tool with progress executed successfully"}
    ]
    assert progress["progress"] == [
        [step, 100, f"Completed step {step} of 100"] for step in (0, 50, 100)
    ]

    reconnection = steps["reconnection"]
    assert not reconnection["is_error"]
    assert reconnection["content"] == [{"type": "text", "text": RECONNECTION_TEXT}]
    # The first event id is the priming event's, the only one the closed stream carried;
    # the result came on the resumed stream after it.
    priming, *after = reconnection["resumption_tokens"]
    assert after, "the result arrived without an event id"
    resumes = [entry for entry in report["http"] if entry["last_event_id"] is not None]
    assert resumes == [
        {
            "method": "GET",
            "rpc": None,
            "last_event_id": priming,
            "status": 200,
            "content_type": "text/event-stream",
        }
    ]
    # Every request before the resume was answered on an SSE stream of its own.
    posts = [entry for entry in report["http"] if entry["rpc"] in ("tools/list", "tools/call")]
    assert [entry["content_type"] for entry in posts] == ["text/event-stream"] * 3
    assert resumptions == 1


# -- our client against the SDK's server --------------------------------------------------------


@pytest.mark.interop
async def test_our_client_drives_the_sdk_http_server(sdk_python: Path) -> None:
    recorder = Recorder()
    with trio.fail_after(SDK_RUN_DEADLINE):
        async with (
            open_sdk_http_server(sdk_python) as url,
            open_http_transport(url) as transport,
            open_client(
                transport,
                mode="legacy",
                sampling_handler=recorder.sampling,
                elicitation_handler=recorder.elicitation,
                roots=ROOTS,
                on_log=recorder.on_log,
                on_notification=recorder.on_notification,
            ) as client,
        ):
            assert transport.mode == "streamable-http"
            assert transport.session_id is not None
            # Progress, logs and server requests ride the calls' SSE streams; the resource
            # update comes on the GET stream; answers to server requests go back by POST.
            await drive_everything_server(client, recorder)
            untriggered = await client.call_tool("test_trigger_resource_update")
            assert text_of(untriggered) == f"No subscribers for {WATCHED}"
            stats = transport.statistics()
    assert stats.reinitializations == 0
    assert stats.http_errors == 0, stats


# -- restart: a new server on the same port knows no session ------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picked it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def run_server(
    config: HttpConfig,
    stopped: trio.Event,
    *,
    task_status: trio.TaskStatus[tuple[HttpServerInfo, trio.CancelScope]] = (
        trio.TASK_STATUS_IGNORED
    ),
) -> None:
    """Serve until the reported scope is cancelled; ``stopped`` is set once the port is free."""
    try:
        with trio.CancelScope() as scope:
            async with serving(config) as info:
                task_status.started((info, scope))
                await trio.sleep_forever()
    finally:
        stopped.set()


async def test_client_reinitializes_after_a_server_restart() -> None:
    expired: list[str] = []

    async def on_session_expired(session_id: str) -> None:
        expired.append(session_id)

    config = HttpConfig(port=free_port())
    with trio.fail_after(LOCAL_DEADLINE):
        async with trio.open_nursery() as nursery:
            first_stopped = trio.Event()
            first, first_scope = await nursery.start(run_server, config, first_stopped)
            async with (
                open_http_transport(first.url, on_session_expired=on_session_expired) as transport,
                open_client(transport, mode="legacy") as client,
            ):
                answer = await client.call_tool("test_simple_text")
                assert text_of(answer) == "This is a simple text response for testing."
                old_session = transport.session_id
                assert old_session is not None

                first_scope.cancel()
                await first_stopped.wait()
                second, second_scope = await nursery.start(run_server, config, trio.Event())
                assert second.url == first.url

                # The new server answers the old session id with 404; the transport repeats
                # the handshake and re-sends the call under its original id.
                answer = await client.call_tool("test_simple_text")
                assert text_of(answer) == "This is a simple text response for testing."
                stats = transport.statistics()
                assert stats.reinitializations == 1
                assert expired == [old_session]
                assert transport.session_id not in (None, old_session)
                assert client.protocol_version == "2025-11-25"
                assert second.endpoint.statistics()["sessions"] == 1
            second_scope.cancel()
