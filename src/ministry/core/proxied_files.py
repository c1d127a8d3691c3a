"""Which files of an upstream page a proxy index offers, and which it holds back.

Only files whose sha256 the upstream page gives are offered: a file that cannot be
checked is never cached or served. With a minimum age, files younger than that
are held back (a guard against freshly published malicious releases); their age
is the upstream's upload time, or when this server first saw them if the
upstream does not say.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from packaging.utils import NormalizedName, canonicalize_name

from ministry.core.distributions import parse_distribution_filename
from ministry.core.inheritance import matches
from ministry.core.models import FileEntry, IndexConfig
from ministry.core.upstream_cache import KeptPage
from ministry.core.upstream_pages import UpstreamFile
from ministry.errors import InvalidUpload

__all__ = ["HeldBack", "offered_files", "project_of"]

_LEGACY_SDISTS = (".zip", ".tar.bz2")


@dataclass(frozen=True)
class HeldBack:
    """A file the minimum-age rule keeps from clients until ``until``."""

    entry: FileEntry
    until: datetime


def _kind(filename: str) -> tuple[str, str, str] | None:
    """(version, packagetype, python_version) of a filename, or None if it names nothing usable."""
    try:
        parsed = parse_distribution_filename(filename)
    except InvalidUpload:
        for suffix in _LEGACY_SDISTS:
            if filename.endswith(suffix) and "-" in filename:
                return filename.removesuffix(suffix).rpartition("-")[2], "sdist", "source"
        return None
    return str(parsed.version), parsed.packagetype, parsed.python_tag


def project_of(filename: str) -> NormalizedName | None:
    """The project a proxied file (or its ``.metadata`` file) belongs to, as far as its
    name tells; None for a name that no offered file could have."""
    name = filename.removesuffix(".metadata")
    try:
        return parse_distribution_filename(name).project
    except InvalidUpload:
        for suffix in _LEGACY_SDISTS:
            if name.endswith(suffix) and "-" in name:
                return canonicalize_name(name.removesuffix(suffix).rpartition("-")[0])
        return None


def _entry(index: str, project: NormalizedName, file: UpstreamFile) -> FileEntry | None:
    kind = _kind(file.filename)
    sha256 = file.hashes.get("sha256")
    if kind is None or sha256 is None:
        return None
    version, packagetype, python_version = kind
    metadata = file.metadata_hashes.get("sha256") if file.metadata_hashes else None
    return FileEntry(
        index=index,
        project=project,
        filename=file.filename,
        version=version,
        packagetype=packagetype,
        python_version=python_version,
        sha256=sha256,
        requires_python=file.requires_python,
        size=file.size,
        upload_time=file.upload_time,
        metadata_sha256=metadata,
        yanked=file.yanked,
        provenance=file.provenance,
        upstream_url=file.url,
    )


def offered_files(
    config: IndexConfig, project: NormalizedName, kept: KeptPage, now: datetime
) -> tuple[list[FileEntry], list[HeldBack]]:
    """The files a proxy index offers for a project, and those it holds back for now."""
    offered: list[FileEntry] = []
    held: list[HeldBack] = []
    guarded = config.min_age > 0 and not matches(config.min_age_exempt, project)
    for file in kept.page.files:
        entry = _entry(config.name, project, file)
        if entry is None:
            continue
        until = (file.upload_time or kept.seen(file.filename, now)) + timedelta(
            seconds=config.min_age
        )
        if guarded and until > now:
            held.append(HeldBack(entry, until))
        else:
            offered.append(entry)
    return offered, held
