"""Every document that code, tests and docs cite is in the repository, with the cited section.

A citation names a file of the repository (``docs/protocol.md``, ``README.md``,
``bench/README.md``), optionally with a section: a heading of that file in quotes
after the path (``docs/security.md, "Private indexes"``), or a link anchor
(``indexes.md#private-indexes``). A document kept outside the repository, a
renamed heading or a moved file would otherwise leave the reader with nowhere
to go. docs/protocol.md also names the tests that cover each item: they exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

SELF = Path(__file__).resolve()
ROOT = SELF.parents[2]
#: Where citations are looked for.
SCOPE = ("src", "tests", "bench", "fuzz", "docs", "scripts", "README.md")
# A path ending in .md, or any path under docs/; not part of a URL or a longer path, and not
# a string literal (``ROOT / "docs" / "deploy.md"`` is code), but may open a docstring.
_PATH = (
    r"(?<![\w./-])(?:(?<=\"\"\")|(?<![\"']))"
    r"((?:\.\./)*(?:[\w.-]+/)*[\w.-]+\.md\b|docs/[\w./-]*\w)"
)
# Then a section: `, "Title"` (several: `, "One", "Two"`) or an anchor: `#slug`.
_CITATION = re.compile(_PATH + r'(?:#([\w-]+)|,?[ ]"([^"\n]+)"((?:,[ ]"[^"\n]+")*))?')
_MORE_TITLES = re.compile(r'"([^"\n]+)"')
# A line break inside a citation: the next line's indentation and comment marker.
_BREAK = re.compile(r"[ \t]*\n[ \t]*(?:#[ \t]+)?")
_HEADING = re.compile(r"^#{1,6} +(.+?) *#*$")
# Paths that appear as data, not as citations: README text under test.
_NOT_CITATIONS = {
    ("tests/http/test_cross_site.py", "docs/diagram.png"),
    ("tests/unit/test_cross_site_rules.py", "docs/a.png"),
}
# `http/test_x.py::test_name`, `::test_other` (of the file named last in the paragraph).
_TEST_REFERENCE = re.compile(r"`(?P<path>[\w/]+\.py)?(?:::(?P<name>\w+))?`")


def _files() -> Iterator[Path]:
    for name in SCOPE:
        path = ROOT / name
        candidates = [path] if path.is_file() else sorted(path.rglob("*"))
        for candidate in candidates:
            # This file's own citations are examples, some broken on purpose.
            if candidate.is_file() and "__pycache__" not in candidate.parts and candidate != SELF:
                yield candidate


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None  # images, databases: nothing cited in them


def citations(path: Path, text: str) -> list[tuple[str, str | None, tuple[str, ...]]]:
    """(cited path, anchor, section titles) for every citation in ``text``."""
    joined = _BREAK.sub(" ", text)
    found = []
    for match in _CITATION.finditer(joined):
        cited, anchor, title, more = match.groups()
        titles = (title, *_MORE_TITLES.findall(more or "")) if title else ()
        found.append((cited, anchor, titles))
    return found


def resolve(citing: Path, cited: str) -> Path | None:
    """The repository file a citation names: from the root, or beside the citing file."""
    bases = [ROOT] if cited.startswith("docs/") else [ROOT, citing.parent]
    for base in bases:
        candidate = (base / cited).resolve()
        if candidate.is_relative_to(ROOT) and candidate.is_file():
            return candidate
    return None


@cache
def headings(document: Path) -> frozenset[str]:
    """The titles of a Markdown file's headings, outside fenced code."""
    titles, fenced = set(), False
    for line in document.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := _HEADING.match(line)):
            titles.add(match[1])
    return frozenset(titles)


