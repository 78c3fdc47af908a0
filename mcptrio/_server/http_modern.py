"""The 2026-07-28 shape of Streamable HTTP: mirrored headers, one POST per request, no sessions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson
import trio

from .._protocol.errors import HeaderMismatch, InvalidParams, MCPError
from .._protocol.http_headers import (
    HeaderPaths,
    check_param_headers,
    decode_header_value,
    x_mcp_header_paths,
)
from .._protocol.jsonrpc import ErrorResponse, Message, RequestId, Response
from .._protocol.methods import name_source
from .._protocol.sse import encode_comment, encode_event
from .._protocol.versions import META_PROTOCOL_VERSION, MODERN_VERSIONS
from .._runtime.peer import ProgressCallback
from .._transports.http.exchange import ClientDisconnected, Headers, HttpExchange

if TYPE_CHECKING:
    from .._ops.metrics import Metrics
    from .server import Server

__all__ = [
    "ModernResponder",
    "check_modern_headers",
    "is_modern_http_request",
    "status_for_error",
]

_STATUS = {-32700: 400, -32600: 400, -32602: 400, -32020: 400, -32021: 400, -32022: 400}


def status_for_error(code: int) -> int:
    """The HTTP status of a 2026-07-28 JSON-RPC error (unknown method: 404)."""
    if code == -32601:
        return 404
    return _STATUS.get(code, 200)


def is_modern_http_request(
    method: str, params: Mapping[str, Any] | None, header_version: str | None
) -> bool:
    """Era detection for a POST (spec 3.3): ``_meta`` decides; without it, the header does.

    An ``initialize`` is legacy unless its ``_meta`` names a modern version: then it is a
    2026-07-28 request for a method that revision removed (404 + -32601).
    """
    if params is not None:
        meta = params.get("_meta")
        if isinstance(meta, dict) and META_PROTOCOL_VERSION in meta:
            return True
    if method == "initialize":
        return False
    return header_version is not None and header_version >= MODERN_VERSIONS[0]


def _param_paths(server: Server, tool_name: str) -> HeaderPaths:
    """The ``x-mcp-header`` paths of a tool's input schema (none for an unknown tool)."""
    entry = server.tools.get(tool_name)
    return {} if entry is None else x_mcp_header_paths(entry.tool.input_schema)


def check_modern_headers(
    headers: Headers, method: str, params: Mapping[str, Any], server: Server
) -> None:
    """Check the mirrored headers against the body; :class:`HeaderMismatch` (-32020) if not."""
    meta = params.get("_meta")
    body_version = meta.get(META_PROTOCOL_VERSION) if isinstance(meta, dict) else None
    header_version = headers.get("mcp-protocol-version")
    if header_version is None:
        raise HeaderMismatch("the MCP-Protocol-Version header is required on every request")
    if body_version is not None and header_version != body_version:
        raise HeaderMismatch(
            f"MCP-Protocol-Version header {header_version!r} does not match"
            f" params._meta[{META_PROTOCOL_VERSION!r}] {body_version!r}"
        )
    header_method = headers.get("mcp-method")
    if header_method is None:
        raise HeaderMismatch("the Mcp-Method header is required on every request")
    if header_method != method:
        raise HeaderMismatch(
            f"Mcp-Method header {header_method!r} does not match method {method!r}"
        )
    source = name_source(method)
    if source is not None:
        raw_name = headers.get("mcp-name")
        if raw_name is None:
            raise HeaderMismatch(f"the Mcp-Name header is required on {method} (params.{source})")
        if decode_header_value(raw_name) != params.get(source):
            raise HeaderMismatch(
                f"Mcp-Name header {raw_name!r} does not match params.{source}"
                f" {params.get(source)!r}"
            )
    if method == "tools/call" and isinstance(params.get("name"), str):
        arguments = params.get("arguments")
        arguments = arguments if isinstance(arguments, dict) else {}
        check_param_headers(_param_paths(server, params["name"]), arguments, headers)


