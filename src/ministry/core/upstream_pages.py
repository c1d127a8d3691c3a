"""Parsing an upstream index's project page (PEP 503 HTML or PEP 691 JSON) into a checked value.

The proxy trusts an upstream for bytes it can verify, never for structure: a
captive portal, an HTML error page served as JSON, a link to ``javascript:``, a
filename with ``/`` or ``..`` or another project's file must not reach our cache
or our clients (docs/security.md, "Hostile upstream pages").
So a document that cannot be a project page
raises :class:`UpstreamPageError` (the caller keeps its previous copy), while a
single bad file entry is dropped and the rest of the page kept. Yanked reasons
and ``requires-python`` pass through exactly (docs/protocol.md, "Reading upstream pages").

Which hosts the file URLs may point to is the fetcher's policy (allow-list,
docs/security.md, "Upstream requests (SSRF)"), not this module's:
PyPI's pages link to another host by design.
Pure code, no I/O; sizes are bounded here as a second guard (docs/security.md,
"Hostile upstream pages").
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from packaging.utils import InvalidName, NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from ministry.core.distributions import check_filename_safe, parse_distribution_filename
from ministry.errors import InvalidUpload

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_FILES",
    "UpstreamFile",
    "UpstreamPage",
    "UpstreamPageError",
    "parse_html_page",
    "parse_json_page",
    "parse_page",
    "parse_project_list",
]

#: Larger bodies are refused outright (callers also cap their reads).
MAX_BODY_BYTES = 64 * 1024 * 1024
#: More file entries than this are refused (PyPI's largest projects have tens of thousands).
MAX_FILES = 200_000

_JSON_TYPES = frozenset({"application/vnd.pypi.simple.v1+json", "application/json"})
_HTML_TYPES = frozenset({"text/html", "application/vnd.pypi.simple.v1+html"})
_HASH_LENGTHS = {"md5": 32, "sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128}
_HEX = re.compile(r"[0-9a-fA-F]+\Z")
_API_VERSION = re.compile(r"([0-9]+)\.([0-9]+)\Z")
_UPLOAD_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))\Z"
)
_LEGACY_SDIST_SUFFIXES = (".zip", ".tar.bz2")
_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")
# HTMLParser re-scans unterminated markup on every feed and, in close(), once per
# character (quadratic before CPython 3.11.13): feed in chunks, bound what is pending.
_FEED_CHUNK = 64 * 1024
_MAX_PENDING = 256 * 1024
# A real page has three or four tags per file; refusing more bounds the parse time.
_MAX_MARKUP = 8 * MAX_FILES
# Parsed JSON costs up to about 100 bytes per value (an empty object in a list), whatever
# the page's size. A file entry of the public index has some 25 ``,`` and ``:``; refusing
# more than 2,000,000 (80,000 entries, more than any project has) before parsing bounds
# what a hostile page of tiny values costs to some 200 MB (docs/security.md, "Hostile
# upstream pages").
_MAX_JSON_SEPARATORS = 2_000_000


class UpstreamPageError(ValueError):
    """The upstream answer cannot be trusted as a project page; keep what was cached before."""


class _FrozenHashes(Mapping[str, str]):
    """An immutable, hashable algorithm-to-hex mapping; equal to any mapping with the same items."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str]) -> None:
        self._items = tuple(sorted(items.items()))

    def __getitem__(self, key: str) -> str:
        for name, value in self._items:
            if name == key:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return repr(dict(self._items))


