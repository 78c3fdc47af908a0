"""The 2026-07-28 HTTP header codec and ``x-mcp-header`` resolver, shared by client and server.

Both sides run against the same table: the headers the client builds for a call are exactly
the headers the server accepts for it, nested ``properties`` paths included.
"""

from __future__ import annotations

import base64
import re
from functools import partial
from typing import Any

import httpx
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from mcptrio import HttpConfig, Server, open_client, open_http_transport, serve_http
from mcptrio._protocol.errors import HeaderMismatch
from mcptrio._protocol.http_headers import (
    HeaderPaths,
    check_param_headers,
    decode_header_value,
    encode_header_value,
    mcp_param_headers,
    x_mcp_header_paths,
    x_mcp_header_problem,
)
from mcptrio._server.http_modern import check_modern_headers
from mcptrio._transports.http.exchange import Headers
from mcptrio.types import TextContent

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "region": {"type": "string", "x-mcp-header": "Region"},
        "count": {"type": "integer", "x-mcp-header": "Count"},
        "dry": {"type": "boolean", "x-mcp-header": "Dry"},
        "target": {
            "type": "object",
            "properties": {
                "id": {"type": "integer", "x-mcp-header": "Target-Id"},
                "zone": {
                    "type": "object",
                    "properties": {"name": {"type": "string", "x-mcp-header": "Zone"}},
                },
            },
        },
    },
}

# (arguments, the Mcp-Param headers that mirror them)
CASES: list[tuple[dict[str, Any], dict[str, str]]] = [
    ({}, {}),
    ({"region": "us-west1"}, {"Mcp-Param-Region": "us-west1"}),
    ({"region": " Genève "}, {"Mcp-Param-Region": "=?base64?IEdlbsOodmUg?="}),
    ({"count": 3, "dry": False}, {"Mcp-Param-Count": "3", "Mcp-Param-Dry": "false"}),
    ({"count": 2.0}, {"Mcp-Param-Count": "2"}),
    ({"region": None, "dry": True}, {"Mcp-Param-Dry": "true"}),
    ({"target": {"id": -7}}, {"Mcp-Param-Target-Id": "-7"}),
    (
        {"target": {"id": 1, "zone": {"name": "Zürich"}}},
        {"Mcp-Param-Target-Id": "1", "Mcp-Param-Zone": "=?base64?WsO8cmljaA==?="},
    ),
    ({"target": "not an object"}, {}),
    ({"target": {"zone": {"name": ["a list"]}}}, {}),
]


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def test_nested_properties_paths_resolve_on_both_sides() -> None:
    assert x_mcp_header_problem(SCHEMA) is None
    assert x_mcp_header_paths(SCHEMA) == {
        ("region",): "Region",
        ("count",): "Count",
        ("dry",): "Dry",
        ("target", "id"): "Target-Id",
        ("target", "zone", "name"): "Zone",
    }


@pytest.mark.parametrize(("arguments", "expected"), CASES)
def test_the_client_builds_what_the_server_accepts(
    arguments: dict[str, Any], expected: dict[str, str]
) -> None:
    paths = x_mcp_header_paths(SCHEMA)
    built = mcp_param_headers(paths, arguments)
    assert built == expected
    check_param_headers(paths, arguments, lower(built))


@pytest.mark.parametrize(("arguments", "expected"), [c for c in CASES if c[1]])
def test_the_server_rejects_a_missing_or_changed_header(
    arguments: dict[str, Any], expected: dict[str, str]
) -> None:
    paths = x_mcp_header_paths(SCHEMA)
    for name in expected:
        missing = {k: v for k, v in lower(expected).items() if k != name.lower()}
        with pytest.raises(HeaderMismatch, match="is required"):
            check_param_headers(paths, arguments, missing)
        changed = {**lower(expected), name.lower(): "something-else"}
        with pytest.raises(HeaderMismatch, match="does not match"):
            check_param_headers(paths, arguments, changed)


