"""The 2026-07-28 HTTP request headers: value encoding and ``x-mcp-header`` (sans-IO).

One copy for both sides: the HTTP client builds ``Mcp-Name`` and ``Mcp-Param-{Name}``
headers with it and the server checks them with it. An ``x-mcp-header`` annotation may sit
on any property reached from the schema root through a chain of ``properties`` keys (the
specification's rule), so nested arguments are mirrored and checked alike.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any, Final, Protocol, TypeAlias

from .errors import HeaderMismatch

__all__ = [
    "X_MCP_HEADER",
    "HeaderLookup",
    "HeaderPaths",
    "check_param_headers",
    "decode_header_value",
    "encode_header_value",
    "header_text",
    "mcp_param_headers",
    "x_mcp_header_paths",
    "x_mcp_header_problem",
]

X_MCP_HEADER: Final = "x-mcp-header"
"""The ``inputSchema`` property annotation naming an ``Mcp-Param-{Name}`` header."""

_SENTINEL_PREFIX: Final = "=?base64?"
_SENTINEL_SUFFIX: Final = "?="
# RFC 9110 token: 1*tchar.
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_PRIMITIVES: Final = frozenset({"string", "integer", "boolean"})
# Keywords whose value is one subschema, a list of them, or a map of them (JSON Schema 2020-12
# plus the draft-07 spellings). Only ``properties`` keeps a schema statically reachable.
_ONE_SUBSCHEMA: Final = frozenset(
    {
        "additionalProperties",
        "items",
        "additionalItems",
        "contains",
        "not",
        "if",
        "then",
        "else",
        "propertyNames",
        "unevaluatedItems",
        "unevaluatedProperties",
        "contentSchema",
    }
)
_SUBSCHEMA_LIST: Final = frozenset({"allOf", "anyOf", "oneOf", "prefixItems", "items"})
_SUBSCHEMA_MAP: Final = frozenset(
    {"$defs", "definitions", "patternProperties", "dependentSchemas", "dependencies"}
)
HeaderPaths: TypeAlias = dict[tuple[str, ...], str]
"""Property path in a tool's arguments -> the ``x-mcp-header`` name mirroring it."""


def encode_header_value(value: str) -> str:
    """``value`` as an HTTP header value: as it is when that is safe, else ``=?base64?...?=``.

    Safe means printable ASCII (space allowed inside), no leading or trailing whitespace, and
    not itself looking like the base64 sentinel.
    """
    plain = (
        all(" " <= c <= "~" for c in value)
        and not value.startswith(" ")
        and not value.endswith(" ")
        and not (value.startswith(_SENTINEL_PREFIX) and value.endswith(_SENTINEL_SUFFIX))
    )
    if plain:
        return value
    return _SENTINEL_PREFIX + base64.b64encode(value.encode()).decode("ascii") + _SENTINEL_SUFFIX


def decode_header_value(raw: str) -> str:
    """The inverse of :func:`encode_header_value`.

    Raises :class:`~mcptrio.HeaderMismatch` (-32020) for a malformed or non-canonical
    ``=?base64?...?=`` value and for a plain value with control characters.
    """
    if not (
        len(raw) >= len(_SENTINEL_PREFIX) + len(_SENTINEL_SUFFIX)
        and raw.startswith(_SENTINEL_PREFIX)
        and raw.endswith(_SENTINEL_SUFFIX)
    ):
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw if c != "\t"):
            raise HeaderMismatch(f"header value {raw!r} contains control characters")
        return raw
    payload = raw[len(_SENTINEL_PREFIX) : -len(_SENTINEL_SUFFIX)]
    try:
        data = base64.b64decode(payload, validate=True)
        # Only the canonical encoding counts, so one header value has one meaning.
        if base64.b64encode(data).decode("ascii") == payload:
            return data.decode()
    except (binascii.Error, UnicodeDecodeError):
        pass
    raise HeaderMismatch(f"header value {raw!r} is not valid =?base64?...?= text")


