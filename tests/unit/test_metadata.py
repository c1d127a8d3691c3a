"""Unit tests for ministry.core.metadata: core metadata 1.0-2.6
(docs/protocol.md, "Core metadata")."""

from __future__ import annotations

import pytest
from packaging.version import Version

from ministry.core.metadata import parse_core_metadata
from ministry.errors import InvalidUpload


def metadata(version: str, *lines: str, body: str = "") -> bytes:
    head = "\n".join([f"Metadata-Version: {version}", "Name: Demo.Pkg", "Version: 1.0", *lines])
    return (head + "\n\n" + body).encode("utf-8") if body else (head + "\n").encode("utf-8")


def refused(data: bytes) -> str:
    with pytest.raises(InvalidUpload) as caught:
        parse_core_metadata(data)
    return caught.value.message


# Each version with a field it introduced.
VERSIONS = [
    ("1.0", ["Summary: s", "Platform: linux", "Keywords: a,b", "Home-page: https://x.test"]),
    ("1.1", ["Classifier: Programming Language :: Python", "Download-URL: https://x.test/d"]),
    (
        "1.2",
        ["Requires-Dist: requests>=2", "Requires-Python: >=3.8", "Project-URL: Src, https://x"],
    ),
    ("2.1", ["Description-Content-Type: text/markdown", "Provides-Extra: cli"]),
    ("2.2", ["Dynamic: Requires-Dist"]),
    ("2.3", ["Provides-Extra: dev-tools"]),
    ("2.4", ["License-Expression: MIT OR Apache-2.0", "License-File: LICENSE"]),
    ("2.5", ["Import-Name: demo_pkg"]),
    ("2.6", ["Dynamic: Classifier"]),
]


@pytest.mark.parametrize(("version", "lines"), VERSIONS, ids=[v for v, _ in VERSIONS])
def test_every_supported_metadata_version_is_accepted(version: str, lines: list[str]) -> None:
    """Metadata-Version 1.0 to 2.6 parse, with the fields each introduced."""
    parsed = parse_core_metadata(metadata(version, *lines))
    assert parsed.metadata_version == version
    assert parsed.name == "Demo.Pkg"
    assert parsed.version == Version("1.0")


def test_license_expression_and_file_are_kept() -> None:
    """2.4 (PEP 639): License-Expression and License-File are parsed and kept."""
    parsed = parse_core_metadata(
        metadata("2.4", "License-Expression: MIT", "License-File: LICENSE", "License-File: NOTICE")
    )
    assert parsed.fields["license_expression"] == "MIT"
    assert parsed.fields["license_files"] == ["LICENSE", "NOTICE"]


def test_import_name_is_kept() -> None:
    """2.5 (PEP 794): Import-Name is parsed and kept."""
    parsed = parse_core_metadata(metadata("2.5", "Import-Name: demo_pkg", "Import-Name: demo2"))
    assert parsed.fields["import_names"] == ["demo_pkg", "demo2"]


@pytest.mark.parametrize("version", ["3.0", "4.1", "9.9"])
def test_higher_major_version_is_refused(version: str) -> None:
    """A higher major Metadata-Version is refused, naming the field."""
    message = refused(metadata(version))
    assert version in message
    assert "metadata-version" in message.lower()


def test_missing_metadata_version_is_refused() -> None:
    """Metadata-Version is required."""
    message = refused(b"Name: demo\nVersion: 1.0\n")
    assert "metadata-version" in message.lower()


def test_missing_name_is_refused() -> None:
    """Name is required."""
    assert "name" in refused(b"Metadata-Version: 2.1\nVersion: 1.0\n")


def test_missing_version_is_refused() -> None:
    """Version is required."""
    assert "version" in refused(b"Metadata-Version: 2.1\nName: demo\n")


@pytest.mark.parametrize("version", ["one", "1.0-beta-x", "1..0"])
def test_invalid_version_is_refused(version: str) -> None:
    """The Version must be PEP 440."""
    data = f"Metadata-Version: 2.1\nName: demo\nVersion: {version}\n".encode()
    assert version in refused(data)


