"""Unit tests for ministry.core.simple_pages: the PEP 503/691 pages
(docs/protocol.md, "The simple API")."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import pytest

from ministry.core.simple_pages import (
    IndexEntry,
    ProjectPage,
    SimpleFile,
    format_upload_time,
    render_index_html,
    render_index_json,
    render_project_html,
    render_project_json,
)

UPLOAD_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
WHEN = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
SHA_A = "a" * 64
SHA_B = "b" * 64
SHA_M = "c" * 64


def simple_file(filename: str = "demo_pkg-1.0-py3-none-any.whl", **changes: Any) -> SimpleFile:
    version = changes.pop("version", filename.split("-")[1].removesuffix(".tar.gz"))
    base = SimpleFile(
        filename=filename,
        url=f"/files/ab/cd/{filename}",
        version=version,
        sha256=SHA_A,
        size=1234,
        upload_time=WHEN,
    )
    return replace(base, **changes)


def page(*files: SimpleFile, display_name: str = "Demo.Pkg") -> ProjectPage:
    return ProjectPage(name="demo-pkg", display_name=display_name, files=files, last_serial=42)


def project_json(*files: SimpleFile) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(render_project_json(page(*files)))
    return document


def only_file(document: dict[str, Any]) -> dict[str, Any]:
    assert len(document["files"]) == 1
    entry: dict[str, Any] = document["files"][0]
    return entry


# --- an HTML reader -----------------------------------------------------------------------


@dataclass
class Anchor:
    attrs: dict[str, str | None]
    text: str = ""


@dataclass
class ParsedPage:
    doctype: str = ""
    head_metas: list[dict[str, str | None]] = field(default_factory=list)
    title: str = ""
    h1: str = ""
    anchors: list[Anchor] = field(default_factory=list)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.result = ParsedPage()
        self._open: list[str] = []
        self._anchor: Anchor | None = None

    def handle_decl(self, decl: str) -> None:
        self.result.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "meta":
            if "head" in self._open:
                self.result.head_metas.append(dict(attrs))
            return
        if tag == "br":
            return
        if tag == "a":
            self._anchor = Anchor(dict(attrs))
        self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._anchor is not None:
            self.result.anchors.append(self._anchor)
            self._anchor = None
        if self._open and self._open[-1] == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._anchor is not None:
            self._anchor.text += data
        elif self._open and self._open[-1] == "title":
            self.result.title += data
        elif self._open and self._open[-1] == "h1":
            self.result.h1 += data


def parse_html(body: bytes) -> ParsedPage:
    reader = _Reader()
    reader.feed(body.decode("utf-8"))
    reader.close()
    return reader.result


def only_anchor(*files: SimpleFile) -> Anchor:
    anchors = parse_html(render_project_html(page(*files))).anchors
    assert len(anchors) == 1
    return anchors[0]


# --- upload-time (docs/protocol.md, "Upload times") ---------------------------------------


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (WHEN, "2024-05-06T07:08:09.123456Z"),
        (datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), "2024-05-06T07:08:09.000000Z"),
        (datetime(2024, 5, 6, 7, 8, 9, 5, tzinfo=UTC), "2024-05-06T07:08:09.000005Z"),
        (
            datetime(2024, 5, 6, 9, 8, 9, 120000, tzinfo=timezone(timedelta(hours=2))),
            "2024-05-06T07:08:09.120000Z",
        ),
        (
            datetime(2024, 12, 31, 20, 0, 0, tzinfo=timezone(timedelta(hours=-5))),
            "2025-01-01T01:00:00.000000Z",
        ),
    ],
    ids=["micro", "micro-zero", "micro-5", "utc+2", "utc-5-new-year"],
)
def test_upload_time_is_utc_with_six_digits_and_z(moment: datetime, expected: str) -> None:
    """upload-time is UTC, exactly six fractional digits and a ``Z`` suffix."""
    text = format_upload_time(moment)
    assert UPLOAD_TIME.match(text)
    assert text == expected


@pytest.mark.parametrize(
    "moment",
    [WHEN, WHEN.replace(microsecond=0), WHEN.astimezone(timezone(timedelta(hours=9, minutes=30)))],
)
def test_json_file_upload_time_matches_regex(moment: datetime) -> None:
    """Every JSON file carries an upload-time matching the six-digit ``Z`` form."""
    entry = only_file(project_json(simple_file(upload_time=moment)))
    assert UPLOAD_TIME.match(entry["upload-time"])
    parsed = datetime.fromisoformat(entry["upload-time"].replace("Z", "+00:00"))
    assert parsed == moment


# --- JSON project page (docs/protocol.md, "JSON pages") -----------------------------------


def test_json_meta_api_version_is_1_4() -> None:
    """docs/protocol.md, "API version": ``meta.api-version`` is the string ``"1.4"``."""
    assert project_json(simple_file())["meta"]["api-version"] == "1.4"


def test_json_name_is_the_normalized_name_not_the_display_name() -> None:
    """``name`` is the normalized project name."""
    document = json.loads(render_project_json(page(simple_file(), display_name="Demo_PKG")))
    assert document["name"] == "demo-pkg"


def test_json_versions_is_a_set_holding_every_file_version() -> None:
    """``versions`` lists each file's version once (a set of strings)."""
    files = (
        simple_file("demo_pkg-1.0-py3-none-any.whl"),
        simple_file("demo_pkg-1.0.tar.gz"),
        simple_file("demo_pkg-2.0rc1-py3-none-any.whl"),
        simple_file("demo_pkg-1.10-py3-none-any.whl"),
    )
    document = project_json(*files)
    versions = document["versions"]
    assert all(isinstance(v, str) for v in versions)
    assert len(versions) == len(set(versions))
    assert set(versions) == {"1.0", "2.0rc1", "1.10"}
    assert {f["filename"].split("-")[1].removesuffix(".tar.gz") for f in document["files"]} <= set(
        versions
    )


