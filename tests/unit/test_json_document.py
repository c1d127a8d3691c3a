"""Unit tests for ministry.core.json_api: the public index's JSON API shape
(docs/protocol.md, "The JSON API")."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from packaging.utils import canonicalize_name

from ministry.core.json_api import latest_release, match_release, project_document
from ministry.core.metadata import parse_core_metadata
from ministry.core.models import DistFile, Project, Release

BASE_URL = "https://index.example.test"
WHEN = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
UPLOAD_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")
UPLOAD_TIME_ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")

TOP_LEVEL_KEYS = {"info", "last_serial", "urls", "vulnerabilities", "ownership"}
INFO_KEYS = {
    "name",
    "version",
    "summary",
    "description",
    "description_content_type",
    "keywords",
    "license",
    "license_expression",
    "license_files",
    "classifiers",
    "author",
    "author_email",
    "maintainer",
    "maintainer_email",
    "requires_python",
    "platform",
    "downloads",
    "package_url",
    "project_url",
    "project_urls",
    "release_url",
    "requires_dist",
    "provides_extra",
    "docs_url",
    "bugtrack_url",
    "home_page",
    "download_url",
    "yanked",
    "yanked_reason",
    "dynamic",
}
FILE_KEYS = {
    "filename",
    "url",
    "size",
    "packagetype",
    "python_version",
    "requires_python",
    "digests",
    "md5_digest",
    "has_sig",
    "downloads",
    "comment_text",
    "upload_time",
    "upload_time_iso_8601",
    "yanked",
    "yanked_reason",
    "core-metadata",
}

FULL_METADATA = b"""\
Metadata-Version: 2.4
Name: Demo.Pkg
Version: 1.0
Summary: A demo package
Keywords: alpha,beta,gamma
Author: Ada
Author-email: ada@example.test
Maintainer: Bob
Maintainer-email: bob@example.test
License-Expression: MIT
License-File: LICENSE
Classifier: Programming Language :: Python :: 3
Classifier: Operating System :: OS Independent
Platform: linux
Platform: macos
Requires-Python: >=3.8
Requires-Dist: requests>=2
Requires-Dist: rich; extra == "cli"
Provides-Extra: cli
Project-URL: Source, https://example.test/src
Project-URL: Docs, https://example.test/docs
Home-page: https://example.test
Download-URL: https://example.test/download
Description-Content-Type: text/markdown
Dynamic: Classifier

