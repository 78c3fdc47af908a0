"""A real OAuth 2.1 authorization server for the tests, built on Authlib (Flask integration).

It runs on 127.0.0.1 port 0 in a thread of its own (Werkzeug's threaded server), so trio tests,
our HTTP client and the SDK client in its own process all reach it over real sockets. It has
real RSA and EC signing keys, a JWKS endpoint, RFC 8414 metadata, the authorization-code grant
with PKCE (S256, required) through an authorize endpoint that approves at once (headless),
refresh tokens, client credentials, RFC 9207 ``iss`` in authorization responses, dynamic client
registration (RFC 7591), client ID metadata documents (fetched over HTTPS once
``document_tls`` is set), token introspection (RFC 7662) and ``private_key_jwt`` client
authentication (RFC 7523 section 2.2; the assertion's ``aud`` is the issuer or the token
endpoint, each ``jti`` accepted once).
Access tokens are RFC 9068 JWTs whose ``aud`` is the RFC 8707 ``resource`` the client asked for.

Use it through the ``auth_server`` fixture (registered in ``conftest.py``), which yields an
:class:`AuthServer`: its ``issuer`` URL, a pre-registered confidential client
(``client_id``/``client_secret``), :meth:`AuthServer.add_client` for others (a key-holding
one, say), :meth:`AuthServer.mint` to make tokens directly (any claims,
algorithm or key, for refusal tests), :meth:`AuthServer.rotate_keys` and introspection of
opaque tokens through :meth:`AuthServer.issue_opaque`.
"""

from __future__ import annotations

import base64
import os
import secrets
import ssl
import threading
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import attrs
import httpx
import pytest
import trio

os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")  # plain http on 127.0.0.1 in tests

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidClientError, grants
from authlib.oauth2.rfc6749.models import (
    AuthorizationCodeMixin,
    ClientMixin,
    TokenMixin,
)
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7591 import ClientRegistrationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import Flask, jsonify
from flask import request as flask_request
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey
from werkzeug.serving import make_server

__all__ = ["AuthServer", "auth_server_fixture", "open_auth_server"]

SCOPES = ("mcp:read", "mcp:write", "mcp:admin")


@attrs.define
class _User:
    subject: str

    def get_user_id(self) -> str:
        return self.subject