def test_json_empty_project_has_empty_lists() -> None:
    """``files`` and ``versions`` are arrays even with no files."""
    document = project_json()
    assert document["files"] == []
    assert document["versions"] == []


def test_json_file_has_every_required_key() -> None:
    """filename, url, hashes.sha256, size (int), yanked, core-metadata, upload-time."""
    entry = only_file(project_json(simple_file(size=98765)))
    assert entry["filename"] == "demo_pkg-1.0-py3-none-any.whl"
    assert entry["url"] == "/files/ab/cd/demo_pkg-1.0-py3-none-any.whl"
    assert entry["hashes"] == {"sha256": SHA_A}
    assert entry["size"] == 98765
    assert type(entry["size"]) is int
    assert "requires-python" in entry
    assert "yanked" in entry
    assert "core-metadata" in entry
    assert "upload-time" in entry


def test_json_hash_keys_are_lower_case() -> None:
    """Hash names are lower case."""
    entry = only_file(project_json(simple_file()))
    assert all(key == key.lower() for key in entry["hashes"])


def test_json_core_metadata_hash_when_metadata_exists() -> None:
    """``core-metadata`` is ``{"sha256": <hex>}`` for a file with a .metadata file."""
    entry = only_file(project_json(simple_file(metadata_sha256=SHA_M)))
    assert entry["core-metadata"] == {"sha256": SHA_M}


def test_json_core_metadata_false_without_metadata() -> None:
    """``core-metadata`` is ``false`` when no .metadata file exists."""
    entry = only_file(project_json(simple_file("demo_pkg-1.0.tar.gz")))
    assert entry["core-metadata"] is False


@pytest.mark.parametrize("metadata_sha256", [SHA_M, None])
def test_json_never_emits_dist_info_metadata_key(metadata_sha256: str | None) -> None:
    """The bare ``dist-info-metadata`` key is never sent; an alias equals core-metadata."""
    body = render_project_json(page(simple_file(metadata_sha256=metadata_sha256)))
    entry = only_file(json.loads(body))
    assert "dist-info-metadata" not in entry
    assert b'"dist-info-metadata"' not in body
    if "data-dist-info-metadata" in entry:
        assert entry["data-dist-info-metadata"] == entry["core-metadata"]


