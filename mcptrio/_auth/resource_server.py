"""OAuth 2.1 resource server: who is calling (:class:`Principal`) and what they may do.

An HTTP endpoint with an :class:`~mcptrio.AuthConfig` asks a :class:`ResourceServer` about
every MCP request: the bearer token is validated (a JWT against the authorization server's
JWKS, or RFC 7662 introspection) into a :class:`Principal`, or the request is refused with
``401`` and a ``WWW-Authenticate`` challenge pointing at the Protected Resource Metadata
(RFC 9728). Scope requirements declared on tools, resources and prompts are checked before the
request runs (``403 insufficient_scope``) and again where it runs.

Tokens are never logged, never kept (the introspection cache holds their SHA-256 digests),
and never sent anywhere but to the configured introspection endpoint.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import types
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import httpx
import orjson
import trio

from .._ops.config import AuthConfig
from .._protocol.errors import MCPError

if TYPE_CHECKING:
    from .._protocol.types_features import Resource, ResourceTemplate
    from .._protocol.uritemplate import UriTemplate

__all__ = [
    "AuthorizationServerUnavailable",
    "Challenge",
    "InsufficientScope",
    "IntrospectionValidator",
    "InvalidToken",
    "JwtValidator",
    "Principal",
    "ResourceServer",
    "ScopeRequirements",
    "TokenValidator",
]

log = logging.getLogger("mcptrio.auth")

PRM_PATH = "/.well-known/oauth-protected-resource"
"""Where RFC 9728 puts the Protected Resource Metadata (followed by the resource's path)."""

_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
"""The characters a bearer token may have (RFC 6750 section 2.1)."""

_MAX_DOCUMENT_BYTES = 256 * 1024
"""JWKS, metadata and introspection answers larger than this are refused."""


def _frozen_scopes(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


def _frozen_claims(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return types.MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class Principal:
    """The authenticated caller of a request, as its access token describes it."""

    subject: str
    """Who the token was issued to act for (the ``sub`` claim)."""
    client_id: str | None = None
    """The OAuth client that holds the token (``client_id`` or ``azp``)."""
    scopes: frozenset[str] = attrs.field(default=frozenset(), converter=_frozen_scopes)
    """The scopes the token grants."""
    issuer: str | None = None
    """The authorization server that issued the token."""
    claims: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_frozen_claims, eq=False, repr=False
    )
    """Every claim of the token (or every field of its introspection answer)."""

    @property
    def key(self) -> str:
        """The identity sessions, request states and tasks are bound to: issuer and subject."""
        return orjson.dumps([self.issuer, self.subject]).decode()

    def has_scopes(self, needed: Iterable[str]) -> bool:
        """True if the token grants every scope in ``needed``."""
        return self.scopes.issuperset(needed)


def principal_key(principal: Principal | None) -> str | None:
    """The binding key of ``principal`` (None when nobody authenticated)."""
    return None if principal is None else principal.key


class InvalidToken(Exception):
    """The bearer token is missing, malformed, expired, or not for this resource (HTTP 401).

    The message is safe to send to the client; it never contains the token.
    """


class AuthorizationServerUnavailable(Exception):
    """The authorization server (its keys, metadata or introspection) could not be asked;
    the request is answered 503, since another token would not help."""


class InsufficientScope(MCPError):
    """The caller's token lacks scopes this operation needs (HTTP 403 over HTTP); ``data``
    lists them as ``requiredScopes``."""

    default_code = -32003

    @classmethod
    def naming(cls, needed: Collection[str], what: str) -> InsufficientScope:
        """The error for ``what`` (``"tool 'x'"``) needing the scopes ``needed``."""
        names = " ".join(sorted(needed))
        return cls(
            f"insufficient scope: {what} needs the scopes {names!r}; obtain a token with them",
            {"requiredScopes": sorted(needed)},
        )

    @property
    def needed(self) -> frozenset[str]:
        """The scopes the operation needs (from ``data``)."""
        data = self.data
        scopes = data.get("requiredScopes") if isinstance(data, dict) else None
        if not isinstance(scopes, list):
            return frozenset()
        return frozenset(s for s in scopes if isinstance(s, str))


class TokenValidator(Protocol):
    """Turns a bearer token into a :class:`Principal` or raises :class:`InvalidToken`."""

    async def validate(self, token: str, *, audiences: Collection[str]) -> Principal:
        """Validate ``token`` for a resource known by any of ``audiences``."""
        ...

    async def aclose(self) -> None:
        """Release what the validator holds (HTTP connections)."""
        ...


# ---------------------------------------------------------------------------------- HTTP


async def _fetch_json(
    client: httpx.AsyncClient, method: str, url: str, **kwargs: Any
) -> dict[str, Any]:
    """A JSON object from ``url``, bounded in size; errors name the URL, never a token."""
    try:
        async with client.stream(method, url, **kwargs) as response:
            if response.status_code != 200:
                raise AuthorizationServerUnavailable(
                    f"the authorization server answered {response.status_code} at {url}"
                )
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > _MAX_DOCUMENT_BYTES:
                    raise AuthorizationServerUnavailable(f"the document at {url} is too large")
    except httpx.HTTPError as exc:
        raise AuthorizationServerUnavailable(
            f"cannot reach the authorization server at {url}: {type(exc).__name__}"
        ) from None
    try:
        data = orjson.loads(bytes(body))
    except orjson.JSONDecodeError:
        raise AuthorizationServerUnavailable(
            f"the authorization server sent invalid JSON at {url}"
        ) from None
    if not isinstance(data, dict):
        raise AuthorizationServerUnavailable(
            f"the authorization server sent no JSON object at {url}"
        )
    return data


def _scopes_of(claims: Mapping[str, Any]) -> frozenset[str]:
    scope = claims.get("scope")
    if isinstance(scope, str):
        return frozenset(scope.split())
    scp = claims.get("scp")
    if isinstance(scp, str):
        return frozenset(scp.split())
    if isinstance(scp, list):
        return frozenset(s for s in scp if isinstance(s, str))
    return frozenset()


def _principal_from(claims: Mapping[str, Any], issuer: str | None) -> Principal:
    client_id = claims.get("client_id", claims.get("azp"))
    client = client_id if isinstance(client_id, str) else None
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        # Client-credentials tokens may carry no subject: the client acts for itself.
        if client is None:
            raise InvalidToken("the token names no subject (sub) and no client (client_id)")
        subject = client
    iss = claims.get("iss")
    return Principal(
        subject=subject,
        client_id=client,
        scopes=_scopes_of(claims),
        issuer=iss if isinstance(iss, str) else issuer,
        claims=claims,
    )


def _audience_ok(aud: Any, audiences: Collection[str]) -> bool:
    if isinstance(aud, str):
        return aud in audiences
    if isinstance(aud, list):
        return any(isinstance(a, str) and a in audiences for a in aud)
    return False


# ------------------------------------------------------------------------------ JWT / JWKS


class JwtValidator:
    """Validates JWT access tokens (RFC 9068) with the issuer's JWKS (through joserfc).

    Keys are fetched once and cached for ``cache_ttl`` seconds; a token signed with a key id
    the cache does not know triggers a refetch (key rotation), at most once every
    ``refresh_interval`` seconds so that forged key ids cannot make the server hammer the
    authorization server.
    """

    def __init__(
        self,
        *,
        issuer: str,
        jwks_uri: str | None = None,
        algorithms: Sequence[str] = ("RS256", "ES256"),
        clock_skew: float = 60.0,
        cache_ttl: float = 3600.0,
        refresh_interval: float = 30.0,
        http_client: Callable[[], httpx.AsyncClient] | None = None,
    ) -> None:
        if any(a.lower() == "none" for a in algorithms):
            raise ValueError("the 'none' algorithm can never be allowed")
        try:
            import joserfc  # noqa: F401
        except ImportError:
            raise ImportError(
                "validating JWT access tokens needs joserfc: pip install 'mcptrio[auth]'"
            ) from None
        self.issuer = issuer
        self.jwks_uri = jwks_uri
        self.algorithms = tuple(algorithms)
        self.clock_skew = clock_skew
        self.cache_ttl = cache_ttl
        self.refresh_interval = refresh_interval
        self._client = (http_client or _default_client)()
        self._keys: Any = None
        self._fetched_at: float | None = None
        self._lock = trio.Lock()

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()

    async def _jwks_uri(self) -> str:
        if self.jwks_uri is None:
            metadata = await _discover_metadata(self._client, self.issuer)
            uri = metadata.get("jwks_uri")
            if not isinstance(uri, str):
                raise AuthorizationServerUnavailable(
                    f"the metadata of {self.issuer} names no jwks_uri"
                )
            self.jwks_uri = uri
        return self.jwks_uri

    async def _key_set(self, kid: str | None) -> Any:
        from joserfc.jwk import KeySet

        async with self._lock:
            now = trio.current_time()
            fresh = self._fetched_at is not None and now - self._fetched_at < self.cache_ttl
            known = self._keys is not None and (kid is None or _has_kid(self._keys, kid))
            if known and fresh:
                return self._keys
            may_refetch = self._fetched_at is None or now - self._fetched_at >= min(
                self.refresh_interval, self.cache_ttl
            )
            if may_refetch:
                # Counted as a fetch even when it fails, so an unreachable authorization
                # server is not asked again on every request.
                self._fetched_at = now
                try:
                    data = await _fetch_json(self._client, "GET", await self._jwks_uri())
                    try:
                        keys = KeySet.import_key_set(data)  # type: ignore[arg-type]
                    except Exception as exc:
                        raise AuthorizationServerUnavailable(
                            f"the JWKS of {self.issuer} is invalid: {exc}"
                        ) from None
                except AuthorizationServerUnavailable as exc:
                    if self._keys is None:
                        raise
                    # The keys known so far stay good until the issuer can be asked again.
                    log.warning("keeping the cached signing keys: %s", exc)
                else:
                    self._keys = keys
            if self._keys is None:
                raise AuthorizationServerUnavailable("no signing keys are known yet; retry shortly")
            return self._keys

    async def validate(self, token: str, *, audiences: Collection[str]) -> Principal:
        """The principal of a valid JWT; :class:`InvalidToken` otherwise."""
        from joserfc import jws, jwt
        from joserfc.errors import JoseError
        from joserfc.jwt import JWTClaimsRegistry

        try:
            header = jws.extract_compact(token.encode("ascii")).protected
        except (JoseError, ValueError, UnicodeError):
            raise InvalidToken("the token is not a well-formed JWT") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise InvalidToken(f"tokens signed with {alg!r} are not accepted")
        kid = header.get("kid")
        keys = await self._key_set(kid if isinstance(kid, str) else None)
        # Without a key id, every published key of the algorithm's type is tried.
        candidates = [keys] if isinstance(kid, str) else _keys_for(keys, alg)
        decoded = None
        problem = "no published key fits the token"
        for candidate in candidates:
            try:
                decoded = jwt.decode(token, candidate, algorithms=[alg])
                break
            except (JoseError, ValueError) as exc:
                problem = exc.__class__.__name__
        if decoded is None:
            raise InvalidToken(f"the token's signature is not valid ({problem})")
        claims = decoded.claims
        registry = JWTClaimsRegistry(
            now=int(time.time()),
            leeway=int(self.clock_skew),
            iss={"essential": True, "value": self.issuer},
            exp={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise InvalidToken(_claim_problem(exc)) from None
        if not _audience_ok(claims.get("aud"), audiences):
            raise InvalidToken("the token was issued for another resource (aud)")
        return _principal_from(claims, self.issuer)


_KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


def _keys_for(keys: Any, alg: str) -> list[Any]:
    kty = _KEY_TYPES.get(alg[:2])
    return [key for key in keys.keys if key.key_type == kty]


def _has_kid(keys: Any, kid: str) -> bool:
    return any(getattr(key, "kid", None) == kid for key in keys.keys)


def _claim_problem(exc: Exception) -> str:
    name = type(exc).__name__
    if name == "ExpiredTokenError":
        return "the token has expired"
    if name == "InvalidTokenError":
        return "the token is not valid yet (nbf/iat)"
    if name in ("InvalidClaimError", "MissingClaimError"):
        return f"the token's claims are not acceptable: {exc}"
    return f"the token's claims are not acceptable ({name})"


async def _discover_metadata(client: httpx.AsyncClient, issuer: str) -> dict[str, Any]:
    """RFC 8414 metadata of ``issuer`` (then OpenID discovery); the issuer must match."""
    base = issuer.rstrip("/")
    scheme, _, rest = base.partition("://")
    authority, slash, issuer_path = rest.partition("/")
    origin = f"{scheme}://{authority}"
    suffix = f"/{issuer_path}" if slash else ""
    candidates = [
        f"{origin}/.well-known/oauth-authorization-server{suffix}",
        f"{origin}/.well-known/openid-configuration{suffix}",
        f"{base}/.well-known/openid-configuration",
    ]
    problem = ""
    for url in dict.fromkeys(candidates):
        try:
            data = await _fetch_json(client, "GET", url)
        except AuthorizationServerUnavailable as exc:
            problem = str(exc)
            continue
        if data.get("issuer") != issuer:
            raise AuthorizationServerUnavailable(f"the metadata at {url} is for another issuer")
        return data
    raise AuthorizationServerUnavailable(
        f"cannot discover the authorization server {issuer}: {problem}"
    )


# ---------------------------------------------------------------------------- introspection


class IntrospectionValidator:
    """Validates opaque tokens by asking the authorization server (RFC 7662 introspection)."""

    def __init__(
        self,
        *,
        endpoint: str,
        client_id: str | None = None,
        client_secret: str | None = None,
        issuer: str | None = None,
        clock_skew: float = 60.0,
        cache_ttl: float = 0.0,
        max_cached: int = 10_000,
        http_client: Callable[[], httpx.AsyncClient] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.issuer = issuer
        self.clock_skew = clock_skew
        self.cache_ttl = cache_ttl
        self.max_cached = max_cached
        # Active answers by token digest (tokens themselves are not kept), oldest first.
        self._cache: OrderedDict[bytes, tuple[float, Principal]] = OrderedDict()
        self._auth = (client_id, client_secret or "") if client_id is not None else None
        self._client = (http_client or _default_client)()

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()

    async def validate(self, token: str, *, audiences: Collection[str]) -> Principal:
        """The principal of an active token; :class:`InvalidToken` otherwise."""
        if self.cache_ttl <= 0:
            return await self._introspect(token, audiences)
        key = hashlib.sha256(token.encode()).digest()
        now = trio.current_time()
        cached = self._cache.get(key)
        if (
            cached is not None
            and cached[0] > now
            and _audience_ok(cached[1].claims.get("aud", next(iter(audiences), None)), audiences)
        ):
            return cached[1]
        principal = await self._introspect(token, audiences)
        ttl = self.cache_ttl
        exp = principal.claims.get("exp")
        if isinstance(exp, int | float):
            ttl = min(ttl, exp - time.time())
        if ttl > 0:
            self._cache.pop(key, None)
            self._cache[key] = (now + ttl, principal)
            while len(self._cache) > self.max_cached:
                self._cache.popitem(last=False)
        return principal

    async def _introspect(self, token: str, audiences: Collection[str]) -> Principal:
        data = await _fetch_json(
            self._client,
            "POST",
            self.endpoint,
            data={"token": token, "token_type_hint": "access_token"},
            auth=self._auth,
        )
        if data.get("active") is not True:
            raise InvalidToken("the token is not active (revoked, expired or unknown)")
        now = time.time()
        exp = data.get("exp")
        if isinstance(exp, int | float) and exp + self.clock_skew < now:
            raise InvalidToken("the token has expired")
        nbf = data.get("nbf")
        if isinstance(nbf, int | float) and nbf - self.clock_skew > now:
            raise InvalidToken("the token is not valid yet (nbf)")
        if self.issuer is not None and data.get("iss", self.issuer) != self.issuer:
            raise InvalidToken("the token was issued by another authorization server")
        # RFC 8707: a token that names its audiences must name this resource.
        if "aud" in data and not _audience_ok(data["aud"], audiences):
            raise InvalidToken("the token was issued for another resource (aud)")
        return _principal_from(data, self.issuer)


def _default_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=10.0, follow_redirects=False)


# ----------------------------------------------------------------------------- scope rules


class ResourceCatalog(Protocol):
    """What scope rules read of a server's resource registry."""

    def resources(self) -> list[Resource]: ...

    def templates_with_patterns(self) -> list[tuple[ResourceTemplate, UriTemplate]]: ...


class HasResources(Protocol):
    """A server, as scope rules see it: something with a resource registry."""

    @property
    def resources(self) -> ResourceCatalog: ...


class ScopeRequirements:
    """Scopes declared on a server's tools, resources and prompts."""

    def __init__(self) -> None:
        self.tools: dict[str, frozenset[str]] = {}
        self.resources: dict[str, frozenset[str]] = {}
        """By URI, or by URI template for templates."""
        self.prompts: dict[str, frozenset[str]] = {}
        self.hide_from_lists = True
        """Leave what a principal may not use out of its list results."""

    def set(self, kind: str, name: str, scopes: Iterable[str] | None) -> None:
        """Require ``scopes`` for the ``kind`` (tool, resource, prompt) called ``name``."""
        table = self._table(kind)
        if scopes is None:
            table.pop(name, None)
            return
        needed = frozenset(scopes)
        if any(not isinstance(s, str) or not s or " " in s for s in needed):
            raise ValueError(f"scopes must be non-empty strings without spaces: {sorted(needed)}")
        if needed:
            table[name] = needed
        else:
            table.pop(name, None)

    def _table(self, kind: str) -> dict[str, frozenset[str]]:
        if kind == "tool":
            return self.tools
        if kind == "resource":
            return self.resources
        if kind == "prompt":
            return self.prompts
        raise ValueError(f"unknown kind {kind!r}")

    def __bool__(self) -> bool:
        return bool(self.tools or self.resources or self.prompts)

    def for_request(
        self, server: HasResources, method: str, params: Any
    ) -> tuple[frozenset[str], str]:
        """The scopes ``method(params)`` needs, and a name for what it touches."""
        if not isinstance(params, Mapping):
            return frozenset(), method
        if method == "tools/call":
            name = params.get("name")
            if isinstance(name, str):
                return self.tools.get(name, frozenset()), f"tool {name!r}"
        elif method == "prompts/get":
            name = params.get("name")
            if isinstance(name, str):
                return self.prompts.get(name, frozenset()), f"prompt {name!r}"
        elif method == "completion/complete":
            # Completing an argument of a prompt or template needs what using it needs.
            ref = params.get("ref")
            if isinstance(ref, Mapping) and ref.get("type") == "ref/prompt":
                name = ref.get("name")
                if isinstance(name, str):
                    return self.prompts.get(name, frozenset()), f"prompt {name!r}"
            elif isinstance(ref, Mapping) and ref.get("type") == "ref/resource":
                uri = ref.get("uri")
                if isinstance(uri, str):
                    return self.resources.get(uri, frozenset()), f"resource {uri!r}"
        elif method in ("resources/read", "resources/subscribe"):
            uri = params.get("uri")
            if isinstance(uri, str) and self.resources:
                return self.for_resource(server, uri), f"resource {uri!r}"
        return frozenset(), method

    def for_resource(self, server: HasResources, uri: str) -> frozenset[str]:
        """The scopes reading ``uri`` needs (its static entry, else its first template)."""
        if uri in self.resources and uri in {r.uri for r in server.resources.resources()}:
            return self.resources[uri]
        for template, pattern in server.resources.templates_with_patterns():
            if pattern.match(uri) is not None:
                return self.resources.get(template.uri_template, frozenset())
        return frozenset()


# ------------------------------------------------------------------------------ challenges


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@attrs.frozen
class Challenge:
    """A refusal: the HTTP status and the ``WWW-Authenticate`` header that explains it."""

    status: int
    www_authenticate: str
    message: str
    scopes: tuple[str, ...] = ()
    """The scopes the challenge names."""


def build_challenge(
    *,
    status: int,
    metadata_url: str,
    error: str | None = None,
    description: str | None = None,
    scopes: Iterable[str] = (),
) -> Challenge:
    """A ``Bearer`` challenge (RFC 6750 section 3) with RFC 9728's ``resource_metadata``."""
    parts: list[str] = []
    if error is not None:
        parts.append(f"error={_quote(error)}")
    scopes = sorted(set(scopes))
    scope = " ".join(scopes)
    if scope:
        parts.append(f"scope={_quote(scope)}")
    parts.append(f"resource_metadata={_quote(metadata_url)}")
    if description is not None:
        # Header values are latin-1 and must not carry quotes unescaped or control bytes.
        clean = "".join(c for c in description if 32 <= ord(c) < 127)
        parts.append(f"error_description={_quote(clean)}")
    message = description or "authorization required"
    return Challenge(status, "Bearer " + ", ".join(parts), message, tuple(sorted(scopes)))


# --------------------------------------------------------------------------- the server role


class ResourceServer:
    """The resource-server role of an HTTP endpoint: PRM document, token checks, challenges."""

    def __init__(self, config: AuthConfig, *, validator: TokenValidator | None = None) -> None:
        self.config = config
        self.resource: str | None = config.resource
        if validator is None:
            issuer = config.issuer or config.authorization_servers[0]
            if config.token_validation == "introspection":
                assert config.introspection_endpoint is not None
                validator = IntrospectionValidator(
                    endpoint=config.introspection_endpoint,
                    client_id=config.introspection_client_id,
                    client_secret=config.introspection_client_secret,
                    issuer=issuer,
                    clock_skew=config.clock_skew,
                    cache_ttl=config.introspection_cache_ttl,
                )
            else:
                validator = JwtValidator(
                    issuer=issuer,
                    jwks_uri=config.jwks_uri,
                    algorithms=config.algorithms,
                    clock_skew=config.clock_skew,
                    cache_ttl=config.jwks_cache_ttl,
                    refresh_interval=config.jwks_refresh_interval,
                )
        self.validator = validator

    async def aclose(self) -> None:
        """Release the validator's connections."""
        await self.validator.aclose()

    def resource_for(self, scheme: str, host: str | None, path: str) -> str:
        """The canonical URI of the MCP resource at ``path`` (configured, else from Host)."""
        if self.resource is not None:
            return self.resource
        return f"{scheme}://{host or 'localhost'}{path}"

    @staticmethod
    def metadata_url(resource: str) -> str:
        """The RFC 9728 well-known URL of ``resource``'s metadata (path-specific)."""
        scheme, _, rest = resource.partition("://")
        authority, slash, path = rest.partition("/")
        suffix = f"/{path}".rstrip("/") if slash else ""
        return f"{scheme}://{authority}{PRM_PATH}{suffix}"

    def metadata(self, resource: str) -> dict[str, Any]:
        """The Protected Resource Metadata document (RFC 9728)."""
        cfg = self.config
        doc: dict[str, Any] = {
            "resource": resource,
            "authorization_servers": list(cfg.authorization_servers),
            "bearer_methods_supported": ["header"],
        }
        if cfg.scopes_supported:
            doc["scopes_supported"] = list(cfg.scopes_supported)
        if cfg.resource_name is not None:
            doc["resource_name"] = cfg.resource_name
        if cfg.resource_documentation is not None:
            doc["resource_documentation"] = cfg.resource_documentation
        return doc

    def audiences(self, resource: str) -> tuple[str, ...]:
        """The ``aud`` values accepted: this resource (RFC 8707) and any configured extras."""
        bare = resource.rstrip("/")
        return (resource, bare, bare + "/", *self.config.audiences)

    async def authenticate(self, authorization: str | None, resource: str) -> Principal:
        """The principal behind an ``Authorization`` header; :class:`InvalidToken` otherwise."""
        if authorization is None:
            raise _MissingToken("this server needs a bearer token (Authorization: Bearer ...)")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip(" ")
        if scheme.lower() != "bearer" or not token:
            raise _MissingToken("send the access token as 'Authorization: Bearer <token>'")
        if _TOKEN68.fullmatch(token) is None:
            raise InvalidToken("the bearer token is malformed (RFC 6750 b64token)")
        return await self.validator.validate(token, audiences=self.audiences(resource))

    def refusal(self, exc: InvalidToken, resource: str) -> Challenge:
        """The 401 for a missing or invalid token."""
        metadata_url = self.metadata_url(resource)
        scopes = self.config.required_scopes
        if isinstance(exc, _MissingToken):
            # RFC 6750 3.1: a request without credentials gets no error code.
            challenge = build_challenge(status=401, metadata_url=metadata_url, scopes=scopes)
            return attrs.evolve(challenge, message=str(exc))
        return build_challenge(
            status=401,
            metadata_url=metadata_url,
            error="invalid_token",
            description=str(exc),
            scopes=scopes,
        )

    def forbidden(self, needed: Iterable[str], what: str, resource: str) -> Challenge:
        """The 403 for a principal whose token lacks ``needed``."""
        needed = frozenset(needed) | frozenset(self.config.required_scopes)
        return build_challenge(
            status=403,
            metadata_url=self.metadata_url(resource),
            error="insufficient_scope",
            description=f"insufficient scope: {what} needs the scopes {' '.join(sorted(needed))}",
            scopes=needed,
        )


class _MissingToken(InvalidToken):
    """No usable ``Authorization: Bearer`` header."""
