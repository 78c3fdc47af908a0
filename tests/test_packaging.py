"""What the built distributions carry: the typing marker and the license."""

from __future__ import annotations

import tarfile
import zipfile
from email.parser import HeaderParser
from pathlib import Path

import pytest
from hatchling.builders.sdist import SdistBuilder
from hatchling.builders.wheel import WheelBuilder

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    path = next(WheelBuilder(str(ROOT)).build(directory=str(out), versions=["standard"]))
    return zipfile.ZipFile(path)


def test_wheel_ships_the_typing_marker(wheel: zipfile.ZipFile) -> None:
    # Without it, type checkers treat every mcptrio import as untyped (PEP 561).
    assert "mcptrio/py.typed" in wheel.namelist()


def test_wheel_metadata_names_the_license_and_carries_its_file(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    (metadata,) = (n for n in names if n.endswith(".dist-info/METADATA"))
    headers = HeaderParser().parsestr(wheel.read(metadata).decode())
    assert headers["License-Expression"] == "MIT"
    assert headers.get_all("License-File") == ["LICENSE"]
    (license_file,) = (n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
    assert wheel.read(license_file) == (ROOT / "LICENSE").read_bytes()


def test_sdist_carries_the_license_and_the_marker(tmp_path: Path) -> None:
    path = next(SdistBuilder(str(ROOT)).build(directory=str(tmp_path), versions=["standard"]))
    with tarfile.open(path) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"LICENSE", "mcptrio/py.typed", "pyproject.toml"} <= names
    assert not any(name.startswith(".cache") for name in names)


def test_license_is_mit_held_by_the_authors() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n\nCopyright (c) 2026 The mcptrio authors\n")
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in text
