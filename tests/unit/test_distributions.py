"""Unit tests for ministry.core.distributions: what a filename says
(docs/protocol.md, "Distribution filenames")."""

from __future__ import annotations

import pytest
from packaging.tags import Tag
from packaging.version import Version

from ministry.core.distributions import check_filename_safe, parse_distribution_filename
from ministry.errors import InvalidUpload


@pytest.mark.parametrize(
    ("filename", "project", "version", "python_tag"),
    [
        ("demo_pkg-1.0-py3-none-any.whl", "demo-pkg", "1.0", "py3"),
        ("Foo.Bar-1.0-py3-none-any.whl", "foo-bar", "1.0", "py3"),
        ("FOO_bar-2.0.post1-py3-none-any.whl", "foo-bar", "2.0.post1", "py3"),
        ("demo-1.0-py2.py3-none-any.whl", "demo", "1.0", "py2.py3"),
        ("demo-1.0-py3.py2-none-any.whl", "demo", "1.0", "py2.py3"),
        ("demo-1.0-cp311.cp312-abi3-manylinux_2_17_x86_64.whl", "demo", "1.0", "cp311.cp312"),
        ("demo-1.0+cpu-cp312-cp312-linux_x86_64.whl", "demo", "1.0+cpu", "cp312"),
        ("demo-1!2.0rc1-py3-none-any.whl", "demo", "1!2.0rc1", "py3"),
    ],
)
def test_wheel_filenames_parse(filename: str, project: str, version: str, python_tag: str) -> None:
    """Wheels parse (``.`` and upper case in {dist} too); python tags join sorted with ``.``."""
    dist = parse_distribution_filename(filename)
    assert dist.filename == filename
    assert dist.project == project
    assert dist.version == Version(version)
    assert dist.packagetype == "bdist_wheel"
    assert dist.python_tag == python_tag


@pytest.mark.parametrize(
    "filename",
    ["demo-1.0-1-py3-none-any.whl", "demo-1.0-20240101abc-py3-none-any.whl"],
)
def test_wheel_with_build_tag_parses(filename: str) -> None:
    """The optional build tag (starting with a digit) is accepted."""
    dist = parse_distribution_filename(filename)
    assert dist.project == "demo"
    assert dist.version == Version("1.0")
    assert dist.tags == frozenset({Tag("py3", "none", "any")})


