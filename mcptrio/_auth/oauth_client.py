"""OAuth 2.1 for MCP clients, as an ``httpx.Auth`` for :func:`~mcptrio.open_http_transport`.

On a ``401`` from the MCP server the auth finds the protected resource metadata (RFC 9728:
the ``WWW-Authenticate`` ``resource_metadata`` URL, then the path-specific and root
well-known URLs), then the authorization server's metadata (RFC 8414 and OpenID Connect
discovery, in the order the MCP specification gives, with the 2025-03-26 fallbacks), picks
or obtains a client registration (pre-registered, client ID metadata document, dynamic
registration), runs a grant (authorization code with PKCE, client credentials, or an
RFC 7523 JWT bearer assertion) and retries the request with the new token. A ``403``
``insufficient_scope`` re-authorizes with the union of the scopes, a bounded number of
times. Tokens are refreshed before they expire and kept in a :class:`TokenStorage`.

OAuth traffic goes through an HTTP client of its own, opened for each authorization, so
the MCP server's token is never sent to the authorization server and vice versa.
"""

from __future__ import annotations

import base64
import logging
import re
import secrets
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal
from urllib.parse import parse_qsl, quote_plus

import attrs
import httpx
import orjson
import trio

from .dpop import DPoPKey, b64url_sha256, sign_client_assertion
from .token_storage import ClientRegistration, MemoryTokenStorage, OAuthTokens, TokenStorage

log = logging.getLogger("mcptrio.oauth")

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
_CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
_ID_JAG_TYPE = "urn:ietf:params:oauth:token-type:id-jag"
_MAX_BODY_BYTES = 256 * 1024
_OAUTH_TIMEOUT = httpx.Timeout(30.0)
_ACCEPT_JSON = {"Accept": "application/json"}


class OAuthError(httpx.TransportError):
    """Authorization could not be obtained; the message says which step failed and why.

    A subclass of ``httpx.TransportError``, so an HTTP transport reports it as a failed
    request rather than a broken connection.
    """


# ----- WWW-Authenticate -----------------------------------------------------------------

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_SCHEME = re.compile(rf"[ \t,]*({_TOKEN})")
_PARAM = re.compile(rf'[ \t]*({_TOKEN})[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"|({_TOKEN}))[ \t]*')
_TOKEN68 = re.compile(r"[ \t]*([A-Za-z0-9\-._~+/]+=*)[ \t]*(?=,|$)")
_SEPARATOR = re.compile(r"[ \t]*,")
_UNESCAPE = re.compile(r"\\(.)")


