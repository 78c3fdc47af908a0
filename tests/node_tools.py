"""The official Node-based MCP tooling, pinned and runnable from tests.

- ``node22()``: a Node >= 22 binary (``node`` on PATH, else ``node@22`` from npm, installed once
  into ``<repo>/.cache/node22``); both tools below crash on older Node.
- ``npm_tool(package_at_version)``: a pinned npm package installed once into
  ``<repo>/.cache/npm-tools/<name>``; returns the argv prefix that runs its bin with Node 22.
  Unlike ``npx``, nothing is resolved or fetched at run time.
- ``run_conformance_server``: the conformance suite (``CONFORMANCE``) against a server URL,
  parsed into a ``ConformanceResult``; ``failure_table`` prints its failures.
- ``run_inspector``: one ``mcp-inspector --cli`` call (``INSPECTOR``).
- ``open_http_server``: runs a server command and yields the ``.../mcp`` URL it prints.
- ``load_baseline``: the agreed expected failures (``tests/conformance-baseline.yml``).

Installs run under a file lock (parallel workers install once) and leave a stamp, so later
runs start at once. Nothing here skips: when npm cannot install, ``HarnessError`` says why.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import trio
from file_lock import file_lock

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = REPO_ROOT / ".cache"
NODE_MAJOR = 22
CONFORMANCE = "@modelcontextprotocol/conformance@0.2.0-alpha.12"
INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"

_STAMP_NAME = ".mcptrio-stamp"
_INSTALL_TIMEOUT = 900.0
_OUTPUT_KEPT = 256 * 1024
_URL_PATTERN = re.compile(rb"\bhttps?://[^\s/'\"]+:\d+/mcp\b")


class HarnessError(RuntimeError):
    """Node or an npm tool could not be installed or run, or its output made no sense."""


# ----- Node 22 and pinned npm packages ----------------------------------------------------------


def node22() -> Path:
    """A Node >= 22 binary: ``node`` on PATH when new enough, else ``node@22`` from npm.

    The npm copy goes to ``<repo>/.cache/node22`` on first use. Raises ``HarnessError`` with
    npm's output when it cannot be installed.
    """
    on_path = shutil.which("node")
    if on_path is not None and _node_major(Path(on_path)) >= NODE_MAJOR:
        return Path(on_path)
    prefix = CACHE_DIR / "node22"
    stamp_text = f"node@{NODE_MAJOR}\n"
    binary = _find_node_binary(prefix)
    if binary is not None and _read(prefix / _STAMP_NAME) == stamp_text:
        return binary
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with file_lock(CACHE_DIR / ".node22.lock"):
        binary = _find_node_binary(prefix)
        if binary is not None and _read(prefix / _STAMP_NAME) == stamp_text:
            return binary  # another worker installed it while this one waited
        prefix.mkdir(parents=True, exist_ok=True)
        _npm(["install", "--prefix", os.fspath(prefix), f"node@{NODE_MAJOR}"], node=None)
        binary = _find_node_binary(prefix)
        if binary is None:
            raise HarnessError(
                f"`npm install node@{NODE_MAJOR}` put no node binary under {prefix}/node_modules; "
                "the package fetches it in an install script, so check that npm runs install "
                "scripts (allow-scripts), or put Node >= 22 on PATH"
            )
        major = _node_major(binary)
        if major < NODE_MAJOR:
            raise HarnessError(f"{binary} is Node {major}, not >= {NODE_MAJOR}; delete {prefix}")
        (prefix / _STAMP_NAME).write_text(stamp_text)
    return binary


def npm_tool(package_at_version: str, *, bin_name: str | None = None) -> list[str]:
    """The argv prefix that runs a pinned npm package's bin with Node 22.

    ``package_at_version`` names an exact version (``@scope/name@1.2.3``); the package is
    installed once into ``<repo>/.cache/npm-tools/<name>``. ``bin_name`` picks one of several
    bins (default: the only one, else the one named like the package).
    """
    name, version = _split_package(package_at_version)
    node = node22()
    prefix = CACHE_DIR / "npm-tools" / name
    package_dir = prefix / "node_modules" / name
    stamp_text = f"{name}@{version}\n"
    if _read(prefix / _STAMP_NAME) != stamp_text:
        prefix.mkdir(parents=True, exist_ok=True)
        with file_lock(prefix.parent / f".{prefix.name}.lock"):
            if _read(prefix / _STAMP_NAME) != stamp_text:
                install = ["install", "--prefix", os.fspath(prefix), "--save-exact"]
                _npm([*install, f"{name}@{version}"], node=node)
                found = _package_json(package_dir).get("version")
                if found != version:
                    raise HarnessError(
                        f"after installing {name}@{version}, {package_dir} holds version "
                        f"{found!r}; delete {prefix} and run again"
                    )
                (prefix / _STAMP_NAME).write_text(stamp_text)
    return [os.fspath(node), os.fspath(package_dir / _bin_path(name, package_dir, bin_name))]


def _split_package(package_at_version: str) -> tuple[str, str]:
    name, at, version = package_at_version.rpartition("@")
    if not at or not name or not version or name == "@":
        raise ValueError(
            f"give a package with an exact version, like {CONFORMANCE!r}, not "
            f"{package_at_version!r}"
        )
    return name, version


def _bin_path(name: str, package_dir: Path, bin_name: str | None) -> str:
    bins: Any = _package_json(package_dir).get("bin")
    if isinstance(bins, str):
        bins = {name.rpartition("/")[2]: bins}
    if not isinstance(bins, dict) or not bins:
        raise HarnessError(f"{name} declares no bin in {package_dir / 'package.json'}")
    wanted = bin_name or (next(iter(bins)) if len(bins) == 1 else name.rpartition("/")[2])
    if wanted not in bins:
        raise HarnessError(f"{name} has no bin {wanted!r}; pick one of {sorted(bins)}")
    return str(bins[wanted])


def _package_json(package_dir: Path) -> dict[str, Any]:
    try:
        loaded = json.loads((package_dir / "package.json").read_bytes())
    except (OSError, ValueError) as error:
        raise HarnessError(f"cannot read {package_dir / 'package.json'}: {error}") from error
    if not isinstance(loaded, dict):
        raise HarnessError(f"{package_dir / 'package.json'} is not a JSON object")
    return loaded


def _npm(args: list[str], *, node: Path | None) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise HarnessError("npm is not on PATH; install Node.js (with npm) to run this test")
    env = dict(os.environ)
    if node is not None:
        # Install scripts and engine checks then see Node 22, not an older system node.
        env["PATH"] = os.pathsep.join([os.fspath(node.parent), env.get("PATH", "")])
    command = [npm, *args, "--no-audit", "--no-fund", "--loglevel=warn"]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=_INSTALL_TIMEOUT
        )
    except subprocess.TimeoutExpired as timeout:
        raise HarnessError(
            f"`{' '.join(command)}` still running after {_INSTALL_TIMEOUT:.0f} s"
        ) from timeout
    except OSError as error:
        raise HarnessError(f"cannot run `{' '.join(command)}`: {error}") from error
    if done.returncode != 0:
        raise HarnessError(
            f"`{' '.join(command)}` exited with {done.returncode}\n"
            f"--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"
        )


def _node_major(node: Path) -> int:
    """The major version of a node binary; 0 when it does not run."""
    try:
        done = subprocess.run(
            [os.fspath(node), "--version"], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return 0
    match = re.fullmatch(r"v(\d+)\..*", done.stdout.strip())
    return int(match.group(1)) if done.returncode == 0 and match else 0


def _find_node_binary(prefix: Path) -> Path | None:
    modules = prefix / "node_modules"
    candidates = [modules / "node" / "bin" / "node", modules / ".bin" / "node"]
    if sys.platform == "win32":
        candidates = [modules / "node" / "bin" / "node.exe", modules / "node" / "node.exe"]
    return next((path for path in candidates if path.is_file()), None)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


# ----- conformance results ----------------------------------------------------------------------

SUCCESS, FAILURE, WARNING, INFO = "SUCCESS", "FAILURE", "WARNING", "INFO"

_SUMMARY_MARKER = "=== SUMMARY ==="
_SUMMARY = re.compile(r"^([✓✗]) (\S+): (\d+) passed, (\d+) failed$", re.MULTILINE)
_NOT_SCORED_HEADER = re.compile(r"^Not scored for \S+: .*$", re.MULTILINE)
_NOT_SCORED_LINE = re.compile(r"^\s+[✓✗] (\S+) \((.*)\)\s*$")
_FAILED_TO_RUN = re.compile(r"^Failed to run scenario (\S+): ?(.*)$", re.MULTILINE)
_RESULT_DIR = re.compile(r"^server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")


@attrs.frozen
class CheckResult:
    """One check of one scenario: ``status`` is SUCCESS, FAILURE, WARNING or INFO."""

    scenario: str
    id: str
    status: str
    message: str
    description: str = ""


@attrs.frozen
class ScenarioResult:
    """The checks one scenario produced; ``scored`` is False for not-scored scenarios."""

    name: str
    scored: bool
    checks: tuple[CheckResult, ...]

    @property
    def passed(self) -> list[CheckResult]:
        """The checks with status SUCCESS."""
        return [check for check in self.checks if check.status == SUCCESS]

    @property
    def failed(self) -> list[CheckResult]:
        """The checks with status FAILURE."""
        return [check for check in self.checks if check.status == FAILURE]


@attrs.frozen
class ConformanceResult:
    """One ``conformance server`` run: every scenario's checks, the exit status and the log."""

    url: str
    requirements: str
    returncode: int
    scenarios: tuple[ScenarioResult, ...]
    log: str
    log_path: Path

    @property
    def checks(self) -> list[CheckResult]:
        """Every check of every scenario, in run order."""
        return [check for scenario in self.scenarios for check in scenario.checks]

    def with_status(self, status: str) -> list[CheckResult]:
        """The checks with this status."""
        return [check for check in self.checks if check.status == status]

    def unexpected_failures(self, baseline: Iterable[str] = ()) -> list[CheckResult]:
        """Failed checks not covered by a ``scenario`` or ``scenario:check-id`` baseline entry."""
        entries = set(baseline)
        return [
            check
            for check in self.with_status(FAILURE)
            if check.scenario not in entries and f"{check.scenario}:{check.id}" not in entries
        ]

    def stale_baseline_entries(self, baseline: Iterable[str]) -> list[str]:
        """Baseline entries that no longer match a failed check (remove them)."""
        failures = self.with_status(FAILURE)
        matched = {check.scenario for check in failures}
        matched |= {f"{check.scenario}:{check.id}" for check in failures}
        return sorted(set(baseline) - matched)

    def summary(self) -> str:
        """One line: how many scenarios ran and how many checks passed, failed and warned."""
        count = {status: len(self.with_status(status)) for status in (SUCCESS, FAILURE, WARNING)}
        return (
            f"conformance --requirements {self.requirements} against {self.url}: "
            f"{len(self.scenarios)} scenarios, {count[SUCCESS]} checks passed, "
            f"{count[FAILURE]} failed, {count[WARNING]} warnings (exit {self.returncode}; "
            f"log {self.log_path})"
        )


