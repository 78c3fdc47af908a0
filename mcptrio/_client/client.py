"""The ``Client``: typed calls for every server feature, in both protocol eras.

Legacy era (2024-11-05 .. 2025-11-25): an ``initialize`` handshake, after which the server's
own requests (sampling, elicitation, roots) are answered by the callbacks given to
:func:`open_client`. Modern era (2026-07-28): no handshake; every request carries ``_meta``
(protocol version, client capabilities, client info, log level), ``server/discover`` says who
the server is, an ``InputRequiredResult`` is fulfilled by the same callbacks and the request
retried (MRTR), and change notifications come from ``subscriptions/listen``.
``mode="auto"`` probes the server as the spec says and remembers the answer per server.
"""

from __future__ import annotations

import collections
import contextlib
import inspect
import itertools
import logging
import math
import os
import shlex
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Final, Literal, TypeAlias, TypeVar

import attrs
import trio

from .._intercept.chain import InterceptorChain
from .._protocol.converter import from_wire, result_from_wire, to_wire
from .._protocol.errors import (
    ConnectionClosed,
    HeaderMismatch,
    InvalidParams,
    MCPError,
    MethodNotFound,
    MissingRequiredClientCapability,
    UnsupportedProtocolVersion,
)
from .._protocol.http_headers import x_mcp_header_paths, x_mcp_header_problem
from .._protocol.jsonrpc import ErrorResponse, Message, Notification, Request, RequestId, Response
from .._protocol.methods import MRTR_METHODS
from .._protocol.versions import (
    LATEST_LEGACY_VERSION,
    LEGACY_VERSIONS,
    META_CLIENT_CAPABILITIES,
    META_CLIENT_INFO,
    META_LOG_LEVEL,
    META_PROTOCOL_VERSION,
    META_SERVER_INFO,
    META_SUBSCRIPTION_ID,
    MODERN_VERSIONS,
    SUPPORTED_VERSIONS,
    Era,
)
from .._runtime.peer import Peer, PeerStatistics, ProgressCallback, open_peer
from .._runtime.transport import DirectReceiver, Incoming, Transport, TransportBase
from .._transports.stdio import StdioProcessTransport
from ..types import (
    LOGGING_LEVELS,
    CallToolResult,
    ClientCapabilities,
    CompleteRequestParams,
    CompleteResult,
    Completion,
    CompletionArgument,
    CompletionContext,
    CreateMessageRequestParams,
    CreateMessageResult,
    DetailedTask,
    DiscoverResult,
    ElicitationCapability,
    ElicitRequestFormParams,
    ElicitRequestURLParams,
    ElicitResult,
    GetPromptRequestParams,
    GetPromptResult,
    Implementation,
    InitializeRequestParams,
    InitializeResult,
    InputRequiredResult,
    ListPromptsResult,
    ListResourcesResult,
    ListResourceTemplatesResult,
    ListRootsResult,
    ListToolsResult,
    LoggingLevel,
    LoggingMessageNotificationParams,
    Prompt,
    PromptReference,
    ReadResourceRequestParams,
    ReadResourceResult,
    Resource,
    ResourceTemplate,
    ResourceTemplateReference,
    Root,
    RootsCapability,
    SamplingCapability,
    ServerCapabilities,
    SubscriptionFilter,
    Tool,
)
from .http_transport import HttpClientTransport

__all__ = [
    "DEFAULT_MAX_INPUT_ROUNDS",
    "DEFAULT_PROBE_TIMEOUT",
    "Client",
    "ClientMode",
    "ElicitationHandler",
    "LogHandler",
    "NotificationHandler",
    "RootsProvider",
    "SamplingHandler",
    "Subscription",
    "forget_eras",
    "open_client",
]

log = logging.getLogger("mcptrio.client")

T = TypeVar("T")

SamplingHandler = Callable[[CreateMessageRequestParams], Awaitable[CreateMessageResult]]
"""Answers ``sampling/createMessage``; raise :class:`MCPError` to refuse."""
ElicitationHandler = Callable[
    [ElicitRequestFormParams | ElicitRequestURLParams], Awaitable[ElicitResult]
]
"""Answers ``elicitation/create`` (form or URL mode)."""
RootsProvider = Sequence[Root] | Callable[[], Awaitable[Sequence[Root]]]
"""The client's roots: a fixed list, or an async function returning the current list."""
LogHandler = Callable[[LoggingMessageNotificationParams], Awaitable[None]]
"""Receives ``notifications/message``."""
NotificationHandler = Callable[[Notification], Awaitable[None]]
"""Receives every other server notification (list changes, resource updates, ...)."""

ClientMode: TypeAlias = Literal["auto", "legacy", "2026-07-28"]
"""How :func:`open_client` picks the protocol era: probe (``"auto"``), ``initialize``
(``"legacy"``), or a pinned 2026 revision without probing."""

DEFAULT_PROBE_TIMEOUT: Final = 10.0
"""Seconds ``mode="auto"`` waits for an answer to its ``server/discover`` probe."""
DEFAULT_MAX_INPUT_ROUNDS: Final = 8
"""How many times a 2026 request is retried with input before the client gives up."""

_ERA_CACHE_SIZE: Final = 256
_RECENT_LISTENS: Final = 64


# -- remembered era decisions ---------------------------------------------------------------


