"""Sphinx configuration for the mcptrio documentation.

Build with ``sphinx-build -W --keep-going -b html docs docs/_build/html`` (``nox -s docs``).
Only Sphinx's own extensions are used and nothing is fetched from the network, so there
are no intersphinx mappings: names from trio and the standard library stay plain text.
"""

from __future__ import annotations

import ast
import inspect
import sys
import types
import typing
from pathlib import Path
from typing import Any

import attrs
from docutils import nodes
from sphinx.application import Sphinx
from sphinx.pycode import ModuleAnalyzer
from sphinx.util.docutils import SphinxDirective

ROOT = Path(__file__).resolve().parent.parent
# Document the package in this checkout, whether or not it is installed.
sys.path.insert(0, str(ROOT))

import mcptrio  # noqa: E402

project = "mcptrio"
author = "the mcptrio authors"
copyright = "the mcptrio authors"
version = release = mcptrio.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build"]
templates_path: list[str] = []

html_theme = "alabaster"
html_title = f"mcptrio {release}"
# Wide enough for the examples' 100-character lines.
html_theme_options = {"page_width": "1240px", "sidebar_width": "240px"}
html_static_path: list[str] = []

highlight_language = "python3"

# -- autodoc ------------------------------------------------------------------------------
#
# Base classes are shown only where they matter (the error classes, in api.rst).
# Every public name is documented exactly once, in api.rst, under its public path
# (``mcptrio.Server``, not ``mcptrio._server.server.Server``), so there are no duplicate object
# descriptions and no warning categories need to be suppressed.

autodoc_default_options = {
    "members": True,
    "member-order": "bysource",
}
autodoc_typehints = "signature"
autodoc_class_signature = "mixed"
# attrs-generated __init__ methods have no source to take defaults from; show the values.
autodoc_preserve_defaults = False

napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False


def _public_sources() -> dict[str, str]:
    """Map each name ``mcptrio/__init__.py`` re-exports to the private module defining it."""
    tree = ast.parse((ROOT / "mcptrio" / "__init__.py").read_text(encoding="utf-8"))
    sources: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            for alias in node.names:
                sources[alias.asname or alias.name] = f"mcptrio.{node.module}"
    return sources


_SOURCES = _public_sources()
_ORIGINAL: dict[str, list[str]] = {}