# Demo
"""
MINIMAL_METADATA = b"Metadata-Version: 2.1\nName: Demo.Pkg\nVersion: {version}\n"

PROJECT = Project(
    index="main",
    name=canonicalize_name("demo-pkg"),
    display_name="Demo.Pkg",
    created=WHEN,
    last_serial=17,
)


def release(version: str, metadata: bytes | None = None) -> Release:
    data = metadata or MINIMAL_METADATA.replace(b"{version}", version.encode())
    return Release(
        index="main",
        project=PROJECT.name,
        version=version,
        created=WHEN,
        metadata=parse_core_metadata(data).fields,
    )


def dist(
    version: str, packagetype: str = "bdist_wheel", yanked: str | None = None, **changes: Any
) -> DistFile:
    filename = (
        f"demo_pkg-{version}-py3-none-any.whl"
        if packagetype == "bdist_wheel"
        else f"demo_pkg-{version}.tar.gz"
    )
    base = DistFile(
        index="main",
        project=PROJECT.name,
        filename=filename,
        version=version,
        packagetype="bdist_wheel" if packagetype == "bdist_wheel" else "sdist",
        python_version="py3" if packagetype == "bdist_wheel" else "source",
        requires_python=">=3.8",
        size=1234,
        sha256="a" * 64,
        md5="b" * 32,
        blake2b_256="c" * 64,
        upload_time=WHEN,
        uploader="alice",
        metadata_sha256="d" * 64 if packagetype == "bdist_wheel" else None,
        yanked=yanked,
    )
    return replace(base, **changes)


def file_url(f: DistFile) -> str:
    return f"{BASE_URL}/files/{f.sha256[:2]}/{f.filename}"


def document(
    selected: Release,
    releases: list[Release] | None,
    files: list[DistFile],
) -> dict[str, Any]:
    return project_document(
        PROJECT,
        selected,
        releases,
        files,
        base_url=BASE_URL,
        index="main",
        file_url=file_url,
        last_serial=17,
    )


# --- latest (docs/protocol.md, "Latest release") ------------------------------------------


@pytest.mark.parametrize(
    ("versions", "yanked", "expected"),
    [
        (["1.0", "2.0", "1.5"], set(), "2.0"),
        (["1.0", "2.0"], {"2.0"}, "1.0"),
        (["1.0", "2.0b1"], set(), "1.0"),
        (["1.0", "2.0.dev1", "2.0rc1"], set(), "1.0"),
        (["1.0", "1.0.post1"], set(), "1.0.post1"),
        (["1.0", "2.0", "3.0a1"], {"2.0"}, "1.0"),
        (["1.0", "2.0"], {"1.0", "2.0"}, "2.0"),
        (["1.0a1", "1.0a2"], set(), "1.0a2"),
        (["1.0a1", "0.9"], {"0.9"}, "1.0a1"),
        (["1.10", "1.9", "1.2"], set(), "1.10"),
    ],
)
def test_latest_prefers_not_yanked_then_final_then_highest(
    versions: list[str], yanked: set[str], expected: str
) -> None:
    """Latest = not yanked first, then not a pre-release, then the highest version."""
    releases = [release(v) for v in versions]
    files = [dist(v, yanked="bad" if v in yanked else None) for v in versions]
    chosen = latest_release(releases, files)
    assert chosen is not None
    assert chosen.version == expected


def test_latest_counts_a_release_yanked_only_when_all_files_are() -> None:
    """A release with one yanked and one live file is not yanked."""
    releases = [release("1.0"), release("2.0")]
    files = [dist("1.0"), dist("2.0", yanked=""), dist("2.0", "sdist")]
    chosen = latest_release(releases, files)
    assert chosen is not None
    assert chosen.version == "2.0"


def test_latest_of_nothing_is_none() -> None:
    """A project without releases has no latest release."""
    assert latest_release([], []) is None


# --- version matching (docs/protocol.md, "JSON API URLs") ---------------------------------


@pytest.mark.parametrize(
    ("stored", "asked", "expected"),
    [
        (["1.0.0"], "1.0", "1.0.0"),
        (["1.0"], "1.0.0", "1.0"),
        (["1.0"], "1", "1.0"),
        (["2.0rc1"], "2.0-rc.1", "2.0rc1"),
        (["1.0", "1.0.0"], "1.0.0", "1.0.0"),
        (["1.0", "1.0.0"], "1.0", "1.0"),
        (["1.0"], "1.1", None),
        (["1.0"], "not a version", None),
    ],
)
def test_match_release_by_canonical_version(
    stored: list[str], asked: str, expected: str | None
) -> None:
    """``1.0`` finds ``1.0.0``; with two canonical matches the exact one wins."""
    found = match_release([release(v) for v in stored], asked)
    assert (found.version if found else None) == expected


def test_match_release_ambiguous_without_exact_is_none() -> None:
    """Several canonical matches and no exact match -> not found rather than a guess."""
    assert match_release([release("1.0"), release("1.0.0")], "1") is None


# --- document shape (docs/protocol.md, "JSON API keys") -----------------------------------


def full_project_document() -> dict[str, Any]:
    selected = release("1.0", FULL_METADATA)
    files = [dist("1.0"), dist("1.0", "sdist"), dist("0.9")]
    return document(selected, [release("0.9"), selected], files)


def test_project_document_top_level_keys() -> None:
    """info, last_serial, urls, vulnerabilities, ownership and (project only) releases."""
    doc = full_project_document()
    assert set(doc) == TOP_LEVEL_KEYS | {"releases"}
    assert doc["last_serial"] == 17
    assert doc["vulnerabilities"] == []
    assert set(doc["ownership"]) == {"roles", "organization"}
    assert isinstance(doc["ownership"]["roles"], list)


def test_version_document_has_no_releases() -> None:
    """The version endpoint MUST NOT include ``releases``."""
    doc = document(release("1.0"), None, [dist("1.0")])
    assert set(doc) == TOP_LEVEL_KEYS
    assert "releases" not in doc


def test_info_has_exactly_the_public_index_keys() -> None:
    """``info`` carries every key of the public index, with null where unknown."""
    assert set(full_project_document()["info"]) == INFO_KEYS
    assert set(document(release("1.0"), None, [dist("1.0")])["info"]) == INFO_KEYS


def test_info_values_from_metadata() -> None:
    """Info values come from the release's core metadata."""
    info = full_project_document()["info"]
    assert info["name"] == "Demo.Pkg"
    assert info["version"] == "1.0"
    assert info["summary"] == "A demo package"
    assert info["author"] == "Ada"
    assert info["author_email"] == "ada@example.test"
    assert info["maintainer"] == "Bob"
    assert info["license_expression"] == "MIT"
    assert info["license_files"] == ["LICENSE"]
    assert info["classifiers"] == [
        "Programming Language :: Python :: 3",
        "Operating System :: OS Independent",
    ]
    assert info["requires_python"] == ">=3.8"
    assert info["requires_dist"] == ["requests>=2", 'rich; extra == "cli"']
    assert info["provides_extra"] == ["cli"]
    assert info["project_urls"] == {
        "Source": "https://example.test/src",
        "Docs": "https://example.test/docs",
    }
    assert info["home_page"] == "https://example.test"
    assert info["download_url"] == "https://example.test/download"
    assert info["description_content_type"] == "text/markdown"
    assert info["description"] == "# Demo\n"
    assert info["dynamic"] == ["Classifier"]
    assert info["bugtrack_url"] is None
    assert info["downloads"] == {"last_day": -1, "last_week": -1, "last_month": -1}


