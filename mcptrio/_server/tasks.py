"""The tasks extension (``io.modelcontextprotocol/tasks``, 2026-07-28): long-running tool calls.

``server.enable_tasks()`` turns it on. A tool registered with ``task="optional"`` or
``task="required"`` then answers a 2026-07-28 ``tools/call`` with a task (``resultType:
"task"``) when that request declares the extension in its client capabilities; the client polls
``tasks/get``, answers the task's questions with ``tasks/update`` and may ``tasks/cancel`` it.
Without the extension an optional tool answers inline and a required one fails with -32021.
Legacy-era calls run inline: the extension belongs to 2026-07-28.

A task's work runs in the manager's nursery (started by ``server.serve_background()``), so it
outlives the request that created it. Input the tool asks for inside a task (``ctx.elicit()``
and the other helpers, or a returned ``InputRequiredResult``) parks the task in
``input_required``; once every question is answered the tool runs again with the answers, as
for a multi-round request. A tool registered with ``defer_task=True`` instead starts on the
request itself: its questions go out as ordinary ``input_required`` rounds, and the task
begins when it calls :func:`begin_task`.

Every change of a task is published on the server's change bus as a ``task_status`` event,
which ``subscriptions/listen`` with ``taskIds`` turns into ``notifications/tasks``
(:func:`listen_task_ids` and :func:`task_notification`).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import secrets
import time
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

import attrs
import trio

from .._protocol.errors import (
    InternalError,
    InvalidParams,
    MCPError,
    MethodNotFound,
    MissingRequiredClientCapability,
)
from .._protocol.jsonrpc import Request, RequestId
from .._protocol.request_state import RequestStateError
from .._protocol.versions import Era
from .._state.change_bus import ChangeEvent
from .._state.task_store import MemoryTaskStore, TaskRecord, TaskStore
from ..types import TASKS_EXTENSION, ClientCapabilities
from .context import current_request
from .dispatch import CallRunner, dispatch

if TYPE_CHECKING:
    from .._runtime.peer import ProgressCallback
    from .context import Outbound
    from .dispatch import CallScope
    from .server import Server

__all__ = [
    "TASK_NOTIFICATION",
    "TaskManager",
    "TaskSupport",
    "begin_task",
    "declares_tasks",
    "enable_tasks",
    "listen_task_ids",
    "task_notification",
]

log = logging.getLogger("mcptrio.tasks")

TaskSupport: TypeAlias = Literal["optional", "required"]
"""How a tool runs with the extension: ``optional`` (a task when the client declares the
extension, inline otherwise) or ``required`` (a task; -32021 without the extension)."""

TASK_NOTIFICATION: Final = "notifications/tasks"
"""The notification carrying a task's new state on a ``subscriptions/listen`` stream."""

_MODERN = frozenset({Era.MODERN})
_FINAL_WRITE_GRACE = 5.0
"""Seconds a task's last store write may take while the server shuts down."""
_RETRY_KEYS = ("inputResponses", "requestState")

# The manager whose own work is running here, so its tools/call dispatch runs the tool.
# It names the manager, not just "yes": an in-process call to another server may run in
# this same task and context (see _transports/memory.py), and must still get tasks from its server.
_executing: contextvars.ContextVar[TaskManager | None] = contextvars.ContextVar(
    "mcptrio_task_executing", default=None
)
_current_call: contextvars.ContextVar[_Call | None] = contextvars.ContextVar(
    "mcptrio_task_call", default=None
)


def declares_tasks(capabilities: ClientCapabilities) -> bool:
    """True when a request's client capabilities declare the tasks extension."""
    extensions = capabilities.extensions
    return isinstance(extensions, dict) and TASKS_EXTENSION in extensions


def _missing_extension(what: str) -> MissingRequiredClientCapability:
    return MissingRequiredClientCapability(
        f"{what} needs the {TASKS_EXTENSION!r} extension: declare it under"
        " extensions in the request's client capabilities",
        {"requiredCapabilities": {"extensions": {TASKS_EXTENSION: {}}}},
    )


