"""Rows to values: the only place that knows how each model is laid out in SQLite."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any

from packaging.utils import NormalizedName

from ministry.core.models import (
    Change,
    DistFile,
    IndexConfig,
    Project,
    Release,
    Route,
    Token,
    Upstream,
    User,
)
from ministry.core.records import from_record, to_record

__all__ = [
    "FILE_COLUMNS",
    "change_of",
    "file_of",
    "file_values",
    "index_json",
    "index_of",
    "project_of",
    "release_of",
    "token_of",
    "user_of",
]

FILE_COLUMNS = (
    "index_name, filename, project, version, packagetype, python_version, requires_python, "
    "size, sha256, md5, blake2b_256, upload_time, uploader, metadata_sha256, yanked, serial, "
    "provenance_sha256"
)


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def file_of(row: sqlite3.Row, shared: dict[str, str] | None = None) -> DistFile:
    """A ``files`` row. With ``shared`` (one dict for the rows of one read), the values
    many files repeat (index, project, version, tags, uploader) are one string each, not
    one per row: a project of 50,000 files is then some megabytes smaller in memory."""
    kept: dict[str, str] = {} if shared is None else shared

    def same(value: str) -> str:
        return kept.setdefault(value, value)

    requires_python = row["requires_python"]
    return DistFile(
        index=same(row["index_name"]),
        project=NormalizedName(same(row["project"])),
        filename=row["filename"],
        version=same(row["version"]),
        packagetype=row["packagetype"],
        python_version=same(row["python_version"]),
        requires_python=None if requires_python is None else same(requires_python),
        size=row["size"],
        sha256=row["sha256"],
        md5=row["md5"],
        blake2b_256=row["blake2b_256"],
        upload_time=datetime.fromisoformat(row["upload_time"]),
        uploader=same(row["uploader"]),
        metadata_sha256=row["metadata_sha256"],
        yanked=row["yanked"],
        serial=row["serial"],
        provenance_sha256=row["provenance_sha256"],
    )


def file_values(f: DistFile) -> tuple[Any, ...]:
    """The values of a ``files`` row, in ``FILE_COLUMNS`` order."""
    return (
        f.index,
        f.filename,
        f.project,
        f.version,
        f.packagetype,
        f.python_version,
        f.requires_python,
        f.size,
        f.sha256,
        f.md5,
        f.blake2b_256,
        f.upload_time.isoformat(),
        f.uploader,
        f.metadata_sha256,
        f.yanked,
        f.serial,
        f.provenance_sha256,
    )


def project_of(row: sqlite3.Row) -> Project:
    """A ``projects`` row."""
    return Project(
        index=row["index_name"],
        name=NormalizedName(row["name"]),
        display_name=row["display_name"],
        created=datetime.fromisoformat(row["created"]),
        last_serial=row["last_serial"],
    )


def release_of(row: sqlite3.Row) -> Release:
    """A ``releases`` row."""
    return Release(
        index=row["index_name"],
        project=NormalizedName(row["project"]),
        version=row["version"],
        created=datetime.fromisoformat(row["created"]),
        metadata=json.loads(row["metadata"]),
    )


def token_of(row: sqlite3.Row) -> Token:
    """A ``tokens`` row."""
    return Token(
        token_id=row["token_id"],
        user=row["user"],
        secret_hash=row["secret_hash"],
        created=datetime.fromisoformat(row["created"]),
        description=row["description"],
        expires=_time(row["expires"]),
        last_used=_time(row["last_used"]),
        revoked=bool(row["revoked"]),
        index=row["index_name"],
        projects=tuple(json.loads(row["projects"])),
    )


def user_of(row: sqlite3.Row) -> User:
    """A ``users`` row."""
    return User(
        name=row["name"],
        password_hash=row["password_hash"],
        created=datetime.fromisoformat(row["created"]),
        is_admin=bool(row["is_admin"]),
        disabled=bool(row["disabled"]),
    )


def change_of(row: sqlite3.Row) -> Change:
    """A ``changelog`` row."""
    return Change(
        serial=row["serial"],
        time=datetime.fromisoformat(row["time"]),
        actor=row["actor"],
        action=row["action"],
        index=row["index_name"],
        project=row["project"],
        version=row["version"],
        filename=row["filename"],
        detail=row["detail"],
        address=row["address"],
    )


def index_json(config: IndexConfig) -> str:
    """An index's settings as stored (everything but its name)."""
    settings = {
        "kind": config.kind,
        "bases": list(config.bases),
        "private": config.private,
        "readers": list(config.readers),
        "uploaders": list(config.uploaders),
        "admins": list(config.admins),
        "allow_delete": config.allow_delete,
        "allow_overwrite": config.allow_overwrite,
        "allow_inherit": list(config.allow_inherit),
        "routes": [[route.pattern, route.base] for route in config.routes],
        "description": config.description,
        # ``upstream`` too: a server of an earlier version reads the first upstream.
        "upstream": config.upstream,
        "upstreams": [to_record(u) for u in config.upstreams],
        "page_ttl": config.page_ttl,
        "min_age": config.min_age,
        "min_age_exempt": list(config.min_age_exempt),
        "max_cache_size": config.max_cache_size,
    }
    return json.dumps(settings, sort_keys=True)


def _upstreams(settings: dict[str, Any]) -> tuple[Upstream, ...]:
    """The upstreams stored, or the one ``upstream`` URL of an index kept before there
    could be several."""
    if "upstreams" in settings:
        return tuple(from_record(Upstream, record) for record in settings["upstreams"])
    return (Upstream(settings["upstream"]),) if settings.get("upstream") else ()


def index_of(row: sqlite3.Row) -> IndexConfig:
    """An ``indexes`` row."""
    settings = json.loads(row["config"])
    return IndexConfig(
        name=row["name"],
        kind=settings["kind"],
        bases=tuple(settings["bases"]),
        private=settings["private"],
        readers=tuple(settings["readers"]),
        uploaders=tuple(settings["uploaders"]),
        admins=tuple(settings["admins"]),
        allow_delete=settings["allow_delete"],
        allow_overwrite=settings["allow_overwrite"],
        allow_inherit=tuple(settings["allow_inherit"]),
        routes=tuple(Route(pattern, base) for pattern, base in settings["routes"]),
        description=settings["description"],
        # Settings added after the first release have their defaults when absent.
        upstreams=_upstreams(settings),
        page_ttl=settings.get("page_ttl", IndexConfig.page_ttl),
        min_age=settings.get("min_age", IndexConfig.min_age),
        min_age_exempt=tuple(settings.get("min_age_exempt", ())),
        max_cache_size=settings.get("max_cache_size"),
    )