def test_the_server_rejects_a_header_without_its_argument() -> None:
    paths = x_mcp_header_paths(SCHEMA)
    with pytest.raises(HeaderMismatch, match=re.escape("present but argument 'target.id' is not")):
        check_param_headers(paths, {"target": {}}, {"mcp-param-target-id": "4"})


def test_the_server_compares_integers_numerically() -> None:
    paths: HeaderPaths = {("n",): "N"}
    check_param_headers(paths, {"n": 7}, {"mcp-param-n": "007"})
    with pytest.raises(HeaderMismatch):
        check_param_headers(paths, {"n": 7}, {"mcp-param-n": "seven"})


def test_a_server_checks_nested_headers_of_its_own_tools() -> None:
    server = Server("headers")

    @server.tool(input_schema=SCHEMA)
    async def deploy(**arguments: Any) -> str:
        return "ok"

    arguments = {"target": {"id": 5, "zone": {"name": "eu"}}}
    params = {"name": "deploy", "arguments": arguments}
    base = {
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
        "Mcp-Name": "deploy",
    }
    good = {**base, **mcp_param_headers(x_mcp_header_paths(SCHEMA), arguments)}
    check_modern_headers(Headers(good.items()), "tools/call", params, server)
    bad = {**good, "Mcp-Param-Zone": "us"}
    with pytest.raises(HeaderMismatch, match=re.escape("'target.zone.name'")):
        check_modern_headers(Headers(bad.items()), "tools/call", params, server)


@given(st.text())
def test_encoding_round_trips_and_is_always_a_safe_header_value(value: str) -> None:
    encoded = encode_header_value(value)
    assert all(" " <= c <= "~" for c in encoded)
    assert encoded == encoded.strip(" ")
    assert decode_header_value(encoded) == value


@given(st.text(min_size=1))
def test_any_string_argument_survives_client_and_server(value: str) -> None:
    paths = x_mcp_header_paths(SCHEMA)
    arguments = {"target": {"zone": {"name": value}}}
    built = mcp_param_headers(paths, arguments)
    check_param_headers(paths, arguments, lower(built))


@given(st.binary(min_size=1))
def test_only_the_canonical_base64_form_decodes(data: bytes) -> None:
    canonical = base64.b64encode(data).decode("ascii")
    stripped = canonical.rstrip("=")
    if stripped != canonical:
        with pytest.raises(HeaderMismatch):
            decode_header_value(f"=?base64?{stripped}?=")


async def test_nested_headers_over_http_between_our_client_and_server() -> None:
    """Our client mirrors a nested argument and our server checks it: a call with the
    right header runs, a raw POST with a wrong one is refused with -32020."""
    server = Server("nested-headers")

    @server.tool(input_schema=SCHEMA)
    async def deploy(**arguments: Any) -> str:
        return f"zone {arguments['target']['zone']['name']}"

    arguments = {"target": {"id": 5, "zone": {"name": "Zürich"}}}
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            info = await nursery.start(partial(serve_http, server, HttpConfig(port=0)))
            async with (
                open_http_transport(info.url) as transport,
                open_client(transport, mode="2026-07-28") as client,
            ):
                assert [tool.name for tool in await client.all_tools()] == ["deploy"]
                assert transport.tool_headers["deploy"] == x_mcp_header_paths(SCHEMA)
                result = await client.call_tool("deploy", arguments)
                assert result.content == [TextContent(text="zone Zürich")]
            meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}
            body = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "deploy", "arguments": arguments, "_meta": meta},
            }
            headers = {
                "accept": "application/json, text/event-stream",
                "mcp-protocol-version": "2026-07-28",
                "mcp-method": "tools/call",
                "mcp-name": "deploy",
                "mcp-param-target-id": "5",
                "mcp-param-zone": "Zurich",
            }
            async with httpx.AsyncClient() as http:
                refused = await http.post(info.url, headers=headers, json=body)
            nursery.cancel_scope.cancel()
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == -32020
    assert "target.zone.name" in refused.json()["error"]["message"]
