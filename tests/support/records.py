"""Metadata records made to order, for tests of the stores themselves."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from packaging.utils import NormalizedName

from ministry.core.models import DistFile


def dist_file(
    filename: str, *, project: str = "demo", version: str = "1.0", sha: str = ""
) -> DistFile:
    """A file record; its hashes derive from ``sha`` (default: the filename)."""
    seed = (sha or filename).encode()
    return DistFile(
        index="main",
        project=NormalizedName(project),
        filename=filename,
        version=version,
        packagetype="sdist" if filename.endswith(".tar.gz") else "bdist_wheel",
        python_version="source" if filename.endswith(".tar.gz") else "py3",
        requires_python=">=3.9",
        size=123,
        sha256=hashlib.sha256(seed).hexdigest(),
        md5=hashlib.md5(seed).hexdigest(),
        blake2b_256=hashlib.blake2b(seed, digest_size=32).hexdigest(),
        upload_time=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        uploader="alice",
        metadata_sha256=None,
    )
