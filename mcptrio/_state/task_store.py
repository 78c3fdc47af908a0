"""Where tasks live: :class:`TaskRecord`, the :class:`TaskStore` protocol, :class:`MemoryTaskStore`.

A record is plain data (strings, numbers and JSON objects, timestamps in epoch seconds), so a
store may keep it anywhere: :meth:`TaskRecord.to_json` and :meth:`TaskRecord.from_json` give
the JSON form a serialising store (SQLite, Redis) writes. Records are immutable; the task
manager replaces a stored record with an updated copy.

The wire shapes of the tasks extension (``CreateTaskResult`` and ``DetailedTask``) are made
here too, from a record alone.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, Protocol, runtime_checkable

import attrs

from ..types import TaskStatus

__all__ = [
    "TASK_STATUSES",
    "TERMINAL_STATUSES",
    "MemoryTaskStore",
    "TaskRecord",
    "TaskStore",
    "iso_timestamp",
]

TASK_STATUSES: Final = frozenset({"working", "input_required", "completed", "failed", "cancelled"})
"""Every :data:`~mcptrio.types.TaskStatus`."""

TERMINAL_STATUSES: Final = frozenset({"completed", "failed", "cancelled"})
"""Statuses a task never leaves."""


def iso_timestamp(epoch: float) -> str:
    """An ISO 8601 UTC timestamp with milliseconds, as the wire carries ``createdAt``."""
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _check_status(_instance: object, _attribute: object, value: object) -> None:
    if value not in TASK_STATUSES:
        raise ValueError(
            f"unknown task status {value!r}; expected one of {', '.join(sorted(TASK_STATUSES))}"
        )


def _check_ms(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{attribute.name} must be a positive integer (milliseconds) or None")


def _as_keys(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class TaskRecord:
    """One task as a store keeps it.

    While the task waits for input, ``input_requests`` holds the questions by the keys the
    client sees, ``input_keys`` maps those keys to the ones the tool used, ``input_responses``
    the answers received so far, and ``resume_state`` what the tool's call needs to resume
    (the unsealed MRTR state). ``issued_keys`` remembers every key the client was ever shown,
    so none is reused over the task's lifetime.
    """

    task_id: str
    status: TaskStatus = attrs.field(validator=_check_status)
    created_at: float
    """Epoch seconds."""
    last_updated_at: float
    """Epoch seconds."""
    ttl_ms: int | None = attrs.field(validator=_check_ms)
    """Lifetime from creation in milliseconds (None: kept until deleted)."""
    poll_interval_ms: int | None = attrs.field(default=None, validator=_check_ms)
    status_message: str | None = None
    principal: str | None = None
    """Who created the task; only the same principal may see or touch it."""
    tool: str | None = None
    """The tool whose call the task runs."""
    input_requests: dict[str, Any] | None = None
    input_keys: dict[str, str] | None = None
    input_responses: dict[str, Any] | None = None
    resume_state: dict[str, Any] | None = None
    issued_keys: tuple[str, ...] = attrs.field(default=(), converter=_as_keys)
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    @property
    def terminal(self) -> bool:
        """True once the task is completed, failed or cancelled."""
        return self.status in TERMINAL_STATUSES

    @property
    def expires_at(self) -> float | None:
        """When the task may be discarded (epoch seconds), or None if never."""
        if self.ttl_ms is None:
            return None
        return self.created_at + self.ttl_ms / 1000

    def expired(self, now: float) -> bool:
        """True once ``now`` reached the end of the task's lifetime."""
        expires_at = self.expires_at
        return expires_at is not None and now >= expires_at

    @property
    def pending_requests(self) -> dict[str, Any]:
        """The input requests still unanswered, by the client's keys."""
        answered = self.input_responses or {}
        return {k: v for k, v in (self.input_requests or {}).items() if k not in answered}

    # -- wire shapes --------------------------------------------------------------------

    def _base_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "taskId": self.task_id,
            "status": self.status,
            "createdAt": iso_timestamp(self.created_at),
            "lastUpdatedAt": iso_timestamp(self.last_updated_at),
            "ttlMs": self.ttl_ms,
        }
        if self.poll_interval_ms is not None:
            out["pollIntervalMs"] = self.poll_interval_ms
        if self.status_message is not None:
            out["statusMessage"] = self.status_message
        return out

    def create_result_wire(self) -> dict[str, Any]:
        """The ``CreateTaskResult`` answering the ``tools/call`` that made this task."""
        out = self._base_wire()
        out["resultType"] = "task"
        return out

    def detailed_wire(self) -> dict[str, Any]:
        """The ``DetailedTask``: ``tasks/get``'s result and ``notifications/tasks``' params."""
        out = self._base_wire()
        if self.status == "input_required":
            out["inputRequests"] = self.pending_requests
        elif self.status == "completed" and self.result is not None:
            out["result"] = self.result
        elif self.status == "failed" and self.error is not None:
            out["error"] = self.error
        return out

    # -- JSON form ----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """This record as a JSON object (the inverse of :meth:`from_json`)."""
        out = attrs.asdict(self, recurse=False)
        out["issued_keys"] = list(self.issued_keys)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskRecord:
        """A record from :meth:`to_json`'s output; ``ValueError`` if it is not one."""
        if not isinstance(data, Mapping):
            raise ValueError("a task record must be a JSON object")
        known = {field.name for field in attrs.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown task record fields: {', '.join(sorted(unknown))}")
        try:
            record = cls(**data)
        except TypeError as exc:
            raise ValueError(f"not a task record: {exc}") from None
        _check_types(record)
        return record


_OPTIONAL_DICTS = ("input_requests", "input_keys", "input_responses", "resume_state")


def _check_types(record: TaskRecord) -> None:
    if not isinstance(record.task_id, str) or not record.task_id:
        raise ValueError("task_id must be a non-empty string")
    for name in ("created_at", "last_updated_at"):
        value = getattr(record, name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number of epoch seconds")
    for name in ("status_message", "principal", "tool"):
        value = getattr(record, name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name} must be a string or null")
    for name in (*_OPTIONAL_DICTS, "result", "error"):
        value = getattr(record, name)
        if value is not None and not isinstance(value, dict):
            raise ValueError(f"{name} must be an object or null")
    if not all(isinstance(key, str) for key in record.issued_keys):
        raise ValueError("issued_keys must be a list of strings")


@runtime_checkable
class TaskStore(Protocol):
    """Keeps task records; the task manager is its only writer.

    A store needs no locking of its own for one process: the manager serialises the
    writes to each task. Stores shared by several processes must make :meth:`create`
    fail on an existing id.
    """

    async def create(self, record: TaskRecord) -> None:
        """Store a new task; ``ValueError`` if a task with its id exists. The task is
        readable by :meth:`get` (from any process sharing the store) once this returns."""
        ...

    async def get(self, task_id: str) -> TaskRecord | None:
        """The task with this id, or None (expired tasks may still be returned)."""
        ...

    async def save(self, record: TaskRecord) -> None:
        """Replace the stored task with the same id; ``KeyError`` if it is gone."""
        ...

    async def delete(self, task_id: str) -> None:
        """Forget a task (no error if it is gone)."""
        ...

    async def purge_expired(self, now: float) -> list[str]:
        """Delete every task whose lifetime ended by ``now``; return their ids."""
        ...


class MemoryTaskStore:
    """A :class:`TaskStore` in this process's memory (tasks end with the process)."""

    def __init__(self) -> None:
        self._records: dict[str, TaskRecord] = {}
        # (expires_at, task_id); entries of deleted tasks are skipped when they surface.
        self._expiry: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._records)

    async def create(self, record: TaskRecord) -> None:
        """Store a new task; ``ValueError`` if its id is taken."""
        if record.task_id in self._records:
            raise ValueError(f"a task with id {record.task_id!r} already exists")
        self._records[record.task_id] = record
        if record.expires_at is not None:
            heapq.heappush(self._expiry, (record.expires_at, record.task_id))

    async def get(self, task_id: str) -> TaskRecord | None:
        """The task with this id, or None."""
        return self._records.get(task_id)

    async def save(self, record: TaskRecord) -> None:
        """Replace a stored task; ``KeyError`` if it is gone."""
        old = self._records.get(record.task_id)
        if old is None:
            raise KeyError(record.task_id)
        if record.created_at != old.created_at or record.ttl_ms != old.ttl_ms:
            raise ValueError("a task's created_at and ttl_ms never change")
        self._records[record.task_id] = record

    async def delete(self, task_id: str) -> None:
        """Forget a task."""
        self._records.pop(task_id, None)

    async def purge_expired(self, now: float) -> list[str]:
        """Delete the tasks whose lifetime ended by ``now``."""
        purged: list[str] = []
        while self._expiry and self._expiry[0][0] <= now:
            _, task_id = heapq.heappop(self._expiry)
            if self._records.pop(task_id, None) is not None:
                purged.append(task_id)
        return purged
