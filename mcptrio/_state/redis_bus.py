"""The change bus across processes: events travel between server processes over Redis pub/sub.

Each process publishes on one channel and listens to it; a process delivers its own events to its
own subscribers directly (so they arrive even while Redis is down) and skips their echo from
Redis by the event's ``origin``. Pub/sub is fire-and-forget: while a listener is disconnected,
the events other processes publish do not reach it.

Needs the ``redis`` extra (coredis), imported only when a :class:`RedisChangeBus` is created.
"""

from __future__ import annotations

import importlib
import logging
import math
import random
import secrets
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import attrs
import orjson
import trio

from .change_bus import (
    CHANGE_KINDS,
    DEFAULT_BUFFER,
    ChangeBusStatistics,
    ChangeEvent,
    ChangeKind,
    Subscription,
    _Fanout,
)

if TYPE_CHECKING:
    import coredis

__all__ = ["RedisChangeBus", "decode_change_event", "encode_change_event"]

log = logging.getLogger("mcptrio.change_bus")

WIRE_VERSION = 1
"""The ``v`` field of the messages written here; messages with another ``v`` are ignored."""

_SUBSCRIBE_TIMEOUT = 5.0
"""Longest wait for Redis to connect and confirm the subscription before counting a failure."""

_SEND_TIMEOUT = 2.0
"""Longest wait for one PUBLISH; past it the event counts as unsent."""

_FIRST_BACKOFF = 0.05
_MAX_BACKOFF = 5.0
_WARNING_INTERVAL = 30.0
"""At most one warning per topic per this many seconds, so an outage does not flood the log."""


def encode_change_event(event: ChangeEvent) -> bytes:
    """Encode ``event`` as the compact JSON message published on Redis.

    Raises :class:`TypeError` when ``event.data`` is not JSON-serialisable.
    """
    message: dict[str, Any] = {"v": WIRE_VERSION, "kind": event.kind, "origin": event.origin}
    if event.uri is not None:
        message["uri"] = event.uri
    if event.task_id is not None:
        message["task_id"] = event.task_id
    if event.data is not None:
        message["data"] = event.data
    try:
        return orjson.dumps(message)
    except TypeError as exc:
        raise TypeError(
            f"cannot publish a {event.kind} change event: its data is not JSON-serialisable ({exc})"
        ) from exc


def decode_change_event(raw: bytes | str) -> ChangeEvent:
    """Decode a message from :func:`encode_change_event`; raise :class:`ValueError` if malformed.

    Fields this version does not know are ignored, so later versions can add some.
    """
    message = orjson.loads(raw)
    if not isinstance(message, dict):
        raise ValueError("a change message must be a JSON object")
    version = message.get("v")
    if version != WIRE_VERSION or isinstance(version, bool):
        raise ValueError(
            f"unsupported change message version {version!r} (expected {WIRE_VERSION})"
        )
    kind = message.get("kind")
    if kind not in CHANGE_KINDS:
        raise ValueError(f"unknown change kind {kind!r}")
    origin = message.get("origin")
    if not isinstance(origin, str):
        raise ValueError("a change message needs a string origin")
    uri, task_id, data = message.get("uri"), message.get("task_id"), message.get("data")
    if not isinstance(uri, str | None) or not isinstance(task_id, str | None):
        raise ValueError("uri and task_id must be strings when present")
    if not isinstance(data, dict | None):
        raise ValueError("data must be a JSON object when present")
    return ChangeEvent(cast(ChangeKind, kind), uri=uri, task_id=task_id, data=data, origin=origin)


def _import_coredis() -> ModuleType:
    try:
        import coredis
    except ImportError as exc:
        raise ImportError(
            "RedisChangeBus needs the coredis package: install mcptrio with the 'redis' extra "
            "(pip install 'mcptrio[redis]')"
        ) from exc
    return coredis


def _first_error(group: BaseExceptionGroup[Any]) -> BaseException:
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


