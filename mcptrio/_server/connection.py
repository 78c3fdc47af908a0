"""A server's side of one connection: the handshake, per-session state and routing by era."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import trio

from .._auth.resource_server import Principal
from .._ops.metrics import Outcome
from .._protocol.converter import from_wire, to_wire
from .._protocol.errors import ConnectionClosed, InvalidRequest, MCPError, MethodNotFound
from .._protocol.jsonrpc import Notification, Request
from .._protocol.methods import method_spec
from .._protocol.versions import (
    LEGACY_VERSIONS,
    META_PROTOCOL_VERSION,
    negotiate_legacy_version,
    supports_batches,
)
from .._runtime.peer import Peer, open_peer
from .._runtime.pipeline import Stages
from .._runtime.transport import Transport
from ..types import (
    ClientCapabilities,
    Implementation,
    InitializeRequestParams,
    InitializeResult,
    LoggingLevel,
)
from .dispatch import CallScope, dispatch
from .modern import is_modern_request, serve_modern
from .server import Server

__all__ = ["ServerSession", "serve_connection"]

log = logging.getLogger("mcptrio.server")


class ServerSession:
    """One client connection: legacy-era session state, and the router of its messages.

    Requests carrying 2026-07-28 ``_meta`` are served statelessly whether or not the
    connection ever sent ``initialize``; everything else follows the legacy lifecycle.
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        self.protocol_version: str | None = None
        self.client_info: Implementation | None = None
        self.client_capabilities = ClientCapabilities()
        self.log_level: LoggingLevel | None = server.config.log_level
        self.subscriptions: set[str] = set()
        self.client_initialized = False
        """True once ``notifications/initialized`` arrived."""
        self._principal: Principal | None = None
        self._peer: Peer | None = None

    @property
    def principal(self) -> Principal | None:
        """Who the session belongs to; the transport sets it from each request's credentials
        (a session only ever serves the principal that created it)."""
        return self._principal

    @principal.setter
    def principal(self, principal: Principal | None) -> None:
        self._principal = principal
        if self._peer is not None:
            self._peer.facts.principal = principal

    @property
    def initialized(self) -> bool:
        """True once ``initialize`` has been answered."""
        return self.protocol_version is not None

    @property
    def peer(self) -> Peer:
        """The connection this session runs on."""
        if self._peer is None:
            raise RuntimeError("the session is not attached to a connection")
        return self._peer

    def attach(self, peer: Peer) -> None:
        """Bind this session to the peer that carries it."""
        self._peer = peer
        peer.facts.session = self
        peer.facts.principal = self._principal

    async def notify_quietly(self, method: str, params: dict[str, Any] | None = None) -> None:
        """Send a notification if the session is live; a closed connection is not an error."""
        if not self.initialized or self._peer is None:
            return
        with contextlib.suppress(ConnectionClosed):
            await self._peer.notify(method, params)

    # -- MessageHandler -------------------------------------------------------------------

    async def handle_request(self, peer: Peer, request: Request) -> dict[str, Any]:
        """Route one request by era (see :class:`~mcptrio.MessageHandler`)."""
        method = request.method
        metrics = self.server.metrics
        start = time.perf_counter()
        outcome: Outcome = "ok"
        code: int | None = None
        metrics.increment_in_flight()
        try:
            if is_modern_request(request.params):
                return await serve_modern(
                    self.server,
                    request,
                    peer,
                    cancel_scope=peer.incoming_cancel_scope(request.id),
                    principal=self.principal,
                )
            return await self._legacy(peer, request)
        except MCPError as exc:
            outcome, code = "error", exc.code
            raise
        except trio.Cancelled:
            outcome = "cancelled"
            raise
        except BaseException:
            outcome, code = "error", -32603
            raise
        finally:
            metrics.decrement_in_flight()
            known = self.server.methods.knows(method)
            metrics.record_request(
                method if known else "other",
                duration=time.perf_counter() - start,
                outcome=outcome,
                code=code,
            )

    async def _legacy(self, peer: Peer, request: Request) -> dict[str, Any]:
        method = request.method
        if method == "initialize":
            return await self._initialize(peer, request.params or {})
        if method == "ping":
            return {}
        if not self.initialized:
            spec = method_spec(method)
            if spec is None and not self.server.methods.knows(method):
                raise MethodNotFound(f"unknown method {method!r}")
            raise InvalidRequest(
                f"received {method!r} before initialization: send 'initialize' first (or, for"
                f" protocol 2026-07-28, put {META_PROTOCOL_VERSION!r} in params._meta)"
            )
        spec = method_spec(method)
        if spec is not None and spec.sender == "server":
            raise MethodNotFound(f"{method!r} is sent by servers, not to them")
        scope = CallScope.for_session(self, peer, peer.incoming_cancel_scope(request.id))
        result = await dispatch(scope, request)
        # logging/setLevel changed the session's level through the scope's session.
        return result

    async def handle_notification(self, peer: Peer, notification: Notification) -> None:
        """Handle a client notification (see :class:`~mcptrio.MessageHandler`)."""
        if notification.method == "notifications/initialized":
            self.client_initialized = True
        elif notification.method == "notifications/roots/list_changed":
            log.debug("client roots changed")
        else:
            log.debug("ignored notification %s", notification.method)

    # -- handshake ------------------------------------------------------------------------

    async def _initialize(self, peer: Peer, params: dict[str, Any]) -> dict[str, Any]:
        if self.initialized:
            raise InvalidRequest(
                "this connection is already initialized; open a new connection to start over"
            )
        init = from_wire(InitializeRequestParams, params, path="params")
        version = negotiate_legacy_version(init.protocol_version, LEGACY_VERSIONS)
        self.protocol_version = version
        peer.facts.protocol_version = version
        self.client_info = init.client_info
        self.client_capabilities = init.capabilities
        peer.batches_allowed = supports_batches(version)
        self.server.sessions.add(self)
        result = InitializeResult(
            protocol_version=version,
            capabilities=self.server.capabilities(),
            server_info=self.server.info,
            instructions=self.server.instructions,
        )
        return to_wire(result)


async def serve_connection(
    server: Server,
    transport: Transport,
    *,
    name: str = "connection",
    stages: Stages | None = None,
    task_status: trio.TaskStatus[ServerSession] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``server`` over one transport until the client disconnects.

    When the client closes its side, requests in flight get ``config.shutdown_grace``
    seconds to finish and answer before they are cancelled. Every message passes
    ``stages`` (default: the server's interceptor chain).
    """
    config = server.config
    session = ServerSession(server)
    async with open_peer(
        transport,
        session,
        max_in_flight=config.max_in_flight_requests,
        cancel_notify_timeout=config.cancel_notify_timeout,
        name=name,
        metrics=server.metrics,
        # A client may pipeline initialize and what follows it.
        ordered_methods=("initialize",),
        stages=stages if stages is not None else server.interceptors,
    ) as peer:
        session.attach(peer)
        try:
            task_status.started(session)
            await peer.wait_closed()
            with trio.move_on_after(config.shutdown_grace):
                await peer.wait_in_flight_done()
        finally:
            server.sessions.discard(session)
