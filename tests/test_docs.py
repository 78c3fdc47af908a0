"""The documentation: the Sphinx build, and the code in the README and in docs/*.rst.

Code blocks are checked by kind: every Python block must compile; a Python block with an
``if __name__ == "__main__":`` line is a complete program and must run and exit 0 (and
print exactly what a following "It prints:" block shows); TOML blocks must load as
mcptrio configuration; JSON blocks must parse. The README's Python blocks each start with
a ``# filename.py`` comment; they are written to those files and run together, as a
reader would. Names the prose relies on are checked too: every configuration section has
its generated table, every ``MCPTRIO_*`` variable mentioned names a real setting, and
every option of ``python -m mcptrio serve`` is documented.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import re
import sys
import textwrap
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

import mcptrio
import mcptrio.testing
import mcptrio.types
from mcptrio._app.cli import main as cli_main
from mcptrio._ops.config import ENV_PREFIX

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
# Generous bounds for child processes: far above their normal run time, far below a hang.
PROGRAM_DEADLINE = 60
BUILD_DEADLINE = 300

README_OPENING = """\
```sh
# run the example server (Streamable HTTP on http://127.0.0.1:8000/mcp, both protocol eras)
python -m pip install -e . && python -m mcptrio serve examples/everything.py --transport http
# run the test suite
python -m pip install -e '.[dev]' && python -m pytest
```
"""


class Block:
    """A code block: its language, its text and where it starts (for test ids)."""

    def __init__(self, language: str, code: str, where: str) -> None:
        self.language = language
        self.code = code
        self.where = where
        self.output: str | None = None
        """For a program: what the "It prints:" block after it shows."""

    @property
    def is_program(self) -> bool:
        return 'if __name__ == "__main__":' in self.code

    def __repr__(self) -> str:
        return self.where


def rst_blocks(path: Path) -> list[Block]:
    """The ``.. code-block::`` directives of a reStructuredText file.

    A ``text`` block right after a program, introduced by prose ending in "prints:", is
    that program's expected output.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    previous_end = 0
    i = 0
    while i < len(lines):
        match = re.match(r"^(\s*)\.\. code-block:: (\S+)\s*$", lines[i])
        i += 1
        if match is None:
            continue
        indent, language, start = len(match.group(1)), match.group(2), i
        prose = [line.strip() for line in lines[previous_end : start - 1] if line.strip()]
        body: list[str] = []
        while i < len(lines) and lines[i].strip().startswith(":"):  # directive options
            i += 1
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
        ):
            body.append(lines[i])
            i += 1
        code = textwrap.dedent("\n".join(body)).strip("\n") + "\n"
        block = Block(language, code, f"{path.name}:{start}")
        if (
            language == "text"
            and blocks
            and blocks[-1].is_program
            and prose
            and prose[-1].endswith("prints:")
            and len(prose) == 1
        ):
            blocks[-1].output = code
        blocks.append(block)
        previous_end = i
    return blocks