class _TaskOutbound:
    """The request's outbound until its task begins; afterwards messages have nowhere to go
    (the request is answered, and the extension has no progress or logging for tasks)."""

    def __init__(self, inner: Outbound | None) -> None:
        self.inner = inner

    async def notify(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        related_request_id: RequestId | None = None,
    ) -> None:
        if self.inner is None:
            await trio.lowlevel.checkpoint()
            return
        await self.inner.notify(method, params, related_request_id=related_request_id)

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        related_request_id: RequestId | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        if self.inner is None:
            raise MCPError(
                f"a task cannot send {method!r} to the client; ask with the request context's"
                " helpers (ctx.elicit() and the rest) and the task waits in input_required"
            )
        return await self.inner.request(
            method, params, related_request_id=related_request_id, on_progress=on_progress
        )


@attrs.define(eq=False)
class _Call:
    """One task-capable ``tools/call``: before its task begins, and while the task runs."""

    manager: TaskManager
    tool: str
    scope: CallScope
    request_id: RequestId
    params: dict[str, Any]
    outbound: _TaskOutbound
    deferred: bool
    cancel_scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    settled: trio.Event = attrs.Factory(trio.Event)
    """Set when the request has its answer: the task was created, or the call ended first."""
    outcome: dict[str, Any] | Exception | None = None
    task_id: str | None = None
    answered: trio.Event | None = None
    """Set when every question of the current ``input_required`` round has its answer."""
    lock: trio.Lock = attrs.Factory(trio.Lock)
    """Serialises this task's store writes."""


async def begin_task() -> None:
    """Turn the tool call being served into a task, now.

    For tools registered with ``defer_task=True``: everything before this call runs on the
    request (input it asks for goes out as ``input_required`` rounds), the client gets the
    task the moment this returns, and the rest of the tool runs as that task. Elsewhere
    (a task already, a client without the extension, the legacy era) it does nothing.
    """
    call = _current_call.get()
    if call is not None and call.scope.server is not _serving_server():
        call = None  # an in-process call to another server, made from within a task
    if call is None or call.task_id is not None:
        await trio.lowlevel.checkpoint()
        return
    await call.manager._begin(call)


def _serving_server() -> Server | None:
    try:
        return current_request().server
    except LookupError:
        return None


