"""docs/security.md names, for every attack, the test that proves the defence: those tests exist.

A renamed or removed test would otherwise leave the catalogue promising a proof
that nobody runs any more.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "docs" / "security.md"
# `http/test_x.py::test_name`, `::test_other` (the file of the cell's last named file),
# `e2e/test_x.py` (a whole file) and `src/...py` (the code a section points at).
_REFERENCE = re.compile(r"`(?P<path>[\w/]+\.py)?(?:::(?P<name>\w+))?`")


def _references() -> list[tuple[str, str | None]]:
    """(path, test name or None) for every reference, in the order written."""
    found: list[tuple[str, str | None]] = []
    for line in CATALOGUE.read_text().splitlines():
        last: str | None = None
        for match in _REFERENCE.finditer(line):
            path, name = match["path"], match["name"]
            if path is not None:
                last = path
            if last is not None and (path is not None or name is not None):
                found.append((last, name))
    return found


def _file(path: str) -> Path:
    return ROOT / path if path.startswith("src/") else ROOT / "tests" / path


def test_the_catalogue_names_tests() -> None:
    """A catalogue that named nothing would pass the next test trivially."""
    assert sum(name is not None for _, name in _references()) > 80


@pytest.mark.parametrize(("path", "name"), _references(), ids=lambda value: str(value))
def test_every_named_test_exists(path: str, name: str | None) -> None:
    """Each named file exists, and each named test is defined in it."""
    file = _file(path)
    assert file.is_file(), f"docs/security.md names {path}, which does not exist"
    if name is not None:
        assert re.search(rf"^(async )?def {name}\b", file.read_text(), re.MULTILINE), (
            f"docs/security.md names {path}::{name}, which is not defined there"
        )


def test_every_section_has_its_table() -> None:
    """Each attack class says what the server does, in a table of attacks."""
    sections = re.split(r"^## ", CATALOGUE.read_text(), flags=re.MULTILINE)[1:]
    assert len(sections) >= 15
    for section in sections:
        title = section.splitlines()[0]
        if title.startswith("For an operator"):
            continue
        assert re.search(r"^\| (attack|fault) \|", section, re.MULTILINE), title