@pytest.mark.parametrize("name", ["-demo", "demo-", "de mo", "d\u00e9mo"])
def test_invalid_name_is_refused(name: str) -> None:
    """The Name must be ASCII letters, digits, ``._-``, starting and ending alnum."""
    data = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode()
    assert "name" in refused(data)


@pytest.mark.parametrize("requirement", ["requests >>>= 2", "requests[", "; python_version"])
def test_invalid_requires_dist_is_refused(requirement: str) -> None:
    """Every Requires-Dist must be a valid dependency specifier."""
    message = refused(metadata("2.1", f"Requires-Dist: {requirement}"))
    assert "requires-dist" in message.lower()


def test_invalid_license_expression_is_refused() -> None:
    """License-Expression must be valid SPDX (2.4+)."""
    assert (
        "license-expression" in refused(metadata("2.4", "License-Expression: MIT AND ((")).lower()
    )


def test_field_newer_than_declared_version_is_refused() -> None:
    """License-Expression needs metadata 2.4, so a 2.1 file using it is refused."""
    assert "license-expression" in refused(metadata("2.1", "License-Expression: MIT")).lower()


@pytest.mark.parametrize("version", ["1.2", "2.1", "2.2", "2.3"])
def test_license_file_before_2_4_is_kept_as_setuptools_wrote_it(version: str) -> None:
    """setuptools and hatchling wrote License-File under 2.1-2.3 for years: accepted, kept."""
    parsed = parse_core_metadata(metadata(version, "License-File: LICENSE", "License-File: NOTICE"))
    assert parsed.fields["license_files"] == ["LICENSE", "NOTICE"]
    assert parsed.metadata_version == version


@pytest.mark.parametrize("field", ["Name", "Version", "Metadata-Version"])
def test_dynamic_cannot_name_required_fields(field: str) -> None:
    """Name, Version and Metadata-Version can never be Dynamic."""
    assert "dynamic" in refused(metadata("2.2", f"Dynamic: {field}")).lower()


@pytest.mark.parametrize(
    "data",
    [
        b"Metadata-Version: 2.1\nName: demo\x00\nVersion: 1.0\n",
        b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n\nbody\x00\n",
        b"\x00",
    ],
)
def test_nul_bytes_are_refused(data: bytes) -> None:
    """NUL bytes anywhere in the metadata are refused."""
    assert "NUL" in refused(data)


@pytest.mark.parametrize("field", ["Summary", "Author", "Name"])
def test_invalid_utf8_in_a_known_field_is_refused(field: str) -> None:
    """Metadata is UTF-8; a known field with invalid bytes is refused."""
    lines = {"Metadata-Version": b"2.1", "Name": b"demo", "Version": b"1.0"}
    lines[field] = b"caf\xe9 \xff"
    data = b"".join(key.encode() + b": " + value + b"\n" for key, value in lines.items())
    assert field.lower() in refused(data).lower()


@pytest.mark.parametrize(
    ("field", "first", "second"),
    [("Name", "demo", "other"), ("Version", "1.0", "2.0"), ("Summary", "a", "b")],
)
def test_repeated_single_use_field_is_refused(field: str, first: str, second: str) -> None:
    """A single-use field given twice is refused rather than one value guessed."""
    lines = {"Metadata-Version": "2.1", "Name": "demo", "Version": "1.0", "Summary": "s"}
    text = "".join(f"{key}: {value}\n" for key, value in lines.items() if key != field)
    data = (text + f"{field}: {first}\n{field}: {second}\n").encode()
    assert field.lower() in refused(data).lower()


def test_unknown_headers_are_ignored() -> None:
    """Headers this index does not know are ignored, not an error."""
    parsed = parse_core_metadata(metadata("2.1", "X-Custom: yes") + b"Frobnicate: caf\xff\n")
    assert parsed.name == "Demo.Pkg"
    assert not any("custom" in key.lower() for key in parsed.fields)


