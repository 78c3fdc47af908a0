"""The official MCP conformance suite against our Streamable HTTP server.

``test_official_suite`` serves ``examples/everything.py`` with ``python -m mcptrio serve
--transport http`` and runs ``@modelcontextprotocol/conformance`` with ``--requirements`` for
each revision in ``REQUIREMENTS``; every check must pass, except entries agreed upon in
``tests/conformance-baseline.yml`` (the suite's own format, ``server: [scenario |
scenario:check-id]``). The runner and its parser are tested here too: against the official
SDK's server (which passes everything), against a URL where nothing listens (which fails
everything), and on synthetic output, without Node.

Run with ``nox -s conformance`` (or ``pytest tests/test_conformance.py``); Node 22 and the
suite are installed from npm into ``.cache/`` on first use.
"""

from __future__ import annotations

import json
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import attrs
import pytest
import trio
import trustme
from hypothesis import given
from hypothesis import strategies as st
from node_tools import (
    CONFORMANCE,
    FAILURE,
    INFO,
    SUCCESS,
    WARNING,
    CheckResult,
    ConformanceResult,
    HarnessError,
    RunningServer,
    ScenarioResult,
    _node_major,
    _split_package,
    failure_table,
    load_baseline,
    mcptrio_http_command,
    node22,
    npm_tool,
    open_http_server,
    parse_baseline,
    read_conformance_results,
    run_conformance_server,
)
from sdk import sdk_python_fixture, sdk_server_command  # noqa: F401  (registers sdk_python)

REQUIREMENTS = ["2025-11-25", "2026-07-28"]
"""The frozen requirement sets our server must pass (one dual-era endpoint serves both)."""

SUITE_LIMIT = 600.0
"""Seconds for one whole suite run (each scenario has the suite's own 30 s limit)."""

QUICK_LIMIT = 60.0
BASELINE = Path(__file__).with_name("conformance-baseline.yml")


@pytest.fixture(scope="session")
def conformance_tool() -> list[str]:
    """Installs Node 22 and the suite before any time limit starts."""
    return npm_tool(CONFORMANCE)


# ----- our server -------------------------------------------------------------------------------


@pytest.mark.conformance
@pytest.mark.parametrize("adapter", ["h11", "hypercorn"])
@pytest.mark.parametrize("requirements", REQUIREMENTS)
async def test_official_suite(
    requirements: str, adapter: str, conformance_tool: list[str], tmp_path: Path
) -> None:
    baseline = load_baseline(BASELINE) if BASELINE.exists() else frozenset()
    server: RunningServer | None = None
    try:
        with trio.fail_after(SUITE_LIMIT):
            command = [*mcptrio_http_command(), "--http-server", adapter]
            async with open_http_server(command) as server:
                result = await run_conformance_server(
                    server.url, requirements, out_dir=tmp_path / "results"
                )
    except trio.TooSlowError:
        pytest.fail(
            f"the suite did not finish within {SUITE_LIMIT:.0f} s; its log so far is "
            f"{tmp_path / 'results' / 'conformance.log'}\n{_server_tail(server)}"
        )
    print(result.summary())
    if warnings := result.with_status(WARNING):
        print(f"warnings:\n{failure_table(warnings)}")
    unexpected = result.unexpected_failures(baseline)
    stale = result.stale_baseline_entries(baseline)
    report = [result.summary()]
    if unexpected:
        report += [f"{len(unexpected)} failed checks:", failure_table(unexpected)]
    if stale:
        report += [f"baseline entries that now pass (remove them from {BASELINE.name}):", *stale]
    assert not unexpected and not stale, "\n".join([*report, _server_tail(server)])
    assert result.scenarios, f"the suite ran no scenario:\n{result.log}"


