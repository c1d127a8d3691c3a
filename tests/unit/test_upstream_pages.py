"""Unit tests for ministry.core.upstream_pages: reading an upstream's PEP 503/691 project page.

Covers docs/protocol.md, "Reading upstream pages", and docs/security.md, "Hostile upstream pages".
"""

from __future__ import annotations

import json
import re
import time
import tracemalloc
from datetime import UTC, datetime
from typing import Any

import pytest

from ministry.core import upstream_pages
from ministry.core.simple_pages import (
    ProjectPage,
    SimpleFile,
    render_project_html,
    render_project_json,
)
from ministry.core.upstream_pages import (
    MAX_BODY_BYTES,
    UpstreamFile,
    UpstreamPage,
    UpstreamPageError,
    parse_html_page,
    parse_json_page,
    parse_page,
)

SHA_A = "a" * 64
SHA_B = "b" * 64
SHA_C = "c" * 64
MD5 = "0123456789abcdef" * 2
PYPI_PAGE_URL = "https://index.example.test/simple/demo-pkg/"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"


def json_page(files: list[Any], **top: Any) -> bytes:
    """A JSON project page for demo-pkg with the given file entries."""
    document: dict[str, Any] = {"meta": {"api-version": "1.4"}, "name": "demo-pkg", "files": files}
    document.update(top)
    return json.dumps(document).encode()


def json_file(filename: str = "demo_pkg-1.0.tar.gz", /, **keys: Any) -> dict[str, Any]:
    """One JSON file entry."""
    entry: dict[str, Any] = {
        "filename": filename,
        "url": f"https://files.example/packages/{filename}",
        "hashes": {"sha256": SHA_A},
    }
    entry.update(keys)
    return entry


def html_page(*anchors: str, head: str = "") -> bytes:
    """An HTML project page with the given anchor elements."""
    body = "\n".join(anchors)
    return (
        f"<!DOCTYPE html>\n<html><head>{head}<title>Links for demo-pkg</title></head>\n"
        f"<body><h1>Links for demo-pkg</h1>\n{body}\n</body></html>\n"
    ).encode()


def only_file(page: UpstreamPage) -> UpstreamFile:
    """The single file of a page."""
    assert len(page.files) == 1, page.files
    return page.files[0]


# --- JSON pages ------------------------------------------------------------------------


