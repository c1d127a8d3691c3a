"""web.tornado_internals against the installed Tornado: fails when a release changes them.

Each reading is taken inside real handlers, served by a real HTTPServer on
loopback and asked by a real client, and checked against what the client receives.
"""

from __future__ import annotations

import asyncio
from typing import Any

import tornado.httpclient
import tornado.httpserver
import tornado.testing
import tornado.web

from ministry.web.tornado_internals import reason_phrase, unsent_bytes


class _Buffered(tornado.web.RequestHandler):
    """Writes a body in parts and flushes it, noting the unsent bytes at each step."""

    async def get(self) -> None:
        seen = self.settings["seen"]
        seen.append(unsent_bytes(self))
        self.write(b"abc")
        self.write("d\u00e9")  # str is written as UTF-8: three bytes
        seen.append(unsent_bytes(self))
        await self.flush()
        seen.append(unsent_bytes(self))
        self.write(b"tail")
        seen.append(unsent_bytes(self))
        self.finish()


class _Reason(tornado.web.RequestHandler):
    """Sets a status (and a phrase when asked), noting the reason phrase it stands at."""

    def get(self, status: str) -> None:
        self.set_status(int(status), reason=self.get_query_argument("reason", None))
        self.settings["seen"].append(reason_phrase(self))
        self.finish()


class _Refused(tornado.web.RequestHandler):
    """Raises an HTTPError with a reason; write_error notes the phrase Tornado chose."""

    def get(self) -> None:
        raise tornado.web.HTTPError(405, reason="Uploads only")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.settings["seen"].append(reason_phrase(self))
        self.finish()


def _serve_and_fetch(
    paths: list[str],
) -> tuple[list[object], list[tornado.httpclient.HTTPResponse]]:
    """Serve the probes on loopback, fetch each path, and return what they saw and sent."""
    seen: list[object] = []

    async def scenario() -> list[tornado.httpclient.HTTPResponse]:
        app = tornado.web.Application(
            [(r"/buffered", _Buffered), (r"/reason/(\d+)", _Reason), (r"/refused", _Refused)],
            seen=seen,
        )
        sock, port = tornado.testing.bind_unused_port()
        server = tornado.httpserver.HTTPServer(app)
        server.add_sockets([sock])
        client = tornado.httpclient.AsyncHTTPClient()
        try:
            return [
                await client.fetch(f"http://127.0.0.1:{port}{path}", raise_error=False)
                for path in paths
            ]
        finally:
            client.close()
            server.stop()
            await server.close_all_connections()

    responses = asyncio.run(scenario())
    return seen, responses


def test_unsent_bytes_counts_what_write_buffered_until_flush() -> None:
    seen, [response] = _serve_and_fetch(["/buffered"])
    assert seen == [0, 6, 0, 4]
    assert response.body == "abcdé".encode() + b"tail"


def test_reason_phrase_is_the_one_the_status_line_carries() -> None:
    seen, responses = _serve_and_fetch(
        ["/reason/404", "/reason/404?reason=Not%20here", "/reason/299", "/refused"]
    )
    assert seen == ["Not Found", "Not here", "Unknown", "Uploads only"]
    assert [(r.code, r.reason) for r in responses] == [
        (404, "Not Found"),
        (404, "Not here"),
        (299, "Unknown"),
        (405, "Uploads only"),
    ]
