"""The interop harness itself: the official SDK's client judged against the official SDK's server.

If the SDK client passes every check against the SDK server, the checks ask for what the SDK
(our independent judge) actually does; a deliberately broken server proves they can fail. The
helpers in ``tests/sdk.py`` are tested with fake interpreters, without the SDK.
"""

from __future__ import annotations

import os
import stat
import sys
import textwrap
from pathlib import Path

import pytest
import sdk
import trio
from sdk import (
    SCRIPTS_DIR,
    SdkError,
    SdkReport,
    open_sdk_http_server,
    run_sdk_client,
    sdk_python_fixture,  # noqa: F401  (registers the sdk_python fixture)
    sdk_server_command,
)

SDK_RUN_LIMIT = 90.0
"""Seconds one SDK client run may take (each check has its own, shorter, limit)."""

ALL_CHECKS = {
    "initialize",
    "tools_list",
    "test_simple_text",
    "test_image_content",
    "test_audio_content",
    "test_embedded_resource",
    "test_multiple_content_types",
    "test_error_handling",
    "test_tool_with_progress",
    "test_tool_with_logging",
    "test_sampling",
    "test_elicitation",
    "test_elicitation_sep1034_defaults",
    "test_elicitation_sep1330_enums",
    "test_list_roots",
    "resources_list",
    "read_static_text",
    "read_static_binary",
    "read_template",
    "subscribe_unsubscribe",
    "prompts_list",
    "test_simple_prompt",
    "test_prompt_with_arguments",
    "test_prompt_with_embedded_resource",
    "test_prompt_with_image",
    "completion",
    "logging_set_level",
    "ping",
    "unknown_tool",
    "bad_arguments",
    "cancellation",
}
LEGACY_ONLY_CHECKS = {"subscribe_unsubscribe", "logging_set_level", "ping"}

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="fake interpreters are sh scripts")


def failures(report: SdkReport) -> str:
    return "\n".join(str(check) for check in report.failed)


# ----- the SDK against itself ---------------------------------------------------------------


@pytest.mark.interop
async def test_every_check_passes_against_the_sdk_server_over_stdio(sdk_python: Path) -> None:
    with trio.fail_after(SDK_RUN_LIMIT):
        report = await run_sdk_client(sdk_python, server_command=sdk_server_command(sdk_python))
    assert report.protocol_version == "2025-11-25"
    assert set(report) == ALL_CHECKS
    assert not report.failed, failures(report)
    assert not report.skipped


@pytest.mark.interop
@pytest.mark.parametrize("mode", ["auto", "2026-07-28"])
async def test_modern_era_skips_only_the_removed_features(sdk_python: Path, mode: str) -> None:
    with trio.fail_after(SDK_RUN_LIMIT):
        report = await run_sdk_client(
            sdk_python, server_command=sdk_server_command(sdk_python), mode=mode
        )
    assert report.protocol_version == "2026-07-28"
    assert not report.failed, failures(report)
    assert {check.name for check in report.skipped} == LEGACY_ONLY_CHECKS


@pytest.mark.interop
async def test_every_check_passes_against_the_sdk_server_over_http(sdk_python: Path) -> None:
    with trio.fail_after(SDK_RUN_LIMIT):
        async with open_sdk_http_server(sdk_python) as url:
            assert url.startswith("http://127.0.0.1:") and url.endswith("/mcp")
            report = await run_sdk_client(sdk_python, url=url)
    assert report.protocol_version == "2025-11-25"
    assert not report.failed, failures(report)
    assert set(report) == ALL_CHECKS


BROKEN_SERVER = """
import sys

sys.path.insert(0, {scripts!r})
import anyio
import sdk_server

mcp = sdk_server.mcp
mcp.remove_tool("test_simple_text")
mcp.remove_tool("wait_for_cancellation")
mcp.remove_prompt("test_prompt_with_image")


@sdk_server.fixture_tool("Answers with the wrong text")
async def test_simple_text():
    return sdk_server.text_result("This is not the text the fixture promises.")


@sdk_server.fixture_tool("Counts each cancellation twice")
async def wait_for_cancellation():
    try:
        await anyio.sleep(60)
    finally:
        sdk_server.cancellations += 2
    return sdk_server.text_result("not cancelled")


mcp.run("stdio")
"""