@attrs.frozen
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header: its scheme and parameters.

    ``scheme`` keeps its spelling (compare case-insensitively); parameter names are
    lowercased; ``token68`` is the rare unnamed credential form.
    """

    scheme: str
    params: Mapping[str, str] = attrs.field(factory=dict)
    token68: str | None = None

    def scopes(self) -> list[str]:
        """The space-separated ``scope`` parameter as a list (empty when absent)."""
        return self.params.get("scope", "").split()


def parse_www_authenticate(value: str) -> list[Challenge]:
    """The challenges in a ``WWW-Authenticate`` value (RFC 9110 section 11.6.1).

    Tolerant: text that does not parse ends the list instead of raising, so a malformed
    header from a server costs only its unreadable tail.
    """
    challenges: list[Challenge] = []
    position = 0
    while position < len(value):
        scheme = _SCHEME.match(value, position)
        if scheme is None:
            break
        position = scheme.end()
        if position < len(value) and value[position] not in " \t,":
            break
        params: dict[str, str] = {}
        token68: str | None = None
        first = _PARAM.match(value, position)
        if first is None and (t68 := _TOKEN68.match(value, position)) is not None:
            token68 = t68.group(1)
            position = t68.end()
        while first is not None:
            name = first.group(1).lower()
            quoted = first.group(2)
            text = _UNESCAPE.sub(r"\1", quoted) if quoted is not None else first.group(3)
            params.setdefault(name, text)
            position = first.end()
            separator = _SEPARATOR.match(value, position)
            if separator is None:
                break
            first = _PARAM.match(value, separator.end())
            if first is None:
                position = separator.end() - 1  # the comma begins the next challenge
        challenges.append(Challenge(scheme.group(1), params, token68))
        rest = _SEPARATOR.match(value, position)
        if rest is not None:
            position = rest.end()
        elif value[position:].strip():
            break
        else:
            position = len(value)
    return challenges


def _challenge(response: httpx.Response) -> Challenge | None:
    """The Bearer or DPoP challenge of a response (the first one with parameters wins)."""
    found: Challenge | None = None
    for header in response.headers.get_list("www-authenticate"):
        for challenge in parse_www_authenticate(header):
            if challenge.scheme.lower() in ("bearer", "dpop") and (
                found is None or (not found.params and challenge.params)
            ):
                found = challenge
    return found


# ----- discovery URLs -------------------------------------------------------------------


def protected_resource_metadata_urls(server_url: str, header_url: str | None = None) -> list[str]:
    """Where to look for the protected resource metadata, in order.

    The ``resource_metadata`` URL from ``WWW-Authenticate`` first, then the well-known URL
    for the MCP endpoint's path, then the root well-known URL (RFC 9728 section 3).
    """
    url = httpx.URL(server_url)
    root = url.copy_with(path="/.well-known/oauth-protected-resource", query=None, fragment=None)
    urls = [header_url] if header_url else []
    path = url.path.rstrip("/")
    if path:
        urls.append(str(root.copy_with(path=root.path + path)))
    urls.append(str(root))
    return list(dict.fromkeys(urls))


def authorization_server_metadata_urls(issuer: str) -> list[str]:
    """Where to look for an authorization server's metadata, in the MCP specification's order.

    With a path: RFC 8414 with the path inserted, OpenID Connect with the path inserted,
    OpenID Connect with the path appended. Without one: RFC 8414, then OpenID Connect.
    """
    url = httpx.URL(issuer)
    base = url.copy_with(path="/", query=None, fragment=None)
    path = url.path.rstrip("/")
    oauth = "/.well-known/oauth-authorization-server"
    oidc = "/.well-known/openid-configuration"
    if not path:
        return [str(base.copy_with(path=oauth)), str(base.copy_with(path=oidc))]
    return [
        str(base.copy_with(path=oauth + path)),
        str(base.copy_with(path=oidc + path)),
        str(base.copy_with(path=path + oidc)),
    ]


def select_scope(
    challenge_scopes: Sequence[str],
    scopes_supported: Sequence[str] | None,
    *,
    previous: Sequence[str] = (),
) -> list[str] | None:
    """The scopes to ask for; None means omit the ``scope`` parameter.

    The challenge's ``scope`` wins, then every scope in the resource's
    ``scopes_supported``; on a step-up the scopes asked for before are kept (their union).
    """
    chosen = list(challenge_scopes) or list(scopes_supported or [])
    if previous:
        chosen = list(dict.fromkeys([*previous, *chosen]))
    return chosen or None


def _resource_allowed(server_url: str, resource: str) -> bool:
    """Whether the metadata's ``resource`` covers the MCP endpoint (same origin, path prefix)."""
    server, claimed = httpx.URL(server_url), httpx.URL(resource)
    if (server.scheme, server.host, server.port) != (claimed.scheme, claimed.host, claimed.port):
        return False
    prefix = claimed.path.rstrip("/")
    return server.path == prefix or server.path.startswith(prefix + "/") or not prefix


# ----- PKCE and the authorization response ----------------------------------------------


def pkce_pair() -> tuple[str, str]:
    """A fresh PKCE ``(code_verifier, code_challenge)`` for the S256 method (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)  # 64 characters of [A-Za-z0-9_-]
    return verifier, b64url_sha256(verifier)


@attrs.frozen
class AuthorizationResponse:
    """What the authorization server sent back to the redirect URI (its query parameters)."""

    params: Mapping[str, str]

    @classmethod
    def from_url(cls, url: str) -> AuthorizationResponse:
        """Parse the redirect URI the browser was sent to."""
        return cls(dict(parse_qsl(httpx.URL(url).query.decode(), keep_blank_values=True)))


RedirectHandler = Callable[[str], Awaitable[None]]
"""Sends the user (a browser) to the authorization URL."""
CallbackHandler = Callable[[], Awaitable[AuthorizationResponse]]
"""Waits for the authorization server's redirect back and returns what it carried."""