def test_pypi_like_json_page_keeps_every_field() -> None:
    wheel = json_file(
        "demo_pkg-2.0-py3-none-any.whl",
        url="https://files.example.test/packages/ab/cd/demo_pkg-2.0-py3-none-any.whl",
        hashes={"sha256": SHA_B, "blake2b_256": "f" * 64},
        **{
            "requires-python": ">=3.9, !=3.10.*",
            "core-metadata": {"sha256": SHA_C},
            "data-dist-info-metadata": {"sha256": SHA_C},
            "size": 12345,
            "upload-time": "2024-05-06T07:08:09.123456Z",
            "yanked": "broken build, use 2.0.1",
            "provenance": "https://index.example.test/integrity/demo-pkg/2.0/demo_pkg-2.0-py3-none-any.whl/provenance",
            "gpg-sig": False,
            "_private": 1,
        },
    )
    sdist = json_file(**{"requires-python": None, "core-metadata": False, "yanked": False})
    body = json_page(
        [sdist, wheel],
        versions=["1.0", "2.0", "3.0rc1"],
        **{"project-status": {"status": "archived", "reason": "moved"}},
    )

    page = parse_json_page(body, PYPI_PAGE_URL, "Demo_Pkg")

    assert page.name == "demo-pkg"
    assert page.versions == ("1.0", "2.0", "3.0rc1")
    assert page.status == "archived"
    assert [f.filename for f in page.files] == [
        "demo_pkg-1.0.tar.gz",
        "demo_pkg-2.0-py3-none-any.whl",
    ]
    first, second = page.files
    assert first == UpstreamFile(
        filename="demo_pkg-1.0.tar.gz",
        url="https://files.example/packages/demo_pkg-1.0.tar.gz",
        hashes={"sha256": SHA_A},
    )
    assert second.url == wheel["url"]
    assert dict(second.hashes) == {"sha256": SHA_B}
    assert second.requires_python == ">=3.9, !=3.10.*"
    assert second.metadata_hashes == {"sha256": SHA_C}
    assert second.size == 12345
    assert second.upload_time == datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    assert second.yanked == "broken build, use 2.0.1"
    assert second.provenance == wheel["provenance"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, ""),
        (False, None),
        (None, None),
        ("", None),
        ("bad  reason ", "bad  reason "),
        (1, ""),
    ],
)
def test_json_yanked_forms(value: object, expected: str | None) -> None:
    body = json_page([json_file(yanked=value)])
    assert only_file(parse_json_page(body, PYPI_PAGE_URL, "demo-pkg")).yanked == expected


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({}, None),
        ({"core-metadata": True}, {}),
        ({"core-metadata": False}, None),
        ({"core-metadata": {"SHA256": SHA_C.upper()}}, {"sha256": SHA_C}),
        ({"core-metadata": {"sha256": "nothex"}}, {}),
        ({"core-metadata": "sha256=" + SHA_C}, None),
        ({"data-dist-info-metadata": {"sha256": SHA_C}}, {"sha256": SHA_C}),
        ({"dist-info-metadata": True}, {}),
        ({"core-metadata": False, "dist-info-metadata": True}, None),
    ],
)
def test_json_core_metadata_spellings(keys: dict[str, Any], expected: object) -> None:
    body = json_page([json_file(**keys)])
    assert only_file(parse_json_page(body, PYPI_PAGE_URL, "demo-pkg")).metadata_hashes == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-06T07:08:09Z", datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ("2024-05-06T07:08:09.123Z", datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)),
        ("2024-05-06T07:08:09.123456Z", datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)),
        ("2024-05-06T07:08:09.123456789Z", datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)),
        ("2024-05-06T07:08:09+00:00", datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ("2024-05-06T07:08:09.5+02:00", datetime(2024, 5, 6, 5, 8, 9, 500000, tzinfo=UTC)),
        ("2024-05-06T07:08:09", None),
        ("2024-13-06T07:08:09Z", None),
        ("2024-05-06 07:08:09Z", None),
        ("yesterday", None),
        ("２０２４-05-06T07:08:09Z", None),
        (1714979289, None),
    ],
)
def test_upload_time_forms(value: object, expected: datetime | None) -> None:
    body = json_page([json_file(**{"upload-time": value})])
    moment = only_file(parse_json_page(body, PYPI_PAGE_URL, "demo-pkg")).upload_time
    assert moment == expected
    if moment is not None:
        assert moment.utcoffset() is not None
        assert moment.tzinfo == UTC


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 0), (99, 99), (-1, None), (True, None), ("9", None)]
)
def test_json_size(value: object, expected: int | None) -> None:
    body = json_page([json_file(size=value)])
    assert only_file(parse_json_page(body, PYPI_PAGE_URL, "demo-pkg")).size == expected


def test_json_without_versions_derives_them_from_filenames() -> None:
    body = json_page(
        [
            json_file("demo_pkg-1.10.tar.gz"),
            json_file("demo_pkg-1.9-py3-none-any.whl"),
            json_file("demo_pkg-1.9.tar.gz"),
            json_file("Demo.Pkg-1.0.0.zip"),
        ],
        meta={"api-version": "1.0"},
    )
    page = parse_json_page(body, PYPI_PAGE_URL, "demo-pkg")
    assert page.versions == ("1.0.0", "1.9", "1.10")
    assert page.status is None


def test_json_relative_urls_resolve_and_fragments_are_stripped() -> None:
    body = json_page(
        [
            json_file("demo_pkg-1.0.tar.gz", url="../../files/demo_pkg-1.0.tar.gz#sha256=" + SHA_B),
            json_file("demo_pkg-1.1.tar.gz", url="/root/demo_pkg-1.1.tar.gz"),
            json_file("demo_pkg-1.2.tar.gz", url="javascript:alert(1)"),
            json_file("demo_pkg-1.3.tar.gz", url="file:///etc/passwd"),
        ]
    )
    page = parse_json_page(body, "https://mirror.example/simple/demo-pkg/", "demo-pkg")
    assert [(f.filename, f.url, dict(f.hashes)) for f in page.files] == [
        (
            "demo_pkg-1.0.tar.gz",
            "https://mirror.example/files/demo_pkg-1.0.tar.gz",
            {"sha256": SHA_A},
        ),
        (
            "demo_pkg-1.1.tar.gz",
            "https://mirror.example/root/demo_pkg-1.1.tar.gz",
            {"sha256": SHA_A},
        ),
    ]


