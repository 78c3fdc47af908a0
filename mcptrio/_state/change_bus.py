"""The change bus: list-changed, resource-updated and task-status events, fanned out to listeners.

A server publishes a :class:`ChangeEvent` whenever its tools, prompts or resources change, a
resource is updated or a task changes status; every open ``subscriptions/listen`` stream (and
every legacy session that asked for notifications) holds a :class:`Subscription` and turns the
events it reads into notifications.

:class:`LocalChangeBus` fans events out inside one process. ``RedisChangeBus`` (in
``mcptrio._state.redis_bus``) also carries them to the other server processes sharing a Redis
channel.

Publishers are never slowed by listeners: each subscription has a bounded buffer, and a full
buffer first coalesces duplicate events (these events are idempotent: two
``tools_list_changed`` mean the same as one) and only then drops its oldest event, counting it in
:attr:`Subscription.overflowed`.
"""

from __future__ import annotations

import secrets
from collections import Counter, deque
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Literal, Protocol, TypeAlias, get_args, runtime_checkable

import attrs
import trio

__all__ = [
    "CHANGE_KINDS",
    "ChangeBus",
    "ChangeBusStatistics",
    "ChangeEvent",
    "ChangeKind",
    "LocalChangeBus",
    "Subscription",
]

ChangeKind: TypeAlias = Literal[
    "tools_list_changed",
    "prompts_list_changed",
    "resources_list_changed",
    "resource_updated",
    "task_status",
]
"""What changed: one of the three lists, one resource, or one task."""

CHANGE_KINDS: frozenset[str] = frozenset(get_args(ChangeKind))
"""Every :data:`ChangeKind`, for validation."""

DEFAULT_BUFFER = 256
"""Events a subscription holds for a slow reader before it coalesces and drops."""


def _check_kind(_instance: object, _attribute: object, value: object) -> None:
    if value not in CHANGE_KINDS:
        raise ValueError(
            f"unknown change kind {value!r}; expected one of {', '.join(sorted(CHANGE_KINDS))}"
        )


@attrs.frozen
class ChangeEvent:
    """One change, as published on a :class:`ChangeBus`.

    Treat ``data`` as read-only: every subscriber receives the same object.
    """

    kind: ChangeKind = attrs.field(validator=_check_kind)
    """What changed."""

    uri: str | None = None
    """The updated resource (``resource_updated`` only, where it is required)."""

    task_id: str | None = None
    """The task whose status changed (``task_status`` only, where it is required)."""

    data: Mapping[str, Any] | None = None
    """A JSON object carried with the event, e.g. the task status payload."""

    origin: str = ""
    """Id of the bus that published the event; :meth:`ChangeBus.publish` sets it."""

    def __attrs_post_init__(self) -> None:
        if self.kind == "resource_updated" and self.uri is None:
            raise ValueError("a resource_updated change event needs the resource's uri")
        if self.kind == "task_status" and self.task_id is None:
            raise ValueError("a task_status change event needs the task_id")

    @property
    def key(self) -> tuple[str, str | None, str | None]:
        """What the event is about; a later event with the same key supersedes this one."""
        return (self.kind, self.uri, self.task_id)


@attrs.frozen(kw_only=True)
class ChangeBusStatistics:
    """Counters of a change bus."""

    subscribers: int
    """Subscriptions currently open on this bus."""

    published: int
    """Events published through this bus."""

    delivered: int
    """Events put into subscriber buffers (one per subscriber per event)."""

    coalesced: int
    """Buffered events replaced by a later event with the same key, because a buffer was full."""

    dropped: int
    """Events lost by slow subscribers (their buffers were full of distinct events)."""

    received: int = 0
    """Events received from other processes (Redis only)."""

    sent: int = 0
    """Events written to Redis (Redis only)."""

    unsent: int = 0
    """Events that reached only this process because Redis was unreachable (Redis only)."""

    invalid: int = 0
    """Malformed messages read from Redis and ignored (Redis only)."""

    redis_connected: bool = False
    """Whether the Redis listener is subscribed right now (always false for the local bus)."""

    reconnects: int = 0
    """Connection attempts the Redis listener made after its first one (Redis only)."""


