"""The package's layout: wings with one-way dependencies, a sans-IO protocol wing, the public faces.

The package is laid out in wings (private subpackages), each importing only wings below it:

    _protocol  <  _ops  <  _runtime  <  _transports  <  _state  <  _auth  <  _intercept
    <  _server  <  _client  <  the public faces (mcptrio, mcptrio.testing)
    <  _app (command line, __main__)

``mcptrio.types`` is the public face of the protocol wing's wire types and belongs to it.
Imports are read from the source with ``ast``, including those inside functions and under
``TYPE_CHECKING``: an import that only a type checker follows still ties two modules together.
"""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import attrs

import mcptrio
import mcptrio.testing
import mcptrio.types

PACKAGE = Path(mcptrio.__file__).parent

# Bottom to top. A module belongs to the first wing whose prefix it has.
WINGS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("protocol", ("mcptrio._protocol", "mcptrio.types")),
    ("ops", ("mcptrio._ops",)),
    ("runtime", ("mcptrio._runtime",)),
    ("transports", ("mcptrio._transports",)),
    ("state", ("mcptrio._state",)),
    ("auth", ("mcptrio._auth",)),
    ("intercept", ("mcptrio._intercept",)),
    ("server", ("mcptrio._server",)),
    ("client", ("mcptrio._client",)),
    ("faces", ("mcptrio.testing", "mcptrio")),
    ("app", ("mcptrio._app", "mcptrio.__main__")),
)
RANK = {name: rank for rank, (name, _) in enumerate(WINGS)}


@attrs.frozen
class Import:
    """One import of a module of the package by another."""

    source: str
    target: str
    line: int

    def __str__(self) -> str:
        path = self.source.replace(".", "/")
        return f"{path}.py:{self.line} imports {self.target}"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


MODULES = all_modules()


def imports_of(name: str, path: Path) -> Iterator[Import]:
    """Every import of a package module in ``path``, wherever it stands in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            if not module.startswith("mcptrio"):
                continue
            for alias in node.names:
                # ``from . import types`` imports a module; ``from .x import Y`` a name in x.
                candidate = f"{module}.{alias.name}"
                yield Import(name, candidate if candidate in MODULES else module, node.lineno)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("mcptrio"):
                    yield Import(name, alias.name, node.lineno)


def wing_of(module: str) -> str:
    for wing, prefixes in WINGS:
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                return wing
    raise AssertionError(f"{module} belongs to no wing; add it to WINGS in {__file__}")


def all_imports() -> list[Import]:
    return [imp for name, path in MODULES.items() for imp in imports_of(name, path)]


def test_every_module_has_a_wing() -> None:
    for name in MODULES:
        wing_of(name)


def test_the_wings_import_only_downwards() -> None:
    upward = [
        f"{imp} ({wing_of(imp.source)} may not import {wing_of(imp.target)})"
        for imp in all_imports()
        if RANK[wing_of(imp.target)] > RANK[wing_of(imp.source)]
    ]
    assert upward == [], "imports against the order of the wings:\n" + "\n".join(upward)


def test_the_import_reader_sees_function_level_and_type_checking_imports() -> None:
    found = {(imp.source, imp.target) for imp in all_imports()}
    # Inside a function (Server.enable_tasks) and under TYPE_CHECKING (context.py).
    assert ("mcptrio._server.server", "mcptrio._server.tasks") in found
    assert ("mcptrio._server.context", "mcptrio._server.dispatch") in found
    # ``from .. import types`` names the module, not the package.
    assert ("mcptrio._protocol.converter", "mcptrio.types") in found


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """The cycles of ``graph``: its strongly connected components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_strongly_connected_finds_a_cycle_and_nothing_else() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert strongly_connected(graph) == [["a", "b", "c"]]


# Modules inside the server wing that still import each other in a circle (through imports
# inside functions and under TYPE_CHECKING): Server, the scope a request runs in and the
# handler table refer to each other. The circle may shrink; it must not grow (the registries
# and everything outside the server wing stay out of it).
KNOWN_CYCLE = {
    "mcptrio._server.connection",
    "mcptrio._server.context",
    "mcptrio._server.dispatch",
    "mcptrio._server.modern",
    "mcptrio._server.mrtr",
    "mcptrio._server.server",
    "mcptrio._server.tasks",
}


