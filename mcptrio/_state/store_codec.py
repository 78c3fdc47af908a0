"""The JSON form of session records, written by the SQLite and Redis stores (sans-IO)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs
import orjson

from .sessions import SessionRecord
from .task_store import TaskRecord

__all__ = ["decode_session", "decode_task", "encode_session", "encode_task"]

_FIELDS: Final = frozenset(f.name for f in attrs.fields(SessionRecord))


def encode_session(record: SessionRecord) -> bytes:
    """``record`` as compact JSON; ``TypeError`` when its metadata is not JSON-compatible."""
    data = attrs.asdict(record, recurse=False)
    data["state"] = record.state.value
    data["subscriptions"] = sorted(record.subscriptions)
    try:
        return orjson.dumps(data)
    except TypeError as exc:
        raise TypeError(
            f"session {record.id!r} cannot be stored: its data is not JSON-compatible ({exc})"
        ) from None


def decode_session(raw: bytes | str) -> SessionRecord:
    """The record :func:`encode_session` wrote; ``ValueError`` when ``raw`` is not one."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"a stored session is not valid JSON ({exc})") from None
    if not isinstance(data, Mapping):
        raise ValueError("a stored session must be a JSON object")
    unknown = set(data) - _FIELDS
    if unknown:
        raise ValueError(f"a stored session has unknown fields: {', '.join(sorted(unknown))}")
    fields: dict[str, Any] = dict(data)
    try:
        return SessionRecord(**fields)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"a stored session is not a session record ({exc})") from None


def encode_task(record: TaskRecord) -> bytes:
    """``record`` as compact JSON; ``TypeError`` when it holds data JSON cannot carry."""
    try:
        return orjson.dumps(record.to_json())
    except TypeError as exc:
        raise TypeError(
            f"task {record.task_id!r} cannot be stored: its data is not JSON-compatible ({exc})"
        ) from None


def decode_task(raw: bytes | str) -> TaskRecord:
    """The record :func:`encode_task` wrote; ``ValueError`` when ``raw`` is not one."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"a stored task is not valid JSON ({exc})") from None
    return TaskRecord.from_json(data)
