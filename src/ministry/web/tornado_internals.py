"""What the handlers read of Tornado's ``RequestHandler`` that it offers no public API for.

Every use of a private attribute of a handler is here, so that a Tornado release
that changes one breaks this module alone, and tests/unit/test_tornado_internals.py
says which. Everything else goes through the public API: ``detach()`` to cut a
response off, ``check_etag_header()`` for If-None-Match, and the handler's own
``flush()`` to know that the headers are out.

- ``unsent_bytes`` (``_write_buffer``): the body written and not yet flushed.
  ``BaseHandler.flush`` counts the body bytes as they go out, for the access log
  and metrics, and an upload answered before its body is read sets its own
  Content-Length, because it flushes instead of finishing. Counting in
  ``write()`` would be wrong: ``send_error`` and a 304 drop what is unsent.
- ``reason_phrase`` (``_reason``): the reason phrase the response carries. Error
  bodies repeat it; Tornado chooses it in ``send_error`` (an ``HTTPError``'s
  reason, the ``reason`` argument or the standard phrase, "Unknown" for one it
  refuses) and has ``get_status()`` but no getter for the phrase.
"""

from __future__ import annotations

import tornado.web

__all__ = ["reason_phrase", "unsent_bytes"]


def unsent_bytes(handler: tornado.web.RequestHandler) -> int:
    """How many body bytes ``write()`` has buffered since the last flush."""
    return sum(len(chunk) for chunk in handler._write_buffer)


def reason_phrase(handler: tornado.web.RequestHandler) -> str:
    """The reason phrase of the response's status line, as it stands."""
    reason: str = handler._reason
    return reason