@attrs.define(eq=False)
class _Client(ClientMixin):  # type: ignore[misc]
    client_id: str
    client_secret: str | None
    metadata: dict[str, Any]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        uris = self.metadata.get("redirect_uris") or []
        return uris[0] if uris else None

    def get_allowed_scope(self, scope: str | None) -> str:
        allowed = set((self.metadata.get("scope") or " ".join(SCOPES)).split())
        return " ".join(s for s in (scope or "").split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in (self.metadata.get("redirect_uris") or [])

    def check_client_secret(self, client_secret: str) -> bool:
        return self.client_secret is not None and secrets.compare_digest(
            client_secret, self.client_secret
        )

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if endpoint == "token":
            return method == self.metadata.get("token_endpoint_auth_method", "client_secret_basic")
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        kinds = self.metadata.get("grant_types") or ["authorization_code", "refresh_token"]
        return grant_type in kinds


@attrs.define(eq=False)
class _Code(AuthorizationCodeMixin):  # type: ignore[misc]
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    subject: str
    code_challenge: str | None
    code_challenge_method: str | None
    resource: str | None
    expires_at: float

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@attrs.define(eq=False)
class _Token(TokenMixin):  # type: ignore[misc]
    access_token: str
    refresh_token: str | None
    client_id: str
    scope: str
    subject: str
    audience: str | None
    issued_at: float
    expires_in: int
    revoked: bool = False

    def check_client(self, client: _Client) -> bool:
        return client.client_id == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return time.time() >= self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return self.revoked

    def get_user(self) -> _User:
        return _User(self.subject)

    def get_client(self) -> _Client:
        raise NotImplementedError


class AuthServer:
    """The running authorization server and the means to drive it from a test."""

    def __init__(self, default_audience: str | None = None) -> None:
        self.issuer = ""
        self.default_audience = default_audience
        """``aud`` of tokens whose request named no ``resource``."""
        self.subject = "alice"
        """Who the authorize endpoint approves as (set it to log in as someone else)."""
        self._lock = threading.Lock()
        self.clients: dict[str, _Client] = {}
        self.codes: dict[str, _Code] = {}
        self.tokens: dict[str, _Token] = {}
        self.opaque: dict[str, dict[str, Any]] = {}
        self.rsa_key = RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "use": "sig"})
        self.ec_key = ECKey.generate_key("P-256", parameters={"kid": "ec-1", "use": "sig"})
        self._published = [self.rsa_key, self.ec_key]
        self._signing = self.rsa_key
        self.jwks_fetches = 0
        self.introspections = 0
        self.token_lifetime = 3600
        """``expires_in`` (seconds) of the access tokens the token endpoint issues."""
        self.grants: list[tuple[str, str]] = []
        """``(grant_type, subject)`` of every token the token endpoint issued, in order."""
        self.assertion_ids: set[str] = set()
        """The ``jti`` of every ``private_key_jwt`` assertion accepted (each only once)."""
        self.response_issuer: str | None = None
        """The ``iss`` authorization responses carry (None: the issuer; else a mix-up)."""
        self.document_tls: ssl.SSLContext | None = None
        """Trust for fetching client ID metadata documents; setting it turns them on."""
        self.document_fetches: list[str] = []
        """The client ID metadata document URLs fetched, in order."""
        self.requests: list[tuple[str, str, str | None]] = []
        """``(method, path, Authorization header)`` of every request the server received."""
        self.client_id = "mcptrio-test-client"
        self.client_secret = secrets.token_urlsafe(24)
        self.clients[self.client_id] = _Client(
            self.client_id,
            self.client_secret,
            {
                "redirect_uris": ["http://127.0.0.1:33418/callback"],
                "token_endpoint_auth_method": "client_secret_basic",
                "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
                "scope": " ".join(SCOPES),
            },
        )
        self.app = self._build_app()

    # -- endpoints --------------------------------------------------------------------------

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/jwks"

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/token"

    @property
    def authorization_endpoint(self) -> str:
        return f"{self.issuer}/authorize"

    @property
    def registration_endpoint(self) -> str:
        return f"{self.issuer}/register"

    @property
    def introspection_endpoint(self) -> str:
        return f"{self.issuer}/introspect"

    def metadata(self) -> dict[str, Any]:
        """The RFC 8414 authorization server metadata."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.authorization_endpoint,
            "token_endpoint": self.token_endpoint,
            "registration_endpoint": self.registration_endpoint,
            "introspection_endpoint": self.introspection_endpoint,
            "jwks_uri": self.jwks_uri,
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "authorization_response_iss_parameter_supported": True,
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
                "none",
            ],
            "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
            "client_id_metadata_document_supported": self.document_tls is not None,
        }

    def public_jwks(self) -> dict[str, Any]:
        with self._lock:
            keys = list(self._published)
        return KeySet(keys).as_dict(private=False)

    def add_client(
        self,
        client_id: str,
        *,
        secret: str | None = None,
        method: str = "client_secret_basic",
        grant_types: Iterable[str] = ("client_credentials",),
        jwks: Mapping[str, Any] | None = None,
        scope: str = " ".join(SCOPES),
    ) -> None:
        """Register a client directly: ``method`` is how it authenticates at the token
        endpoint; ``jwks`` holds the public keys of a ``private_key_jwt`` client."""
        metadata: dict[str, Any] = {
            "token_endpoint_auth_method": method,
            "grant_types": list(grant_types),
            "scope": scope,
        }
        if jwks is not None:
            metadata["jwks"] = dict(jwks)
        self.clients[client_id] = _Client(client_id, secret, metadata)

    def _client_from_document(self, url: str) -> _Client:
        """The client a client ID metadata document describes (fetched on each use)."""
        self.document_fetches.append(url)
        try:
            response = httpx.get(url, verify=self.document_tls or False, timeout=5.0)
            document = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as exc:
            raise InvalidClientError(description=f"client metadata document: {exc}") from exc
        if not isinstance(document, dict) or document.get("client_id") != url:
            raise InvalidClientError(description="the client metadata document does not name it")
        # RFC 7591's default is client_secret_basic, and a document cannot hold a secret.
        method = document.get("token_endpoint_auth_method", "client_secret_basic")
        if method != "none":
            raise InvalidClientError(description=f"a client metadata document cannot use {method}")
        return _Client(url, None, document)

    # -- direct token making (tests) ----------------------------------------------------------

    def mint(
        self,
        *,
        subject: str = "alice",
        scopes: Iterable[str] = ("mcp:read",),
        audience: str | list[str] | None = None,
        issuer: str | None = None,
        expires_in: float = 300.0,
        not_before: float | None = None,
        client_id: str | None = None,
        alg: str | None = None,
        key: RSAKey | ECKey | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """A signed JWT access token with exactly these properties (defaults: valid)."""
        key = key or self._signing
        if alg is None:
            alg = "ES256" if isinstance(key, ECKey) else "RS256"
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer if issuer is None else issuer,
            "sub": subject,
            "aud": audience if audience is not None else self.default_audience,
            "client_id": client_id or self.client_id,
            "scope": " ".join(scopes),
            "iat": now,
            "exp": int(now + expires_in),
            "jti": secrets.token_hex(8),
        }
        if not_before is not None:
            claims["nbf"] = int(not_before)
        claims.update(extra or {})
        header = {"alg": alg, "typ": "at+jwt", "kid": key.kid}
        return jwt.encode(header, claims, key, algorithms=[alg])

    @staticmethod
    def unsigned(claims: Mapping[str, Any]) -> str:
        """An ``alg: none`` token (which no resource server may accept)."""

        def part(data: Mapping[str, Any]) -> str:
            import json

            raw = json.dumps(dict(data)).encode()
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        return f"{part({'alg': 'none', 'typ': 'at+jwt'})}.{part(claims)}."

    def valid_claims(self, **overrides: Any) -> dict[str, Any]:
        """Claims a valid token would carry (for hand-built tokens)."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": "alice",
            "aud": self.default_audience,
            "client_id": self.client_id,
            "scope": "mcp:read",
            "iat": now,
            "exp": now + 300,
        }
        claims.update(overrides)
        return claims

    def rotate_keys(self, *, keep_old: bool = False) -> str:
        """Sign with a brand-new RSA key from now on; returns its key id."""
        kid = f"rsa-{secrets.token_hex(4)}"
        new = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig"})
        with self._lock:
            self._published = [new, *(self._published if keep_old else [])]
            self._signing = new
        return kid

    def issue_opaque(
        self,
        *,
        subject: str = "alice",
        scopes: Iterable[str] = ("mcp:read",),
        audience: str | None = None,
        active: bool = True,
        expires_in: float = 300.0,
    ) -> str:
        """An opaque (non-JWT) token the introspection endpoint knows."""
        token = secrets.token_urlsafe(24)
        now = int(time.time())
        self.opaque[token] = {
            "active": active,
            "sub": subject,
            "client_id": self.client_id,
            "scope": " ".join(scopes),
            "aud": audience if audience is not None else self.default_audience,
            "iss": self.issuer,
            "iat": now,
            "exp": int(now + expires_in),
            "token_type": "Bearer",
        }
        return token

    # -- the Flask app ------------------------------------------------------------------------

    def _build_app(self) -> Flask:
        app = Flask("mcptrio-test-as")
        app.config["OAUTH2_SCOPES_SUPPORTED"] = list(SCOPES)
        outer = self

        class TokenGenerator(JWTBearerTokenGenerator):  # type: ignore[misc]
            def get_jwks(self) -> dict[str, Any]:
                with outer._lock:
                    return outer._signing.as_dict(private=True)

            def get_audiences(self, client: Any, user: Any, scope: Any) -> Any:
                resource = flask_request.values.get("resource")
                code = getattr(flask_request, "mcptrio_resource", None)
                return resource or code or outer.default_audience

        def query_client(client_id: str) -> _Client | None:
            found = outer.clients.get(client_id)
            if found is None and outer.document_tls is not None and client_id.startswith("https:"):
                found = outer._client_from_document(client_id)
            return found

        def save_token(token: dict[str, Any], request: Any) -> None:
            claims = jwt.decode(token["access_token"], outer._signing).claims
            subject = request.user.get_user_id() if request.user else request.client.client_id
            record = _Token(
                access_token=token["access_token"],
                refresh_token=token.get("refresh_token"),
                client_id=request.client.client_id,
                scope=token.get("scope", ""),
                subject=subject,
                audience=claims.get("aud"),
                issued_at=time.time(),
                expires_in=int(token.get("expires_in", 3600)),
            )
            with outer._lock:
                outer.grants.append((flask_request.form.get("grant_type", ""), subject))
                outer.tokens[record.access_token] = record
                if record.refresh_token:
                    outer.tokens[record.refresh_token] = record

        server = AuthorizationServer(app, query_client=query_client, save_token=save_token)
        server.register_token_generator(
            "default",
            TokenGenerator(
                "",
                refresh_token_generator=lambda **_: secrets.token_hex(24),
                expires_generator=lambda client, grant_type: outer.token_lifetime,
            ),
        )

        class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ]

            def save_authorization_code(self, code: str, request: Any) -> None:
                payload = request.payload
                outer.codes[code] = _Code(
                    code=code,
                    client_id=request.client.client_id,
                    redirect_uri=payload.redirect_uri,
                    scope=payload.scope or "",
                    subject=request.user.get_user_id(),
                    code_challenge=payload.data.get("code_challenge"),
                    code_challenge_method=payload.data.get("code_challenge_method"),
                    resource=payload.data.get("resource"),
                    expires_at=time.time() + 300,
                )

            def query_authorization_code(self, code: str, client: _Client) -> _Code | None:
                found = outer.codes.get(code)
                if found is None or found.client_id != client.client_id:
                    return None
                if found.expires_at < time.time():
                    return None
                flask_request.mcptrio_resource = found.resource  # type: ignore[attr-defined]
                return found

            def delete_authorization_code(self, authorization_code: _Code) -> None:
                outer.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code: _Code) -> _User:
                return _User(authorization_code.subject)

        class RefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ]
            INCLUDE_NEW_REFRESH_TOKEN = True

            def authenticate_refresh_token(self, refresh_token: str) -> _Token | None:
                found = outer.tokens.get(refresh_token)
                if found is None or found.refresh_token != refresh_token or found.revoked:
                    return None
                flask_request.mcptrio_resource = found.audience  # type: ignore[attr-defined]
                return found

            def authenticate_user(self, refresh_token: _Token) -> _User:
                return _User(refresh_token.subject)

            def revoke_old_credential(self, refresh_token: _Token) -> None:
                refresh_token.revoked = True

        class Registration(ClientRegistrationEndpoint):  # type: ignore[misc]
            def authenticate_token(self, request: Any) -> bool:
                return True  # open registration

            def get_server_metadata(self) -> dict[str, Any]:
                return outer.metadata()

            def save_client(
                self, client_info: dict[str, Any], client_metadata: dict[str, Any], request: Any
            ) -> _Client:
                method = client_metadata.get("token_endpoint_auth_method", "client_secret_basic")
                secret = None if method == "none" else client_info.get("client_secret")
                client = _Client(client_info["client_id"], secret, dict(client_metadata))
                outer.clients[client.client_id] = client
                return client

        class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
            def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
                outer.introspections += 1
                if token_string in outer.opaque:
                    return outer.opaque[token_string]
                return outer.tokens.get(token_string)

            def create_introspection_payload(self, token: Any) -> dict[str, Any]:
                if isinstance(token, dict):
                    return dict(token)
                return super().create_introspection_payload(token)  # type: ignore[no-any-return]

            def introspect_token(self, token: Any) -> dict[str, Any]:
                return {
                    "active": not token.revoked and not token.is_expired(),
                    "client_id": token.client_id,
                    "scope": token.scope,
                    "sub": token.subject,
                    "aud": token.audience,
                    "iss": outer.issuer,
                    "exp": int(token.issued_at + token.expires_in),
                    "iat": int(token.issued_at),
                    "token_type": "Bearer",
                }

            def check_permission(self, token: Any, client: Any, request: Any) -> bool:
                return True

            def authenticate_token(self, request: Any, client: Any) -> Any:
                # Opaque test tokens are plain dicts, which the base class cannot check.
                self.check_params(request, client)
                token = self.query_token(request.form["token"], request.form.get("token_type_hint"))
                if isinstance(token, dict) and not token.get("active"):
                    return None
                return token

        class Issuer(IssuerParameter):  # type: ignore[misc]
            def get_issuer(self) -> str:
                return outer.response_issuer or outer.issuer

        class ClientCredentials(grants.ClientCredentialsGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = [
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
            ]

        class PrivateKeyJwt(JWTBearerClientAssertion):  # type: ignore[misc]
            CLIENT_AUTH_METHOD = "private_key_jwt"

            def get_audiences(self) -> list[str]:
                return [outer.issuer, outer.token_endpoint]

            def validate_jti(self, claims: Any, jti: str) -> bool:
                with outer._lock:
                    if jti in outer.assertion_ids:
                        return False
                    outer.assertion_ids.add(jti)
                    return True

            def resolve_client_public_key(self, client: _Client) -> KeySet:
                return KeySet.import_key_set(client.metadata.get("jwks") or {"keys": []})

        server.register_grant(CodeGrant, [CodeChallenge(required=True)])
        server.register_grant(RefreshGrant)
        server.register_grant(ClientCredentials)
        server.register_extension(Issuer())
        server.register_client_auth_method("private_key_jwt", PrivateKeyJwt())
        server.register_endpoint(Registration)
        server.register_endpoint(Introspection)

        @app.before_request
        def _record() -> None:
            with outer._lock:
                outer.requests.append(
                    (
                        flask_request.method,
                        flask_request.path,
                        flask_request.headers.get("Authorization"),
                    )
                )

        @app.get("/.well-known/oauth-authorization-server")
        def _metadata() -> Any:
            return jsonify(outer.metadata())

        @app.get("/jwks")
        def _jwks() -> Any:
            outer.jwks_fetches += 1
            return jsonify(outer.public_jwks())

        @app.get("/authorize")
        def _authorize() -> Any:
            # Headless: the user is already logged in and approves everything.
            user = _User(outer.subject)
            try:
                grant = server.get_consent_grant(end_user=user)
            except OAuth2Error as error:
                return jsonify(dict(error.get_body())), error.status_code
            return server.create_authorization_response(grant_user=user, grant=grant)

        @app.post("/token")
        def _token() -> Any:
            return server.create_token_response()

        @app.post("/register")
        def _register() -> Any:
            return server.create_endpoint_response("client_registration")

        @app.post("/introspect")
        def _introspect() -> Any:
            return server.create_endpoint_response("introspection")

        self._server = server
        return app

    def _set_issuer(self, issuer: str) -> None:
        self.issuer = issuer
        generator = self._server._token_generators["default"]
        generator.issuer = issuer


@asynccontextmanager
async def open_auth_server(default_audience: str | None = None) -> AsyncIterator[AuthServer]:
    """Run an :class:`AuthServer` on 127.0.0.1 port 0 until the block ends."""
    auth = AuthServer(default_audience)
    httpd = make_server("127.0.0.1", 0, auth.app, threaded=True)
    auth._set_issuer(f"http://127.0.0.1:{httpd.server_port}")
    thread = threading.Thread(target=httpd.serve_forever, name="test-auth-server", daemon=True)
    thread.start()
    try:
        yield auth
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(httpd.shutdown)
            httpd.server_close()
            await trio.to_thread.run_sync(thread.join)


@pytest.fixture(name="auth_server")
async def auth_server_fixture() -> AsyncIterator[AuthServer]:
    """A running authorization server (see the module docstring)."""
    async with open_auth_server() as auth:
        yield auth