def _schema_positions(root: Any) -> list[tuple[tuple[str, ...] | None, dict[str, Any]]]:
    """Every schema object in ``root`` with its ``properties`` path (None when reaching it
    takes any other keyword)."""
    found: list[tuple[tuple[str, ...] | None, dict[str, Any]]] = []
    stack: list[tuple[tuple[str, ...] | None, Any]] = [((), root)]
    while stack:
        path, node = stack.pop()
        if not isinstance(node, dict):
            continue
        found.append((path, node))
        for keyword, value in node.items():
            if keyword == "properties" and isinstance(value, dict):
                for name, sub in value.items():
                    stack.append(((*path, name) if path is not None else None, sub))
            elif keyword in _SUBSCHEMA_MAP and isinstance(value, dict):
                stack.extend((None, sub) for sub in value.values())
            elif keyword in _SUBSCHEMA_LIST and isinstance(value, list):
                stack.extend((None, sub) for sub in value)
            elif keyword in _ONE_SUBSCHEMA:
                stack.append((None, value))
    return found


def x_mcp_header_problem(input_schema: Any) -> str | None:
    """Why a tool's ``x-mcp-header`` annotations are invalid (spec 2026-07-28), or None.

    Each must be a non-empty RFC 9110 token, unique ignoring case, on a string, integer or
    boolean property reachable from the root through ``properties`` keys alone.
    """
    seen: dict[str, str] = {}
    for path, schema in _schema_positions(input_schema):
        if X_MCP_HEADER not in schema:
            continue
        if not path:
            return (
                f"{X_MCP_HEADER} is only allowed on a property reached from the schema root"
                " through 'properties' alone (not items, $defs, $ref, composition or conditions)"
            )
        where = ".".join(path)
        name = schema[X_MCP_HEADER]
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            return f"property {where!r}: {X_MCP_HEADER} {name!r} is not an HTTP header token"
        kind = schema.get("type")
        if not isinstance(kind, str) or kind not in _HEADER_PRIMITIVES:
            return (
                f"property {where!r}: {X_MCP_HEADER} needs type string, integer or boolean,"
                f" not {kind!r}"
            )
        other = seen.get(name.lower())
        if other is not None:
            return f"property {where!r}: {X_MCP_HEADER} {name!r} is also used by {other!r}"
        seen[name.lower()] = where
    return None


def x_mcp_header_paths(input_schema: Any) -> HeaderPaths:
    """The ``x-mcp-header`` annotations of a schema :func:`x_mcp_header_problem` accepts."""
    return {
        path: schema[X_MCP_HEADER]
        for path, schema in _schema_positions(input_schema)
        if path and isinstance(schema.get(X_MCP_HEADER), str)
    }


def header_text(value: Any) -> str | None:
    """How a header shows an argument value; None for a value that sends no header."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # an integer that went through a float (JSON allows 2.0)
    if isinstance(value, str):
        return value
    return None


def _argument_at(arguments: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = arguments
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def mcp_param_headers(paths: HeaderPaths, arguments: Mapping[str, Any]) -> dict[str, str]:
    """The ``Mcp-Param-{Name}`` headers for a ``tools/call`` with ``arguments``.

    A value that is absent, null, or not a string, integer or boolean sends no header.
    """
    headers: dict[str, str] = {}
    for path, name in paths.items():
        text = header_text(_argument_at(arguments, path))
        if text is not None:
            headers[f"Mcp-Param-{name}"] = encode_header_value(text)
    return headers


def _same(decoded: str, value: Any) -> bool:
    """True if a decoded header shows ``value`` (integers compare numerically)."""
    text = header_text(value)
    if text is None:
        return False
    if not isinstance(value, (bool, str)):
        try:
            return int(decoded) == int(text)
        except ValueError:
            return False
    return decoded == text


class HeaderLookup(Protocol):
    """Request headers by lower-case name (a dict, or the HTTP layer's ``Headers``)."""

    def get(self, name: str, /) -> str | None: ...


def check_param_headers(
    paths: HeaderPaths, arguments: Mapping[str, Any], headers: HeaderLookup
) -> None:
    """Check the ``Mcp-Param-{Name}`` headers of a ``tools/call`` against its arguments.

    ``headers`` has lower-case names. Raises :class:`~mcptrio.HeaderMismatch` for a header
    that is missing, present without its argument, or showing another value.
    """
    for path, name in paths.items():
        header = f"mcp-param-{name.lower()}"
        argument = ".".join(path)
        value = _argument_at(arguments, path)
        raw = headers.get(header)
        if header_text(value) is None:
            if raw is not None:
                raise HeaderMismatch(
                    f"header {header!r} is present but argument {argument!r} is not"
                )
            continue
        if raw is None:
            raise HeaderMismatch(f"header {header!r} is required: it mirrors argument {argument!r}")
        if not _same(decode_header_value(raw), value):
            raise HeaderMismatch(
                f"header {header!r} value {raw!r} does not match argument {argument!r}"
            )
