"""Docstring parsing: a summary, per-parameter descriptions and a returns description.

Tools and prompts take their description from the function's docstring, and their
parameter descriptions from its parameter section. Google (``Args:``), Sphinx
(``:param x:``) and NumPy (``Parameters`` + dashes) styles are understood, also mixed.
Sans-IO: no trio here.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping

import attrs

__all__ = ["Docstring", "parse_docstring"]


@attrs.frozen
class Docstring:
    """A parsed docstring.

    ``summary`` is the descriptive text with the parameter and returns sections removed
    (other sections such as ``Raises:`` or ``Examples:`` stay); ``params`` maps a
    parameter (or, for classes, attribute) name to its description; ``returns``
    describes the return value.
    """

    summary: str | None = None
    params: Mapping[str, str] = attrs.field(factory=dict)
    returns: str | None = None


_PARAM_SECTIONS = frozenset(
    {
        "args",
        "arguments",
        "parameters",
        "params",
        "keyword args",
        "keyword arguments",
        "other parameters",
        "attributes",
    }
)
_RETURN_SECTIONS = frozenset({"returns", "return", "yields", "yield"})
_ALL_SECTIONS = _PARAM_SECTIONS | _RETURN_SECTIONS
# A Google section header: "Args:" alone on its line.
_GOOGLE_HEADER = re.compile(r"^([A-Za-z][A-Za-z ]*?)\s*:\s*$")
_NUMPY_UNDERLINE = re.compile(r"^\s*-{3,}\s*$")
# Google entry: "name (type): text", "name: text", "*args: text".
_GOOGLE_ENTRY = re.compile(r"^\*{0,2}([A-Za-z_]\w*)\s*(?:\([^)]*\))?\s*:(?:\s+(.*))?$")
# NumPy entry: "name : type", "x, y : int", or a bare "name".
_NUMPY_ENTRY = re.compile(r"^\*{0,2}([A-Za-z_]\w*(?:\s*,\s*\*{0,2}[A-Za-z_]\w*)*)\s*(?::\s*(.*))?$")
# Sphinx field: ":param int x: text", ":returns: text", ":rtype: int".
_SPHINX_FIELD = re.compile(r"^:([A-Za-z]+)((?:\s+[^:]+?)?)\s*:(?:\s+(.*))?$")
_SPHINX_PARAM_FIELDS = frozenset(
    {"param", "parameter", "arg", "argument", "key", "keyword", "ivar", "var", "cvar"}
)
_SPHINX_RETURN_FIELDS = frozenset({"returns", "return", "yields", "yield"})
# "Returns:\n    int: The total." -- a leading "type:" is dropped from the text.
_TYPE_PREFIX = re.compile(r"^[\w.\[\], |]+?:\s+(?=\S)")
_LIST_ITEM = re.compile(r"^(?:[-*+\u2022]|\d+[.)])\s")


def parse_docstring(doc: str | None) -> Docstring:
    """Parse ``doc`` (as ``inspect.cleandoc`` would clean it) into a :class:`Docstring`."""
    if doc is None or not doc.strip():
        return Docstring()
    lines = inspect.cleandoc(doc).splitlines()
    kept: list[str] = []
    params: dict[str, str] = {}
    returns: list[str] = []
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        stripped = line.strip()
        indent = _indent(line)
        # NumPy section: a known name underlined with dashes.
        if stripped.lower() in _ALL_SECTIONS and i + 1 < n and _NUMPY_UNDERLINE.match(lines[i + 1]):
            end = _block_end(lines, i + 2, indent, numpy=True)
            body = lines[i + 2 : end]
            if stripped.lower() in _PARAM_SECTIONS:
                params.update(_numpy_entries(body))
            else:
                returns.extend(_numpy_returns(body))
            i = end
            continue
        header = _GOOGLE_HEADER.match(stripped)
        if header and header.group(1).lower() in _ALL_SECTIONS:
            end = _block_end(lines, i + 1, indent, numpy=False)
            body = lines[i + 1 : end]
            if header.group(1).lower() in _PARAM_SECTIONS:
                params.update(_google_entries(body))
            else:
                returns.append(_TYPE_PREFIX.sub("", _unwrap(body), count=1))
            i = end
            continue
        field = _SPHINX_FIELD.match(stripped)
        if field:
            end = i + 1
            while end < n and lines[end].strip() and _indent(lines[end]) > indent:
                end += 1
            text = _unwrap([field.group(3) or "", *lines[i + 1 : end]])
            kind = field.group(1).lower()
            words = field.group(2).split()
            if kind in _SPHINX_PARAM_FIELDS and words:
                params[words[-1].lstrip("*")] = text
            elif kind in _SPHINX_RETURN_FIELDS:
                returns.append(text)
            # Other fields (:raises:, :type:, :rtype:, ...) are markup, not description.
            i = end
            continue
        kept.append(line)
        i += 1
    summary = _join_kept(kept)
    ret = "\n\n".join(r for r in returns if r) or None
    return Docstring(summary=summary, params={k: v for k, v in params.items() if v}, returns=ret)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _block_end(lines: list[str], start: int, header_indent: int, *, numpy: bool) -> int:
    """Index just past a section body that starts at ``start``."""
    end = start
    n = len(lines)
    while end < n:
        line = lines[end]
        if line.strip():
            if numpy:
                # A NumPy section runs until the next underlined header.
                if end + 1 < n and _NUMPY_UNDERLINE.match(lines[end + 1]):
                    break
            elif _indent(line) <= header_indent:
                break
        end += 1
    # Trailing blank lines belong to the text that follows.
    while end > start and not lines[end - 1].strip():
        end -= 1
    return end


def _google_entries(body: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    if not body:
        return out
    base = min(_indent(line) for line in body if line.strip())
    name: str | None = None
    text: list[str] = []
    for line in body:
        if line.strip() and _indent(line) == base:
            match = _GOOGLE_ENTRY.match(line.strip())
            if match:
                if name is not None:
                    out[name] = _unwrap(text)
                name, text = match.group(1), [match.group(2) or ""]
                continue
        text.append(line)
    if name is not None:
        out[name] = _unwrap(text)
    return out


def _numpy_entries(body: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    if not body:
        return out
    base = min(_indent(line) for line in body if line.strip())
    names: list[str] = []
    text: list[str] = []

    def flush() -> None:
        for entry in names:
            out[entry] = _unwrap(text)

    for line in body:
        if line.strip() and _indent(line) == base:
            match = _NUMPY_ENTRY.match(line.strip())
            if match:
                flush()
                names = [part.strip().lstrip("*") for part in match.group(1).split(",")]
                text = []
                continue
        text.append(line)
    flush()
    return out


def _numpy_returns(body: list[str]) -> list[str]:
    """NumPy returns: "type" or "name : type" lines, each with an indented description."""
    if not body:
        return []
    base = min(_indent(line) for line in body if line.strip())
    descriptions: list[str] = []
    current: list[str] = []
    for line in body:
        if line.strip() and _indent(line) == base:
            if current:
                descriptions.append(_unwrap(current))
            current = []
            continue
        current.append(line)
    if current:
        descriptions.append(_unwrap(current))
    return [d for d in descriptions if d]


def _unwrap(lines: list[str]) -> str:
    """Join wrapped lines with spaces; keep paragraph breaks and list items on new lines."""
    paragraphs: list[list[str]] = [[]]
    for raw in lines:
        line = raw.strip()
        if not line:
            if paragraphs[-1]:
                paragraphs.append([])
            continue
        if _LIST_ITEM.match(line) and paragraphs[-1]:
            paragraphs[-1].append("\n" + line)
        else:
            paragraphs[-1].append(line)
    texts = [" ".join(p).replace(" \n", "\n") for p in paragraphs if p]
    return "\n\n".join(texts)


def _join_kept(kept: list[str]) -> str | None:
    # Removing a section can leave runs of blank lines behind.
    out: list[str] = []
    for line in kept:
        if not line.strip():
            if out and out[-1] == "":
                continue
            out.append("")
        else:
            out.append(line.rstrip())
    text = "\n".join(out).strip()
    return text or None
