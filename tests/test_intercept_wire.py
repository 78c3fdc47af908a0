"""What a recording interceptor sees is exactly what goes over the wire, both ways, in order."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from mcptrio import (
    HttpConfig,
    HttpServerInfo,
    InterceptorChain,
    Server,
    current_request,
    open_client,
    open_http_transport,
    serve_connection,
    serve_http,
)
from mcptrio._protocol.jsonrpc import Message, Request, RequestId
from mcptrio._runtime.transport import DirectReceiver, Incoming, Transport, TransportBase
from mcptrio.testing import RecordingInterceptor, memory_transport_pair

Wire = list[tuple[str, dict[str, Any]]]


class _TappedReceiver:
    def __init__(self, inner: DirectReceiver, wire: Wire) -> None:
        self._inner = inner
        self._wire = wire

    def take_now(self, message: Message) -> bool:
        taken = self._inner.take_now(message)
        if taken:
            self._wire.append(("in", message.to_dict()))
        return taken

    async def serve_now(self, request: Request) -> bool:
        # Recorded first: the answer is sent while it is being served.
        self._wire.append(("in", request.to_dict()))
        served = await self._inner.serve_now(request)
        if not served:
            self._wire.pop()
        return served


class WireTap(TransportBase):
    """A transport that records every message crossing it, as the wire carries it."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.wire: Wire = []

    async def send(self, message: Message, *, related_request_id: RequestId | None = None) -> None:
        self.wire.append(("out", message.to_dict()))
        await self.inner.send(message, related_request_id=related_request_id)

    async def send_batch(self, messages: list[Message]) -> None:
        self.wire += [("out", m.to_dict()) for m in messages]
        await self.inner.send_batch(messages)

    async def call(self, request: Request, *, related_request_id: RequestId | None = None) -> None:
        self.wire.append(("out", request.to_dict()))
        await self.inner.call(request, related_request_id=related_request_id)

    async def receive(self) -> Incoming:
        incoming = await self.inner.receive()
        for message in incoming if isinstance(incoming, list) else [incoming]:
            assert not isinstance(message, Exception)
            self.wire.append(("in", message.to_dict()))
        return incoming

    def accept_direct(self, receiver: DirectReceiver | None) -> None:
        self.inner.accept_direct(
            _TappedReceiver(receiver, self.wire) if receiver is not None else None
        )

    def abandon_request(self, request_id: RequestId) -> None:
        self.inner.abandon_request(request_id)

    async def aclose(self) -> None:
        await self.inner.aclose()


def seen_as_wire(recorder: RecordingInterceptor, incoming: str) -> Wire:
    return [
        ("in" if c.direction == incoming else "out", dict(c.message)) for c in recorder.contexts
    ]


@pytest.mark.parametrize("serialize", [True, False], ids=["serialized", "objects"])
@pytest.mark.parametrize("direct", [True, False], ids=["direct", "queued"])
async def test_recorders_see_exactly_the_wire_on_both_sides(serialize: bool, direct: bool) -> None:
    server_recorder, client_recorder = RecordingInterceptor(), RecordingInterceptor()
    server = Server("wire", interceptors=InterceptorChain([("recorder", server_recorder)]))

    @server.tool()
    async def chatty(text: str) -> str:
        """Log, then answer."""
        await current_request().warning(text)
        return text

    client_end, server_end = memory_transport_pair(serialize=serialize, direct=direct)
    server_tap, client_tap = WireTap(server_end), WireTap(client_end)
    logs: list[Any] = []

    async def on_log(params: Any) -> None:
        logs.append(params.data)

    async with trio.open_nursery() as nursery:
        await nursery.start(serve_connection, server, server_tap)
        async with open_client(
            client_tap,
            on_log=on_log,
            interceptors=InterceptorChain([("recorder", client_recorder)]),
        ) as client:
            await client.list_tools()
            await client.call_tool("chatty", {"text": "hello"})
            await client.ping()
        nursery.cancel_scope.cancel()
    assert logs == ["hello"]
    assert len(server_tap.wire) >= 8
    assert seen_as_wire(server_recorder, "client->server") == server_tap.wire
    assert seen_as_wire(client_recorder, "server->client") == client_tap.wire


@pytest.mark.parametrize(
    ("era", "json_response"),
    [("legacy", True), ("legacy", False), ("2026-07-28", False)],
    ids=["legacy-json", "legacy-sse", "2026"],
)
async def test_recorders_see_exactly_the_wire_over_http(era: str, json_response: bool) -> None:
    server_recorder, client_recorder = RecordingInterceptor(), RecordingInterceptor()
    server = Server("wire", interceptors=InterceptorChain([("recorder", server_recorder)]))

    @server.tool()
    async def chatty(text: str) -> str:
        """Log, then answer."""
        await current_request().warning(text)
        return text

    async with trio.open_nursery() as nursery:
        info: HttpServerInfo = await nursery.start(
            serve_http, server, HttpConfig(port=0, json_response=json_response)
        )
        async with open_http_transport(info.url) as transport:
            tap = WireTap(transport)
            async with open_client(
                tap, mode=era, interceptors=InterceptorChain([("recorder", client_recorder)])
            ) as client:
                await client.set_logging_level("info")
                await client.list_tools()
                await client.call_tool("chatty", {"text": "hello"})
                await client.ping()
        nursery.cancel_scope.cancel()
    # The client's side, captured at its transport.
    assert seen_as_wire(client_recorder, "server->client") == tap.wire
    # The server received what the client put on the wire and sent what it read.
    mirrored = [("out" if way == "in" else "in", message) for way, message in tap.wire]
    assert seen_as_wire(server_recorder, "client->server") == mirrored
