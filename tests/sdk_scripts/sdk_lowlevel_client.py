"""Drive a Streamable HTTP server with the official SDK's low-level client (mcp==2.3.0).

Runs inside the SDK's own virtualenv (see ``tests/sdk.py``) and uses the transport and session
layers directly, below ``Client``: ``streamable_http_client`` plus ``ClientSession``.

    sdk_lowlevel_client.py --url URL

Steps, in order (each needs the ones before it):

- ``initialize``: the legacy handshake;
- ``tools_list``: one ``tools/list`` page;
- ``progress``: ``test_tool_with_progress`` with a progress callback;
- ``reconnection``: ``test_reconnection``, whose server closes the POST's SSE stream after the
  priming event; the transport must resume it with ``Last-Event-ID`` and deliver the result.
  The call goes through ``send_request`` with resumption metadata, so the event ids the
  transport saw are reported too.

Every HTTP request the transport makes is logged through ``httpx2`` event hooks (method,
JSON-RPC method of a POST, ``Last-Event-ID``, status, content type), so the caller can see the
resumption on the wire. Output is one JSON object on stdout:

    {"protocol_version": "...", "server": {...}, "steps": {"<step>": {...}}, "http": [...]}

A step that fails records ``{"error": "..."}`` and ends the run (later steps need its session).
Exit status 0 means the report was printed; anything else means the script could not run, and
stderr says why.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Callable
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.message import ClientMessageMetadata

STEP_TIMEOUT = 15.0
"""Seconds one step may take before it is reported as failed."""


class HttpLog:
    """The HTTP requests a client made, in order, with their response status."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self._by_request: dict[int, dict[str, Any]] = {}

    async def on_request(self, request: httpx2.Request) -> None:
        entry: dict[str, Any] = {
            "method": request.method,
            "rpc": rpc_method(request),
            "last_event_id": request.headers.get("last-event-id"),
            "status": None,
            "content_type": None,
        }
        self.entries.append(entry)
        self._by_request[id(request)] = entry

    async def on_response(self, response: httpx2.Response) -> None:
        entry = self._by_request.pop(id(response.request), None)
        if entry is not None:
            entry["status"] = response.status_code
            entry["content_type"] = response.headers.get("content-type", "").split(";")[0]


def rpc_method(request: httpx2.Request) -> str | None:
    """The JSON-RPC method a POST carries ("response" for an answer), else None."""
    if request.method != "POST":
        return None
    try:
        body = json.loads(request.content)
    except (ValueError, httpx2.RequestNotRead):
        return None
    if isinstance(body, dict):
        return str(body.get("method", "response"))
    return "batch"


def dump(model: Any) -> Any:
    """A model (or list of models) as its JSON wire form, absent fields left out."""
    if isinstance(model, list):
        return [dump(item) for item in model]
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


async def step_initialize(session: ClientSession, report: dict[str, Any]) -> dict[str, Any]:
    result = await session.initialize()
    report["protocol_version"] = result.protocol_version
    report["server"] = {"name": result.server_info.name, "version": result.server_info.version}
    capabilities = result.capabilities
    return {"tools": capabilities.tools is not None, "logging": capabilities.logging is not None}


async def step_tools_list(session: ClientSession, report: dict[str, Any]) -> dict[str, Any]:
    page = await session.list_tools()
    return {"names": [tool.name for tool in page.tools], "next_cursor": page.next_cursor}


async def step_progress(session: ClientSession, report: dict[str, Any]) -> dict[str, Any]:
    seen: list[list[Any]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append([progress, total, message])

    result = await session.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)
    return {"is_error": bool(result.is_error), "content": dump(result.content), "progress": seen}


async def step_reconnection(session: ClientSession, report: dict[str, Any]) -> dict[str, Any]:
    tokens: list[str] = []

    async def on_token(token: str) -> None:
        tokens.append(token)

    request = types.CallToolRequest(
        params=types.CallToolRequestParams(name="test_reconnection", arguments={})
    )
    metadata = ClientMessageMetadata(on_resumption_token_update=on_token)
    result = await session.send_request(request, types.CallToolResult, metadata=metadata)
    return {
        "is_error": bool(result.is_error),
        "content": dump(result.content),
        "resumption_tokens": tokens,
    }


STEPS = (
    ("initialize", step_initialize),
    ("tools_list", step_tools_list),
    ("progress", step_progress),
    ("reconnection", step_reconnection),
)


async def run(url: str) -> None:
    log = HttpLog()
    report: dict[str, Any] = {"protocol_version": None, "server": None, "steps": {}}
    hooks: dict[str, list[Callable[..., Any]]] = {
        "request": [log.on_request],
        "response": [log.on_response],
    }
    # The SDK's default timeouts, plus the hooks that log the wire.
    timeout = httpx2.Timeout(30.0, read=300.0)
    try:
        async with (
            httpx2.AsyncClient(timeout=timeout, event_hooks=hooks) as http,
            streamable_http_client(url, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            for name, step in STEPS:
                try:
                    with anyio.fail_after(STEP_TIMEOUT):
                        report["steps"][name] = await step(session, report)
                except TimeoutError:
                    report["steps"][name] = {"error": f"timed out ({STEP_TIMEOUT} s)"}
                    break
                except Exception as error:
                    traceback.print_exc()
                    report["steps"][name] = {"error": f"{type(error).__name__}: {error}"}
                    break
    except Exception as error:
        traceback.print_exc()
        if not report["steps"]:
            print(f"sdk_lowlevel_client: could not connect to {url}: {error!r}", file=sys.stderr)
            raise SystemExit(2) from None
        # The steps ran; an unclean shutdown is one more finding, not a crash.
        report["disconnect_error"] = repr(error)
    report["http"] = log.entries
    print(json.dumps(report), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="sdk_lowlevel_client.py",
        description="Drive a Streamable HTTP MCP server with the SDK's low-level client.",
    )
    parser.add_argument("--url", required=True, help="Streamable HTTP endpoint of the server")
    args = parser.parse_args()
    anyio.run(run, args.url)


if __name__ == "__main__":
    main()
