"""The OAuth resource server against a real authorization server (``tests/auth_server.py``).

Tokens come from the Authlib server (minted directly, or through the authorization-code flow
with PKCE); the MCP server runs on both HTTP adapters over real sockets. The official SDK's
OAuth client and our own (``OAuthClientAuth``) run the whole flow against both: discovery,
registration or a client ID metadata document, the grant, refresh and step-up.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import secrets
import ssl
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import attrs
import httpx
import orjson
import pytest
import trio
import trio.testing
import trustme
from auth_server import SCOPES, AuthServer
from flask import Flask, jsonify
from hypothesis import given
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey
from node_tools import mcptrio_http_command, open_http_server
from sdk import SCRIPTS_DIR
from werkzeug.serving import make_server as werkzeug_make_server

from mcptrio import (
    AuthConfig,
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    ClientMetadata,
    ClientRegistration,
    FileTokenStorage,
    HeadlessAuthorization,
    HttpConfig,
    JwtValidator,
    MCPError,
    OAuthClientAuth,
    OAuthError,
    Principal,
    Server,
    current_request,
    open_client,
    open_http_transport,
    serve_http,
)
from mcptrio._auth.resource_server import (
    InsufficientScope,
    InvalidToken,
    ResourceServer,
    build_challenge,
)
from mcptrio._ops.config import ConfigError, load_config
from mcptrio._protocol.jsonrpc import Request
from mcptrio._server.http_endpoint import HttpEndpoint
from mcptrio._server.modern import serve_modern
from mcptrio._transports.http.exchange import Headers

ADAPTERS = ("h11", "hypercorn")
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}
ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}


def make_server() -> Server:
    server = Server("guarded")

    @server.tool()
    def whoami() -> str:
        """The caller's subject and scopes."""
        principal = current_request().principal
        assert principal is not None
        return f"{principal.subject} {' '.join(sorted(principal.scopes))}"

    @server.tool()
    async def confirm() -> str:
        """Asks the user first (2026-07-28: through an input_required result)."""
        answer = await current_request().elicit("Sure?", {"type": "object", "properties": {}})
        return answer.action

    @server.tool(scopes=["mcp:admin"])
    def reset() -> str:
        """Needs the admin scope."""
        return "reset done"

    @server.resource("secret://plans", scopes=["mcp:admin"])
    def plans() -> str:
        return "the plans"

    @server.resource("notes://{name}", scopes=["mcp:write"])
    def note(name: str) -> str:
        return f"note {name}"

    @server.resource("public://readme")
    def readme() -> str:
        return "hello"

    @server.prompt(scopes=["mcp:admin"])
    def audit() -> str:
        return "audit everything"

    return server


@asynccontextmanager
async def serving(
    auth_server: AuthServer,
    adapter: str = "h11",
    *,
    json_response: bool = False,
    **auth_options: Any,
) -> AsyncIterator[str]:
    options: dict[str, Any] = {
        "authorization_servers": (auth_server.issuer,),
        "scopes_supported": SCOPES,
        "jwks_refresh_interval": 0.0,
    }
    options.update(auth_options)
    config = HttpConfig(
        port=0,
        server=adapter,  # type: ignore[arg-type]
        json_response=json_response,
        auth=AuthConfig(**options),
    )
    async with trio.open_nursery() as nursery:
        info = await nursery.start(serve_http, make_server(), config)
        auth_server.default_audience = info.url
        yield info.url
        nursery.cancel_scope.cancel()


def bearer(token: str) -> dict[str, str]:
    return {**ACCEPT, "authorization": f"Bearer {token}"}


def params_of(header: str) -> dict[str, str]:
    """The auth-params of a ``Bearer`` challenge (RFC 7235 quoted strings)."""
    assert header.startswith("Bearer ")
    found = re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', header)
    return {k: re.sub(r"\\(.)", r"\1", v) for k, v in found}


