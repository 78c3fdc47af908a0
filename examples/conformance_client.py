"""A client for the official MCP conformance suite's client scenarios, on mcptrio's public API.

The suite runs ``python examples/conformance_client.py SERVER_URL`` once per scenario with
``MCP_CONFORMANCE_SCENARIO`` (the scenario's name), ``MCP_CONFORMANCE_CONTEXT`` (JSON:
credentials, keys and tool calls the scenario wants) and
``MCP_CONFORMANCE_PROTOCOL_VERSION`` (the revision to speak: 2026-07-28 is stateless,
older ones use the ``initialize`` handshake). It exits 0 when the scenario's steps ran.

Every ``auth/*`` scenario runs the authorization code flow headlessly (the mock
authorization server approves without a login page), except the extensions that use other
grants: client credentials (``client_secret_basic`` or ``private_key_jwt``), workload
identity (an RFC 7523 JWT bearer assertion), enterprise-managed authorization (an ID-JAG
from the identity provider) and DPoP (the same flow with a proof key).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import trio

from mcptrio import (
    LEGACY_VERSIONS,
    MODERN_VERSIONS,
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    ClientMetadata,
    ClientRegistration,
    DPoPKey,
    HeadlessAuthorization,
    IdJagAssertion,
    JwtBearerGrant,
    OAuthClientAuth,
    open_client,
    open_http_transport,
)
from mcptrio.types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequestFormParams,
    ElicitRequestURLParams,
    ElicitResult,
    Root,
    TextContent,
)

log = logging.getLogger("conformance_client")

CLIENT_METADATA_URL = "https://conformance-test.local/client-metadata.json"
REDIRECT_URI = "http://localhost:3000/callback"
LIMIT = 50.0  # seconds; the suite's own per-scenario limit is larger


def context() -> dict[str, Any]:
    """The scenario's ``MCP_CONFORMANCE_CONTEXT`` (empty when unset)."""
    raw = os.environ.get("MCP_CONFORMANCE_CONTEXT")
    loaded = json.loads(raw) if raw else {}
    if not isinstance(loaded, dict):
        raise SystemExit("MCP_CONFORMANCE_CONTEXT is not a JSON object")
    return loaded


def connection_options() -> dict[str, Any]:
    """``open_client`` options for the revision the suite asks for."""
    version = os.environ.get("MCP_CONFORMANCE_PROTOCOL_VERSION", "")
    if version in MODERN_VERSIONS:
        return {"mode": version}
    if version in LEGACY_VERSIONS:
        return {"mode": "legacy", "protocol_version": version}
    return {"mode": "auto"}


# ----- answers to the server's requests ---------------------------------------------------


async def accept_with_defaults(
    request: ElicitRequestFormParams | ElicitRequestURLParams,
) -> ElicitResult:
    """Accept a form, filling every field from the schema's ``default`` (SEP-1034)."""
    if isinstance(request, ElicitRequestURLParams):
        return ElicitResult(action="accept")
    properties = request.requested_schema.get("properties") or {}
    content = {
        name: field["default"]
        for name, field in properties.items()
        if isinstance(field, dict) and "default" in field
    }
    return ElicitResult(action="accept", content=content)


async def sample(request: CreateMessageRequestParams) -> CreateMessageResult:
    """A canned model answer."""
    return CreateMessageResult(
        role="assistant", content=TextContent(text="sampled answer"), model="conformance-model"
    )


ROOTS = [Root(uri="file:///tmp/conformance", name="conformance")]


# ----- scenario steps -------------------------------------------------------------------

Step = Callable[[Any], Awaitable[None]]

KNOWN_ARGUMENTS: dict[str, dict[str, Any]] = {
    "add_numbers": {"a": 5, "b": 3},
}


async def attempt(what: str, step: Awaitable[Any]) -> Any:
    """Run one step; a failed step is logged and the scenario goes on."""
    try:
        return await step
    except Exception as exc:
        log.info("%s failed: %s: %s", what, type(exc).__name__, exc)
        return None


