"""How a fetched upstream page is kept in the store, and when each file was first seen.

The first-seen time stands in for the upload time an HTML upstream does not
give, so the minimum-age guard still holds back what appeared only recently.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ministry.core.upstream_pages import UpstreamFile, UpstreamPage

__all__ = ["KeptPage", "dump_page", "load_page"]


class KeptPage:
    """A page as kept: the upstream's page plus when we first saw each file."""

    def __init__(self, page: UpstreamPage, first_seen: Mapping[str, datetime]) -> None:
        self.page = page
        self.first_seen = dict(first_seen)

    def seen(self, filename: str, fallback: datetime) -> datetime:
        """When a file was first seen (``fallback`` for a file never recorded)."""
        return self.first_seen.get(filename, fallback)


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _file_document(file: UpstreamFile, first_seen: datetime) -> dict[str, Any]:
    return {
        "filename": file.filename,
        "url": file.url,
        "hashes": dict(file.hashes),
        "requires_python": file.requires_python,
        "yanked": file.yanked,
        "metadata_hashes": None if file.metadata_hashes is None else dict(file.metadata_hashes),
        "size": file.size,
        "upload_time": _time(file.upload_time),
        "provenance": file.provenance,
        "first_seen": first_seen.isoformat(),
    }


def dump_page(kept: KeptPage, now: datetime) -> tuple[str, str]:
    """The stored document and its token (which changes whenever the document does)."""
    document = {
        "name": kept.page.name,
        "versions": list(kept.page.versions),
        "status": kept.page.status,
        "files": [_file_document(f, kept.seen(f.filename, now)) for f in kept.page.files],
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return text, hashlib.sha256(text.encode()).hexdigest()[:32]


def load_page(text: str) -> KeptPage:
    """A stored document back as a page and its first-seen times."""
    document = json.loads(text)
    files = []
    first_seen = {}
    for entry in document["files"]:
        upload_time = entry["upload_time"]
        files.append(
            UpstreamFile(
                filename=entry["filename"],
                url=entry["url"],
                hashes=entry["hashes"],
                requires_python=entry["requires_python"],
                yanked=entry["yanked"],
                metadata_hashes=entry["metadata_hashes"],
                size=entry["size"],
                upload_time=datetime.fromisoformat(upload_time) if upload_time else None,
                provenance=entry["provenance"],
            )
        )
        first_seen[entry["filename"]] = datetime.fromisoformat(entry["first_seen"])
    page = UpstreamPage(
        name=document["name"],
        files=tuple(files),
        versions=tuple(document["versions"]),
        status=document["status"],
    )
    return KeptPage(page, first_seen)