class _EraCache:
    """What ``mode="auto"`` learnt about servers: least recently used entries go first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: collections.OrderedDict[str, Era] = collections.OrderedDict()

    def get(self, key: str) -> Era | None:
        era = self._entries.get(key)
        if era is not None:
            self._entries.move_to_end(key)
        return era

    def put(self, key: str, era: Era) -> None:
        self._entries[key] = era
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


_eras = _EraCache(_ERA_CACHE_SIZE)


def forget_eras() -> None:
    """Forget which era each server speaks, so the next ``mode="auto"`` connections probe."""
    _eras.clear()


def _era_key(transport: Transport) -> str | None:
    """What an era decision is remembered by: the HTTP origin, or the stdio server command."""
    if isinstance(transport, HttpClientTransport):
        return f"http {transport.origin}"
    if isinstance(transport, StdioProcessTransport):
        args = transport.process.args
        if isinstance(args, str | bytes | os.PathLike):
            return f"stdio {os.fsdecode(args)}"
        return "stdio " + shlex.join(os.fsdecode(arg) for arg in args)
    return None


# -- subscriptions ----------------------------------------------------------------------------


class _Listener:
    """One ``listen()``: a bounded buffer of notifications and how the stream ended."""

    def __init__(
        self,
        buffer: int,
        *,
        listen_id: RequestId | None = None,
        matches: Callable[[Notification], bool] | None = None,
    ) -> None:
        self.listen_id = listen_id
        self.matches = matches
        self.send, self.receive = trio.open_memory_channel[Notification](buffer)
        self.acknowledged: SubscriptionFilter | None = None
        self.settled = trio.Event()
        self.error: MCPError | None = None
        self.ended = False
        self.dropped = 0

    def deliver(self, notification: Notification) -> None:
        if self.ended:
            return
        try:
            self.send.send_nowait(notification)
        except trio.WouldBlock:
            # Blocking here would stall the whole connection behind one idle reader.
            self.dropped += 1
            if self.dropped & (self.dropped - 1) == 0:
                log.warning(
                    "a listen() subscription is not being read: dropped %d notification(s)",
                    self.dropped,
                )

    def acknowledge(self, honoured: SubscriptionFilter) -> None:
        if self.acknowledged is None:
            self.acknowledged = honoured
        self.settled.set()

    def end(self, error: MCPError | None = None) -> None:
        if self.ended:
            return
        self.ended = True
        self.error = error
        self.send.close()
        self.settled.set()


class Subscription:
    """The notifications of one :meth:`Client.listen`, read with ``async for``.

    Iteration ends when the server ends the subscription; it raises :class:`MCPError` when
    the subscription failed or the connection dropped (listen again to resubscribe).
    """

    def __init__(self, listener: _Listener) -> None:
        self._listener = listener

    @property
    def acknowledged(self) -> SubscriptionFilter:
        """The notification kinds the server agreed to send."""
        return self._listener.acknowledged or SubscriptionFilter()

    @property
    def subscription_id(self) -> RequestId | None:
        """The ``subscriptions/listen`` request id (2026-07-28); None in the legacy era."""
        return self._listener.listen_id

    @property
    def dropped(self) -> int:
        """Notifications dropped because the buffer was full while nobody was reading."""
        return self._listener.dropped

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Notification:
        try:
            return await self._listener.receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            if self._listener.error is not None:
                raise self._listener.error from None
            raise StopAsyncIteration from None


class _Router(TransportBase):
    """The client's view of its transport: listen-stream traffic goes to its subscribers.

    Runs on the peer's reader task, so routing keeps message order. A notification for a
    subscriber still reaches ``on_notification``; acknowledgements, listen results and the
    server's ``notifications/cancelled`` for a listen are consumed here.
    """

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.by_id: dict[RequestId, _Listener] = {}
        self.legacy: list[_Listener] = []
        self._recent: collections.deque[RequestId] = collections.deque(maxlen=_RECENT_LISTENS)

    async def send(self, message: Message, *, related_request_id: RequestId | None = None) -> None:
        await self.inner.send(message, related_request_id=related_request_id)

    async def send_batch(self, messages: list[Message]) -> None:
        await self.inner.send_batch(messages)

    async def receive(self) -> Incoming:
        while True:
            try:
                incoming = await self.inner.receive()
            except (trio.EndOfChannel, trio.BrokenResourceError, trio.ClosedResourceError):
                self.end_all(ConnectionClosed("the connection to the server closed"))
                raise
            if isinstance(incoming, list) or not self._consume_safely(incoming):
                return incoming

    async def aclose(self) -> None:
        self.end_all(ConnectionClosed("the client closed the connection"))
        await self.inner.aclose()

    def accept_direct(self, receiver: DirectReceiver | None) -> None:
        self.inner.accept_direct(_RoutedReceiver(self, receiver) if receiver is not None else None)

    async def call(self, request: Request, *, related_request_id: RequestId | None = None) -> None:
        await self.inner.call(request, related_request_id=related_request_id)

    def abandon_request(self, request_id: RequestId) -> None:
        self.inner.abandon_request(request_id)

    def add(self, listener: _Listener) -> None:
        if listener.listen_id is not None:
            self.by_id[listener.listen_id] = listener
        else:
            self.legacy.append(listener)

    def remove(self, listener: _Listener) -> None:
        if listener.listen_id is not None:
            if self.by_id.pop(listener.listen_id, None) is not None:
                self._recent.append(listener.listen_id)
        elif listener in self.legacy:
            self.legacy.remove(listener)

    def end_all(self, error: MCPError) -> None:
        for listener in [*self.by_id.values(), *self.legacy]:
            listener.end(error)

    def _consume_safely(self, message: Message) -> bool:
        """:meth:`_consume`, where a message that breaks routing goes to the peer as it is."""
        try:
            return self._consume(message)
        except Exception:
            # Whatever the server sent, the connection (and every other call) goes on.
            log.warning(
                "could not route %s from the server",
                getattr(message, "method", type(message).__name__),
                exc_info=True,
            )
            return False

    def _consume(self, message: Message) -> bool:
        """Route ``message``; True when the peer must not see it."""
        if isinstance(message, Response | ErrorResponse):
            listener = self.by_id.get(message.id) if message.id is not None else None
            if listener is None:
                return message.id in self._recent
            self.remove(listener)
            listener.end(message.to_exception() if isinstance(message, ErrorResponse) else None)
            return True
        if not isinstance(message, Notification):
            return False
        params = message.params or {}
        if message.method == "notifications/cancelled":
            request_id = params.get("requestId")
            if not isinstance(request_id, int | str):
                return False
            listener = self.by_id.get(request_id)
            if listener is None:
                return request_id in self._recent
            self.remove(listener)
            listener.end()
            return True
        meta = params.get("_meta")
        subscription = meta.get(META_SUBSCRIPTION_ID) if isinstance(meta, dict) else None
        if isinstance(subscription, int | str):
            listener = self.by_id.get(subscription)
            if listener is None:
                return subscription in self._recent
            if message.method == "notifications/subscriptions/acknowledged":
                listener.acknowledge(_honoured(params.get("notifications")))
                return True
            listener.deliver(message)
            return False
        for listener in self.legacy:
            if listener.matches is not None and listener.matches(message):
                listener.deliver(message)
        return False


class _RoutedReceiver:
    """Direct hand-over (in-memory transports) with the router's view of what arrives."""

    def __init__(self, router: _Router, receiver: DirectReceiver) -> None:
        self._router = router
        self._receiver = receiver

    def take_now(self, message: Message) -> bool:
        # Notifications always come through receive(), so routing keeps their order.
        if isinstance(message, Notification):
            return False
        return self._router._consume_safely(message) or self._receiver.take_now(message)

    async def serve_now(self, request: Request) -> bool:
        return await self._receiver.serve_now(request)


