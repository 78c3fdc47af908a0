"""Entry points that serve a :class:`Server` until cancelled or until the client leaves."""

from __future__ import annotations

import trio

from .._transports.stdio import open_stdio_server_transport
from .connection import ServerSession, serve_connection
from .server import Server

__all__ = ["serve_stdio"]


async def serve_stdio(
    server: Server,
    *,
    task_status: trio.TaskStatus[ServerSession] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``server`` on this process's stdin/stdout until stdin closes.

    While serving, ``print`` and anything else written to stdout goes to stderr, so it
    cannot corrupt the protocol stream.
    """
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve_background)
        async with open_stdio_server_transport(
            max_message_bytes=server.config.max_message_bytes, metrics=server.metrics
        ) as transport:
            await serve_connection(server, transport, name="stdio", task_status=task_status)
        nursery.cancel_scope.cancel()
