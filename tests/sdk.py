"""Interop harness: the official MCP Python SDK (``mcp==2.3.0``) as an independent peer.

The SDK lives in its own virtualenv (it pulls pydantic, starlette and httpx2, none of which the
project depends on). Its two scripts in ``tests/sdk_scripts/`` run there:

- ``sdk_client.py`` drives any MCP server through the interop checks and prints a JSON report;
  ``run_sdk_client`` runs it and returns the checks by name.
- ``sdk_server.py`` serves the same fixture set, so our client can be driven against it;
  ``sdk_server_command`` builds its command line and ``open_sdk_http_server`` runs it over
  Streamable HTTP.

Register the session fixture in ``tests/conftest.py`` with
``from sdk import sdk_python_fixture  # noqa: F401``; tests then take ``sdk_python``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Literal

import attrs
import pytest
import trio
from file_lock import file_lock

SDK_VERSION = "2.3.0"
VENV_ENV_VAR = "MCPTRIO_SDK_VENV"
REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPTS_DIR = Path(__file__).resolve().parent / "sdk_scripts"
CLIENT_SCRIPT = SCRIPTS_DIR / "sdk_client.py"
SERVER_SCRIPT = SCRIPTS_DIR / "sdk_server.py"
MODES = ("legacy", "auto", "2026-07-28")

_STAMP_NAME = ".mcptrio-sdk-stamp"
_STAMP = f"mcp=={SDK_VERSION}\n"
EXTRAS = ("uvicorn[standard]",)
"""Installed next to the SDK: uvicorn's production extras (httptools, uvloop), so that the
benchmarks can also run the SDK as production deploys it."""
_EXTRAS_PROBE = "import httptools, uvloop"
# A stamp of its own: the SDK's stamp keeps meaning exactly "mcp is installed".
_EXTRAS_STAMP_NAME = ".mcptrio-sdk-extras-stamp"
_EXTRAS_STAMP = "".join(f"{extra}\n" for extra in EXTRAS)
_INSTALL_TIMEOUT = 900.0
_READY_PREFIX = b"READY "
_STDERR_KEPT = 64 * 1024


class SdkError(RuntimeError):
    """The SDK virtualenv could not be made ready, or an SDK script failed to run."""


@attrs.frozen
class Check:
    """One interop check from ``sdk_client.py``: ``ok`` is None when it was skipped."""

    name: str
    ok: bool | None
    detail: str

    def __str__(self) -> str:
        status = {True: "ok", False: "FAILED", None: "skipped"}[self.ok]
        return f"{self.name}: {status}" + (f" ({self.detail})" if self.detail else "")


class SdkReport(dict[str, Check]):
    """The checks of one ``sdk_client.py`` run by name, plus the negotiated protocol version."""

    def __init__(self, protocol_version: str, checks: Sequence[Check]) -> None:
        super().__init__((check.name, check) for check in checks)
        self.protocol_version = protocol_version

    @property
    def failed(self) -> list[Check]:
        """The checks that ran and failed."""
        return [check for check in self.values() if check.ok is False]

    @property
    def skipped(self) -> list[Check]:
        """The checks the negotiated era has no use for."""
        return [check for check in self.values() if check.ok is None]


# ----- the virtualenv ---------------------------------------------------------------------------


def sdk_venv_dir() -> Path:
    """Where the SDK virtualenv lives: ``$MCPTRIO_SDK_VENV``, else ``<repo>/.cache/sdk-venv``."""
    configured = os.environ.get(VENV_ENV_VAR)
    return Path(configured) if configured else REPO_ROOT / ".cache" / "sdk-venv"


def _venv_python(venv: Path) -> Path:
    if sys.platform == "win32":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def sdk_python() -> Path:
    """The python of a virtualenv holding ``mcp==2.3.0`` and ``EXTRAS``, creating it on first use.

    Safe to call from parallel test workers: creation happens under a file lock, and stamp
    files record a verified install so later runs skip the check. Raises ``SdkError`` (with
    pip's output) when the virtualenv cannot be created or the SDK cannot be installed.
    """
    venv = sdk_venv_dir()
    python = _venv_python(venv)
    stamp = venv / _STAMP_NAME
    extras_stamp = venv / _EXTRAS_STAMP_NAME

    def ready() -> bool:
        return _stamp_matches(stamp, python, _STAMP) and _stamp_matches(
            extras_stamp, python, _EXTRAS_STAMP
        )

    if ready():
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(venv.parent / f".{venv.name}.lock"):
        if ready():
            return python  # another worker finished while this one waited
        if not python.exists():
            _run([sys.executable, "-m", "venv", os.fspath(venv)], f"create a virtualenv at {venv}")
        pip = [os.fspath(python), "-m", "pip", "install", "--disable-pip-version-check"]
        if not _stamp_matches(stamp, python, _STAMP):
            if _installed_sdk_version(python) != SDK_VERSION:
                _run([*pip, f"mcp=={SDK_VERSION}"], f"install mcp=={SDK_VERSION} into {venv}")
                found = _installed_sdk_version(python)
                if found != SDK_VERSION:
                    raise SdkError(
                        f"after installing mcp=={SDK_VERSION}, {python} imports mcp {found!r}; "
                        f"delete {venv} (or fix ${VENV_ENV_VAR}) and run again"
                    )
            stamp.write_text(_STAMP)
        if not _stamp_matches(extras_stamp, python, _EXTRAS_STAMP):
            if not _imports(python, _EXTRAS_PROBE):
                # mcp pins uvicorn itself; this adds the extras' packages next to it.
                _run([*pip, *EXTRAS], f"install {' '.join(EXTRAS)} into {venv}")
                if not _imports(python, _EXTRAS_PROBE):
                    raise SdkError(
                        f"after installing {' '.join(EXTRAS)}, {python} cannot run"
                        f" {_EXTRAS_PROBE!r}; delete {venv} and run again"
                    )
            extras_stamp.write_text(_EXTRAS_STAMP)
    return python


def _stamp_matches(stamp: Path, python: Path, expected: str) -> bool:
    try:
        return python.exists() and stamp.read_text() == expected
    except OSError:
        return False


def _imports(python: Path, probe: str) -> bool:
    try:
        done = subprocess.run([os.fspath(python), "-c", probe], capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _installed_sdk_version(python: Path) -> str | None:
    """The version of ``mcp`` that ``python`` imports, or None when it cannot import it."""
    probe = "import importlib.metadata, mcp; print(importlib.metadata.version('mcp'))"
    try:
        done = subprocess.run(
            [os.fspath(python), "-c", probe], capture_output=True, text=True, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _run(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_INSTALL_TIMEOUT)
    except subprocess.TimeoutExpired as timeout:
        raise SdkError(
            f"could not {what}: still running after {_INSTALL_TIMEOUT:.0f} s"
        ) from timeout
    except OSError as error:
        raise SdkError(f"could not {what}: {error}") from error
    if done.returncode != 0:
        raise SdkError(
            f"could not {what}: `{' '.join(command)}` exited with {done.returncode}\n"
            f"--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"
        )


@pytest.fixture(scope="session", name="sdk_python")
def sdk_python_fixture() -> Path:
    """The SDK virtualenv's python; created if missing, never skipped."""
    return sdk_python()


# ----- the scripts ------------------------------------------------------------------------------


async def run_sdk_client(
    python: os.PathLike[str] | str,
    *,
    server_command: Sequence[str] | None = None,
    url: str | None = None,
    mode: str = "legacy",
    only: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> SdkReport:
    """Run ``sdk_client.py`` against a server and return its checks by name.

    Give the server as ``server_command`` (spawned over stdio) or ``url`` (Streamable HTTP).
    ``mode`` is the SDK client's: ``"legacy"``, ``"auto"`` or ``"2026-07-28"``. Bound the call
    with ``trio.fail_after``; cancelling it kills the script. Raises ``SdkError`` with the
    script's stderr when it cannot run the checks (bad arguments, connection refused, crash).
    ``env`` adds variables to the script's environment (``SSL_CERT_FILE`` for a test CA).
    """
    if (server_command is None) == (url is None):
        raise ValueError("give exactly one of server_command= or url=")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    command = [os.fspath(python), os.fspath(CLIENT_SCRIPT), "--mode", mode]
    if only is not None:
        command += ["--only", ",".join(only)]
    if url is not None:
        command += ["--url", url]
    else:
        assert server_command is not None
        command += ["--", *server_command]
    target = url if url is not None else " ".join(server_command or ())
    done = await trio.run_process(
        command,
        stdin=subprocess.DEVNULL,
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env={**os.environ, **env} if env is not None else None,
    )
    stdout = done.stdout.decode(errors="replace")
    stderr = done.stderr.decode(errors="replace")
    if done.returncode != 0:
        raise SdkError(
            f"sdk_client.py (mode {mode}, server {target}) exited with {done.returncode}:\n{stderr}"
        )
    try:
        report: Any = json.loads(stdout)
        checks = [Check(str(c["name"]), c["ok"], str(c["detail"])) for c in report["checks"]]
        return SdkReport(str(report["protocol_version"]), checks)
    except (ValueError, KeyError, TypeError) as error:
        raise SdkError(
            f"sdk_client.py (mode {mode}, server {target}) printed no valid report ({error}):\n"
            f"--- stdout ---\n{stdout[-4000:]}\n--- stderr ---\n{stderr[-8000:]}"
        ) from error


def sdk_server_command(
    python: os.PathLike[str] | str,
    transport: Literal["stdio", "streamable-http"] = "stdio",
    port: int | None = None,
    *,
    json_response: bool = False,
) -> list[str]:
    """The command line that runs ``sdk_server.py``.

    ``port`` (0 picks a free one, the default) and ``json_response`` apply to
    ``"streamable-http"`` only; that server prints ``READY <url>`` on stderr once listening.
    """
    command = [os.fspath(python), os.fspath(SERVER_SCRIPT), transport]
    if transport == "stdio":
        if port is not None or json_response:
            raise ValueError("port= and json_response= apply to streamable-http only")
    elif transport == "streamable-http":
        command += ["--port", str(0 if port is None else port)]
        if json_response:
            command.append("--json-response")
    else:
        raise ValueError(f"transport must be 'stdio' or 'streamable-http', not {transport!r}")
    return command


@contextlib.asynccontextmanager
async def open_sdk_http_server(
    python: os.PathLike[str] | str, *, json_response: bool = False
) -> AsyncIterator[str]:
    """Run ``sdk_server.py`` over Streamable HTTP on a free port; yield its endpoint URL.

    The server is killed when the block exits. Raises ``SdkError`` with its stderr if it
    exits before it listens. Bound the wait with ``trio.fail_after``.
    """
    command = sdk_server_command(python, "streamable-http", 0, json_response=json_response)
    kept = bytearray()
    try:
        async with trio.open_nursery() as nursery:
            run = partial(
                trio.run_process,
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                check=False,
                deliver_cancel=_kill,
            )
            process: trio.Process = await nursery.start(run)
            assert process.stderr is not None
            url = await _read_ready_line(process.stderr, kept)
            if url is None:
                await process.wait()
                raise SdkError(
                    f"sdk_server.py exited with {process.returncode} before listening:\n"
                    + kept.decode(errors="replace")
                )
            # The pipe must keep draining, or the server blocks once it fills.
            nursery.start_soon(_drain, process.stderr, kept)
            try:
                yield url
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # Callers should see their own exception (or ours), not the nursery's wrapping.
        raise _sole_exception(group) from None


def _sole_exception(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one leaf exception of ``group`` (through nested groups), else ``group`` itself."""
    exception: BaseException = group
    while isinstance(exception, BaseExceptionGroup) and len(exception.exceptions) == 1:
        exception = exception.exceptions[0]
    return exception


async def _kill(process: trio.Process) -> None:
    # The server keeps no state worth a graceful stop, and uvicorn may linger on open streams.
    process.kill()


async def _read_ready_line(stream: trio.abc.ReceiveStream, kept: bytearray) -> str | None:
    """Read stderr up to the ``READY <url>`` line; None when the stream ends first."""
    while True:
        lines = kept.split(b"\n")
        for line in lines[:-1]:
            if line.startswith(_READY_PREFIX):
                return line[len(_READY_PREFIX) :].decode().strip()
        chunk = await stream.receive_some()
        if not chunk:
            return None
        kept += chunk


async def _drain(stream: trio.abc.ReceiveStream, kept: bytearray) -> None:
    while chunk := await stream.receive_some():
        kept += chunk
        del kept[:-_STDERR_KEPT]