def test_json_file_entries_without_required_keys_are_dropped() -> None:
    body = json_page(
        [
            "not an object",
            {"url": "https://x.example/demo_pkg-1.0.tar.gz", "hashes": {}},
            {"filename": "demo_pkg-1.1.tar.gz", "hashes": {}},
            {"filename": "demo_pkg-1.2.tar.gz", "url": "https://x.example/demo_pkg-1.2.tar.gz"},
            {"filename": 5, "url": "https://x.example/demo_pkg-1.3.tar.gz", "hashes": {}},
            {"filename": "demo_pkg-1.4.tar.gz", "url": "https://x.example/a", "hashes": {}},
        ]
    )
    file = only_file(parse_json_page(body, PYPI_PAGE_URL, "demo-pkg"))
    assert (file.filename, file.url, dict(file.hashes)) == (
        "demo_pkg-1.4.tar.gz",
        "https://x.example/a",
        {},
    )


def test_json_invalid_hashes_are_dropped_and_names_lower_cased() -> None:
    hashes = {
        "SHA256": SHA_A.upper(),
        "md5": MD5,
        "sha512": "ab",
        "sha384": "g" * 96,
        "sha1": None,
        "whirlpool": "a" * 128,
    }
    file = only_file(
        parse_json_page(json_page([json_file(hashes=hashes)]), PYPI_PAGE_URL, "demo-pkg")
    )
    assert dict(file.hashes) == {"sha256": SHA_A, "md5": MD5}


def test_json_provenance_must_be_an_absolute_http_url() -> None:
    body = json_page(
        [
            json_file(
                "demo_pkg-1.0.tar.gz", provenance="/integrity/demo_pkg-1.0.tar.gz/provenance"
            ),
            json_file("demo_pkg-1.1.tar.gz", provenance="javascript:alert(1)"),
            json_file("demo_pkg-1.2.tar.gz", provenance="http://prov.example/p"),
            json_file("demo_pkg-1.3.tar.gz", provenance=None),
        ]
    )
    page = parse_json_page(body, PYPI_PAGE_URL, "demo-pkg")
    assert [f.provenance for f in page.files] == [None, None, "http://prov.example/p", None]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (json_page([], name="other-pkg"), "names project 'other-pkg'"),
        (json_page([], name=None), "names project None"),
        (json_page([], meta={"api-version": "2.0"}), "unsupported api-version 2.0"),
        (json_page([], meta={"api-version": "0.9"}), "unsupported api-version 0.9"),
        (json_page([], meta={"api-version": "1"}), "no valid api-version"),
        (json_page([], meta={"api-version": 1.4}), "no valid api-version"),
        (json_page([], meta=None), "no valid api-version"),
        (
            json.dumps({"meta": {"api-version": "1.4"}, "name": "demo-pkg", "files": {}}).encode(),
            "no 'files' list",
        ),
        (json.dumps({"meta": {"api-version": "1.4"}, "name": "demo-pkg"}).encode(), "no 'files'"),
        (json_page([], versions="1.0"), "'versions' is not a list of strings"),
        (json_page([], versions=["1.0", 2]), "'versions' is not a list of strings"),
        (b"[]", "not an object"),
        (b'"demo-pkg"', "not an object"),
        (b"null", "not an object"),
        (b"", "not valid UTF-8 JSON"),
        (b'{"meta": \xff}', "not valid UTF-8 JSON"),
        (b"[" * 200_000 + b"]" * 200_000, "not valid UTF-8 JSON"),
        (b"<!DOCTYPE html><html><body>Please log in</body></html>", "not valid UTF-8 JSON"),
    ],
)
def test_untrustworthy_json_documents_are_refused(body: bytes, message: str) -> None:
    with pytest.raises(UpstreamPageError, match=re.escape(message)):
        parse_json_page(body, PYPI_PAGE_URL, "demo-pkg")


def test_json_page_with_bom_and_no_files_is_an_empty_project() -> None:
    body = b"\xef\xbb\xbf" + json_page([], versions=[])
    page = parse_json_page(body, PYPI_PAGE_URL, "demo-pkg")
    assert page == UpstreamPage(name="demo-pkg", files=(), versions=(), status=None)


def test_captive_portal_served_with_json_type_is_refused() -> None:
    portal = b"<html><body><a href='https://portal.example/login'>Log in</a></body></html>"
    with pytest.raises(UpstreamPageError, match="not valid UTF-8 JSON"):
        parse_page(portal, "application/vnd.pypi.simple.v1+json", PYPI_PAGE_URL, "demo-pkg")


def test_too_many_files_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upstream_pages, "MAX_FILES", 3)
    files = [json_file(f"demo_pkg-1.{i}.tar.gz") for i in range(4)]
    with pytest.raises(UpstreamPageError, match="more than 3 files"):
        parse_json_page(json_page(files), PYPI_PAGE_URL, "demo-pkg")
    anchors = [f'<a href="demo_pkg-1.{i}.tar.gz">x</a>' for i in range(4)]
    with pytest.raises(UpstreamPageError, match="more than 3 files"):
        parse_html_page(html_page(*anchors), PYPI_PAGE_URL, "demo-pkg")
    assert len(parse_json_page(json_page(files[:3]), PYPI_PAGE_URL, "demo-pkg").files) == 3