@pytest.mark.parametrize(
    ("yanked", "expected"),
    [(None, False), ("", True), ("broken build", "broken build")],
    ids=["not-yanked", "no-reason", "reason"],
)
def test_json_yanked_values(yanked: str | None, expected: object) -> None:
    """yanked is false, true (no reason) or the non-empty reason string."""
    entry = only_file(project_json(simple_file(yanked=yanked)))
    assert entry["yanked"] == expected
    assert type(entry["yanked"]) is type(expected)


def test_json_requires_python_null_when_absent() -> None:
    """``requires-python`` is null when the file states none."""
    assert only_file(project_json(simple_file()))["requires-python"] is None


def test_json_requires_python_is_not_escaped() -> None:
    """``requires-python`` is the plain string in JSON, with no HTML escaping."""
    body = render_project_json(page(simple_file(requires_python=">=3.8,<4")))
    assert only_file(json.loads(body))["requires-python"] == ">=3.8,<4"
    assert b"&gt;" not in body
    assert b"&lt;" not in body


def test_json_files_are_all_listed() -> None:
    """One file object per file, none dropped or duplicated."""
    names = ["demo_pkg-1.0-py3-none-any.whl", "demo_pkg-1.0.tar.gz", "demo_pkg-0.9.tar.gz"]
    document = project_json(*(simple_file(n) for n in names))
    assert sorted(f["filename"] for f in document["files"]) == sorted(names)


def test_json_body_is_utf8_json_ending_in_newline() -> None:
    """The JSON body is one UTF-8 JSON object (rendered with a trailing newline)."""
    body = render_project_json(page(simple_file()))
    assert body.endswith(b"\n")
    assert isinstance(json.loads(body.decode("utf-8")), dict)


# --- HTML project page (docs/protocol.md, "HTML pages") -----------------------------------


def test_html_has_doctype_and_repository_version_meta_in_head() -> None:
    """HTML5 doctype and ``<meta name="pypi:repository-version" content="1.4">`` in head."""
    body = render_project_html(page(simple_file()))
    parsed = parse_html(body)
    assert parsed.doctype.lower() == "doctype html"
    assert {"name": "pypi:repository-version", "content": "1.4"} in parsed.head_metas
    assert b'<meta name="pypi:repository-version" content="1.4">' in body


def test_html_one_anchor_per_file_with_filename_as_text() -> None:
    """One ``<a>`` per file whose text equals the last path segment of its href."""
    names = [
        "demo_pkg-1.0-py3-none-any.whl",
        "demo_pkg-1.0.tar.gz",
        "demo_pkg-1.0+cpu-1-cp312-cp312-manylinux_2_17_x86_64.whl",
    ]
    anchors = parse_html(render_project_html(page(*(simple_file(n) for n in names)))).anchors
    assert sorted(a.text for a in anchors) == sorted(names)
    for anchor in anchors:
        href = anchor.attrs["href"]
        assert href is not None
        assert urlsplit(href).path.rsplit("/", 1)[-1] == anchor.text


def test_html_href_carries_sha256_fragment() -> None:
    """The href ends in ``#sha256=<hex>`` with a lower-case hash name."""
    href = only_anchor(simple_file(sha256=SHA_B)).attrs["href"]
    assert href is not None
    assert urlsplit(href).fragment == f"sha256={SHA_B}"
    assert urlsplit(href).path == "/files/ab/cd/demo_pkg-1.0-py3-none-any.whl"


def test_html_requires_python_is_escaped() -> None:
    """``data-requires-python="&gt;=3.8"``: the ``>`` is HTML-escaped."""
    file = simple_file(requires_python=">=3.8")
    body = render_project_html(page(file))
    assert b'data-requires-python="&gt;=3.8"' in body
    assert only_anchor(file).attrs["data-requires-python"] == ">=3.8"


@pytest.mark.parametrize("value", ['<4,"x"', '>=3.8" onclick="x', "<3 & >2"])
def test_html_requires_python_with_quote_and_lt_round_trips(value: str) -> None:
    """``<``, ``>``, ``"`` and ``&`` are escaped so the attribute reads back unchanged."""
    file = simple_file(requires_python=value)
    body = render_project_html(page(file))
    anchor = only_anchor(file)
    assert anchor.attrs["data-requires-python"] == value
    assert "onclick" not in anchor.attrs
    assert b"<4" not in body
    assert b'"x"' not in body