@pytest.mark.conformance
@pytest.mark.parametrize("adapter", ["h11", "hypercorn"])
async def test_official_suite_over_https(
    adapter: str, conformance_tool: list[str], tmp_path: Path
) -> None:
    """The 2025-11-25 requirements against the HTTPS endpoint (Node trusts the test CA)."""
    ca = trustme.CA()
    # The DNS-rebinding scenario sends "Host: evil.example.com", and Node checks the server's
    # certificate against that name before the request leaves: the name is on the test
    # certificate so that the request reaches our server, whose Host check must refuse it.
    cert = ca.issue_cert("127.0.0.1", "localhost", "evil.example.com")
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    baseline = load_baseline(BASELINE) if BASELINE.exists() else frozenset()
    command = [*mcptrio_http_command(), "--http-server", adapter]
    command += ["--certfile", str(tmp_path / "server.pem")]
    server: RunningServer | None = None
    with trio.fail_after(SUITE_LIMIT):
        async with open_http_server(command) as server:
            assert server.url.startswith("https://")
            result = await run_conformance_server(
                server.url,
                "2025-11-25",
                out_dir=tmp_path / "results",
                extra_env={"NODE_EXTRA_CA_CERTS": str(tmp_path / "ca.pem")},
            )
    print(result.summary())
    unexpected = result.unexpected_failures(baseline)
    assert not unexpected, "\n".join(
        [result.summary(), failure_table(unexpected), _server_tail(server)]
    )
    assert len(result.with_status(SUCCESS)) >= 80, result.summary()


def _server_tail(server: RunningServer | None) -> str:
    if server is None:
        return "(the server did not start)"
    return f"--- server output (tail) ---\n{server.output()[-6000:]}"


# ----- the runner against real servers ----------------------------------------------------------


@pytest.mark.conformance
@pytest.mark.interop
async def test_runner_passes_the_sdk_server(
    sdk_python: Path, conformance_tool: list[str], tmp_path: Path
) -> None:
    """The reference server passes every check, so a failure against ours is ours."""
    with trio.fail_after(SUITE_LIMIT):
        async with open_http_server(sdk_server_command(sdk_python, "streamable-http", 0)) as sdk:
            result = await run_conformance_server(sdk.url, "2025-11-25", out_dir=tmp_path)
    assert not result.with_status(FAILURE), failure_table(result.with_status(FAILURE))
    assert result.returncode == 0
    assert len(result.scenarios) >= 30
    assert len(result.with_status(SUCCESS)) >= 80, result.summary()
    assert {"server-initialize", "tools-call-simple-text"} <= {s.name for s in result.scenarios}


@pytest.mark.conformance
async def test_runner_fails_every_scenario_when_nothing_listens(
    conformance_tool: list[str], tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{_unused_port()}/mcp"
    with trio.fail_after(SUITE_LIMIT):
        result = await run_conformance_server(url, "2025-11-25", out_dir=tmp_path)
    assert result.returncode == 1
    assert len(result.scenarios) >= 30
    assert all(scenario.failed for scenario in result.scenarios), result.summary()
    assert any(not scenario.scored for scenario in result.scenarios)
    table = failure_table(result.unexpected_failures())
    assert "server-initialize" in table
    assert result.log_path.read_text(encoding="utf-8") == result.log


@pytest.mark.conformance
async def test_runner_raises_when_the_suite_cannot_run(
    conformance_tool: list[str], tmp_path: Path
) -> None:
    with trio.fail_after(QUICK_LIMIT), pytest.raises(HarnessError, match="1999-01-01"):
        await run_conformance_server("http://127.0.0.1:9/mcp", "1999-01-01", out_dir=tmp_path)


async def test_runner_refuses_a_used_output_directory(tmp_path: Path) -> None:
    (tmp_path / "server-ping-2026-01-01T00-00-00-000Z").mkdir()
    (tmp_path / "server-ping-2026-01-01T00-00-00-000Z" / "checks.json").write_text("[]")
    with pytest.raises(ValueError, match="empty directory"):
        await run_conformance_server("http://127.0.0.1:9/mcp", "2025-11-25", out_dir=tmp_path)


@pytest.mark.conformance
def test_node22_is_new_enough() -> None:
    assert _node_major(node22()) >= 22


async def test_open_http_server_reports_a_server_that_exits_early() -> None:
    command = [
        sys.executable,
        "-c",
        "import sys; print('no such transport', file=sys.stderr); exit(2)",
    ]
    with trio.fail_after(QUICK_LIMIT), pytest.raises(HarnessError, match="no such transport"):
        async with open_http_server(command):
            pass  # pragma: no cover


async def test_open_http_server_finds_the_url_on_either_stream() -> None:
    script = (
        "import sys, time; print('starting', flush=True); "
        "print('INFO serving on http://127.0.0.1:4321/mcp (Ctrl-C to stop)', "
        "file=sys.stderr, flush=True); time.sleep(60)"
    )
    with trio.fail_after(QUICK_LIMIT):
        async with open_http_server([sys.executable, "-c", script]) as server:
            assert server.url == "http://127.0.0.1:4321/mcp"
            assert "starting" in server.output()
    assert server.process.returncode is not None


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ----- the parser, on synthetic output ----------------------------------------------------------

_WORDS = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)
_NAMES = st.lists(_WORDS, min_size=1, max_size=4).map("-".join)
_LINE = st.text(st.characters(exclude_categories=["Cc", "Cs", "Zl", "Zp"]), max_size=30)