def prm_url(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/.well-known/oauth-protected-resource{parts.path}"


async def initialize(http: httpx.AsyncClient, url: str, token: str) -> httpx.Response:
    return await http.post(url, content=orjson.dumps(INIT), headers=bearer(token))


def sse_json(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC answer in a response (a JSON body or the last SSE data line)."""
    if response.headers["content-type"].startswith("application/json"):
        return orjson.loads(response.content)  # type: ignore[no-any-return]
    data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
    return orjson.loads([d for d in data if d][-1])  # type: ignore[no-any-return]


# ---- discovery and challenges -------------------------------------------------------------------


@pytest.mark.parametrize("adapter", ADAPTERS)
async def test_metadata_is_public_and_names_the_authorization_server(
    auth_server: AuthServer, adapter: str
) -> None:
    async with serving(auth_server, adapter) as url, httpx.AsyncClient() as http:
        for where in (prm_url(url), prm_url(url).removesuffix("/mcp")):
            doc = (await http.get(where)).json()
            assert doc == {
                "resource": url,
                "authorization_servers": [auth_server.issuer],
                "bearer_methods_supported": ["header"],
                "scopes_supported": list(SCOPES),
            }
        base = url.removesuffix("/mcp")
        assert (await http.get(f"{base}/health")).status_code == 200
        assert (await http.get(f"{base}/ready")).status_code == 200
        assert (await http.get(f"{base}/metrics")).status_code == 200


@pytest.mark.parametrize("adapter", ADAPTERS)
async def test_no_token_is_401_pointing_at_the_metadata(
    auth_server: AuthServer, adapter: str
) -> None:
    async with serving(auth_server, adapter) as url, httpx.AsyncClient() as http:
        for method, kwargs in (
            ("POST", {"content": orjson.dumps(INIT), "headers": ACCEPT}),
            ("GET", {"headers": {"accept": "text/event-stream", "mcp-session-id": "x"}}),
            ("DELETE", {"headers": {"mcp-session-id": "x"}}),
        ):
            response = await http.request(method, url, **kwargs)
            assert response.status_code == 401, method
            challenge = params_of(response.headers["www-authenticate"])
            assert challenge == {"resource_metadata": prm_url(url)}
        base = url.removesuffix("/mcp")
        assert (await http.get(f"{base}/sse")).status_code == 401
        basic = {**ACCEPT, "authorization": "Basic dXNlcjpwYXNz"}
        response = await http.post(url, content=orjson.dumps(INIT), headers=basic)
        assert response.status_code == 401


def _forged_claims(auth: AuthServer, url: str) -> dict[str, str]:
    other_key = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
    hs_key = {"kty": "oct", "k": base64.urlsafe_b64encode(b"k" * 32).decode().rstrip("=")}
    from joserfc.jwk import OctKey

    hs256 = jwt.encode(
        {"alg": "HS256", "kid": "rsa-1"},
        auth.valid_claims(aud=url),
        OctKey.import_key(hs_key),
        algorithms=["HS256"],
    )
    return {
        "expired": auth.mint(audience=url, expires_in=-3600),
        "not yet valid": auth.mint(audience=url, not_before=2**31),
        "wrong audience": auth.mint(audience="http://127.0.0.1:1/other"),
        "no audience": auth.mint(audience=[]),
        "wrong issuer": auth.mint(audience=url, issuer="http://evil.example"),
        "bad signature": auth.mint(audience=url, key=other_key),
        "alg none": auth.unsigned(auth.valid_claims(aud=url)),
        "hs256 with a guessable secret": hs256,
        "not a jwt": "not-a-jwt",
        "truncated": auth.mint(audience=url)[:-10],
    }


@pytest.mark.parametrize("adapter", ADAPTERS)
async def test_bad_tokens_are_refused_with_invalid_token(
    auth_server: AuthServer, adapter: str
) -> None:
    async with serving(auth_server, adapter) as url, httpx.AsyncClient() as http:
        for kind, token in _forged_claims(auth_server, url).items():
            response = await initialize(http, url, token)
            assert response.status_code == 401, kind
            challenge = params_of(response.headers["www-authenticate"])
            assert challenge["error"] == "invalid_token", kind
            assert challenge["resource_metadata"] == prm_url(url)
            assert token not in response.text
        good = await initialize(http, url, auth_server.mint(audience=url))
        assert good.status_code == 200
        ec = await initialize(http, url, auth_server.mint(audience=url, key=auth_server.ec_key))
        assert ec.status_code == 200


# ---- principals, sessions and scopes ------------------------------------------------------------


@pytest.mark.parametrize("json_response", [False, True], ids=["sse", "json"])
@pytest.mark.parametrize("adapter", ADAPTERS)
async def test_a_session_belongs_to_the_principal_that_created_it(
    auth_server: AuthServer, adapter: str, json_response: bool
) -> None:
    served = serving(auth_server, adapter, json_response=json_response)
    async with served as url, httpx.AsyncClient() as http:
        alice = auth_server.mint(subject="alice", audience=url)
        bob = auth_server.mint(subject="bob", audience=url)
        created = await initialize(http, url, alice)
        session_id = created.headers["mcp-session-id"]
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "whoami"}}
        for token, status in ((bob, 404), (alice, 200)):
            headers = {**bearer(token), "mcp-session-id": session_id}
            response = await http.post(url, content=orjson.dumps(call), headers=headers)
            assert response.status_code == status
        assert sse_json(response)["result"]["content"][0]["text"] == "alice mcp:read"
        # A refreshed token of the same principal keeps the session, with its new scopes.
        wider = auth_server.mint(subject="alice", audience=url, scopes=["mcp:read", "mcp:admin"])
        headers = {**bearer(wider), "mcp-session-id": session_id}
        response = await http.post(url, content=orjson.dumps(call), headers=headers)
        assert sse_json(response)["result"]["content"][0]["text"] == "alice mcp:admin mcp:read"
        for method in ("GET", "DELETE"):
            headers = {
                "accept": "text/event-stream",
                "authorization": f"Bearer {bob}",
                "mcp-session-id": session_id,
            }
            assert (await http.request(method, url, headers=headers)).status_code == 404


async def test_the_2024_sse_transport_binds_its_session_too(auth_server: AuthServer) -> None:
    async with serving(auth_server) as url, httpx.AsyncClient() as http:
        base = url.removesuffix("/mcp")
        alice = auth_server.mint(subject="alice", audience=url)
        bob = auth_server.mint(subject="bob", audience=url)
        headers = {"accept": "text/event-stream", "authorization": f"Bearer {alice}"}
        async with http.stream("GET", f"{base}/sse", headers=headers) as stream:
            lines = stream.aiter_lines()
            endpoint = ""
            async for line in lines:
                if line.startswith("data:"):
                    endpoint = line[5:].strip()
                    break
            post_url = f"{base}{endpoint}"
            as_bob = await http.post(post_url, content=orjson.dumps(INIT), headers=bearer(bob))
            assert as_bob.status_code == 404
            as_alice = await http.post(post_url, content=orjson.dumps(INIT), headers=bearer(alice))
            assert as_alice.status_code == 202
            async for line in lines:
                if line.startswith("data:"):
                    assert orjson.loads(line[5:])["id"] == 1
                    break


@pytest.mark.parametrize("adapter", ADAPTERS)
async def test_scope_gated_features_are_hidden_and_refused(
    auth_server: AuthServer, adapter: str
) -> None:
    async with serving(auth_server, adapter) as url:
        reader = auth_server.mint(audience=url, scopes=["mcp:read"])
        async with (
            open_http_transport(url, headers={"authorization": f"Bearer {reader}"}) as transport,
            open_client(transport) as client,
        ):
            assert [t.name for t in await client.all_tools()] == ["whoami", "confirm"]
            assert [r.uri for r in (await client.list_resources()).resources] == ["public://readme"]
            assert (await client.list_resource_templates()).resource_templates == []
            assert (await client.list_prompts()).prompts == []
        admin = auth_server.mint(audience=url, scopes=["mcp:read", "mcp:admin"])
        async with (
            open_http_transport(url, headers={"authorization": f"Bearer {admin}"}) as transport,
            open_client(transport) as client,
        ):
            assert {t.name for t in await client.all_tools()} == {"whoami", "confirm", "reset"}
            assert [p.name for p in (await client.list_prompts()).prompts] == ["audit"]
            result = await client.call_tool("reset")
            assert result.content[0].text == "reset done"  # type: ignore[union-attr]

        async with httpx.AsyncClient() as http:
            session_id = (await initialize(http, url, reader)).headers["mcp-session-id"]
            for method, params, needed in (
                ("tools/call", {"name": "reset"}, "mcp:admin"),
                ("resources/read", {"uri": "secret://plans"}, "mcp:admin"),
                ("resources/read", {"uri": "notes://today"}, "mcp:write"),
                ("prompts/get", {"name": "audit"}, "mcp:admin"),
                ("resources/subscribe", {"uri": "secret://plans"}, "mcp:admin"),
            ):
                body = {"jsonrpc": "2.0", "id": 3, "method": method, "params": params}
                for extra_params, headers in (
                    ({}, {**bearer(reader), "mcp-session-id": session_id}),
                    (
                        {"_meta": MODERN_META},
                        {**bearer(reader), "mcp-protocol-version": "2026-07-28"},
                    ),
                ):
                    body["params"] = {**params, **extra_params}
                    response = await http.post(url, content=orjson.dumps(body), headers=headers)
                    assert response.status_code == 403, (method, params)
                    challenge = params_of(response.headers["www-authenticate"])
                    assert challenge["error"] == "insufficient_scope"
                    assert challenge["scope"] == needed
                    assert challenge["resource_metadata"] == prm_url(url)
                    assert needed in challenge["error_description"]
                    error = response.json()
                    assert error["id"] == 3
                    assert error["error"]["code"] == -32003


async def test_hiding_can_be_turned_off(auth_server: AuthServer) -> None:
    async with serving(auth_server, hide_unauthorized=False) as url:
        reader = auth_server.mint(audience=url, scopes=["mcp:read"])
        async with (
            open_http_transport(url, headers={"authorization": f"Bearer {reader}"}) as transport,
            open_client(transport, mode="2026-07-28") as client,
        ):
            assert {t.name for t in await client.all_tools()} == {"whoami", "confirm", "reset"}


async def test_required_scopes_apply_to_every_request(auth_server: AuthServer) -> None:
    required = serving(auth_server, required_scopes=("mcp:read",))
    async with required as url, httpx.AsyncClient() as http:
        token = auth_server.mint(audience=url, scopes=["mcp:write"])
        response = await initialize(http, url, token)
        assert response.status_code == 403
        challenge = params_of(response.headers["www-authenticate"])
        assert challenge["error"] == "insufficient_scope"
        assert challenge["scope"] == "mcp:read"
        missing = await http.post(url, content=orjson.dumps(INIT), headers=ACCEPT)
        assert params_of(missing.headers["www-authenticate"])["scope"] == "mcp:read"


async def test_request_state_belongs_to_its_principal(auth_server: AuthServer) -> None:
    async with serving(auth_server) as url, httpx.AsyncClient() as http:
        meta = {
            **MODERN_META,
            "io.modelcontextprotocol/clientCapabilities": {"elicitation": {"form": {}}},
        }
        headers = {
            "mcp-protocol-version": "2026-07-28",
            "mcp-method": "tools/call",
            "mcp-name": "confirm",
        }

        async def call(token: str, **params: Any) -> dict[str, Any]:
            body = {
                "jsonrpc": "2.0",
                "id": 7,
                "method": "tools/call",
                "params": {"name": "confirm", "arguments": {}, "_meta": meta, **params},
            }
            response = await http.post(
                url, content=orjson.dumps(body), headers={**bearer(token), **headers}
            )
            answer = sse_json(response)
            # 2026-07-28 errors also set the HTTP status (400 for invalid params).
            assert response.status_code == (400 if "error" in answer else 200), response.text
            return answer

        alice = auth_server.mint(subject="alice", audience=url)
        bob = auth_server.mint(subject="bob", audience=url)
        first = (await call(alice))["result"]
        assert first["resultType"] == "input_required"
        [key] = first["inputRequests"]
        retry = {
            "requestState": first["requestState"],
            "inputResponses": {key: {"action": "accept", "content": {}}},
        }
        stolen = await call(bob, **retry)
        assert stolen["error"]["code"] == -32602
        assert "requestState was rejected" in stolen["error"]["message"]
        done = (await call(alice, **retry))["result"]
        assert done["content"][0]["text"] == "accept"


async def test_principal_reaches_modern_requests(auth_server: AuthServer) -> None:
    async with serving(auth_server, "hypercorn") as url:
        token = auth_server.mint(subject="carol", audience=url, scopes=["mcp:read", "mcp:write"])
        async with (
            open_http_transport(url, headers={"authorization": f"Bearer {token}"}) as transport,
            open_client(transport, mode="2026-07-28") as client,
        ):
            result = await client.call_tool("whoami")
            assert result.content[0].text == "carol mcp:read mcp:write"  # type: ignore[union-attr]
            read = await client.read_resource("notes://today")
            assert read.contents[0].text == "note today"  # type: ignore[union-attr]


# ---- the authorization-code flow, rotation, introspection ----------------------------------------


async def authorization_code_flow(
    http: httpx.AsyncClient, auth: AuthServer, resource: str, scope: str
) -> dict[str, Any]:
    """Register a public client, run the PKCE flow through the headless authorize endpoint."""
    redirect = "http://127.0.0.1:9/callback"
    registered = await http.post(
        auth.registration_endpoint,
        json={
            "redirect_uris": [redirect],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "client_name": "flow test",
            "scope": scope,
        },
    )
    assert registered.status_code == 201, registered.text
    client_id = registered.json()["client_id"]
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    state = secrets.token_urlsafe(8)
    authorize = await http.get(
        auth.authorization_endpoint,
        params={
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect,
            "scope": scope,
            "state": state,
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
            "resource": resource,
        },
    )
    assert authorize.status_code == 302, authorize.text
    query = parse_qs(urlsplit(authorize.headers["location"]).query)
    assert query["state"] == [state]
    assert query["iss"] == [auth.issuer]  # RFC 9207
    token = await http.post(
        auth.token_endpoint,
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": redirect,
            "client_id": client_id,
            "code_verifier": verifier,
            "resource": resource,
        },
    )
    assert token.status_code == 200, token.text
    return {"client_id": client_id, **token.json()}


async def test_tokens_from_the_code_flow_and_refresh_are_accepted(auth_server: AuthServer) -> None:
    async with serving(auth_server) as url, httpx.AsyncClient() as http:
        tokens = await authorization_code_flow(http, auth_server, url, "mcp:read mcp:admin")
        assert jwt.decode(tokens["access_token"], auth_server.rsa_key).claims["aud"] == url
        async with (
            open_http_transport(
                url, headers={"authorization": f"Bearer {tokens['access_token']}"}
            ) as transport,
            open_client(transport) as client,
        ):
            assert (await client.call_tool("reset")).content[0].text == "reset done"  # type: ignore[union-attr]
        refreshed = await http.post(
            auth_server.token_endpoint,
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "client_id": tokens["client_id"],
                "resource": url,
            },
        )
        assert refreshed.status_code == 200, refreshed.text
        response = await initialize(http, url, refreshed.json()["access_token"])
        assert response.status_code == 200


async def test_client_credentials_tokens_name_the_client(auth_server: AuthServer) -> None:
    async with serving(auth_server) as url, httpx.AsyncClient() as http:
        issued = await http.post(
            auth_server.token_endpoint,
            data={"grant_type": "client_credentials", "scope": "mcp:read", "resource": url},
            auth=(auth_server.client_id, auth_server.client_secret),
        )
        assert issued.status_code == 200, issued.text
        token = issued.json()["access_token"]
        async with (
            open_http_transport(url, headers={"authorization": f"Bearer {token}"}) as transport,
            open_client(transport) as client,
        ):
            who = await client.call_tool("whoami")
        assert who.content[0].text == f"{auth_server.client_id} mcp:read"  # type: ignore[union-attr]


async def test_jwks_rotation_is_picked_up_and_refetches_are_rate_limited(
    auth_server: AuthServer, mock_clock: trio.testing.MockClock
) -> None:
    # A clock that only moves when told to (real sockets run under it, so no autojump).
    validator = JwtValidator(issuer=auth_server.issuer, refresh_interval=30.0)
    audience = ["http://mcp.test/mcp"]
    try:
        first = auth_server.mint(audience=audience[0])
        assert (await validator.validate(first, audiences=audience)).subject == "alice"
        assert auth_server.jwks_fetches == 1
        assert validator.jwks_uri == auth_server.jwks_uri  # found through RFC 8414 metadata
        mock_clock.jump(31)
        kid = auth_server.rotate_keys()
        rotated = auth_server.mint(audience=audience[0], subject="after-rotation")
        principal = await validator.validate(rotated, audiences=audience)
        assert principal.subject == "after-rotation"
        assert auth_server.jwks_fetches == 2
        # Unknown key ids right after a fetch do not reach the authorization server again.
        stranger = RSAKey.generate_key(2048, parameters={"kid": "who-knows"})
        for _ in range(5):
            with pytest.raises(InvalidToken):
                await validator.validate(
                    auth_server.mint(audience=audience[0], key=stranger), audiences=audience
                )
        assert auth_server.jwks_fetches == 2
        # The old key is gone from the JWKS: its tokens no longer pass.
        with pytest.raises(InvalidToken):
            await validator.validate(first, audiences=audience)
        assert kid
    finally:
        await validator.aclose()


async def test_introspection_validates_opaque_tokens(auth_server: AuthServer) -> None:
    async with (
        serving(
            auth_server,
            token_validation="introspection",
            introspection_endpoint=auth_server.introspection_endpoint,
            introspection_client_id=auth_server.client_id,
            introspection_client_secret=auth_server.client_secret,
        ) as url,
        httpx.AsyncClient() as http,
    ):
        active = auth_server.issue_opaque(subject="dave", audience=url)
        assert (await initialize(http, url, active)).status_code == 200
        for token in (
            auth_server.issue_opaque(audience=url, active=False),
            auth_server.issue_opaque(audience="http://127.0.0.1:1/other"),
            auth_server.issue_opaque(audience=url, expires_in=-3600),
            "never-issued",
        ):
            response = await initialize(http, url, token)
            assert response.status_code == 401
            assert params_of(response.headers["www-authenticate"])["error"] == "invalid_token"
        assert auth_server.introspections >= 5


# ---- configuration and challenge encoding -------------------------------------------------------


def test_auth_config_from_toml_and_environment(tmp_path: Any) -> None:
    path = tmp_path / "mcptrio.toml"
    path.write_text(
        '[http.auth]\nauthorization_servers = ["https://as.example"]\n'
        'scopes_supported = ["mcp:read"]\nalgorithms = ["ES256"]\n'
    )
    env = {"MCPTRIO_HTTP__AUTH__RESOURCE": "https://mcp.example/mcp"}
    auth = load_config(path=path, env=env).http.auth
    assert auth is not None
    assert auth.authorization_servers == ("https://as.example",)
    assert auth.resource == "https://mcp.example/mcp"
    assert auth.algorithms == ("ES256",)
    for bad in ('algorithms = ["none"]', 'algorithms = ["HS256"]', 'token_validation = "x"'):
        path.write_text(f'[http.auth]\nauthorization_servers = ["https://as.example"]\n{bad}\n')
        with pytest.raises(ConfigError):
            load_config(path=path, env={})
    with pytest.raises(ConfigError, match="authorization_servers"):
        AuthConfig()
    with pytest.raises(ConfigError, match="offline_access"):
        AuthConfig(authorization_servers=("https://as",), scopes_supported=("offline_access",))
    with pytest.raises(ConfigError, match="required_scopes"):
        AuthConfig(authorization_servers=("https://as",), required_scopes=("a b",))
    with pytest.raises(ConfigError, match="introspection_endpoint"):
        AuthConfig(authorization_servers=("https://as",), token_validation="introspection")
    with pytest.raises(ValueError, match="none"):
        JwtValidator(issuer="https://as", algorithms=("none",))


def test_metadata_url_is_path_specific() -> None:
    assert (
        ResourceServer.metadata_url("https://mcp.example.com/mcp")
        == "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
    )
    assert (
        ResourceServer.metadata_url("https://mcp.example.com")
        == "https://mcp.example.com/.well-known/oauth-protected-resource"
    )


@given(
    description=st.text(max_size=80),
    scopes=st.lists(st.from_regex(r"[!#-\[\]-~]{1,12}", fullmatch=True), max_size=4),
    error=st.sampled_from([None, "invalid_token", "insufficient_scope"]),
)
def test_challenges_are_well_formed_headers(
    description: str, scopes: list[str], error: str | None
) -> None:
    challenge = build_challenge(
        status=401,
        metadata_url="https://mcp.example/.well-known/oauth-protected-resource/mcp",
        error=error,
        description=description,
        scopes=scopes,
    )
    header = challenge.www_authenticate
    header.encode("latin-1")
    assert all(32 <= ord(c) < 127 for c in header)
    parsed = params_of(header)
    assert parsed["resource_metadata"].endswith("/oauth-protected-resource/mcp")
    assert set(parsed.get("scope", "").split()) == set(scopes)
    assert parsed.get("error") == error
    kept = "".join(c for c in description if 32 <= ord(c) < 127)
    assert parsed["error_description"] == kept


def test_principal_is_small_and_hashable() -> None:
    a = Principal(subject="alice", scopes=["x", "y"], issuer="https://as", claims={"sub": "alice"})
    b = Principal(subject="alice", scopes={"y", "x"}, issuer="https://as", claims={"other": 1})
    assert a == b and hash(a) == hash(b)
    assert a.key != Principal(subject="alice", issuer="https://other").key
    assert a.has_scopes(["x"]) and not a.has_scopes(["z"])
    with pytest.raises(TypeError):
        a.claims["sub"] = "mallory"  # type: ignore[index]


# ---- the official SDK's OAuth client -------------------------------------------------------------


@pytest.mark.interop
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_sdk_oauth_client_completes_the_flow_against_everything(
    auth_server: AuthServer, sdk_python: Path, mode: str
) -> None:
    env = [
        "env",
        f"MCPTRIO_HTTP__AUTH__AUTHORIZATION_SERVERS={auth_server.issuer}",
        "MCPTRIO_HTTP__AUTH__SCOPES_SUPPORTED=mcp:read",
    ]
    command = [*env, *mcptrio_http_command("examples/everything.py")]
    with trio.fail_after(60):
        async with open_http_server(command) as running, httpx.AsyncClient() as http:
            refused = await http.post(running.url, content=orjson.dumps(INIT), headers=ACCEPT)
            assert refused.status_code == 401
            script = SCRIPTS_DIR / "sdk_oauth_client.py"
            args = ["--mode", mode, "--url", running.url, "--tool", "test_simple_text"]
            done = await trio.run_process(
                [sdk_python, script, *args],
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
            assert done.returncode == 0, done.stderr.decode() + running.output()
    report = json.loads(done.stdout)
    assert report["result"]["content"][0]["text"] == ("This is a simple text response for testing.")
    assert "test_simple_text" in report["tools"]
    assert report["authorizations"] == 1
    assert report["scope"] == "mcp:read"
    if mode == "legacy":
        assert report["protocol_version"] == "2025-11-25"
    else:
        assert report["protocol_version"] == mode


class _Recorder:
    """A validator that accepts any token and remembers what it was given."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.audiences: list[tuple[str, ...]] = []

    async def validate(self, token: str, *, audiences: Any) -> Principal:
        self.seen.append(token)
        self.audiences.append(tuple(audiences))
        return Principal(subject="x")

    async def aclose(self) -> None:
        pass


@given(header=st.text(max_size=40) | st.builds(lambda t: f"Bearer {t}", st.text(max_size=30)))
async def test_only_a_clean_bearer_token_reaches_the_validator(header: str) -> None:
    recorder = _Recorder()
    rs = ResourceServer(AuthConfig(authorization_servers=("https://as",)), validator=recorder)
    try:
        await rs.authenticate(header, "https://mcp/mcp")
    except InvalidToken as exc:
        assert recorder.seen == []
        challenge = rs.refusal(exc, "https://mcp/mcp")
        assert challenge.status == 401
        # Without credentials there is no error code (RFC 6750 section 3.1).
        bearer_given = header.strip().lower().startswith("bearer ") and header.strip()[7:].strip()
        assert ("error=" in challenge.www_authenticate) == bool(bearer_given)
    else:
        [token] = recorder.seen
        scheme, _, rest = header.strip().partition(" ")
        assert scheme.lower() == "bearer" and token == rest.strip()
        assert re.fullmatch(r"[A-Za-z0-9\-._~+/]+=*", token)


async def test_tokens_are_never_logged(
    auth_server: AuthServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serving(auth_server) as url, httpx.AsyncClient() as http:
        tokens = [
            auth_server.mint(audience=url),
            auth_server.mint(audience="http://elsewhere/mcp"),
            auth_server.mint(audience=url, expires_in=-600),
        ]
        for token in tokens:
            await initialize(http, url, token)
    assert caplog.records
    for token in tokens:
        assert token not in caplog.text
        assert token.split(".")[2] not in caplog.text


async def test_clock_skew_and_the_algorithm_allow_list(auth_server: AuthServer) -> None:
    audience = ["http://mcp.test/mcp"]
    validator = JwtValidator(
        issuer=auth_server.issuer, jwks_uri=auth_server.jwks_uri, clock_skew=60.0
    )
    es_only = JwtValidator(issuer=auth_server.issuer, algorithms=("ES256",), clock_skew=0.0)
    try:
        just_expired = auth_server.mint(audience=audience[0], expires_in=-20)
        assert (await validator.validate(just_expired, audiences=audience)).subject == "alice"
        with pytest.raises(InvalidToken, match="expired"):
            await es_only.validate(
                auth_server.mint(audience=audience[0], expires_in=-20, key=auth_server.ec_key),
                audiences=audience,
            )
        long_expired = auth_server.mint(audience=audience[0], expires_in=-600)
        with pytest.raises(InvalidToken, match="expired"):
            await validator.validate(long_expired, audiences=audience)
        soon = auth_server.mint(audience=audience[0], not_before=time.time() + 20)
        assert (await validator.validate(soon, audiences=audience)).subject == "alice"
        with pytest.raises(InvalidToken, match="RS256"):
            await es_only.validate(auth_server.mint(audience=audience[0]), audiences=audience)
        ec = auth_server.mint(audience=audience[0], key=auth_server.ec_key, scopes=["a", "b"])
        principal = await es_only.validate(ec, audiences=audience)
        assert principal.scopes == {"a", "b"}
        assert principal.client_id == auth_server.client_id
        assert principal.issuer == auth_server.issuer
        assert principal.claims["aud"] == audience[0]
    finally:
        await validator.aclose()
        await es_only.aclose()


async def test_scopes_are_enforced_where_requests_run_too() -> None:
    # Transports without an HTTP layer in front (or a batch) still meet the same rules.
    server = make_server()
    meta = {"_meta": MODERN_META}

    async def ask(method: str, principal: Principal, **params: Any) -> dict[str, Any]:
        request = Request(1, method, {**params, **meta})
        return await serve_modern(server, request, _NoOutbound(), principal=principal)

    reader = Principal(subject="r", scopes={"mcp:read"})
    admin = Principal(subject="a", scopes={"mcp:read", "mcp:admin"})
    with pytest.raises(InsufficientScope) as info:
        await ask("tools/call", reader, name="reset")
    assert info.value.needed == {"mcp:admin"}
    assert info.value.code == -32003
    assert (await ask("tools/call", admin, name="reset"))["content"][0]["text"] == "reset done"
    with pytest.raises(InsufficientScope):
        await ask("resources/read", reader, uri="notes://x")
    listed = await ask("resources/templates/list", reader)
    assert listed["resourceTemplates"] == []
    for ref in (
        {"type": "ref/prompt", "name": "audit"},
        {"type": "ref/resource", "uri": "notes://{name}"},
    ):
        with pytest.raises(InsufficientScope):
            await ask("completion/complete", reader, ref=ref, argument={"name": "x", "value": ""})
    writer = Principal(subject="w", scopes={"mcp:write"})
    done = await ask(
        "completion/complete",
        writer,
        ref={"type": "ref/resource", "uri": "notes://{name}"},
        argument={"name": "name", "value": ""},
    )
    assert done["completion"]["values"] == []
    server.scope_requirements.hide_from_lists = False
    listed = await ask("resources/templates/list", reader)
    assert [t["uriTemplate"] for t in listed["resourceTemplates"]] == ["notes://{name}"]


class _NoOutbound:
    async def notify(self, method: str, params: Any = None, **kwargs: Any) -> None:
        pass

    async def request(self, method: str, params: Any = None, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError("not expected")


async def test_an_unreachable_authorization_server_is_503_not_401(
    auth_server: AuthServer,
) -> None:
    dead = "http://127.0.0.1:1/jwks"  # nothing listens on port 1
    async with serving(auth_server, jwks_uri=dead) as url, httpx.AsyncClient() as http:
        response = await initialize(http, url, auth_server.mint(audience=url))
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert "www-authenticate" not in response.headers


async def test_cached_keys_outlive_an_outage(
    auth_server: AuthServer, mock_clock: trio.testing.MockClock
) -> None:
    audience = ["http://mcp.test/mcp"]
    validator = JwtValidator(
        issuer=auth_server.issuer, jwks_uri=auth_server.jwks_uri, cache_ttl=60.0
    )
    try:
        token = auth_server.mint(audience=audience[0])
        await validator.validate(token, audiences=audience)
        validator.jwks_uri = "http://127.0.0.1:1/jwks"
        mock_clock.jump(120)
        assert (await validator.validate(token, audiences=audience)).subject == "alice"
    finally:
        await validator.aclose()


async def test_introspection_answers_can_be_reused(auth_server: AuthServer) -> None:
    async with (
        serving(
            auth_server,
            token_validation="introspection",
            introspection_endpoint=auth_server.introspection_endpoint,
            introspection_client_id=auth_server.client_id,
            introspection_client_secret=auth_server.client_secret,
            introspection_cache_ttl=300.0,
        ) as url,
        httpx.AsyncClient() as http,
    ):
        token = auth_server.issue_opaque(subject="erin", audience=url)
        before = auth_server.introspections
        for _ in range(3):
            assert (await initialize(http, url, token)).status_code == 200
        assert auth_server.introspections == before + 1
        # Refusals are not remembered: a token that becomes active is accepted at once.
        unknown = "not-yet-issued"
        assert (await initialize(http, url, unknown)).status_code == 401
        auth_server.opaque[unknown] = dict(auth_server.opaque[token], sub="frank")
        assert (await initialize(http, url, unknown)).status_code == 200


class _Exchange:
    """An in-memory HttpExchange answered with one complete response."""

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> None:
        self.method = method
        self.path = path
        self.query_string = ""
        self.headers = Headers(headers.items())
        self.client_host = "127.0.0.1"
        self.body = body
        self.status = 0
        self.response_headers: dict[str, str] = {}
        self.out = bytearray()

    async def read_body(self, limit: int) -> bytes:
        return self.body

    async def respond(self, status: int, headers: Any, body: bytes) -> None:
        self.status, self.response_headers = status, dict(headers)
        self.out += body

    async def start_stream(self, status: int, headers: Any) -> None:
        self.status, self.response_headers = status, dict(headers)

    async def send_chunk(self, data: bytes) -> None:
        self.out += data

    async def end_stream(self, data: bytes = b"") -> None:
        self.out += data

    async def wait_disconnected(self) -> None:
        await trio.sleep_forever()


async def test_a_mounted_endpoint_names_its_resource_by_the_host() -> None:
    # An ASGI mount has no listening URL: the (DNS-rebinding-checked) Host stands for it.
    recorder = _Recorder()
    rs = ResourceServer(
        AuthConfig(authorization_servers=("https://as.example",)), validator=recorder
    )
    config = HttpConfig(allowed_hosts=("mcp.example:8080",), json_response=True)
    endpoint = HttpEndpoint(make_server(), config, auth=rs)
    host = {"host": "mcp.example:8080"}
    async with trio.open_nursery() as nursery:
        await nursery.start(endpoint.run)
        prm = _Exchange("GET", "/.well-known/oauth-protected-resource/mcp", host)
        await endpoint.handle(prm)
        assert orjson.loads(prm.out)["resource"] == "http://mcp.example:8080/mcp"
        headers = {**host, **bearer("abc.def.ghi")}
        init = _Exchange("POST", "/mcp", headers, orjson.dumps(INIT))
        await endpoint.handle(init)
        assert init.status == 200
        assert recorder.seen == ["abc.def.ghi"]
        assert "http://mcp.example:8080/mcp" in recorder.audiences[0]
        refused = _Exchange("POST", "/mcp", {**host, **ACCEPT}, orjson.dumps(INIT))
        await endpoint.handle(refused)
        assert refused.status == 401
        assert params_of(refused.response_headers["www-authenticate"]) == {
            "resource_metadata": "http://mcp.example:8080/.well-known/oauth-protected-resource/mcp"
        }
        nursery.cancel_scope.cancel()


# ---- our OAuth client against the real authorization server -----------------------------------

REDIRECT = "http://127.0.0.1:33418/callback"


def our_oauth(url: str, **options: Any) -> OAuthClientAuth:
    """Our client with the authorization-code grant, approving headlessly."""
    browser = HeadlessAuthorization()
    return OAuthClientAuth(
        url,
        grant=AuthorizationCodeGrant(
            redirect_handler=browser.redirect, callback_handler=browser.callback
        ),
        client_metadata=ClientMetadata(client_name="mcptrio tests", redirect_uris=(REDIRECT,)),
        **options,
    )


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_our_oauth_client_completes_the_flow_against_everything(
    auth_server: AuthServer, mode: Literal["legacy", "2026-07-28"], tmp_path: Path
) -> None:
    env = [
        "env",
        f"MCPTRIO_HTTP__AUTH__AUTHORIZATION_SERVERS={auth_server.issuer}",
        "MCPTRIO_HTTP__AUTH__SCOPES_SUPPORTED=mcp:read",
    ]
    command = [*env, *mcptrio_http_command("examples/everything.py")]
    registered_before = set(auth_server.clients)
    token_file = tmp_path / "tokens.json"
    with trio.fail_after(60):
        async with open_http_server(command) as running:
            url = running.url
            # From the 401: metadata discovery, registration, the code flow with PKCE.
            auth = our_oauth(url, storage=FileTokenStorage(token_file))
            async with (
                open_http_transport(url, auth=auth) as transport,
                open_client(transport, mode=mode) as client,
            ):
                assert "test_simple_text" in {t.name for t in await client.all_tools()}
                result = await client.call_tool("test_simple_text")
                version = client.protocol_version
            assert result.content[0].text == "This is a simple text response for testing."  # type: ignore[union-attr]
            assert version == ("2025-11-25" if mode == "legacy" else mode)
            assert auth.authorizations == 1
            assert auth_server.grants == [("authorization_code", "alice")]
            [client_id] = set(auth_server.clients) - registered_before  # dynamic registration
            assert auth_server.clients[client_id].metadata["redirect_uris"] == [REDIRECT]
            stored = await auth.storage.load_tokens(url)
            assert stored is not None and stored.refresh_token
            assert stored.issuer == auth_server.issuer
            claims = jwt.decode(stored.access_token, auth_server.rsa_key).claims
            assert claims["aud"] == url  # RFC 8707: the resource from the metadata
            assert claims["scope"] == "mcp:read" and claims["client_id"] == client_id

            # A later run, whose stored access token the server finds expired: the stored
            # refresh token gets a new one, with the stored registration, and no new grant.
            expired = auth_server.mint(audience=url, expires_in=-3600)
            await auth.storage.save_tokens(url, attrs.evolve(stored, access_token=expired))
            later = our_oauth(url, storage=FileTokenStorage(token_file))
            async with (
                open_http_transport(url, auth=later) as transport,
                open_client(transport, mode=mode) as client,
            ):
                again = await client.call_tool("test_simple_text")
    assert again.content == result.content
    assert later.authorizations == 0
    assert auth_server.grants[1:] == [("refresh_token", "alice")]
    assert set(auth_server.clients) - registered_before == {client_id}
    refreshed = await later.storage.load_tokens(url)
    assert refreshed is not None
    assert refreshed.access_token not in (expired, stored.access_token)
    assert refreshed.refresh_token not in (None, stored.refresh_token)  # rotated
    # The MCP server's tokens never reach the authorization server.
    assert auth_server.requests
    for method, path, authorization in auth_server.requests:
        assert authorization is None or authorization.startswith("Basic "), (method, path)


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
@pytest.mark.parametrize("adapter", ADAPTERS)
async def test_our_oauth_client_refreshes_early_and_steps_up_on_insufficient_scope(
    auth_server: AuthServer, adapter: str, mode: Literal["legacy", "2026-07-28"]
) -> None:
    # Only mcp:read is advertised, so the first authorization asks for just that.
    async with serving(auth_server, adapter, scopes_supported=("mcp:read",)) as url:
        # Tokens that expire within the client's margin are refreshed before they are sent.
        auth_server.token_lifetime = 10
        auth = our_oauth(url)
        async with (
            open_http_transport(url, auth=auth) as transport,
            open_client(transport, mode=mode) as client,
        ):
            who = await client.call_tool("whoami")
            assert who.content[0].text == "alice mcp:read"  # type: ignore[union-attr]
            kinds = [kind for kind, _ in auth_server.grants]
            assert kinds[0] == "authorization_code"
            assert kinds[1:] and set(kinds[1:]) == {"refresh_token"}
            auth_server.token_lifetime = 3600
            assert "reset" not in {t.name for t in await client.all_tools()}
            # 403 insufficient_scope: authorize again for the union of the scopes.
            reset = await client.call_tool("reset")
            assert reset.content[0].text == "reset done"  # type: ignore[union-attr]
            assert auth_server.grants[-1] == ("authorization_code", "alice")
            who = await client.call_tool("whoami")
            assert who.content[0].text == "alice mcp:admin mcp:read"  # type: ignore[union-attr]
            assert "reset" in {t.name for t in await client.all_tools()}
        assert auth.authorizations == 2
        tokens = await auth.storage.load_tokens(url)
        assert tokens is not None and set((tokens.scope or "").split()) == {"mcp:read", "mcp:admin"}


@pytest.mark.parametrize("adapter", ADAPTERS)
async def test_our_oauth_client_cannot_use_another_users_session(
    auth_server: AuthServer, adapter: str
) -> None:
    async with serving(auth_server, adapter) as url:
        alice = our_oauth(url)
        async with (
            open_http_transport(url, auth=alice) as transport,
            open_client(transport) as client,
        ):
            who = await client.call_tool("whoami")
            assert who.content[0].text.startswith("alice ")  # type: ignore[union-attr]
            session_id = transport.session_id
            assert session_id
            auth_server.subject = "bob"  # the next user to log in at the authorization server
            bob = our_oauth(url)
            call = {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "whoami"}}
            async with httpx.AsyncClient(auth=bob) as http:
                headers = {**ACCEPT, "mcp-session-id": session_id}
                response = await http.post(url, content=orjson.dumps(call), headers=headers)
                assert response.status_code == 404
                for method in ("GET", "DELETE"):
                    headers = {"accept": "text/event-stream", "mcp-session-id": session_id}
                    response = await http.request(method, url, headers=headers)
                    assert response.status_code == 404
            assert bob.authorizations == 1
            assert [subject for _, subject in auth_server.grants] == ["alice", "bob"]
            # Alice's session is untouched; bob gets one of his own.
            who = await client.call_tool("whoami")
            assert who.content[0].text.startswith("alice ")  # type: ignore[union-attr]
            async with (
                open_http_transport(url, auth=bob) as bob_transport,
                open_client(bob_transport) as bob_client,
            ):
                who = await bob_client.call_tool("whoami")
                assert who.content[0].text.startswith("bob ")  # type: ignore[union-attr]
                assert bob_transport.session_id != session_id


@pytest.mark.parametrize("method", ["private_key_jwt", "client_secret_basic", "client_secret_post"])
async def test_our_client_credentials_grant_authenticates_each_way(
    auth_server: AuthServer, method: str
) -> None:
    client_id = f"machine-{method}"
    if method == "private_key_jwt":
        key = ECKey.generate_key("P-256")
        auth_server.add_client(client_id, method=method, jwks=KeySet([key]).as_dict(private=False))
        registration = ClientRegistration(
            client_id=client_id,
            token_endpoint_auth_method=method,
            private_key_pem=key.as_pem(private=True).decode(),
            signing_algorithm="ES256",
            issuer=auth_server.issuer,
        )
    else:
        secret = secrets.token_urlsafe(16)
        auth_server.add_client(client_id, secret=secret, method=method)
        registration = ClientRegistration(
            client_id=client_id, client_secret=secret, token_endpoint_auth_method=method
        )
    async with serving(auth_server, scopes_supported=("mcp:read", "mcp:write")) as url:
        auth = OAuthClientAuth(url, grant=ClientCredentialsGrant(), client=registration)
        async with (
            open_http_transport(url, auth=auth) as transport,
            open_client(transport) as client,
        ):
            who = await client.call_tool("whoami")
            assert who.content[0].text == f"{client_id} mcp:read mcp:write"  # type: ignore[union-attr]
            # Step-up works without a user too: a new grant for the union of the scopes.
            reset = await client.call_tool("reset")
            assert reset.content[0].text == "reset done"  # type: ignore[union-attr]
    assert auth_server.grants == [("client_credentials", client_id)] * 2
    if method == "private_key_jwt":
        assert len(auth_server.assertion_ids) == 2  # a fresh assertion for each request


async def test_a_private_key_the_authorization_server_does_not_know_is_refused(
    auth_server: AuthServer,
) -> None:
    known, other = ECKey.generate_key("P-256"), ECKey.generate_key("P-256")
    auth_server.add_client("machine", method="private_key_jwt", jwks=KeySet([known]).as_dict())
    registration = ClientRegistration(
        client_id="machine",
        token_endpoint_auth_method="private_key_jwt",
        private_key_pem=other.as_pem(private=True).decode(),
    )
    async with serving(auth_server) as url:
        auth = OAuthClientAuth(url, grant=ClientCredentialsGrant(), client=registration)
        async with httpx.AsyncClient(auth=auth) as http:
            with pytest.raises(OAuthError, match="invalid_client") as info:
                await http.post(url, content=orjson.dumps(INIT), headers=ACCEPT)
    assert "client credentials grant" in str(info.value)
    assert auth_server.grants == []


async def test_an_explicit_scope_is_widened_by_a_step_up(auth_server: AuthServer) -> None:
    async with serving(auth_server) as url:
        auth = our_oauth(url, scope=["mcp:read"])
        async with (
            open_http_transport(url, auth=auth) as transport,
            open_client(transport, mode="2026-07-28") as client,
        ):
            who = await client.call_tool("whoami")
            assert who.content[0].text == "alice mcp:read"  # type: ignore[union-attr]
            reset = await client.call_tool("reset")
            assert reset.content[0].text == "reset done"  # type: ignore[union-attr]
    assert auth.authorizations == 2
    tokens = await auth.storage.load_tokens(url)
    assert tokens is not None and tokens.scope == "mcp:read mcp:admin"


async def test_an_authorization_response_from_another_issuer_is_refused(
    auth_server: AuthServer,
) -> None:
    # RFC 9207: a response whose iss is not the issuer discovered for this server may come
    # from a mixed-up (or malicious) authorization server; its code is never redeemed.
    auth_server.response_issuer = "http://127.0.0.1:1/elsewhere"
    async with serving(auth_server) as url:
        auth = our_oauth(url)
        async with httpx.AsyncClient(auth=auth) as http:
            with pytest.raises(OAuthError, match="RFC 9207") as info:
                await http.post(url, content=orjson.dumps(INIT), headers=ACCEPT)
    assert "http://127.0.0.1:1/elsewhere" in str(info.value)
    assert auth_server.grants == []
    assert len(auth_server.codes) == 1  # issued, never exchanged


@asynccontextmanager
async def serving_document_over_https(
    auth_server: AuthServer, document: dict[str, Any]
) -> AsyncIterator[str]:
    """Serve ``document`` at an HTTPS URL the authorization server trusts; yields the URL."""
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    app = Flask("client-metadata")
    app.get("/client.json")(lambda: jsonify(document))
    httpd = werkzeug_make_server("127.0.0.1", 0, app, threaded=True, ssl_context=server_tls)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    auth_server.document_tls = client_tls
    try:
        yield f"https://127.0.0.1:{httpd.server_port}/client.json"
    finally:
        auth_server.document_tls = None
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(httpd.shutdown)
            httpd.server_close()
            await trio.to_thread.run_sync(thread.join)


async def test_our_client_id_metadata_document_is_accepted(auth_server: AuthServer) -> None:
    document: dict[str, Any] = {}
    async with (
        serving(auth_server) as url,
        serving_document_over_https(auth_server, document) as document_url,
    ):
        auth = our_oauth(url, client_metadata_url=document_url)
        document.update(auth.client_metadata_document())  # what the client would publish
        registered_before = set(auth_server.clients)
        async with (
            open_http_transport(url, auth=auth) as transport,
            open_client(transport, mode="2026-07-28") as client,
        ):
            who = await client.call_tool("whoami")
    assert who.content[0].text.startswith("alice ")  # type: ignore[union-attr]
    assert set(auth_server.clients) == registered_before  # no dynamic registration
    assert auth_server.document_fetches and set(auth_server.document_fetches) == {document_url}
    tokens = await auth.storage.load_tokens(url)
    assert tokens is not None
    assert jwt.decode(tokens.access_token, auth_server.rsa_key).claims["client_id"] == document_url


async def test_a_refused_client_is_reported_with_the_authorization_servers_reason(
    auth_server: AuthServer,
) -> None:
    document: dict[str, Any] = {}
    async with (
        serving(auth_server) as url,
        serving_document_over_https(auth_server, document) as document_url,
    ):
        auth = our_oauth(url, client_metadata_url=document_url)
        # A document claiming a secret-based method, which the server refuses.
        document.update(auth.client_metadata_document(), token_endpoint_auth_method="private")
        async with httpx.AsyncClient(auth=auth) as http:
            with pytest.raises(OAuthError) as info:
                await http.post(url, content=orjson.dumps(INIT), headers=ACCEPT)
        message = str(info.value)
        assert "refused the request: invalid_client" in message
        assert "cannot use private" in message and "HTTP 400" in message
        # Through a client, the failure is a request that was not sent, with the reason.
        async with open_http_transport(url, auth=auth) as transport:
            with pytest.raises(MCPError) as failed:
                async with open_client(transport):
                    pass
    assert "could not send the initialize request" in failed.value.message
    assert "refused the request: invalid_client" in failed.value.message
    assert "connection broke" not in failed.value.message
    assert auth_server.grants == []


async def test_our_client_asks_for_the_scopes_the_challenge_names(auth_server: AuthServer) -> None:
    # The 401 names the required scope, which wins over everything scopes_supported lists.
    async with serving(auth_server, required_scopes=("mcp:write",)) as url:
        auth = our_oauth(url)
        async with (
            open_http_transport(url, auth=auth) as transport,
            open_client(transport) as client,
        ):
            who = await client.call_tool("whoami")
    assert who.content[0].text == "alice mcp:write"  # type: ignore[union-attr]
    assert auth.authorizations == 1


async def test_our_client_against_a_resource_server_that_introspects(
    auth_server: AuthServer,
) -> None:
    introspecting = serving(
        auth_server,
        token_validation="introspection",
        introspection_endpoint=auth_server.introspection_endpoint,
        introspection_client_id=auth_server.client_id,
        introspection_client_secret=auth_server.client_secret,
    )
    async with introspecting as url:
        auth = our_oauth(url)
        async with (
            open_http_transport(url, auth=auth) as transport,
            open_client(transport, mode="2026-07-28") as client,
        ):
            who = await client.call_tool("whoami")
            assert who.content[0].text == "alice mcp:admin mcp:read mcp:write"  # type: ignore[union-attr]
            # Introspection answers inactive as soon as the token expires at the authorization
            # server (whatever the client thinks): the client refreshes and carries on.
            tokens = await auth.storage.load_tokens(url)
            assert tokens is not None
            auth_server.tokens[tokens.access_token].issued_at -= 2 * auth_server.token_lifetime
            who = await client.call_tool("whoami")
            assert who.content[0].text.startswith("alice ")  # type: ignore[union-attr]
    assert [kind for kind, _ in auth_server.grants] == ["authorization_code", "refresh_token"]
    assert auth_server.introspections >= 2


async def test_a_step_up_as_another_user_moves_to_a_session_of_their_own(
    auth_server: AuthServer,
) -> None:
    # The user logs in as someone else when asked for more scopes: the old session is not
    # theirs (404), so the transport starts a new one and the call goes through there.
    async with serving(auth_server, scopes_supported=("mcp:read",)) as url:
        expired: list[str] = []

        async def on_expired(session_id: str) -> None:
            expired.append(session_id)

        auth = our_oauth(url)
        async with (
            open_http_transport(url, auth=auth, on_session_expired=on_expired) as transport,
            open_client(transport) as client,
        ):
            who = await client.call_tool("whoami")
            assert who.content[0].text == "alice mcp:read"  # type: ignore[union-attr]
            first_session = transport.session_id
            auth_server.subject = "bob"
            reset = await client.call_tool("reset")
            assert reset.content[0].text == "reset done"  # type: ignore[union-attr]
            who = await client.call_tool("whoami")
            assert who.content[0].text == "bob mcp:admin mcp:read"  # type: ignore[union-attr]
            assert transport.session_id not in (None, first_session)
        assert expired == [first_session]


async def test_our_client_recovers_when_the_signing_key_is_retired(auth_server: AuthServer) -> None:
    # Keys are fetched again for each token, so the retired key is gone at once.
    async with serving(auth_server, jwks_cache_ttl=1e-6) as url:
        auth = our_oauth(url)
        async with (
            open_http_transport(url, auth=auth) as transport,
            open_client(transport, mode="2026-07-28") as client,
        ):
            assert (await client.call_tool("whoami")).content[0].text.startswith("alice ")  # type: ignore[union-attr]
            # The old key leaves the JWKS: its tokens fail at the resource server, and the
            # refresh token (an opaque one, unaffected) brings a token under the new key.
            kid = auth_server.rotate_keys()
            assert (await client.call_tool("whoami")).content[0].text.startswith("alice ")  # type: ignore[union-attr]
    tokens = await auth.storage.load_tokens(url)
    assert tokens is not None
    [published] = auth_server.public_jwks()["keys"]
    assert published["kid"] == kid
    jwt.decode(tokens.access_token, KeySet.import_key_set(auth_server.public_jwks()))
    assert [kind for kind, _ in auth_server.grants] == ["authorization_code", "refresh_token"]
    assert auth.authorizations == 1
