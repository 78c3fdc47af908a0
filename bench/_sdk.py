"""The official SDK's virtualenv, made and checked by the test harness ``tests/sdk.py``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVER_SCRIPT = Path(__file__).resolve().parent / "servers" / "sdk_server.py"
_HARNESS = REPO_ROOT / "tests" / "sdk.py"


def sdk_python() -> tuple[Path | None, str]:
    """The SDK virtualenv's python (created on first use), or None and the reason it is missing."""
    spec = importlib.util.spec_from_file_location("_mcptrio_tests_sdk", _HARNESS)
    if spec is None or spec.loader is None:
        return None, f"cannot load {_HARNESS}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    # The harness imports its siblings in tests/ (as it does under pytest).
    sys.path.insert(0, str(_HARNESS.parent))
    try:
        spec.loader.exec_module(module)
        python: Path = module.sdk_python()
    except Exception as exc:  # anything: the SDK rows then say why they did not run
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"SDK virtualenv unavailable: {first}"
    finally:
        sys.path.remove(str(_HARNESS.parent))
    return python, ""
