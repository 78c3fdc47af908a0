"""The small HTTP request/response interface the MCP endpoint is written against.

Adapters (ASGI today, h11 on trio streams later) turn their server's events into an
:class:`HttpExchange`; the endpoint logic never sees ASGI or sockets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

__all__ = [
    "BodyTooLarge",
    "ClientDisconnected",
    "Headers",
    "HttpExchange",
]


class ClientDisconnected(Exception):
    """The client went away; nothing more can be sent on this exchange."""


class BodyTooLarge(Exception):
    """The request body is larger than the limit given to ``read_body``."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {limit} bytes")
        self.limit = limit


class Headers:
    """Request headers: case-insensitive names, repeated names kept in order."""

    __slots__ = ("_first", "_items")

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._items: list[tuple[str, str]] = [(k.lower(), v) for k, v in items]
        first: dict[str, str] = {}
        for key, value in self._items:
            first.setdefault(key, value)
        self._first = first

    @classmethod
    def from_lower(cls, items: list[tuple[str, str]]) -> Headers:
        """From pairs whose names are already lower case (kept, not copied)."""
        headers = cls.__new__(cls)
        headers._items = items
        first: dict[str, str] = {}
        for key, value in items:
            if key not in first:
                first[key] = value
        headers._first = first
        return headers

    @classmethod
    def from_raw(cls, raw: Iterable[tuple[bytes, bytes]]) -> Headers:
        """From ASGI/h11 byte pairs (latin-1, as HTTP/1.1 defines)."""
        return cls((k.decode("latin-1"), v.decode("latin-1")) for k, v in raw)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name``, or ``default``."""
        return self._first.get(name.lower(), default)

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name`` in order."""
        name = name.lower()
        return [value for key, value in self._items if key == name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def items(self) -> Sequence[tuple[str, str]]:
        """All (lowercase name, value) pairs."""
        return tuple(self._items)


class HttpExchange(Protocol):
    """One HTTP request and the means to answer it, once."""

    @property
    def method(self) -> str:
        """Upper-case request method."""
        ...

    @property
    def path(self) -> str:
        """The decoded path, without the query string."""
        ...

    @property
    def query_string(self) -> str:
        """The raw query string (no leading ``?``)."""
        ...

    @property
    def headers(self) -> Headers:
        """Request headers."""
        ...

    @property
    def client_host(self) -> str | None:
        """The peer's IP address as text, when known."""
        ...

    async def read_body(self, limit: int) -> bytes:
        """The whole request body; :class:`BodyTooLarge` past ``limit`` bytes."""
        ...

    async def respond(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        """Send a complete response."""
        ...

    async def start_stream(self, status: int, headers: Sequence[tuple[str, str]]) -> None:
        """Begin a streamed response (SSE)."""
        ...

    async def send_chunk(self, data: bytes) -> None:
        """Send part of a streamed response; :class:`ClientDisconnected` once the client left."""
        ...

    async def end_stream(self, data: bytes = b"") -> None:
        """Finish a streamed response, sending ``data`` as its last part (one write)."""
        ...

    async def wait_disconnected(self) -> None:
        """Return once the client has gone away."""
        ...
