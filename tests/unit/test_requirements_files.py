"""pip requirements files as ``ministry mirror -r`` reads them."""

from __future__ import annotations

import pytest
from packaging.requirements import Requirement

from ministry.core.requirements_files import SkippedLine, parse_requirements_file
from ministry.errors import InvalidRequest


def _strings(requirements: tuple[Requirement, ...]) -> list[str]:
    return [str(requirement) for requirement in requirements]


def test_requirements_file_comments_blanks_and_markers() -> None:
    """Comments (at line start or after whitespace) and blank lines go; markers stay."""
    text = (
        "# top comment\n"
        "\n"
        "   # indented comment\n"
        "requests>=2.31  # trailing comment\n"
        "Django[bcrypt]~=5.0\n"
        "colorama; sys_platform == 'win32'\n"
    )
    parsed = parse_requirements_file(text, "requirements.txt")
    assert _strings(parsed.requirements) == [
        "requests>=2.31",
        "Django[bcrypt]~=5.0",
        'colorama; sys_platform == "win32"',
    ]
    assert parsed.includes == ()
    assert parsed.constraints == ()
    assert parsed.skipped == ()


def test_requirements_file_hash_not_after_whitespace_is_not_a_comment() -> None:
    """As in pip, "#" glued to a word is part of it, so the line is not a requirement."""
    with pytest.raises(InvalidRequest, match=r"^reqs\.txt, line 2: "):
        parse_requirements_file("ok\nfrob#x==1\n", "reqs.txt")


def test_requirements_file_continuations_and_hashes() -> None:
    """Backslash continuations join; ``--hash`` options are dropped from requirements."""
    text = (
        "certifi==2024.2.2 \\\n"
        "    --hash=sha256:0569859f95fc761b18b45ef421b1290a0f65f147e92a1e5eb3e635f9a5e4e66f \\\n"
        "    --hash sha256:dc383c07b76109f368f6106eee2b593b04a011ea4d55f652c6ca24a754d1cdd1\n"
        "idna==3.6 \\\n"
        "    ; python_version >= '3.8'\n"
        "urllib3==2.2.1 --hash=sha256:abc\n"
    )
    parsed = parse_requirements_file(text, "requirements.txt")
    assert _strings(parsed.requirements) == [
        "certifi==2024.2.2",
        'idna==3.6; python_version >= "3.8"',
        "urllib3==2.2.1",
    ]


def test_requirements_file_comment_line_ends_a_continuation() -> None:
    """A comment line ending in a backslash does not swallow the next line (pip's rule)."""
    parsed = parse_requirements_file("# note \\\nsix\n", "r.txt")
    assert _strings(parsed.requirements) == ["six"]


def test_requirements_file_trailing_backslash_at_end_of_file() -> None:
    """A continuation at the very end still yields its line."""
    parsed = parse_requirements_file("six \\", "r.txt")
    assert _strings(parsed.requirements) == ["six"]


@pytest.mark.parametrize(
    ("line", "includes", "constraints"),
    [
        ("-r base.txt", ("base.txt",), ()),
        ("-rbase.txt", ("base.txt",), ()),
        ("--requirement base.txt", ("base.txt",), ()),
        ("--requirement=../common/base.txt", ("../common/base.txt",), ()),
        ("-c constraints.txt", (), ("constraints.txt",)),
        ("--constraint=pins.txt", (), ("pins.txt",)),
        ("-r 'dir with space/base.txt'", ("dir with space/base.txt",), ()),
    ],
)
def test_requirements_file_nested_files(
    line: str, includes: tuple[str, ...], constraints: tuple[str, ...]
) -> None:
    """``-r`` and ``-c`` names come back as written, for the caller to read."""
    parsed = parse_requirements_file(f"six\n{line}\n", "r.txt")
    assert parsed.includes == includes
    assert parsed.constraints == constraints
    assert _strings(parsed.requirements) == ["six"]
    assert parsed.skipped == ()


@pytest.mark.parametrize("line", ["-r", "--requirement", "-c", "--constraint="])
def test_requirements_file_nested_option_without_a_file(line: str) -> None:
    """A nested-file option with no file is an error at its line."""
    with pytest.raises(InvalidRequest, match=r"^r\.txt, line 3: .*needs a file name"):
        parse_requirements_file(f"six\n\n{line}\n", "r.txt")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("-e .", "editable"),
        ("--editable=git+https://example.invalid/repo.git#egg=demo", "editable"),
        ("./local/dir", "URLs and paths"),
        ("/abs/path/demo-1.0.tar.gz", "URLs and paths"),
        ("~/src/demo", "URLs and paths"),
        ("C:\\src\\demo", "URLs and paths"),
        ("https://example.invalid/demo-1.0-py3-none-any.whl", "URLs and paths"),
        ("git+https://example.invalid/repo.git", "URLs and paths"),
        ("demo @ https://example.invalid/demo-1.0.tar.gz", "URLs and paths"),
        ("demo-1.0-py3-none-any.whl", "URLs and paths"),
        ("demo-1.0.tar.gz", "URLs and paths"),
        ("--index-url https://example.invalid/simple", "--index-url"),
        ("--pre", "--pre"),
        ("-i https://example.invalid/simple", "-i"),
    ],
)
def test_requirements_file_skipped_lines(line: str, reason: str) -> None:
    """What a mirror cannot follow is skipped with its line number and a reason to show."""
    parsed = parse_requirements_file(f"# header\nsix\n{line}\n", "r.txt")
    assert _strings(parsed.requirements) == ["six"]
    assert len(parsed.skipped) == 1
    skipped = parsed.skipped[0]
    assert (skipped.line_number, skipped.line) == (3, line)
    assert reason in skipped.reason


def test_requirements_file_skipped_line_is_a_value() -> None:
    """Skipped lines compare by value, so the CLI can dedupe warnings across files."""
    parsed = parse_requirements_file("-e .\n", "r.txt")
    assert parsed.skipped == (SkippedLine(1, "-e .", "editable requirements cannot be mirrored"),)


@pytest.mark.parametrize(
    ("text", "line_number"),
    [
        ("six\nrequests>==2\n", 2),
        ("six\n\n# c\nfoo[bar\n", 4),
        ("six\nfoo \\\n  >>1\nbar\n", 2),
        ("-r 'unclosed\n", 1),
    ],
)
def test_requirements_file_errors_name_source_and_line(text: str, line_number: int) -> None:
    """An unparseable line is refused with the file and the (first) line number."""
    with pytest.raises(InvalidRequest, match=rf"^deps/r\.txt, line {line_number}: "):
        parse_requirements_file(text, "deps/r.txt")