def test_huge_bodies_are_refused_before_parsing() -> None:
    body = b" " * (MAX_BODY_BYTES + 1)
    for parse in (parse_json_page, parse_html_page):
        with pytest.raises(UpstreamPageError, match="larger than 67108864 bytes"):
            parse(body, PYPI_PAGE_URL, "demo-pkg")


def test_invalid_requested_project_name_is_refused() -> None:
    with pytest.raises(UpstreamPageError, match="not a valid project name"):
        parse_json_page(json_page([]), PYPI_PAGE_URL, "../demo-pkg")


# --- HTML pages ------------------------------------------------------------------------


def test_pypiserver_like_html_page() -> None:
    body = (
        b"<html><head><title>Links for foo</title></head><body><h1>Links for foo</h1>\n"
        b'<a href="../../packages/foo-1.0.tar.gz#sha256='
        + SHA_A.encode()
        + b'">foo-1.0.tar.gz</a><br>\n'
        b'<a href="../../packages/foo-0.9-py2.py3-none-any.whl#md5=' + MD5.encode() + b'">'
        b"foo-0.9-py2.py3-none-any.whl</a><br>\n</body></html>"
    )
    page = parse_html_page(body, "http://mirror.example.test:8080/simple/foo/", "foo")
    assert page.name == "foo"
    assert page.versions == ("0.9", "1.0")
    assert page.status is None
    assert page.files == (
        UpstreamFile(
            filename="foo-1.0.tar.gz",
            url="http://mirror.example.test:8080/packages/foo-1.0.tar.gz",
            hashes={"sha256": SHA_A},
        ),
        UpstreamFile(
            filename="foo-0.9-py2.py3-none-any.whl",
            url="http://mirror.example.test:8080/packages/foo-0.9-py2.py3-none-any.whl",
            hashes={"md5": MD5},
        ),
    )


def test_html_relative_urls_and_base() -> None:
    anchors = (
        '<a href="demo_pkg-1.0.tar.gz">demo_pkg-1.0.tar.gz</a>',
        '<a href="/root/demo_pkg-1.1.tar.gz">demo_pkg-1.1.tar.gz</a>',
        '<a href="//cdn.example/demo_pkg-1.2.tar.gz">demo_pkg-1.2.tar.gz</a>',
        '<a href="https://other.example/p/demo_pkg-1.3.tar.gz?x=1">demo_pkg-1.3.tar.gz</a>',
    )
    page_url = "https://mirror.example/simple/demo-pkg/"
    plain = parse_html_page(html_page(*anchors), page_url, "demo-pkg")
    assert [f.url for f in plain.files] == [
        "https://mirror.example/simple/demo-pkg/demo_pkg-1.0.tar.gz",
        "https://mirror.example/root/demo_pkg-1.1.tar.gz",
        "https://cdn.example/demo_pkg-1.2.tar.gz",
        "https://other.example/p/demo_pkg-1.3.tar.gz?x=1",
    ]
    based = parse_html_page(
        html_page(*anchors, head='<base href="../../files/">'), page_url, "demo-pkg"
    )
    assert [f.url for f in based.files[:2]] == [
        "https://mirror.example/files/demo_pkg-1.0.tar.gz",
        "https://mirror.example/root/demo_pkg-1.1.tar.gz",
    ]
    # A <base> after the links still applies (HTML), only the first <base> counts.
    late = (
        html_page(anchors[0]) + b'<base href="http://b.example/x/"><base href="http://c.example/">'
    )
    assert only_file(parse_html_page(late, page_url, "demo-pkg")).url == (
        "http://b.example/x/demo_pkg-1.0.tar.gz"
    )
    # A base that is not an http(s) URL is ignored.
    hostile = html_page(anchors[0], head='<base href="javascript:alert(1)//">')
    assert only_file(parse_html_page(hostile, page_url, "demo-pkg")).url == (
        "https://mirror.example/simple/demo-pkg/demo_pkg-1.0.tar.gz"
    )