def slug(title: str) -> str:
    """The anchor a Markdown renderer gives a heading (as GitHub does)."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def problems(citing: Path, text: str) -> list[str]:
    """What is wrong with the citations of one file; empty when each leads somewhere."""
    relative = citing.relative_to(ROOT).as_posix()
    found = []
    for cited, anchor, titles in citations(citing, text):
        if (relative, cited) in _NOT_CITATIONS:
            continue
        document = resolve(citing, cited)
        if document is None:
            found.append(f"{relative} cites {cited}, which is not in the repository")
            continue
        if anchor is not None and anchor not in {slug(t) for t in headings(document)}:
            found.append(f"{relative} cites {cited}#{anchor}, which has no such heading")
        found.extend(
            f'{relative} cites {cited}, "{title}", which has no such heading'
            for title in titles
            if title not in headings(document)
        )
    return found


def _citing_files() -> list[tuple[Path, str]]:
    return [(path, text) for path in _files() if (text := _text(path)) is not None]


def test_citations_are_found() -> None:
    """A pattern that found nothing would pass the next test trivially."""
    found = [c for path, text in _citing_files() for c in citations(path, text)]
    assert sum(1 for _, _, titles in found if titles) > 100
    assert any(anchor for _, anchor, _ in found)


def test_every_cited_document_and_section_exists() -> None:
    """Each cited path is a file of the repository, and each cited section a heading of it."""
    found = [problem for path, text in _citing_files() for problem in problems(path, text)]
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("see NOTES.md 50", "cites NOTES.md, which is not in the repository"),
        ("(docs/nowhere.md)", "cites docs/nowhere.md, which is not in the repository"),
        ('(docs/security.md, "No such section")', 'docs/security.md, "No such section", which'),
        ('docs/protocol.md, "Yanking", "Nothing"', 'docs/protocol.md, "Nothing", which'),
        ('# (docs/security.md, "Hostile\n# nowhere")', '"Hostile nowhere", which has no such'),
        ("[x](security.md#no-such-anchor)", "cites security.md#no-such-anchor, which has no"),
    ],
)
def test_a_broken_citation_is_reported(text: str, expected: str) -> None:
    """The check finds a missing document, section or anchor, also across a line break."""
    (problem,) = problems(ROOT / "docs" / "example.md", text)
    assert expected in problem


@pytest.mark.parametrize(
    "text",
    [
        'docs/security.md, "Hostile\n    upstream pages"',
        '# (docs/security.md, "Upstream\n# requests (SSRF)")',
        "[indexes.md](indexes.md#private-indexes)",
        "https://example.test/docs/NOTES.md and README.md",
    ],
)
def test_a_good_citation_passes(text: str) -> None:
    """Sections split over lines, anchors and paths inside URLs are read as they should be."""
    assert problems(ROOT / "docs" / "example.md", text) == []


def _protocol_tests() -> list[tuple[str, str | None]]:
    """(path, test name or None) for every test docs/protocol.md names."""
    found: list[tuple[str, str | None]] = []
    for paragraph in (ROOT / "docs" / "protocol.md").read_text().split("\n\n"):
        last: str | None = None
        for match in _TEST_REFERENCE.finditer(paragraph):
            path, name = match["path"], match["name"]
            last = path or last
            if last is not None and (path is not None or name is not None):
                found.append((last, name))
    return found


def test_the_protocol_checklist_names_tests() -> None:
    """A checklist that named no test would pass the next test trivially."""
    assert sum(name is not None for _, name in _protocol_tests()) > 100


@pytest.mark.parametrize(("path", "name"), _protocol_tests(), ids=lambda value: str(value))
def test_every_test_the_protocol_checklist_names_exists(path: str, name: str | None) -> None:
    """Each file docs/protocol.md names exists, and each test it names is defined there."""
    file = ROOT / path if path.startswith("src/") else ROOT / "tests" / path
    assert file.is_file(), f"docs/protocol.md names {path}, which does not exist"
    if name is not None:
        assert re.search(rf"^(async )?def {name}\b", file.read_text(), re.MULTILINE), (
            f"docs/protocol.md names {path}::{name}, which is not defined there"
        )
