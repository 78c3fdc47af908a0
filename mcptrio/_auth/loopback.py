"""The interactive half of the authorization code grant: open the user's browser, and catch
the redirect back on a loopback HTTP listener (RFC 8252 section 7.3)."""

from __future__ import annotations

import logging
import webbrowser
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial

import h11
import trio

from .oauth_client import AuthorizationResponse

log = logging.getLogger("mcptrio.oauth")

_MAX_REQUEST_BYTES = 16 * 1024
_PAGE = (
    b"<!doctype html><meta charset=utf-8><title>Authorized</title>"
    b"<p>Authorization finished. You can close this window.</p>"
)

BrowserOpener = Callable[[str], Awaitable[None]]


async def open_in_browser(url: str) -> None:
    """Open ``url`` in the user's web browser, or print it when there is none."""
    opened = await trio.to_thread.run_sync(webbrowser.open, url)
    if not opened:
        print(f"Open this URL in a browser to authorize: {url}", flush=True)


class LoopbackAuthorization:
    """A redirect/callback pair for people: a browser for the login, a loopback listener
    for the way back. Create it with :func:`open_loopback_authorization`.
    """

    def __init__(self, redirect_uri: str, path: str, opener: BrowserOpener) -> None:
        self.redirect_uri = redirect_uri
        """The URI to register and to give :class:`AuthorizationCodeGrant`."""
        self._path = path
        self._opener = opener
        self._send, self._receive = trio.open_memory_channel[AuthorizationResponse](1)

    async def redirect(self, authorization_url: str) -> None:
        """Send the user to ``authorization_url``."""
        await self._opener(authorization_url)

    async def callback(self) -> AuthorizationResponse:
        """Wait for the browser to come back to :attr:`redirect_uri`; bound it with
        ``trio.fail_after`` (a user may never finish)."""
        return await self._receive.receive()

    async def _serve(self, stream: trio.SocketStream) -> None:
        try:
            await self._serve_one(stream)
        except (trio.BrokenResourceError, h11.RemoteProtocolError) as exc:
            # Whatever else knocks on a local port must not end the wait for the redirect.
            log.debug("a loopback connection failed: %s", exc)

    async def _serve_one(self, stream: trio.SocketStream) -> None:
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_REQUEST_BYTES)
        async with stream:
            request: h11.Request | None = None
            while request is None:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    data = await stream.receive_some(_MAX_REQUEST_BYTES)
                    if not data:
                        return
                    connection.receive_data(data)
                    continue
                if isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                    return
            target = request.target.decode("ascii", "replace")
            path, _, _ = target.partition("?")
            if request.method != b"GET" or path != self._path:
                await self._answer(stream, connection, 404, b"not found")
                return
            answer = AuthorizationResponse.from_url(f"http://loopback{target}")
            try:
                self._send.send_nowait(answer)
            except trio.WouldBlock:
                log.warning("ignored a second authorization redirect while one was waiting")
            await self._answer(stream, connection, 200, _PAGE)

    @staticmethod
    async def _answer(
        stream: trio.SocketStream, connection: h11.Connection, status: int, body: bytes
    ) -> None:
        headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
            ("Cache-Control", "no-store"),
        ]
        data = connection.send(h11.Response(status_code=status, headers=headers))
        data = (data or b"") + (connection.send(h11.Data(data=body)) or b"")
        data += connection.send(h11.EndOfMessage()) or b""
        await stream.send_all(data)


@asynccontextmanager
async def open_loopback_authorization(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    path: str = "/callback",
    opener: BrowserOpener = open_in_browser,
) -> AsyncIterator[LoopbackAuthorization]:
    """Listen on ``http://HOST:PORT/PATH`` for the authorization redirect while the block runs.

    Yields a :class:`LoopbackAuthorization`: give its ``redirect`` and ``callback`` to
    :class:`AuthorizationCodeGrant` and its ``redirect_uri`` to the grant and the client
    metadata. ``port=0`` picks a free port (loopback redirect URIs may use any port);
    ``opener`` shows the authorization URL (default: the system web browser).
    """
    if not path.startswith("/"):
        raise ValueError(f"path must start with '/', not {path!r}")
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    loopback = LoopbackAuthorization(f"http://{shown}:{bound}{path}", path, opener)
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(trio.serve_listeners, loopback._serve, listeners))
        try:
            yield loopback
        finally:
            nursery.cancel_scope.cancel()
