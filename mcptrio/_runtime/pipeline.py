"""The message pipeline: the stages every message passes on its way through a peer.

Each message goes: session resolve/validate (the transport and the peer) → the stages on
the request (interceptors) → processing (the handler) → the stages on the response →
session update. :class:`Stages` is what a peer runs around processing; the interceptor
chain implements it. A peer with no stages, or whose stages are not ``active``, pays one
attribute check per message.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, TypeAlias

from .._protocol.jsonrpc import ErrorResponse, Notification, Request, Response

__all__ = ["Direction", "PipelineFacts", "Side", "Stages"]

Side: TypeAlias = Literal["server", "client"]
"""Which end of the connection a peer is."""

Direction: TypeAlias = Literal["client->server", "server->client"]
"""Which way a message travels."""


class PipelineFacts:
    """What a peer knows about its connection, filled in as the session goes on.

    A plain mutable record: the session layer updates it when it learns the protocol
    revision, the session id or the principal.
    """

    __slots__ = (
        "http",
        "principal",
        "protocol_version",
        "session",
        "session_id",
        "side",
        "transport",
    )

    def __init__(self, side: Side, transport: str) -> None:
        self.side: Side = side
        self.transport = transport
        self.protocol_version: str | None = None
        self.session_id: str | None = None
        self.session: object | None = None
        self.principal: Any = None
        self.http: Any = None

    def incoming(self) -> Direction:
        """The direction of the messages this peer receives."""
        return "client->server" if self.side == "server" else "server->client"

    def outgoing(self) -> Direction:
        """The direction of the messages this peer sends."""
        return "server->client" if self.side == "server" else "client->server"


class Stages(Protocol):
    """The stages a pipeline runs around processing (the interceptor chain)."""

    @property
    def active(self) -> bool:
        """False when there is nothing to run (an empty chain)."""
        ...

    async def on_request(
        self, facts: PipelineFacts, direction: Direction, request: Request
    ) -> Request | Response | ErrorResponse:
        """The request to process, or the answer that replaces processing."""
        ...

    async def on_notification(
        self, facts: PipelineFacts, direction: Direction, notification: Notification
    ) -> Notification | None:
        """The notification to deliver, or None to drop it."""
        ...

    async def on_response(
        self, facts: PipelineFacts, direction: Direction, response: Response | ErrorResponse
    ) -> Response | ErrorResponse:
        """The answer to deliver in place of ``response``."""
        ...
