"""``python -m mcptrio`` as a person runs it: each mistake ends with one line saying what to do.

Every mistake runs the real command in a subprocess and checks exit status 2, exactly one
``mcptrio:`` line on stderr, and no traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

import mcptrio
from mcptrio._app.cli import _log_level, _port
from mcptrio._ops.config import ConfigError, HttpConfig

SERVER_FILE = "import mcptrio\n\nserver = mcptrio.Server('cli-test')\n"


@pytest.fixture
def app(tmp_path: Path) -> Path:
    path = tmp_path / "app.py"
    path.write_text(SERVER_FILE, encoding="utf-8")
    return path


async def run_cli(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None
) -> trio.CompletedProcess[bytes]:
    with trio.fail_after(60):
        return await trio.run_process(
            [sys.executable, "-m", "mcptrio", *args],
            cwd=cwd,
            env={**os.environ, **(env or {})},
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )


def the_mistake(result: trio.CompletedProcess[bytes]) -> str:
    """The one ``mcptrio:`` line of a failed run, after checking the run failed as it should."""
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("mcptrio:")]
    assert len(lines) == 1, stderr
    assert stderr.rstrip("\n").endswith(lines[0]), "the mcptrio: line must come last"
    return lines[0]


@pytest.mark.parametrize(
    "port, fragment",
    [
        ("99999", "port 99999 is out of range; give 1-65535, or 0 for a free port"),
        ("-1", "port -1 is out of range"),
        ("eighty", "'eighty' is not a port number"),
    ],
)
async def test_port_out_of_range(app: Path, port: str, fragment: str) -> None:
    result = await run_cli("serve", str(app), "--transport", "http", "--port", port, cwd=app.parent)
    assert fragment in the_mistake(result)


@pytest.mark.parametrize("server", ["h11", "hypercorn"])
async def test_port_in_use(app: Path, server: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = await run_cli(
            "serve", str(app), "--transport", "http", "--http-server", server,
            "--port", str(port), cwd=app.parent,
        )  # fmt: skip
    assert the_mistake(result) == (
        f"mcptrio: port {port} on 127.0.0.1 is in use: pick another with --port,"
        " or 0 for a free one"
    )


async def test_address_not_available(app: Path) -> None:
    result = await run_cli(
        "serve", str(app), "--transport", "http", "--host", "8.8.8.8", "--port", "0",
        cwd=app.parent,
    )  # fmt: skip
    line = the_mistake(result)
    assert "cannot listen on 8.8.8.8: no network interface of this machine has" in line
    assert "--host 127.0.0.1" in line and "--host 0.0.0.0" in line


async def test_unresolvable_host(app: Path) -> None:
    result = await run_cli(
        "serve", str(app), "--transport", "http", "--host", "no-such-host.invalid",
        "--port", "0", cwd=app.parent,
    )  # fmt: skip
    assert "cannot resolve the host 'no-such-host.invalid'" in the_mistake(result)


async def test_import_error_shows_the_users_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "helper.py").write_text("def load():\n    return {}['key']\n", encoding="utf-8")
    app = tmp_path / "app.py"
    app.write_text("import mcptrio\nimport helper\n\nhelper.load()\n", encoding="utf-8")
    result = await run_cli("serve", str(app), cwd=tmp_path)
    line = the_mistake(result)
    assert line == (
        f"mcptrio: importing {str(app)!r} failed at {tmp_path / 'helper.py'}, line 2:"
        " KeyError: 'key'"
    )
    stderr = result.stderr.decode()
    # The user's frames, outermost first, with their source lines; none of ours.
    assert f'File "{app}", line 4, in <module>' in stderr
    assert "helper.load()" in stderr and "return {}['key']" in stderr
    assert "mcptrio/_" not in stderr and "importlib" not in stderr


async def test_syntax_error_shows_the_line(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text("import mcptrio\n\ndef broken(:\n    pass\n", encoding="utf-8")
    result = await run_cli("serve", str(app), cwd=tmp_path)
    line = the_mistake(result)
    assert f"failed at {app}, line 3: SyntaxError" in line
    assert "def broken(:" in result.stderr.decode()


async def test_missing_server_file(tmp_path: Path) -> None:
    result = await run_cli("serve", "nope.py", cwd=tmp_path)
    assert "file not found: 'nope.py'" in the_mistake(result)


async def test_bad_log_level(app: Path) -> None:
    result = await run_cli("serve", str(app), "--log-level", "loud", cwd=app.parent)
    line = the_mistake(result)
    assert "unknown log level 'loud'; choose one of DEBUG, INFO, WARNING, ERROR, CRITICAL" in line


async def test_unknown_option(app: Path) -> None:
    result = await run_cli("serve", str(app), "--prot", "80", cwd=app.parent)
    assert "unrecognized arguments: --prot 80" in the_mistake(result)


async def test_missing_redis_extra(app: Path, tmp_path: Path) -> None:
    # A module that fails to import the way an absent package does stands for coredis.
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "coredis.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'coredis'\", name='coredis')\n",
        encoding="utf-8",
    )
    path = os.pathsep.join([str(shadow), *filter(None, [os.environ.get("PYTHONPATH")])])
    result = await run_cli(
        "serve",
        str(app),
        cwd=app.parent,
        env={"PYTHONPATH": path, "MCPTRIO_CLUSTER__REDIS_URL": "redis://127.0.0.1:6379"},
    )
    assert "install mcptrio[redis]" in the_mistake(result)


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("[http\n", "bad.toml: not valid TOML: "),
        ('[http]\nport = "x"\n', "bad.toml: http.port: expected int, got str"),
        ("[http]\nport = 70000\n", "bad.toml: http.port: must be 1-65535, or 0 for a free port"),
        ("[server]\npagesize = 5\n", "did you mean 'page_size'?"),
    ],
)
async def test_bad_config_file(app: Path, content: str, fragment: str) -> None:
    (app.parent / "bad.toml").write_text(content, encoding="utf-8")
    result = await run_cli("serve", str(app), "--config", "bad.toml", cwd=app.parent)
    assert fragment in the_mistake(result)


async def test_config_file_not_found(app: Path) -> None:
    result = await run_cli("serve", str(app), "--config", "missing.toml", cwd=app.parent)
    assert "missing.toml: config file not found" in the_mistake(result)


async def test_bad_environment_variable(app: Path) -> None:
    result = await run_cli("serve", str(app), cwd=app.parent, env={"MCPTRIO_HTTP__PORT": "70000"})
    assert "MCPTRIO_HTTP__PORT: http.port: must be 1-65535" in the_mistake(result)


async def test_bad_path(app: Path) -> None:
    result = await run_cli(
        "serve", str(app), "--transport", "http", "--path", "mcp", cwd=app.parent
    )
    assert the_mistake(result) == (
        "mcptrio: --path: must be a URL path starting with '/', got 'mcp'"
    )


async def test_missing_dependency_of_the_server_file(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text("import mcptrio\nimport no_such_dependency_here\n", encoding="utf-8")
    result = await run_cli("serve", str(app), cwd=tmp_path)
    line = the_mistake(result)
    assert f"failed at {app}, line 2: ModuleNotFoundError" in line
    assert "install it into the environment of" in line


async def test_bad_allowed_host(app: Path) -> None:
    result = await run_cli(
        "serve", str(app), "--transport", "http", "--allowed-host", "a b", cwd=app.parent
    )
    assert "--allowed-host: 'a b' is not a host name" in the_mistake(result)


async def test_version(tmp_path: Path) -> None:
    result = await run_cli("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.decode().strip() == f"mcptrio {mcptrio.__version__}"


@asynccontextmanager
async def serving(app: Path, *args: str, lines: int) -> AsyncIterator[list[str]]:
    """Run ``serve --transport http`` and yield its first ``lines`` stderr lines."""
    command = [sys.executable, "-m", "mcptrio", "serve", str(app), "--transport", "http", *args]
    process = await trio.lowlevel.open_process(command, cwd=app.parent, stderr=subprocess.PIPE)
    try:
        assert process.stderr is not None
        received = b""
        with trio.fail_after(60):
            while received.count(b"\n") < lines:
                chunk = await process.stderr.receive_some()
                assert chunk, f"the server exited: {received.decode()}"
                received += chunk
        yield received.decode().splitlines()[:lines]
    finally:
        process.terminate()
        with trio.fail_after(30):
            await process.wait()


async def status_for(url: str, host: str) -> int:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            url,
            headers={"host": host, "accept": "application/json, text/event-stream"},
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        )
    return response.status_code


async def test_wildcard_address_prints_a_reachable_url_and_the_host_hint(app: Path) -> None:
    async with serving(app, "--host", "0.0.0.0", "--port", "0", lines=2) as (first, hint):
        match = re.fullmatch(
            r"mcptrio: serving 'cli-test' on (http://127\.0\.0\.1:(\d+)/mcp)"
            r" \(listening on every interface: 0\.0\.0\.0\)",
            first,
        )
        assert match, first
        url, port = match.group(1), match.group(2)
        name = socket.gethostname()
        assert hint.startswith("mcptrio: the Host check accepts only 127.0.0.1, localhost, [::1]")
        assert "add --allowed-host NAME" in hint and f"--allowed-host {name}" in hint
        assert await status_for(url, f"127.0.0.1:{port}") != 403
        assert await status_for(url, f"{name}:{port}") == 403


async def test_allowed_host_option_feeds_the_host_check(app: Path) -> None:
    args = ["--port", "0", "--allowed-host", "mcp.example.test", "--allowed-host", "*.corp.test"]
    async with serving(app, *args, lines=1) as (first,):
        url = first.rsplit(" ", 1)[1]
        port = url.split(":")[2].split("/")[0]
        assert await status_for(url, f"mcp.example.test:{port}") != 403
        assert await status_for(url, f"api.corp.test:{port}") != 403
        assert await status_for(url, f"localhost:{port}") != 403
        assert await status_for(url, f"other.test:{port}") == 403


def test_port_parsing_matches_the_config_range() -> None:
    for value in (0, 1, 8000, 65535):
        assert HttpConfig(port=value).port == _port(str(value)) == value
    for value in (-1, 65536, 99999):
        with pytest.raises(argparse.ArgumentTypeError):
            _port(str(value))
        with pytest.raises(ConfigError, match="must be 1-65535, or 0 for a free port"):
            HttpConfig(port=value)


@given(st.integers(min_value=-(10**6), max_value=10**6))
def test_port_accepted_exactly_in_range(value: int) -> None:
    try:
        parsed = _port(str(value))
    except argparse.ArgumentTypeError as exc:
        assert not 0 <= value <= 65535
        assert "give 1-65535, or 0 for a free port" in str(exc)
    else:
        assert parsed == value and 0 <= value <= 65535


@given(st.text(max_size=12).filter(lambda t: not t.strip().lstrip("+-").isdigit()))
def test_port_rejects_non_numbers(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="is not a port number"):
        _port(text)


async def test_wildcard_address_with_allowed_hosts_names_them(app: Path) -> None:
    args = ["--host", "0.0.0.0", "--port", "0", "--allowed-host", "notes.lan"]
    async with serving(app, *args, lines=2) as (first, second):
        port = first.split(" on ", 1)[1].split(":")[2].split("/")[0]
        assert second == f"mcptrio: other machines can connect as http://notes.lan:{port}/mcp"


@given(st.text(max_size=10))
def test_log_level_accepted_exactly_when_python_logging_knows_it(text: str) -> None:
    try:
        level = _log_level(text)
    except argparse.ArgumentTypeError as exc:
        assert text.strip().upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        assert "choose one of DEBUG, INFO, WARNING, ERROR, CRITICAL" in str(exc)
    else:
        assert isinstance(logging.getLevelName(level), int)
