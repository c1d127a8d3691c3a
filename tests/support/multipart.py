"""A hand-made multipart/form-data body, for shapes no client library would send."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FileField:
    """A part with a filename; ``content_type`` None sends no Content-Type header (uv, flit)."""

    name: str
    filename: str
    data: bytes
    content_type: str | None = "application/octet-stream"


def encode(fields: Sequence[tuple[str, str]], files: Sequence[FileField] = ()) -> tuple[bytes, str]:
    """The body and the Content-Type header value."""
    boundary = secrets.token_hex(16)
    chunks: list[bytes] = []
    for name, value in fields:
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    for file in files:
        header = (
            f"--{boundary}\r\nContent-Disposition: form-data; "
            f'name="{file.name}"; filename="{file.filename}"\r\n'
        )
        if file.content_type is not None:
            header += f"Content-Type: {file.content_type}\r\n"
        chunks.append(header.encode() + b"\r\n" + file.data + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"