class _RateLimitedLog:
    """Logs a warning per topic at most once per interval and counts the ones it held back."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._last: dict[str, float] = {}
        self._held_back: dict[str, int] = {}

    def warning(self, topic: str, message: str) -> None:
        now = trio.current_time()
        last = self._last.get(topic)
        if last is not None and now - last < self._interval:
            self._held_back[topic] = self._held_back.get(topic, 0) + 1
            return
        self._last[topic] = now
        if held_back := self._held_back.pop(topic, 0):
            message += f" ({held_back} similar warnings held back)"
        log.warning("%s", message)


class RedisChangeBus:
    """A change bus shared by every process publishing and listening on one Redis channel.

    Run :meth:`serve` in a nursery before publishing (``await nursery.start(bus.serve)``): it
    holds the Redis connection and the listener. Without ``client`` the bus connects to ``url``
    itself; a ``client`` given here (a ``coredis.Redis``) must already be entered and stay
    entered while :meth:`serve` runs, and is not closed by the bus.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379",
        *,
        channel: str = "mcptrio:changes",
        client: coredis.Redis[Any] | None = None,
    ) -> None:
        self._coredis = _import_coredis()
        if client is None and urlsplit(url).scheme not in {"redis", "rediss", "unix"}:
            raise ValueError(f"not a Redis URL: {url!r} (expected redis://, rediss:// or unix://)")
        if not channel:
            raise ValueError("the Redis channel name must not be empty")
        self.url = url
        """Where the bus connects when no client was given."""
        self.channel = channel
        """The pub/sub channel every cooperating process uses."""
        self.id = secrets.token_hex(8)
        """This bus's id, set as :attr:`ChangeEvent.origin` on the events it publishes."""
        self._given_client = client
        self._client: coredis.Redis[Any] | None = None
        anyio = importlib.import_module("anyio")  # coredis runs on it
        # What a lost or unreachable Redis looks like; anything else is a bug and propagates.
        # anyio's stream errors surface when a connection closes under a pending command.
        self._errors: tuple[type[BaseException], ...] = (
            self._coredis.exceptions.RedisError,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            OSError,
            TimeoutError,
        )
        self._fanout = _Fanout()
        self._send_lock = trio.Lock()
        self._log = _RateLimitedLog(_WARNING_INTERVAL)
        self._serving = False
        self._connected = False
        # Woken whenever the connection state or the reconnect count changes.
        self._state_changed = trio.lowlevel.ParkingLot()
        self._published = self._received = self._sent = self._unsent = self._invalid = 0
        self._reconnects = 0

    async def publish(self, event: ChangeEvent) -> None:
        """Deliver ``event`` to this process's subscribers, then to the other processes.

        Returns once Redis accepted the event, or at once when Redis is unreachable (the event
        then reaches only this process, a warning is logged and ``unsent`` counts it). Raises
        :class:`RuntimeError` unless :meth:`serve` is running, :class:`TypeError` when
        ``event.data`` is not JSON-serialisable.
        """
        client = self._client
        if client is None:
            raise RuntimeError(
                "RedisChangeBus.publish() needs serve() running: "
                "start it first with `await nursery.start(bus.serve)`"
            )
        await trio.lowlevel.checkpoint_if_cancelled()
        event = attrs.evolve(event, origin=self.id)
        payload = encode_change_event(event)
        self._published += 1
        self._fanout.deliver(event)
        if not self._connected:
            self._unsent += 1
            self._log.warning(
                "unreachable",
                f"Redis at {self._where()} is unreachable: change events reach only this "
                "process's subscribers until it is back",
            )
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        # One PUBLISH at a time keeps this process's events in publish order on the channel.
        async with self._send_lock:
            await self._send(client, payload)

    async def _send(self, client: coredis.Redis[Any], payload: bytes) -> None:
        failure: BaseException | None = None
        try:
            with trio.move_on_after(_SEND_TIMEOUT) as scope:
                await client.publish(self.channel, payload)
        except* self._errors as group:
            failure = _first_error(group)
        if failure is None and scope.cancelled_caught:
            failure = TimeoutError(f"no reply within {_SEND_TIMEOUT:g} s")
        if failure is None:
            self._sent += 1
            return
        self._unsent += 1
        self._log.warning(
            "publish",
            f"could not publish a change event on Redis channel {self.channel!r} at "
            f"{self._where()} ({failure}); it reached only this process's subscribers",
        )

    def subscribe(
        self, *, buffer: int = DEFAULT_BUFFER
    ) -> AbstractAsyncContextManager[Subscription]:
        """Open a subscription to the events of every process on the channel, this one included."""
        return self._fanout.subscribe(buffer)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the Redis connection and listen to the channel until cancelled.

        Reports started after the first attempt to subscribe, whether it succeeded or not: a
        bus whose Redis is down still serves its own process, and keeps reconnecting (with
        backoff up to a few seconds) in the background.
        """
        if self._serving:
            raise RuntimeError("this RedisChangeBus is already serving")
        self._serving = True
        try:
            async with AsyncExitStack() as stack:
                client = self._given_client
                if client is None:
                    client = await stack.enter_async_context(
                        self._coredis.Redis.from_url(
                            self.url, retry_policy=self._coredis.retry.NoRetryPolicy()
                        )
                    )
                async with trio.open_nursery() as nursery:
                    await nursery.start(self._listen, client)
                    self._client = client
                    task_status.started()
        finally:
            self._client = None
            self._serving = False
            self._set_connected(False)

    async def _listen(
        self,
        client: coredis.Redis[Any],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        started = False
        subscribed = False
        backoff = _FIRST_BACKOFF

        def on_subscribed() -> None:
            nonlocal started, subscribed
            subscribed = True
            if self._reconnects:
                log.info("resubscribed to Redis channel %r at %s", self.channel, self._where())
            if not started:
                started = True
                task_status.started()

        while True:
            failure: BaseException | None = None
            subscribed = False
            try:
                await self._listen_once(client, on_subscribed)
            except* self._errors as group:
                failure = _first_error(group)
            self._set_connected(False)
            if not started:
                started = True
                task_status.started()
            if subscribed:
                backoff = _FIRST_BACKOFF
            delay = backoff * random.uniform(0.5, 1.0)
            backoff = min(backoff * 2, _MAX_BACKOFF)
            reason = f"({failure})" if failure is not None else "(subscription ended)"
            self._log.warning(
                "listen",
                f"{'lost' if subscribed else 'cannot reach'} Redis at {self._where()} {reason}; "
                f"retrying in {delay:.2f} s; events from other processes are missed meanwhile",
            )
            await trio.sleep(delay)
            self._reconnects += 1
            self._state_changed.unpark_all()

    async def _listen_once(
        self, client: coredis.Redis[Any], on_subscribed: Callable[[], None]
    ) -> None:
        with trio.CancelScope(deadline=trio.current_time() + _SUBSCRIBE_TIMEOUT) as scope:
            async with client.pubsub(
                channels=[self.channel], ignore_subscribe_messages=True, retry_policy=None
            ) as pubsub:
                scope.deadline = math.inf
                self._set_connected(True)
                on_subscribed()
                async for message in pubsub:
                    data = message["data"]
                    if message["type"] == "message" and isinstance(data, bytes | str):
                        self._receive(data)
        if scope.cancelled_caught:
            raise TimeoutError(f"no subscription confirmed within {_SUBSCRIBE_TIMEOUT:g} s")

    def _set_connected(self, connected: bool) -> None:
        self._connected = connected
        self._state_changed.unpark_all()

    async def wait_connected(self) -> None:
        """Return once the listener is subscribed to the channel (at once if it is already).

        Does not time out: wrap it in ``trio.fail_after`` or ``trio.move_on_after``.
        """
        if self._connected:
            await trio.lowlevel.checkpoint()
        while not self._connected:
            await self._state_changed.park()

    def _receive(self, raw: bytes | str) -> None:
        try:
            event = decode_change_event(raw)
        except ValueError as exc:
            self._invalid += 1
            self._log.warning(
                "invalid", f"ignored a malformed message on Redis channel {self.channel!r}: {exc}"
            )
            return
        if event.origin == self.id:
            return  # publish() already delivered it to this process's subscribers
        self._received += 1
        self._fanout.deliver(event)

    def _where(self) -> str:
        if self._given_client is not None:
            return "the given client"
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        # Never log the password.
        netloc = parts.netloc.rsplit("@", 1)[1]
        user = f"{parts.username}:***@" if parts.username else ":***@"
        return parts._replace(netloc=user + netloc).geturl()

    def statistics(self) -> ChangeBusStatistics:
        """Return the bus's counters, with the Redis connection state."""
        return ChangeBusStatistics(
            subscribers=self._fanout.subscribers,
            published=self._published,
            delivered=self._fanout.delivered,
            coalesced=self._fanout.coalesced,
            dropped=self._fanout.dropped,
            received=self._received,
            sent=self._sent,
            unsent=self._unsent,
            invalid=self._invalid,
            redis_connected=self._connected,
            reconnects=self._reconnects,
        )