def markdown_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file."""
    text = path.read_text(encoding="utf-8")
    return [
        Block(m.group(1), m.group(2), f"{path.name}:{text[: m.start()].count(chr(10)) + 1}")
        for m in re.finditer(r"^```(\w*)\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)
    ]


DOC_BLOCKS = [block for page in sorted(DOCS.glob("*.rst")) for block in rst_blocks(page)]
README_BLOCKS = markdown_blocks(README)
ALL_BLOCKS = DOC_BLOCKS + README_BLOCKS


def blocks_in(language: str, blocks: list[Block]) -> list[Block]:
    return [block for block in blocks if block.language == language]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    # Settings from the caller's environment must not change what the examples do.
    for name in list(env):
        if name.upper().startswith("MCPTRIO_"):
            del env[name]
    return env


async def run(command: list[str], cwd: Path, deadline: float) -> tuple[int, str, str]:
    with trio.fail_after(deadline):
        done = await trio.run_process(
            command,
            cwd=cwd,
            env=_env(),
            stdin=b"",
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


# ---- the Sphinx build ---------------------------------------------------------------------


@pytest.mark.slow
async def test_docs_build_with_warnings_as_errors(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "sphinx",
        "-W",
        "--keep-going",
        "-q",
        "-b",
        "html",
        "-d",
        str(tmp_path / "doctrees"),
        str(DOCS),
        str(tmp_path / "html"),
    ]
    code, out, err = await run(command, ROOT, BUILD_DEADLINE)
    assert code == 0, f"sphinx-build failed:\n{out}\n{err}"
    assert not err.strip(), err
    html = (tmp_path / "html" / "api.html").read_text(encoding="utf-8")
    # Spot checks that autodoc found the docstrings, not just the names.
    assert 'id="mcptrio.Server"' in html
    assert "Register a function (sync or async) as a tool." in html
    assert 'id="mcptrio.types.CallToolResult"' in html
    assert 'id="mcptrio.testing.open_memory_client"' in html
    # The configuration reference is generated from the config classes: every field is there.
    html = (tmp_path / "html" / "configuration.html").read_text(encoding="utf-8")
    for section, cls in config_sections().items():
        for field in attrs.fields(cls):
            assert f"{ENV_PREFIX}{section}__{field.name}".upper() in html, (section, field.name)


def test_every_public_name_is_in_the_api_reference() -> None:
    api = (DOCS / "api.rst").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\.\. auto\w+:: (\S+)$", api, re.MULTILINE))
    public = {
        name
        for name, value in vars(mcptrio).items()
        if not name.startswith("_") and not isinstance(value, type(mcptrio))
    }
    missing = sorted(public - documented)
    assert not missing, f"add these public names to docs/api.rst: {', '.join(missing)}"
    assert {"mcptrio.types", "mcptrio.testing"} <= documented
    assert mcptrio.types.__all__ and mcptrio.testing.__all__


def test_literalincludes_point_at_existing_code() -> None:
    for page in DOCS.glob("*.rst"):
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"^\.\. literalinclude:: (\S+)$", text, re.MULTILINE):
            assert (DOCS / target).is_file(), f"{page.name}: {target} does not exist"


# ---- code blocks --------------------------------------------------------------------------


@pytest.mark.parametrize("block", blocks_in("python", ALL_BLOCKS), ids=repr)
def test_python_blocks_compile(block: Block) -> None:
    compile(block.code, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def test_expected_outputs_were_found() -> None:
    # Guards the "It prints:" detection itself: the tutorial has such blocks.
    assert any(block.output for block in DOC_BLOCKS)


@pytest.mark.parametrize(
    "block", [b for b in blocks_in("python", DOC_BLOCKS) if b.is_program], ids=repr
)
async def test_doc_programs_run(
    block: Block, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # In this process, for speed: the module is executed as an import would, then its
    # ``main`` (what ``trio.run(main)`` would run) is awaited. A program without ``main``
    # (a server for stdio) is checked by defining everything it defines.
    module = types.ModuleType("docs_program")
    module.__file__ = block.where
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.syspath_prepend(str(ROOT))
    exec(compile(block.code, block.where, "exec"), module.__dict__)
    main = getattr(module, "main", None)
    if main is not None:
        with trio.fail_after(PROGRAM_DEADLINE):
            await main()
    else:
        assert isinstance(getattr(module, "server", None), mcptrio.Server), block.where
    if block.output is not None:
        assert capsys.readouterr().out == block.output


@pytest.mark.parametrize("block", blocks_in("toml", DOC_BLOCKS), ids=repr)
def test_toml_blocks(block: Block, tmp_path: Path) -> None:
    data = tomllib.loads(block.code)
    if "tool" in data:  # a pyproject.toml excerpt
        return
    path = tmp_path / "mcptrio.toml"
    path.write_text(block.code, encoding="utf-8")
    mcptrio.load_config(path=path, env={})


@pytest.mark.parametrize("block", blocks_in("json", ALL_BLOCKS), ids=repr)
def test_json_blocks_are_mcp_host_configs(block: Block) -> None:
    servers = json.loads(block.code)["mcpServers"]
    for entry in servers.values():
        assert entry["args"][:3] == ["-m", "mcptrio", "serve"]
        assert Path(entry["args"][3]).name in {p.name for p in (ROOT / "examples").glob("*.py")}
        mcptrio.load_config(env=entry.get("env", {}))


# ---- names the prose relies on --------------------------------------------------------------


def config_sections() -> dict[str, type]:
    return typing.get_type_hints(mcptrio.Config)


def test_every_config_section_has_its_generated_table() -> None:
    text = (DOCS / "configuration.rst").read_text(encoding="utf-8")
    generated = re.findall(r"^\.\. mcptrio-config:: (\S+)$", text, re.MULTILINE)
    sections = [name for name in generated if name in config_sections()]
    assert sorted(sections) == sorted(config_sections())
    # Nested tables (``http.auth``) each get a table of their own too.
    nested = {
        f"{section}.{field.name}"
        for section, cls in config_sections().items()
        for field in attrs.fields(cls)
        if attrs.has(_section_type(typing.get_type_hints(cls)[field.name]))
    }
    assert sorted(g for g in generated if "." in g) == sorted(nested)
    # The other tables are config classes of their own, such as the HTTP client's.
    others = [name for name in generated if name not in config_sections() and "." not in name]
    assert others == ["HttpClientConfig"]
    assert all(attrs.has(getattr(mcptrio, name)) for name in others)


def _section_type(tp: Any) -> Any:
    """The attrs class behind a resolved annotation (``X | None`` -> ``X``), else the type."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        tp = next(arg for arg in typing.get_args(tp) if arg is not type(None))
    return tp


