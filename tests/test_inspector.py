"""The official MCP Inspector CLI lists and calls our tools, over Streamable HTTP and stdio.

Each test serves ``examples/everything.py`` (``python -m mcptrio serve``) and drives it with
``mcp-inspector --cli ... --format json`` from ``@modelcontextprotocol/inspector``, which
negotiates the 2025-11-25 revision by default. Run with ``nox -s inspector``; Node 22 and the
Inspector are installed from npm into ``.cache/`` on first use.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from node_tools import INSPECTOR, mcptrio_http_command, npm_tool, open_http_server, run_inspector

pytestmark = [pytest.mark.conformance, pytest.mark.parametrize("transport", ["http", "stdio"])]

LIMIT = 60.0
"""Seconds for one test: starting the server and a few Inspector calls (each about a second)."""

SIMPLE_TEXT = "This is a simple text response for testing."
FIXTURE_TOOLS = {
    "test_simple_text",
    "test_image_content",
    "test_audio_content",
    "test_embedded_resource",
    "test_multiple_content_types",
    "test_tool_with_logging",
    "test_tool_with_progress",
    "test_error_handling",
    "test_sampling",
    "test_elicitation",
    "test_elicitation_sep1034_defaults",
    "test_elicitation_sep1330_enums",
    "json_schema_2020_12_tool",
}
"""Tools the conformance suite calls by name (spec section 7.1)."""

# Inspector exit statuses (spec section 7.2).
OK, TOOL_ERROR = 0, 5


@pytest.fixture(scope="session", autouse=True)
def inspector_tool() -> list[str]:
    """Installs Node 22 and the Inspector before any time limit starts."""
    return npm_tool(INSPECTOR)


@contextlib.asynccontextmanager
async def serving(transport: str) -> AsyncIterator[list[str]]:
    """Serve the everything example; yield the Inspector's target arguments for it."""
    if transport == "stdio":
        # The Inspector spawns the server itself, from the repository root.
        yield [sys.executable, "-m", "mcptrio", "serve", "examples/everything.py"]
    else:
        async with open_http_server(mcptrio_http_command()) as server:
            yield [server.url, "--transport", "http"]


async def inspect(target: list[str], *args: str, status: int = OK) -> dict[str, Any]:
    """One ``--format json`` Inspector call, after checking its exit status.

    Returns the JSON document on stdout (``{"result": ...}``, or ``{}`` when there is none) with
    ``"error"`` set to the error envelope the Inspector prints on stderr, if any.
    """
    done = await run_inspector([*target, *args, "--format", "json"])
    detail = _describe(done)
    assert done.returncode == status, f"expected exit {status}\n{detail}"
    try:
        output = json.loads(done.stdout) if done.stdout.strip() else {}
    except ValueError as error:
        raise AssertionError(f"stdout is not one JSON document ({error})\n{detail}") from error
    assert isinstance(output, dict), detail
    for line in reversed(done.stderr.decode(errors="replace").splitlines()):
        with contextlib.suppress(ValueError):
            envelope = json.loads(line)
            if isinstance(envelope, dict) and "error" in envelope:
                output["error"] = envelope["error"]
                break
    return output


def _describe(done: subprocess.CompletedProcess[bytes]) -> str:
    return (
        f"`{' '.join(map(str, done.args))}` exited with {done.returncode}\n"
        f"--- stdout ---\n{done.stdout.decode(errors='replace')[-6000:]}\n"
        f"--- stderr ---\n{done.stderr.decode(errors='replace')[-6000:]}"
    )


async def test_tools_list(transport: str) -> None:
    with trio.fail_after(LIMIT):
        async with serving(transport) as target:
            output = await inspect(target, "--method", "tools/list")
    tools = {tool["name"]: tool for tool in output["result"]["tools"]}
    assert tools.keys() >= FIXTURE_TOOLS, sorted(FIXTURE_TOOLS - tools.keys())
    for name, tool in tools.items():
        assert tool["inputSchema"]["type"] == "object", name
        assert isinstance(tool.get("description"), str), name
    sampling = tools["test_sampling"]["inputSchema"]
    assert sampling["properties"]["prompt"]["type"] == "string"
    assert sampling["required"] == ["prompt"]


async def test_tools_call(transport: str) -> None:
    results: dict[str, dict[str, Any]] = {}

    async def call(tool: str, status: int) -> None:
        args = ["--method", "tools/call", "--tool-name", tool]
        results[tool] = await inspect(target, *args, status=status)

    with trio.fail_after(LIMIT):
        async with serving(transport) as target, trio.open_nursery() as nursery:
            nursery.start_soon(call, "test_simple_text", OK)
            nursery.start_soon(call, "test_error_handling", TOOL_ERROR)
            nursery.start_soon(call, "no_such_tool", TOOL_ERROR)

    assert "error" not in results["test_simple_text"]
    simple = results["test_simple_text"]["result"]
    assert simple["content"] == [{"type": "text", "text": SIMPLE_TEXT}]
    assert simple.get("isError", False) is False
    error = results["test_error_handling"]
    assert error["result"]["isError"] is True
    assert error["result"]["content"][0]["type"] == "text"
    assert error["error"]["code"] == "tool_is_error"
    assert results["no_such_tool"]["error"]["code"] == "tool_not_found"