def test_html_hostile_links_are_dropped() -> None:
    anchors = (
        '<a href="javascript:alert(1)//demo_pkg-1.0.tar.gz">demo_pkg-1.0.tar.gz</a>',
        '<a href=" JavaScript:alert(1)//demo_pkg-1.0.tar.gz">demo_pkg-1.0.tar.gz</a>',
        '<a href="data:text/plain,x/demo_pkg-1.0.tar.gz">demo_pkg-1.0.tar.gz</a>',
        '<a href="file:///etc/demo_pkg-1.0.tar.gz">demo_pkg-1.0.tar.gz</a>',
        '<a href="ftp://ftp.example/demo_pkg-1.0.tar.gz">demo_pkg-1.0.tar.gz</a>',
        '<a href="http:demo_pkg-1.0.tar.gz">no host</a>',
        '<a href="../..%2F..%2Fetc%2Fdemo_pkg-1.0.tar.gz">encoded slashes</a>',
        '<a href="..%5Cdemo_pkg-1.0.tar.gz">encoded backslash</a>',
        '<a href="x/..">dot dot</a>',
        '<a href="demo_pkg-1.0.tar.gz%00.whl">NUL</a>',
        '<a href="demo_pkg-1.0\x00.tar.gz">raw NUL</a>',
        '<a href="demo_pkg-1.0 .tar.gz">space</a>',
        '<a href="other_pkg-1.0.tar.gz">other project</a>',
        '<a href="demo_pkg_extra-1.0-py3-none-any.whl">other project wheel</a>',
        '<a href="demo-1.0.zip">other legacy project</a>',
        '<a href="demo_pkg-1.0.egg">egg</a>',
        '<a href="demo_pkg-1.0.exe">exe</a>',
        '<a href="demo_pkg-notaversion.tar.gz">bad version</a>',
        '<a href="https://portal.example/login">captive portal</a>',
        '<a name="anchor-without-href">x</a>',
        '<a href="demo_pkg-2.0.tar.gz#sha256=' + SHA_A + '">the one good file</a>',
    )
    page = parse_html_page(html_page(*anchors), PYPI_PAGE_URL, "demo-pkg")
    assert page.files == (
        UpstreamFile(
            filename="demo_pkg-2.0.tar.gz",
            url="https://index.example.test/simple/demo-pkg/demo_pkg-2.0.tar.gz",
            hashes={"sha256": SHA_A},
        ),
    )
    assert page.versions == ("2.0",)


def test_html_filename_is_the_unquoted_href_segment_not_the_text() -> None:
    anchors = (
        '<a href="/p/demo_pkg-1.0%2Bcpu-py3-none-any.whl">something else.whl</a>',
        '<a href="/p/demo_pkg-1.0%2Bcpu-py3-none-any.whl#sha256=' + SHA_B + '">duplicate</a>',
    )
    file = only_file(parse_html_page(html_page(*anchors), PYPI_PAGE_URL, "demo-pkg"))
    assert file.filename == "demo_pkg-1.0+cpu-py3-none-any.whl"
    assert file.url == "https://index.example.test/p/demo_pkg-1.0%2Bcpu-py3-none-any.whl"
    assert dict(file.hashes) == {}  # the first of two duplicates is kept


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("sha256=" + SHA_A, {"sha256": SHA_A}),
        ("SHA256=" + SHA_A.upper(), {"sha256": SHA_A}),
        ("md5=" + MD5, {"md5": MD5}),
        ("sha256=" + SHA_A + "&md5=" + MD5, {"sha256": SHA_A, "md5": MD5}),
        ("sha256=" + "z" * 64, {}),
        ("sha256=abc", {}),
        ("sha256=" + SHA_A + "0", {}),
        ("blake2b=" + SHA_A, {}),
        ("egg=demo_pkg", {}),
        ("", {}),
    ],
)
def test_html_hash_fragments(fragment: str, expected: dict[str, str]) -> None:
    body = html_page(f'<a href="demo_pkg-1.0.tar.gz#{fragment}">demo_pkg-1.0.tar.gz</a>')
    file = only_file(parse_html_page(body, PYPI_PAGE_URL, "demo-pkg"))
    assert dict(file.hashes) == expected
    assert file.url == "https://index.example.test/simple/demo-pkg/demo_pkg-1.0.tar.gz"


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        ('data-requires-python="&gt;=3.8"', ">=3.8"),
        ('data-requires-python="&lt;4,&gt;=3.8"', "<4,>=3.8"),
        ('data-requires-python="&#62;=3.9"', ">=3.9"),
        ("data-requires-python='>=3.10'", ">=3.10"),
        ('DATA-REQUIRES-PYTHON="~=3.11"', "~=3.11"),
        ('data-requires-python=""', None),
        ("data-requires-python", None),
        ("", None),
    ],
)
def test_html_requires_python_is_unescaped_and_passed_through(
    attribute: str, expected: str | None
) -> None:
    body = html_page(f'<a href="demo_pkg-1.0.tar.gz" {attribute}>demo_pkg-1.0.tar.gz</a>')
    assert only_file(parse_html_page(body, PYPI_PAGE_URL, "demo-pkg")).requires_python == expected


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        ("data-yanked", ""),
        ('data-yanked=""', ""),
        ('data-yanked="broken &amp; bad &lt;see #12&gt;"', "broken & bad <see #12>"),
        ('data-yanked=" spaced "', " spaced "),
        ("", None),
    ],
)
def test_html_yanked(attribute: str, expected: str | None) -> None:
    body = html_page(f'<a href="demo_pkg-1.0.tar.gz" {attribute}>demo_pkg-1.0.tar.gz</a>')
    assert only_file(parse_html_page(body, PYPI_PAGE_URL, "demo-pkg")).yanked == expected


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ('data-core-metadata="true"', {}),
        (f'data-core-metadata="sha256={SHA_C}"', {"sha256": SHA_C}),
        (f'data-core-metadata="SHA256={SHA_C.upper()}"', {"sha256": SHA_C}),
        ('data-core-metadata="false"', None),
        ('data-core-metadata="garbage"', None),
        ('data-core-metadata="sha256=nothex"', None),
        ('data-core-metadata=""', None),
        ("data-core-metadata", None),
        (f'data-dist-info-metadata="sha256={SHA_C}"', {"sha256": SHA_C}),
        ('data-dist-info-metadata="true"', {}),
        (f'data-core-metadata="true" data-dist-info-metadata="sha256={SHA_C}"', {}),
        ("", None),
    ],
)
def test_html_core_metadata_variants(attributes: str, expected: dict[str, str] | None) -> None:
    body = html_page(f'<a href="demo_pkg-1.0.tar.gz" {attributes}>demo_pkg-1.0.tar.gz</a>')
    assert only_file(parse_html_page(body, PYPI_PAGE_URL, "demo-pkg")).metadata_hashes == expected


