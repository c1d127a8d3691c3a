"""The legacy upload API: ``POST /``, ``/dist``, ``/legacy`` and ``/legacy/``.

Credentials are checked when the headers arrive, so nothing is spooled for a
stranger (HOSTILE.md 18); the body then streams through the multipart receiver
to a spool; the upload service does the rest. Uploads are never redirected
(STANDARDS.md U22): every spelling of the URL is answered in place.
"""

from __future__ import annotations

import tornado.web

from ministry.core.models import DEFAULT_INDEX
from ministry.core.upload_form import read_upload_form
from ministry.errors import InvalidUpload, MinistryError, PayloadTooLarge
from ministry.services.spool import Spool
from ministry.web.base import BaseHandler
from ministry.web.multipart import MultipartReceiver, boundary_of
from ministry.web.stalls import StallGuard

__all__ = ["UploadHandler"]


# Room for the form fields around the file part (descriptions, classifiers, boundaries).
_FORM_ALLOWANCE = 20 * 1024 * 1024
# A body size with more digits than this is too large for any limit.
_LONGEST_SIZE = 19
_TOO_LARGE: int = 10**_LONGEST_SIZE


@tornado.web.stream_request_body
class UploadHandler(BaseHandler):
    """Receives one distribution file per request."""

    _receiver: MultipartReceiver | None = None
    _spool: Spool | None = None
    _rejection: MinistryError | None = None
    _stalls: StallGuard | None = None

    async def prepare(self) -> None:
        """Authenticate and set up the streaming parser before the body is read.

        A refusal is answered only after the rest of the body has been read and
        dropped: closing a connection the client is still writing to resets it, and
        the client would print "connection reset" instead of our message.
        """
        if self.request.method != "POST":
            return
        limit = self.services.uploads.max_file_size + _FORM_ALLOWANCE
        declared = _declared_size(self.request.headers.get("Content-Length"))
        if declared is not None and declared > limit:
            # Too big to drain: answer now and let the connection close.
            raise PayloadTooLarge(
                f"Upload too large: the body is more than the limit of "
                f"{self.services.uploads.max_file_size} bytes per file."
            )
        connection = self.request.connection
        connection.set_max_body_size(limit)  # type: ignore[union-attr]
        # The stall guard, not a deadline for the whole body, cuts off slow uploads.
        connection.set_body_timeout(StallGuard.deadline(limit))  # type: ignore[union-attr]
        try:
            identity = await self.require_identity()
            await self.services.uploads.authorize(self.index, identity)
            boundary = boundary_of(self.request.headers.get("Content-Type"))
            self._receiver = MultipartReceiver(boundary, self._open_spool)
        except MinistryError as error:
            self._rejection = error  # nothing is spooled for a refused request
        # Started once the body can flow: authentication may take a moment.
        self._stalls = StallGuard(connection.close)  # type: ignore[union-attr]
        self._stalls.start()

    def _open_spool(self) -> Spool:
        self._spool = self.services.uploads.new_spool()
        return self._spool

    def data_received(self, chunk: bytes) -> None:
        """Feed the parser; after the first error the rest of the body is dropped."""
        if self._stalls is not None:
            self._stalls.received(len(chunk))
        if self._rejection is not None or self._receiver is None:
            return
        try:
            self._receiver.feed(chunk)
        except MinistryError as error:
            self._discard()
            self._rejection = error

    @property
    def index(self) -> str:
        """The index the upload goes to: named in the path, or the default one."""
        index: str = self.path_kwargs.get("index", DEFAULT_INDEX)
        return index

    async def post(self, **_: str) -> None:
        """Validate the form and publish the file."""
        self._stop_watching()
        if self._rejection is not None:
            raise self._rejection
        assert self._receiver is not None
        try:
            self._receiver.finish()
            form = read_upload_form(self._receiver.fields, self._receiver.file_parts)
            if self._spool is None:
                raise InvalidUpload("Upload payload does not have a file.", field="content")
            spool, self._spool = self._spool, None
        finally:
            # Gone before any answer is sent, so nobody ever sees a leftover spool.
            self._discard()
        identity = await self.require_identity()
        result = await self.services.uploads.publish(self.index, identity, form, spool)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        verb = "Published" if result.created else "Already published (identical file)"
        self.finish(f"OK {verb}: {result.file.filename}\n")

    async def get(self, **_: str) -> None:
        """A browser that follows the upload URL learns what it is for."""
        raise tornado.web.HTTPError(405, reason="This URL takes uploads (POST) only.")

    def _stop_watching(self) -> None:
        if self._stalls is not None:
            self._stalls.stop()
            self._stalls = None

    def _discard(self) -> None:
        if self._spool is not None:
            self._spool.discard()
            self._spool = None

    def on_connection_close(self) -> None:
        """A client that hangs up mid-body leaves nothing behind (HOSTILE.md 19)."""
        self._stop_watching()
        self._discard()
        super().on_connection_close()

    def on_finish(self) -> None:
        """Whatever happened, the spool is gone when the response is."""
        self._stop_watching()
        self._discard()
        super().on_finish()


def _declared_size(header: str | None) -> int | None:
    """The body size a client announced; None without one, or when it is no number.

    Tornado answers 400 to a Content-Length that is not a plain number; one too long
    for ``int`` is more than any limit (HOSTILE.md 79).
    """
    if header is None or not (header.isascii() and header.isdigit()):
        return None
    digits = header.lstrip("0")
    if len(digits) > _LONGEST_SIZE:
        return _TOO_LARGE
    return int(digits or "0")