@dataclass(frozen=True)
class UpstreamFile:
    """One file of an upstream page.

    ``hashes`` and ``metadata_hashes`` are stored as a read-only, hashable mapping
    (any mapping given is copied into one), so the value is immutable and hashable.
    """

    filename: str
    url: str  # absolute http(s) URL (file: on a local tree's page), fragment removed
    hashes: Mapping[str, str]  # lower-case algorithm -> lower-case hex, possibly empty
    requires_python: str | None = None
    yanked: str | None = None  # None: not yanked; "": yanked without reason; else the reason
    metadata_hashes: Mapping[str, str] | None = None  # None: no PEP 658 metadata; {}: no hash
    size: int | None = None
    upload_time: datetime | None = None  # aware, UTC
    provenance: str | None = None  # PEP 740 URL, absolute http(s) only

    def __post_init__(self) -> None:
        """Freeze the hash mappings."""
        object.__setattr__(self, "hashes", _FrozenHashes(self.hashes))
        if self.metadata_hashes is not None:
            object.__setattr__(self, "metadata_hashes", _FrozenHashes(self.metadata_hashes))


@dataclass(frozen=True)
class UpstreamPage:
    """A checked upstream project page."""

    name: str  # normalized
    files: tuple[UpstreamFile, ...]
    versions: tuple[str, ...]
    status: str | None  # PEP 792 project status, if the page gave one


def parse_page(body: bytes, content_type: str | None, page_url: str, project: str) -> UpstreamPage:
    """Parse by the response's media type; an unknown or missing type is refused."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type in _JSON_TYPES:
        return parse_json_page(body, page_url, project)
    if media_type in _HTML_TYPES:
        return parse_html_page(body, page_url, project)
    raise UpstreamPageError(f"Upstream answered with an unsupported content type {content_type!r}.")


def _check_request(body: bytes, project: str) -> NormalizedName:
    """Bound the body size and return the requested project's normalized name."""
    if len(body) > MAX_BODY_BYTES:
        raise UpstreamPageError(f"Upstream page is larger than {MAX_BODY_BYTES} bytes.")
    try:
        return canonicalize_name(project, validate=True)
    except InvalidName as exc:
        raise UpstreamPageError(f"{project!r} is not a valid project name.") from exc


def _check_api_version(value: object) -> None:
    """Refuse a missing or malformed api-version, or one with a major other than 1."""
    match = _API_VERSION.match(value) if isinstance(value, str) else None
    if match is None:
        raise UpstreamPageError(f"Upstream page has no valid api-version (got {value!r}).")
    if int(match.group(1)) != 1:
        raise UpstreamPageError(f"Upstream page has unsupported api-version {value}.")


# --- JSON (PEP 691, 700, 714, 740, 792) -----------------------------------------------


def parse_json_page(body: bytes, page_url: str, project: str) -> UpstreamPage:
    """Parse a PEP 691 JSON project page."""
    name = _check_request(body, project)
    if body.count(b",") + body.count(b":") > _MAX_JSON_SEPARATORS:
        raise UpstreamPageError("Upstream JSON page has more values than any project page.")
    document = _load_json(body)
    meta = document.get("meta")
    _check_api_version(meta.get("api-version") if isinstance(meta, dict) else None)
    declared = document.get("name")
    if not isinstance(declared, str) or canonicalize_name(declared) != name:
        raise UpstreamPageError(f"Upstream page names project {declared!r}, not {name!r}.")
    entries = document.get("files")
    if not isinstance(entries, list):
        raise UpstreamPageError("Upstream JSON page has no 'files' list.")
    _check_count(len(entries))
    candidates = (_json_file(entry, page_url) for entry in entries)
    files, derived = _keep_project_files(candidates, name)
    versions = _json_versions(document.get("versions"))
    status = document.get("project-status")
    status_value = status.get("status") if isinstance(status, dict) else None
    return UpstreamPage(
        name=name,
        files=files,
        versions=derived if versions is None else versions,
        status=status_value if isinstance(status_value, str) else None,
    )


