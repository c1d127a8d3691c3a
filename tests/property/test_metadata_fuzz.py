"""Fuzzing metadata extraction: damaged wheels, sdists and METADATA files are 400s, never 500s.

The seeds are real distributions made by ``support.distributions``; each example
flips, cuts, splices or duplicates some of their bytes, so that most inputs get
past the first checks and reach the deeper ones (docs/security.md, "Hostile uploads"). ``fuzz/``
runs
the same targets under a coverage-guided fuzzer for longer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ministry.core.archives import ArchiveLimits, inspect_sdist, inspect_wheel
from ministry.core.metadata import parse_core_metadata
from ministry.errors import InvalidUpload
from support.distributions import make_sdist, make_wheel, metadata_text

WHEEL_NAME = "demo_pkg-1.0-py3-none-any.whl"
SDIST_NAME = "demo_pkg-1.0.tar.gz"
# Small caps, so that the size and ratio checks are reached by small inputs too.
LIMITS = ArchiveLimits(max_metadata_bytes=4096, max_members=20, max_uncompressed_bytes=1 << 20)
METADATA = metadata_text(
    "demo-pkg",
    "1.0",
    requires_dist=["requests>=2; extra == 'http'"],
    requires_python=">=3.9",
    summary="A demo",
    metadata_version="2.4",
    extra_headers=[("License-File", "LICENSE"), ("Classifier", "Typing :: Typed")],
    description="Some *text*.\n",
).encode()
WHEEL_FILES = {"demo_pkg/__init__.py": b"", "demo_pkg-1.0.dist-info/licenses/LICENSE": b"MIT"}
# Lines a core metadata file is made of, to recombine into new ones.
_HEADER_LINES = [
    *METADATA.decode().splitlines(),
    "Metadata-Version: 2.0",
    "Metadata-Version: 9.9",
    "Metadata-Version: abc",
    "Metadata-Version: 1.0",
    "Name: UNKNOWN",
    "Version: 1.0.post",
    "Version: UNKNOWN",
    "Dynamic: Name",
    "Description-Content-Type: text/markdown; charset=latin-1",
    "Project-URL: Home, https://example.org",
    "Project-URL: no comma",
    "Requires-Dist: ;;;",
    "Provides-Extra: Not Normal",
    "License-Expression: MIT AND (",
    "Keywords: a,b",
    " continued",
    "",
]


@dataclass(frozen=True)
class Seeds:
    """The bytes of a real wheel and a real sdist, and a directory for the inputs made of them."""

    wheel: bytes
    sdist: bytes
    directory: Path

    def of(self, kind: str) -> bytes:
        """The seed of this kind ("wheel" or "sdist")."""
        return self.wheel if kind == "wheel" else self.sdist


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> Seeds:
    """Made once: Hypothesis runs every example of a test inside one call of it."""
    directory = tmp_path_factory.mktemp("seeds")
    wheel = make_wheel(directory, "demo-pkg", "1.0", metadata=METADATA.decode(), files=WHEEL_FILES)
    # make_sdist writes no LICENSE, so its PKG-INFO promises none.
    sdist_metadata = METADATA.decode().replace("License-File: LICENSE\n", "")
    sdist = make_sdist(directory, "demo-pkg", "1.0", metadata=sdist_metadata)
    return Seeds(wheel.read_bytes(), sdist.read_bytes(), directory)


def test_the_seeds_are_accepted(seeds: Seeds) -> None:
    """The unmutated seeds pass every check, so the mutations start from the accepting paths."""
    for kind in ("wheel", "sdist"):
        path = seeds.directory / (WHEEL_NAME if kind == "wheel" else SDIST_NAME)
        path.write_bytes(seeds.of(kind))
        inspect = inspect_wheel if kind == "wheel" else inspect_sdist
        assert parse_core_metadata(inspect(path, path.name, LIMITS).metadata).name == "demo-pkg"


@st.composite
def mutations(draw: st.DrawFn, seed: bytes, other: bytes) -> bytes:
    """``seed`` with one to four flips, cuts, splices (from ``other`` or noise) or repeats."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        end = draw(st.integers(at, min(len(data), at + 64)))
        action = draw(st.sampled_from(["flip", "cut", "splice", "repeat", "drop"]))
        if action == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "cut":
            del data[at:]
        elif action == "splice":
            start = draw(st.integers(0, len(other)))
            data[at:at] = draw(
                st.just(other[start : start + 64]) | st.binary(min_size=1, max_size=16)
            )
        elif action == "repeat":
            data[end:end] = data[at:end]
        else:
            del data[at:end]
    return bytes(data)


