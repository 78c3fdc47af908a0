"""Interop over stdio with the official MCP Python SDK (mcp 2.3.0, in its own virtualenv)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio
from everything_client_checks import ROOTS, Recorder, drive_everything_server
from sdk import run_sdk_client, sdk_server_command

from mcptrio import open_client, open_stdio_process

ROOT = Path(__file__).resolve().parent.parent
OUR_SERVER = [sys.executable, "-m", "mcptrio", "serve", str(ROOT / "examples" / "everything.py")]

pytestmark = pytest.mark.interop


async def test_sdk_client_drives_our_stdio_server(sdk_python: Path) -> None:
    with trio.fail_after(180):
        report = await run_sdk_client(sdk_python, server_command=OUR_SERVER, mode="legacy")
    assert report.protocol_version == "2025-11-25"
    failures = {name: check.detail for name, check in report.items() if check.ok is False}
    assert not failures, failures
    skipped = [name for name, check in report.items() if check.ok is None]
    assert not skipped, skipped
    assert len(report) >= 30


@pytest.mark.parametrize("mode", ["2026-07-28", "auto"])
async def test_sdk_client_drives_our_stdio_server_in_the_2026_era(
    sdk_python: Path, mode: str
) -> None:
    with trio.fail_after(180):
        report = await run_sdk_client(sdk_python, server_command=OUR_SERVER, mode=mode)
    assert report.protocol_version == "2026-07-28"
    failures = {name: check.detail for name, check in report.items() if check.ok is False}
    assert not failures, failures
    # Only the checks of methods 2026-07-28 removed (subscribe, setLevel, ping) are skipped.
    skipped = sorted(name for name, check in report.items() if check.ok is None)
    assert skipped == ["logging_set_level", "ping", "subscribe_unsubscribe"], skipped


# -- our client against the SDK's stdio server ---------------------------------------------


async def test_our_client_drives_the_sdk_stdio_server(sdk_python: Path) -> None:
    recorder = Recorder()
    command = sdk_server_command(sdk_python, "stdio")
    with trio.fail_after(120):
        async with (
            open_stdio_process(command, stderr="capture") as transport,
            open_client(
                transport,
                sampling_handler=recorder.sampling,
                elicitation_handler=recorder.elicitation,
                roots=ROOTS,
                on_log=recorder.on_log,
                on_notification=recorder.on_notification,
            ) as client,
        ):
            await drive_everything_server(client, recorder)
    assert transport.returncode is not None