def test_html_provenance() -> None:
    good = "https://index.example.test/integrity/demo-pkg/1.0/demo_pkg-1.0.tar.gz/provenance"
    anchors = (
        f'<a href="demo_pkg-1.0.tar.gz" data-provenance="{good}">x</a>',
        '<a href="demo_pkg-1.1.tar.gz" data-provenance="javascript:alert(1)">x</a>',
        '<a href="demo_pkg-1.2.tar.gz" data-provenance="relative/provenance">x</a>',
    )
    page = parse_html_page(html_page(*anchors), PYPI_PAGE_URL, "demo-pkg")
    assert [f.provenance for f in page.files] == [good, None, None]


def test_legacy_sdists_are_kept_and_give_versions() -> None:
    anchors = (
        '<a href="Demo-Pkg-0.1.zip#md5=' + MD5 + '">Demo-Pkg-0.1.zip</a>',
        '<a href="demo.pkg-0.2.tar.bz2">demo.pkg-0.2.tar.bz2</a>',
        '<a href="demo_pkg-1.0.tar.gz">demo_pkg-1.0.tar.gz</a>',
        '<a href="demo_pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.whl">wheel</a>',
        '<a href="demo-pkg-extra-0.3.zip">another project</a>',
        '<a href="demo-pkg-.zip">no version</a>',
    )
    page = parse_html_page(html_page(*anchors), PYPI_PAGE_URL, "demo-pkg")
    assert [f.filename for f in page.files] == [
        "Demo-Pkg-0.1.zip",
        "demo.pkg-0.2.tar.bz2",
        "demo_pkg-1.0.tar.gz",
        "demo_pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
    ]
    assert dict(page.files[0].hashes) == {"md5": MD5}
    assert page.versions == ("0.1", "0.2", "1.0")


def test_html_meta_status_and_repository_version() -> None:
    head = (
        '<meta name="pypi:repository-version" content="1.4">'
        '<meta name="pypi:project-status" content="quarantined">'
        '<meta name="pypi:project-status-reason" content="malware">'
    )
    page = parse_html_page(html_page(head=head), PYPI_PAGE_URL, "demo-pkg")
    assert page == UpstreamPage(name="demo-pkg", files=(), versions=(), status="quarantined")
    newer = html_page(head='<meta name="pypi:repository-version" content="2.0">')
    with pytest.raises(UpstreamPageError, match=r"unsupported api-version 2\.0"):
        parse_html_page(newer, PYPI_PAGE_URL, "demo-pkg")


def test_html_without_anchors_is_a_project_without_files() -> None:
    page = parse_html_page(b"<html><body></body></html>", PYPI_PAGE_URL, "demo-pkg")
    assert page == UpstreamPage(name="demo-pkg", files=(), versions=(), status=None)


