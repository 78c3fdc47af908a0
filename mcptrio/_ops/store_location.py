"""Store URLs: which backend keeps sessions, events and tasks, and where (sans-IO).

``memory://`` (this process), ``sqlite:///absolute/path.db`` or ``sqlite:relative/path.db``,
``redis://[:password@]host[:port][/db][?prefix=...]`` (``rediss://`` for TLS).
"""

from __future__ import annotations

from typing import Final, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import attrs

__all__ = ["DEFAULT_REDIS_PREFIX", "StoreError", "StoreLocation", "mask_url", "parse_store_url"]

DEFAULT_REDIS_PREFIX: Final = "mcptrio:"
"""The key prefix of a Redis store whose URL names none."""


class StoreError(Exception):
    """A store URL is malformed, or the store it names cannot be opened or used."""


@attrs.frozen
class StoreLocation:
    """A parsed store URL."""

    kind: Literal["memory", "sqlite", "redis"]
    """The backend."""
    masked_url: str
    """The URL as given, password replaced by ``***``: safe to show."""
    path: str | None = None
    """SQLite: the file."""
    redis_url: str | None = None
    """Redis: the URL to connect to (without ``prefix``)."""
    prefix: str = DEFAULT_REDIS_PREFIX
    """Redis: the key prefix."""


def mask_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def parse_store_url(url: str) -> StoreLocation:
    """Parse a store URL; :class:`StoreError` naming the (masked) URL and the problem."""
    masked = mask_url(url)

    def bad(problem: str) -> StoreError:
        return StoreError(f"store URL {masked!r}: {problem}")

    if not isinstance(url, str) or not url:
        raise bad("it is empty; use memory://, sqlite:///path/file.db or redis://host:port/0")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise bad(f"it is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme == "memory":
        if parts.netloc or parts.path or parts.query:
            raise bad("a memory store takes no host, path or options; write memory://")
        return StoreLocation("memory", masked)
    if scheme == "sqlite":
        if parts.netloc:
            raise bad(
                f"{parts.netloc!r} is in the host part; write sqlite:///absolute/path.db"
                " (three slashes) or sqlite:relative/path.db"
            )
        if not parts.path or parts.path.endswith("/"):
            raise bad("it names no file; write sqlite:///absolute/path.db")
        if parts.query:
            raise bad("a SQLite store takes no options")
        return StoreLocation("sqlite", masked, path=parts.path)
    if scheme in ("redis", "rediss"):
        if not parts.hostname:
            raise bad("it names no host; write redis://host:port/0")
        db = parts.path.strip("/")
        if db and not db.isdigit():
            raise bad(f"the database {db!r} is not a number; write redis://host:port/0")
        if port == 0:
            raise bad("port 0 is not a port Redis listens on")
        options = parse_qsl(parts.query, keep_blank_values=True)
        prefixes = [v for k, v in options if k == "prefix"]
        if len(prefixes) > 1:
            raise bad("it gives prefix more than once")
        prefix = prefixes[0] if prefixes else DEFAULT_REDIS_PREFIX
        if not prefix:
            raise bad("the prefix is empty; every key needs one so servers can share a Redis")
        rest = urlencode([(k, v) for k, v in options if k != "prefix"])
        redis_url = urlunsplit(parts._replace(query=rest, fragment=""))
        return StoreLocation("redis", masked, redis_url=redis_url, prefix=prefix)
    raise bad(
        f"unknown scheme {parts.scheme!r}; use memory://, sqlite:///path/file.db or"
        " redis://host:port/db?prefix=..."
    )
