"""The benchmarks' smoke run: ``python -m bench --smoke`` must keep working (never how fast)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

ROWS = (
    "http-json",
    "http-sse",
    "http-2026",
    "http-hypercorn",
    "http-h11",
    "http-adapter",
    "latency-p50",
    "latency-p99",
    "stdio",
    "inprocess",
    "inprocess-codec",
    "memory-session",
    "memory-stream",
)
"""Every benchmark row, in the order the table prints them."""

# Rows whose "ours" side needs nothing beyond this repository (and wrk for the HTTP ones):
# they must have been measured, not reported as n/a.
ALWAYS_MEASURED = ("stdio", "inprocess", "inprocess-codec", "memory-session", "memory-stream")
MEASURED_WITH_WRK = ("http-json", "http-sse", "http-hypercorn", "latency-p50", "latency-p99")


@pytest.fixture(scope="module")
def smoke(sdk_python: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """Run the smoke benchmarks once: their stdout and their JSON results."""
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
def test_smoke_run_measures_or_says_why_not(smoke: tuple[str, dict[str, Any]]) -> None:
    _, results = smoke
    rows = {row["key"]: row for row in results["rows"]}
    for row in rows.values():
        for side in ("ours", "baseline"):
            # A side without figures must carry the reason it could not run here.
            assert row[side]["median"] is not None or row[side]["unavailable"], row
    measured = ALWAYS_MEASURED + (MEASURED_WITH_WRK if shutil.which("wrk") else ())
    for key in measured:
        assert rows[key]["ours"]["median"] is not None, rows[key]
        assert rows[key]["baseline"]["median"] is not None, rows[key]