@pytest.mark.parametrize(
    "body",
    [b"", b"   \n", b"Service Unavailable", b'{"meta": {"api-version": "1.4"}, "files": []}'],
)
def test_html_body_that_is_not_html_is_refused(body: bytes) -> None:
    with pytest.raises(UpstreamPageError, match="does not look like HTML"):
        parse_html_page(body, PYPI_PAGE_URL, "demo-pkg")


@pytest.mark.parametrize(
    "body",
    [
        b"<!DOCTYPE html><!--" * 300_000,
        b"<html>" + b"<a href=" * 300_000,
        b'<html><a href="x' + b"<a href='" * 300_000,
        b"<html>" + b"</" * 300_000,
        b"<html>" + b"<?" * 300_000,
        b"<html><script>" + b"</scrip" * 300_000,
    ],
)
def test_unterminated_markup_is_refused_quickly(body: bytes) -> None:
    started = time.monotonic()
    with pytest.raises(UpstreamPageError, match="unterminated markup"):
        parse_html_page(body, PYPI_PAGE_URL, "demo-pkg")
    assert time.monotonic() - started < 5


def test_markup_flood_is_refused() -> None:
    with pytest.raises(UpstreamPageError, match="more markup than any project page"):
        parse_html_page(b"<p>" * 1_600_001, PYPI_PAGE_URL, "demo-pkg")


def test_invalid_utf8_in_html_does_not_crash() -> None:
    body = html_page('<a href="demo_pkg-1.0.tar.gz">x</a>').replace(b"Links", b"Li\xffnks")
    body += b'<a href="demo_pkg-\xff1.1.tar.gz">bad bytes</a>'
    assert only_file(parse_html_page(body, PYPI_PAGE_URL, "demo-pkg")).filename == (
        "demo_pkg-1.0.tar.gz"
    )


# --- dispatch --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [JSON_TYPE, "application/vnd.pypi.simple.v1+json; charset=utf-8", "Application/JSON"],
)
def test_parse_page_dispatches_json(content_type: str) -> None:
    page = parse_page(json_page([json_file()]), content_type, PYPI_PAGE_URL, "demo-pkg")
    assert only_file(page).filename == "demo_pkg-1.0.tar.gz"


@pytest.mark.parametrize(
    "content_type",
    ["text/html", "text/html; charset=ISO-8859-1", "application/vnd.pypi.simple.v1+html"],
)
def test_parse_page_dispatches_html(content_type: str) -> None:
    body = html_page('<a href="demo_pkg-1.0.tar.gz">demo_pkg-1.0.tar.gz</a>')
    page = parse_page(body, content_type, PYPI_PAGE_URL, "demo-pkg")
    assert only_file(page).url == "https://index.example.test/simple/demo-pkg/demo_pkg-1.0.tar.gz"


@pytest.mark.parametrize(
    "content_type",
    [None, "", "text/plain", "application/vnd.pypi.simple.v2+json", "application/octet-stream"],
)
def test_parse_page_refuses_other_types(content_type: str | None) -> None:
    with pytest.raises(UpstreamPageError, match="unsupported content type"):
        parse_page(json_page([]), content_type, PYPI_PAGE_URL, "demo-pkg")


# --- values ----------------------------------------------------------------------------


def test_upstream_file_hash_mappings_are_frozen_and_hashable() -> None:
    source = {"SHA256": SHA_A}
    file = UpstreamFile(
        filename="demo_pkg-1.0.tar.gz",
        url="https://x.example/demo_pkg-1.0.tar.gz",
        hashes={"sha256": SHA_A},
        metadata_hashes={},
    )
    assert file.hashes == {"sha256": SHA_A}
    assert file.hashes["sha256"] == SHA_A
    assert file.metadata_hashes == {}
    assert file.hashes != source
    with pytest.raises(TypeError):
        file.hashes["sha256"] = SHA_B  # type: ignore[index]
    twin = UpstreamFile(
        filename="demo_pkg-1.0.tar.gz",
        url="https://x.example/demo_pkg-1.0.tar.gz",
        hashes={"sha256": SHA_A},
        metadata_hashes={},
    )
    assert hash(file) == hash(twin)
    assert {file, twin} == {file}
    assert repr(file.hashes) == repr({"sha256": SHA_A})


# --- round trip with our own renderer --------------------------------------------------