class Subscription:
    """An async iterator over the events published after it was opened.

    Obtained from :meth:`ChangeBus.subscribe`; iteration ends when that context exits. Meant
    for one reader at a time.
    """

    def __init__(self, buffer: int) -> None:
        self._capacity = buffer
        self._events: deque[ChangeEvent] = deque()
        # How many buffered events have each key: tells in O(1) whether coalescing can help.
        self._keys: Counter[tuple[str, str | None, str | None]] = Counter()
        self._waiting = trio.lowlevel.ParkingLot()
        self._closed = False
        self.overflowed = 0
        """Events dropped because this subscriber read too slowly."""

    @property
    def pending(self) -> int:
        """Events buffered and not read yet."""
        return len(self._events)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> ChangeEvent:
        await trio.lowlevel.checkpoint_if_cancelled()
        while not self._events:
            if self._closed:
                raise StopAsyncIteration
            await self._waiting.park()
        event = self._events.popleft()
        self._forget(event)
        await trio.lowlevel.cancel_shielded_checkpoint()
        return event

    def _offer(self, event: ChangeEvent) -> tuple[int, int]:
        """Buffer ``event`` without blocking; return (events coalesced, events dropped)."""
        coalesced = dropped = 0
        key = event.key
        if len(self._events) >= self._capacity:
            if key in self._keys or len(self._keys) < len(self._events):
                coalesced = self._coalesce(key)
            while len(self._events) >= self._capacity:
                self._forget(self._events.popleft())
                dropped += 1
            self.overflowed += dropped
        self._events.append(event)
        self._keys[key] += 1
        self._waiting.unpark_all()
        return coalesced, dropped

    def _coalesce(self, incoming: tuple[str, str | None, str | None]) -> int:
        """Keep only the latest buffered event per key, the incoming event counting as latest."""
        seen = {incoming}
        kept: deque[ChangeEvent] = deque()
        for event in reversed(self._events):
            if event.key not in seen:
                seen.add(event.key)
                kept.appendleft(event)
        removed = len(self._events) - len(kept)
        self._events = kept
        self._keys = Counter(event.key for event in kept)
        return removed

    def _forget(self, event: ChangeEvent) -> None:
        key = event.key
        self._keys[key] -= 1
        if not self._keys[key]:
            del self._keys[key]

    def _close(self) -> None:
        self._closed = True
        self._events.clear()
        self._keys.clear()
        self._waiting.unpark_all()


class _Fanout:
    """The subscriber set of one bus, with the delivery counters."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self.delivered = 0
        self.coalesced = 0
        self.dropped = 0

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    def deliver(self, event: ChangeEvent) -> None:
        for subscription in self._subscriptions:
            coalesced, dropped = subscription._offer(event)
            self.delivered += 1
            self.coalesced += coalesced
            self.dropped += dropped

    def subscribe(self, buffer: int) -> AbstractAsyncContextManager[Subscription]:
        if isinstance(buffer, bool) or not isinstance(buffer, int) or buffer < 1:
            raise ValueError(f"a subscription buffer holds at least 1 event, not {buffer!r}")
        return self._open(buffer)

    @asynccontextmanager
    async def _open(self, buffer: int) -> AsyncIterator[Subscription]:
        subscription = Subscription(buffer)
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)
            subscription._close()


@runtime_checkable
class ChangeBus(Protocol):
    """Where servers publish changes and listeners subscribe to them."""

    async def publish(self, event: ChangeEvent) -> None:
        """Deliver ``event`` (with ``origin`` set to this bus) to every current subscriber.

        Never waits for subscribers: slow ones lose their oldest events instead.
        """
        ...

    def subscribe(
        self, *, buffer: int = DEFAULT_BUFFER
    ) -> AbstractAsyncContextManager[Subscription]:
        """Open a subscription holding up to ``buffer`` unread events, until the context exits."""
        ...

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the bus's background work until cancelled; start it in the caller's nursery."""
        ...

    def statistics(self) -> ChangeBusStatistics:
        """Return the bus's counters."""
        ...


class LocalChangeBus:
    """A :class:`ChangeBus` that fans events out inside this process only."""

    def __init__(self) -> None:
        self.id = secrets.token_hex(8)
        """This bus's id, set as :attr:`ChangeEvent.origin` on the events it publishes."""
        self._fanout = _Fanout()
        self._published = 0

    async def publish(self, event: ChangeEvent) -> None:
        """Deliver ``event`` to every current subscriber of this bus."""
        await trio.lowlevel.checkpoint_if_cancelled()
        event = attrs.evolve(event, origin=self.id)
        self._published += 1
        self._fanout.deliver(event)
        await trio.lowlevel.cancel_shielded_checkpoint()

    def subscribe(
        self, *, buffer: int = DEFAULT_BUFFER
    ) -> AbstractAsyncContextManager[Subscription]:
        """Open a subscription holding up to ``buffer`` unread events."""
        return self._fanout.subscribe(buffer)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Nothing to do in the background: report started and wait to be cancelled."""
        task_status.started()
        await trio.sleep_forever()

    def statistics(self) -> ChangeBusStatistics:
        """Return the bus's counters."""
        return ChangeBusStatistics(
            subscribers=self._fanout.subscribers,
            published=self._published,
            delivered=self._fanout.delivered,
            coalesced=self._fanout.coalesced,
            dropped=self._fanout.dropped,
        )