@attrs.frozen
class _Fake:
    name: str
    scored: bool
    crashed: bool
    checks: tuple[tuple[str, str, str], ...]  # id, status, message


_FAKES = st.builds(
    _Fake,
    name=st.one_of(_NAMES, _NAMES.map(lambda name: f"server-{name}")),
    scored=st.booleans(),
    crashed=st.booleans(),
    checks=st.lists(
        st.tuples(_NAMES, st.sampled_from([SUCCESS, FAILURE, WARNING, INFO]), _LINE), max_size=4
    ).map(tuple),
)


def _write_fake_run(out_dir: Path, fakes: Sequence[_Fake], *, skew: int = 0) -> str:
    """The suite's output for ``fakes``: one result directory each, and the log."""
    log = ["Running requirements 2025-11-25 (n scenarios) against http://x/mcp", ""]
    summary = ["", "=== SUMMARY ==="]
    for index, fake in enumerate(fakes):
        log += ["", f"=== Running scenario: {fake.name} ==="]
        if fake.crashed:
            log.append(f"Failed to run scenario {fake.name}: Error: {fake.checks!r}")
            passed, failed = 0, 1
        else:
            directory = out_dir / f"server-{fake.name}-2026-11-22T00-38-2{index % 10}-858Z"
            directory.mkdir()
            checks = [
                {"id": id, "name": id, "description": "d", "status": status}
                | ({"errorMessage": message} if message else {})
                for id, status, message in fake.checks
            ]
            (directory / "checks.json").write_text(json.dumps(checks))
            log.append(f"Results saved to {directory}")
            passed = sum(status == SUCCESS for _, status, _ in fake.checks)
            failed = sum(status == FAILURE for _, status, _ in fake.checks)
        summary.append(
            f"{'✗' if failed else '✓'} {fake.name}: {passed + skew} passed, {failed} failed"
        )
    summary += ["", "Total: n passed, m failed"]
    if unscored := [fake for fake in fakes if not fake.scored]:
        summary += ["", f"Not scored for 2025-11-25: {len(unscored)} scenario(s) run, 0 failing."]
        summary += [f"  ✓ {fake.name} (pending)" for fake in unscored]
    return "\n".join(log + summary) + "\n"