def ministry_page() -> ProjectPage:
    """A page with every optional field used somewhere."""
    when = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    files = (
        SimpleFile(
            filename="demo_pkg-1.0.tar.gz",
            url="/files/aa/bb/demo_pkg-1.0.tar.gz",
            version="1.0",
            sha256=SHA_A,
            size=1000,
            upload_time=when,
        ),
        SimpleFile(
            filename="demo_pkg-1.0-py3-none-any.whl",
            url="/files/cc/dd/demo_pkg-1.0-py3-none-any.whl",
            version="1.0",
            sha256=SHA_B,
            size=2000,
            upload_time=when,
            requires_python="<4,>=3.8",
            yanked='bad "quote" & <tag>',
            metadata_sha256=SHA_C,
        ),
        SimpleFile(
            filename="demo_pkg-2.0-py3-none-any.whl",
            url="/files/ee/ff/demo_pkg-2.0-py3-none-any.whl",
            version="2.0",
            sha256=SHA_C,
            size=3000,
            upload_time=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
            yanked="",
        ),
    )
    return ProjectPage(name="demo-pkg", display_name="Demo_Pkg", files=files, last_serial=7)


def expected_files(page: ProjectPage, *, with_json_only: bool) -> list[UpstreamFile]:
    """What parsing the rendered page must give back, in the renderer's order."""
    ordered = sorted(page.files, key=lambda f: (f.version, f.filename))
    return [
        UpstreamFile(
            filename=f.filename,
            url="https://ministry.example" + f.url,
            hashes={"sha256": f.sha256},
            requires_python=f.requires_python,
            yanked=f.yanked,
            metadata_hashes={"sha256": f.metadata_sha256} if f.metadata_sha256 else None,
            size=f.size if with_json_only else None,
            upload_time=f.upload_time if with_json_only else None,
        )
        for f in ordered
    ]


def test_ministry_json_page_round_trips() -> None:
    source = ministry_page()
    page_url = "https://ministry.example/simple/demo-pkg/"
    page = parse_page(render_project_json(source), JSON_TYPE, page_url, "Demo_Pkg")
    assert page.name == "demo-pkg"
    assert page.versions == ("1.0", "2.0")
    assert page.status is None
    assert list(page.files) == expected_files(source, with_json_only=True)


def test_ministry_html_page_round_trips() -> None:
    source = ministry_page()
    page_url = "https://ministry.example/simple/demo-pkg/"
    page = parse_page(render_project_html(source), "text/html", page_url, "demo-pkg")
    assert page.name == "demo-pkg"
    assert page.versions == ("1.0", "2.0")
    assert page.status is None
    assert list(page.files) == expected_files(source, with_json_only=False)


def test_a_json_page_of_tiny_values_is_refused_before_it_is_parsed() -> None:
    """Two million empty objects (6 MB) would take some 150 MB parsed: refused unparsed."""
    body = b'{"meta":{"api-version":"1.1"},"name":"demo","files":[' + b"{}," * 2_100_000 + b"{}]}"
    tracemalloc.start()
    try:
        with pytest.raises(UpstreamPageError) as refused:
            upstream_pages.parse_json_page(body, "https://index.example.test/simple/demo/", "demo")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024
    assert "more values than any project page" in str(refused.value)


def test_only_a_local_trees_own_page_links_files_on_the_servers_disk() -> None:
    """A ``file:`` link is kept on a page read from a local tree (a ``file:`` page URL),
    never on a page from an http(s) upstream, whatever its base or its spelling."""
    sha = "a" * 64
    body = (
        f'<a href="../../files/demo-1.0.tar.gz#sha256={sha}">x</a>'
        f'<a href="file:///srv/demo-1.1.tar.gz#sha256={sha}">y</a>'
        f'<a href="file://host/demo-1.2.tar.gz#sha256={sha}">z</a>'
    ).encode()
    local = parse_html_page(body, "file:///srv/simple/demo/", "demo")
    assert [f.url for f in local.files] == [
        "file:///srv/files/demo-1.0.tar.gz",
        "file:///srv/demo-1.1.tar.gz",
    ]
    remote = parse_html_page(body, "https://index.example/simple/demo/", "demo")
    assert [f.url for f in remote.files] == ["https://index.example/files/demo-1.0.tar.gz"]
    based = b'<base href="file:///srv/simple/demo/">' + body
    assert all(
        f.url.startswith("https:")
        for f in parse_html_page(based, "https://index.example/simple/demo/", "demo").files
    )
    entry = {"filename": "demo-1.1.tar.gz", "url": "file:///srv/demo-1.1.tar.gz"}
    document = {
        "meta": {"api-version": "1.0"},
        "name": "demo",
        "files": [{**entry, "hashes": {"sha256": sha}}],
    }
    assert parse_json_page(json.dumps(document).encode(), "https://i.example/", "demo").files == ()
