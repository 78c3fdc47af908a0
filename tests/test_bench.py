"""The benchmarks' smoke run: ``python -m bench --smoke`` must keep working (never how fast)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench._http import WRK_INSTALL_HINT, install_wrk

REPO_ROOT = Path(__file__).resolve().parent.parent

ROWS = (
    "http-json",
    "http-json-production",
    "http-sse",
    "http-2026",
    "http-hypercorn",
    "http-h11",
    "http-adapter",
    "https-hypercorn",
    "https-h11",
    "http-json-chain10",
    "http-sse-chain10",
    "http-2026-chain10",
    "latency-p50",
    "latency-p99",
    "stdio",
    "inprocess",
    "inprocess-codec",
    "inprocess-chain10",
    "memory-session",
    "memory-stream",
)
"""Every benchmark row, in the order the table prints them."""


@pytest.fixture(scope="module")
def smoke(sdk_python: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """Run the smoke benchmarks once: their stdout and their JSON results."""
    # Without wrk the HTTP rows cannot run, and every row is required: install it the way
    # ``python -m bench`` would, before the timed run.
    assert install_wrk(), WRK_INSTALL_HINT
    output = tmp_path_factory.mktemp("bench") / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--output", str(output)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return done.stdout, json.loads(output.read_text())


@pytest.mark.slow
@pytest.mark.interop
def test_smoke_run_prints_a_table_with_every_row(smoke: tuple[str, dict[str, Any]]) -> None:
    stdout, _ = smoke
    header = next(line for line in stdout.splitlines() if line.startswith("benchmark "))
    assert [cell.strip() for cell in header.split("|")][:5] == [
        "benchmark",
        "ours",
        "baseline",
        "ratio",
        "unit",
    ]
    table_rows = [line for line in stdout.splitlines() if line.count(" | ") >= 4]
    for key in ROWS:
        assert sum(f"[{key}]" in line for line in table_rows) == 1, (key, stdout)


@pytest.mark.slow
@pytest.mark.interop
def test_smoke_run_validates_every_response(smoke: tuple[str, dict[str, Any]]) -> None:
    stdout, results = smoke
    assert "all responses validated" in stdout
    assert results["validation"]["wrong"] == 0
    assert results["validation"]["checked"] > 0
    assert results["failures"] == []
    assert [row["key"] for row in results["rows"]] == list(ROWS)


@pytest.mark.slow
@pytest.mark.interop
def test_smoke_run_measures_every_row(smoke: tuple[str, dict[str, Any]]) -> None:
    stdout, results = smoke
    rows = {row["key"]: row for row in results["rows"]}
    # Both sides of every row ran: a failure of ours (or of a baseline) is not an "n/a".
    missing = [
        f"{key} {side}: {rows[key][side]['unavailable']}"
        for key in ROWS
        for side in ("ours", "baseline")
        if rows[key][side]["median"] is None
    ]
    assert not missing, "\n".join([*missing, stdout])
    assert " n/a " not in stdout


@pytest.mark.slow
@pytest.mark.interop
def test_latency_rows_name_the_server_they_measure(smoke: tuple[str, dict[str, Any]]) -> None:
    _, results = smoke
    rows = {row["key"]: row for row in results["rows"]}
    for key in ("latency-p50", "latency-p99"):
        assert rows[key]["ours"]["label"] == "ours (h11 adapter)"
        assert rows[key]["baseline"]["label"] == "SDK (uvicorn: h11, asyncio)"
    assert rows["http-json-production"]["baseline"]["label"] == (
        "SDK (uvicorn[standard]: httptools, uvloop)"
    )
