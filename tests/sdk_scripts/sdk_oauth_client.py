"""The official SDK's OAuth client (mcp==2.3.0) against a protected MCP server, headless.

Runs inside the SDK's virtualenv (see ``tests/sdk.py``) with the SDK's public API only:

    sdk_oauth_client.py --mode legacy|2026-07-28 --url URL --tool NAME

``OAuthClientProvider`` discovers the Protected Resource Metadata from the server's 401,
the authorization server from that, registers a client (RFC 7591), runs the authorization-code
flow with PKCE (the authorize endpoint is fetched directly and approves at once, so no browser
is involved), and retries with the token. The script then lists the tools and calls ``NAME``.
Output is one JSON object on stdout:

    {"protocol_version": "...", "tools": [...], "result": {...}, "token_requests": N}
"""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

REDIRECT_URI = "http://127.0.0.1:33418/callback"


class MemoryStorage:
    """Tokens and client registration for the length of one run."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class Headless:
    """A user who approves at once: follow the authorize URL to its redirect and read it."""

    def __init__(self) -> None:
        self.location: str | None = None
        self.authorizations = 0

    async def redirect(self, authorization_url: str) -> None:
        self.authorizations += 1
        async with httpx2.AsyncClient(follow_redirects=False) as http:
            response = await http.get(authorization_url)
        if response.status_code not in (302, 303):
            raise RuntimeError(f"authorize answered {response.status_code}: {response.text}")
        self.location = response.headers["location"]

    async def callback(self) -> AuthorizationCodeResult:
        assert self.location is not None
        query = parse_qs(urlsplit(self.location).query)
        return AuthorizationCodeResult(
            code=query["code"][0],
            state=query.get("state", [None])[0],
            iss=query.get("iss", [None])[0],
        )


async def run(mode: str, url: str, tool: str) -> dict[str, Any]:
    user = Headless()
    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            redirect_uris=[REDIRECT_URI],
            client_name="sdk oauth interop",
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=user.redirect,
        callback_handler=user.callback,
    )
    async with httpx2.AsyncClient(auth=provider, timeout=30) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode=mode) as client:
            tools = [t.name for t in (await client.list_tools()).tools]
            result = await client.call_tool(tool, {})
            return {
                "protocol_version": client.protocol_version,
                "tools": tools,
                "result": result.model_dump(by_alias=True, mode="json", exclude_none=True),
                "authorizations": user.authorizations,
                "scope": storage.tokens.scope if storage.tokens else None,
            }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", default="legacy")
    parser.add_argument("--url", required=True)
    parser.add_argument("--tool", required=True)
    args = parser.parse_args()
    report = anyio.run(run, args.mode, args.url, args.tool)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
