"""Directories on the server's disk as upstreams of proxy indexes (``file:///path/``).

Two layouts, told apart per project:

- a PEP 503 tree, ``<dir>/<project>/index.html``, whose links (relative ones too)
  lead to the distributions; a file its page gives no sha256 for is hashed here;
- a plain directory of wheels and sdists (find-links style): the page is made from
  the filenames of the project.

Either way a ``<file>.metadata`` beside a distribution is offered as its PEP 658
metadata. The page is answered as PEP 691 JSON, so the proxy reads it like any
upstream's. Hashes are kept by path, size and modification time, so a file is read
once until it changes; a plain directory's filenames are listed again only when the
directory changes. The list of every project (what ``ministry mirror --all`` reads)
is the tree's project directories and the plain directory's projects together.
A local upstream reads only inside the directory that holds
it: its own directory and the one above, where a tree's ``../../files/`` lead
(docs/security.md, "Local trees as upstreams"). Configuring one is for server
administrators only, like every upstream.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from cachetools import LRUCache
from packaging.utils import canonicalize_name

from ministry.core.distributions import parse_distribution_filename
from ministry.core.upstream_pages import UpstreamPageError, parse_html_page
from ministry.errors import InvalidUpload, UpstreamUnavailable

__all__ = ["LocalUpstreams", "is_local", "local_directory"]

_SUFFIXES = (".whl", ".tar.gz", ".zip")
_HASHES_KEPT = 65536
_CHUNK = 1024 * 1024


def is_local(url: str) -> bool:
    """Whether ``url`` names a file or directory on this server's disk."""
    return url[:5].lower() == "file:"


def local_directory(url: str) -> Path:
    """The directory a ``file:`` upstream URL names."""
    return Path(unquote(urlsplit(url).path))


def _project_of(filename: str) -> str | None:
    if not filename.endswith(_SUFFIXES):
        return None
    try:
        return str(parse_distribution_filename(filename).project)
    except InvalidUpload:
        return None


class LocalUpstreams:
    """Pages and files of local upstreams, with the sha256 of each file kept while it is
    unchanged."""

    def __init__(self) -> None:
        self._hashes: LRUCache[tuple[str, int, int], str] = LRUCache(_HASHES_KEPT)
        self._listings: LRUCache[tuple[str, int], dict[str, list[Path]]] = LRUCache(16)

    def _sha256(self, path: Path) -> str:
        status = path.stat()
        key = (str(path), status.st_size, status.st_mtime_ns)
        known = self._hashes.get(key)
        if known is None:
            digest = hashlib.sha256()
            with path.open("rb") as stream:
                while chunk := stream.read(_CHUNK):
                    digest.update(chunk)
            known = self._hashes[key] = digest.hexdigest()
        return known

    @staticmethod
    def contains(base: str, url: str) -> bool:
        """Whether the file ``url`` lies where the local upstream at ``base`` may read
        (its directory or the one above, symbolic links followed)."""
        if not is_local(base) or not is_local(url) or urlsplit(url).netloc:
            return False
        area = local_directory(base).resolve().parent
        return local_directory(url).resolve().is_relative_to(area)

    def page(self, base: str, project: str) -> tuple[int, bytes]:
        """The status (200 or 404) and PEP 691 JSON page of ``project`` in the local
        upstream at ``base``; raises when the directory cannot be read."""
        root = local_directory(base)
        try:
            listed = root / project / "index.html"
            if listed.is_file():
                entries = self._tree_files(listed, base, project)
            elif root.is_dir():
                entries = self._directory_files(root, project)
            else:
                raise UpstreamUnavailable(f"Local upstream {base} is not a directory.")
        except OSError as exc:
            raise UpstreamUnavailable(f"Local upstream {base} cannot be read: {exc}.") from exc
        if not entries:
            return 404, b""
        document = {"meta": {"api-version": "1.0"}, "name": project, "files": entries}
        return 200, json.dumps(document).encode()

    def projects(self, base: str) -> bytes:
        """The PEP 691 JSON list of every project the local upstream at ``base`` has a
        page of: the directories of a tree that hold an ``index.html`` under their
        normalized name (the only name :meth:`page` looks under), and the projects of
        the distributions lying in the directory itself; raises when it cannot be read."""
        root = local_directory(base)
        try:
            if not root.is_dir():
                raise UpstreamUnavailable(f"Local upstream {base} is not a directory.")
            names = set(self._by_project(root))
            for entry in root.iterdir():
                if entry.name == canonicalize_name(entry.name) and (entry / "index.html").is_file():
                    names.add(entry.name)
        except OSError as exc:
            raise UpstreamUnavailable(f"Local upstream {base} cannot be read: {exc}.") from exc
        document = {
            "meta": {"api-version": "1.0"},
            "projects": [{"name": name} for name in sorted(names)],
        }
        return json.dumps(document).encode()

    def _by_project(self, root: Path) -> dict[str, list[Path]]:
        """The distributions lying in ``root``, by project; read again when the directory
        changes (a file added, removed or renamed changes its modification time)."""
        stamp = (str(root), root.stat().st_mtime_ns)
        listing = self._listings.get(stamp)
        if listing is None:
            listing = {}
            for path in sorted(root.iterdir()):
                owner = _project_of(path.name)
                if owner is not None:
                    listing.setdefault(owner, []).append(path)
            self._listings[stamp] = listing
        return listing

    def _directory_files(self, root: Path, project: str) -> list[dict[str, object]]:
        return [
            self._entry(path, path.as_uri(), None, None)
            for path in self._by_project(root).get(project, ())
            if path.is_file()
        ]

    def _tree_files(self, listed: Path, base: str, project: str) -> list[dict[str, object]]:
        page_url = listed.parent.as_uri() + "/"
        try:
            page = parse_html_page(listed.read_bytes(), page_url, canonicalize_name(project))
        except UpstreamPageError as exc:
            raise UpstreamUnavailable(f"Local upstream page {listed}: {exc}") from exc
        entries = []
        for file in page.files:
            if not is_local(file.url) or not self.contains(base, file.url):
                continue  # a local tree links only its own files
            path = local_directory(file.url)
            if path.is_file():
                entry = self._entry(path, file.url, file.requires_python, file.yanked)
                given = file.hashes.get("sha256")
                if given is not None and given != entry["hashes"]["sha256"]:  # type: ignore[index]
                    continue  # the page and the file disagree: neither is believed
                entries.append(entry)
        return entries

    def _entry(
        self, path: Path, url: str, requires_python: str | None, yanked: str | None
    ) -> dict[str, object]:
        entry: dict[str, object] = {
            "filename": path.name,
            "url": url,
            "hashes": {"sha256": self._sha256(path)},
            "size": path.stat().st_size,
        }
        metadata = path.with_name(path.name + ".metadata")
        if metadata.is_file():
            entry["core-metadata"] = {"sha256": self._sha256(metadata)}
        if requires_python is not None:
            entry["requires-python"] = requires_python
        if yanked is not None:
            entry["yanked"] = yanked or True
        return entry

    def open(self, base: str, url: str) -> tuple[int, BinaryIO]:
        """The size and an open binary stream of a file of the local upstream at ``base``."""
        if not self.contains(base, url):
            raise UpstreamUnavailable(f"{url} is not a file of local upstream {base}.")
        path = local_directory(url)
        try:
            stream = path.open("rb")
            return os.fstat(stream.fileno()).st_size, stream
        except OSError as exc:
            raise UpstreamUnavailable(f"Local upstream file {url} cannot be read: {exc}.") from exc