def test_no_import_cycles_beyond_the_known_one() -> None:
    graph: dict[str, set[str]] = {}
    for imp in all_imports():
        if imp.target != imp.source:
            graph.setdefault(imp.source, set()).add(imp.target)
    cycles = strongly_connected(graph)
    new = [cycle for cycle in cycles if not set(cycle) <= KNOWN_CYCLE]
    assert new == [], f"import cycles: {new}"


PROTOCOL_CHECK = """
import importlib, pkgutil, sys, types

class NoTrio:
    def find_spec(self, name, path=None, target=None):
        if name == "trio" or name.startswith("trio."):
            raise ImportError(f"the protocol wing imported {name}")
        return None

sys.meta_path.insert(0, NoTrio())
# The package's own __init__ (the public face) needs trio: stand in for it with a bare package
# so that only the protocol wing and what it imports are loaded.
package = types.ModuleType("mcptrio")
package.__path__ = [PACKAGE]
sys.modules["mcptrio"] = package
import mcptrio._protocol
loaded = ["mcptrio.types"]
importlib.import_module("mcptrio.types")
for info in pkgutil.walk_packages(mcptrio._protocol.__path__, "mcptrio._protocol."):
    importlib.import_module(info.name)
    loaded.append(info.name)
assert "trio" not in sys.modules
print(" ".join(sorted(loaded)))
"""


def test_the_protocol_wing_imports_without_trio() -> None:
    script = PROTOCOL_CHECK.replace("PACKAGE", repr(str(PACKAGE)))
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded = set(result.stdout.split())
    expected = {
        name for name in MODULES if name.startswith("mcptrio._protocol.") or name == "mcptrio.types"
    }
    assert loaded == expected


def test_the_protocol_wing_never_awaits() -> None:
    for name, path in MODULES.items():
        if wing_of(name) != "protocol":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            assert not isinstance(node, ast.AsyncFunctionDef | ast.Await | ast.AsyncWith), (
                f"{path}:{getattr(node, 'lineno', '?')}: the protocol wing never awaits"
            )


def re_exports(module: str) -> set[str]:
    """The names a public face re-exports with ``from .x import Name as Name``."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    return {
        alias.asname
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.level
        for alias in node.names
        if alias.asname is not None and alias.asname == alias.name
    }


def public_names(module: object) -> set[str]:
    names = {name for name in vars(module) if not name.startswith("_")}
    # Submodules and what the face imports for its own use are not exports.
    return {
        name
        for name in names
        if not inspect.ismodule(getattr(module, name))
        and name not in {"annotations", "AsyncIterator", "asynccontextmanager", "Any", "trio"}
    }


def test_mcptrio_exports_every_public_name() -> None:
    exported = re_exports("mcptrio")
    assert exported, "mcptrio/__init__.py re-exports nothing"
    assert public_names(mcptrio) == exported
    for name in exported:
        value = getattr(mcptrio, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__.startswith("mcptrio."), (name, value.__module__)


def test_types_and_testing_export_everything_in_all() -> None:
    for module in (mcptrio.types, mcptrio.testing):
        declared = set(module.__all__)
        assert len(declared) == len(module.__all__), f"{module.__name__}.__all__ repeats a name"
        for name in declared:
            assert getattr(module, name) is not None, f"{module.__name__}.{name}"
    assert public_names(mcptrio.types) <= set(mcptrio.types.__all__)


def test_a_request_scope_is_built_in_one_place() -> None:
    """``CallScope`` is constructed only by its own constructors in ``_server/dispatch.py``
    (legacy from the session, 2026-07-28 from ``_meta``)."""
    builders = [
        f"{name}:{node.lineno}"
        for name, path in MODULES.items()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "CallScope"
    ]
    assert builders == [], f"CallScope built outside CallScope.for_session/for_modern: {builders}"


def test_one_copy_of_each_method_fact() -> None:
    """The multi-round, cacheable and ``Mcp-Name`` facts live only in the method table."""
    copies = [
        f"{name}:{node.lineno} defines {target.id}"
        for name, path in MODULES.items()
        if name != "mcptrio._protocol.methods"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
        and any(word in target.id for word in ("MRTR_METHODS", "CACHEABLE", "NAME_SOURCES"))
    ]
    assert copies == [], "\n".join(copies)