def _keep_original(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    if what in {"attribute", "data", "property"}:
        _ORIGINAL[name] = list(lines)


def _restore_original(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    # napoleon reads the first line of an attribute docstring as "type: description";
    # ours are plain sentences ("... (negative: killed by that signal)"), and the type
    # already comes from the annotation, so keep them as written.
    if name in _ORIGINAL:
        lines[:] = _ORIGINAL.pop(name)
    if what != "data":
        return
    module, _, attr = name.rpartition(".")
    if module == "mcptrio" and attr in _SOURCES:
        # A re-exported alias or constant: its comment docstring lives where it is defined.
        docs = ModuleAnalyzer.for_module(_SOURCES[attr]).find_attr_docs().get(("", attr))
        if docs:
            lines[:] = list(docs)
            return
    if lines and obj is not None and not isinstance(obj, type):
        inherited = (type(obj).__doc__ or "").strip().splitlines()
        if inherited and lines[0].strip() == inherited[0].strip():
            # The docstring of ``str`` or ``tuple`` says nothing about this constant.
            lines[:] = []


# -- the configuration reference -----------------------------------------------------------
#
# ``.. mcptrio-config:: http`` renders one section of :class:`mcptrio.Config` as a table,
# read from the attrs classes themselves: names, types, defaults, ranges and the attribute
# docstrings. A field added to a config class appears in docs/configuration.rst without
# anyone editing it; a field without a docstring fails the build.


def _toml(value: Any) -> str:
    """A default value as it would be written in TOML."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return repr(value)


def _type_text(tp: Any) -> str:
    if typing.get_origin(tp) is typing.Literal:
        return "one of " + ", ".join(f"``{_toml(choice)}``" for choice in typing.get_args(tp))
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        rest = [arg for arg in typing.get_args(tp) if arg is not type(None)]
        return " or ".join(_type_text(arg) for arg in rest) + ", optional"
    if typing.get_origin(tp) is tuple:
        return f"list of {_type_text(typing.get_args(tp)[0])}s"
    return {int: "integer", float: "number", bool: "boolean", str: "string"}.get(
        tp, getattr(tp, "__name__", repr(tp))
    )


def _range_text(field: attrs.Attribute[Any]) -> str:
    """The bounds a validator enforces, read from its closure (empty when it has none)."""
    if field.validator is None:
        return ""
    try:
        bounds = inspect.getclosurevars(field.validator).nonlocals
    except TypeError:  # not a plain function: instance_of(), optional(), ...
        return ""
    if bounds.get("bound") is not None:
        return f" ≥ {bounds['bound']}"
    if bounds.get("above") is not None:
        return f" > {bounds['above']:g}"
    if bounds.get("at_least") is not None:
        return f" ≥ {bounds['at_least']:g}"
    return ""


def _default_text(field: attrs.Attribute[Any]) -> str:
    value: Any = field.default
    factory = getattr(value, "factory", None)
    if callable(factory):  # attrs.Factory
        value = factory()
    text = f"``{_toml(value)}``" if value is not None else "unset"
    mebibytes = isinstance(value, int) and not isinstance(value, bool) and value >= 1 << 20
    if mebibytes and value % (1 << 20) == 0:
        text += f" ({value >> 20} MiB)"
    return text


class ConfigSection(SphinxDirective):
    """``.. mcptrio-config:: SECTION``: every field of one configuration section."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        from mcptrio._ops.config import ENV_PREFIX, Config

        section: str | None = self.arguments[0]
        standalone = getattr(mcptrio, str(section), None)
        cls: Any
        if isinstance(standalone, type) and attrs.has(standalone):
            # A config class of its own (not a section of Config), e.g. the HTTP client's.
            cls, section = standalone, None
        else:
            assert section is not None
            # A dotted name (``http.auth``) is a table nested in a section.
            cls = Config
            for part in section.split("."):
                sections = typing.get_type_hints(cls)
                if part not in sections:
                    raise self.error(
                        f"{cls.__name__} has no section {part!r}; it has {', '.join(sections)}"
                    )
                cls = sections[part]
                if typing.get_origin(cls) in (typing.Union, types.UnionType):
                    cls = next(arg for arg in typing.get_args(cls) if arg is not type(None))
                if not attrs.has(cls):
                    raise self.error(f"{section!r} is a setting, not a section")
        hints = typing.get_type_hints(cls)
        docs = ModuleAnalyzer.for_module(cls.__module__).find_attr_docs()
        public = getattr(mcptrio, cls.__name__, None) is cls
        name = f":class:`~mcptrio.{cls.__name__}`" if public else f"``{cls.__name__}``"
        intro = (
            f"The ``[{section}]`` table; in Python, {name} (``Config.{section}``)."
            if section is not None
            else f"In Python, {name}; in TOML, a file of these keys read with"
            f" ``load_config({cls.__name__}, path=..., env={{}})``."
        )
        lines = [
            intro,
            "",
            ".. list-table::",
            "   :header-rows: 1",
            "   :widths: 22 20 18 40",
            "",
            "   * - Key",
            "     - Type",
            "     - Default",
            "     - Meaning",
        ]
        for field in attrs.fields(cls):
            doc = [line.strip() for line in docs.get((cls.__name__, field.name), [])]
            if not any(doc):
                raise self.error(f"{cls.__name__}.{field.name} has no docstring to show here")
            default = (
                f"see ``[{section}.{field.name}]``"
                if section is not None and attrs.has(hints[field.name])
                else _default_text(field)
            )
            lines += [
                f"   * - ``{field.name}``",
                f"     - {_type_text(hints[field.name])}{_range_text(field)}",
                f"     - {default}",
                f"     - {' '.join(line for line in doc if line)}",
            ]
            if section is not None:
                env = f"{ENV_PREFIX}{section.replace('.', '__')}__{field.name}".upper()
                lines += ["", f"       Environment: ``{env}``"]
        self.state.document.settings.record_dependencies.add(inspect.getfile(cls))
        return self.parse_text_to_nodes("\n".join(lines))


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("autodoc-process-docstring", _keep_original, priority=100)
    app.connect("autodoc-process-docstring", _restore_original, priority=900)
    app.add_directive("mcptrio-config", ConfigSection)
    return {"parallel_read_safe": True}