def test_info_keywords_is_one_comma_string() -> None:
    """``keywords`` is a single comma-separated string, not a list."""
    keywords = full_project_document()["info"]["keywords"]
    assert isinstance(keywords, str)
    assert [k.strip() for k in keywords.split(",")] == ["alpha", "beta", "gamma"]


def test_info_platform_is_joined() -> None:
    """``platform`` is one string holding every Platform value."""
    platform = full_project_document()["info"]["platform"]
    assert isinstance(platform, str)
    assert [p.strip() for p in platform.split(",")] == ["linux", "macos"]


def test_info_unknown_values_are_null() -> None:
    """Fields the metadata does not have are null (lists: null or empty)."""
    info = document(release("1.0"), None, [dist("1.0")])["info"]
    for key in (
        "summary",
        "description",
        "keywords",
        "license",
        "license_expression",
        "author",
        "author_email",
        "maintainer",
        "home_page",
        "download_url",
        "requires_python",
        "platform",
        "project_urls",
        "requires_dist",
        "provides_extra",
        "docs_url",
        "bugtrack_url",
        "yanked_reason",
        "dynamic",
    ):
        assert info[key] is None, key
    assert info["classifiers"] in ([], None)


def test_info_urls_are_absolute_and_name_the_release() -> None:
    """package_url, project_url and release_url point at this index's pages."""
    info = full_project_document()["info"]
    assert info["package_url"].startswith(BASE_URL)
    assert info["project_url"].startswith(BASE_URL)
    assert info["release_url"].startswith(BASE_URL)
    assert "1.0" in info["release_url"]
    assert "demo-pkg" in info["project_url"]


@pytest.mark.parametrize(
    ("yanks", "yanked", "reason"),
    [
        ((None, None), False, None),
        (("", ""), True, None),
        (("broken", "broken"), True, "broken"),
        (("broken", None), False, None),
    ],
)
def test_info_yanked_follows_the_release(
    yanks: tuple[str | None, str | None], yanked: bool, reason: str | None
) -> None:
    """info.yanked is true only when the release is yanked; the reason or null."""
    files = [dist("1.0", yanked=yanks[0]), dist("1.0", "sdist", yanked=yanks[1])]
    info = document(release("1.0"), None, files)["info"]
    assert info["yanked"] is yanked
    assert info["yanked_reason"] == reason


def test_urls_hold_only_the_selected_release_files() -> None:
    """``urls`` lists the files of the selected release, each with every file key."""
    doc = full_project_document()
    assert sorted(u["filename"] for u in doc["urls"]) == [
        "demo_pkg-1.0-py3-none-any.whl",
        "demo_pkg-1.0.tar.gz",
    ]
    for entry in doc["urls"]:
        assert set(entry) == FILE_KEYS


def test_releases_map_every_version_to_its_files() -> None:
    """``releases`` maps each version (even one without files) to its file dicts."""
    selected = release("1.0")
    releases = [release("0.9"), selected, release("2.0")]
    files = [dist("1.0"), dist("0.9"), dist("0.9", "sdist")]
    doc = document(selected, releases, files)
    assert set(doc["releases"]) == {"0.9", "1.0", "2.0"}
    assert doc["releases"]["2.0"] == []
    assert len(doc["releases"]["0.9"]) == 2
    for entries in doc["releases"].values():
        for entry in entries:
            assert set(entry) == FILE_KEYS


