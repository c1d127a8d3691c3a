"""A streaming ``multipart/form-data`` receiver for uploads.

Tornado's own form parser needs the whole body in memory; an upload can be
100 MiB. This feeds chunks to ``python-multipart`` as they arrive: the
``content`` part goes straight to a spool file, every other part is kept in
memory under fixed caps on count and size, so a multipart bomb costs bounded
memory and time (docs/security.md, "Hostile uploads").
"""

from __future__ import annotations

from collections.abc import Callable
from email.message import Message
from functools import lru_cache
from typing import Protocol

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser

from ministry.core.upload_form import FilePart
from ministry.errors import InvalidUpload

__all__ = ["MultipartReceiver", "boundary_of"]

_MAX_PARTS = 2000
_MAX_FIELD_BYTES = 16 * 1024 * 1024  # all fields together (descriptions can be long READMEs)
_MAX_SIDE_FILE_BYTES = 1024 * 1024  # gpg signatures and the like, read and dropped
# All headers of one part together; a real part has two short ones. Older python-multipart
# releases (0.0.20, for one) cap no header, and unbounded headers cost quadratic time here.
_MAX_HEADER_BYTES = 16 * 1024
# Content-Disposition headers whose reading is kept (``_disposition``): a form's fields.
_DISPOSITIONS = 256


class FileSink(Protocol):
    """Where the ``content`` part's bytes go."""

    def write(self, chunk: bytes) -> None:
        """Take the next chunk."""


def boundary_of(content_type: str | None) -> str:
    """The boundary of a ``multipart/form-data`` request, or a 400 that says what is wrong."""
    message = Message()
    message["content-type"] = content_type or ""
    if message.get_content_type() != "multipart/form-data":
        raise InvalidUpload(
            "Uploads must be sent as multipart/form-data (as twine and uv publish send them)."
        )
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not 1 <= len(boundary) <= 200:
        raise InvalidUpload("The multipart/form-data Content-Type has no usable boundary.")
    return boundary


@lru_cache(maxsize=_DISPOSITIONS)
def _disposition(header: str) -> tuple[str | None, str | None]:
    """The name and filename of a ``form-data`` part's Content-Disposition; no name if
    it is not one.

    Read with the e-mail parser (quoting, RFC 2231 encodings), which costs more than
    the rest of the body's parsing: the answers are kept, since a client sends the same
    headers for every field of every upload. A pure function of the header, bounded.
    """
    disposition = Message()
    disposition["content-disposition"] = header
    name = disposition.get_param("name", header="content-disposition")
    if disposition.get_content_disposition() != "form-data" or not isinstance(name, str):
        return None, None
    filename = disposition.get_param("filename", header="content-disposition")
    return name, filename if isinstance(filename, str) else None


class _Part:
    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.header_field = b""
        self.header_value = b""
        self.header_bytes = 0
        self.name = ""
        self.filename: str | None = None
        self.content_type: str | None = None
        self.to_sink = False
        self.data = bytearray()


class MultipartReceiver:
    """Parses an upload body chunk by chunk."""

    def __init__(self, boundary: str, open_sink: Callable[[], FileSink]) -> None:
        self._open_sink = open_sink
        self.sink: FileSink | None = None
        self.fields: dict[str, list[str]] = {}
        self.file_parts: list[FilePart] = []
        self.complete = False
        self._part: _Part | None = None
        self._parts = 0
        self._field_bytes = 0
        self._side_bytes = 0
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_end": self._on_end,
            },
        )

    def feed(self, chunk: bytes) -> None:
        """Parse the next chunk of the body."""
        if self.complete:
            return  # epilogue after the closing boundary is ignored, as RFC 2046 says
        try:
            self._parser.write(chunk)
        except MultipartParseError as exc:
            raise InvalidUpload(f"Malformed multipart body: {exc}") from exc

    def finish(self) -> None:
        """Check that the body ended with the closing boundary."""
        if not self.complete:
            raise InvalidUpload("Malformed multipart body: it ends before the closing boundary.")

    # -- parser callbacks ---------------------------------------------------------------

    def _current(self) -> _Part:
        assert self._part is not None
        return self._part

    def _on_part_begin(self) -> None:
        self._parts += 1
        if self._parts > _MAX_PARTS:
            raise InvalidUpload(f"Too many form fields (more than {_MAX_PARTS}).")
        self._part = _Part()

    def _header_part(self, size: int) -> _Part:
        """The current part, after counting ``size`` more header bytes against the cap."""
        part = self._current()
        part.header_bytes += size
        if part.header_bytes > _MAX_HEADER_BYTES:
            raise InvalidUpload(
                f"The headers of a multipart part are too large (over {_MAX_HEADER_BYTES} bytes)."
            )
        return part

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_part(end - start).header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_part(end - start).header_value += data[start:end]

    def _on_header_end(self) -> None:
        part = self._current()
        part.headers.append((part.header_field.strip().lower(), part.header_value.strip()))
        part.header_field = part.header_value = b""

    def _on_headers_finished(self) -> None:
        part = self._current()
        headers = {key: value.decode("utf-8", "replace") for key, value in part.headers}
        name, filename = _disposition(headers.get(b"content-disposition", ""))
        if name is None:
            raise InvalidUpload(
                "Every multipart part needs 'Content-Disposition: form-data; name=…'."
            )
        part.name = name
        if filename is not None:
            part.filename = filename
            part.content_type = headers.get(b"content-type")
            if name == "content" and self.sink is None:
                self.sink = self._open_sink()
                part.to_sink = True

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._current()
        chunk = data[start:end]
        if part.to_sink:
            assert self.sink is not None
            self.sink.write(chunk)
            return
        if part.filename is not None:
            self._side_bytes += len(chunk)
            over = self._side_bytes > _MAX_SIDE_FILE_BYTES
        else:
            self._field_bytes += len(chunk)
            over = self._field_bytes > _MAX_FIELD_BYTES
        if over:
            raise InvalidUpload(
                f"Form field {part.name[:40]!r} is too large: form fields may total "
                f"{_MAX_FIELD_BYTES // 2**20} MiB, extra file parts "
                f"{_MAX_SIDE_FILE_BYTES // 2**20} MiB."
            )
        part.data += chunk

    def _on_part_end(self) -> None:
        part = self._current()
        self._part = None
        if part.filename is not None:
            self.file_parts.append(FilePart(part.name, part.filename, part.content_type))
            return
        try:
            value = part.data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidUpload(f"Form field {part.name[:40]!r} is not valid UTF-8.") from exc
        self.fields.setdefault(part.name, []).append(value)

    def _on_end(self) -> None:
        self.complete = True
