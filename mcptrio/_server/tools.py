"""Tool registry: functions turned into MCP tools, argument validation, result shaping."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Literal

import attrs
import trio

from .._protocol.content import CONTENT_TYPES, is_content_block, json_text, to_content_blocks
from .._protocol.converter import to_wire
from .._protocol.errors import InvalidParams, MCPError
from ..types import (
    CallToolResult,
    Icon,
    InputRequiredResult,
    TextContent,
    Tool,
    ToolAnnotations,
)
from .input_required import InputRequired
from .schema import OutputSpec, ToolSignature, signature_for
from .validation import SchemaValidator, check_schema, compile_validator

__all__ = ["ToolEntry", "ToolError", "ToolRegistry"]

_NAME = re.compile(r"^[A-Za-z0-9_.\-/]{1,128}$")


class ToolError(Exception):
    """Raise in a tool to return an error result (``isError: true``) with this message.

    Any other exception does the same; raise :class:`~mcptrio.MCPError` instead to
    answer with a JSON-RPC protocol error.
    """


@attrs.frozen
class ToolEntry:
    """A registered tool: its wire description and how to call it."""

    tool: Tool
    fn: Callable[..., Any]
    signature: ToolSignature
    is_async: bool
    task: Literal["optional", "required"] | None = None
    """How the tool runs as a task of the tasks extension (None: never)."""
    defer_task: bool = False
    """The task begins when the tool calls ``begin_task()``, not before the tool runs."""

    @property
    def output(self) -> OutputSpec | None:
        """How the return value becomes ``structuredContent`` (None: content only)."""
        return self.signature.output

    @functools.cached_property
    def input_validator(self) -> SchemaValidator:
        """The compiled ``inputSchema`` (kept here: finding it by schema costs per call)."""
        return compile_validator(self.tool.input_schema)

    @functools.cached_property
    def output_validator(self) -> SchemaValidator | None:
        """The compiled output schema, when the tool has one."""
        output = self.signature.output
        return compile_validator(output.schema) if output is not None else None


def _is_async(fn: Callable[..., Any]) -> bool:
    while isinstance(fn, partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004
    )


class ToolRegistry:
    """The tools of one server, in registration order."""

    def __init__(self) -> None:
        self._tools: dict[str, ToolEntry] = {}
        self._wire: list[dict[str, Any]] | None = None

    def add(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        annotations: ToolAnnotations | None = None,
        icons: Sequence[Icon] | None = None,
        meta: dict[str, Any] | None = None,
        input_schema: dict[str, Any] | None = None,
        output_schema: dict[str, Any] | None = None,
        structured_output: bool | None = None,
        task: Literal["optional", "required"] | None = None,
        defer_task: bool = False,
        replace: bool = False,
    ) -> ToolEntry:
        """Register ``fn`` as a tool; see :meth:`mcptrio.Server.tool`."""
        if task not in (None, "optional", "required"):
            raise ValueError(f"task must be 'optional', 'required' or None, not {task!r}")
        if defer_task and task is None:
            raise ValueError("defer_task=True needs task='optional' or task='required'")
        tool_name = name or getattr(fn, "__name__", None)
        if not tool_name or not _NAME.match(tool_name):
            raise ValueError(
                f"invalid tool name {tool_name!r}: use 1-128 characters from A-Z a-z 0-9 _ . - /"
            )
        if tool_name in self._tools and not replace:
            raise ValueError(f"a tool named {tool_name!r} is already registered")
        # An input request is a round trip, not output: it never shapes outputSchema.
        signature = signature_for(
            fn, content_types=(*CONTENT_TYPES, CallToolResult, InputRequiredResult)
        )
        schema = input_schema if input_schema is not None else signature.input_schema
        if problems := check_schema(schema):
            raise ValueError(f"tool {tool_name!r}: invalid input schema: {'; '.join(problems)}")
        output = signature.output
        if structured_output is False:
            output = None
        elif output_schema is not None:
            output = OutputSpec(schema=output_schema, wrapped=False)
        if structured_output and output is None:
            raise ValueError(
                f"tool {tool_name!r}: structured_output=True needs a return annotation"
                " or output_schema="
            )
        if output is not None and (problems := check_schema(output.schema)):
            raise ValueError(f"tool {tool_name!r}: invalid output schema: {'; '.join(problems)}")
        signature = attrs.evolve(signature, input_schema=schema, output=output)
        out_schema = output.schema if output is not None else None
        tool = Tool(
            name=tool_name,
            title=title,
            description=description if description is not None else signature.description,
            input_schema=schema,
            output_schema=out_schema,
            annotations=annotations,
            icons=list(icons) if icons is not None else None,
            meta=meta,
        )
        entry = ToolEntry(
            tool=tool,
            fn=fn,
            signature=signature,
            is_async=_is_async(fn),
            task=task,
            defer_task=defer_task,
        )
        self._tools[tool_name] = entry
        self._wire = None
        return entry

    def remove(self, name: str) -> None:
        """Unregister a tool; ``KeyError`` if there is none by that name."""
        del self._tools[name]
        self._wire = None

    def get(self, name: str) -> ToolEntry | None:
        """The tool registered under ``name``."""
        return self._tools.get(name)

    def __len__(self) -> int:
        return len(self._tools)

    def wire_list(self) -> list[dict[str, Any]]:
        """Every tool's wire form, in registration order (cached until the registry changes)."""
        if self._wire is None:
            self._wire = [to_wire(entry.tool) for entry in self._tools.values()]
        return self._wire

    async def call(
        self,
        name: str,
        arguments: dict[str, Any] | None,
        *,
        thread_limiter: trio.CapacityLimiter,
    ) -> CallToolResult | InputRequiredResult | dict[str, Any]:
        """Validate arguments, run the tool and shape its result (see :func:`shape_result`).

        Unknown tools raise :class:`InvalidParams`; invalid arguments and failures inside
        the tool become ``isError`` results (SEP-1303), so the model can correct itself.
        """
        entry = self._tools.get(name)
        if entry is None:
            raise InvalidParams(f"unknown tool {name!r}; tools/list shows the available tools")
        args = arguments if arguments is not None else {}
        if errors := entry.input_validator.errors(args):
            return _error_result(f"invalid arguments for tool {name!r}: " + "; ".join(errors))
        try:
            bound_args, bound_kwargs = entry.signature.bind(args)
        except (TypeError, ValueError) as exc:
            return _error_result(f"invalid arguments for tool {name!r}: {exc}")
        try:
            if entry.is_async:
                value = await entry.fn(*bound_args, **bound_kwargs)
            else:
                value = await trio.to_thread.run_sync(
                    partial(entry.fn, *bound_args, **bound_kwargs),
                    limiter=thread_limiter,
                    abandon_on_cancel=True,
                )
        except (MCPError, InputRequired):
            raise
        except ToolError as exc:
            return _error_result(str(exc))
        except Exception as exc:
            return _error_result(f"tool {name!r} failed: {type(exc).__name__}: {exc}")
        return shape_result(entry, value)


