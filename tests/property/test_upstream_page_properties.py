"""Properties of upstream page parsing: any answer is a checked page or refused
(docs/security.md, "Hostile upstream pages")."""

from __future__ import annotations

import html
import json
import re
from urllib.parse import urlsplit

from hypothesis import example, given
from hypothesis import strategies as st

from ministry.core.distributions import check_filename_safe
from ministry.core.upstream_pages import (
    UpstreamPage,
    UpstreamPageError,
    parse_page,
    parse_project_list,
)

PAGE_URL = "https://upstream.example/simple/demo/"
_CONTENT_TYPES = [
    "text/html",
    "application/vnd.pypi.simple.v1+html",
    "application/vnd.pypi.simple.v1+json",
    "application/json; charset=utf-8",
    "TEXT/HTML; charset=latin-1",
]
# The shapes of href an upstream may send, hostile ones included
# (docs/security.md, "Upstream requests (SSRF)", "Hostile upstream pages").
_HREF_PREFIXES = [
    "",
    "../",
    "../../files/",
    "/files/",
    "https://files.example/packages/",
    "//other.example/",
    "javascript:",
    "file:///etc/",
    "data:text/html,",
    "http://[::1/",
    "https://user@files.example:99999/",
    " https://files.example/\t",
    "\x00https://files.example/",
]
_FILENAMES = [
    "demo-1.0.tar.gz",
    "demo-1.0-py3-none-any.whl",
    "Demo-1.0.zip",
    "demo-1.0.tar.bz2",
    "other-1.0.tar.gz",
    "..%2F..%2Fdemo-1.0.tar.gz",
    "demo%2F1.0.tar.gz",
    "demo-1.0.tar.gz%00.png",
    "%2e%2e",
    "demo-1.0%0d%0a.whl",
    "demo-1.0-py3-none-any.whl#sha256=" + "a" * 64,
    "demo-1.0.tar.gz#md5=zz",
]
hrefs = st.builds(
    "{}{}{}".format,
    st.sampled_from(_HREF_PREFIXES),
    st.sampled_from(_FILENAMES) | st.text(max_size=30),
    st.sampled_from(["", "#sha256=" + "0" * 64, "#", "#sha256=xyz&md5=" + "1" * 32]),
)
attributes = st.dictionaries(
    st.sampled_from(
        [
            "data-yanked",
            "data-requires-python",
            "data-core-metadata",
            "data-dist-info-metadata",
            "data-provenance",
        ]
    ),
    st.none() | st.sampled_from(["", "true", "sha256=" + "b" * 64, ">=3.8", "<&\"'"]) | st.text(),
    max_size=3,
)


@st.composite
def html_pages(draw: st.DrawFn) -> bytes:
    """A PEP 503 page with generated anchors, maybe a <base>, maybe broken at the end."""
    parts = ["<!DOCTYPE html><html><body>"]
    if draw(st.booleans()):
        parts.append(f'<base href="{html.escape(draw(hrefs))}">')
    for _ in range(draw(st.integers(0, 5))):
        extra = "".join(
            f" {key}" if value is None else f' {key}="{html.escape(value)}"'
            for key, value in draw(attributes).items()
        )
        parts.append(f'<a href="{html.escape(draw(hrefs))}"{extra}>x</a>')
    text = "".join(parts) + draw(st.sampled_from(["</body></html>", "", "<a href='", "<!--"]))
    return text.encode("utf-8", "surrogatepass")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@st.composite
def json_pages(draw: st.DrawFn) -> bytes:
    """A PEP 691 page whose file entries mix good, odd and hostile values."""
    files = []
    for _ in range(draw(st.integers(0, 5))):
        entry: dict[str, object] = {
            "filename": draw(st.sampled_from(_FILENAMES) | st.text(max_size=20) | json_values),
            "url": draw(hrefs | json_values),
            "hashes": draw(
                st.just({"sha256": "c" * 64}) | st.dictionaries(st.text(max_size=8), json_values)
            ),
        }
        for key in ("yanked", "requires-python", "core-metadata", "size", "upload-time"):
            if draw(st.booleans()):
                entry[key] = draw(json_values | st.just("2024-02-30T25:61:00Z"))
        files.append(entry)
    document = {
        "meta": {"api-version": draw(st.sampled_from(["1.0", "1.4", "2.0", "x", 1]))},
        "name": draw(st.sampled_from(["demo", "Demo", "other"]) | json_values),
        "files": files,
    }
    if draw(st.booleans()):
        document["versions"] = draw(json_values)
    return json.dumps(document).encode()


def _check_page(page: UpstreamPage) -> None:
    assert page.name == "demo"
    for file in page.files:
        check_filename_safe(file.filename)
        url = urlsplit(file.url)
        assert url.scheme in ("http", "https") and url.hostname
        assert not url.fragment
        assert not re.search(r"[\x00-\x20\x7f]", file.url)
        assert all(re.fullmatch(r"[0-9a-f]+", value) for value in file.hashes.values())
        if file.provenance is not None:
            assert urlsplit(file.provenance).scheme in ("http", "https")


def _parse(body: bytes, content_type: str) -> None:
    try:
        page = parse_page(body, content_type, PAGE_URL, "demo")
    except UpstreamPageError:
        return
    _check_page(page)


@given(
    st.binary(max_size=500) | st.text(max_size=300).map(str.encode), st.sampled_from(_CONTENT_TYPES)
)
@example(b"", "text/html")
@example(b"null", "application/json")
@example(b"\xef\xbb\xbf{}", "application/json")
@example(b"[" * 100_000, "application/vnd.pypi.simple.v1+json")
@example(b"<a href='demo-1.0.tar.gz'>" * 3, "text/html")
def test_arbitrary_bytes_are_a_checked_page_or_refused(body: bytes, content_type: str) -> None:
    """Any bytes as either type: UpstreamPageError (keep the old cache) or a safe page."""
    _parse(body, content_type)


@given(html_pages(), st.sampled_from(_CONTENT_TYPES[:2]))
def test_html_pages_keep_only_safe_files(body: bytes, content_type: str) -> None:
    """Links of every shape: only http(s) files with a safe name of this project remain."""
    _parse(body, content_type)


@given(json_pages())
def test_json_pages_keep_only_safe_files(body: bytes) -> None:
    """JSON entries of every shape: only http(s) files with a safe name of this project remain."""
    _parse(body, "application/vnd.pypi.simple.v1+json")


@given(st.binary(max_size=500) | html_pages() | json_pages(), st.sampled_from(_CONTENT_TYPES))
def test_project_lists_are_normalized_names_or_refused(body: bytes, content_type: str) -> None:
    """A root page of any shape is a list of valid, normalized names, or UpstreamPageError."""
    try:
        names = parse_project_list(body, content_type)
    except UpstreamPageError:
        return
    assert names == sorted(set(names))
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name) for name in names)
