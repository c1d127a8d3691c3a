"""The simple repository API pages: PEP 503 HTML and PEP 691 JSON, with 592, 629, 658/714, 700.

Rendering is pure: it takes the files already chosen for a page and the URL of
each, and returns bytes. Callers cache those bytes by serial, so a page is built
once per change, not once per request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from json.encoder import encode_basestring_ascii as _json_string

from packaging.version import InvalidVersion, Version

from ministry.core.releases import group_by_release

__all__ = [
    "API_VERSION",
    "IndexEntry",
    "IndexRow",
    "ProjectPage",
    "SimpleFile",
    "format_upload_time",
    "index_html_chunks",
    "index_json_chunks",
    "project_html_chunks",
    "render_index_html",
    "render_index_json",
    "render_project_html",
    "render_project_json",
]

#: The living specification's current version (1.4: PEP 792 project status markers).
API_VERSION = "1.4"
# PEP 700 (1.1) makes "size" mandatory; a page proxied from an HTML upstream that did
# not give every size honestly claims the version before it.
_API_VERSION_WITHOUT_SIZES = "1.0"


@dataclass(frozen=True)
class SimpleFile:
    """One file link on a project page."""

    filename: str
    url: str
    version: str
    sha256: str
    #: None when an upstream page did not say (PEP 503 HTML has no sizes).
    size: int | None
    upload_time: datetime | None
    requires_python: str | None = None
    #: None: not yanked; a string (possibly empty): yanked, with that reason.
    yanked: str | None = None
    #: sha256 of the PEP 658 metadata file served at ``url + ".metadata"``, if there is one.
    metadata_sha256: str | None = None
    #: PEP 740 provenance URL of an upstream file, passed through.
    provenance: str | None = None


@dataclass(frozen=True)
class ProjectPage:
    """Everything a project detail page shows."""

    name: str  # normalized
    display_name: str
    files: tuple[SimpleFile, ...]
    last_serial: int


@dataclass(frozen=True)
class IndexEntry:
    """One project on the project list page."""

    name: str  # normalized
    display_name: str
    last_serial: int


#: One project on a streamed list: normalized name, display name, last serial.
IndexRow = tuple[str, str, int]


def format_upload_time(moment: datetime) -> str:
    """ISO 8601 in UTC with exactly six fractional digits and ``Z``
    (docs/protocol.md, "Upload times")."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _version_key(version: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def _sorted_files(files: Iterable[SimpleFile]) -> list[SimpleFile]:
    return sorted(files, key=lambda f: (_version_key(f.version), f.filename))


def _versions(files: Iterable[SimpleFile]) -> list[str]:
    """One version per release (PEP 700), spelled as its earliest uploaded file spells it."""
    oldest = sorted(files, key=lambda f: (f.upload_time is None, f.upload_time or 0, f.filename))
    spellings = [group[0].version for group in group_by_release(oldest).values()]
    return sorted(spellings, key=_version_key)


def render_project_json(page: ProjectPage) -> bytes:
    """The PEP 691 JSON project page."""
    files = _sorted_files(page.files)
    version = API_VERSION if all(f.size is not None for f in files) else _API_VERSION_WITHOUT_SIZES
    document = {
        "meta": {"api-version": version, "_last-serial": page.last_serial},
        "name": page.name,
        "versions": _versions(files),
        "files": [_file_json(f) for f in files],
    }
    return json.dumps(document, separators=(",", ":")).encode() + b"\n"


def _file_json(f: SimpleFile) -> dict[str, object]:
    core_metadata: object = {"sha256": f.metadata_sha256} if f.metadata_sha256 else False
    entry: dict[str, object] = {
        "filename": f.filename,
        "url": f.url,
        "hashes": {"sha256": f.sha256},
        "requires-python": f.requires_python,
        "core-metadata": core_metadata,
        # PEP 714 names it "core-metadata"; older unearth releases read only this spelling.
        # Both carry the same value; the bare "dist-info-metadata" key is never sent.
        "data-dist-info-metadata": core_metadata,
        "yanked": (f.yanked or True) if f.yanked is not None else False,
    }
    if f.size is not None:
        entry["size"] = f.size
    if f.upload_time is not None:
        entry["upload-time"] = format_upload_time(f.upload_time)
    if f.provenance is not None:
        entry["provenance"] = f.provenance
    return entry


