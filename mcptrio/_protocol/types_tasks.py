"""MCP wire types for tasks.

Two incompatible shapes exist. 2025-11-25 has experimental tasks in the core protocol
(:class:`Task`, ``ttl``/``pollInterval``, ``CreateTaskResult`` wrapping a task, ``tasks/list``,
blocking ``tasks/result``). 2026-07-28 moves them to the ``io.modelcontextprotocol/tasks``
extension, whose task objects are flat results (:class:`DetailedTask`, ``ttlMs``/
``pollIntervalMs``) polled with ``tasks/get`` and fed with ``tasks/update``. Sans-IO.
"""

from __future__ import annotations

from typing import Any, Final, Literal, TypeAlias

import attrs

from .types_common import Meta, ResultType
from .types_features import InputRequest, InputResponse

__all__ = [
    "TASKS_EXTENSION",
    "CancelTaskRequestParams",
    "CancelTaskResult",
    "CreateTaskResult",
    "DetailedTask",
    "GetTaskPayloadRequestParams",
    "GetTaskRequestParams",
    "GetTaskResult",
    "ListTasksResult",
    "RelatedTaskMetadata",
    "Task",
    "TaskStatus",
    "TaskStatusNotificationParams",
    "UpdateTaskRequestParams",
]

TASKS_EXTENSION: Final = "io.modelcontextprotocol/tasks"
"""The 2026-07-28 tasks extension id, as used in ``capabilities.extensions``."""

TaskStatus: TypeAlias = Literal["working", "input_required", "completed", "failed", "cancelled"]
"""The state of a task; the last three are terminal."""

# --- 2025-11-25 core tasks ---------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Task:
    """A task (2025-11-25); ``ttl`` is milliseconds, None (sent as null) means unlimited."""

    task_id: str
    status: TaskStatus
    created_at: str
    last_updated_at: str
    ttl: int | None
    status_message: str | None = None
    poll_interval: int | None = None


@attrs.frozen(kw_only=True)
class RelatedTaskMetadata:
    """The value of ``_meta["io.modelcontextprotocol/related-task"]`` (2025-11-25)."""

    task_id: str


@attrs.frozen(kw_only=True)
class CreateTaskResult:
    """Result of a task-augmented request (2025-11-25): the task created."""

    task: Task
    result_type: ResultType | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class GetTaskResult:
    """Result of ``tasks/get`` (2025-11-25): the task's fields inline."""

    task_id: str
    status: TaskStatus
    created_at: str
    last_updated_at: str
    ttl: int | None
    status_message: str | None = None
    poll_interval: int | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class CancelTaskResult:
    """Result of ``tasks/cancel`` (2025-11-25): the task's fields inline."""

    task_id: str
    status: TaskStatus
    created_at: str
    last_updated_at: str
    ttl: int | None
    status_message: str | None = None
    poll_interval: int | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class ListTasksResult:
    """Result of ``tasks/list`` (2025-11-25)."""

    tasks: list[Task]
    next_cursor: str | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class TaskStatusNotificationParams:
    """Params of ``notifications/tasks/status`` (2025-11-25): the task's fields inline."""

    task_id: str
    status: TaskStatus
    created_at: str
    last_updated_at: str
    ttl: int | None
    status_message: str | None = None
    poll_interval: int | None = None
    meta: Meta | None = None


# --- params shared by both shapes --------------------------------------------------------


@attrs.frozen(kw_only=True)
class GetTaskRequestParams:
    """Params of ``tasks/get``; ``request_state`` is the 2026 extension's."""

    task_id: str
    request_state: str | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class GetTaskPayloadRequestParams:
    """Params of ``tasks/result`` (2025-11-25)."""

    task_id: str
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class CancelTaskRequestParams:
    """Params of ``tasks/cancel``; ``request_state`` is the 2026 extension's."""

    task_id: str
    request_state: str | None = None
    meta: Meta | None = None


# --- 2026-07-28 tasks extension ----------------------------------------------------------


@attrs.frozen(kw_only=True)
class UpdateTaskRequestParams:
    """Params of ``tasks/update`` (2026 extension): answers to a task's input requests."""

    task_id: str
    input_responses: dict[str, InputResponse]
    request_state: str | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class DetailedTask:
    """A task of the 2026 extension, flat in a result or notification.

    It is the ``CreateTaskResult`` of ``tools/call`` (``resultType: "task"``), the result of
    ``tasks/get`` (``resultType: "complete"``) and the params of ``notifications/tasks/status``.
    ``ttl_ms`` is None (sent as null) for unlimited. ``input_requests`` comes with
    ``input_required``, ``result`` with ``completed``, ``error`` (a JSON-RPC error) with ``failed``.
    """

    task_id: str
    status: TaskStatus
    created_at: str
    last_updated_at: str
    ttl_ms: int | None
    status_message: str | None = None
    poll_interval_ms: int | None = None
    request_state: str | None = None
    input_requests: dict[str, InputRequest] | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    result_type: ResultType | None = None
    meta: Meta | None = None