class TaskManager:
    """Creates, runs and keeps the tasks of one server (see :func:`enable_tasks`).

    ``ttl_ms`` is every task's lifetime from creation (None: until the store drops it);
    expired tasks are purged every ``sweep_interval`` seconds, their work cancelled.
    ``poll_interval_ms`` is the polling pace suggested to clients. ``clock`` gives the
    epoch seconds stamped on tasks.
    """

    def __init__(
        self,
        server: Server,
        store: TaskStore | None = None,
        *,
        ttl_ms: int | None = 3_600_000,
        poll_interval_ms: int | None = 500,
        sweep_interval: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for name, value in (("ttl_ms", ttl_ms), ("poll_interval_ms", poll_interval_ms)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value <= 0
            ):
                raise ValueError(f"{name} must be a positive number of milliseconds or None")
        if not sweep_interval > 0:
            raise ValueError("sweep_interval must be a positive number of seconds")
        self.server = server
        self.store: TaskStore = store if store is not None else MemoryTaskStore()
        self.ttl_ms = ttl_ms
        self.poll_interval_ms = poll_interval_ms
        self.sweep_interval = sweep_interval
        self.clock = clock
        self._nursery: trio.Nursery | None = None
        self._live: dict[str, _Call] = {}
        self._counts = {"created": 0, "completed": 0, "failed": 0, "cancelled": 0, "expired": 0}

    @property
    def running(self) -> bool:
        """True while :meth:`run` is serving (tasks can be created)."""
        return self._nursery is not None

    def statistics(self) -> dict[str, int]:
        """Tasks running in this process, and counts of what happened to tasks since start."""
        return {"live": len(self._live), **self._counts}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the tasks' work and the expiry sweep until cancelled.

        ``server.serve_background()`` starts it; cancelling it cancels every running task
        (they are recorded as failed: the work is lost).
        """
        if self._nursery is not None:
            raise RuntimeError("this task manager is already running")
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                nursery.start_soon(self._sweep)
                task_status.started()
                await trio.sleep_forever()
            finally:
                self._nursery = None

    # -- tools/call ---------------------------------------------------------------------

    async def on_tool_call(
        self, scope: CallScope, request: Request, params: dict[str, Any], run: CallRunner
    ) -> dict[str, Any] | None:
        """The server's tool-call hook: answer with a task, or None to run the call inline."""
        if _executing.get() is self or scope.era is not Era.MODERN:
            return None
        name = params.get("name")
        entry = self.server.tools.get(name) if isinstance(name, str) else None
        if entry is None or entry.task is None:
            return None
        if not declares_tasks(scope.client_capabilities):
            if entry.task == "required":
                raise _missing_extension(f"tool {name!r} runs only as a task, so it")
            return None
        nursery = self._nursery
        if nursery is None:
            if entry.task == "required":
                raise InternalError(
                    f"tool {name!r} runs only as a task, but the server's task manager is not"
                    " running: serve with serve_http()/serve_stdio(), or start"
                    " server.serve_background() yourself"
                )
            return None
        outbound = _TaskOutbound(scope.outbound)
        call = _Call(
            manager=self,
            tool=entry.tool.name,
            scope=scope,
            request_id=request.id,
            params=params,
            outbound=outbound,
            deferred=entry.defer_task,
        )
        call.scope = attrs.evolve(scope, outbound=outbound, cancel_scope=call.cancel_scope)
        nursery.start_soon(self._run_call, call)
        try:
            await call.settled.wait()
        except BaseException:
            # The client gave up on the request: any task made for it was never seen.
            call.cancel_scope.cancel()
            raise
        if isinstance(call.outcome, Exception):
            raise call.outcome
        assert call.outcome is not None
        return call.outcome

    async def _begin(self, call: _Call) -> TaskRecord:
        """Create the call's task durably and answer the request with it."""
        now = self.clock()
        record = TaskRecord(
            task_id=secrets.token_urlsafe(18),
            status="working",
            created_at=now,
            last_updated_at=now,
            ttl_ms=self.ttl_ms,
            poll_interval_ms=self.poll_interval_ms,
            principal=call.scope.principal_key,
            tool=call.tool,
        )
        await self.store.create(record)
        call.task_id = record.task_id
        call.outbound.inner = None
        self._live[record.task_id] = call
        self._counts["created"] += 1
        call.outcome = record.create_result_wire()
        call.settled.set()
        await self._publish(record)
        return record

    async def _run_call(self, call: _Call) -> None:
        _executing.set(self)
        _current_call.set(call)
        try:
            await self._drive(call)
        except trio.Cancelled:
            if call.task_id is not None:
                await self._finish(
                    call,
                    status="failed",
                    error=InternalError(
                        "the server stopped before the task finished; call the tool again"
                    ).to_error_dict(),
                )
            raise
        except Exception as exc:
            # A failing store must not take the other tasks down with this one.
            log.exception("task %s of tool %r: the task machinery failed", call.task_id, call.tool)
            if not call.settled.is_set():
                call.outcome = exc
                call.settled.set()
            elif call.task_id is not None:
                with contextlib.suppress(Exception):
                    await self._finish(call, status="failed", error=_error_of(exc, call.tool))
        finally:
            if call.task_id is not None:
                self._live.pop(call.task_id, None)

    async def _drive(self, call: _Call) -> None:
        params = call.params
        result: dict[str, Any] | None = None
        error: dict[str, Any] | None = None
        quiet_rounds = 0
        with call.cancel_scope:
            if not call.deferred:
                await self._begin(call)
            while True:
                try:
                    result = await dispatch(
                        call.scope, Request(call.request_id, "tools/call", params)
                    )
                except Exception as exc:
                    if call.task_id is None:
                        call.outcome = exc
                        call.settled.set()
                        return
                    error = _error_of(exc, call.tool)
                    break
                if call.task_id is None:
                    call.outcome = result
                    call.settled.set()
                    return
                if result.get("resultType") != "input_required":
                    break
                quiet_rounds = 0 if result.get("inputRequests") else quiet_rounds + 1
                try:
                    if quiet_rounds > self.server.config.max_input_rounds:
                        raise InternalError(
                            f"tool {call.tool!r} kept answering input_required without asking"
                            " anything"
                        )
                    params = await self._wait_for_input(call, params, result)
                except MCPError as exc:
                    error = exc.to_error_dict()
                    break
        if call.task_id is None:
            return
        if call.cancel_scope.cancelled_caught:
            await self._finish(call, status="cancelled", message="the task was cancelled")
        elif error is not None:
            await self._finish(call, status="failed", error=error, message=error["message"])
        else:
            assert result is not None
            result = dict(result)
            result["resultType"] = "complete"
            await self._finish(call, status="completed", result=result)

    async def _wait_for_input(
        self, call: _Call, params: dict[str, Any], result: dict[str, Any]
    ) -> dict[str, Any]:
        """Park the task on the tool's questions; the params of the run that resumes it."""
        questions = result.get("inputRequests") or {}
        token = result.get("requestState")
        keyring = self.server.state_keyring
        state: dict[str, Any] | None = None
        if isinstance(token, str):
            # Kept unsealed in the store and sealed afresh on resume, so a slow answer
            # never meets an expired requestState.
            try:
                state = keyring.unseal(
                    token,
                    method="tools/call",
                    params=params,
                    principal=call.scope.principal_key,
                    now=time.time(),
                )
            except RequestStateError as exc:
                raise InternalError(f"the task could not keep its input state: {exc}") from None
        answers: dict[str, Any] = {}
        if questions:
            call.answered = trio.Event()

            def park(record: TaskRecord) -> TaskRecord:
                issued = set(record.issued_keys)
                keys: dict[str, str] = {}
                for key in questions:
                    # A key names one question for the task's whole life.
                    wire_key, n = key, 2
                    while wire_key in issued or wire_key in keys:
                        wire_key, n = f"{key}#{n}", n + 1
                    keys[wire_key] = key
                return attrs.evolve(
                    record,
                    status="input_required",
                    status_message="waiting for input: answer inputRequests with tasks/update",
                    input_requests={wire: questions[key] for wire, key in keys.items()},
                    input_keys=keys,
                    input_responses={},
                    resume_state=state,
                    issued_keys=record.issued_keys + tuple(keys),
                )

            await self._update(call, park)
            await call.answered.wait()
            record = await self.store.get(call.task_id or "")
            if record is None:
                raise InternalError("the task's record disappeared while it waited for input")
            keys = record.input_keys or {}
            answers = {keys.get(k, k): v for k, v in (record.input_responses or {}).items()}
            await self._update(
                call,
                lambda r: attrs.evolve(r, input_keys=None, input_responses=None, resume_state=None),
                publish=False,
            )
        resumed = {k: v for k, v in call.params.items() if k not in _RETRY_KEYS}
        resumed["inputResponses"] = answers
        if state is not None:
            resumed["requestState"] = keyring.seal(
                state,
                method="tools/call",
                params=resumed,
                principal=call.scope.principal_key,
                ttl=self.server.config.request_state_ttl,
                now=time.time(),
            )
        return resumed

    async def _finish(
        self,
        call: _Call,
        *,
        status: Literal["completed", "failed", "cancelled"],
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        message: str | None = None,
    ) -> None:
        def settle(record: TaskRecord) -> TaskRecord | None:
            if record.terminal:
                return None
            return attrs.evolve(
                record,
                status=status,
                status_message=message,
                result=result,
                error=error,
                input_requests=None,
                input_keys=None,
                input_responses=None,
                resume_state=None,
            )

        with trio.move_on_after(_FINAL_WRITE_GRACE) as guard:
            guard.shield = True
            if await self._update(call, settle) is not None:
                self._counts[status] += 1
        if guard.cancelled_caught:
            log.warning("task %s: its final state could not be stored in time", call.task_id)

    async def _update(
        self,
        call: _Call | None,
        change: Callable[[TaskRecord], TaskRecord | None],
        *,
        task_id: str | None = None,
        publish: bool = True,
    ) -> TaskRecord | None:
        """Apply ``change`` to the stored task (None from it: leave the task as it is)."""
        task_id = task_id if task_id is not None else call.task_id if call is not None else None
        if task_id is None:
            return None
        lock = call.lock if call is not None else trio.Lock()
        async with lock:
            record = await self.store.get(task_id)
            if record is None:
                return None
            updated = change(record)
            if updated is None:
                return None
            updated = attrs.evolve(updated, last_updated_at=self.clock())
            try:
                await self.store.save(updated)
            except KeyError:
                return None
        if publish:
            await self._publish(updated)
        return updated

    async def _publish(self, record: TaskRecord) -> None:
        data = {"task": record.detailed_wire(), "principal": record.principal}
        await self.server.change_bus.publish(
            ChangeEvent("task_status", task_id=record.task_id, data=data)
        )

    # -- tasks/get, tasks/update, tasks/cancel ------------------------------------------

    async def _visible(self, scope: CallScope, task_id: str) -> TaskRecord:
        record = await self.store.get(task_id)
        # Another principal's task is reported exactly like a task that never existed.
        if record is None or record.principal != scope.principal_key:
            raise InvalidParams(
                f"unknown task {task_id!r}: use the taskId of a task this server created for"
                " you, before its ttlMs runs out",
                {"taskId": task_id},
            )
        if record.expired(self.clock()):
            raise InvalidParams(
                f"task {task_id!r} has expired (its ttlMs was {record.ttl_ms})",
                {"taskId": task_id},
            )
        return record

    async def get(self, scope: CallScope, task_id: str) -> dict[str, Any]:
        """``tasks/get``: the task as a wire ``DetailedTask``; -32602 for an unknown task."""
        return (await self._visible(scope, task_id)).detailed_wire()

    async def update(self, scope: CallScope, task_id: str, responses: Mapping[str, Any]) -> None:
        """``tasks/update``: take answers to the task's outstanding questions.

        Keys that are not outstanding are ignored; the task resumes once every question
        of its round is answered.
        """
        await self._visible(scope, task_id)
        call = self._live.get(task_id)

        def take(record: TaskRecord) -> TaskRecord | None:
            if record.status != "input_required":
                return None
            pending = record.pending_requests
            fresh = {key: value for key, value in responses.items() if key in pending}
            if not fresh:
                return None
            for key, value in fresh.items():
                if not isinstance(value, dict):
                    raise InvalidParams(
                        f"inputResponses[{key!r}] must be the result object of that input request"
                    )
            answered = {**(record.input_responses or {}), **fresh}
            if len(answered) < len(record.input_requests or {}):
                return attrs.evolve(record, input_responses=answered)
            return attrs.evolve(
                record,
                status="working",
                status_message=None,
                input_requests=None,
                input_responses=answered,
            )

        updated = await self._update(call, take, task_id=task_id)
        resumed = updated is not None and updated.status == "working"
        if resumed and call is not None and call.answered is not None:
            call.answered.set()

    async def cancel(self, scope: CallScope, task_id: str) -> None:
        """``tasks/cancel``: mark the task cancelled and stop its work (no-op once terminal)."""
        record = await self._visible(scope, task_id)
        if record.terminal:
            return
        call = self._live.get(task_id)

        def stop(record: TaskRecord) -> TaskRecord | None:
            if record.terminal:
                return None
            return attrs.evolve(
                record,
                status="cancelled",
                status_message="cancelled at the client's request",
                input_requests=None,
                input_keys=None,
                input_responses=None,
                resume_state=None,
            )

        if await self._update(call, stop, task_id=task_id) is not None:
            self._counts["cancelled"] += 1
        if call is not None:
            call.cancel_scope.cancel()

    # -- expiry -------------------------------------------------------------------------

    async def purge_expired(self) -> list[str]:
        """Drop the tasks whose ``ttlMs`` ran out and cancel their work; their ids."""
        purged = await self.store.purge_expired(self.clock())
        for task_id in purged:
            self._counts["expired"] += 1
            call = self._live.pop(task_id, None)
            if call is not None:
                call.cancel_scope.cancel()
        return purged

    async def _sweep(self) -> None:
        while True:
            await trio.sleep(self.sweep_interval)
            try:
                await self.purge_expired()
            except Exception:
                log.exception("purging expired tasks failed; trying again later")


def _error_of(exc: Exception, tool: str) -> dict[str, Any]:
    if isinstance(exc, MCPError):
        return exc.to_error_dict()
    log.error("tool %r failed inside its task", tool, exc_info=exc)
    return InternalError(f"tool {tool!r} failed: {type(exc).__name__}: {exc}").to_error_dict()


# -- the methods ------------------------------------------------------------------------------


def _manager_for(scope: CallScope, method: str) -> TaskManager:
    manager = scope.server.task_manager
    if manager is None:
        raise MethodNotFound(f"unknown method {method!r}: this server does not offer tasks")
    if not declares_tasks(scope.client_capabilities):
        raise _missing_extension(method)
    return manager


def _task_id(params: Mapping[str, Any]) -> str:
    task_id = params.get("taskId")
    if not isinstance(task_id, str) or not task_id:
        raise InvalidParams("params.taskId must be the taskId string of a task")
    return task_id


async def _tasks_get(scope: CallScope, request: Request, params: dict[str, Any]) -> Any:
    manager = _manager_for(scope, request.method)
    return await manager.get(scope, _task_id(params))


async def _tasks_update(scope: CallScope, request: Request, params: dict[str, Any]) -> Any:
    manager = _manager_for(scope, request.method)
    task_id = _task_id(params)
    responses = params.get("inputResponses")
    if not isinstance(responses, dict):
        raise InvalidParams(
            "params.inputResponses must be an object mapping request keys to results"
        )
    await manager.update(scope, task_id, responses)
    return {}


async def _tasks_cancel(scope: CallScope, request: Request, params: dict[str, Any]) -> Any:
    manager = _manager_for(scope, request.method)
    await manager.cancel(scope, _task_id(params))
    return {}


_METHODS = {"tasks/get": _tasks_get, "tasks/update": _tasks_update, "tasks/cancel": _tasks_cancel}


def enable_tasks(
    server: Server,
    store: TaskStore | None = None,
    *,
    ttl_ms: int | None = 3_600_000,
    poll_interval_ms: int | None = 500,
    sweep_interval: float = 60.0,
    clock: Callable[[], float] = time.time,
) -> TaskManager:
    """Offer the tasks extension on ``server`` (before serving it); see :class:`TaskManager`.

    Advertises the extension, serves ``tasks/get``, ``tasks/update`` and ``tasks/cancel``
    in the 2026-07-28 era, answers calls of task-capable tools with tasks, and adds the
    manager to ``server.background``.
    """
    if server.task_manager is not None:
        raise RuntimeError(f"tasks are already enabled on server {server.name!r}")
    manager = TaskManager(
        server,
        store,
        ttl_ms=ttl_ms,
        poll_interval_ms=poll_interval_ms,
        sweep_interval=sweep_interval,
        clock=clock,
    )
    server.task_manager = manager
    server.extensions[TASKS_EXTENSION] = {}
    server.tool_call_hooks.append(manager.on_tool_call)
    server.background.append(manager.run)
    for method, handler in _METHODS.items():
        server.methods.register(method, handler, eras=_MODERN)
    return manager


# -- subscriptions/listen --------------------------------------------------------------------


def listen_task_ids(scope: CallScope, requested: Any) -> list[str] | None:
    """The task ids a ``subscriptions/listen`` honours from ``notifications.taskIds``.

    None when it asks for none or the server offers no tasks; -32602 for a malformed list;
    -32021 when the request did not declare the extension.
    """
    if requested is None:
        return None
    if not isinstance(requested, list) or not all(isinstance(t, str) for t in requested):
        raise InvalidParams("notifications.taskIds must be a list of taskId strings")
    if scope.server.task_manager is None:
        return None
    if not declares_tasks(scope.client_capabilities):
        raise _missing_extension("listening for task status (notifications.taskIds)")
    return list(dict.fromkeys(requested))


def task_notification(
    event: ChangeEvent, task_ids: Collection[str], principal: str | None
) -> tuple[str, dict[str, Any]] | None:
    """The ``notifications/tasks`` a listen with these ``taskIds`` (and this principal) sends
    for ``event``, or None."""
    if event.kind != "task_status" or event.task_id not in task_ids:
        return None
    data = event.data or {}
    if data.get("principal") != principal:
        return None
    task = data.get("task")
    if not isinstance(task, Mapping):
        return None
    return TASK_NOTIFICATION, dict(task)
