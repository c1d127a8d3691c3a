"""The JSON API in the shape tools expect from the public index (``/pypi/<project>/json``).

Not a standard, but dependabot, renovate, bandersnatch, poetry's PyPI source and
many scripts read it; every key the public index sends is sent, ``null`` where
this index has nothing to say (docs/protocol.md, "JSON API keys").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC
from typing import Any

from packaging.version import InvalidVersion, Version

from ministry.core.models import FileEntry, Project, Release, index_prefix
from ministry.core.releases import group_by_release, release_key, release_yank
from ministry.core.simple_pages import format_upload_time

__all__ = ["latest_release", "match_release", "project_document"]

FileUrl = Callable[[FileEntry], str]


def _version(release: Release) -> Version:
    try:
        return Version(release.version)
    except InvalidVersion:
        return Version("0")


def latest_release(releases: Sequence[Release], files: Sequence[FileEntry]) -> Release | None:
    """Newest release, preferring not yanked, then not a pre-release
    (docs/protocol.md, "Latest release")."""
    groups = group_by_release(files)
    yanked = {key for key, group in groups.items() if release_yank(group) is not None}

    def rank(release: Release) -> tuple[bool, bool, Version]:
        version = _version(release)
        return (release_key(release.version) not in yanked, not version.is_prerelease, version)

    return max(releases, key=rank, default=None)


def match_release(releases: Sequence[Release], version: str) -> Release | None:
    """The release whose canonical version matches (``1.0`` finds ``1.0.0``), exact first."""
    exact = [r for r in releases if r.version == version]
    if exact:
        return exact[0]
    wanted = release_key(version)
    matches = [r for r in releases if release_key(r.version) == wanted]
    return matches[0] if len(matches) == 1 else None


def _joined(value: Any) -> str | None:
    if isinstance(value, list):
        return ", ".join(value) if value else None
    return value if isinstance(value, str) else None


def _info(
    project: Project, release: Release, files: Sequence[FileEntry], pages_url: str
) -> dict[str, Any]:
    """The ``info`` of a release, given the files of that release; its links lead to the
    pages under ``pages_url``."""
    meta = release.metadata
    yank = release_yank(files)
    project_url = f"{pages_url}/project/{project.name}/"
    return {
        "author": meta.get("author"),
        "author_email": meta.get("author_email"),
        "bugtrack_url": None,
        "classifiers": meta.get("classifiers", []),
        "description": meta.get("description"),
        "description_content_type": meta.get("description_content_type"),
        "docs_url": None,
        "download_url": meta.get("download_url"),
        "downloads": {"last_day": -1, "last_month": -1, "last_week": -1},
        "dynamic": meta.get("dynamic"),
        "home_page": meta.get("home_page"),
        "keywords": ",".join(meta["keywords"]) if meta.get("keywords") else None,
        "license": meta.get("license"),
        "license_expression": meta.get("license_expression"),
        "license_files": meta.get("license_files"),
        "maintainer": meta.get("maintainer"),
        "maintainer_email": meta.get("maintainer_email"),
        "name": project.display_name,
        "package_url": project_url,
        "platform": _joined(meta.get("platforms")),
        "project_url": project_url,
        "project_urls": meta.get("project_urls") or None,
        "provides_extra": meta.get("provides_extra"),
        "release_url": f"{project_url}{release.version}/",
        "requires_dist": meta.get("requires_dist"),
        "requires_python": meta.get("requires_python"),
        "summary": meta.get("summary"),
        "version": release.version,
        "yanked": yank is not None,
        "yanked_reason": yank or None,
    }


def _file(f: FileEntry, url: str) -> dict[str, Any]:
    digests = {"blake2b_256": f.blake2b_256, "md5": f.md5, "sha256": f.sha256}
    return {
        "comment_text": "",
        "core-metadata": {"sha256": f.metadata_sha256} if f.metadata_sha256 else False,
        "digests": {name: value for name, value in digests.items() if value},
        "downloads": -1,
        "filename": f.filename,
        "has_sig": False,
        "md5_digest": f.md5,
        "packagetype": f.packagetype,
        "python_version": f.python_version,
        "requires_python": f.requires_python,
        "size": f.size,
        "upload_time": (
            f.upload_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") if f.upload_time else None
        ),
        "upload_time_iso_8601": format_upload_time(f.upload_time) if f.upload_time else None,
        "url": url,
        "yanked": f.is_yanked,
        "yanked_reason": f.yanked or None,
    }


def project_document(
    project: Project,
    release: Release,
    releases: Sequence[Release] | None,
    files: Sequence[FileEntry],
    *,
    base_url: str,
    index: str,
    file_url: FileUrl,
    last_serial: int,
) -> dict[str, Any]:
    """The document for one release; with ``releases``, the project document
    (docs/protocol.md, "JSON API keys").

    ``index`` is the index the document is read through: its project and release pages
    are the ones linked, as its files are the ones listed.
    """
    # Files group by release, whichever spelling of its version each filename carries.
    groups = group_by_release(sorted(files, key=lambda f: f.filename))
    shown = groups.get(release_key(release.version), [])
    document: dict[str, Any] = {
        "info": _info(project, release, shown, base_url + index_prefix(index)),
        "last_serial": last_serial,
        "ownership": {"organization": None, "roles": []},
        "urls": [_file(f, file_url(f)) for f in shown],
        "vulnerabilities": [],
    }
    if releases is not None:
        document["releases"] = {
            r.version: [_file(f, file_url(f)) for f in groups.get(release_key(r.version), [])]
            for r in sorted(releases, key=_version)
        }
    return document
