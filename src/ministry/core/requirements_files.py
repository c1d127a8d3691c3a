"""pip requirements files, read as far as a mirror follows them.

A mirror takes requirements from the files people already keep; what it cannot
fetch from an index (editable installs, URLs, paths) or does not apply (global
options) is reported line by line instead of refused, so a project's own
requirements file can be mirrored as it is.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement

from ministry.errors import InvalidRequest

__all__ = ["RequirementsFile", "SkippedLine", "parse_requirements_file"]


@dataclass(frozen=True)
class SkippedLine:
    """A line of a requirements file that a mirror cannot follow, kept so the CLI can warn."""

    line_number: int
    line: str
    reason: str


@dataclass(frozen=True)
class RequirementsFile:
    """What a pip requirements file asks for.

    ``includes`` (``-r``) and ``constraints`` (``-c``) are the nested file names as
    written, relative to this file: reading them is the caller's business.
    """

    requirements: tuple[Requirement, ...]
    includes: tuple[str, ...]
    constraints: tuple[str, ...]
    skipped: tuple[SkippedLine, ...]


# pip's requirements file format: a comment starts a line or follows whitespace.
_COMMENT = re.compile(r"(^|\s+)#.*$")
# A URL ("https://…", "git+ssh://…") or a Windows drive ("C:\\…", "C:/…").
_URL_OR_DRIVE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://|[A-Za-z]:[\\/]")
_ARCHIVE_SUFFIXES = (".whl", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".zip")
_NESTED_OPTIONS = {
    "-r": "includes",
    "--requirement": "includes",
    "-c": "constraints",
    "--constraint": "constraints",
}


def parse_requirements_file(text: str, source: str) -> RequirementsFile:
    """Read a pip requirements file into requirements, nested files and skipped lines.

    Per-requirement options (``--hash``) are dropped. Global options (``--index-url``,
    ``--pre``) and editable, URL and path requirements are skipped with a reason.
    A line that is none of these and not a requirement raises :class:`InvalidRequest`
    naming ``source`` and the line number.
    """
    requirements: list[Requirement] = []
    nested: dict[str, list[str]] = {"includes": [], "constraints": []}
    skipped: list[SkippedLine] = []
    for number, line in _logical_lines(text):
        if line.startswith("-"):
            _read_option(line, number, source, nested, skipped)
            continue
        # As pip does: the requirement ends where the first option ("--hash=…") begins.
        words = line.split()
        first_option = next((i for i, word in enumerate(words) if word.startswith("-")), None)
        written = " ".join(words[:first_option])
        if _URL_OR_DRIVE.match(written) or written.startswith((".", "/", "~")) or "\\" in written:
            skipped.append(SkippedLine(number, line, "URLs and paths cannot be mirrored"))
            continue
        try:
            requirement = Requirement(written)
        except InvalidRequirement as exc:
            raise InvalidRequest(f"{source}, line {number}: {exc}") from exc
        if requirement.url is not None or requirement.name.endswith(_ARCHIVE_SUFFIXES):
            skipped.append(SkippedLine(number, line, "URLs and paths cannot be mirrored"))
            continue
        requirements.append(requirement)
    return RequirementsFile(
        tuple(requirements),
        tuple(nested["includes"]),
        tuple(nested["constraints"]),
        tuple(skipped),
    )


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Non-empty lines without comments, continuations joined, with their first line number."""
    pending: list[str] = []
    start = 0
    for number, physical in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        # A comment line ends a continuation instead of continuing it (as pip does).
        if physical.endswith("\\") and not _COMMENT.match(physical):
            pending.append(physical[:-1])
            continue
        pending.append(physical)
        line = _COMMENT.sub("", "".join(pending)).strip()
        pending = []
        if line:
            yield start, line
    line = _COMMENT.sub("", "".join(pending)).strip()
    if line:
        yield start, line


def _read_option(
    line: str,
    number: int,
    source: str,
    nested: dict[str, list[str]],
    skipped: list[SkippedLine],
) -> None:
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise InvalidRequest(f"{source}, line {number}: {exc}") from exc
    if words[0].startswith("--"):
        option, _equals, value = words[0].partition("=")
    else:  # "-r other.txt" or "-rother.txt", as optparse allows
        option, value = words[0][:2], words[0][2:]
    if not value and len(words) > 1:
        value = words[1]
    if option in _NESTED_OPTIONS:
        if not value:
            raise InvalidRequest(f"{source}, line {number}: {option} needs a file name.")
        nested[_NESTED_OPTIONS[option]].append(value)
    elif option in ("-e", "--editable"):
        skipped.append(SkippedLine(number, line, "editable requirements cannot be mirrored"))
    else:
        skipped.append(SkippedLine(number, line, f"option {option} is ignored by the mirror"))