def _honoured(data: Any) -> SubscriptionFilter:
    try:
        return from_wire(SubscriptionFilter, data if data is not None else {})
    except InvalidParams as exc:
        log.warning("the server acknowledged a subscription with a malformed filter: %s", exc)
        return SubscriptionFilter()


def _legacy_matcher(
    tools: bool, prompts: bool, resources: bool, uris: Sequence[str], task_ids: Sequence[str]
) -> Callable[[Notification], bool]:
    """Which legacy session notifications a ``listen()`` asked for."""
    kinds = {
        "notifications/tools/list_changed": tools,
        "notifications/prompts/list_changed": prompts,
        "notifications/resources/list_changed": resources,
    }
    prefixes = [uri.rstrip("/") + "/" for uri in uris]

    def matches(notification: Notification) -> bool:
        if kinds.get(notification.method):
            return True
        params = notification.params or {}
        if notification.method == "notifications/resources/updated":
            uri = params.get("uri")
            # The server may report a sub-resource of what was subscribed.
            return isinstance(uri, str) and (
                uri in uris or any(uri.startswith(p) for p in prefixes)
            )
        if notification.method == "notifications/tasks/status":
            return params.get("taskId") in task_ids
        return False

    return matches


# -- callbacks --------------------------------------------------------------------------------


@attrs.define
class _ClientHandler:
    sampling: SamplingHandler | None
    elicitation: ElicitationHandler | None
    roots: RootsProvider | None
    on_log: LogHandler | None
    on_notification: NotificationHandler | None

    async def handle_request(self, peer: Peer, request: Request) -> dict[str, Any]:
        if request.method == "ping":
            return {}
        return await self.answer(request.method, request.params or {})

    async def answer(
        self, method: str, params: dict[str, Any], *, needed_by: str | None = None
    ) -> dict[str, Any]:
        """The result for a server's request: legacy (``needed_by`` None) or an MRTR input
        request of the call ``needed_by`` names."""
        if method == "sampling/createMessage":
            if self.sampling is None:
                raise _missing("sampling", "sampling_handler", method, needed_by)
            result = await self.sampling(from_wire(CreateMessageRequestParams, params))
            return to_wire(result)
        if method == "elicitation/create":
            if self.elicitation is None:
                raise _missing("elicitation", "elicitation_handler", method, needed_by)
            elicit: ElicitRequestFormParams | ElicitRequestURLParams
            if params.get("mode") == "url":
                elicit = from_wire(ElicitRequestURLParams, params)
            elif params.get("mode", "form") == "form":
                elicit = from_wire(ElicitRequestFormParams, params)
            else:
                raise InvalidParams(f"unsupported elicitation mode {params.get('mode')!r}")
            return to_wire(await self.elicitation(elicit))
        if method == "roots/list":
            if self.roots is None:
                raise _missing("roots", "roots", method, needed_by)
            roots = self.roots if not callable(self.roots) else await self.roots()
            return to_wire(ListRootsResult(roots=list(roots)))
        if needed_by is not None:
            raise MCPError(f"{needed_by} asks for {method!r}, which this client cannot answer")
        raise MethodNotFound(f"this client does not handle {method!r}")

    async def handle_notification(self, peer: Peer, notification: Notification) -> None:
        if notification.method == "notifications/message" and self.on_log is not None:
            await self.on_log(
                from_wire(LoggingMessageNotificationParams, notification.params or {})
            )
        elif self.on_notification is not None:
            await self.on_notification(notification)


def _missing(capability: str, argument: str, method: str, needed_by: str | None) -> MCPError:
    if needed_by is None:
        return MethodNotFound(
            f"this client does not handle {method!r} (open_client was given no {argument})"
        )
    return MissingRequiredClientCapability(
        f"{needed_by} needs the {capability!r} client capability ({method}), but open_client"
        f" was given no {argument}; pass {argument}= to answer it",
        {"requiredCapabilities": {capability: {}}},
    )


def _supported(data: Any) -> list[str]:
    """``data.supported`` of an UnsupportedProtocolVersion error (empty when absent)."""
    supported = data.get("supported") if isinstance(data, dict) else None
    if not isinstance(supported, list):
        return []
    return [v for v in supported if isinstance(v, str)]