@pytest.mark.parametrize("value", [None, ""])
def test_html_requires_python_omitted_when_empty(value: str | None) -> None:
    """No ``data-requires-python`` attribute when the file states none."""
    assert "data-requires-python" not in only_anchor(simple_file(requires_python=value)).attrs


def test_html_core_metadata_only_for_files_with_metadata() -> None:
    """``data-core-metadata="sha256=<hex>"`` for a file with metadata, absent otherwise."""
    with_metadata = simple_file(metadata_sha256=SHA_M)
    without = simple_file("demo_pkg-1.0.tar.gz")
    anchors = {
        a.text: a.attrs
        for a in parse_html(render_project_html(page(with_metadata, without))).anchors
    }
    assert anchors[with_metadata.filename]["data-core-metadata"] == f"sha256={SHA_M}"
    assert "data-core-metadata" not in anchors[without.filename]
    assert "data-dist-info-metadata" not in anchors[without.filename]


def test_html_dist_info_metadata_if_present_equals_core_metadata() -> None:
    """``data-dist-info-metadata``, if emitted, carries the same value (PEP 714)."""
    attrs = only_anchor(simple_file(metadata_sha256=SHA_M)).attrs
    assert attrs["data-core-metadata"] == f"sha256={SHA_M}"
    if "data-dist-info-metadata" in attrs:
        assert attrs["data-dist-info-metadata"] == attrs["data-core-metadata"]


def test_html_never_says_core_metadata_false() -> None:
    """``data-core-metadata="false"`` is never written (pip would fetch a missing file)."""
    files = (
        simple_file("demo_pkg-1.0.tar.gz"),
        simple_file("demo_pkg-1.0-py3-none-any.whl", metadata_sha256=SHA_M),
    )
    body = render_project_html(page(*files))
    assert b'="false"' not in body
    for anchor in parse_html(body).anchors:
        assert anchor.attrs.get("data-core-metadata") not in ("false", "")
        assert anchor.attrs.get("data-dist-info-metadata") not in ("false", "")


def test_html_yanked_without_reason_is_a_bare_attribute() -> None:
    """A file yanked with no reason carries a bare ``data-yanked``."""
    attrs = only_anchor(simple_file(yanked="")).attrs
    assert "data-yanked" in attrs
    assert attrs["data-yanked"] is None


@pytest.mark.parametrize("reason", ["broken build", 'bad "release" <b>'])
def test_html_yanked_with_reason_carries_it(reason: str) -> None:
    """``data-yanked="reason text"``, escaped so it reads back unchanged."""
    attrs = only_anchor(simple_file(yanked=reason)).attrs
    assert attrs["data-yanked"] == reason


def test_html_not_yanked_has_no_yanked_attribute() -> None:
    """A file that is not yanked has no ``data-yanked`` at all (empty means yanked)."""
    body = render_project_html(page(simple_file()))
    assert b"data-yanked" not in body
    assert "data-yanked" not in only_anchor(simple_file()).attrs


@pytest.mark.parametrize(
    "display_name",
    ["<script>alert(1)</script>", 'Demo"&<b>', "</title><h1>x"],
)
def test_html_hostile_display_name_is_escaped_in_title(display_name: str) -> None:
    """The display name is HTML-escaped in the title and heading."""
    body = render_project_html(page(simple_file(), display_name=display_name))
    parsed = parse_html(body)
    assert display_name in parsed.title
    assert display_name in parsed.h1
    assert display_name.encode() not in body
    assert b"<script>" not in body


def test_html_and_json_list_the_same_files() -> None:
    """Both serializations describe the same set of files."""
    files = (simple_file("demo_pkg-1.0.tar.gz"), simple_file("demo_pkg-2.0-py3-none-any.whl"))
    html_names = {a.text for a in parse_html(render_project_html(page(*files))).anchors}
    json_names = {f["filename"] for f in project_json(*files)["files"]}
    assert html_names == json_names == {f.filename for f in files}


