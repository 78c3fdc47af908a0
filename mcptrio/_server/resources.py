"""Resource registry: static resources, URI templates, and reading them."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import attrs
import trio

from .._protocol.content import json_text
from .._protocol.errors import MCPError
from .._protocol.uritemplate import UriTemplate
from ..types import (
    Annotations,
    BlobResourceContents,
    Icon,
    InputRequiredResult,
    ReadResourceResult,
    Resource,
    ResourceTemplate,
    TextResourceContents,
)
from .tools import _is_async

__all__ = ["ResourceNotFoundError", "ResourceRegistry"]

ResourceContents = TextResourceContents | BlobResourceContents


class ResourceNotFoundError(LookupError):
    """No static resource or template matches the URI (mapped to the era's error code)."""

    def __init__(self, uri: str) -> None:
        super().__init__(f"resource {uri!r} not found")
        self.uri = uri


@attrs.frozen
class _Static:
    resource: Resource
    fn: Callable[..., Any]
    is_async: bool


@attrs.frozen
class _Template:
    template: ResourceTemplate
    uri_template: UriTemplate
    fn: Callable[..., Any]
    is_async: bool
    converters: dict[str, Callable[[str], Any]]


def _converters(
    fn: Callable[..., Any], variables: Sequence[str]
) -> dict[str, Callable[[str], Any]]:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return dict.fromkeys(variables, str)
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    hints: dict[str, Any] = {}
    try:
        import typing

        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {}
    out: dict[str, Callable[[str], Any]] = {}
    for var in variables:
        if var not in params and not accepts_any:
            raise ValueError(
                f"resource template variable {{{var}}} has no parameter named {var!r} in"
                f" {getattr(fn, '__qualname__', fn)!r}"
            )
        hint = hints.get(var, str)
        out[var] = hint if hint in (int, float) else str
    for name, param in params.items():
        if (
            name not in variables
            and param.default is inspect.Parameter.empty
            and param.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
        ):
            raise ValueError(
                f"parameter {name!r} of {getattr(fn, '__qualname__', fn)!r} is not a variable of"
                " the resource template and has no default"
            )
    return out


def to_contents(uri: str, mime_type: str | None, value: Any) -> list[ResourceContents]:
    """Turn a resource handler's return value into resource contents."""
    if isinstance(value, ReadResourceResult):
        return list(value.contents)
    if isinstance(value, TextResourceContents | BlobResourceContents):
        return [value]
    if isinstance(value, str):
        return [TextResourceContents(uri=uri, text=value, mime_type=mime_type or "text/plain")]
    if isinstance(value, bytes | bytearray):
        return [
            BlobResourceContents(
                uri=uri, blob=bytes(value), mime_type=mime_type or "application/octet-stream"
            )
        ]
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, TextResourceContents | BlobResourceContents) for v in value)
    ):
        return list(value)
    return [
        TextResourceContents(
            uri=uri, text=json_text(value), mime_type=mime_type or "application/json"
        )
    ]


class ResourceRegistry:
    """Static resources by URI and templates in registration order."""

    def __init__(self) -> None:
        self._static: dict[str, _Static] = {}
        self._templates: dict[str, _Template] = {}

    def add(
        self,
        fn: Callable[..., Any],
        uri: str,
        *,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        mime_type: str | None = None,
        size: int | None = None,
        annotations: Annotations | None = None,
        icons: Sequence[Icon] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        """Register ``fn`` for ``uri`` (a URI template when it has ``{variables}``)."""
        template = UriTemplate(uri)
        resource_name = name or getattr(fn, "__name__", None) or uri
        doc = description if description is not None else inspect.getdoc(fn)
        icon_list = list(icons) if icons is not None else None
        if template.is_template:
            if uri in self._templates:
                raise ValueError(f"a resource template {uri!r} is already registered")
            self._templates[uri] = _Template(
                template=ResourceTemplate(
                    uri_template=uri,
                    name=resource_name,
                    title=title,
                    description=doc,
                    mime_type=mime_type,
                    annotations=annotations,
                    icons=icon_list,
                    meta=meta,
                ),
                uri_template=template,
                fn=fn,
                is_async=_is_async(fn),
                converters=_converters(fn, template.variables),
            )
            return
        if uri in self._static:
            raise ValueError(f"a resource {uri!r} is already registered")
        self._static[uri] = _Static(
            resource=Resource(
                uri=uri,
                name=resource_name,
                title=title,
                description=doc,
                mime_type=mime_type,
                size=size,
                annotations=annotations,
                icons=icon_list,
                meta=meta,
            ),
            fn=fn,
            is_async=_is_async(fn),
        )

    def remove(self, uri: str) -> None:
        """Unregister a resource or template by its URI (template)."""
        if self._static.pop(uri, None) is None and self._templates.pop(uri, None) is None:
            raise KeyError(uri)

    def resources(self) -> list[Resource]:
        """Static resources in registration order."""
        return [entry.resource for entry in self._static.values()]

    def templates(self) -> list[ResourceTemplate]:
        """Resource templates in registration order."""
        return [entry.template for entry in self._templates.values()]

    def templates_with_patterns(self) -> list[tuple[ResourceTemplate, UriTemplate]]:
        """Templates with their parsed patterns (for completion)."""
        return [(e.template, e.uri_template) for e in self._templates.values()]

    async def read(
        self, uri: str, *, thread_limiter: trio.CapacityLimiter
    ) -> ReadResourceResult | InputRequiredResult:
        """Read ``uri``: an exact static match first, then the first matching template."""
        static = self._static.get(uri)
        if static is not None:
            value = await _call(static.fn, static.is_async, {}, thread_limiter)
            if isinstance(value, InputRequiredResult):
                return value
            return ReadResourceResult(contents=to_contents(uri, static.resource.mime_type, value))
        for entry in self._templates.values():
            values = entry.uri_template.match(uri)
            if values is None:
                continue
            try:
                kwargs = {k: entry.converters.get(k, str)(v) for k, v in values.items()}
            except ValueError:
                continue
            value = await _call(entry.fn, entry.is_async, kwargs, thread_limiter)
            if isinstance(value, InputRequiredResult):
                return value
            contents = to_contents(uri, entry.template.mime_type, value)
            if not contents:
                raise ResourceNotFoundError(uri)
            return ReadResourceResult(contents=contents)
        raise ResourceNotFoundError(uri)


async def _call(
    fn: Callable[..., Any],
    is_async: bool,
    kwargs: dict[str, Any],
    limiter: trio.CapacityLimiter,
) -> Any:
    try:
        if is_async:
            return await fn(**kwargs)
        return await trio.to_thread.run_sync(
            partial(fn, **kwargs), limiter=limiter, abandon_on_cancel=True
        )
    except (MCPError, ResourceNotFoundError):
        raise
    except FileNotFoundError as exc:
        raise ResourceNotFoundError(str(exc.filename or exc)) from exc