@pytest.mark.interop
async def test_checks_catch_a_server_that_deviates(sdk_python: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken_server.py"
    broken.write_text(BROKEN_SERVER.format(scripts=str(SCRIPTS_DIR)))
    with trio.fail_after(SDK_RUN_LIMIT):
        report = await run_sdk_client(sdk_python, server_command=[str(sdk_python), str(broken)])
    failed = {check.name for check in report.failed}
    # Each deviation fails its own checks and nothing else: the checks are isolated.
    assert failed == {"test_simple_text", "cancellation", "prompts_list", "test_prompt_with_image"}
    assert "This is not the text" in report["test_simple_text"].detail
    assert "test_prompt_with_image" in report["prompts_list"].detail
    assert "expected 1, got 2" in report["cancellation"].detail
    assert report["ping"].ok is True


@pytest.mark.interop
async def test_only_runs_the_named_checks(sdk_python: Path) -> None:
    with trio.fail_after(SDK_RUN_LIMIT):
        report = await run_sdk_client(
            sdk_python, server_command=sdk_server_command(sdk_python), only=["ping", "completion"]
        )
    assert set(report) == {"ping", "completion"}
    assert not report.failed, failures(report)


@pytest.mark.interop
async def test_unknown_check_names_are_an_error(sdk_python: Path) -> None:
    with trio.fail_after(SDK_RUN_LIMIT), pytest.raises(SdkError, match="unknown checks"):
        await run_sdk_client(sdk_python, server_command=["unused"], only=["no_such_check"])


# ----- helpers, with fake interpreters --------------------------------------------------------


def fake_python(path: Path, body: str) -> Path:
    """An executable sh script standing in for a Python interpreter."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@posix_only
async def test_run_sdk_client_passes_its_arguments_and_parses_the_report(tmp_path: Path) -> None:
    # The fake echoes its command line back as the detail of one check.
    python = fake_python(
        tmp_path / "python",
        """
        shift
        printf '{"protocol_version": "2025-11-25", "checks": ['
        printf '{"name": "argv", "ok": true, "detail": "%s"},' "$*"
        printf '{"name": "broken", "ok": false, "detail": "bad"},'
        printf '{"name": "gone", "ok": null, "detail": ""}]}'
        """,
    )
    report = await run_sdk_client(
        python, server_command=["srv", "--flag"], mode="auto", only=["a", "b"]
    )
    assert report.protocol_version == "2025-11-25"
    assert report["argv"].detail == "--mode auto --only a,b -- srv --flag"
    assert [check.name for check in report.failed] == ["broken"]
    assert [check.name for check in report.skipped] == ["gone"]
    assert str(report["broken"]) == "broken: FAILED (bad)"

    url_report = await run_sdk_client(python, url="http://127.0.0.1:1/mcp")
    assert url_report["argv"].detail == "--mode legacy --url http://127.0.0.1:1/mcp"


@posix_only
async def test_run_sdk_client_raises_with_stderr_when_the_script_fails(tmp_path: Path) -> None:
    python = fake_python(tmp_path / "python", 'echo "could not connect: refused" >&2\nexit 2\n')
    with pytest.raises(SdkError, match=r"(?s)exited with 2.*could not connect: refused"):
        await run_sdk_client(python, url="http://127.0.0.1:1/mcp")


@posix_only
async def test_run_sdk_client_raises_when_the_report_is_not_json(tmp_path: Path) -> None:
    python = fake_python(tmp_path / "python", 'echo "Traceback, not JSON"\necho oops >&2\n')
    with pytest.raises(SdkError, match=r"(?s)no valid report.*Traceback, not JSON.*oops"):
        await run_sdk_client(python, url="http://127.0.0.1:1/mcp")


async def test_run_sdk_client_needs_exactly_one_server_and_a_known_mode() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        await run_sdk_client("python")
    with pytest.raises(ValueError, match="exactly one"):
        await run_sdk_client("python", server_command=["srv"], url="http://x/mcp")
    with pytest.raises(ValueError, match="mode must be one of"):
        await run_sdk_client("python", url="http://x/mcp", mode="2025-11-25")


def test_sdk_server_command() -> None:
    server = str(SCRIPTS_DIR / "sdk_server.py")
    assert sdk_server_command("py") == ["py", server, "stdio"]
    assert sdk_server_command("py", "streamable-http") == [
        "py",
        server,
        "streamable-http",
        "--port",
        "0",
    ]
    assert sdk_server_command("py", "streamable-http", 8123, json_response=True)[3:] == [
        "--port",
        "8123",
        "--json-response",
    ]
    with pytest.raises(ValueError, match="streamable-http only"):
        sdk_server_command("py", "stdio", 8123)
    with pytest.raises(ValueError, match="transport must be"):
        sdk_server_command("py", "sse")  # type: ignore[arg-type]


@posix_only
async def test_open_sdk_http_server_reports_a_server_that_dies_first(tmp_path: Path) -> None:
    python = fake_python(tmp_path / "python", 'echo "Address already in use" >&2\nexit 1\n')
    with (
        trio.fail_after(10),
        pytest.raises(SdkError, match=r"(?s)before listening.*already in use"),
    ):
        async with open_sdk_http_server(python):
            pytest.fail("the server never listened")  # pragma: no cover


@posix_only
async def test_open_sdk_http_server_yields_the_ready_url_and_kills_the_server(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "pid"
    python = fake_python(
        tmp_path / "python",
        f"""
        echo $$ > {pid_file}
        echo "starting" >&2
        echo "READY http://127.0.0.1:4321/mcp" >&2
        exec sleep 60
        """,
    )
    with trio.fail_after(10):
        async with open_sdk_http_server(python) as url:
            assert url == "http://127.0.0.1:4321/mcp"
            pid = int(pid_file.read_text())
            os.kill(pid, 0)  # still running inside the block
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# ----- the virtualenv, with a fake interpreter ------------------------------------------------

# Answers the version probe (`-c ...`) from a file and the extras' import probe by a file's
# presence, records every call, and makes `-m pip install` write the version it installs (or,
# for uvicorn[standard], the extras' file).
FAKE_VENV_PYTHON = """
echo "$*" >> "$(dirname "$0")/calls"
here="$(dirname "$0")"
case "$1" in
  -c) case "$2" in
        *uvloop*) [ -f "$here/extras" ] || exit 1 ;;
        *) if [ -f "$here/version" ]; then cat "$here/version"; else exit 1; fi ;;
      esac ;;
  -m) if [ -f "$here/pip-fails" ]; then
        echo "ERROR: No matching distribution found for mcp==2.3.0" >&2; exit 1
      fi
      case "$*" in
        *uvicorn*) touch "$here/extras" ;;
        *) cat "$here/installs" > "$here/version" ;;
      esac ;;