class HeadlessAuthorization:
    """A redirect/callback pair for tests and automation: no browser, no user.

    The redirect handler fetches the authorization URL itself, without following
    redirects, and keeps the ``Location`` it is sent to; the callback handler returns its
    parameters. Works with authorization servers that approve without a login page.
    """

    def __init__(self, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._transport = transport
        self._location: str | None = None

    async def redirect(self, authorization_url: str) -> None:
        """Fetch ``authorization_url`` and remember where the server redirects."""
        what = "the authorization endpoint"
        async with httpx.AsyncClient(transport=self._transport, timeout=_OAUTH_TIMEOUT) as http:
            response, raw = await _fetch(http, "GET", authorization_url, what)
        location = response.headers.get("location")
        if not response.is_redirect or not location:
            if response.is_error:
                # An OAuth error the server could not redirect (RFC 6749 section 4.1.2.1).
                error = _oauth_error_text(_json_object(response, raw, what))
                raise OAuthError(
                    f"the authorization endpoint refused the request: {error} "
                    f"(HTTP {response.status_code})"
                )
            raise OAuthError(
                f"the authorization endpoint answered HTTP {response.status_code} without a "
                "redirect; it needs a person to log in, so use an interactive redirect handler"
            )
        self._location = str(response.url.join(location))

    async def callback(self) -> AuthorizationResponse:
        """The parameters of the redirect :meth:`redirect` saw."""
        if self._location is None:
            raise OAuthError("no authorization redirect was seen")
        location, self._location = self._location, None
        return AuthorizationResponse.from_url(location)


# ----- grants -------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ClientMetadata:
    """What dynamic registration (RFC 7591) and a client ID metadata document describe.

    ``application_type`` is ``native`` (apps on the user's device, localhost redirects)
    or ``web``.
    """

    client_name: str = "mcptrio"
    redirect_uris: tuple[str, ...] = ("http://127.0.0.1:33418/callback",)
    application_type: Literal["native", "web"] = "native"
    client_uri: str | None = None
    token_endpoint_auth_method: str | None = None


@attrs.frozen(kw_only=True)
class AuthorizationCodeGrant:
    """The authorization code grant with PKCE S256, for a user at a browser.

    ``redirect_handler`` sends the user to the authorization URL; ``callback_handler``
    waits for the redirect back to ``redirect_uri`` (default: the first of the client
    metadata's). Use :class:`HeadlessAuthorization` for both in tests.
    """

    redirect_handler: RedirectHandler
    callback_handler: CallbackHandler
    redirect_uri: str | None = None


@attrs.frozen
class ClientCredentialsGrant:
    """The client credentials grant: the client acts on its own behalf (no user)."""


@attrs.frozen
class GrantContext:
    """What an assertion provider of a :class:`JwtBearerGrant` may use."""

    issuer: str | None
    token_endpoint: str
    resource: str
    scope: str | None
    http: httpx.AsyncClient


AssertionProvider = Callable[[GrantContext], Awaitable[str]]


@attrs.frozen
class JwtBearerGrant:
    """The RFC 7523 JWT bearer grant: a signed assertion stands for the client or user.

    ``assertion`` is a JWT (a workload identity token, say) or an async function producing
    one, such as :class:`IdJagAssertion` for enterprise-managed authorization.
    """

    assertion: str | AssertionProvider


@attrs.frozen(kw_only=True)
class IdJagAssertion:
    """Enterprise-managed authorization: trade an identity provider's ID token for an ID-JAG.

    Calls the identity provider's token endpoint with an RFC 8693 token exchange
    (``requested_token_type`` ID-JAG, ``audience`` the authorization server's issuer,
    ``resource`` the MCP server) and returns the identity assertion JWT authorization
    grant, for :class:`JwtBearerGrant`.
    """

    idp_token_endpoint: str
    id_token: str = attrs.field(repr=False)
    idp_client_id: str | None = None
    idp_client_secret: str | None = attrs.field(default=None, repr=False)

    async def __call__(self, context: GrantContext) -> str:
        form = {
            "grant_type": TOKEN_EXCHANGE,
            "requested_token_type": _ID_JAG_TYPE,
            "subject_token": self.id_token,
            "subject_token_type": _ID_TOKEN_TYPE,
            "audience": context.issuer or context.token_endpoint,
            "resource": context.resource,
        }
        if context.scope:
            form["scope"] = context.scope
        headers = {"Accept": "application/json"}
        if self.idp_client_id and self.idp_client_secret:
            headers["Authorization"] = _basic(self.idp_client_id, self.idp_client_secret)
        elif self.idp_client_id:
            form["client_id"] = self.idp_client_id
        what = "the identity provider's token exchange"
        response, raw = await _fetch(
            context.http, "POST", self.idp_token_endpoint, what, data=form, headers=headers
        )
        body = _json_object(response, raw, what)
        if response.status_code != 200 or not isinstance(body.get("access_token"), str):
            raise OAuthError(
                f"the identity provider refused the token exchange: {_oauth_error_text(body)}"
                f" (HTTP {response.status_code})"
            )
        return str(body["access_token"])


Grant = AuthorizationCodeGrant | ClientCredentialsGrant | JwtBearerGrant


# ----- discovered state ----------------------------------------------------------------


@attrs.frozen
class _Server:
    """An authorization server as discovered: its metadata (maybe defaulted) and issuer."""

    issuer: str | None  # None: 2025-03-26 default endpoints, nothing to compare against
    key: str  # what registrations are stored under
    metadata: Mapping[str, Any]

    @property
    def token_endpoint(self) -> str:
        return str(self.metadata["token_endpoint"])


@attrs.frozen
class _Context:
    server: _Server
    resource: str
    scopes_supported: tuple[str, ...] | None
    client: ClientRegistration


def _basic(client_id: str, secret: str) -> str:
    # RFC 6749 section 2.3.1: both parts are form-encoded before Basic encoding.
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


async def _fetch(
    http: httpx.AsyncClient, method: str, url: str, what: str, **options: Any
) -> tuple[httpx.Response, bytes]:
    """One OAuth request, its body read up to ``_MAX_BODY_BYTES`` (an OAuth server's
    documents are small; anything bigger is refused, not buffered)."""
    body = bytearray()
    async with http.stream(method, url, **options) as response:
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > _MAX_BODY_BYTES:
                raise OAuthError(f"{what} sent more than {_MAX_BODY_BYTES} bytes")
    return response, bytes(body)


def _json_object(response: httpx.Response, body: bytes, what: str) -> dict[str, Any]:
    try:
        loaded = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        if response.is_success:
            raise OAuthError(f"{what} did not answer with JSON") from None
        return {}
    if not isinstance(loaded, dict):
        raise OAuthError(f"{what} answered with JSON that is not an object")
    return loaded


def _oauth_error_text(body: Mapping[str, Any]) -> str:
    error = body.get("error") or "no error code"
    description = body.get("error_description")
    return f"{error}: {description}" if description else str(error)


# ----- the auth -----------------------------------------------------------------------


class BearerAuth(httpx.Auth):
    """A static bearer token on every request (for tokens obtained elsewhere)."""

    def __init__(self, token: str) -> None:
        if not token or any(c.isspace() for c in token):
            raise ValueError("a bearer token is a non-empty string without whitespace")
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Any:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


class OAuthClientAuth(httpx.Auth):
    """OAuth 2.1 authorization for an MCP server, as an ``httpx.Auth``.

    Pass it as ``auth=`` to :func:`~mcptrio.open_http_transport`. ``server_url`` is the
    MCP endpoint (the RFC 8707 ``resource`` unless the protected resource metadata names
    a canonical one). ``grant`` says how tokens are obtained. ``client`` is a
    pre-registered client (used first); otherwise ``client_metadata_url`` is used as a
    client ID metadata document when the authorization server supports them, else the
    client registers dynamically with ``client_metadata``. ``scope`` overrides the scope
    selection (a step-up still adds the scopes a ``403`` names); ``offline_access`` asks
    for a refresh token when the server offers one. With ``dpop`` and an authorization
    server that supports DPoP, tokens are bound to the key and every request carries a
    fresh proof. ``max_authorizations`` bounds the authorizations (first one and step-ups)
    made for one request.

    ``http_transport`` carries the OAuth requests (default: httpx's).
    """

    def __init__(
        self,
        server_url: str,
        *,
        grant: Grant,
        client: ClientRegistration | None = None,
        client_metadata: ClientMetadata | None = None,
        client_metadata_url: str | None = None,
        storage: TokenStorage | None = None,
        scope: Sequence[str] | None = None,
        offline_access: bool = True,
        dpop: DPoPKey | None = None,
        max_authorizations: int = 3,
        http_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if httpx.URL(server_url).scheme not in ("http", "https"):
            raise ValueError(f"server_url must be an http or https URL, not {server_url!r}")
        if isinstance(max_authorizations, bool) or max_authorizations < 1:
            raise ValueError("max_authorizations must be at least 1")
        if client_metadata_url is not None:
            parsed = httpx.URL(client_metadata_url)
            if parsed.scheme != "https" or parsed.path in ("", "/"):
                raise ValueError("client_metadata_url must be an https URL with a path")
        self.server_url = server_url
        self.grant = grant
        self._preregistered = client
        self._metadata = client_metadata or ClientMetadata()
        self._metadata_url = client_metadata_url
        self.storage: TokenStorage = storage if storage is not None else MemoryTokenStorage()
        self._scope = list(scope) if scope is not None else None
        self._offline_access = offline_access
        self._dpop = dpop
        self._max_authorizations = max_authorizations
        self._http_transport = http_transport
        self._lock = trio.Lock()
        self._context: _Context | None = None
        self._tokens: OAuthTokens | None = None
        self._loaded = False
        self._requested: list[str] = []
        self._nonces: dict[str, str] = {}
        self.authorizations = 0
        """How many grants (not refreshes) this auth has run."""

    # -- httpx.Auth ---------------------------------------------------------------------

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        async with self._lock:
            tokens = await self._current_tokens()
        authorizations = 0
        nonce_retried = False
        while True:
            self._authorize_request(request, tokens)
            response = yield request
            self._remember_nonce(request.url, response)
            if response.status_code not in (401, 403):
                return
            challenge = _challenge(response)
            if (
                challenge is not None
                and challenge.params.get("error") == "use_dpop_nonce"
                and tokens is not None
                and tokens.token_type.lower() == "dpop"
                and not nonce_retried
                and response.headers.get("dpop-nonce")
            ):
                nonce_retried = True
                await response.aread()
                continue
            step_up = response.status_code == 403
            if step_up and (
                challenge is None or challenge.params.get("error") != "insufficient_scope"
            ):
                return  # forbidden for another reason: more scopes would not help
            if authorizations >= self._max_authorizations:
                log.warning(
                    "giving up on %s after %d authorizations: HTTP %d",
                    self.server_url,
                    authorizations,
                    response.status_code,
                )
                return
            await response.aread()
            async with self._lock:
                current = self._tokens
                if current is not None and current is not tokens and _covers(current, challenge):
                    tokens = current  # another request re-authorized meanwhile
                else:
                    tokens = await self._reauthorize(challenge, step_up=step_up)
                    authorizations += 1
            nonce_retried = False

    def _authorize_request(self, request: httpx.Request, tokens: OAuthTokens | None) -> None:
        if tokens is None:
            request.headers.pop("Authorization", None)
            return
        if tokens.token_type.lower() == "dpop" and self._dpop is not None:
            request.headers["Authorization"] = f"DPoP {tokens.access_token}"
            request.headers["DPoP"] = self._dpop.proof(
                request.method,
                request.url,
                access_token=tokens.access_token,
                nonce=self._nonces.get(_origin(request.url)),
            )
        else:
            request.headers["Authorization"] = f"Bearer {tokens.access_token}"

    def _remember_nonce(self, url: httpx.URL, response: httpx.Response) -> None:
        nonce = response.headers.get("dpop-nonce")
        if nonce and self._dpop is not None:
            self._nonces[_origin(url)] = nonce

    # -- tokens -------------------------------------------------------------------------

    async def _current_tokens(self) -> OAuthTokens | None:
        """The tokens to send now, refreshed first when they are about to expire."""
        if not self._loaded:
            self._tokens = await self.storage.load_tokens(self.server_url)
            self._loaded = True
        tokens = self._tokens
        if tokens is None or not tokens.expired(time.time()):
            return tokens
        if tokens.refresh_token and self._context is not None:
            async with self._http() as http:
                refreshed = await self._refresh(http, self._context, tokens)
            if refreshed is not None:
                return refreshed
        # Refused refresh tokens are forgotten; either way the server answers 401 and a
        # new authorization follows.
        return self._tokens

    async def _save(self, tokens: OAuthTokens | None) -> None:
        self._tokens = tokens
        await self.storage.save_tokens(self.server_url, tokens)

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=self._http_transport, timeout=_OAUTH_TIMEOUT, follow_redirects=False
        )

    async def _reauthorize(self, challenge: Challenge | None, *, step_up: bool) -> OAuthTokens:
        async with self._http() as http:
            context = await self._discover(http, challenge)
            self._context = context
            tokens = self._tokens
            if (
                not step_up
                and tokens is not None
                and tokens.refresh_token
                and tokens.issuer == context.server.issuer
            ):
                refreshed = await self._refresh(http, context, tokens)
                if refreshed is not None:
                    return refreshed
            if self._scope is not None:
                # Given scopes replace the selection, but a step-up must still add what the
                # 403 names, or every retry would ask for the same too-narrow token.
                scopes: list[str] | None = select_scope(
                    challenge.scopes() if step_up and challenge is not None else (),
                    self._scope,
                    previous=self._requested if step_up else (),
                )
            else:
                scopes = select_scope(
                    challenge.scopes() if challenge is not None else (),
                    context.scopes_supported,
                    previous=self._requested if step_up else (),
                )
                scopes = self._with_offline_access(scopes, context)
            self._requested = list(scopes or [])
            self.authorizations += 1
            tokens = await self._obtain(http, context, " ".join(scopes) if scopes else None)
            await self._save(tokens)
            return tokens

    def _with_offline_access(self, scopes: list[str] | None, context: _Context) -> list[str] | None:
        metadata = context.server.metadata
        wanted = (
            self._offline_access
            and isinstance(self.grant, AuthorizationCodeGrant)
            and "offline_access" in _strings(metadata, "scopes_supported")
            and "refresh_token" in _strings(metadata, "grant_types_supported")
        )
        if not wanted or (scopes and "offline_access" in scopes):
            return scopes
        return [*(scopes or []), "offline_access"]

    # -- discovery ----------------------------------------------------------------------

    async def _discover(self, http: httpx.AsyncClient, challenge: Challenge | None) -> _Context:
        header_url = challenge.params.get("resource_metadata") if challenge else None
        prm = await self._protected_resource_metadata(http, header_url)
        resource = self.server_url
        scopes_supported: tuple[str, ...] | None = None
        if prm is not None:
            claimed = prm.get("resource")
            if isinstance(claimed, str):
                if not _resource_allowed(self.server_url, claimed):
                    raise OAuthError(
                        f"the protected resource metadata is for {claimed!r}, not for "
                        f"{self.server_url!r}; refusing to authorize for another resource"
                    )
                resource = claimed
            servers = prm.get("authorization_servers")
            if not isinstance(servers, list) or not servers or not isinstance(servers[0], str):
                raise OAuthError("the protected resource metadata names no authorization_servers")
            supported = prm.get("scopes_supported")
            if isinstance(supported, list):
                scopes_supported = tuple(str(scope) for scope in supported)
            server = await self._authorization_server(http, servers[0], fallback=False)
        else:
            # 2025-03-26: the MCP server's origin is the authorization server.
            base = str(httpx.URL(self.server_url).copy_with(path="", query=None, fragment=None))
            server = await self._authorization_server(http, base.rstrip("/"), fallback=True)
        client = await self._registration(http, server)
        return _Context(server, resource, scopes_supported, client)

    async def _protected_resource_metadata(
        self, http: httpx.AsyncClient, header_url: str | None
    ) -> dict[str, Any] | None:
        for url in protected_resource_metadata_urls(self.server_url, header_url):
            try:
                what = f"the protected resource metadata at {url}"
                response, raw = await _fetch(http, "GET", url, what, headers=_ACCEPT_JSON)
            except httpx.HTTPError as exc:
                log.debug("protected resource metadata at %s: %s", url, exc)
                continue
            if response.status_code == 200:
                return _json_object(response, raw, what)
            log.debug("protected resource metadata at %s: HTTP %d", url, response.status_code)
        return None

    async def _authorization_server(
        self, http: httpx.AsyncClient, issuer: str, *, fallback: bool
    ) -> _Server:
        tried = []
        for url in authorization_server_metadata_urls(issuer):
            try:
                what = f"the authorization server metadata at {url}"
                response, raw = await _fetch(http, "GET", url, what, headers=_ACCEPT_JSON)
            except OAuthError:
                raise
            except httpx.HTTPError as exc:
                tried.append(f"{url}: {exc}")
                continue
            if response.status_code != 200:
                tried.append(f"{url}: HTTP {response.status_code}")
                continue
            metadata = _json_object(response, raw, what)
            if metadata.get("issuer") != issuer:
                raise OAuthError(
                    f"the authorization server metadata at {url} names the issuer "
                    f"{metadata.get('issuer')!r}, not {issuer!r} (RFC 8414 section 3.3)"
                )
            for endpoint in ("authorization_endpoint", "token_endpoint"):
                if endpoint in metadata and not isinstance(metadata[endpoint], str):
                    raise OAuthError(f"the authorization server metadata has a bad {endpoint}")
            if "token_endpoint" not in metadata:
                raise OAuthError(
                    f"the authorization server metadata at {url} has no token_endpoint"
                )
            return _Server(issuer, issuer, metadata)
        if not fallback:
            raise OAuthError(
                f"no metadata for the authorization server {issuer}: " + "; ".join(tried)
            )
        # 2025-03-26 without metadata: default endpoints at the server's origin.
        defaults = {
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "registration_endpoint": f"{issuer}/register",
            "code_challenge_methods_supported": ["S256"],
        }
        return _Server(None, issuer, defaults)

    # -- registration -------------------------------------------------------------------

    async def _registration(self, http: httpx.AsyncClient, server: _Server) -> ClientRegistration:
        pre = self._preregistered
        if pre is not None and (pre.issuer is None or pre.issuer == server.issuer):
            return pre
        stored = await self.storage.load_client(server.key)
        if stored is not None:
            return stored
        metadata = server.metadata
        if self._metadata_url is not None and metadata.get("client_id_metadata_document_supported"):
            return ClientRegistration(
                client_id=self._metadata_url,
                token_endpoint_auth_method="none",
                issuer=server.issuer,
            )
        endpoint = metadata.get("registration_endpoint")
        if not isinstance(endpoint, str):
            raise OAuthError(
                f"no client for the authorization server {server.key}: it offers no dynamic "
                "registration and no client ID metadata documents; pass a pre-registered "
                "client (client=ClientRegistration(...))"
            )
        registered = await self._register(http, endpoint, server)
        await self.storage.save_client(server.key, registered)
        return registered

    def client_metadata_document(self) -> dict[str, Any]:
        """The client's metadata as RFC 7591 registration (and CIMD document) JSON."""
        grant_types = {
            AuthorizationCodeGrant: ["authorization_code", "refresh_token"],
            ClientCredentialsGrant: ["client_credentials"],
            JwtBearerGrant: [JWT_BEARER],
        }[type(self.grant)]
        document: dict[str, Any] = {
            "client_name": self._metadata.client_name,
            "redirect_uris": list(self._metadata.redirect_uris),
            "grant_types": grant_types,
            "response_types": ["code"] if isinstance(self.grant, AuthorizationCodeGrant) else [],
            "application_type": self._metadata.application_type,
        }
        if self._metadata_url is not None:
            document["client_id"] = self._metadata_url
        if self._metadata.client_uri:
            document["client_uri"] = self._metadata.client_uri
        if self._metadata.token_endpoint_auth_method:
            document["token_endpoint_auth_method"] = self._metadata.token_endpoint_auth_method
        elif self._metadata_url is not None:
            # A published document holds no secret, and RFC 7591's default method
            # (client_secret_basic) needs one: name the method this client uses with it.
            document["token_endpoint_auth_method"] = "none"
        return document

    async def _register(
        self, http: httpx.AsyncClient, endpoint: str, server: _Server
    ) -> ClientRegistration:
        document = self.client_metadata_document()
        document.pop("client_id", None)
        if not self._metadata.token_endpoint_auth_method:
            document.pop("token_endpoint_auth_method", None)  # the server chooses
        what = "the registration endpoint"
        response, raw = await _fetch(
            http, "POST", endpoint, what, json=document, headers=_ACCEPT_JSON
        )
        body = _json_object(response, raw, what)
        if response.status_code not in (200, 201) or not isinstance(body.get("client_id"), str):
            raise OAuthError(
                f"dynamic client registration at {endpoint} failed: "
                f"{_oauth_error_text(body)} (HTTP {response.status_code})"
            )
        secret = body.get("client_secret")
        method = body.get("token_endpoint_auth_method")
        known = ("none", "client_secret_basic", "client_secret_post")
        return ClientRegistration(
            client_id=body["client_id"],
            client_secret=secret if isinstance(secret, str) and secret else None,
            token_endpoint_auth_method=method
            if method in known and (secret or method == "none")
            else None,
            issuer=server.issuer,
        )

    # -- token requests -----------------------------------------------------------------

    def _auth_method(self, client: ClientRegistration, server: _Server) -> str:
        if client.token_endpoint_auth_method is not None:
            return client.token_endpoint_auth_method
        if client.private_key_pem:
            return "private_key_jwt"
        if not client.client_secret:
            return "none"
        if "token_endpoint_auth_methods_supported" not in server.metadata:
            return "client_secret_basic"  # RFC 8414's default
        supported = _strings(server.metadata, "token_endpoint_auth_methods_supported")
        for method in ("client_secret_basic", "client_secret_post"):
            if method in supported:
                return method
        return "client_secret_basic"

    async def _token_request(
        self, http: httpx.AsyncClient, context: _Context, form: dict[str, str], what: str
    ) -> OAuthTokens:
        server, client = context.server, context.client
        headers = {"Accept": "application/json"}
        method = self._auth_method(client, server)
        form = dict(form)
        if method == "client_secret_basic":
            headers["Authorization"] = _basic(client.client_id, client.client_secret or "")
        elif method == "client_secret_post":
            form["client_id"] = client.client_id
            form["client_secret"] = client.client_secret or ""
        elif method == "private_key_jwt":
            form["client_id"] = client.client_id
            form["client_assertion_type"] = _CLIENT_ASSERTION_TYPE
            form["client_assertion"] = sign_client_assertion(
                client.private_key_pem or "",
                client.signing_algorithm,
                client_id=client.client_id,
                audience=server.issuer or server.token_endpoint,
            )
        else:
            form["client_id"] = client.client_id
        dpop = self._dpop if self._dpop_supported(server) else None
        endpoint = server.token_endpoint
        for attempt in range(2):
            if dpop is not None:
                headers["DPoP"] = dpop.proof(
                    "POST", endpoint, nonce=self._nonces.get(_origin(httpx.URL(endpoint)))
                )
            where = f"the token endpoint ({what})"
            response, raw = await _fetch(http, "POST", endpoint, where, data=form, headers=headers)
            self._remember_nonce(httpx.URL(endpoint), response)
            body = _json_object(response, raw, where)
            if (
                attempt == 0
                and dpop is not None
                and response.status_code in (400, 401)
                and body.get("error") == "use_dpop_nonce"
                and response.headers.get("dpop-nonce")
            ):
                continue
            break
        if response.status_code != 200 or not isinstance(body.get("access_token"), str):
            raise OAuthError(
                f"the token endpoint refused the {what}: {_oauth_error_text(body)} "
                f"(HTTP {response.status_code})"
            )
        token_type = str(body.get("token_type") or "Bearer")
        if token_type.lower() == "dpop" and dpop is None:
            raise OAuthError("the token endpoint issued a DPoP token without a DPoP proof")
        expires_in = body.get("expires_in")
        refresh = body.get("refresh_token")
        scope = body.get("scope")
        return OAuthTokens(
            access_token=body["access_token"],
            token_type="DPoP" if token_type.lower() == "dpop" else "Bearer",
            expires_at=time.time() + float(expires_in)
            if isinstance(expires_in, int | float) and not isinstance(expires_in, bool)
            else None,
            refresh_token=refresh if isinstance(refresh, str) else None,
            scope=scope if isinstance(scope, str) else form.get("scope"),
            issuer=server.issuer,
        )

    def _dpop_supported(self, server: _Server) -> bool:
        algorithms = _strings(server.metadata, "dpop_signing_alg_values_supported")
        return self._dpop is not None and self._dpop.algorithm in algorithms

    async def _refresh(
        self, http: httpx.AsyncClient, context: _Context, tokens: OAuthTokens
    ) -> OAuthTokens | None:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": tokens.refresh_token or "",
            "resource": context.resource,
        }
        try:
            refreshed = await self._token_request(http, context, form, "refresh")
        except OAuthError as exc:
            log.info(
                "refreshing the token for %s failed (%s); authorizing again", self.server_url, exc
            )
            await self._save(None)
            return None
        if refreshed.refresh_token is None:
            refreshed = attrs.evolve(refreshed, refresh_token=tokens.refresh_token)
        await self._save(refreshed)
        return refreshed

    async def _obtain(
        self, http: httpx.AsyncClient, context: _Context, scope: str | None
    ) -> OAuthTokens:
        grant = self.grant
        form: dict[str, str] = {"resource": context.resource}
        if scope:
            form["scope"] = scope
        if isinstance(grant, ClientCredentialsGrant):
            form["grant_type"] = "client_credentials"
            return await self._token_request(http, context, form, "client credentials grant")
        if isinstance(grant, JwtBearerGrant):
            assertion = grant.assertion
            if not isinstance(assertion, str):
                assertion = await assertion(
                    GrantContext(
                        context.server.issuer,
                        context.server.token_endpoint,
                        context.resource,
                        scope,
                        http,
                    )
                )
            form.update(grant_type=JWT_BEARER, assertion=assertion)
            return await self._token_request(http, context, form, "JWT bearer grant")
        return await self._authorization_code(http, context, grant, form)

    async def _authorization_code(
        self,
        http: httpx.AsyncClient,
        context: _Context,
        grant: AuthorizationCodeGrant,
        form: dict[str, str],
    ) -> OAuthTokens:
        metadata = context.server.metadata
        if "S256" not in _strings(metadata, "code_challenge_methods_supported"):
            raise OAuthError(
                "the authorization server does not advertise PKCE S256 "
                "(code_challenge_methods_supported); refusing to use it"
            )
        endpoint = metadata.get("authorization_endpoint")
        if not isinstance(endpoint, str):
            raise OAuthError("the authorization server metadata has no authorization_endpoint")
        redirect_uri = grant.redirect_uri or self._metadata.redirect_uris[0]
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(24)
        query = {
            "response_type": "code",
            "client_id": context.client.client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **form,
        }
        url = httpx.URL(endpoint)
        url = url.copy_merge_params(query)
        await grant.redirect_handler(str(url))
        answer = (await grant.callback_handler()).params
        if answer.get("state") != state:
            raise OAuthError("the authorization response carries the wrong state; ignoring it")
        self._check_iss(context.server, answer)
        if "error" in answer:
            raise OAuthError(f"the authorization server refused: {_oauth_error_text(answer)}")
        code = answer.get("code")
        if not code:
            raise OAuthError("the authorization response carries no code")
        form = {
            **form,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        form.pop("scope", None)
        tokens = await self._token_request(http, context, form, "authorization code")
        if tokens.scope is None and "scope" in query:
            tokens = attrs.evolve(tokens, scope=query["scope"])
        return tokens

    @staticmethod
    def _check_iss(server: _Server, answer: Mapping[str, str]) -> None:
        """RFC 9207: an ``iss`` must equal the issuer exactly; required when advertised."""
        iss = answer.get("iss")
        if iss is None:
            if server.metadata.get("authorization_response_iss_parameter_supported") is True:
                raise OAuthError(
                    "the authorization server advertises the iss parameter but its response "
                    "has none; refusing it (RFC 9207)"
                )
            return
        if server.issuer is None or iss != server.issuer:
            raise OAuthError(
                f"the authorization response comes from issuer {iss!r}, not "
                f"{server.issuer!r}; refusing it (RFC 9207)"
            )


def _strings(metadata: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """A metadata member that should be a list of strings; anything else counts as empty."""
    value = metadata.get(key)
    if not isinstance(value, list):
        return ()
    return tuple(item for item in value if isinstance(item, str))


def _covers(tokens: OAuthTokens, challenge: Challenge | None) -> bool:
    """Whether newer tokens answer a challenge: any for a 401, enough scopes for a 403."""
    if challenge is None or challenge.params.get("error") != "insufficient_scope":
        return True
    return set(challenge.scopes()) <= set((tokens.scope or "").split())


def _origin(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.netloc.decode('ascii')}"
