"""RFC 6570 URI templates, levels 1 to 3: expand values into a URI, match a URI back.

Resource templates (``resources/templates/list``) are RFC 6570 templates; a server routes
``resources/read`` to the template whose :meth:`UriTemplate.match` accepts the URI.
Supported: simple ``{x}``, reserved ``{+x}``, fragment ``{#x}``, label ``{.x}``, path
``{/x}``, path-parameter ``{;x}``, query ``{?x}`` and continuation ``{&x}`` expressions,
each with one or more comma-separated variables. Level 4 modifiers (``{x*}``,
``{x:3}``) are refused when the template is parsed. Sans-IO: no trio here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote

import attrs

__all__ = ["UriTemplate"]

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_RESERVED = frozenset(":/?#[]@!$&'()*+,;=")
_HEX = frozenset("0123456789abcdefABCDEF")
_VARNAME = re.compile(r"(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2})(?:\.?(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2}))*\Z")


@attrs.frozen
class _Operator:
    first: str
    sep: str
    named: bool
    ifemp: str
    reserved: bool  # reserved characters pass through unencoded (the "U+R" set)


_OPERATORS: dict[str, _Operator] = {
    "": _Operator("", ",", named=False, ifemp="", reserved=False),
    "+": _Operator("", ",", named=False, ifemp="", reserved=True),
    "#": _Operator("#", ",", named=False, ifemp="", reserved=True),
    ".": _Operator(".", ".", named=False, ifemp="", reserved=False),
    "/": _Operator("/", "/", named=False, ifemp="", reserved=False),
    ";": _Operator(";", ";", named=True, ifemp="", reserved=False),
    "?": _Operator("?", "&", named=True, ifemp="=", reserved=False),
    "&": _Operator("&", "&", named=True, ifemp="=", reserved=False),
}
_RESERVED_OPERATORS = frozenset("=,!@|")


@attrs.frozen
class _Expression:
    op: str
    names: tuple[str, ...]


class UriTemplate:
    """A parsed RFC 6570 template (levels 1-3).

    ``UriTemplate("file:///{+path}")`` raises :class:`ValueError` for a malformed template.
    """

    __slots__ = ("_parts", "_query_names", "_regex", "_slots", "template", "variables")

    def __init__(self, template: str) -> None:
        if not isinstance(template, str):
            raise TypeError(f"a URI template must be a str, not {type(template).__name__}")
        self.template = template
        self._parts: tuple[str | _Expression, ...] = tuple(_parse(template))
        names: dict[str, None] = {}
        for part in self._parts:
            if isinstance(part, _Expression):
                names.update(dict.fromkeys(part.names))
        self.variables: tuple[str, ...] = tuple(names)
        """Variable names in order of first appearance."""
        self._regex, self._slots, self._query_names = _matcher(self._parts)

    @property
    def is_template(self) -> bool:
        """False when the template has no expressions, i.e. it is a plain URI."""
        return bool(self.variables)

    def expand(self, values: Mapping[str, Any]) -> str:
        """Expand with ``values``: str, int, float, bool, a list of those, or a mapping.

        Missing variables, ``None`` and empty lists or mappings are undefined and left out
        as RFC 6570 says; lists expand comma-separated.
        """
        out: list[str] = []
        for part in self._parts:
            if isinstance(part, str):
                out.append(part)
                continue
            op = _OPERATORS[part.op]
            pieces: list[str] = []
            for name in part.names:
                piece = _expand_value(name, values.get(name), op)
                if piece is not None:
                    pieces.append(piece)
            if pieces:
                out.append(op.first + op.sep.join(pieces))
        return "".join(out)

    def match(self, uri: str) -> dict[str, str] | None:
        """The percent-decoded variable values if ``uri`` fits this template, else None.

        ``{x}`` matches one or more characters other than ``/``, ``?`` and ``#``;
        ``{+x}`` and ``{#x}`` may span them. Variables that a URI leaves out (optional
        ``{/x}``, ``{?x}`` ...) are absent from the result. Query expressions at the end
        of the template match their parameters in any order and ignore unknown ones.
        """
        found = self._regex.fullmatch(uri)
        if found is None:
            return None
        result: dict[str, str] = {}
        for group, (name, presence) in self._slots.items():
            raw = found.group(group)
            if raw is None:
                if presence is None or found.group(presence) is None:
                    continue
                raw = ""
            value = unquote(raw)
            if result.setdefault(name, value) != value:
                return None  # the same variable twice, with different values
        if self._query_names:
            query = found.group("query")
            for pair in query.split("&") if query else ():
                key, has_value, raw = pair.partition("=")
                name = unquote(key)
                if name in self._query_names and name not in result:
                    result[name] = unquote(raw) if has_value else ""
        return result

    def __eq__(self, other: object) -> bool:
        if isinstance(other, UriTemplate):
            return self.template == other.template
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.template)

    def __str__(self) -> str:
        return self.template

    def __repr__(self) -> str:
        return f"UriTemplate({self.template!r})"


def _parse(template: str) -> list[str | _Expression]:
    parts: list[str | _Expression] = []
    pos = 0
    while pos < len(template):
        start = template.find("{", pos)
        close = template.find("}", pos)
        if close != -1 and (start == -1 or close < start):
            raise ValueError(f"unmatched '}}' at position {close} in URI template {template!r}")
        if start == -1:
            parts.append(_encode_literal(template[pos:]))
            break
        if start > pos:
            parts.append(_encode_literal(template[pos:start]))
        end = template.find("}", start)
        if end == -1:
            raise ValueError(f"unclosed '{{' at position {start} in URI template {template!r}")
        body = template[start + 1 : end]
        if "{" in body:
            raise ValueError(f"nested '{{' at position {start} in URI template {template!r}")
        parts.append(_parse_expression(body, template))
        pos = end + 1
    return parts


def _parse_expression(body: str, template: str) -> _Expression:
    where = f"in expression {{{body}}} of URI template {template!r}"
    if not body:
        raise ValueError(f"empty expression {{}} in URI template {template!r}")
    op = body[0] if body[0] in _OPERATORS or body[0] in _RESERVED_OPERATORS else ""
    if op in _RESERVED_OPERATORS:
        raise ValueError(f"operator {op!r} is reserved by RFC 6570 {where}")
    names = tuple(body[len(op) :].split(","))
    for name in names:
        if name.endswith("*") or ":" in name:
            raise ValueError(f"level 4 modifiers ('*', ':n') are not supported: {name!r} {where}")
        if not _VARNAME.match(name):
            raise ValueError(f"invalid variable name {name!r} {where}")
    return _Expression(op, names)


def _encode(text: str, *, reserved: bool) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char in _UNRESERVED or (reserved and char in _RESERVED):
            out.append(char)
        elif (
            reserved and char == "%" and text[i + 1 : i + 2] in _HEX and text[i + 2 : i + 3] in _HEX
        ):
            out.append(text[i : i + 3])  # an existing pct-encoded triplet passes through
            i += 3
            continue
        else:
            out.append("".join(f"%{byte:02X}" for byte in char.encode("utf-8")))
        i += 1
    return "".join(out)


def _encode_literal(text: str) -> str:
    return _encode(text, reserved=True)


def _to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise TypeError(f"cannot expand a {type(value).__name__} into a URI template")


def _expand_value(name: str, value: Any, op: _Operator) -> str | None:
    """One variable's contribution to an expression, or None when it is undefined."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        if not value:
            return None
        joined = ",".join(
            f"{_encode(_to_text(k), reserved=op.reserved)},"
            f"{_encode(_to_text(v), reserved=op.reserved)}"
            for k, v in value.items()
        )
        return f"{name}={joined}" if op.named else joined
    if isinstance(value, Sequence) and not isinstance(value, str):
        if not value:
            return None
        joined = ",".join(_encode(_to_text(item), reserved=op.reserved) for item in value)
        return f"{name}={joined}" if op.named else joined
    text = _to_text(value)
    if op.named:
        return name + op.ifemp if text == "" else f"{name}={_encode(text, reserved=op.reserved)}"
    return _encode(text, reserved=op.reserved)