esac
"""


def fake_venv(
    root: Path, *, version: str | None, installs: str = "2.3.0", extras: bool = True
) -> Path:
    python = fake_python(root / "bin" / "python", FAKE_VENV_PYTHON)
    if version is not None:
        (root / "bin" / "version").write_text(version + "\n")
    (root / "bin" / "installs").write_text(installs + "\n")
    if extras:
        (root / "bin" / "extras").write_text("")
    return python


def calls(python: Path) -> list[str]:
    log = python.parent / "calls"
    return log.read_text().splitlines() if log.exists() else []


@posix_only
def test_sdk_python_verifies_once_then_trusts_the_stamp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = tmp_path / "venv"
    python = fake_venv(venv, version="2.3.0")
    monkeypatch.setenv(sdk.VENV_ENV_VAR, str(venv))
    assert sdk.sdk_python() == python
    assert len(calls(python)) == 2  # the version and extras probes; no install needed
    assert sdk.sdk_python() == python
    assert len(calls(python)) == 2  # the stamps made the second call free


@posix_only
def test_sdk_python_adds_the_production_extras_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = tmp_path / "venv"
    python = fake_venv(venv, version="2.3.0", extras=False)
    # A virtualenv made before the extras: the SDK's stamp is there and stays trusted.
    (venv / ".mcptrio-sdk-stamp").write_text(f"mcp=={sdk.SDK_VERSION}\n")
    monkeypatch.setenv(sdk.VENV_ENV_VAR, str(venv))
    assert sdk.sdk_python() == python
    assert calls(python) == [
        "-c import httptools, uvloop",
        "-m pip install --disable-pip-version-check uvicorn[standard]",
        "-c import httptools, uvloop",
    ]
    assert (venv / ".mcptrio-sdk-extras-stamp").read_text() == "uvicorn[standard]\n"
    assert sdk.sdk_python() == python
    assert len(calls(python)) == 3


@posix_only
def test_sdk_python_raises_when_the_extras_do_not_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = tmp_path / "venv"
    python = fake_venv(venv, version="2.3.0", extras=False)
    (python.parent / "pip-fails").write_text("")
    monkeypatch.setenv(sdk.VENV_ENV_VAR, str(venv))
    with pytest.raises(SdkError, match=r"install uvicorn\[standard\] into"):
        sdk.sdk_python()
    assert not (venv / ".mcptrio-sdk-extras-stamp").exists()


@posix_only
def test_sdk_python_installs_the_pinned_sdk_when_missing_or_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = tmp_path / "venv"
    python = fake_venv(venv, version="2.2.0")
    monkeypatch.setenv(sdk.VENV_ENV_VAR, str(venv))
    assert sdk.sdk_python() == python
    installs = [call for call in calls(python) if call.startswith("-m pip install")]
    assert installs == ["-m pip install --disable-pip-version-check mcp==2.3.0"]


@posix_only
def test_sdk_python_raises_with_pip_output_when_install_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = tmp_path / "venv"
    python = fake_venv(venv, version=None)
    (python.parent / "pip-fails").write_text("")
    monkeypatch.setenv(sdk.VENV_ENV_VAR, str(venv))
    with pytest.raises(SdkError, match=r"(?s)install mcp==2\.3\.0.*No matching distribution"):
        sdk.sdk_python()
    assert not (venv / ".mcptrio-sdk-stamp").exists()


@posix_only
def test_sdk_python_raises_when_the_install_does_not_take(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = tmp_path / "venv"
    fake_venv(venv, version="2.2.0", installs="2.2.0")
    monkeypatch.setenv(sdk.VENV_ENV_VAR, str(venv))
    with pytest.raises(SdkError, match=r"imports mcp '2\.2\.0'"):
        sdk.sdk_python()


def test_sdk_venv_dir_defaults_to_the_repo_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(sdk.VENV_ENV_VAR, raising=False)
    assert sdk.sdk_venv_dir() == sdk.REPO_ROOT / ".cache" / "sdk-venv"
    monkeypatch.setenv(sdk.VENV_ENV_VAR, "/somewhere/else")
    assert sdk.sdk_venv_dir() == Path("/somewhere/else")
