"""Uploads straight over HTTP, shaped like twine's, for tests about what happens after."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import httpx
from packaging.utils import parse_sdist_filename, parse_wheel_filename

from support.multipart import FileField, encode


def form_fields(path: Path, data: bytes | None = None) -> list[tuple[str, str]]:
    """The fields twine sends for a file (name and version from its filename)."""
    data = path.read_bytes() if data is None else data
    if path.name.endswith(".whl"):
        name, version, _, tags = parse_wheel_filename(path.name)
        filetype, pyversion = "bdist_wheel", sorted(t.interpreter for t in tags)[0]
    else:
        name, version = parse_sdist_filename(path.name)
        filetype, pyversion = "sdist", "source"
    return [
        (":action", "file_upload"),
        ("protocol_version", "1"),
        ("metadata_version", "2.1"),
        ("name", str(name)),
        ("version", str(version)),
        ("filetype", filetype),
        ("pyversion", pyversion),
        ("sha256_digest", hashlib.sha256(data).hexdigest()),
        ("blake2_256_digest", hashlib.blake2b(data, digest_size=32).hexdigest()),
    ]


def post_upload(
    client: httpx.Client,
    path: Path,
    *,
    auth: tuple[str, str] | None,
    fields: Sequence[tuple[str, str]] | None = None,
    files: Sequence[FileField] | None = None,
    url: str = "/legacy/",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST one upload; ``fields`` and ``files`` replace the defaults when given."""
    data = path.read_bytes()
    body, content_type = encode(
        form_fields(path, data) if fields is None else fields,
        [FileField("content", path.name, data)] if files is None else files,
    )
    return client.post(
        url,
        content=body,
        headers={"Content-Type": content_type, **(headers or {})},
        auth=auth,
    )