@given(st.lists(_FAKES, max_size=6, unique_by=lambda fake: fake.name))
def test_results_are_read_as_the_suite_wrote_them(fakes: list[_Fake]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        log = _write_fake_run(Path(directory), fakes)
        scenarios = read_conformance_results(Path(directory), log)
    assert [scenario.name for scenario in scenarios] == [fake.name for fake in fakes]
    for scenario, fake in zip(scenarios, fakes, strict=True):
        assert scenario.scored == fake.scored
        if fake.crashed:
            (check,) = scenario.checks
            assert (check.id, check.status) == (fake.name, FAILURE)
            assert check.message == f"Error: {fake.checks!r}".strip()
        else:
            got = [(check.id, check.status, check.message) for check in scenario.checks]
            assert got == list(fake.checks)
            assert all(check.scenario == fake.name for check in scenario.checks)


def test_a_summary_that_disagrees_with_the_files_is_an_error(tmp_path: Path) -> None:
    fake = _Fake("ping", True, False, (("ping", SUCCESS, ""),))
    log = _write_fake_run(tmp_path, [fake], skew=1)
    with pytest.raises(HarnessError, match="ping: the summary says 2 passed"):
        read_conformance_results(tmp_path, log)


def test_an_unfinished_run_is_an_error(tmp_path: Path) -> None:
    log = _write_fake_run(tmp_path, [_Fake("ping", True, False, ())])
    with pytest.raises(HarnessError, match="did not finish"):
        read_conformance_results(tmp_path, log.partition("=== SUMMARY ===")[0])


def test_results_from_another_run_are_an_error(tmp_path: Path) -> None:
    log = _write_fake_run(tmp_path, [_Fake("ping", True, False, ())])
    (tmp_path / "server-other-2026-11-22T00-38-26-858Z").mkdir()
    (tmp_path / "server-other-2026-11-22T00-38-26-858Z" / "checks.json").write_text("[]")
    with pytest.raises(HarnessError, match="not from this run"):
        read_conformance_results(tmp_path, log)


def test_failure_table_lines_up_one_failure_per_line() -> None:
    checks = [
        CheckResult("tools-list", "tools-list", FAILURE, "Failed:\n  fetch   failed"),
        CheckResult("server-initialize", "wire-schema-valid", FAILURE, ""),
    ]
    lines = failure_table(checks).splitlines()
    assert lines == [
        "scenario           check              status   message",
        "tools-list         tools-list         FAILURE  Failed: fetch failed",
        "server-initialize  wire-schema-valid  FAILURE  -",
    ]


# ----- the baseline -----------------------------------------------------------------------------

_ENTRIES = st.one_of(_NAMES, st.tuples(_NAMES, _NAMES).map(":".join))


@given(
    server=st.lists(_ENTRIES, max_size=5),
    client=st.lists(_ENTRIES, max_size=3),
    quote=st.sampled_from(["", "'", '"']),
    comment=st.sampled_from(["", "  # agreed in review"]),
)
def test_baseline_reads_the_server_entries(
    server: list[str], client: list[str], quote: str, comment: str
) -> None:
    def section(key: str, entries: list[str]) -> list[str]:
        if not entries:
            return [f"{key}: []"]
        return [f"{key}:", *(f"  - {quote}{entry}{quote}{comment}" for entry in entries)]

    text = "\n".join(
        ["# expected failures", "", *section("server", server), *section("client", client)]
    )
    assert parse_baseline(text) == frozenset(server)


@pytest.mark.parametrize(
    "text",
    [
        "  - ping",
        "server:\n  - two words",
        "server: ping",
        "server:\n  - ping:a:b",
        "server:\nping",
    ],
)
def test_a_malformed_baseline_is_an_error(text: str) -> None:
    with pytest.raises(ValueError, match="baseline line"):
        parse_baseline(text)


def test_the_baseline_covers_scenarios_and_single_checks(tmp_path: Path) -> None:
    checks = (
        CheckResult("ping", "ping", FAILURE, "no"),
        CheckResult("tools-list", "tools-list", FAILURE, "no"),
        CheckResult("tools-list", "tools-name-format", FAILURE, "no"),
        CheckResult("tools-list", "wire-schema-valid", SUCCESS, ""),
    )
    result = ConformanceResult(
        url="http://x/mcp",
        requirements="2025-11-25",
        returncode=1,
        scenarios=(
            ScenarioResult("ping", True, checks[:1]),
            ScenarioResult("tools-list", True, checks[1:]),
        ),
        log="",
        log_path=tmp_path / "conformance.log",
    )
    assert result.unexpected_failures() == list(checks[:3])
    baseline = {"ping", "tools-list:tools-list", "tools-list:wire-schema-valid", "gone"}
    assert result.unexpected_failures(baseline) == [checks[2]]
    assert result.stale_baseline_entries(baseline) == ["gone", "tools-list:wire-schema-valid"]
    assert "3 failed" in result.summary()


def test_npm_packages_must_be_pinned() -> None:
    assert _split_package(CONFORMANCE) == ("@modelcontextprotocol/conformance", "0.2.0-alpha.12")
    assert _split_package("left-pad@1.3.0") == ("left-pad", "1.3.0")
    for loose in ["@modelcontextprotocol/conformance", "left-pad", "left-pad@", "@x"]:
        with pytest.raises(ValueError, match="exact version"):
            _split_package(loose)