def render_project_html(page: ProjectPage) -> bytes:
    """The PEP 503 HTML project page (frozen format, PEP 833)."""
    return b"".join(project_html_chunks(page))


def project_html_chunks(page: ProjectPage) -> Iterator[bytes]:
    """The PEP 503 HTML project page in pieces of ``_CHUNK`` links: a project of tens of
    thousands of files is compressed as it is rendered, never whole as text."""
    title = escape(page.display_name)
    yield (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">\n'
        f"    <title>Links for {title}</title>\n  </head>\n  <body>\n"
        f"    <h1>Links for {title}</h1>\n"
    ).encode()
    files = _sorted_files(page.files)
    if not files:
        yield b"\n"  # the blank line a page without links has always had
    for start in range(0, len(files), _CHUNK):
        yield "".join(_anchor(f) + "\n" for f in files[start : start + _CHUNK]).encode()
    yield b"  </body>\n</html>\n"


def _anchor(f: SimpleFile) -> str:
    attributes = [f'href="{escape(f.url)}#sha256={f.sha256}"']
    if f.requires_python:
        attributes.append(f'data-requires-python="{escape(f.requires_python)}"')
    if f.metadata_sha256:
        value = f"sha256={f.metadata_sha256}"
        attributes.append(f'data-core-metadata="{value}"')
        attributes.append(f'data-dist-info-metadata="{value}"')
    if f.yanked is not None:
        attributes.append(f'data-yanked="{escape(f.yanked)}"' if f.yanked else "data-yanked")
    if f.provenance is not None:
        attributes.append(f'data-provenance="{escape(f.provenance)}"')
    return f"    <a {' '.join(attributes)}>{escape(f.filename)}</a><br />"


#: Projects per chunk of a streamed list: large enough that the joins dominate, small
#: enough that a chunk is a few hundred kilobytes.
_CHUNK = 5000


def render_index_json(entries: Sequence[IndexEntry], last_serial: int) -> bytes:
    """The PEP 691 JSON project list."""
    rows = ((e.name, e.display_name, e.last_serial) for e in sorted(entries, key=lambda e: e.name))
    return b"".join(index_json_chunks(rows, last_serial))


def index_json_chunks(rows: Iterable[IndexRow], last_serial: int) -> Iterator[bytes]:
    """The PEP 691 JSON project list in pieces, from rows sorted by name; the pieces
    joined are what ``json.dumps`` of the whole document gives."""
    meta = json.dumps(
        {"api-version": API_VERSION, "_last-serial": last_serial}, separators=(",", ":")
    )
    yield f'{{"meta":{meta},"projects":['.encode()
    yield from _joined(
        rows, ",", lambda row: f'{{"name":{_json_string(row[1])},"_last-serial":{row[2]}}}'
    )
    yield b"]}\n"


def render_index_html(entries: Sequence[IndexEntry]) -> bytes:
    """The PEP 503 HTML project list; links are relative to the list's own URL."""
    rows = ((e.name, e.display_name, e.last_serial) for e in sorted(entries, key=lambda e: e.name))
    return b"".join(index_html_chunks(rows))


def index_html_chunks(rows: Iterable[IndexRow]) -> Iterator[bytes]:
    """The PEP 503 HTML project list in pieces, from rows sorted by name."""
    yield (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">\n'
        "    <title>Simple index</title>\n  </head>\n  <body>\n"
    ).encode()
    yield from _joined(
        rows, "\n", lambda row: f'    <a href="{escape(row[0])}/">{escape(row[1])}</a><br />'
    )
    yield b"\n  </body>\n</html>\n"


def _joined(
    rows: Iterable[IndexRow], separator: str, text_of: Callable[[IndexRow], str]
) -> Iterator[bytes]:
    """The rows' texts joined by ``separator``, encoded a chunk of rows at a time."""
    first = True
    for chunk in _chunked(rows):
        text = separator.join(map(text_of, chunk))
        yield (text if first else separator + text).encode()
        first = False


def _chunked(rows: Iterable[IndexRow]) -> Iterator[list[IndexRow]]:
    chunk: list[IndexRow] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == _CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