def documented_text() -> str:
    pages = [README, *sorted(DOCS.glob("*.rst"))]
    return "\n".join(page.read_text(encoding="utf-8") for page in pages)


def test_every_environment_variable_mentioned_names_a_setting() -> None:
    sections = config_sections()
    mentioned = set(re.findall(rf"\b{ENV_PREFIX}([A-Z0-9_]+?)__([A-Z0-9_]+)\b", documented_text()))
    assert mentioned
    for section, field in mentioned:
        if field.endswith("_") or field == "FIELD":
            continue  # a pattern such as MCPTRIO_SERVER__*, or MCPTRIO_<SECTION>__<FIELD>
        cls = sections.get(section.lower())
        assert cls is not None, f"{ENV_PREFIX}{section}__{field}: no section {section.lower()!r}"
        *tables, name = field.lower().split("__")
        for table in tables:  # nested sections: MCPTRIO_HTTP__AUTH__ISSUER
            hints = typing.get_type_hints(cls)
            assert table in hints, f"{ENV_PREFIX}{section}__{field}: no table {table!r}"
            cls = _section_type(hints[table])
        names = {f.name for f in attrs.fields(cls)}
        assert name in names, f"{ENV_PREFIX}{section}__{field}: no such setting"


def test_every_serve_option_is_documented(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli_main(["serve", "--help"])
    options = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", capsys.readouterr().out))
    assert "--transport" in options
    text = documented_text()
    missing = sorted(o for o in options - {"--help"} if o not in text)
    assert not missing, f"document these options of 'python -m mcptrio serve': {missing}"


def test_the_documented_client_mode_default_is_the_real_one() -> None:
    default = inspect.signature(mcptrio.open_client).parameters["mode"].default
    for page in (README, DOCS / "concepts.rst"):
        stated = re.findall(r'[`]+mode="([\w-]+)"[`]+ \(the default\)', page.read_text("utf-8"))
        assert stated == [default], f"{page.name} says the default mode is {stated}"


# ---- the README ---------------------------------------------------------------------------


def test_readme_opens_with_the_two_commands() -> None:
    assert README.read_text(encoding="utf-8").startswith(README_OPENING)
    assert (ROOT / "examples" / "everything.py").is_file()


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_command = README_OPENING.splitlines()[4]
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line for line in script.splitlines() if line.strip() and not line.startswith("#")]
    assert commands[-1] == test_command


def readme_files() -> dict[str, str]:
    files: dict[str, str] = {}
    for block in blocks_in("python", README_BLOCKS):
        first = block.code.splitlines()[0]
        match = re.fullmatch(r"# (\w+\.py)", first)
        assert match, f"{block.where}: start the block with a '# filename.py' comment"
        files[match.group(1)] = block.code
    return files


async def test_readme_server_and_client_run(tmp_path: Path) -> None:
    files = readme_files()
    assert {"hello.py", "client.py", "test_hello.py"} <= set(files)
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")

    code, out, err = await run([sys.executable, "client.py"], tmp_path, PROGRAM_DEADLINE)
    assert code == 0, err
    assert out == "['greet']\nHello, Trio!\nHello, world.\n"

    # The server file also runs on its own (it serves until stdin closes).
    code, out, err = await run([sys.executable, "hello.py"], tmp_path, PROGRAM_DEADLINE)
    assert code == 0, err


async def test_readme_http_example_runs(tmp_path: Path) -> None:
    files = readme_files()
    assert "over_http.py" in files
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    code, out, err = await run([sys.executable, "over_http.py"], tmp_path, PROGRAM_DEADLINE)
    assert code == 0, err
    # What the README says it prints: one endpoint, both eras.
    assert out == "2025-11-25 Hello, HTTP.\n2026-07-28 Hello, HTTP.\n"
    readme = README.read_text(encoding="utf-8")
    for line in out.splitlines():
        assert f"`{line}`" in readme


async def test_readme_test_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, text in readme_files().items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("hello", "test_hello"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    try:
        test_hello = importlib.import_module("test_hello")
        # What pytest-trio does with an async test in trio mode.
        await test_hello.test_greet()
    finally:
        for name in ("hello", "test_hello"):
            sys.modules.pop(name, None)