# -- the client -------------------------------------------------------------------------------


class Client:
    """A connected MCP client, in whichever era the server speaks. Create it with
    :func:`open_client`.

    ``era`` and ``protocol_version`` tell what was agreed; ``server_info``,
    ``server_capabilities`` and ``instructions`` come from ``initialize`` (legacy) or
    ``server/discover`` (2026-07-28).
    """

    def __init__(
        self,
        peer: Peer,
        router: _Router,
        handler: _ClientHandler,
        *,
        capabilities: ClientCapabilities,
        client_info: Implementation,
        legacy_version: str,
        max_input_rounds: int,
        listen_buffer: int,
        cancel_notify_timeout: float,
    ) -> None:
        self.peer = peer
        self.era = Era.LEGACY
        """The protocol era in use."""
        self.protocol_version: str = legacy_version
        """The revision in use (negotiated by ``initialize``, or the 2026 version)."""
        self.server_info = Implementation(name="unknown", version="")
        self.server_capabilities = ServerCapabilities()
        self.instructions: str | None = None
        self.discover_result: DiscoverResult | None = None
        """The ``server/discover`` result (2026-07-28 only)."""
        self.log_level: LoggingLevel | None = None
        """The level set with :meth:`set_logging_level`."""
        self.last_raw_tools: list[Tool] | None = None
        """The last ``tools/list`` page as the server sent it, before dropping tools whose
        ``x-mcp-header`` annotations are invalid (2026-07-28 over HTTP)."""
        self._router = router
        self._handler = handler
        self._capabilities = capabilities
        self._client_info = client_info
        self._legacy_version = legacy_version
        self._max_input_rounds = max_input_rounds
        self._listen_buffer = listen_buffer
        self._cancel_notify_timeout = cancel_notify_timeout
        self._listen_ids = itertools.count(1)
        self._modern_capabilities = _modern_capabilities(capabilities)
        self._client_info_wire = to_wire(client_info)

    @property
    def transport(self) -> Transport:
        """The transport this client runs on."""
        return self._router.inner

    def statistics(self) -> PeerStatistics:
        """A snapshot of the connection's counters."""
        return self.peer.statistics()

    # -- era selection ------------------------------------------------------------------------

    def _meta(self, version: str) -> dict[str, Any]:
        meta: dict[str, Any] = {
            META_PROTOCOL_VERSION: version,
            META_CLIENT_CAPABILITIES: dict(self._modern_capabilities),
            META_CLIENT_INFO: dict(self._client_info_wire),
        }
        if self.log_level is not None:
            meta[META_LOG_LEVEL] = self.log_level
        return meta

    def _with_meta(self, params: dict[str, Any] | None, version: str) -> dict[str, Any]:
        out = dict(params or {})
        given = out.get("_meta")
        out["_meta"] = {**(given if isinstance(given, dict) else {}), **self._meta(version)}
        return out

    async def _initialize(self, *, may_be_modern: bool) -> None:
        """The legacy handshake. With ``may_be_modern``, a server answering it with a 2026
        version error (one that was just slow to answer the probe) is discovered instead."""
        params = InitializeRequestParams(
            protocol_version=self._legacy_version,
            capabilities=self._capabilities,
            client_info=self._client_info,
        )
        try:
            raw = await self.peer.request("initialize", to_wire(params))
        except UnsupportedProtocolVersion as exc:
            mutual = [v for v in MODERN_VERSIONS if v in _supported(exc.data)]
            if not may_be_modern or not mutual:
                raise
            found = await self._discover(mutual[-1], answer_within=math.inf, pinned=True)
            assert found is not None
            self._adopt_modern(*found)
            return
        result = from_wire(InitializeResult, raw, path="result")
        if result.protocol_version not in LEGACY_VERSIONS:
            raise MCPError(
                f"the server answered with protocol version {result.protocol_version!r}, which"
                f" this client does not speak ({', '.join(LEGACY_VERSIONS)})"
            )
        await self.peer.notify("notifications/initialized")
        self.era = Era.LEGACY
        self.protocol_version = result.protocol_version
        self.server_info = result.server_info
        self.server_capabilities = result.capabilities
        self.instructions = result.instructions

    async def _discover(
        self, version: str, *, answer_within: float, pinned: bool
    ) -> tuple[str, DiscoverResult] | None:
        """``server/discover`` at ``version``: the version to use and the result, or None
        when the answer shows a legacy server (only when not ``pinned``, which raises)."""
        for attempt in range(2):
            try:
                with trio.fail_after(answer_within):
                    raw = await self.peer.request("server/discover", self._with_meta(None, version))
            except trio.TooSlowError:
                log.info(
                    "no answer to server/discover in %s s: taking a legacy server", answer_within
                )
                return None
            except ConnectionClosed:
                raise
            except (HeaderMismatch, MissingRequiredClientCapability):
                raise  # a 2026 server refusing the probe itself: falling back would be wrong
            except UnsupportedProtocolVersion as exc:
                supported = _supported(exc.data)
                mutual = [v for v in MODERN_VERSIONS if v in supported]
                if mutual and attempt == 0:
                    # Also when it lists the version it refused: one more try is cheap,
                    # and a server behind a rolling upgrade can answer differently.
                    version = mutual[-1]
                    continue
                speaks_legacy = any(v in LEGACY_VERSIONS for v in supported)
                if mutual or pinned or (supported and not speaks_legacy):
                    raise UnsupportedProtocolVersion(
                        f"the server supports {', '.join(supported) or 'no listed version'}"
                        f" and refused {version!r}; this client speaks"
                        f" {', '.join(SUPPORTED_VERSIONS)}",
                        exc.data,
                    ) from None
                return None
            except MCPError as exc:
                if pinned:
                    raise MCPError.from_error(
                        exc.code,
                        f"server/discover at {version} failed: {exc.message}; if the server only"
                        " speaks the legacy era, open the client with mode='auto' or 'legacy'",
                        exc.data,
                    ) from None
                return None
            try:
                result = from_wire(DiscoverResult, raw, path="result")
            except InvalidParams as exc:
                if pinned:
                    raise InvalidParams(
                        f"the server's answer to server/discover is not a discover result:"
                        f" {exc.message}"
                    ) from None
                return None
            mutual = [v for v in MODERN_VERSIONS if v in result.supported_versions]
            if version in mutual:
                return version, result
            if pinned or not mutual:
                if pinned:
                    raise UnsupportedProtocolVersion(
                        f"the server supports {', '.join(result.supported_versions)}, not"
                        f" {version!r}",
                        {"supported": result.supported_versions, "requested": version},
                    )
                return None
            return mutual[-1], result
        raise AssertionError("unreachable")  # pragma: no cover

    def _adopt_modern(self, version: str, result: DiscoverResult) -> None:
        self.era = Era.MODERN
        self.protocol_version = version
        self.discover_result = result
        self.server_capabilities = result.capabilities
        self.instructions = result.instructions
        info = (result.meta or {}).get(META_SERVER_INFO)
        try:
            self.server_info = from_wire(Implementation, info)
        except InvalidParams:
            # serverInfo is only a SHOULD in 2026.
            self.server_info = Implementation(name="unknown", version="")

    async def _connect(self, mode: str, *, probe_timeout: float, cache_key: str | None) -> None:
        if mode == "legacy":
            await self._initialize(may_be_modern=False)
            return
        if mode != "auto":
            found = await self._discover(mode, answer_within=math.inf, pinned=True)
            assert found is not None
            self._adopt_modern(*found)
            return
        known = _eras.get(cache_key) if cache_key is not None else None
        if known is not Era.LEGACY:
            patience = math.inf if known is not None else probe_timeout
            found = await self._discover(MODERN_VERSIONS[-1], answer_within=patience, pinned=False)
            if found is not None:
                self._adopt_modern(*found)
        if self.era is not Era.MODERN:
            await self._initialize(may_be_modern=True)
        if cache_key is not None:
            _eras.put(cache_key, self.era)

    # -- requests -----------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        on_progress: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        if self.era is Era.MODERN:
            params = self._with_meta(params, self.protocol_version)
        return await self.peer.request(method, params, on_progress=on_progress)

    async def _call(
        self,
        method: str,
        params: Any,
        result_type: type[T],
        *,
        on_progress: ProgressCallback | None = None,
        label: str | None = None,
    ) -> T:
        wire = params if isinstance(params, dict) or params is None else to_wire(params)
        if self.era is Era.LEGACY:
            result = await self.peer.request(method, wire, on_progress=on_progress)
            return from_wire(result_type, result, path="result")
        attempt = wire
        for rounds in itertools.count():
            raw = await self._request(method, attempt, on_progress=on_progress)
            if not self._needs_input(method, raw):
                return self._complete(method, result_type, raw)
            needed_by = label or method
            if rounds >= self._max_input_rounds:
                raise MCPError(
                    f"{needed_by} still needed input after {rounds} round(s) of answers; giving"
                    f" up (max_input_rounds={self._max_input_rounds})"
                )
            attempt = dict(wire or {})
            responses = await self._fulfil(raw, needed_by)
            if responses:
                attempt["inputResponses"] = responses
            state = raw.get("requestState")
            if isinstance(state, str):
                attempt["requestState"] = state  # echoed exactly, never inspected
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _needs_input(method: str, raw: dict[str, Any]) -> bool:
        if raw.get("resultType") != "input_required":
            return False
        if method not in MRTR_METHODS:
            raise MCPError(
                f"the server answered {method} with an input_required result, which only"
                f" {', '.join(sorted(MRTR_METHODS))} may return"
            )
        return True

    @staticmethod
    def _complete(method: str, result_type: type[T], raw: dict[str, Any]) -> T:
        kind = raw.get("resultType")
        if kind == "task":
            raise MCPError(
                f"the server answered {method} with a task, but this client did not declare"
                " the tasks extension"
            )
        if kind not in (None, "complete"):
            raise MCPError(f"the server answered {method} with an unknown resultType {kind!r}")
        result = result_from_wire(result_type, raw, path="result")
        assert not isinstance(result, InputRequiredResult | DetailedTask)
        return result

    async def _fulfil(self, raw: dict[str, Any], needed_by: str) -> dict[str, Any]:
        """Answer every input request of an ``input_required`` result, in order."""
        requests = raw.get("inputRequests")
        if requests is None:
            requests = {}
        if not isinstance(requests, dict):
            raise MCPError(f"the server answered {needed_by} with malformed inputRequests")
        if not requests and not isinstance(raw.get("requestState"), str):
            raise MCPError(
                f"the server answered {needed_by} with input_required but asked for nothing"
                " and sent no requestState"
            )
        responses: dict[str, Any] = {}
        for key, entry in requests.items():
            method = entry.get("method") if isinstance(entry, dict) else None
            if not isinstance(method, str):
                raise MCPError(f"input request {key!r} of {needed_by} names no method")
            params = entry.get("params")
            responses[key] = await self._handler.answer(
                method,
                params if isinstance(params, dict) else {},
                needed_by=f"{needed_by} (input request {key!r})",
            )
        return responses

    @staticmethod
    def _cursor(cursor: str | None) -> dict[str, Any] | None:
        return {"cursor": cursor} if cursor is not None else None

    async def _all(
        self,
        page: Callable[[str | None], Awaitable[Any]],
        items: Callable[[Any], Sequence[T]],
    ) -> AsyncIterator[T]:
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            result = await page(cursor)
            for item in items(result):
                yield item
            cursor = result.next_cursor
            if cursor is None:
                return
            if cursor in seen:
                raise MCPError(f"the server returned the cursor {cursor!r} twice; stopping")
            seen.add(cursor)

    # -- utilities ----------------------------------------------------------------------------

    async def ping(self) -> None:
        """Check the server answers (2026-07-28 has no ping: ``server/discover`` is sent)."""
        if self.era is Era.MODERN:
            await self._request("server/discover")
        else:
            await self.peer.request("ping")

    async def set_logging_level(self, level: LoggingLevel) -> None:
        """Ask for log messages of ``level`` and above: ``logging/setLevel`` (legacy), or
        ``_meta`` on every later request (2026-07-28)."""
        if self.era is Era.LEGACY:
            await self.peer.request("logging/setLevel", {"level": level})
        elif level not in LOGGING_LEVELS:
            # What a 2026 server would answer to every later request carrying it.
            raise InvalidParams(
                f"unknown log level {level!r}; use one of {', '.join(LOGGING_LEVELS)}"
            )
        self.log_level = level

    async def notify_roots_changed(self) -> None:
        """Tell the server the client's roots changed (2026-07-28 asks for roots per request,
        so there is nothing to send)."""
        if self.era is Era.LEGACY:
            await self.peer.notify("notifications/roots/list_changed")

    def listen(
        self,
        *,
        tools: bool = False,
        prompts: bool = False,
        resources: bool = False,
        resource_uris: Iterable[str] = (),
        task_ids: Iterable[str] = (),
    ) -> AbstractAsyncContextManager[Subscription]:
        """Receive change notifications while the ``async with`` block runs.

        ``tools``, ``prompts`` and ``resources`` ask for the list-changed notifications,
        ``resource_uris`` for ``notifications/resources/updated`` of those resources and
        ``task_ids`` for task status. In 2026-07-28 this is a ``subscriptions/listen``
        stream (ended when the block exits); in the legacy era the session's notifications
        are filtered, subscribing to ``resource_uris`` with ``resources/subscribe``. The
        :class:`Subscription` yielded tells what the server acknowledged; entering waits for
        that acknowledgement (bound it with ``trio.fail_after``). The notifications still
        reach ``on_notification`` as well.
        """
        if isinstance(resource_uris, str) or isinstance(task_ids, str):
            raise TypeError("resource_uris and task_ids take a list of strings, not a string")
        uris, tasks = list(resource_uris), list(task_ids)
        if not (tools or prompts or resources or uris or tasks):
            raise ValueError("listen() needs at least one kind of notification to ask for")
        wanted = SubscriptionFilter(
            tools_list_changed=True if tools else None,
            prompts_list_changed=True if prompts else None,
            resources_list_changed=True if resources else None,
            resource_subscriptions=uris or None,
            task_ids=tasks or None,
        )
        if self.era is Era.MODERN:
            return self._listen_modern(wanted)
        return self._listen_legacy(wanted)

    @asynccontextmanager
    async def _listen_modern(self, wanted: SubscriptionFilter) -> AsyncIterator[Subscription]:
        listen_id = f"mcptrio-listen-{next(self._listen_ids)}"
        listener = _Listener(self._listen_buffer, listen_id=listen_id)
        params = self._with_meta({"notifications": to_wire(wanted)}, self.protocol_version)
        self._router.add(listener)
        try:
            try:
                await self._router.send(Request(listen_id, "subscriptions/listen", params))
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise ConnectionClosed(f"could not send subscriptions/listen: {exc}") from None
            await listener.settled.wait()
            if listener.acknowledged is None and listener.error is not None:
                raise listener.error
            yield Subscription(listener)
        finally:
            self._router.remove(listener)
            if not listener.ended and not self.peer.closed:
                with trio.CancelScope(shield=True) as scope:
                    scope.relative_deadline = self._cancel_notify_timeout
                    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                        await self._router.send(
                            Notification(
                                "notifications/cancelled",
                                {"requestId": listen_id, "reason": "the client stopped listening"},
                            )
                        )
            listener.end()

    @asynccontextmanager
    async def _listen_legacy(self, wanted: SubscriptionFilter) -> AsyncIterator[Subscription]:
        uris = wanted.resource_subscriptions or []
        listener = _Listener(
            self._listen_buffer,
            matches=_legacy_matcher(
                bool(wanted.tools_list_changed),
                bool(wanted.prompts_list_changed),
                bool(wanted.resources_list_changed),
                uris,
                wanted.task_ids or [],
            ),
        )
        self._router.add(listener)
        subscribed: list[str] = []
        try:
            for uri in uris:
                try:
                    await self.peer.request("resources/subscribe", {"uri": uri})
                except MethodNotFound as exc:
                    log.info("the server does not take resources/subscribe: %s", exc)
                    break
                subscribed.append(uri)
            caps = self.server_capabilities
            listener.acknowledge(
                SubscriptionFilter(
                    tools_list_changed=_honours(wanted.tools_list_changed, caps.tools),
                    prompts_list_changed=_honours(wanted.prompts_list_changed, caps.prompts),
                    resources_list_changed=_honours(wanted.resources_list_changed, caps.resources),
                    resource_subscriptions=subscribed or None,
                    task_ids=wanted.task_ids,
                )
            )
            yield Subscription(listener)
        finally:
            self._router.remove(listener)
            listener.end()
            if subscribed and not self.peer.closed:
                with trio.CancelScope(shield=True) as scope:
                    scope.relative_deadline = self._cancel_notify_timeout
                    for uri in subscribed:
                        with contextlib.suppress(MCPError):
                            await self.peer.request("resources/unsubscribe", {"uri": uri})

    # -- tools --------------------------------------------------------------------------------

    async def list_tools(self, cursor: str | None = None) -> ListToolsResult:
        """One page of tools.

        In 2026-07-28 over HTTP, tools whose ``x-mcp-header`` annotations are invalid are
        left out (with a logged warning), as the spec requires; :attr:`last_raw_tools` keeps
        the page as sent.
        """
        result = await self._call("tools/list", self._cursor(cursor), ListToolsResult)
        self.last_raw_tools = list(result.tools)
        if self.era is Era.MODERN and isinstance(self.transport, HttpClientTransport):
            kept: list[Tool] = []
            for tool in result.tools:
                problem = x_mcp_header_problem(tool.input_schema)
                if problem is None:
                    kept.append(tool)
                    # The transport mirrors these arguments in headers on this tool's calls.
                    self.transport.set_tool_headers(
                        tool.name, x_mcp_header_paths(tool.input_schema)
                    )
                else:
                    self.transport.set_tool_headers(tool.name, {})
                    log.warning("left out tool %r: invalid x-mcp-header: %s", tool.name, problem)
            if len(kept) != len(result.tools):
                result = attrs.evolve(result, tools=kept)
        return result

    def iter_tools(self) -> AsyncIterator[Tool]:
        """Every tool, fetching pages as needed."""
        return self._all(self.list_tools, lambda r: r.tools)

    async def all_tools(self) -> list[Tool]:
        """Every tool, all pages."""
        return [tool async for tool in self.iter_tools()]

    async def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        on_progress: ProgressCallback | None = None,
        meta: dict[str, Any] | None = None,
    ) -> CallToolResult:
        """Call a tool. Failures inside the tool come back as ``is_error=True`` results;
        protocol errors (unknown tool, ...) raise :class:`MCPError`.

        In 2026-07-28, input the server asks for is gathered with the callbacks given to
        :func:`open_client` and the call retried (at most ``max_input_rounds`` times).
        """
        params: dict[str, Any] = {"name": name}
        if arguments is not None:
            params["arguments"] = dict(arguments)
        if meta is not None:
            params["_meta"] = meta
        label = f"tools/call {name!r}"
        try:
            return await self._call(
                "tools/call", params, CallToolResult, on_progress=on_progress, label=label
            )
        except HeaderMismatch:
            if self.era is not Era.MODERN or not isinstance(self.transport, HttpClientTransport):
                raise
            # The tool's x-mcp-header annotations may have changed: learn them and retry once.
            await self.all_tools()
            return await self._call(
                "tools/call", params, CallToolResult, on_progress=on_progress, label=label
            )

    # -- resources ----------------------------------------------------------------------------

    async def list_resources(self, cursor: str | None = None) -> ListResourcesResult:
        """One page of resources."""
        return await self._call("resources/list", self._cursor(cursor), ListResourcesResult)

    def iter_resources(self) -> AsyncIterator[Resource]:
        """Every resource, fetching pages as needed."""
        return self._all(self.list_resources, lambda r: r.resources)

    async def all_resources(self) -> list[Resource]:
        """Every resource, all pages."""
        return [r async for r in self.iter_resources()]

    async def list_resource_templates(
        self, cursor: str | None = None
    ) -> ListResourceTemplatesResult:
        """One page of resource templates."""
        return await self._call(
            "resources/templates/list", self._cursor(cursor), ListResourceTemplatesResult
        )

    def iter_resource_templates(self) -> AsyncIterator[ResourceTemplate]:
        """Every resource template, fetching pages as needed."""
        return self._all(self.list_resource_templates, lambda r: r.resource_templates)

    async def all_resource_templates(self) -> list[ResourceTemplate]:
        """Every resource template, all pages."""
        return [t async for t in self.iter_resource_templates()]

    async def read_resource(self, uri: str) -> ReadResourceResult:
        """Read a resource's contents (gathering input the server asks for, as
        :meth:`call_tool` does)."""
        return await self._call(
            "resources/read",
            ReadResourceRequestParams(uri=uri),
            ReadResourceResult,
            label=f"resources/read {uri!r}",
        )

    async def subscribe_resource(self, uri: str) -> None:
        """Ask for ``notifications/resources/updated`` when ``uri`` changes (legacy era;
        :meth:`listen` works in both)."""
        self._legacy_only("resources/subscribe", "listen(resource_uris=[...])")
        await self.peer.request("resources/subscribe", {"uri": uri})

    async def unsubscribe_resource(self, uri: str) -> None:
        """Stop updates for ``uri`` (legacy era)."""
        self._legacy_only("resources/unsubscribe", "listen(resource_uris=[...])")
        await self.peer.request("resources/unsubscribe", {"uri": uri})

    def _legacy_only(self, method: str, instead: str) -> None:
        if self.era is Era.MODERN:
            raise MethodNotFound(
                f"{method} does not exist in protocol {self.protocol_version}; use"
                f" client.{instead}, which works in both eras"
            )

    # -- prompts ------------------------------------------------------------------------------

    async def list_prompts(self, cursor: str | None = None) -> ListPromptsResult:
        """One page of prompts."""
        return await self._call("prompts/list", self._cursor(cursor), ListPromptsResult)

    def iter_prompts(self) -> AsyncIterator[Prompt]:
        """Every prompt, fetching pages as needed."""
        return self._all(self.list_prompts, lambda r: r.prompts)

    async def all_prompts(self) -> list[Prompt]:
        """Every prompt, all pages."""
        return [p async for p in self.iter_prompts()]

    async def get_prompt(
        self, name: str, arguments: Mapping[str, str] | None = None
    ) -> GetPromptResult:
        """Render a prompt (gathering input the server asks for, as :meth:`call_tool` does)."""
        params = GetPromptRequestParams(
            name=name, arguments=dict(arguments) if arguments is not None else None
        )
        return await self._call(
            "prompts/get", params, GetPromptResult, label=f"prompts/get {name!r}"
        )

    # -- completion ---------------------------------------------------------------------------

    async def complete(
        self,
        ref: PromptReference | ResourceTemplateReference,
        argument: str,
        value: str,
        *,
        context: Mapping[str, str] | None = None,
    ) -> Completion:
        """Suggestions for an argument of a prompt or resource template."""
        params = CompleteRequestParams(
            ref=ref,
            argument=CompletionArgument(name=argument, value=value),
            context=CompletionContext(arguments=dict(context)) if context is not None else None,
        )
        result = await self._call("completion/complete", params, CompleteResult)
        return result.completion


