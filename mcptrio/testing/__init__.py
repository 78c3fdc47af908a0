"""Test helpers: in-memory connections and Hypothesis strategies for MCP messages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from .._client.client import Client, open_client
from .._runtime.groups import unwrap_single_error
from .._server.connection import serve_connection
from .._server.server import Server
from .._transports.memory import MemoryTransport as MemoryTransport
from .._transports.memory import memory_transport_pair as memory_transport_pair
from ._recording import RecordingInterceptor as RecordingInterceptor

__all__ = [
    "MemoryTransport",
    "RecordingInterceptor",
    "hostile_json_values",
    "hostile_messages",
    "hostile_params",
    "intercept_contexts",
    "json_objects",
    "json_values",
    "jsonrpc_messages",
    "mcp_requests",
    "memory_transport_pair",
    "open_memory_client",
    "request_ids",
    "wire_objects",
]


def __getattr__(name: str) -> Any:
    # The strategies need Hypothesis, which only test environments have.
    if name in {
        "hostile_json_values",
        "hostile_messages",
        "hostile_params",
        "intercept_contexts",
        "json_objects",
        "json_values",
        "jsonrpc_messages",
        "mcp_requests",
        "request_ids",
        "wire_objects",
    }:
        from . import _strategies

        return getattr(_strategies, name)
    raise AttributeError(name)


@asynccontextmanager
async def open_memory_client(
    server: Server, *, serialize: bool = True, direct: bool = True, **client_options: Any
) -> AsyncIterator[Client]:
    """Serve ``server`` in memory and yield a client connected to it.

    ``client_options`` go to :func:`~mcptrio.open_client` (handlers, protocol version).
    With ``serialize=True`` every message goes through the JSON codec, as on a wire;
    ``direct`` is as for :func:`memory_transport_pair`.
    """
    client_end, server_end = memory_transport_pair(serialize=serialize, direct=direct)
    with unwrap_single_error():
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_background)
            await nursery.start(serve_connection, server, server_end)
            async with open_client(client_end, **client_options) as client:
                yield client
            nursery.cancel_scope.cancel()