def test_unknown_placeholders_are_dropped() -> None:
    """Values that are exactly ``UNKNOWN`` (distutils leftovers) are dropped."""
    parsed = parse_core_metadata(
        metadata(
            "1.2",
            "Home-page: UNKNOWN",
            "Author: UNKNOWN",
            "License: UNKNOWN",
            "Platform: UNKNOWN",
            "Platform: linux",
            "Summary: real summary",
        )
    )
    assert "home_page" not in parsed.fields
    assert "author" not in parsed.fields
    assert "license" not in parsed.fields
    assert parsed.fields["platforms"] == ["linux"]
    assert parsed.fields["summary"] == "real summary"
    assert "UNKNOWN" not in repr(parsed.fields)


def test_invalid_utf8_in_the_body_is_refused() -> None:
    """The description body is UTF-8 too."""
    assert "description" in refused(metadata("2.1") + b"\nbody caf\xff\n").lower()


def test_description_body_is_kept() -> None:
    """The description may be the message body; it is kept verbatim (UTF-8)."""
    body = "# Demo\n\nA caf\u00e9 with *markdown*.\n"
    parsed = parse_core_metadata(metadata("2.1", body=body))
    assert parsed.fields["description"] == body


@pytest.mark.parametrize(
    ("line", "expected"),
    [("Requires-Python: >=3.8", ">=3.8"), ("Requires-Python: >=3.9,<4", "<4,>=3.9"), (None, None)],
)
def test_requires_python_is_exposed(line: str | None, expected: str | None) -> None:
    """docs/protocol.md, "Requires-Python": Requires-Python from the file is exposed for the simple
    API (None when absent)."""
    parsed = parse_core_metadata(metadata("1.2", *([line] if line else [])))
    if expected is None:
        assert parsed.requires_python is None
    else:
        assert parsed.requires_python is not None
        assert set(parsed.requires_python.split(",")) == set(expected.split(","))


def test_invalid_requires_python_is_refused() -> None:
    """docs/protocol.md, "Requires-Python": Requires-Python is validated on upload."""
    assert "requires-python" in refused(metadata("1.2", "Requires-Python: >=three")).lower()


def test_multi_use_fields_are_lists() -> None:
    """Multi-use fields (Classifier, Requires-Dist, Project-URL) keep every value."""
    parsed = parse_core_metadata(
        metadata(
            "2.1",
            "Classifier: A :: B",
            "Classifier: C :: D",
            "Requires-Dist: requests>=2",
            "Requires-Dist: rich; extra == 'cli'",
            "Provides-Extra: cli",
            "Project-URL: Source, https://example.test/src",
        )
    )
    assert parsed.fields["classifiers"] == ["A :: B", "C :: D"]
    assert parsed.fields["requires_dist"] == ["requests>=2", "rich; extra == 'cli'"]
    assert parsed.fields["project_urls"] == {"Source": "https://example.test/src"}


def test_error_lists_every_problem() -> None:
    """Check 16: one refusal names every problem found, not just the first."""
    data = (
        b"Metadata-Version: 2.1\nName: demo\nVersion: not-a-version\n"
        b"Requires-Dist: requests >>>= 2\nSummary: caf\xff\n"
    )
    message = refused(data).lower()
    assert "version" in message
    assert "requires-dist" in message
    assert "summary" in message


def test_crlf_line_endings_are_accepted() -> None:
    """RFC 822 style headers with CRLF line endings parse the same."""
    parsed = parse_core_metadata(b"Metadata-Version: 2.1\r\nName: demo\r\nVersion: 2.0\r\n")
    assert parsed.name == "demo"
    assert parsed.version == Version("2.0")


def test_metadata_version_2_0_of_old_wheels_is_read_as_2_1() -> None:
    """bdist_wheel wrote Metadata-Version 2.0 for years; those wheels still import."""
    parsed = parse_core_metadata(
        b"Metadata-Version: 2.0\nName: old-wheel\nVersion: 1.0\nRequires-Dist: six\n"
    )
    assert parsed.metadata_version == "2.0"
    assert parsed.fields["requires_dist"] == ["six"]