def _honours(wanted: bool | None, capability: Any) -> bool | None:
    """Whether a legacy server announces the list changes ``listen()`` asked for."""
    if not wanted or capability is None:
        return None
    return True if getattr(capability, "list_changed", None) else None


def _modern_capabilities(capabilities: ClientCapabilities) -> dict[str, Any]:
    """The capabilities in their 2026 shape: roots without ``listChanged``, no legacy tasks."""
    wire = to_wire(capabilities)
    wire.pop("tasks", None)
    roots = wire.get("roots")
    if isinstance(roots, dict):
        wire["roots"] = {k: v for k, v in roots.items() if k != "listChanged"}
    return wire


@asynccontextmanager
async def open_client(
    transport: Transport,
    *,
    mode: ClientMode = "legacy",
    client_info: Implementation | None = None,
    protocol_version: str = LATEST_LEGACY_VERSION,
    sampling_handler: SamplingHandler | None = None,
    elicitation_handler: ElicitationHandler | None = None,
    roots: RootsProvider | None = None,
    on_log: LogHandler | None = None,
    on_notification: NotificationHandler | None = None,
    capabilities: ClientCapabilities | None = None,
    probe_timeout: float = DEFAULT_PROBE_TIMEOUT,
    remember_era: bool = True,
    max_input_rounds: int = DEFAULT_MAX_INPUT_ROUNDS,
    listen_buffer: int = 256,
    max_in_flight: int = 256,
    cancel_notify_timeout: float = 1.0,
    interceptors: InterceptorChain | None = None,
) -> AsyncIterator[Client]:
    """Connect over ``transport``, agree on a protocol era, and yield a ready :class:`Client`.

    ``mode``: ``"legacy"`` (the default) runs the ``initialize`` handshake (asking for
    ``protocol_version``); ``"2026-07-28"`` sends ``server/discover`` at that revision and
    nothing else; ``"auto"`` probes with ``server/discover``, waiting at most
    ``probe_timeout`` seconds, and falls back to ``initialize`` on the same connection when
    the answer does not come from a 2026 server. With ``remember_era`` the outcome is
    remembered per server (HTTP origin, or stdio command line) so later ``"auto"``
    connections skip the probe; :func:`forget_eras` clears that memory.

    Capabilities follow from the handlers given (sampling, elicitation form+URL, roots)
    unless ``capabilities`` is passed; the handlers answer the server's requests (legacy)
    and its input requests (2026-07-28), of which ``max_input_rounds`` rounds are answered
    per call. A :meth:`Client.listen` buffers up to ``listen_buffer`` notifications. Bound
    the connection set-up with ``trio.fail_after`` around the ``async with``.
    ``interceptors`` run on every message the client sends and receives.
    """
    if mode not in ("auto", "legacy", *MODERN_VERSIONS):
        raise ValueError(
            f"mode must be 'auto', 'legacy' or one of {', '.join(MODERN_VERSIONS)}, not {mode!r}"
        )
    if protocol_version not in LEGACY_VERSIONS:
        raise ValueError(
            f"protocol_version must be one of {', '.join(LEGACY_VERSIONS)},"
            f" not {protocol_version!r}"
        )
    if not (probe_timeout > 0):
        raise ValueError("probe_timeout must be a positive number of seconds")
    for name, value, least in (
        ("max_input_rounds", max_input_rounds, 0),
        ("listen_buffer", listen_buffer, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be an integer of at least {least}, got {value!r}")
    if capabilities is None:
        capabilities = ClientCapabilities(
            sampling=SamplingCapability() if sampling_handler is not None else None,
            elicitation=(
                ElicitationCapability(form={}, url={}) if elicitation_handler is not None else None
            ),
            roots=RootsCapability(list_changed=True) if roots is not None else None,
        )
    if roots is not None and not callable(roots) and inspect.isawaitable(roots):
        raise TypeError("roots must be a sequence of Root or an async function")
    info = client_info or Implementation(name="mcptrio", version=_version())
    handler = _ClientHandler(sampling_handler, elicitation_handler, roots, on_log, on_notification)
    router = _Router(transport)
    async with open_peer(
        router,
        handler,
        max_in_flight=max_in_flight,
        cancel_notify_timeout=cancel_notify_timeout,
        name="client",
        stages=interceptors,
        side="client",
    ) as peer:
        client = Client(
            peer,
            router,
            handler,
            capabilities=capabilities,
            client_info=info,
            legacy_version=protocol_version,
            max_input_rounds=max_input_rounds,
            listen_buffer=listen_buffer,
            cancel_notify_timeout=cancel_notify_timeout,
        )
        cache_key = _era_key(transport) if remember_era else None
        await client._connect(mode, probe_timeout=probe_timeout, cache_key=cache_key)
        try:
            yield client
        finally:
            router.end_all(ConnectionClosed("the client closed the connection"))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mcptrio")
    except PackageNotFoundError:
        return "0"