async def exercise(client: Any, scenario: str, ctx: dict[str, Any]) -> None:
    """List tools and call them, the way each non-auth scenario expects."""
    tools = await client.list_tools()
    calls = ctx.get("toolCalls")
    if isinstance(calls, list):
        for call in calls:
            await attempt(
                f"tools/call {call['name']}",
                client.call_tool(call["name"], call.get("arguments") or {}),
            )
        return
    by_name = {tool.name: tool for tool in tools.tools}
    if "json_schema_echo" in by_name:
        focal = next((tool for tool in tools.tools if tool.name != "json_schema_echo"), None)
        if focal is not None:
            await attempt(
                "tools/call json_schema_echo",
                client.call_tool("json_schema_echo", {"schema": focal.input_schema}),
            )
        return
    if scenario == "json-schema-ref-no-deref":
        return  # listing is the whole scenario: the $ref must not be fetched
    for tool in tools.tools:
        await attempt(
            f"tools/call {tool.name}",
            client.call_tool(tool.name, KNOWN_ARGUMENTS.get(tool.name, {})),
        )
    if scenario == "http-standard-headers":
        resources = await attempt("resources/list", client.list_resources())
        if resources is not None and resources.resources:
            for resource in resources.resources:
                await attempt("resources/read", client.read_resource(resource.uri))
        prompts = await attempt("prompts/list", client.list_prompts())
        if prompts is not None and prompts.prompts:
            for prompt in prompts.prompts:
                await attempt("prompts/get", client.get_prompt(prompt.name, {}))


async def run_plain(url: str, scenario: str) -> None:
    """A scenario without authorization."""
    ctx = context()
    async with (
        open_http_transport(url) as transport,
        open_client(
            transport,
            elicitation_handler=accept_with_defaults,
            sampling_handler=sample,
            roots=ROOTS,
            **connection_options(),
        ) as client,
    ):
        await exercise(client, scenario, ctx)


# ----- authorization --------------------------------------------------------------------


def oauth_for(url: str, scenario: str) -> OAuthClientAuth:
    """The OAuth set-up each ``auth/*`` scenario calls for."""
    ctx = context()
    metadata = ClientMetadata(client_name="mcptrio-conformance", redirect_uris=(REDIRECT_URI,))
    client_id: str | None = ctx.get("client_id")
    secret: str | None = ctx.get("client_secret")
    if scenario == "auth/client-credentials-jwt":
        return OAuthClientAuth(
            url,
            grant=ClientCredentialsGrant(),
            client=ClientRegistration(
                client_id=ctx["client_id"],
                token_endpoint_auth_method="private_key_jwt",
                private_key_pem=ctx["private_key_pem"],
                signing_algorithm=ctx.get("signing_algorithm", "ES256"),
            ),
            client_metadata=metadata,
        )
    if scenario == "auth/client-credentials-basic":
        return OAuthClientAuth(
            url,
            grant=ClientCredentialsGrant(),
            client=ClientRegistration(
                client_id=ctx["client_id"],
                client_secret=secret,
                token_endpoint_auth_method="client_secret_basic",
            ),
            client_metadata=metadata,
        )
    if scenario == "auth/wif-jwt-bearer":
        return OAuthClientAuth(
            url,
            grant=JwtBearerGrant(ctx["valid_jwt"]),
            client=ClientRegistration(
                client_id=ctx["client_id"], token_endpoint_auth_method="none"
            ),
            client_metadata=metadata,
        )
    if scenario == "auth/enterprise-managed-authorization":
        return OAuthClientAuth(
            url,
            grant=JwtBearerGrant(
                IdJagAssertion(
                    idp_token_endpoint=ctx["idp_token_endpoint"],
                    id_token=ctx["idp_id_token"],
                    idp_client_id=ctx.get("idp_client_id"),
                )
            ),
            client=ClientRegistration(client_id=ctx["client_id"], client_secret=secret),
            client_metadata=metadata,
        )
    browser = HeadlessAuthorization()
    preregistered = (
        ClientRegistration(client_id=client_id, client_secret=secret) if client_id else None
    )
    return OAuthClientAuth(
        url,
        grant=AuthorizationCodeGrant(
            redirect_handler=browser.redirect, callback_handler=browser.callback
        ),
        client=preregistered,
        client_metadata=metadata,
        client_metadata_url=CLIENT_METADATA_URL,
        dpop=DPoPKey.generate() if scenario.startswith("auth/dpop") else None,
    )


async def run_auth(url: str, scenario: str) -> None:
    """Connect with OAuth, list the tools and call the first one."""
    auth = oauth_for(url, scenario)
    async with (
        open_http_transport(url, auth=auth) as transport,
        open_client(
            transport, elicitation_handler=accept_with_defaults, **connection_options()
        ) as client,
    ):
        tools = await client.list_tools()
        if tools.tools:
            await attempt("tools/call", client.call_tool(tools.tools[0].name, {}))


async def main(url: str, scenario: str) -> None:
    """Run one scenario against the suite's mock server at ``url``."""
    with trio.fail_after(LIMIT):
        if scenario.startswith("auth/"):
            await run_auth(url, scenario)
        else:
            await run_plain(url, scenario)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if len(sys.argv) < 2:
        raise SystemExit(f"usage: {sys.argv[0]} SERVER_URL")
    try:
        trio.run(main, sys.argv[-1], os.environ.get("MCP_CONFORMANCE_SCENARIO", ""))
    except (Exception, httpx.HTTPError) as error:
        print(f"scenario failed: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