# Characters a variable's value may span when matching, per operator. Encoded values never
# hold reserved characters, but clients do not always encode, so simple {x} only stops at
# "/", "?" and "#". A lone variable may hold its operator's separator (a list expanded into
# one variable); in a list of variables each value stops at it.
_SINGLE_VALUE = {
    "": "[^/?#]",
    "+": ".",
    "#": ".",
    ".": "[^/?#;]",
    "/": "[^/?#;]",
    ";": "[^;/?#]",
    "?": "[^&#]",
    "&": "[^&#]",
}
_LIST_VALUE = {
    "": "[^/?#,]",
    "+": "[^,]",
    "#": "[^,]",
    ".": "[^/?#;.]",
    "/": "[^/?#;]",
    ";": "[^;/?#]",  # named: a comma is part of a list value, not a separator
    "?": "[^&#]",
    "&": "[^&#]",
}


def _matcher(
    parts: tuple[str | _Expression, ...],
) -> tuple[re.Pattern[str], dict[str, tuple[str, str | None]], frozenset[str]]:
    """A regex for the template, its value groups (group -> (name, presence group)), and
    the variables read from a trailing query string instead of from groups."""
    slots: dict[str, tuple[str, str | None]] = {}
    # Trailing {?..}{&..} expressions match as a query string, parameters in any order.
    tail = len(parts)
    while tail > 0 and isinstance(parts[tail - 1], _Expression):
        expression = parts[tail - 1]
        assert isinstance(expression, _Expression)
        if expression.op not in ("?", "&"):
            break
        tail -= 1
    query_names: frozenset[str] = frozenset()
    head = parts
    if tail < len(parts):
        first = parts[tail]
        literal_has_query = any(isinstance(p, str) and "?" in p for p in parts[:tail])
        if isinstance(first, _Expression) and first.op == "?" and not literal_has_query:
            query_names = frozenset(
                name for p in parts[tail:] if isinstance(p, _Expression) for name in p.names
            )
            head = parts[:tail]

    def group(name: str, presence: str | None = None) -> str:
        key = f"g{len(slots)}"
        slots[key] = (name, presence)
        return key

    pattern: list[str] = []
    for part in head:
        if isinstance(part, str):
            pattern.append(re.escape(part))
            continue
        op = _OPERATORS[part.op]
        value = (_SINGLE_VALUE if len(part.names) == 1 else _LIST_VALUE)[part.op]
        if op.named:
            # Each variable is optional; ";x" without "=" means the empty string.
            lead = "[?&]" if part.op == "?" else re.escape(op.first)
            pieces = []
            for name in part.names:
                presence = f"p{len(slots)}"
                key = group(name, presence)
                pieces.append(f"(?P<{presence}>{lead}{re.escape(name)}(?:=(?P<{key}>{value}*))?)?")
            pattern.append("".join(pieces))
        elif part.op in (".", "/"):
            sep = re.escape(op.sep)
            pattern.append("".join(f"(?:{sep}(?P<{group(n)}>{value}*))?" for n in part.names))
        else:
            # Simple, reserved and fragment: the first variable is the one that is present.
            first, *rest = part.names
            body = f"(?P<{group(first)}>{value}+)" + "".join(
                f"(?:,(?P<{group(n)}>{value}*))?" for n in rest
            )
            pattern.append(f"(?:#{body})?" if part.op == "#" else body)
    if query_names:
        pattern.append(r"(?:\?(?P<query>[^#]*))?")
    return re.compile("".join(pattern), re.DOTALL), slots, query_names
