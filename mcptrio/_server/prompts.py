"""Prompt registry: functions that render prompt messages."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import attrs
import trio

from .._protocol.content import is_content_block
from .._protocol.errors import InvalidParams
from ..types import (
    GetPromptResult,
    Icon,
    InputRequiredResult,
    Prompt,
    PromptArgument,
    PromptMessage,
    TextContent,
)
from .schema import prompt_arguments_for
from .tools import _is_async

__all__ = ["PromptRegistry"]


@attrs.frozen
class _Entry:
    prompt: Prompt
    fn: Callable[..., Any]
    is_async: bool


def to_messages(value: Any) -> list[PromptMessage]:
    """Turn a prompt function's return value into prompt messages."""
    items = value if isinstance(value, list | tuple) else [value]
    out: list[PromptMessage] = []
    for item in items:
        if isinstance(item, PromptMessage):
            out.append(item)
        elif isinstance(item, str):
            out.append(PromptMessage(role="user", content=TextContent(text=item)))
        elif is_content_block(item):
            out.append(PromptMessage(role="user", content=item))
        else:
            raise TypeError(
                f"a prompt must return str, PromptMessage, a content block or a list of those;"
                f" got {type(item).__name__}"
            )
    return out


class PromptRegistry:
    """The prompts of one server, in registration order."""

    def __init__(self) -> None:
        self._prompts: dict[str, _Entry] = {}

    def add(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        icons: Sequence[Icon] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        """Register ``fn`` as a prompt; its parameters become string arguments."""
        prompt_name = name or getattr(fn, "__name__", None)
        if not prompt_name:
            raise ValueError("a prompt needs a name")
        if prompt_name in self._prompts:
            raise ValueError(f"a prompt named {prompt_name!r} is already registered")
        arguments = [
            PromptArgument(name=arg, description=desc, required=required)
            for arg, desc, required in prompt_arguments_for(fn)
        ]
        self._prompts[prompt_name] = _Entry(
            prompt=Prompt(
                name=prompt_name,
                title=title,
                description=description if description is not None else _summary(fn),
                arguments=arguments or None,
                icons=list(icons) if icons is not None else None,
                meta=meta,
            ),
            fn=fn,
            is_async=_is_async(fn),
        )

    def remove(self, name: str) -> None:
        """Unregister a prompt; ``KeyError`` if unknown."""
        del self._prompts[name]

    def prompts(self) -> list[Prompt]:
        """Prompts in registration order."""
        return [entry.prompt for entry in self._prompts.values()]

    def get_prompt(self, name: str) -> Prompt | None:
        """The prompt registered under ``name``."""
        entry = self._prompts.get(name)
        return entry.prompt if entry else None

    async def render(
        self,
        name: str,
        arguments: Mapping[str, Any] | None,
        *,
        thread_limiter: trio.CapacityLimiter,
    ) -> GetPromptResult | InputRequiredResult:
        """Render prompt ``name``; unknown prompts and bad arguments raise -32602."""
        entry = self._prompts.get(name)
        if entry is None:
            raise InvalidParams(
                f"unknown prompt {name!r}; prompts/list shows the available prompts"
            )
        args = dict(arguments or {})
        declared = {a.name: a for a in entry.prompt.arguments or []}
        if unknown := sorted(set(args) - set(declared)):
            raise InvalidParams(
                f"prompt {name!r} has no argument(s) {', '.join(map(repr, unknown))};"
                f" it takes: {', '.join(declared) or 'none'}"
            )
        if missing := [a for a, spec in declared.items() if spec.required and a not in args]:
            raise InvalidParams(
                f"prompt {name!r} is missing required argument(s) {', '.join(map(repr, missing))}"
            )
        if bad := [k for k, v in args.items() if not isinstance(v, str)]:
            raise InvalidParams(
                f"prompt arguments are strings; {', '.join(map(repr, bad))} of prompt {name!r}"
                " is not"
            )
        if entry.is_async:
            value = await entry.fn(**args)
        else:
            value = await trio.to_thread.run_sync(
                partial(entry.fn, **args), limiter=thread_limiter, abandon_on_cancel=True
            )
        if isinstance(value, GetPromptResult | InputRequiredResult):
            return value
        return GetPromptResult(description=entry.prompt.description, messages=to_messages(value))


def _summary(fn: Callable[..., Any]) -> str | None:
    from .docstrings import parse_docstring

    return parse_docstring(inspect.getdoc(fn)).summary
