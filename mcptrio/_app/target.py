"""Find the object a command line names: ``app.py:server``, ``pkg.mod:make_server()``.

A spec is ``path/to/file.py[:object]`` or ``package.module[:object]``. ``object`` may be dotted
(``module:app.server``) or a call of a zero-argument factory (``module:make_server()``).
Without ``:object`` the module must hold exactly one instance of the expected type.

A file is imported under a unique module name (never ``"__main__"``, so an
``if __name__ == "__main__":`` block does not run) with its directory put on ``sys.path``,
so it can import its sibling modules, also later at run time.

Sans-IO: no trio here.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import os
import re
import sys
import traceback
import types
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["TargetError", "load_target"]

T = TypeVar("T")

_OBJECT_EXPR = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*(?:\(\))?\Z")
_MODULE_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*\Z")


class TargetError(Exception):
    """The spec names nothing usable: no such file or module, no such object, wrong type.

    ``details`` holds, for an error raised by the user's code while it was imported or called,
    the frames of that code (our own and the import system's left out), for printing above
    the message.
    """

    def __init__(self, message: str, *, details: str = "") -> None:
        super().__init__(message)
        self.details = details


def load_target(spec: str, expected: type[T], *, default_name_hint: str = "server") -> T:
    """Import what ``spec`` names and return it, checked to be an instance of ``expected``.

    ``default_name_hint`` is the attribute name suggested in error messages (``app.py:server``).
    """
    spec = spec.strip()
    if not spec:
        raise TargetError(
            f"empty target; give a file or module, e.g. 'app.py:{default_name_hint}'"
            f" or 'mypackage.app:{default_name_hint}'"
        )
    where, expr = _split(spec)
    module = _import(where)
    kind = expected.__name__
    if expr is None:
        return _pick_single(module, where, expected, default_name_hint)

    call = expr.endswith("()")
    dotted = expr[:-2] if call else expr
    obj: Any = module
    walked: list[str] = []
    for part in dotted.split("."):
        if not hasattr(obj, part):
            owner = f"module {where!r}" if not walked else f"{where}:{'.'.join(walked)}"
            raise TargetError(
                f"{owner} has no attribute {part!r}"
                + _suggest(obj, part, expected, where if not walked else None)
            )
        obj = getattr(obj, part)
        walked.append(part)

    if call:
        if not callable(obj):
            raise TargetError(
                f"{where}:{dotted} is a {type(obj).__name__}, not a factory to call;"
                f" write {where}:{dotted} without '()'"
            )
        try:
            obj = obj()
        except Exception as exc:
            raise _failed(f"calling {where}:{expr}", exc) from exc

    if not isinstance(obj, expected):
        hint = ""
        if not call and callable(obj) and not isinstance(obj, type):
            hint = f"; if it is a factory, call it: '{where}:{dotted}()'"
        what = f"{where}:{expr} returned" if call else f"{where}:{expr} is"
        raise TargetError(f"{what} {_describe(obj)}, not a {kind}{hint}")
    return obj


def _split(spec: str) -> tuple[str, str | None]:
    """``"a/b.py:obj"`` -> ``("a/b.py", "obj")``; a drive letter's colon is not a separator."""
    head, sep, tail = spec.rpartition(":")
    if sep and head and _OBJECT_EXPR.match(tail):
        return head, tail
    if sep and head and not _looks_like_path(spec):
        raise TargetError(
            f"cannot read the object part {tail!r} of {spec!r}; write a name such as"
            " 'module:server', a dotted name 'module:app.server' or a factory 'module:make()'"
        )
    return spec, None


def _looks_like_path(text: str) -> bool:
    return text.endswith(".py") or "/" in text or os.sep in text or "\\" in text


def _import(where: str) -> types.ModuleType:
    if _looks_like_path(where):
        return _import_file(where)
    if not _MODULE_NAME.match(where):
        raise TargetError(
            f"{where!r} is neither a module name (like 'package.module') nor a .py file path"
        )
    return _import_module(where)


def _import_module(name: str) -> types.ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing == name or name.startswith(missing + "."):
            hint = ""
            candidate = Path(*name.split(".")).with_suffix(".py")
            if candidate.is_file():
                hint = f"; there is a file {str(candidate)!r} here: give that path instead"
            elif "" not in sys.path and os.getcwd() not in sys.path:
                hint = (
                    "; the current directory is not on sys.path: run with 'python -m' or give a"
                    " file path"
                )
            raise TargetError(f"no module named {missing!r} (looking for {name!r}){hint}") from exc
        raise TargetError(
            f"importing {name!r} failed: it needs the module {missing!r}, which is not installed"
        ) from exc
    except SystemExit as exc:
        raise TargetError(_exited(name, exc)) from exc
    except Exception as exc:
        raise _failed(f"importing {name!r}", exc) from exc


def _import_file(where: str) -> types.ModuleType:
    path = Path(where).expanduser()
    resolved = path.resolve()
    if not resolved.exists():
        raise TargetError(f"file not found: {where!r} (looked at {str(resolved)!r})")
    if resolved.is_dir():
        raise TargetError(
            f"{where!r} is a directory; give the .py file that defines the object,"
            f" e.g. '{Path(where) / 'server.py'}'"
        )
    if resolved.suffix != ".py":
        raise TargetError(f"{where!r} is not a Python file (expected a name ending in .py)")

    directory = str(resolved.parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    digest = hashlib.sha256(str(resolved).encode("utf-8", "surrogateescape")).hexdigest()[:12]
    stem = re.sub(r"\W", "_", resolved.stem)
    module_name = f"_mcptrio_target_{stem}_{digest}"

    module_spec = importlib.util.spec_from_file_location(module_name, resolved)
    if module_spec is None or module_spec.loader is None:  # pragma: no cover - .py always loads
        raise TargetError(f"cannot import {where!r}")
    module = importlib.util.module_from_spec(module_spec)
    # Registered before running so that dataclasses, attrs and pickle can find the module.
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except SystemExit as exc:
        sys.modules.pop(module_name, None)
        raise TargetError(_exited(where, exc)) from exc
    except BaseException as exc:
        sys.modules.pop(module_name, None)
        if not isinstance(exc, Exception):
            raise
        raise _failed(f"importing {where!r}", exc) from exc
    return module


_OWN_DIR = str(Path(__file__).resolve().parent) + os.sep


def _failed(doing: str, exc: BaseException) -> TargetError:
    """A TargetError for user code that raised: where it failed, and its frames as details."""
    if isinstance(exc, SyntaxError) and exc.filename:
        # The error is in the source itself; its own lines show the place with a caret.
        lines = traceback.format_exception_only(type(exc), exc)
        details = "".join(line for line in lines if line.startswith(" "))
        where = f"{exc.filename}, line {exc.lineno}"
        return TargetError(
            f"{doing} failed at {where}: {type(exc).__name__}: {exc.msg}", details=details
        )
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith("<") and not frame.filename.startswith(_OWN_DIR)
    ]
    at = f" at {frames[-1].filename}, line {frames[-1].lineno}" if frames else ""
    hint = ""
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        hint = f"; install it into the environment of {sys.executable}, or fix the name"
    return TargetError(
        f"{doing} failed{at}: {type(exc).__name__}: {exc}{hint}",
        details="".join(traceback.format_list(frames)),
    )


def _exited(where: str, exc: SystemExit) -> str:
    return (
        f"importing {where!r} exited (SystemExit: {exc.code!r}); code that runs a program"
        " belongs under 'if __name__ == \"__main__\":'"
    )


def _pick_single(module: types.ModuleType, where: str, expected: type[T], hint: str) -> T:
    found: dict[int, tuple[list[str], T]] = {}
    for name, value in vars(module).items():
        if isinstance(value, expected):
            found.setdefault(id(value), ([], value))[0].append(name)
    kind = expected.__name__
    if len(found) == 1:
        ((_names, value),) = found.values()
        return value
    if not found:
        raise TargetError(
            f"no {kind} instance found at module level in {where!r}; name the object,"
            f" e.g. '{where}:{hint}', or a factory, e.g. '{where}:make_{hint}()'"
        )
    # Several names bound to one object count once; they are shown together.
    listed = sorted(" = ".join(names) for names, _ in found.values())
    first = listed[0].split(" = ")[0]
    raise TargetError(
        f"{len(found)} {kind} instances found in {where!r} ({', '.join(listed)});"
        f" choose one, e.g. '{where}:{first}'"
    )


def _suggest(obj: Any, missing: str, expected: type[Any], where: str | None) -> str:
    """A hint for a missing attribute: close names, or the instances the module holds."""
    names = [n for n in dir(obj) if not n.startswith("__")]
    close = difflib.get_close_matches(missing, names, n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    if where is not None:
        instances = sorted(n for n, v in vars(obj).items() if isinstance(v, expected))
        if instances:
            return f"; {expected.__name__} instances there: {', '.join(instances)}"
    return ""


def _describe(obj: Any) -> str:
    if isinstance(obj, type):
        return f"the class {obj.__name__}"
    if isinstance(obj, types.ModuleType):
        return f"the module {obj.__name__}"
    if callable(obj) and hasattr(obj, "__name__"):
        return f"the {type(obj).__name__} {obj.__name__}"
    return f"a {type(obj).__name__}"
