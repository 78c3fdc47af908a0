"""The official conformance suite's client leg against ``examples/conformance_client.py``.

One run per frozen requirement set: every scored scenario must pass (no failed check), and
so must the extension scenarios the suite runs without scoring (client credentials with
``private_key_jwt`` and ``client_secret_basic``, enterprise-managed authorization, DPoP,
DPoP with server nonces, workload identity); the test prints each one's result. The
2025-03-26 authorization fallbacks (``--suite backcompat``) run once more on their own.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio
from node_tools import (
    CONFORMANCE,
    FAILURE,
    SUCCESS,
    WARNING,
    ConformanceResult,
    failure_table,
    npm_tool,
    read_client_results,
    run_conformance_client,
)

REQUIREMENTS = ["2025-11-25", "2026-07-28"]
EXTENSIONS = {
    "auth/client-credentials-jwt",
    "auth/client-credentials-basic",
    "auth/enterprise-managed-authorization",
    "auth/dpop",
    "auth/dpop-nonce",
    "auth/wif-jwt-bearer",
}
AUTH_2025 = {
    "auth/metadata-default",
    "auth/metadata-var1",
    "auth/metadata-var2",
    "auth/metadata-var3",
    "auth/basic-cimd",
    "auth/scope-from-www-authenticate",
    "auth/scope-from-scopes-supported",
    "auth/scope-omitted-when-undefined",
    "auth/scope-step-up",
    "auth/scope-retry-limit",
    "auth/token-endpoint-auth-basic",
    "auth/token-endpoint-auth-post",
    "auth/token-endpoint-auth-none",
    "auth/pre-registration",
}
AUTH_2026 = AUTH_2025 | {
    "auth/resource-mismatch",
    "auth/offline-access-scope",
    "auth/offline-access-not-supported",
    "auth/authorization-server-migration",
    "auth/iss-supported",
    "auth/iss-not-advertised",
    "auth/iss-supported-missing",
    "auth/iss-wrong-issuer",
    "auth/iss-unexpected",
    "auth/iss-normalized",
    "auth/metadata-issuer-mismatch",
}
SUITE_LIMIT = 600.0
CLIENT = [sys.executable, "examples/conformance_client.py"]


@pytest.fixture(scope="session")
def conformance_tool() -> list[str]:
    """Installs Node 22 and the suite before any time limit starts."""
    return npm_tool(CONFORMANCE)


def _report(result: ConformanceResult) -> str:
    lines = [result.summary()]
    for scenario in result.scenarios:
        mark = "FAIL" if scenario.failed else "pass"
        scored = "" if scenario.scored else " (not scored)"
        lines.append(f"  {mark} {scenario.name}: {len(scenario.passed)} checks passed{scored}")
    return "\n".join(lines)


@pytest.mark.conformance
@pytest.mark.parametrize("requirements", REQUIREMENTS)
async def test_official_client_suite(
    requirements: str, conformance_tool: list[str], tmp_path: Path
) -> None:
    with trio.fail_after(SUITE_LIMIT):
        result = await run_conformance_client(CLIENT, requirements, out_dir=tmp_path)
    print(_report(result))
    if warnings := result.with_status(WARNING):
        print(f"warnings:\n{failure_table(warnings)}")
    failed = result.with_status(FAILURE)
    assert not failed, f"{_report(result)}\n{failure_table(failed)}"
    names = {scenario.name for scenario in result.scenarios}
    auth = AUTH_2026 if requirements == "2026-07-28" else AUTH_2025
    assert auth | EXTENSIONS <= names, sorted(auth | EXTENSIONS - names)
    for scenario in result.scenarios:
        assert scenario.passed, f"{scenario.name} ran no passing check"
        assert scenario.scored == (
            scenario.name not in EXTENSIONS | {"json-schema-2020-12-preservation"}
        ), scenario.name
    assert result.returncode == 0, result.log[-4000:]


@pytest.mark.conformance
async def test_the_2025_03_26_authorization_fallbacks(
    conformance_tool: list[str], tmp_path: Path
) -> None:
    """No revision requires these any more, but servers of that revision still exist."""
    with trio.fail_after(SUITE_LIMIT):
        result = await run_conformance_client(CLIENT, suite="backcompat", out_dir=tmp_path)
    print(_report(result))
    assert {s.name for s in result.scenarios} == {
        "auth/2025-03-26-oauth-metadata-backcompat",
        "auth/2025-03-26-oauth-endpoint-fallback",
    }
    failed = result.with_status(FAILURE)
    assert not failed and result.returncode == 0, f"{_report(result)}\n{failure_table(failed)}"
    assert all(scenario.passed for scenario in result.scenarios)


def test_client_results_are_read_from_nested_directories(tmp_path: Path) -> None:
    (tmp_path / "auth" / "dpop-2026-12-02T02-27-04-797Z").mkdir(parents=True)
    (tmp_path / "auth" / "dpop-2026-12-02T02-27-04-797Z" / "checks.json").write_text(
        '[{"id": "a", "status": "SUCCESS"}, {"id": "b", "status": "WARNING"}]'
    )
    (tmp_path / "tools_call-2026-12-02T02-27-04-797Z").mkdir()
    (tmp_path / "tools_call-2026-12-02T02-27-04-797Z" / "checks.json").write_text(
        '[{"id": "c", "status": "FAILURE", "errorMessage": "no call"}]'
    )
    log = (
        "=== SUITE SUMMARY ===\n\n"
        "✗ tools_call: 0 passed, 1 failed\n"
        "✗ auth/dpop: 1 passed, 0 failed, 1 warnings\n\n"
        "Not scored for 2026-07-28: 1 scenario(s) run, 0 failing.\n"
        "  ✓ auth/dpop (extension)\n"
    )
    scenarios = {s.name: s for s in read_client_results(tmp_path, log)}
    assert set(scenarios) == {"tools_call", "auth/dpop"}
    assert scenarios["tools_call"].scored and not scenarios["auth/dpop"].scored
    assert [c.status for c in scenarios["auth/dpop"].checks] == [SUCCESS, WARNING]
    assert scenarios["tools_call"].failed[0].message == "no call"
