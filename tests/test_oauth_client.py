"""The OAuth 2.1 client: header parsing, discovery order, scope selection, PKCE, DPoP proofs,
token storage, and whole flows against a protected resource and authorization server.

The flows run against ``World``: an MCP endpoint that demands tokens and an authorization
server that checks what a strict one checks (PKCE S256 against the stored challenge, the
``resource`` indicator, client authentication, DPoP proofs and nonces), both behind one
``httpx.MockTransport``. The end-to-end test puts it in front of a real mcptrio server.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import attrs
import httpx
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st
from joserfc import jwk, jwt
from joserfc.jws import JWSRegistry

import mcptrio
from mcptrio import (
    AuthorizationCodeGrant,
    BearerAuth,
    Challenge,
    ClientCredentialsGrant,
    ClientMetadata,
    ClientRegistration,
    DPoPKey,
    FileTokenStorage,
    HeadlessAuthorization,
    HttpConfig,
    JwtBearerGrant,
    MemoryTokenStorage,
    OAuthClientAuth,
    OAuthError,
    OAuthTokens,
    open_client,
    open_http_transport,
    parse_www_authenticate,
    serve_http,
)
from mcptrio._auth.dpop import b64url_sha256, sign_client_assertion
from mcptrio._auth.oauth_client import (
    authorization_server_metadata_urls,
    pkce_pair,
    protected_resource_metadata_urls,
    select_scope,
)

MCP = "https://mcp.example/mcp"
PRM = "https://mcp.example/.well-known/oauth-protected-resource/mcp"
ISSUER = "https://as.example/tenant"
REDIRECT = "http://127.0.0.1:33418/callback"

# ----- WWW-Authenticate ------------------------------------------------------------------

_TOKENS = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!#$%&'*+^`|~",
    min_size=1,
    max_size=12,
)
_VALUES = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@given(
    st.lists(
        st.tuples(
            _TOKENS,
            st.dictionaries(_TOKENS.map(str.lower), _VALUES, max_size=4),
            st.booleans(),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_www_authenticate_round_trips(
    challenges: list[tuple[str, dict[str, str], bool]],
) -> None:
    parts = []
    for scheme, params, bare in challenges:
        rendered = ", ".join(
            f"{name}={value if bare and value and _is_token(value) else _quote(value)}"
            for name, value in params.items()
        )
        parts.append(f"{scheme} {rendered}" if rendered else scheme)
    parsed = parse_www_authenticate(", ".join(parts))
    assert [(c.scheme, dict(c.params)) for c in parsed] == [
        (scheme, params) for scheme, params, _ in challenges
    ]


def _is_token(value: str) -> bool:
    return all(c.isalnum() or c in "-_.!#$%&'*+^`|~" for c in value)


@given(st.text(max_size=200))
def test_www_authenticate_never_raises(text: str) -> None:
    for challenge in parse_www_authenticate(text):
        assert challenge.scheme


def test_www_authenticate_examples() -> None:
    header = (
        'Bearer error="insufficient_scope", scope="files:read files:write", '
        'resource_metadata="https://mcp.example/.well-known/oauth-protected-resource/mcp", '
        'error_description="needs \\"write\\"", DPoP algs="ES256 RS256", Basic dXNlcjpwYXNz=='
    )
    bearer, dpop, basic = parse_www_authenticate(header)
    assert bearer.params["error"] == "insufficient_scope"
    assert bearer.scopes() == ["files:read", "files:write"]
    assert bearer.params["error_description"] == 'needs "write"'
    assert bearer.params["resource_metadata"].endswith("/oauth-protected-resource/mcp")
    assert dpop == Challenge("DPoP", {"algs": "ES256 RS256"})
    assert basic == Challenge("Basic", {}, "dXNlcjpwYXNz==")
    assert parse_www_authenticate("Bearer") == [Challenge("Bearer")]
    assert parse_www_authenticate('Bearer REALM="x", Negotiate') == [
        Challenge("Bearer", {"realm": "x"}),
        Challenge("Negotiate"),
    ]


# ----- discovery order, scopes, PKCE ------------------------------------------------------


def test_protected_resource_metadata_urls_prefer_the_header_then_the_path() -> None:
    assert protected_resource_metadata_urls(MCP, "https://elsewhere/prm") == [
        "https://elsewhere/prm",
        PRM,
        "https://mcp.example/.well-known/oauth-protected-resource",
    ]
    assert protected_resource_metadata_urls("https://mcp.example/") == [
        "https://mcp.example/.well-known/oauth-protected-resource"
    ]
    assert protected_resource_metadata_urls("https://mcp.example:8443/a/b/?q=1", PRM)[1] == (
        "https://mcp.example:8443/.well-known/oauth-protected-resource/a/b"
    )


def test_authorization_server_metadata_urls_follow_the_spec_order() -> None:
    assert authorization_server_metadata_urls(ISSUER) == [
        "https://as.example/.well-known/oauth-authorization-server/tenant",
        "https://as.example/.well-known/openid-configuration/tenant",
        "https://as.example/tenant/.well-known/openid-configuration",
    ]
    for root in ("https://as.example", "https://as.example/"):
        assert authorization_server_metadata_urls(root) == [
            "https://as.example/.well-known/oauth-authorization-server",
            "https://as.example/.well-known/openid-configuration",
        ]


_SCOPES = st.lists(st.sampled_from(["a", "b", "c", "d", "offline_access"]), unique=True)


@given(challenge=_SCOPES, supported=st.none() | _SCOPES, previous=_SCOPES)
def test_scope_selection(
    challenge: list[str], supported: list[str] | None, previous: list[str]
) -> None:
    chosen = select_scope(challenge, supported, previous=previous)
    base = challenge or supported or []
    if not base and not previous:
        assert chosen is None  # the scope parameter is omitted
        return
    assert chosen is not None
    assert len(chosen) == len(set(chosen))
    assert set(chosen) == set(previous) | set(base)
    assert chosen[: len(previous)] == previous


def test_the_challenge_scope_wins_over_scopes_supported() -> None:
    assert select_scope(["mcp:basic"], ["mcp:basic", "mcp:admin"]) == ["mcp:basic"]
    assert select_scope([], ["r", "w"]) == ["r", "w"]
    assert select_scope([], None) is None
    assert select_scope(["w"], None, previous=["r"]) == ["r", "w"]


def test_pkce_pairs_are_fresh_s256_pairs() -> None:
    pairs = [pkce_pair() for _ in range(20)]
    assert len({verifier for verifier, _ in pairs}) == 20
    for verifier, challenge in pairs:
        assert 43 <= len(verifier) <= 128
        assert set(verifier) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
        )
        digest = hashlib.sha256(verifier.encode()).digest()
        assert challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


# ----- DPoP proofs and client assertions --------------------------------------------------


def _segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, claims, _ = token.split(".")
    decode = lambda part: json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # noqa: E731
    return decode(header), decode(claims)


@pytest.mark.parametrize("algorithm", ["ES256", "ES384", "RS256"])
def test_dpop_proofs_carry_what_rfc_9449_asks(algorithm: str) -> None:
    key = DPoPKey.generate(algorithm)
    proof = key.proof("post", "https://mcp.example/mcp?x=1#f", access_token="tok", nonce="n-1")
    header, claims = _segments(proof)
    assert header["typ"] == "dpop+jwt" and header["alg"] == algorithm
    assert "d" not in header["jwk"] and "p" not in header["jwk"]
    registry = JWSRegistry(algorithms=[algorithm])
    registry.max_header_length = 4096  # an RSA key's JWK makes a long header
    verified = jwt.decode(
        proof,
        jwk.import_key(header["jwk"], header["jwk"]["kty"]),
        algorithms=[algorithm],
        registry=registry,
    )
    assert verified.claims == claims
    assert claims["htm"] == "POST"
    assert claims["htu"] == "https://mcp.example/mcp"
    assert claims["ath"] == b64url_sha256("tok")
    assert claims["nonce"] == "n-1"
    assert isinstance(claims["iat"], int)
    again = _segments(key.proof("GET", MCP))[1]
    assert again["jti"] != claims["jti"]
    assert "ath" not in again and "nonce" not in again


def test_the_dpop_thumbprint_is_rfc_7638() -> None:
    key = DPoPKey.generate("ES256")
    members = {name: key.public_jwk[name] for name in ("crv", "kty", "x", "y")}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    expected = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=")
    assert key.thumbprint == expected.decode()


def test_private_key_jwt_assertions_name_the_client_and_audience() -> None:
    private = jwk.ECKey.generate_key("P-256")
    pem = private.as_pem(private=True)
    assertion = sign_client_assertion(pem, "ES256", client_id="cid", audience=ISSUER)
    verified = jwt.decode(assertion, private, algorithms=["ES256"])
    claims = verified.claims
    assert (claims["iss"], claims["sub"], claims["aud"]) == ("cid", "cid", ISSUER)
    assert claims["exp"] > claims["iat"] and claims["jti"]


# ----- storage ---------------------------------------------------------------------------

TOKENS = OAuthTokens(access_token="a", refresh_token="r", expires_at=1.5, scope="s", issuer=ISSUER)
CLIENT = ClientRegistration(client_id="c", client_secret="s3cr3t", issuer=ISSUER)


async def test_memory_storage_keeps_tokens_per_resource_and_clients_per_issuer() -> None:
    storage = MemoryTokenStorage()
    assert await storage.load_tokens(MCP) is None
    await storage.save_tokens(MCP, TOKENS)
    await storage.save_client(ISSUER, CLIENT)
    assert await storage.load_tokens(MCP) == TOKENS
    assert await storage.load_tokens("https://other/mcp") is None
    assert await storage.load_client(ISSUER) == CLIENT
    await storage.save_tokens(MCP, None)
    assert await storage.load_tokens(MCP) is None


async def test_file_storage_is_private_atomic_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state" / "tokens.json"
    storage = FileTokenStorage(path)
    assert await storage.load_tokens(MCP) is None
    await storage.save_tokens(MCP, TOKENS)
    await storage.save_client(ISSUER, CLIENT)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(path.parent) == ["tokens.json"]  # no temporary file left behind
    again = FileTokenStorage(path)
    assert await again.load_tokens(MCP) == TOKENS
    assert await again.load_client(ISSUER) == CLIENT
    await again.save_tokens(MCP, None)
    assert await storage.load_tokens(MCP) is None
    assert await storage.load_client(ISSUER) == CLIENT
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        await storage.load_tokens(MCP)


def test_registrations_are_checked_when_created() -> None:
    with pytest.raises(ValueError, match="private_key_pem"):
        ClientRegistration(client_id="c", token_endpoint_auth_method="private_key_jwt")
    with pytest.raises(ValueError, match="client_secret"):
        ClientRegistration(client_id="c", token_endpoint_auth_method="client_secret_post")
    with pytest.raises(ValueError, match="one of"):
        ClientRegistration(client_id="c", token_endpoint_auth_method="tls_client_auth")
    assert "s3cr3t" not in repr(CLIENT) and "'a'" not in repr(TOKENS)


# ----- a protected resource and its authorization server ----------------------------------


@attrs.define
class World:
    """An MCP endpoint needing tokens and the authorization server that issues them."""

    required: set[str] = attrs.field(factory=lambda: {"mcp:read"})
    challenge_scope: str | None = "mcp:read"
    step_up_scope: str | None = None  # a 403 for tokens lacking it (after the first call)
    scopes_supported: list[str] | None = None
    prm_resource: str = MCP
    prm_in_header: bool = True
    has_prm: bool = True
    metadata: dict[str, Any] = attrs.field(factory=dict)  # overrides
    iss: str | None = ISSUER
    expires_in: int = 3600
    refresh: bool = True
    dpop_as_nonce: str | None = None
    dpop_rs_nonce: str | None = None
    upstream: httpx.AsyncBaseTransport | None = None
    upstream_url: httpx.URL = attrs.field(factory=lambda: httpx.URL(MCP))
    requests: list[httpx.Request] = attrs.field(factory=list)
    authorizations: list[dict[str, str]] = attrs.field(factory=list)
    token_forms: list[dict[str, str]] = attrs.field(factory=list)
    registrations: list[dict[str, Any]] = attrs.field(factory=list)
    tokens: dict[str, tuple[set[str], str | None]] = attrs.field(factory=dict)
    codes: dict[str, dict[str, str]] = attrs.field(factory=dict)
    refresh_tokens: dict[str, set[str]] = attrs.field(factory=dict)
    client_key: Any = None
    grantable: set[str] | None = None  # None: whatever is asked for
    proofs: list[str] = attrs.field(factory=list)
    served: int = 0

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def as_metadata(self) -> dict[str, Any]:
        document = {
            "issuer": ISSUER,
            "authorization_endpoint": "https://as.example/tenant/authorize",
            "token_endpoint": "https://as.example/tenant/token",
            "registration_endpoint": "https://as.example/tenant/register",
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "token_endpoint_auth_methods_supported": [
                "none",
                "client_secret_basic",
                "private_key_jwt",
            ],
            "authorization_response_iss_parameter_supported": True,
            "scopes_supported": ["mcp:read", "mcp:write", "offline_access"],
            "dpop_signing_alg_values_supported": ["ES256"],
        }
        document.update(self.metadata)
        return {k: v for k, v in document.items() if v is not None}

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        url = str(request.url.copy_with(query=None))
        if url == PRM and self.has_prm:
            document: dict[str, Any] = {
                "resource": self.prm_resource,
                "authorization_servers": [ISSUER],
            }
            if self.scopes_supported is not None:
                document["scopes_supported"] = self.scopes_supported
            return httpx.Response(200, json=document)
        if url == "https://as.example/.well-known/oauth-authorization-server/tenant":
            return httpx.Response(200, json=self.as_metadata())
        if url == "https://as.example/tenant/authorize":
            return self.authorize(dict(request.url.params))
        if url == "https://as.example/tenant/register":
            body = json.loads(request.content)
            self.registrations.append(body)
            return httpx.Response(201, json={"client_id": f"dyn-{len(self.registrations)}"})
        if url == "https://as.example/tenant/token":
            return self.token(request)
        if url == MCP:
            return await self.resource(request)
        return httpx.Response(404, text="not here")

    def authorize(self, query: dict[str, str]) -> httpx.Response:
        self.authorizations.append(query)
        assert query["code_challenge_method"] == "S256"
        code = f"code-{len(self.authorizations)}"
        self.codes[code] = query
        location = httpx.URL(query["redirect_uri"]).copy_merge_params(
            {"code": code, "state": query["state"]} | ({"iss": self.iss} if self.iss else {})
        )
        return httpx.Response(302, headers={"Location": str(location)})

    def _client_id(self, request: httpx.Request, form: dict[str, str]) -> str:
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            assert secret, "client_secret_basic without a secret"
            return client_id
        if "client_assertion" in form:
            claims = jwt.decode(
                form["client_assertion"], self.client_key, algorithms=["ES256"]
            ).claims
            assert claims["aud"] == ISSUER and claims["iss"] == claims["sub"] == form["client_id"]
            return form["client_id"]
        return form["client_id"]

    def token(self, request: httpx.Request) -> httpx.Response:
        form = dict(parse_qsl(request.content.decode()))
        self.token_forms.append(form)
        assert form["resource"] == self.prm_resource, "RFC 8707 resource missing or wrong"
        client_id = self._client_id(request, form)
        jkt = None
        if proof := request.headers.get("dpop"):
            header, claims = _segments(proof)
            jwt.decode(
                proof, jwk.import_key(header["jwk"], header["jwk"]["kty"]), algorithms=["ES256"]
            )
            assert claims["htm"] == "POST" and claims["htu"] == "https://as.example/tenant/token"
            if self.dpop_as_nonce and claims.get("nonce") != self.dpop_as_nonce:
                return httpx.Response(
                    400,
                    json={"error": "use_dpop_nonce"},
                    headers={"DPoP-Nonce": self.dpop_as_nonce},
                )
            jkt = jwk.import_key(header["jwk"], header["jwk"]["kty"]).thumbprint()
        grant = form["grant_type"]
        if grant == "authorization_code":
            authorization = self.codes.pop(form["code"])
            assert authorization["client_id"] == client_id
            assert authorization["resource"] == self.prm_resource
            assert b64url_sha256(form["code_verifier"]) == authorization["code_challenge"]
            assert form["redirect_uri"] == authorization["redirect_uri"]
            scopes = set(authorization.get("scope", "").split())
            if self.grantable is not None:
                scopes &= self.grantable
        elif grant == "refresh_token":
            if form["refresh_token"] not in self.refresh_tokens:
                return httpx.Response(400, json={"error": "invalid_grant"})
            scopes = self.refresh_tokens.pop(form["refresh_token"])
        elif grant == "client_credentials":
            scopes = set(form.get("scope", "").split())
        else:
            return httpx.Response(400, json={"error": "unsupported_grant_type"})
        access = f"at-{len(self.tokens) + 1}"
        self.tokens[access] = (scopes, jkt)
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "DPoP" if jkt else "Bearer",
            "expires_in": self.expires_in,
            "scope": " ".join(sorted(scopes)),
        }
        if self.refresh and grant != "client_credentials":
            body["refresh_token"] = f"rt-{access}"
            self.refresh_tokens[body["refresh_token"]] = scopes
        return httpx.Response(200, json=body)

    def _challenge(self, status: int, error: str, scope: str | None) -> httpx.Response:
        params = [f'error="{error}"']
        if scope:
            params.append(f'scope="{scope}"')
        if self.prm_in_header:
            params.append(f'resource_metadata="{PRM}"')
        return httpx.Response(
            status,
            headers={"WWW-Authenticate": "Bearer " + ", ".join(params)},
            json={"error": error},
        )

    async def resource(self, request: httpx.Request) -> httpx.Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if token not in self.tokens:
            return self._challenge(401, "invalid_token", self.challenge_scope)
        scopes, jkt = self.tokens[token]
        if jkt is not None:
            assert scheme == "DPoP"
            self.proofs.append(request.headers["dpop"])
            header, claims = _segments(request.headers["dpop"])
            jwt.decode(
                request.headers["dpop"],
                jwk.import_key(header["jwk"], header["jwk"]["kty"]),
                algorithms=["ES256"],
            )
            assert jwk.import_key(header["jwk"], header["jwk"]["kty"]).thumbprint() == jkt
            assert claims["ath"] == b64url_sha256(token) and claims["htu"] == MCP
            if self.dpop_rs_nonce and claims.get("nonce") != self.dpop_rs_nonce:
                return httpx.Response(
                    401,
                    headers={
                        "WWW-Authenticate": 'DPoP error="use_dpop_nonce"',
                        "DPoP-Nonce": self.dpop_rs_nonce,
                    },
                )
        else:
            assert scheme == "Bearer"
        if not self.required <= scopes:
            return self._challenge(403, "insufficient_scope", " ".join(sorted(self.required)))
        if self.step_up_scope and self.served and self.step_up_scope not in scopes:
            return self._challenge(403, "insufficient_scope", self.step_up_scope)
        self.served += 1
        if self.upstream is not None:
            upstream_request = httpx.Request(
                request.method,
                self.upstream_url.copy_with(params=request.url.params),
                headers=[(k, v) for k, v in request.headers.items() if k.lower() != "host"],
                content=request.content,
            )
            return await self.upstream.handle_async_request(upstream_request)
        return httpx.Response(200, json={"served": token})


def code_auth(world: World, **options: Any) -> OAuthClientAuth:
    browser = HeadlessAuthorization(transport=world.transport())
    return OAuthClientAuth(
        MCP,
        grant=AuthorizationCodeGrant(
            redirect_handler=browser.redirect, callback_handler=browser.callback
        ),
        client_metadata=ClientMetadata(client_name="tests", redirect_uris=(REDIRECT,)),
        http_transport=world.transport(),
        **options,
    )


@asynccontextmanager
async def http(world: World, auth: httpx.Auth) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=world.transport(), auth=auth) as client:
        yield client


async def test_the_authorization_code_flow_registers_and_authorizes_once() -> None:
    world = World()
    auth = code_auth(world)
    async with http(world, auth) as client:
        first = await client.post(MCP, json={})
        second = await client.post(MCP, json={})
    assert first.json() == second.json() == {"served": "at-1"}
    assert auth.authorizations == 1
    (registration,) = world.registrations
    assert registration["application_type"] == "native"
    assert registration["redirect_uris"] == [REDIRECT]
    assert "authorization_code" in registration["grant_types"]
    (query,) = world.authorizations
    assert query["client_id"] == "dyn-1" and query["resource"] == MCP
    assert query["scope"] == "mcp:read offline_access"  # the challenge's scope, plus refresh
    # Discovery went to the header's metadata URL, then RFC 8414 with the issuer's path.
    paths = [str(r.url) for r in world.requests[:3]]
    assert paths == [MCP, PRM, "https://as.example/.well-known/oauth-authorization-server/tenant"]
    # The MCP server's token never reaches the authorization server.
    for request in world.requests:
        if request.url.host == "as.example":
            assert "at-" not in request.headers.get("authorization", "")


async def test_scopes_supported_is_used_without_a_challenge_scope() -> None:
    # The server offers no offline_access here, so none is asked for.
    world = World(challenge_scope=None, scopes_supported=["mcp:read", "mcp:write"])
    world.metadata["scopes_supported"] = ["mcp:read", "mcp:write"]
    async with http(world, code_auth(world)) as client:
        assert (await client.post(MCP)).status_code == 200
    assert world.authorizations[0]["scope"] == "mcp:read mcp:write"


async def test_without_scopes_the_parameter_is_omitted() -> None:
    world = World(required=set(), challenge_scope=None, refresh=False)
    world.metadata["scopes_supported"] = None
    async with http(world, code_auth(world)) as client:
        assert (await client.post(MCP)).status_code == 200
    assert "scope" not in world.authorizations[0]


async def test_step_up_asks_for_the_union_and_gives_up_after_the_limit() -> None:
    world = World(step_up_scope="mcp:write")
    auth = code_auth(world)
    async with http(world, auth) as client:
        assert (await client.post(MCP)).status_code == 200
        assert (await client.post(MCP)).status_code == 200  # after a step-up
    scopes = [set(q["scope"].split()) for q in world.authorizations]
    assert scopes == [{"mcp:read", "offline_access"}, {"mcp:read", "mcp:write", "offline_access"}]

    stubborn = World(required={"mcp:admin"}, grantable={"mcp:read"})  # never good enough
    auth = code_auth(stubborn, max_authorizations=3)
    async with http(stubborn, auth) as client:
        response = await client.post(MCP)
    assert response.status_code == 403
    assert len(stubborn.authorizations) == 3


async def test_expired_tokens_are_refreshed_with_the_resource_indicator() -> None:
    world = World(expires_in=0)  # expired at once (tokens count as expired 30 s early)
    auth = code_auth(world)
    async with http(world, auth) as client:
        assert (await client.post(MCP)).json() == {"served": "at-1"}
        assert (await client.post(MCP)).json() == {"served": "at-2"}
    assert [f["grant_type"] for f in world.token_forms] == ["authorization_code", "refresh_token"]
    assert world.token_forms[1]["resource"] == MCP
    assert auth.authorizations == 1


async def test_stored_tokens_are_used_by_the_next_process(tmp_path: Path) -> None:
    world = World()
    storage = FileTokenStorage(tmp_path / "tokens.json")
    async with http(world, code_auth(world, storage=storage)) as client:
        await client.post(MCP)
    later = code_auth(world, storage=FileTokenStorage(tmp_path / "tokens.json"))
    async with http(world, later) as client:
        assert (await client.post(MCP)).json() == {"served": "at-1"}
    assert later.authorizations == 0 and len(world.authorizations) == 1


async def test_concurrent_requests_share_one_authorization() -> None:
    world = World()
    auth = code_auth(world)
    results: list[int] = []
    async with http(world, auth) as client:

        async def call() -> None:
            results.append((await client.post(MCP)).status_code)

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(call)
    assert results == [200] * 5
    assert len(world.authorizations) == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"iss": "https://evil.example"}, "RFC 9207"),
        ({"iss": ISSUER + "/"}, "RFC 9207"),  # no normalization: a trailing slash differs
        ({"iss": None}, "advertises the iss parameter"),
        ({"metadata": {"issuer": "https://as.example"}}, "RFC 8414"),
        ({"metadata": {"code_challenge_methods_supported": None}}, "PKCE S256"),
        ({"prm_resource": "https://evil.example/mcp"}, "another resource"),
    ],
)
async def test_unsafe_answers_stop_the_flow_before_the_token_request(
    change: dict[str, Any], message: str
) -> None:
    world = World(**change)
    async with http(world, code_auth(world)) as client:
        with pytest.raises(OAuthError, match=message):
            await client.post(MCP)
    assert not world.token_forms


async def test_an_iss_is_accepted_when_absent_and_not_advertised() -> None:
    world = World(iss=None, metadata={"authorization_response_iss_parameter_supported": None})
    async with http(world, code_auth(world)) as client:
        assert (await client.post(MCP)).status_code == 200


async def test_well_known_discovery_without_the_header_and_client_metadata_documents() -> None:
    world = World(prm_in_header=False, metadata={"client_id_metadata_document_supported": True})
    auth = code_auth(world, client_metadata_url="https://app.example/client.json")
    async with http(world, auth) as client:
        assert (await client.post(MCP)).status_code == 200
    assert world.authorizations[0]["client_id"] == "https://app.example/client.json"
    assert not world.registrations
    assert str(world.requests[1].url) == PRM
    document = auth.client_metadata_document()
    assert document["client_id"] == "https://app.example/client.json"
    assert document["redirect_uris"] == [REDIRECT]
    # It holds no secret, so it names the method (RFC 7591 would default to a secret one).
    assert document["token_endpoint_auth_method"] == "none"


async def test_registration_leaves_the_auth_method_to_the_server_with_a_document_url() -> None:
    # The server does not take client ID metadata documents: the client registers instead,
    # and the server picks how it authenticates.
    world = World()
    auth = code_auth(world, client_metadata_url="https://app.example/client.json")
    async with http(world, auth) as client:
        assert (await client.post(MCP)).status_code == 200
    (registration,) = world.registrations
    assert "token_endpoint_auth_method" not in registration
    assert "client_id" not in registration


async def test_pre_registered_clients_come_first_and_use_basic_auth() -> None:
    world = World()
    auth = code_auth(world, client=ClientRegistration(client_id="pre", client_secret="s3cret"))
    async with http(world, auth) as client:
        assert (await client.post(MCP)).status_code == 200
    assert not world.registrations
    token_request = next(r for r in world.requests if r.url.path.endswith("/token"))
    assert (
        token_request.headers["authorization"]
        == "Basic " + base64.b64encode(b"pre:s3cret").decode()
    )
    assert "client_secret" not in world.token_forms[0]


async def test_the_2025_03_26_fallback_uses_default_endpoints() -> None:
    base = "https://mcp.example"
    seen: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        path = request.url.path
        if path == "/authorize":
            q = request.url.params
            return httpx.Response(
                302, headers={"Location": f"{q['redirect_uri']}?code=c&state={q['state']}"}
            )
        if path == "/register":
            return httpx.Response(201, json={"client_id": "cid"})
        if path == "/token":
            return httpx.Response(200, json={"access_token": "t", "token_type": "bearer"})
        if path == "/mcp":
            if request.headers.get("authorization") == "Bearer t":
                return httpx.Response(200, json={})
            return httpx.Response(401)
        return httpx.Response(404)

    transport = httpx.MockTransport(handler)
    browser = HeadlessAuthorization(transport=transport)
    auth = OAuthClientAuth(
        f"{base}/mcp",
        grant=AuthorizationCodeGrant(
            redirect_handler=browser.redirect, callback_handler=browser.callback
        ),
        http_transport=transport,
    )
    async with httpx.AsyncClient(transport=transport, auth=auth) as client:
        assert (await client.post(f"{base}/mcp")).status_code == 200
    assert seen[-4:] == ["POST /register", "GET /authorize", "POST /token", "POST /mcp"]
    assert "GET /.well-known/oauth-protected-resource/mcp" in seen


async def test_dpop_binds_tokens_and_follows_server_nonces() -> None:
    world = World(dpop_as_nonce="as-nonce", dpop_rs_nonce="rs-nonce")
    key = DPoPKey.generate()
    async with http(world, code_auth(world, dpop=key)) as client:
        assert (await client.post(MCP)).status_code == 200
        assert (await client.post(MCP)).status_code == 200
    _, jkt = world.tokens["at-1"]
    assert jkt == key.thumbprint
    proofs = world.proofs  # the retry after a nonce challenge is a new proof too
    assert len(proofs) == len({_segments(p)[1]["jti"] for p in proofs}) >= 3  # fresh each time
    assert _segments(proofs[-1])[1]["nonce"] == "rs-nonce"


async def test_client_credentials_with_private_key_jwt() -> None:
    world = World(challenge_scope="mcp:read")
    world.client_key = jwk.ECKey.generate_key("P-256")
    auth = OAuthClientAuth(
        MCP,
        grant=ClientCredentialsGrant(),
        client=ClientRegistration(
            client_id="svc",
            token_endpoint_auth_method="private_key_jwt",
            private_key_pem=world.client_key.as_pem(private=True).decode(),
        ),
        http_transport=world.transport(),
    )
    async with http(world, auth) as client:
        assert (await client.post(MCP)).status_code == 200
    (form,) = world.token_forms
    assert form["grant_type"] == "client_credentials" and form["scope"] == "mcp:read"
    assert form["client_assertion_type"].endswith("client-assertion-type:jwt-bearer")
    assert not world.authorizations


async def test_jwt_bearer_errors_are_reported_not_retried() -> None:
    world = World()
    auth = OAuthClientAuth(
        MCP,
        grant=JwtBearerGrant("header.claims.signature"),
        client=ClientRegistration(client_id="wl", token_endpoint_auth_method="none"),
        http_transport=world.transport(),
    )
    async with http(world, auth) as client:
        with pytest.raises(OAuthError, match="unsupported_grant_type"):
            await client.post(MCP)
    assert len(world.token_forms) == 1


async def test_bearer_auth_sends_a_static_token() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200)

    async with httpx.AsyncClient(
        transport=httpx.MockTransport(handler), auth=BearerAuth("abc")
    ) as c:
        await c.get("https://x.example/")
    assert seen == ["Bearer abc"]
    with pytest.raises(ValueError, match="whitespace"):
        BearerAuth("a b")


# ----- end to end through mcptrio's client and server ---------------------------------


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_open_client_authorizes_against_a_protected_mcptrio_server(mode: Any) -> None:
    from examples.everything import server

    async with trio.open_nursery() as nursery:
        info = await nursery.start(serve_http, server, HttpConfig(port=0))
        world = World(upstream_url=httpx.URL(info.url))
        auth = code_auth(world)
        with trio.fail_after(20):
            async with (
                httpx.AsyncHTTPTransport() as world.upstream,
                httpx.AsyncClient(transport=world.transport()) as http_client,
                open_http_transport(
                    MCP, auth=auth, http_client=http_client, open_get_stream=False
                ) as transport,
                open_client(transport, mode=mode) as client,
            ):
                result = await client.call_tool("test_simple_text", {})
                assert result.content[0].text.startswith("This is a simple text response")
        nursery.cancel_scope.cancel()
    assert auth.authorizations == 1
    assert world.served >= 2  # the handshake or discovery, then the call


async def test_concurrent_step_ups_share_one_authorization() -> None:
    world = World(step_up_scope="mcp:write")
    auth = code_auth(world)
    async with http(world, auth) as client:
        assert (await client.post(MCP)).status_code == 200
        results: list[int] = []

        async def call() -> None:
            results.append((await client.post(MCP)).status_code)

        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(call)
    assert results == [200] * 4
    assert len(world.authorizations) == 2


async def test_an_explicit_scope_is_sent_as_given() -> None:
    world = World()
    async with http(world, code_auth(world, scope=["mcp:read", "mcp:write"])) as client:
        assert (await client.post(MCP)).status_code == 200
    assert world.authorizations[0]["scope"] == "mcp:read mcp:write"


async def test_a_refused_refresh_falls_back_to_a_new_authorization() -> None:
    world = World(expires_in=0)
    auth = code_auth(world)
    async with http(world, auth) as client:
        assert (await client.post(MCP)).status_code == 200
        world.refresh_tokens.clear()  # the server forgot every refresh token
        assert (await client.post(MCP)).status_code == 200
    grants = [form["grant_type"] for form in world.token_forms]
    assert grants == ["authorization_code", "refresh_token", "authorization_code"]
    assert auth.authorizations == 2


async def test_oversized_metadata_is_refused_not_buffered() -> None:
    world = World()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/.well-known/oauth-authorization-server"):
            return httpx.Response(200, content=b"[" + b"0," * 200_000 + b"0]")
        return await world.handle(request)

    transport = httpx.MockTransport(handler)
    browser = HeadlessAuthorization(transport=transport)
    auth = OAuthClientAuth(
        MCP,
        grant=AuthorizationCodeGrant(
            redirect_handler=browser.redirect, callback_handler=browser.callback
        ),
        http_transport=transport,
    )
    async with httpx.AsyncClient(transport=transport, auth=auth) as client:
        with pytest.raises(OAuthError, match="more than 262144 bytes"):
            await client.post(MCP)


async def test_headless_authorization_needs_a_redirect() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text="<form>login</form>"))
    browser = HeadlessAuthorization(transport=transport)
    with pytest.raises(OAuthError, match="needs a person to log in"):
        await browser.redirect("https://as.example/authorize?x=1")
    with pytest.raises(OAuthError, match="no authorization redirect"):
        await browser.callback()


# ----- the interactive pair -------------------------------------------------------------


async def test_the_loopback_pair_catches_the_redirect_from_a_browser() -> None:
    world = World()
    opened: list[str] = []

    async def browser(url: str) -> None:
        # A browser: the authorization page redirects, and the browser follows to the
        # loopback listener over a real socket.
        opened.append(url)
        async with httpx.AsyncClient(transport=world.transport()) as page:
            location = (await page.get(url)).headers["location"]
        async with httpx.AsyncClient() as real:
            answer = await real.get(location)
        assert answer.status_code == 200 and b"close this window" in answer.content

    with trio.fail_after(10):
        async with mcptrio.open_loopback_authorization(opener=browser) as loopback:
            assert loopback.redirect_uri.startswith("http://127.0.0.1:")
            assert loopback.redirect_uri.endswith("/callback")
            auth = OAuthClientAuth(
                MCP,
                grant=AuthorizationCodeGrant(
                    redirect_handler=loopback.redirect,
                    callback_handler=loopback.callback,
                    redirect_uri=loopback.redirect_uri,
                ),
                client_metadata=ClientMetadata(redirect_uris=(loopback.redirect_uri,)),
                http_transport=world.transport(),
            )
            async with http(world, auth) as client:
                assert (await client.post(MCP)).status_code == 200
            async with httpx.AsyncClient() as real:
                stray = await real.get(loopback.redirect_uri.replace("/callback", "/favicon.ico"))
            assert stray.status_code == 404
    assert len(opened) == 1
    assert world.token_forms[0]["redirect_uri"] == loopback.redirect_uri


async def test_the_loopback_listener_survives_garbage_and_closes_with_the_block() -> None:
    async def never(url: str) -> None:
        raise AssertionError("not called")  # pragma: no cover

    async with mcptrio.open_loopback_authorization(opener=never) as loopback:
        port = int(loopback.redirect_uri.split(":")[2].split("/")[0])
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"\x00\x01 not http\r\n\r\n")
        await stream.receive_some()  # closed without an answer
        await stream.aclose()
        async with httpx.AsyncClient() as real:
            response = await real.get(f"{loopback.redirect_uri}?code=c&state=s&iss=i")
        assert response.status_code == 200
        assert (await loopback.callback()).params == {"code": "c", "state": "s", "iss": "i"}
    with pytest.raises(OSError):
        await trio.open_tcp_stream("127.0.0.1", port)
    with pytest.raises(ValueError, match="must start with"):
        async with mcptrio.open_loopback_authorization(path="callback"):
            pass  # pragma: no cover


@given(st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=20), max_size=5))
def test_authorization_responses_read_back_their_parameters(params: dict[str, str]) -> None:
    url = httpx.URL(REDIRECT).copy_merge_params(params)
    assert dict(mcptrio.AuthorizationResponse.from_url(str(url)).params) == params


async def test_malformed_metadata_lists_count_as_empty() -> None:
    # A string is not a list: no substring match may turn on offline_access.
    world = World(metadata={"scopes_supported": "mcp:read offline_access"})
    async with http(world, code_auth(world)) as client:
        assert (await client.post(MCP)).status_code == 200
    assert world.authorizations[0]["scope"] == "mcp:read"
    world = World(metadata={"code_challenge_methods_supported": "S256"})
    async with http(world, code_auth(world)) as client:
        with pytest.raises(OAuthError, match="PKCE S256"):
            await client.post(MCP)