def failure_table(checks: Sequence[CheckResult]) -> str:
    """A plain-text table of checks: scenario, check id, status and message, one per line."""
    rows = [("scenario", "check", "status", "message")]
    rows += [
        (check.scenario, check.id, check.status, " ".join(check.message.split()) or "-")
        for check in checks
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  "
        + row[3]
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


def read_conformance_results(out_dir: Path, log: str) -> tuple[ScenarioResult, ...]:
    """Parse one run's ``checks.json`` files under ``out_dir`` against its log.

    The log's summary fixes which scenarios ran and their pass/fail counts; a scenario that
    crashed before writing ``checks.json`` becomes one FAILURE check carrying the log's error.
    Raises ``HarnessError`` when the run did not finish or the files disagree with the summary.
    """
    _, marker, after = log.partition(_SUMMARY_MARKER)
    if not marker:
        raise HarnessError(f"the conformance run did not finish:\n{_tail(log)}")
    summary = {m.group(2): (int(m.group(3)), int(m.group(4))) for m in _SUMMARY.finditer(after)}
    files: dict[str, Path] = {}
    for checks_file in sorted(out_dir.glob("*/checks.json")):
        match = _RESULT_DIR.match(checks_file.parent.name)
        if match is None:
            raise HarnessError(f"unexpected result directory {checks_file.parent}")
        name = match.group(1)
        if name in files or name not in summary:
            raise HarnessError(
                f"{checks_file} is not from this run alone (scenario {name!r}); use an empty "
                "output directory per run"
            )
        files[name] = checks_file
    crashes = {m.group(1): m.group(2).strip() for m in _FAILED_TO_RUN.finditer(log)}
    not_scored = _not_scored(after)
    scenarios = []
    for name, (passed, failed) in summary.items():
        if name in files:
            checks = _load_checks(name, files[name])
        else:
            message = crashes.get(name) or "the scenario wrote no checks.json; see the log"
            checks = (CheckResult(name, name, FAILURE, message, "Failed to run scenario"),)
        scenario = ScenarioResult(name, name not in not_scored, checks)
        if (len(scenario.passed), len(scenario.failed)) != (passed, failed):
            raise HarnessError(
                f"scenario {name}: the summary says {passed} passed, {failed} failed, but "
                f"{files.get(name, 'the log')} has {len(scenario.passed)} and "
                f"{len(scenario.failed)}; has the output format changed?"
            )
        scenarios.append(scenario)
    return tuple(scenarios)


def _not_scored(log: str) -> set[str]:
    header = _NOT_SCORED_HEADER.search(log)
    if header is None:
        return set()
    names = set()
    for line in log[header.end() :].splitlines()[1:]:
        match = _NOT_SCORED_LINE.match(line)
        if match is None:
            break
        names.add(match.group(1))
    return names


def _load_checks(scenario: str, path: Path) -> tuple[CheckResult, ...]:
    try:
        loaded: Any = json.loads(path.read_bytes())
        return tuple(
            CheckResult(
                scenario=scenario,
                id=str(check["id"]),
                status=str(check["status"]),
                message=str(check.get("errorMessage") or ""),
                description=str(check.get("description") or ""),
            )
            for check in loaded
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise HarnessError(f"cannot read the checks in {path}: {error!r}") from error


def _tail(text: str, limit: int = 8000) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


async def run_conformance_server(
    url: str,
    requirements: str,
    *,
    out_dir: os.PathLike[str] | str,
    extra_env: Mapping[str, str] | None = None,
) -> ConformanceResult:
    """Run ``conformance server --url URL --requirements REQ -o OUT_DIR`` with Node 22.

    ``out_dir`` must hold no earlier results; the full log is kept in
    ``OUT_DIR/conformance.log`` (also when cancelled). ``extra_env`` adds variables to the
    suite's environment (``NODE_EXTRA_CA_CERTS`` for a test CA). Bound the call with
    ``trio.fail_after``.
    Raises ``HarnessError`` when the suite cannot run, does not finish, or its exit status
    disagrees with the parsed checks.
    """
    out = Path(out_dir)
    await trio.to_thread.run_sync(_prepare_out_dir, out)
    tool = await trio.to_thread.run_sync(npm_tool, CONFORMANCE)
    command = [*tool, "server", "--url", url, "--requirements", requirements, "-o", os.fspath(out)]
    log_path = out / "conformance.log"
    env = {**os.environ, "NO_COLOR": "1", **(extra_env or {})}
    # A file, not a pipe: the log survives a cancelled run for the person reading it.
    log_file = await trio.to_thread.run_sync(partial(open, log_path, "wb"))
    with log_file:
        done = await trio.run_process(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            check=False,
        )
    log = await trio.Path(log_path).read_text(encoding="utf-8", errors="replace")
    if _SUMMARY_MARKER not in log:
        raise HarnessError(
            f"`{' '.join(command)}` exited with {done.returncode} before its summary:\n"
            + _tail(log)
        )
    scenarios = await trio.to_thread.run_sync(read_conformance_results, out, log)
    # The suite exits 1 exactly when a scored scenario has a failed check.
    expected = int(any(scenario.scored and scenario.failed for scenario in scenarios))
    if done.returncode != expected:
        raise HarnessError(
            f"the suite exited with {done.returncode}, but its checks say {expected}; "
            f"see {log_path}:\n{_tail(log)}"
        )
    return ConformanceResult(url, requirements, done.returncode, scenarios, log, log_path)


def _prepare_out_dir(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if any(out.glob("*/checks.json")):
        raise ValueError(f"{out} already holds conformance results; give an empty directory")


# ----- the client leg -----------------------------------------------------------------------

_CLIENT_SUMMARY_MARKER = "=== SUITE SUMMARY ==="
_CLIENT_SUMMARY = re.compile(
    r"^([✓✗]) (\S+): (\d+) passed, (\d+) failed(?:, (\d+) warnings?)?$", re.MULTILINE
)
_CLIENT_RESULT_DIR = re.compile(r"^(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")


def read_client_results(out_dir: Path, log: str) -> tuple[ScenarioResult, ...]:
    """Parse a ``conformance client`` run: its ``checks.json`` files (``auth/`` scenarios sit
    in a subdirectory) against the log's suite summary, as ``read_conformance_results`` does.
    """
    _, marker, after = log.partition(_CLIENT_SUMMARY_MARKER)
    if not marker:
        raise HarnessError(f"the conformance client run did not finish:\n{_tail(log)}")
    summary = {
        m.group(2): (int(m.group(3)), int(m.group(4))) for m in _CLIENT_SUMMARY.finditer(after)
    }
    files: dict[str, Path] = {}
    for checks_file in sorted(out_dir.rglob("checks.json")):
        relative = checks_file.parent.relative_to(out_dir).as_posix()
        match = _CLIENT_RESULT_DIR.match(relative)
        if match is None or match.group(1) in files or match.group(1) not in summary:
            raise HarnessError(f"{checks_file} is not from this run alone; use an empty directory")
        files[match.group(1)] = checks_file
    not_scored = _not_scored(after)
    scenarios = []
    for name, (passed, failed) in summary.items():
        if name in files:
            checks = _load_checks(name, files[name])
        else:
            checks = (CheckResult(name, name, FAILURE, "no checks.json; see the log"),)
        scenario = ScenarioResult(name, name not in not_scored, checks)
        if (len(scenario.passed), len(scenario.failed)) != (passed, failed):
            raise HarnessError(
                f"scenario {name}: the summary says {passed} passed, {failed} failed, but "
                f"{files.get(name, 'the log')} disagrees; has the output format changed?"
            )
        scenarios.append(scenario)
    return tuple(scenarios)


def _prepare_client_out_dir(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if any(out.rglob("checks.json")):
        raise ValueError(f"{out} already holds conformance results; give an empty directory")


async def run_conformance_client(
    command: Sequence[str],
    requirements: str | None = None,
    *,
    suite: str | None = None,
    out_dir: os.PathLike[str] | str,
    cwd: os.PathLike[str] | str = REPO_ROOT,
) -> ConformanceResult:
    """Run ``conformance client --command COMMAND --requirements REQ -o OUT_DIR`` with Node 22
    (or ``--suite SUITE`` instead of ``--requirements``, for the sets no revision requires).

    The suite starts a mock server per scenario and runs ``COMMAND URL`` (from ``cwd``) with
    the scenario in the environment. The log is kept in ``OUT_DIR/conformance.log``; the
    result's ``url`` is the command line. Bound the call with ``trio.fail_after``.
    """
    if (requirements is None) == (suite is None):
        raise ValueError("give requirements or suite, not both or neither")
    out = Path(out_dir)
    await trio.to_thread.run_sync(_prepare_client_out_dir, out)
    tool = await trio.to_thread.run_sync(npm_tool, CONFORMANCE)
    command_line = shlex.join(command)
    selection = ["--requirements", requirements] if requirements else ["--suite", str(suite)]
    argv = [*tool, "client", "--command", command_line, *selection, "-o", os.fspath(out)]
    log_path = out / "conformance.log"
    env = {**os.environ, "NO_COLOR": "1"}
    log_file = await trio.to_thread.run_sync(partial(open, log_path, "wb"))
    with log_file:
        done = await trio.run_process(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            check=False,
        )
    log = await trio.Path(log_path).read_text(encoding="utf-8", errors="replace")
    scenarios = await trio.to_thread.run_sync(read_client_results, out, log)
    chosen = requirements or f"suite {suite}"
    return ConformanceResult(command_line, chosen, done.returncode, scenarios, log, log_path)


# ----- the expected-failures baseline -----------------------------------------------------------

_BASELINE_KEY = re.compile(r"^([A-Za-z_]+):\s*(\[\])?$")
_BASELINE_ITEM = re.compile(r"^\s+-\s+(.+)$")
_BASELINE_ENTRY = re.compile(r"^[^\s:]+(:[^\s:]+)?$")


def parse_baseline(text: str) -> frozenset[str]:
    """The ``server`` entries of an expected-failures file, in the suite's own YAML format.

    Entries are ``scenario`` or ``scenario:check-id``, one ``- entry`` per line under
    ``server:``; comments, blank lines and other keys (``client:``) are allowed. Raises
    ``ValueError`` naming the line for anything else.
    """
    entries: set[str] = set()
    key: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not line:
            continue
        if match := _BASELINE_KEY.match(line):
            key = match.group(1)
            continue
        item = _BASELINE_ITEM.match(line)
        if item is None or key is None:
            raise ValueError(f"baseline line {number}: expected `server:` or `  - entry`: {raw!r}")
        entry = item.group(1).strip()
        if len(entry) >= 2 and entry[0] == entry[-1] and entry[0] in "'\"":
            entry = entry[1:-1]
        if not _BASELINE_ENTRY.match(entry):
            raise ValueError(
                f"baseline line {number}: {entry!r} is not `scenario` or `scenario:check-id`"
            )
        if key == "server":
            entries.add(entry)
    return frozenset(entries)


def load_baseline(path: os.PathLike[str] | str) -> frozenset[str]:
    """``parse_baseline`` of a file."""
    return parse_baseline(Path(path).read_text(encoding="utf-8"))


# ----- the Inspector CLI ------------------------------------------------------------------------


async def run_inspector(
    args: Sequence[str], *, cwd: os.PathLike[str] | str = REPO_ROOT
) -> subprocess.CompletedProcess[bytes]:
    """Run ``mcp-inspector --cli ARGS`` and capture its output (never raises on exit status).

    Its state lives under ``<repo>/.cache/inspector-state``, not the user's home, so a personal
    catalog or stored login cannot change results. Bound the call with ``trio.fail_after``.
    """
    tool = await trio.to_thread.run_sync(npm_tool, INSPECTOR)
    state = CACHE_DIR / "inspector-state"
    env = {
        **os.environ,
        "MCP_INSPECTOR_SECRET_STORE": "memory",
        "MCP_STORAGE_DIR": os.fspath(state / "storage"),
        "MCP_CATALOG_PATH": os.fspath(state / "mcp.json"),
        "MCP_CLIENT_CONFIG_PATH": os.fspath(state / "client.json"),
        "MCP_INSPECTOR_OAUTH_STATE_PATH": os.fspath(state / "oauth.json"),
        "NO_COLOR": "1",
    }
    return await trio.run_process(
        [*tool, "--cli", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )


# ----- a server under test ----------------------------------------------------------------------


def mcptrio_http_command(target: str = "examples/everything.py") -> list[str]:
    """``python -m mcptrio serve TARGET --transport http --port 0`` (run it from the repo)."""
    return [sys.executable, "-m", "mcptrio", "serve", target, "--transport", "http", "--port", "0"]


@attrs.define
class RunningServer:
    """A server started by ``open_http_server``: its URL and the tail of its output."""

    url: str
    command: list[str]
    process: trio.Process
    _output: bytearray

    def output(self) -> str:
        """The last 256 KiB the server printed (stdout and stderr together)."""
        return self._output.decode(errors="replace")


@contextlib.asynccontextmanager
async def open_http_server(
    command: Sequence[str], *, cwd: os.PathLike[str] | str = REPO_ROOT
) -> AsyncIterator[RunningServer]:
    """Run a server command and yield once it prints a ``http://HOST:PORT/mcp`` URL.

    The URL may appear on stdout or stderr. The server is killed when the block exits.
    Raises ``HarnessError`` with its output if it exits before printing a URL. Bound the
    wait with ``trio.fail_after``.
    """
    output = bytearray()
    try:
        async with trio.open_nursery() as nursery:
            run = partial(
                trio.run_process,
                list(command),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                check=False,
                deliver_cancel=_kill,
            )
            process: trio.Process = await nursery.start(run)
            assert process.stdout is not None
            url = await _read_url(process.stdout, output)
            if url is None:
                await process.wait()
                raise HarnessError(
                    f"`{' '.join(command)}` exited with {process.returncode} before printing "
                    f"an http://HOST:PORT/mcp URL:\n{_tail(output.decode(errors='replace'))}"
                )
            # The pipe must keep draining, or the server blocks once it fills.
            nursery.start_soon(_drain, process.stdout, output)
            try:
                yield RunningServer(url, list(command), process, output)
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # Callers should see their own exception (or ours), not the nursery's wrapping.
        raise _sole_exception(group) from None


async def _read_url(stream: trio.abc.ReceiveStream, output: bytearray) -> str | None:
    while True:
        for line in bytes(output).split(b"\n")[:-1]:
            if match := _URL_PATTERN.search(line):
                return match.group(0).decode()
        chunk = await stream.receive_some()
        if not chunk:
            match = _URL_PATTERN.search(output)
            return match.group(0).decode() if match else None
        output += chunk


async def _drain(stream: trio.abc.ReceiveStream, output: bytearray) -> None:
    while chunk := await stream.receive_some():
        output += chunk
        del output[:-_OUTPUT_KEPT]


async def _kill(process: trio.Process) -> None:
    # Nothing in a test server is worth a graceful stop, and a lingering one slows every test.
    process.kill()


def _sole_exception(group: BaseExceptionGroup[BaseException]) -> BaseException:
    exception: BaseException = group
    while isinstance(exception, BaseExceptionGroup) and len(exception.exceptions) == 1:
        exception = exception.exceptions[0]
    return exception