def _is_content(value: Any) -> bool:
    if is_content_block(value):
        return True
    # A list of plain strings is data (e.g. ``list[str]`` output), not content.
    return (
        isinstance(value, list | tuple)
        and any(is_content_block(item) for item in value)
        and all(is_content_block(item) or isinstance(item, str) for item in value)
    )


def _error_result(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(text=message)], is_error=True)


def shape_result(
    entry: ToolEntry, value: Any
) -> CallToolResult | InputRequiredResult | dict[str, Any]:
    """The ``CallToolResult`` for a tool's return value (an input request passes through).

    The commonest answer, one text block without structured content, comes as its wire
    dict straight away.
    """
    output = entry.output
    if type(value) is str and output is None:
        return {"content": [{"type": "text", "text": value}]}
    if isinstance(value, CallToolResult | InputRequiredResult):
        return value
    if output is None or _is_content(value):
        return CallToolResult(content=to_content_blocks(value))
    structured = output.to_structured(value)
    validator = entry.output_validator
    assert validator is not None  # there is an output spec
    errors = validator.errors(structured)
    if errors:
        raise MCPError(
            f"tool {entry.tool.name!r} returned a value that does not match its output schema: "
            + "; ".join(errors)
        )
    return CallToolResult(
        content=[TextContent(text=json_text(structured))], structured_content=structured
    )
