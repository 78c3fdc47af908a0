"""The exception that stops a handler until the client has answered (see ``mrtr.py``).

Its own module so that the registries, which catch it, need nothing else of MRTR.
"""

from __future__ import annotations

from ..types import InputRequiredResult

__all__ = ["InputRequired"]


class InputRequired(Exception):
    """Raised by the context's helpers when the client's answer is not here yet."""

    def __init__(self, result: InputRequiredResult) -> None:
        super().__init__("input required")
        self.result = result