def test_file_dict_values() -> None:
    """File dict values: digests, packagetype, python_version, has_sig, downloads, url."""
    wheel = dist("1.0")
    entry = next(u for u in full_project_document()["urls"] if u["filename"] == wheel.filename)
    assert entry["url"] == file_url(wheel)
    assert entry["size"] == 1234
    assert entry["packagetype"] == "bdist_wheel"
    assert entry["python_version"] == "py3"
    assert entry["requires_python"] == ">=3.8"
    assert entry["digests"] == {"md5": "b" * 32, "sha256": "a" * 64, "blake2b_256": "c" * 64}
    assert entry["md5_digest"] == "b" * 32
    assert entry["has_sig"] is False
    assert entry["downloads"] == -1
    assert entry["core-metadata"] == {"sha256": "d" * 64}
    assert entry["yanked"] is False
    assert entry["yanked_reason"] is None


def test_sdist_file_dict() -> None:
    """An sdist is ``packagetype: sdist``, ``python_version: source``, core-metadata false."""
    entry = next(u for u in full_project_document()["urls"] if u["filename"].endswith(".tar.gz"))
    assert entry["packagetype"] == "sdist"
    assert entry["python_version"] == "source"
    assert entry["core-metadata"] is False


@pytest.mark.parametrize(
    ("yanked", "flag", "reason"), [(None, False, None), ("", True, None), ("bad", True, "bad")]
)
def test_file_yanked_and_reason(yanked: str | None, flag: bool, reason: str | None) -> None:
    """yanked is a bool; yanked_reason the reason string or null."""
    entry = document(release("1.0"), None, [dist("1.0", yanked=yanked)])["urls"][0]
    assert entry["yanked"] is flag
    assert entry["yanked_reason"] == reason


@pytest.mark.parametrize(
    "moment",
    [
        WHEN,
        WHEN.replace(microsecond=0),
        datetime(2024, 5, 6, 9, 8, 9, 500, tzinfo=timezone(timedelta(hours=2))),
        datetime(2024, 12, 31, 22, 30, tzinfo=timezone(timedelta(hours=-5))),
    ],
    ids=["utc", "utc-no-micro", "utc+2", "utc-5-new-year"],
)
def test_upload_times(moment: datetime) -> None:
    """upload_time has no zone, upload_time_iso_8601 six digits and Z; both the UTC instant."""
    entry = document(release("1.0"), None, [dist("1.0", upload_time=moment)])["urls"][0]
    assert UPLOAD_TIME.match(entry["upload_time"])
    assert UPLOAD_TIME_ISO.match(entry["upload_time_iso_8601"])
    utc = moment.astimezone(UTC)
    assert entry["upload_time"] == utc.strftime("%Y-%m-%dT%H:%M:%S")
    assert entry["upload_time_iso_8601"] == utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert entry["upload_time_iso_8601"].startswith(entry["upload_time"])


def test_files_group_by_release_whatever_spelling_their_version_carries() -> None:
    """docs/security.md "Release identity": files spelled ``2.0`` and ``2.0.0`` are one
    release: one entry of ``releases``, all of them in ``urls``, yanked only when all are."""
    releases = [release("2.0"), release("1.0")]
    files = [dist("2.0"), dist("2.0.0", "sdist", yanked="bad"), dist("1.0")]
    shown = document(releases[0], releases, files)
    two = ["demo_pkg-2.0-py3-none-any.whl", "demo_pkg-2.0.0.tar.gz"]
    assert list(shown["releases"]) == ["1.0", "2.0"]
    assert [f["filename"] for f in shown["releases"]["2.0"]] == two
    assert [f["filename"] for f in shown["urls"]] == two
    assert shown["info"]["yanked"] is False
    all_yanked = [dist("2.0", yanked=""), dist("2.0.0", "sdist", yanked="bad"), dist("1.0")]
    selected = match_release(releases, "2.0.0")
    assert selected is not None
    info = document(selected, None, all_yanked)["info"]
    assert (info["version"], info["yanked"], info["yanked_reason"]) == ("2.0", True, "bad")
    latest = latest_release(releases, all_yanked)
    assert latest is not None and latest.version == "1.0"
