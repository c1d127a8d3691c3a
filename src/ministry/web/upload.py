"""The legacy upload API: ``POST /``, ``/dist``, ``/legacy`` and ``/legacy/``.

Credentials are checked when the headers arrive, and a refusal is answered then,
before the body is read (docs/security.md, "Uploads refused at the headers"): a
stranger neither fills a spool nor makes the server read a large body. An
accepted body streams through the multipart receiver to a spool; the upload
service does the rest. Uploads are never redirected
(docs/protocol.md, "Upload URLs"): every spelling of the URL is answered in place.
"""

from __future__ import annotations

import asyncio
from typing import Any

import tornado.web

from ministry.core.models import DEFAULT_INDEX
from ministry.core.upload_form import read_upload_form
from ministry.errors import InvalidUpload, MinistryError, PayloadTooLarge
from ministry.services.spool import Spool
from ministry.web.base import BaseHandler
from ministry.web.multipart import MultipartReceiver, boundary_of
from ministry.web.stalls import StallGuard
from ministry.web.tornado_internals import unsent_bytes

__all__ = ["UploadHandler"]


# Room for the form fields around the file part (descriptions, classifiers, boundaries).
_FORM_ALLOWANCE = 20 * 1024 * 1024
# A body size with more digits than this is too large for any limit.
_LONGEST_SIZE = 19
_TOO_LARGE: int = 10**_LONGEST_SIZE
# After an answer given at the headers, this much of the body (at most) is read and
# dropped, for at most this long, before the connection closes: closing at once on a
# client still writing resets the connection, and a client that reads the answer only
# once its write fails (requests, so twine) may lose it to the reset.
_DRAIN_LIMIT = 1024 * 1024
_DRAIN_SECONDS = 5.0


@tornado.web.stream_request_body
class UploadHandler(BaseHandler):
    """Receives one distribution file per request."""

    _receiver: MultipartReceiver | None = None
    _spool: Spool | None = None
    _rejection: MinistryError | None = None
    _stalls: StallGuard | None = None
    #: Set once the whole body is in and ``post`` runs.
    _body_read = False
    #: Bytes dropped after an answer given at the headers; None while there is none.
    _drained: int | None = None
    _drain_timer: asyncio.TimerHandle | None = None

    async def prepare(self) -> None:
        """Authenticate and set up the streaming parser before the body is read.

        A refusal (too large, no or bad credentials, no upload right, not a form)
        is raised here, so it is answered before the body is read; see ``finish``.
        """
        if self.request.method != "POST":
            return
        limit = self.services.uploads.max_file_size + _FORM_ALLOWANCE
        declared = _declared_size(self.request.headers.get("Content-Length"))
        if declared is not None and declared > limit:
            raise PayloadTooLarge(
                f"Upload too large: the body is more than the limit of "
                f"{self.services.uploads.max_file_size} bytes per file."
            )
        identity = await self.require_identity()
        await self.services.uploads.authorize(self.index, identity)
        boundary = boundary_of(self.request.headers.get("Content-Type"))
        self._receiver = MultipartReceiver(boundary, self._open_spool)
        connection = self.request.connection
        connection.set_max_body_size(limit)  # type: ignore[union-attr]
        # The stall guard, not a deadline for the whole body, cuts off slow uploads.
        window = self.services.settings.client_timeout
        self._stalls = StallGuard(connection.close, window)  # type: ignore[union-attr]
        connection.set_body_timeout(self._stalls.deadline(limit))  # type: ignore[union-attr]
        # Started once the body can flow: authentication may take a moment.
        self._stalls.start()

    def finish(self, chunk: Any = None) -> Any:
        """Send the answer; one given before the body came is sent at once, body unread.

        The connection then reads and drops at most ``_DRAIN_LIMIT`` bytes for at
        most ``_DRAIN_SECONDS`` (so a small body in flight does not reset it) and
        closes. A client that said ``Expect: 100-continue`` has sent no body: it
        gets the answer instead of the 100 and the connection closes at once.
        """
        if self._drained is not None:
            return self._drained_future()  # send_error finishing what write_error began
        if not self._answering_before_body():
            if self.request.method == "POST" and not self._body_read:
                # Tornado closes a connection whose request it answered before reading
                # it, even an empty one: say so, or the client sends its next request
                # down a connection that is about to close.
                self.set_header("Connection", "close")
            return super().finish(chunk)
        self._drained = 0
        if chunk is not None:
            self.write(chunk)
        self.set_header("Content-Length", unsent_bytes(self))
        self.set_header("Connection", "close")
        # Tornado refuses a body over the limit with a bare 400 after our answer.
        self.request.connection.set_max_body_size(_TOO_LARGE)  # type: ignore[union-attr]
        loop = asyncio.get_running_loop()
        self._drain_timer = loop.call_later(_DRAIN_SECONDS, self._end_drain)
        return self.flush()

    def _answering_before_body(self) -> bool:
        headers = self.request.headers
        has_body = _declared_size(headers.get("Content-Length")) or "Transfer-Encoding" in headers
        return (
            self.request.method == "POST"
            and not self._body_read
            and bool(has_body)
            and headers.get("Expect", "").lower() != "100-continue"
        )

    def _drained_future(self) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def _end_drain(self) -> None:
        """Enough dropped, or long enough waited: finish, which closes the connection."""
        if self._drain_timer is None:
            return  # finished already, or the client left
        self._drain_timer.cancel()
        self._drain_timer = None
        super().finish()

    def _open_spool(self) -> Spool:
        self._spool = self.services.uploads.new_spool()
        return self._spool

    def data_received(self, chunk: bytes) -> None:
        """Feed the parser; after the first error the rest of the body is dropped."""
        if self._drained is not None:
            self._drained += len(chunk)
            declared = _declared_size(self.request.headers.get("Content-Length"))
            if self._drained >= min(_DRAIN_LIMIT, declared or _DRAIN_LIMIT):
                self._end_drain()
            return
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
        self._body_read = True
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
        """A client that hangs up mid-body leaves nothing behind
        (docs/security.md, "Hostile uploads")."""
        self._stop_watching()
        self._discard()
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None
        super().on_connection_close()

    def on_finish(self) -> None:
        """Whatever happened, the spool is gone when the response is."""
        self._stop_watching()
        self._discard()
        super().on_finish()


def _declared_size(header: str | None) -> int | None:
    """The body size a client announced; None without one, or when it is no number.

    Tornado answers 400 to a Content-Length that is not a plain number; one too long
    for ``int`` is more than any limit (docs/security.md, "HTTP abuse").
    """
    if header is None or not (header.isascii() and header.isdigit()):
        return None
    digits = header.lstrip("0")
    if len(digits) > _LONGEST_SIZE:
        return _TOO_LARGE
    return int(digits or "0")
