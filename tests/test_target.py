from __future__ import annotations

import sys
import textwrap
import traceback
import uuid
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcptrio._app.target import TargetError, _split, load_target

# Targets are Fractions: a type both these tests and the generated files can import.


def write(directory: Path, name: str, source: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def restore_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # load_target puts a file's directory on sys.path; keep that from leaking between tests.
    monkeypatch.setattr(sys, "path", list(sys.path))


@pytest.fixture
def app(tmp_path: Path) -> Path:
    write(tmp_path, "helper.py", "from fractions import Fraction\nHALF = Fraction(1, 2)\n")
    return write(
        tmp_path,
        "app.py",
        """
        from fractions import Fraction
        import helper

        server = Fraction(3, 4)
        count = 3
        NAME = __name__

        class Holder:
            inner = Fraction(5, 6)

        def make():
            return Fraction(7, 8) + helper.HALF

        def explode():
            raise RuntimeError("boom in factory")

        if __name__ == "__main__":
            raise SystemExit("must not run")
        """,
    )


# --------------------------------------------------------------------------- files


def test_named_object(app: Path) -> None:
    assert load_target(f"{app}:server", Fraction) == Fraction(3, 4)


def test_dotted_object(app: Path) -> None:
    assert load_target(f"{app}:Holder.inner", Fraction) == Fraction(5, 6)


def test_factory_call_and_sibling_import(app: Path) -> None:
    assert load_target(f"{app}:make()", Fraction) == Fraction(11, 8)


def test_file_module_is_registered_and_not_main(app: Path) -> None:
    load_target(f"{app}:server", Fraction)
    loaded = [m for m in sys.modules.values() if getattr(m, "__file__", None) == str(app)]
    assert loaded, "the module must be in sys.modules so attrs/pickle can find it"
    assert loaded[-1].NAME != "__main__"
    assert loaded[-1].NAME.startswith("_mcptrio_target_app_")
    assert str(app.parent) in sys.path


def test_single_instance_is_picked(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "only.py",
        "from fractions import Fraction\nserver = app = Fraction(1, 3)\nother = 3\n",
    )
    assert load_target(str(path), Fraction) == Fraction(1, 3)


def test_no_instance(tmp_path: Path) -> None:
    path = write(tmp_path, "empty.py", "x = 1\n")
    with pytest.raises(TargetError) as info:
        load_target(str(path), Fraction, default_name_hint="srv")
    message = str(info.value)
    assert "no Fraction instance found" in message
    assert f"'{path}:srv'" in message
    assert f"'{path}:make_srv()'" in message


def test_single_instance_ignores_imports_and_class_attributes(app: Path) -> None:
    # helper.HALF and Holder.inner are not module-level names of app.py.
    assert load_target(str(app), Fraction) == Fraction(3, 4)


def test_several_instances_lists_names(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "two.py",
        "from fractions import Fraction\na = b = Fraction(1)\nc = Fraction(2)\n",
    )
    with pytest.raises(TargetError) as info:
        load_target(str(path), Fraction)
    assert "(a = b, c)" in str(info.value)
    assert f"e.g. '{path}:a'" in str(info.value)


def test_missing_attribute_suggests(app: Path) -> None:
    with pytest.raises(TargetError) as info:
        load_target(f"{app}:sever", Fraction)
    assert (
        str(info.value) == f"module {str(app)!r} has no attribute 'sever'; did you mean 'server'?"
    )


def test_missing_attribute_lists_instances(app: Path) -> None:
    with pytest.raises(TargetError) as info:
        load_target(f"{app}:zzz", Fraction)
    assert "Fraction instances there: server" in str(info.value)


def test_missing_nested_attribute(app: Path) -> None:
    with pytest.raises(TargetError, match=r"app\.py:Holder has no attribute 'outer'"):
        load_target(f"{app}:Holder.outer", Fraction)


def test_wrong_type(app: Path) -> None:
    with pytest.raises(TargetError) as info:
        load_target(f"{app}:count", Fraction)
    assert str(info.value) == f"{app}:count is a int, not a Fraction"


def test_factory_without_call_hints(app: Path) -> None:
    with pytest.raises(TargetError) as info:
        load_target(f"{app}:make", Fraction)
    assert "is the function make, not a Fraction" in str(info.value)
    assert f"call it: '{app}:make()'" in str(info.value)


def test_factory_returning_wrong_type(app: Path) -> None:
    with pytest.raises(TargetError, match=r"Holder\(\) returned a Holder, not a Fraction"):
        load_target(f"{app}:Holder()", Fraction)


def test_calling_a_non_callable(app: Path) -> None:
    with pytest.raises(TargetError, match="is a int, not a factory to call"):
        load_target(f"{app}:count()", Fraction)


def test_factory_error_is_chained(app: Path) -> None:
    with pytest.raises(TargetError) as info:
        load_target(f"{app}:explode()", Fraction)
    assert "calling" in str(info.value) and "RuntimeError: boom in factory" in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_import_error_keeps_the_original_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.py", "x = 1\nraise ValueError('bad module')\n")
    with pytest.raises(TargetError) as info:
        load_target(f"{path}:x", Fraction)
    assert "ValueError: bad module" in str(info.value)
    cause = info.value.__cause__
    assert isinstance(cause, ValueError)
    frames = traceback.extract_tb(cause.__traceback__)
    assert any(f.filename == str(path) and f.lineno == 2 for f in frames)
    assert not [m for m in sys.modules.values() if getattr(m, "__file__", None) == str(path)]


def test_system_exit_at_import(tmp_path: Path) -> None:
    path = write(tmp_path, "script.py", "import sys\nsys.exit(2)\n")
    with pytest.raises(TargetError, match=r"exited \(SystemExit: 2\).*__main__"):
        load_target(str(path), Fraction)


def test_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match=r"file not found: .*nope\.py"):
        load_target(f"{tmp_path}/nope.py:server", Fraction)


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    with pytest.raises(TargetError, match="is a directory"):
        load_target(str(tmp_path / "pkg"), Fraction)


