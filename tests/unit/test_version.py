"""The version a checkout reports when it runs without being installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ministry.version import _source_tree_version

_CHECKOUT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("pyproject", "expected"),
    [
        ('[project]\nname = "ministry-of-packages"\nversion = "2.3.4"\n', "2.3.4"),
        # Another project's pyproject.toml above the package says nothing about ours.
        ('[project]\nname = "something-else"\nversion = "9.9"\n', "0+unknown"),
        ('[project]\nname = "ministry-of-packages"\ndynamic = ["version"]\n', "0+unknown"),
        ("[project\nname = ", "0+unknown"),
        (None, "0+unknown"),
    ],
)
def test_source_tree_version(tmp_path: Path, pyproject: str | None, expected: str) -> None:
    """Only this project's own, readable pyproject.toml with a static version is believed."""
    if pyproject is not None:
        (tmp_path / "pyproject.toml").write_text(pyproject)
    assert _source_tree_version(tmp_path) == expected


@pytest.mark.slow
def test_uninstalled_checkout_reports_its_pyproject_version(tmp_path: Path) -> None:
    """With only ``src`` on the path, the version comes from the checkout's pyproject.toml.

    ``-S`` leaves out site-packages, and with it the installed distribution's metadata
    (and the CLI's dependencies, so the version module is called directly).
    """
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    environment["PYTHONPATH"] = str(_CHECKOUT / "src")
    result = subprocess.run(
        [sys.executable, "-S", "-c", "from ministry.version import version; print(version())"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env=environment,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == _source_tree_version(_CHECKOUT) != "0+unknown"