def _inspect(kind: str, data: bytes, directory: Path) -> None:
    """Inspect ``data`` as an upload would: refused with InvalidUpload, or metadata within caps."""
    path = directory / (WHEEL_NAME if kind == "wheel" else SDIST_NAME)
    path.write_bytes(data)
    inspect = inspect_wheel if kind == "wheel" else inspect_sdist
    try:
        info = inspect(path, path.name, LIMITS)
    except InvalidUpload as error:
        assert error.message.startswith("Invalid distribution file.")
        return
    assert len(info.metadata) <= LIMITS.max_metadata_bytes
    _parse(info.metadata)


def _parse(data: bytes) -> None:
    try:
        parse_core_metadata(data)
    except InvalidUpload as error:
        assert error.message.startswith("Invalid metadata")


@given(st.data(), st.sampled_from(["wheel", "sdist"]))
def test_damaged_archives_are_refused_or_read(seeds: Seeds, data: st.DataObject, kind: str) -> None:
    """A wheel or sdist with damaged bytes is a 400 naming the file, never another error."""
    other = "sdist" if kind == "wheel" else "wheel"
    mutated = data.draw(mutations(seeds.of(kind), seeds.of(other)))
    _inspect(kind, mutated, seeds.directory)


@given(st.data(), st.sampled_from(["wheel", "sdist"]))
def test_archives_of_recombined_metadata_are_refused_or_read(
    seeds: Seeds, data: st.DataObject, kind: str
) -> None:
    """A well-made archive around any METADATA: the metadata is read or refused with a 400."""
    lines = data.draw(st.lists(st.sampled_from(_HEADER_LINES), max_size=12))
    text = "\n".join(lines)
    directory = seeds.directory / "built"
    directory.mkdir(exist_ok=True)
    build = make_wheel if kind == "wheel" else make_sdist
    path = build(directory, "demo-pkg", "1.0", metadata=text)
    _inspect(kind, path.read_bytes(), seeds.directory)


@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
@example(b"Metadata-Version: abc\nName: x\nVersion: 1\n")
@example(b"Metadata-Version: 2.4\nName: x\nVersion: 1\nLicense-File: /etc/passwd\n")
@example(b"\xff\xfeN\x00a\x00m\x00e\x00")
@example(b"Name: x\r\n\r\n" + b"\x80" * 10)
def test_any_bytes_are_metadata_or_refused(data: bytes) -> None:
    """Core metadata parsing of arbitrary bytes is a CoreMetadata or a 400, never a crash."""
    _parse(data)


@given(st.lists(st.sampled_from(_HEADER_LINES) | st.text(max_size=40), max_size=15))
def test_recombined_metadata_is_read_or_refused(lines: list[str]) -> None:
    """Known headers with odd values and in odd orders are read or refused, never a crash."""
    _parse("\n".join(lines).encode("utf-8", "surrogatepass"))


@given(st.data())
def test_mutated_metadata_is_read_or_refused(seeds: Seeds, data: st.DataObject) -> None:
    """A real METADATA file with damaged bytes is read or refused, never a crash."""
    _parse(data.draw(mutations(METADATA, seeds.wheel)))