def test_not_a_python_file(tmp_path: Path) -> None:
    path = write(tmp_path, "notes.txt", "hello\n")
    with pytest.raises(TargetError, match="not a Python file"):
        load_target(str(path), Fraction)


def test_file_named_like_a_stdlib_module_does_not_clash(tmp_path: Path) -> None:
    import json

    path = write(tmp_path, "json.py", "from fractions import Fraction\nserver = Fraction(9)\n")
    assert load_target(str(path), Fraction) == Fraction(9)
    assert sys.modules["json"] is json


# --------------------------------------------------------------------------- modules


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"tpkg_{uuid.uuid4().hex}"
    write(tmp_path, f"{name}/__init__.py", "")
    write(
        tmp_path,
        f"{name}/app.py",
        """
        from fractions import Fraction
        server = Fraction(2, 3)
        def make_server():
            return Fraction(4, 5)
        """,
    )
    write(tmp_path, f"{name}/needs.py", "import definitely_not_installed_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_module_spec(package: str) -> None:
    assert load_target(f"{package}.app:server", Fraction) == Fraction(2, 3)
    assert load_target(f"{package}.app:make_server()", Fraction) == Fraction(4, 5)
    assert load_target(f"{package}.app", Fraction) == Fraction(2, 3)


def test_module_not_found(package: str) -> None:
    with pytest.raises(TargetError) as info:
        load_target(f"{package}.nothere:server", Fraction)
    assert f"no module named '{package}.nothere'" in str(info.value)


def test_module_not_found_points_to_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"loose_{uuid.uuid4().hex}"
    write(tmp_path, f"{name}.py", "")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    with pytest.raises(TargetError, match=f"there is a file '{name}.py' here"):
        load_target(f"{name}:server", Fraction)


def test_missing_dependency_is_not_reported_as_missing_module(package: str) -> None:
    with pytest.raises(TargetError) as info:
        load_target(f"{package}.needs", Fraction)
    assert "needs the module 'definitely_not_installed_xyz'" in str(info.value)
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("", "empty target"),
        ("   ", "empty target"),
        ("not a module", "neither a module name"),
        ("mod:obj-name", "cannot read the object part 'obj-name'"),
        ("mod:", "cannot read the object part ''"),
        ("mod:a..b", "cannot read the object part"),
    ],
)
def test_bad_specs(spec: str, fragment: str) -> None:
    with pytest.raises(TargetError, match=fragment):
        load_target(spec, Fraction)


# --------------------------------------------------------------------------- parsing


def test_split_windows_paths() -> None:
    assert _split(r"C:\srv\app.py:server") == (r"C:\srv\app.py", "server")
    assert _split(r"C:\srv\app.py") == (r"C:\srv\app.py", None)
    assert _split("pkg.mod:make()") == ("pkg.mod", "make()")
    assert _split("pkg.mod") == ("pkg.mod", None)


identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
dotted = st.lists(identifiers, min_size=1, max_size=3).map(".".join)


@given(dotted, dotted, st.booleans())
def test_split_module_and_object(module: str, obj: str, call: bool) -> None:
    expr = f"{obj}()" if call else obj
    assert _split(f"{module}:{expr}") == (module, expr)
    assert _split(module) == (module, None)


@given(st.text(min_size=1, max_size=30))
def test_split_never_fails_unexpectedly(spec: str) -> None:
    try:
        where, expr = _split(spec)
    except TargetError:
        return
    assert where
    if expr is not None:
        assert f"{where}:{expr}" == spec
