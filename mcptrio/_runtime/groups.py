"""Showing users the real error instead of an ExceptionGroup made by an internal nursery."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["unwrap_single_error"]


@contextmanager
def unwrap_single_error() -> Iterator[None]:
    """Re-raise a group holding exactly one exception as that exception.

    Used at public API boundaries whose internal nursery would otherwise turn a
    user's own ``ValueError`` into an ``ExceptionGroup``. Groups of several errors
    are left alone: they really are several errors.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        if len(group.exceptions) != 1:
            raise
        _reraise(group.exceptions[0])


def _reraise(exc: BaseException) -> None:
    # Raising inside ``except`` would chain the group as context; keep the
    # exception's own cause and context instead.
    cause, context, suppress = exc.__cause__, exc.__context__, exc.__suppress_context__
    try:
        raise exc
    finally:
        exc.__cause__, exc.__context__, exc.__suppress_context__ = cause, context, suppress
        del exc