# --- project list (docs/protocol.md, "Project list") -------------------------------------

ENTRIES = [
    IndexEntry(name="zeta", display_name="Zeta", last_serial=3),
    IndexEntry(name="foo-bar", display_name="Foo_Bar", last_serial=5),
    IndexEntry(name="hostile", display_name="<b>Hostile</b>", last_serial=1),
]


def test_index_html_links_are_relative_normalized_with_slash() -> None:
    """Each project links to ``<normalized>/`` relative to /simple/."""
    parsed = parse_html(render_index_html(ENTRIES))
    hrefs = {a.attrs["href"] for a in parsed.anchors}
    assert hrefs == {"zeta/", "foo-bar/", "hostile/"}


def test_index_html_has_repository_version_meta() -> None:
    """The project list also declares repository version 1.4 in its head."""
    parsed = parse_html(render_index_html(ENTRIES))
    assert parsed.doctype.lower() == "doctype html"
    assert {"name": "pypi:repository-version", "content": "1.4"} in parsed.head_metas


def test_index_html_anchor_text_is_the_escaped_project_name() -> None:
    """The anchor text is the project name, HTML-escaped."""
    body = render_index_html(ENTRIES)
    texts = {a.attrs["href"]: a.text for a in parse_html(body).anchors}
    assert texts["hostile/"] == "<b>Hostile</b>"
    assert texts["foo-bar/"] == "Foo_Bar"
    assert b"<b>Hostile" not in body


def test_index_html_order_is_stable_by_normalized_name() -> None:
    """The list is sorted by normalized name, whatever order the entries came in."""
    first = parse_html(render_index_html(ENTRIES)).anchors
    second = parse_html(render_index_html(list(reversed(ENTRIES)))).anchors
    assert [a.attrs["href"] for a in first] == [a.attrs["href"] for a in second]
    assert [a.attrs["href"] for a in first] == ["foo-bar/", "hostile/", "zeta/"]


def test_index_json_shape() -> None:
    """``{"meta": {"api-version": "1.4"}, "projects": [{"name": ...}, ...]}``."""
    document = json.loads(render_index_json(ENTRIES, last_serial=9))
    assert document["meta"]["api-version"] == "1.4"
    assert sorted(p["name"] for p in document["projects"]) == sorted(
        e.display_name for e in ENTRIES
    )
    assert all(isinstance(p["name"], str) for p in document["projects"])


def test_index_empty() -> None:
    """An empty index renders an empty list in both forms."""
    assert json.loads(render_index_json([], last_serial=0))["projects"] == []
    assert parse_html(render_index_html([])).anchors == []


def test_provenance_passes_through_in_both_forms() -> None:
    """PEP 740: an upstream's provenance URL is kept as given, JSON key and HTML attribute."""
    url = "https://index.example.test/integrity/demo/1.0/demo.whl/provenance"
    entry = only_file(project_json(simple_file(provenance=url)))
    assert entry["provenance"] == url
    assert (
        f'data-provenance="{url}"'
        in render_project_html(page(simple_file(provenance=url))).decode()
    )
    assert "provenance" not in only_file(project_json(simple_file()))


def test_unknown_sizes_claim_the_api_version_before_sizes() -> None:
    """A page proxied from HTML may lack sizes: it honestly claims 1.0 and omits them."""
    document = project_json(
        simple_file(size=None, upload_time=None), simple_file("demo_pkg-1.0.tar.gz")
    )
    assert document["meta"]["api-version"] == "1.0"
    without = next(f for f in document["files"] if f["filename"].endswith(".whl"))
    assert "size" not in without
    assert "upload-time" not in without


def test_json_versions_lists_a_release_once_however_its_files_spell_it() -> None:
    """PEP 700 ``versions`` has one entry per release, spelled as its oldest file spells it."""
    files = (
        simple_file("demo_pkg-2.0.0-py3-none-any.whl", upload_time=WHEN + timedelta(days=1)),
        simple_file("demo_pkg-2.0.tar.gz"),
        simple_file("demo_pkg-1.0.tar.gz"),
    )
    assert project_json(*files)["versions"] == ["1.0", "2.0"]