def test_wheel_compressed_tag_sets_expand() -> None:
    """Compressed tag sets (``py2.py3``, ``a.b`` platforms) expand to every tag."""
    dist = parse_distribution_filename(
        "demo-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    )
    assert dist.tags == frozenset(
        {
            Tag("cp312", "cp312", "manylinux_2_17_x86_64"),
            Tag("cp312", "cp312", "manylinux2014_x86_64"),
        }
    )
    assert dist.python_tag == "cp312"


@pytest.mark.parametrize(
    ("filename", "project", "version"),
    [
        ("demo_pkg-1.0.tar.gz", "demo-pkg", "1.0"),
        ("demo-1.0.0.tar.gz", "demo", "1.0.0"),
        ("demo_pkg-1.0+cpu.tar.gz", "demo-pkg", "1.0+cpu"),
        ("demo-2.0rc1.tar.gz", "demo", "2.0rc1"),
    ],
)
def test_sdist_filenames_parse(filename: str, project: str, version: str) -> None:
    """``{name}-{version}.tar.gz`` parses; an sdist's python tag is ``source``."""
    dist = parse_distribution_filename(filename)
    assert dist.project == project
    assert dist.version == Version(version)
    assert dist.packagetype == "sdist"
    assert dist.python_tag == "source"
    assert dist.tags == frozenset()


@pytest.mark.parametrize(
    "filename",
    [
        "demo-1.0-x1-py3-none-any.whl",  # build tag must start with a digit
        "demo-1.0-py3-none.whl",  # too few parts
        "demo-1.0-1-2-py3-none-any.whl",  # too many parts
        "demo-one-py3-none-any.whl",  # invalid version
        "-1.0-py3-none-any.whl",
    ],
)
def test_bad_wheel_filenames_are_refused(filename: str) -> None:
    """An unparseable wheel filename is refused with the parser's reason."""
    with pytest.raises(InvalidUpload) as caught:
        parse_distribution_filename(filename)
    assert caught.value.field == "content"
    assert caught.value.message.startswith("Invalid wheel filename")


@pytest.mark.parametrize("filename", ["demo.tar.gz", "demo-one.tar.gz", "-1.0.tar.gz"])
def test_bad_sdist_filenames_are_refused(filename: str) -> None:
    """Refused: "Invalid source distribution filename: ..."."""
    with pytest.raises(InvalidUpload) as caught:
        parse_distribution_filename(filename)
    assert caught.value.message.startswith("Invalid source distribution filename")


@pytest.mark.parametrize(
    "filename",
    [
        "demo-1.0.zip",
        "demo-1.0.tar.bz2",
        "demo-1.0.tgz",
        "demo-1.0-py3.11.egg",
        "demo-1.0.win-amd64.exe",
        "demo-1.0.msi",
        "demo-1.0-py3-none-any.WHL",
        "demo-1.0.TAR.GZ",
        "demo-1.0",
    ],
)
def test_other_extensions_are_refused(filename: str) -> None:
    """Only ``.whl`` and ``.tar.gz``; eggs, .exe, .msi and .zip sdists are refused."""
    with pytest.raises(InvalidUpload) as caught:
        parse_distribution_filename(filename)
    assert caught.value.message.startswith("Invalid file extension")


@pytest.mark.parametrize(
    ("filename", "message_start"),
    [
        ("a/demo-1.0.tar.gz", "Cannot upload a file with '/' or '\\' in the name."),
        ("a\\demo-1.0.tar.gz", "Cannot upload a file with '/' or '\\' in the name."),
        ("demo-1.0.tar.gz\x00", "Cannot upload a file with non-printable characters"),
        ("demo-1.0\t.tar.gz", "Cannot upload a file with non-printable characters"),
        ("demo-1.0.tar.gz\x7f", "Cannot upload a file with non-printable characters"),
    ],
)
def test_unsafe_filenames_are_refused_with_the_public_message(
    filename: str, message_start: str
) -> None:
    """Slashes and control characters get the public index's messages."""
    with pytest.raises(InvalidUpload) as caught:
        check_filename_safe(filename)
    assert caught.value.message.startswith(message_start)


@pytest.mark.parametrize(
    "filename",
    [
        "",
        ".",
        "..",
        ".demo-1.0.tar.gz",
        "d\u0435mo-1.0.tar.gz",  # Cyrillic e
        "demo-1.0.tar.gz ",
        "demo-1.0;rm.tar.gz",
        "demo-1.0$(x).tar.gz",
        "demo-" + "1" * 250 + ".tar.gz",
    ],
)
def test_odd_filenames_are_refused(filename: str) -> None:
    """Empty, dot, non-ASCII look-alike, shell characters and over-255-byte names."""
    with pytest.raises(InvalidUpload):
        check_filename_safe(filename)


@pytest.mark.parametrize(
    "filename",
    ["demo_pkg-1.0-py3-none-any.whl", "demo-1!1.0+cpu.tar.gz", "Foo.Bar-1.0-py3-none-any.whl"],
)
def test_ordinary_filenames_are_safe(filename: str) -> None:
    """Normal names, epochs (``!``) and local versions (``+``) pass the safety check."""
    check_filename_safe(filename)
    assert parse_distribution_filename(filename).filename == filename


def test_255_byte_filename_is_allowed_but_256_is_not() -> None:
    """The limit is one path component (255 bytes)."""
    padding = len("demo-.tar.gz")
    longest = "demo-" + "1" * (255 - padding) + ".tar.gz"
    too_long = "demo-" + "1" * (256 - padding) + ".tar.gz"
    assert len(longest.encode()) == 255
    check_filename_safe(longest)
    with pytest.raises(InvalidUpload):
        check_filename_safe(too_long)
