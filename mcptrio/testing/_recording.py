"""An interceptor that records every message it sees."""

from __future__ import annotations

from .._intercept.actions import Action, Continue, InterceptContext

__all__ = ["RecordingInterceptor"]


class RecordingInterceptor:
    """Records each message's context and lets it go on unchanged.

    Register it last to see messages as they go on the wire, first to see them as they
    arrived.
    """

    def __init__(self) -> None:
        self.contexts: list[InterceptContext] = []
        """Every context seen, in the order the chain ran."""

    async def __call__(self, context: InterceptContext, /) -> Action:
        self.contexts.append(context)
        return Continue()

    def messages(self, direction: str | None = None) -> list[dict[str, object]]:
        """The raw messages seen, optionally only those going ``direction``."""
        return [
            dict(c.message) for c in self.contexts if direction is None or c.direction == direction
        ]