class ModernResponder:
    """The outbound side of one 2026-07-28 POST: notifications, then the response.

    With SSE, the stream starts with the first notification, so an error raised before
    any is still answered with its own HTTP status and a plain JSON body.
    """

    def __init__(
        self, ex: HttpExchange, *, sse: bool, keepalive: float, metrics: Metrics | None = None
    ) -> None:
        self._ex = ex
        self._metrics = metrics
        self._sse = sse
        self._keepalive = keepalive
        self._started = False
        self._closed = False
        self._lock = trio.Lock()
        self._last_send = trio.current_time()
        self._keepalive_scope: trio.CancelScope | None = None
        self.nursery: trio.Nursery | None = None
        """Where the keep-alive task runs once the stream starts (most answers never stream)."""
        self.cancel_scope: trio.CancelScope | None = None
        """The request's scope: cancelled when a keep-alive finds the client gone."""

    async def _start(self) -> None:
        if not self._started:
            self._started = True
            if self.nursery is not None and not self._closed:
                self._keepalive_scope = trio.CancelScope()
                self.nursery.start_soon(self._run_keep_alive, self._keepalive_scope)
            await self._ex.start_stream(
                200,
                [
                    ("content-type", "text/event-stream"),
                    ("cache-control", "no-cache"),
                    ("x-accel-buffering", "no"),
                ],
            )

    def _count(self, body: bytes) -> bytes:
        if self._metrics is not None:
            self._metrics.record_message("out", len(body))
        return body

    async def _send_event(self, message: Message) -> None:
        async with self._lock:
            await self._start()
            await self._ex.send_chunk(self._count(encode_event(orjson.dumps(message.to_dict()))))
            self._last_send = trio.current_time()

    async def _run_keep_alive(self, scope: trio.CancelScope) -> None:
        with scope:
            try:
                await self.keep_alive()
            except ClientDisconnected:
                if self.cancel_scope is not None:
                    self.cancel_scope.cancel()

    def close(self) -> None:
        """The exchange is over: no more keep-alives."""
        self._closed = True
        if self._keepalive_scope is not None:
            self._keepalive_scope.cancel()

    async def keep_alive(self) -> None:
        """Send ``:`` comments while the stream is idle (run in a task; long listens)."""
        while True:
            await trio.sleep_until(self._last_send + self._keepalive)
            if trio.current_time() - self._last_send < self._keepalive:
                continue
            async with self._lock:
                if self._closed:
                    return
                await self._start()
                await self._ex.send_chunk(encode_comment())
                self._last_send = trio.current_time()

    async def notify(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        related_request_id: RequestId | None = None,
    ) -> None:
        """A notification about this request (progress, log, listen events)."""
        if not self._sse:
            return  # a JSON response carries only the result
        from .._protocol.jsonrpc import Notification

        await self._send_event(Notification(method, params))

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        related_request_id: RequestId | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        """Servers send no requests in 2026-07-28 (MRTR replaces them)."""
        raise MCPError(f"a 2026-07-28 server cannot send {method!r}; ask for input with MRTR")

    async def _end_with(self, message: Message) -> None:
        # The last event and the end of the stream go out in one write.
        async with self._lock:
            self._closed = True
            await self._ex.end_stream(self._count(encode_event(orjson.dumps(message.to_dict()))))

    async def finish(self, request_id: RequestId, result: dict[str, Any]) -> None:
        """Send the response and end the exchange."""
        response = Response(request_id, result)
        if self._started:
            await self._end_with(response)
            return
        await self._ex.respond(
            200,
            [("content-type", "application/json")],
            self._count(orjson.dumps(response.to_dict())),
        )

    async def fail(self, request_id: RequestId | None, exc: MCPError) -> None:
        """Send an error response: its own HTTP status unless the stream already started."""
        error = ErrorResponse(request_id, exc.code, exc.message, exc.data)
        if self._started:
            await self._end_with(error)
            return
        await self._ex.respond(
            status_for_error(exc.code),
            [("content-type", "application/json")],
            self._count(orjson.dumps(error.to_dict())),
        )


def missing_meta_error() -> InvalidParams:
    """The error for a 2026-07-28-looking request without ``_meta``."""
    return InvalidParams(
        f"params._meta[{META_PROTOCOL_VERSION!r}] is required on 2026-07-28 requests"
    )
