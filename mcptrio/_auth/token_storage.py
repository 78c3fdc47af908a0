"""Where an OAuth client keeps its tokens (per MCP server) and registrations (per issuer)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs
import orjson
import trio


@attrs.frozen(kw_only=True)
class OAuthTokens:
    """Tokens from an authorization server's token endpoint.

    ``expires_at`` is a wall-clock time (seconds since the epoch), None when the server
    gave no lifetime; ``issuer`` is the authorization server that issued them.
    """

    access_token: str = attrs.field(repr=lambda _: "'...'")
    token_type: str = "Bearer"
    expires_at: float | None = None
    refresh_token: str | None = attrs.field(default=None, repr=lambda v: "'...'" if v else "None")
    scope: str | None = None
    issuer: str | None = None

    def expired(self, now: float, *, margin: float = 30.0) -> bool:
        """True when the access token expires within ``margin`` seconds of ``now``."""
        return self.expires_at is not None and now >= self.expires_at - margin


@attrs.frozen(kw_only=True)
class ClientRegistration:
    """How this client authenticates to one authorization server.

    Pre-registered, from a client ID metadata document (``client_id`` is its URL), or from
    dynamic registration. ``token_endpoint_auth_method`` is ``none``,
    ``client_secret_basic``, ``client_secret_post`` or ``private_key_jwt``; None picks one
    from the server's metadata (basic, then post, with a secret; otherwise none).
    ``private_key_pem`` and ``signing_algorithm`` sign ``private_key_jwt`` assertions.
    ``issuer`` limits it to one authorization server (None: any).
    """

    client_id: str
    client_secret: str | None = attrs.field(default=None, repr=lambda v: "'...'" if v else "None")
    token_endpoint_auth_method: str | None = None
    private_key_pem: str | None = attrs.field(default=None, repr=lambda v: "'...'" if v else "None")
    signing_algorithm: str = "ES256"
    issuer: str | None = None

    def __attrs_post_init__(self) -> None:
        methods = ("none", "client_secret_basic", "client_secret_post", "private_key_jwt", None)
        if self.token_endpoint_auth_method not in methods:
            raise ValueError(
                f"token_endpoint_auth_method must be one of {methods[:-1]}, not "
                f"{self.token_endpoint_auth_method!r}"
            )
        if self.token_endpoint_auth_method == "private_key_jwt" and not self.private_key_pem:
            raise ValueError("private_key_jwt needs private_key_pem")
        if (
            self.token_endpoint_auth_method in ("client_secret_basic", "client_secret_post")
            and not self.client_secret
        ):
            raise ValueError(f"{self.token_endpoint_auth_method} needs client_secret")


@runtime_checkable
class TokenStorage(Protocol):
    """Keeps tokens per MCP server (its resource URL) and registrations per issuer."""

    async def load_tokens(self, resource: str) -> OAuthTokens | None:
        """The tokens saved for ``resource``, or None."""

    async def save_tokens(self, resource: str, tokens: OAuthTokens | None) -> None:
        """Save (None: forget) the tokens for ``resource``."""

    async def load_client(self, issuer: str) -> ClientRegistration | None:
        """The registration saved for the authorization server ``issuer``, or None."""

    async def save_client(self, issuer: str, client: ClientRegistration) -> None:
        """Save the registration for the authorization server ``issuer``."""


class MemoryTokenStorage:
    """A :class:`TokenStorage` that forgets everything when the process ends (the default)."""

    def __init__(self) -> None:
        self._tokens: dict[str, OAuthTokens] = {}
        self._clients: dict[str, ClientRegistration] = {}

    async def load_tokens(self, resource: str) -> OAuthTokens | None:
        return self._tokens.get(resource)

    async def save_tokens(self, resource: str, tokens: OAuthTokens | None) -> None:
        if tokens is None:
            self._tokens.pop(resource, None)
        else:
            self._tokens[resource] = tokens

    async def load_client(self, issuer: str) -> ClientRegistration | None:
        return self._clients.get(issuer)

    async def save_client(self, issuer: str, client: ClientRegistration) -> None:
        self._clients[issuer] = client


class FileTokenStorage:
    """A :class:`TokenStorage` in one JSON file (``~`` expanded) only its owner can read (0600).

    Every save rewrites the file atomically (a temporary file in the same directory, then
    a rename), so a crash leaves the old or the new contents, never a mix. The file holds
    secrets: keep it out of shared directories.
    """

    def __init__(self, path: os.PathLike[str] | str) -> None:
        self.path = Path(path).expanduser()
        self._lock = trio.Lock()

    async def load_tokens(self, resource: str) -> OAuthTokens | None:
        raw = (await self._read()).get("tokens", {}).get(resource)
        return OAuthTokens(**raw) if isinstance(raw, dict) else None

    async def save_tokens(self, resource: str, tokens: OAuthTokens | None) -> None:
        async with self._lock:
            data = await self._read()
            table = data.setdefault("tokens", {})
            if tokens is None:
                table.pop(resource, None)
            else:
                table[resource] = attrs.asdict(tokens)
            await trio.to_thread.run_sync(self._write, data)

    async def load_client(self, issuer: str) -> ClientRegistration | None:
        raw = (await self._read()).get("clients", {}).get(issuer)
        return ClientRegistration(**raw) if isinstance(raw, dict) else None

    async def save_client(self, issuer: str, client: ClientRegistration) -> None:
        async with self._lock:
            data = await self._read()
            data.setdefault("clients", {})[issuer] = attrs.asdict(client)
            await trio.to_thread.run_sync(self._write, data)

    async def _read(self) -> dict[str, Any]:
        return await trio.to_thread.run_sync(self._read_sync)

    def _read_sync(self) -> dict[str, Any]:
        try:
            loaded = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ValueError(f"cannot read the token file {self.path}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ValueError(f"the token file {self.path} does not hold a JSON object")
        return loaded

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # mkstemp creates the file 0600, so the secrets are never readable by others.
        fd, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(orjson.dumps(data, option=orjson.OPT_INDENT_2))
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