def _load_json(body: bytes) -> dict[str, object]:
    """Decode a JSON object, or refuse the body."""
    try:
        document: object = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise UpstreamPageError(f"Upstream page is not valid UTF-8 JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise UpstreamPageError("Upstream JSON page is not an object.")
    return document


def _check_count(count: int) -> None:
    """Refuse pages with more files than any real project has."""
    if count > MAX_FILES:
        raise UpstreamPageError(f"Upstream page lists more than {MAX_FILES} files.")


def _json_versions(value: object) -> tuple[str, ...] | None:
    """The page's own ``versions`` list (deduplicated, in order), or None when absent."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UpstreamPageError("Upstream page's 'versions' is not a list of strings.")
    return tuple(dict.fromkeys(value))


def _json_file(entry: object, page_url: str) -> UpstreamFile | None:
    """One JSON file entry, or None when it lacks a usable filename, URL or hashes."""
    if not isinstance(entry, dict):
        return None
    filename, raw_url, hashes = entry.get("filename"), entry.get("url"), entry.get("hashes")
    if not isinstance(filename, str) or not isinstance(raw_url, str):
        return None
    resolved = _resolve_url(page_url, raw_url)
    if resolved is None or not isinstance(hashes, dict):
        return None
    return UpstreamFile(
        filename=filename,
        url=resolved[0],
        hashes=_clean_hashes(hashes.items()),
        requires_python=_requires_python(entry.get("requires-python")),
        yanked=_json_yanked(entry.get("yanked")),
        metadata_hashes=_json_metadata(entry),
        size=_json_size(entry.get("size")),
        upload_time=_parse_upload_time(entry.get("upload-time")),
        provenance=_absolute_url(entry.get("provenance")),
    )


def _json_metadata(entry: Mapping[str, object]) -> Mapping[str, str] | None:
    """PEP 658/714 metadata: the first spelling present decides (true, false or hashes)."""
    for key in ("core-metadata", "data-dist-info-metadata", "dist-info-metadata"):
        if key in entry:
            value = entry[key]
            if value is True:
                return {}
            if isinstance(value, dict):
                return _clean_hashes(value.items())
            return None
    return None


def _json_yanked(value: object) -> str | None:
    """PEP 592 in JSON: a truthy value means yanked; a non-empty string is the reason."""
    if isinstance(value, str):
        return value or None
    return "" if value else None


def _requires_python(value: object) -> str | None:
    """The specifier exactly as given; empty or missing means no constraint (None)."""
    return value if isinstance(value, str) and value else None


def _json_size(value: object) -> int | None:
    """A non-negative integer size, or None."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _parse_upload_time(value: object) -> datetime | None:
    """ISO 8601 with Z (or an offset) and any number of fractional digits, as aware UTC."""
    match = _UPLOAD_TIME.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    micro = int((match.group(7) or "0")[:6].ljust(6, "0"))
    try:
        moment = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
        if match.group(8):
            offset = timedelta(hours=int(match.group(9)), minutes=int(match.group(10)))
            moment -= offset if match.group(8) == "+" else -offset
    except (ValueError, OverflowError):
        return None
    return moment


# --- the list of every project (PEP 503 root page, PEP 691 index JSON) -----------------


class _AnchorText(HTMLParser):
    """Collects the text of every ``<a>`` of a page: the names of an index's root page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.names: list[str] = []
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._inside = True
            self.names.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._inside = False

    def handle_data(self, data: str) -> None:
        if self._inside:
            self.names[-1] += data


def parse_project_list(body: bytes, content_type: str | None) -> list[NormalizedName]:
    """Every valid project name an upstream's root page lists, normalized, each once, sorted."""
    if len(body) > MAX_BODY_BYTES:
        raise UpstreamPageError(f"Upstream project list is larger than {MAX_BODY_BYTES} bytes.")
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type in _JSON_TYPES:
        document = _load_json(body)
        meta = document.get("meta")
        _check_api_version(meta.get("api-version") if isinstance(meta, dict) else None)
        projects = document.get("projects")
        if not isinstance(projects, list):
            raise UpstreamPageError("Upstream project list has no 'projects' array.")
        raw = [p.get("name") for p in projects if isinstance(p, dict)]
    elif media_type in _HTML_TYPES:
        parser = _AnchorText()
        for start in range(0, len(body), _FEED_CHUNK):
            parser.feed(body[start : start + _FEED_CHUNK].decode("utf-8", "replace"))
        parser.close()
        raw = list(parser.names)
    else:
        raise UpstreamPageError(
            f"Upstream answered with an unsupported content type {content_type!r}."
        )
    names: set[NormalizedName] = set()
    for name in raw:
        if isinstance(name, str):
            try:
                names.add(canonicalize_name(name.strip(), validate=True))
            except InvalidName:
                continue
    return sorted(names)


# --- shared checks --------------------------------------------------------------------


def _clean_hashes(pairs: Iterable[tuple[object, object]]) -> dict[str, str]:
    """Known algorithms with hex values of the right length, lower-cased; others dropped."""
    hashes: dict[str, str] = {}
    for name, value in pairs:
        if not isinstance(name, str) or not isinstance(value, str):
            continue
        algorithm = name.lower()
        length = _HASH_LENGTHS.get(algorithm)
        if length == len(value) and _HEX.match(value):
            hashes.setdefault(algorithm, value.lower())
    return hashes


def _resolve_url(base: str, href: str) -> tuple[str, str] | None:
    """An absolute http(s) URL for ``href`` without its fragment, and the fragment; or None.

    A page of a local tree (a ``file:`` page URL) may also link local files; no other
    page can name a file on the server's disk (docs/security.md, "Local trees as
    upstreams").
    """
    try:
        parts = urlsplit(urljoin(base, href.strip()))
        local = urlsplit(base).scheme == "file" and parts.scheme == "file" and not parts.netloc
    except ValueError:
        return None
    if not local and (parts.scheme not in ("http", "https") or not parts.hostname):
        return None
    url = urlunsplit(parts._replace(fragment=""))
    return None if _URL_FORBIDDEN.search(url) else (url, parts.fragment)


def _absolute_url(value: object) -> str | None:
    """``value`` itself when it is an absolute http(s) URL (provenance is not resolved)."""
    if not isinstance(value, str) or _URL_FORBIDDEN.search(value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return value if parts.scheme in ("http", "https") and parts.hostname else None


def _file_version(filename: str, project: NormalizedName) -> Version | None:
    """The version of a safe distribution filename of ``project``, or None to drop the file."""
    try:
        check_filename_safe(filename)
        if filename.endswith(_LEGACY_SDIST_SUFFIXES):
            return _legacy_sdist_version(filename, project)
        parsed = parse_distribution_filename(filename)
    except InvalidUpload:
        return None
    return parsed.version if parsed.project == project else None


def _legacy_sdist_version(filename: str, project: NormalizedName) -> Version | None:
    """A ``.zip``/``.tar.bz2`` sdist's version when its name part normalizes to ``project``."""
    stem = filename.removesuffix(".zip").removesuffix(".tar.bz2")
    position = stem.find("-")
    while position > 0:
        if canonicalize_name(stem[:position]) == project:
            try:
                return Version(stem[position + 1 :])
            except InvalidVersion:
                pass
        position = stem.find("-", position + 1)
    return None


def _keep_project_files(
    candidates: Iterable[UpstreamFile | None], project: NormalizedName
) -> tuple[tuple[UpstreamFile, ...], tuple[str, ...]]:
    """The first file of each safe ``project`` filename, and the versions their names give."""
    kept: dict[str, UpstreamFile] = {}
    versions: set[Version] = set()
    for candidate in candidates:
        if candidate is None or candidate.filename in kept:
            continue
        version = _file_version(candidate.filename, project)
        if version is not None:
            kept[candidate.filename] = candidate
            versions.add(version)
    return tuple(kept.values()), tuple(str(v) for v in sorted(versions))


# --- HTML (PEP 503, 592, 629, 658/714, 740, 792) --------------------------------------


class _LinkCollector(HTMLParser):
    """Collects anchors, the first ``<base href>`` and the ``pypi:*`` meta values."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[dict[str, str | None]] = []
        self.base: str | None = None
        self.meta: dict[str, str] = {}
        self.saw_tag = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Record the elements a project page is made of."""
        self.saw_tag = True
        attributes: dict[str, str | None] = {}
        for key, value in attrs:  # the first occurrence of an attribute wins, as in browsers
            attributes.setdefault(key, value)
        if tag == "a" and attributes.get("href") is not None:
            self.anchors.append(attributes)
            _check_count(len(self.anchors))
        elif tag == "base" and self.base is None and attributes.get("href") is not None:
            self.base = attributes["href"]
        elif tag == "meta":
            name, content = attributes.get("name"), attributes.get("content")
            if name is not None and content is not None:
                self.meta.setdefault(name.lower(), content)

    def handle_decl(self, decl: str) -> None:
        """A doctype also shows the body is HTML."""
        self.saw_tag = True


def parse_html_page(body: bytes, page_url: str, project: str) -> UpstreamPage:
    """Parse a PEP 503 HTML project page.

    A body without a single tag or doctype (plain text, JSON, an empty body) is
    refused rather than read as a project with no files; a real HTML page with
    no anchors is a project with no files.
    """
    name = _check_request(body, project)
    collector = _collect_links(body)
    if not collector.saw_tag:
        raise UpstreamPageError("Upstream page served as HTML does not look like HTML.")
    if "pypi:repository-version" in collector.meta:
        _check_api_version(collector.meta["pypi:repository-version"])
    base = page_url
    if collector.base is not None:
        resolved_base = _resolve_url(page_url, collector.base)
        base = resolved_base[0] if resolved_base else page_url
    candidates = (_html_file(attributes, base) for attributes in collector.anchors)
    files, versions = _keep_project_files(candidates, name)
    return UpstreamPage(
        name=name, files=files, versions=versions, status=collector.meta.get("pypi:project-status")
    )


def _collect_links(body: bytes) -> _LinkCollector:
    """Decode and feed ``body`` in chunks; refuse markup left unterminated for more than
    _MAX_PENDING.

    Decoding chunk by chunk keeps no text copy of the whole page (one character beyond
    Latin-1 would make that copy four bytes a character). ``close()`` is never called:
    every complete tag has been reported by then, and closing would only re-scan an
    unterminated tail.
    """
    if body.count(b"<") > _MAX_MARKUP:
        raise UpstreamPageError("Upstream HTML page has more markup than any project page.")
    collector = _LinkCollector()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for start in range(0, len(body), _FEED_CHUNK):
        collector.feed(decoder.decode(body[start : start + _FEED_CHUNK]))
        if len(collector.rawdata) > _MAX_PENDING:
            raise UpstreamPageError("Upstream HTML page has unterminated markup.")
    return collector


def _html_file(attributes: Mapping[str, str | None], base: str) -> UpstreamFile | None:
    """One anchor as a file: the filename is the href's last path segment, unquoted."""
    resolved = _resolve_url(base, attributes.get("href") or "")
    if resolved is None:
        return None
    url, fragment = resolved
    pairs = ((n, v) for n, _, v in (part.partition("=") for part in fragment.split("&")))
    yanked = None
    if "data-yanked" in attributes:  # present without a value: yanked without a reason
        yanked = attributes["data-yanked"] or ""
    return UpstreamFile(
        filename=unquote(urlsplit(url).path.rsplit("/", 1)[-1]),
        url=url,
        hashes=_clean_hashes(pairs),
        requires_python=_requires_python(attributes.get("data-requires-python")),
        yanked=yanked,
        metadata_hashes=_html_metadata(attributes),
        provenance=_absolute_url(attributes.get("data-provenance")),
    )


def _html_metadata(attributes: Mapping[str, str | None]) -> Mapping[str, str] | None:
    """``data-core-metadata`` (else ``data-dist-info-metadata``): "true" or one valid hash."""
    value = attributes.get("data-core-metadata")
    if value is None:
        value = attributes.get("data-dist-info-metadata")
    if value is None:
        return None
    if value.strip().lower() == "true":
        return {}
    algorithm, separator, digest = value.strip().partition("=")
    hashes = _clean_hashes([(algorithm, digest)]) if separator else {}
    return hashes or None
