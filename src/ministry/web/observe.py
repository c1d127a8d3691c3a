"""What the server records once per request: the access log line and the request metrics.

Tornado calls ``log_request`` after each response is sent (``log_function``). The
access record carries its fields in ``extra={"access": …}`` so that the JSON log
format can write them as fields; the text format reads as a common log line.
"""

from __future__ import annotations

import logging
from typing import Any

import tornado.web

from ministry.services.metrics import Metrics
from ministry.web.base import BaseHandler
from ministry.web.files import FileHandler
from ministry.web.upload import UploadHandler

__all__ = ["access_log", "log_request"]

access_log = logging.getLogger("ministry.access")

# Any other method string a client sends is counted as "other": labels stay bounded.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Write the access line and count the request in the handler's metrics."""
    fields = access_fields(handler)
    services = handler.application.settings.get("services")
    if services is not None:
        _count(services.metrics, handler, fields)
    level = logging.INFO if fields["status"] < 500 else logging.ERROR
    access_log.log(level, "%s", _common_line(fields), extra={"access": fields})


def access_fields(handler: tornado.web.RequestHandler) -> dict[str, Any]:
    """The facts of one answered request, as the JSON log writes them."""
    request = handler.request
    ours = handler if isinstance(handler, BaseHandler) else None
    index = ours.access_index if ours else None
    if index is None and isinstance(handler, UploadHandler) and request.method == "POST":
        index = handler.index
    return {
        "request_id": ours.request_id if ours else None,
        "method": request.method,
        "path": request.uri,
        "version": request.version,
        "status": handler.get_status(),
        "bytes": ours.bytes_sent if ours else None,
        "duration_ms": round(1000.0 * request.request_time(), 1),
        "user": ours.access_user if ours else None,
        "index": index,
        "address": request.remote_ip,
        "route": type(handler).__name__,
    }


def _common_line(fields: dict[str, Any]) -> str:
    """Address, user, request line, status and bytes as in the common log format, then
    the duration, the index and the request id."""
    return (
        f"{fields['address']} - {fields['user'] or '-'} "
        f'"{fields["method"]} {fields["path"]} {fields["version"]}" '
        f"{fields['status']} {fields['bytes'] if fields['bytes'] is not None else '-'} "
        f"{fields['duration_ms']}ms index={fields['index'] or '-'} "
        f"id={fields['request_id'] or '-'}"
    )


def _count(metrics: Metrics, handler: tornado.web.RequestHandler, fields: dict[str, Any]) -> None:
    route, status = fields["route"], str(fields["status"])
    method = fields["method"] if fields["method"] in _METHODS else "other"
    metrics.requests.labels(route, method, status).inc()
    metrics.request_seconds.labels(route, status).observe(handler.request.request_time())
    if isinstance(handler, UploadHandler) and fields["method"] == "POST":
        metrics.uploads.labels(_upload_outcome(fields["status"])).inc()
    if isinstance(handler, FileHandler) and fields["bytes"]:
        metrics.download_bytes.labels(fields["index"] or "-").inc(fields["bytes"])


def _upload_outcome(status: int) -> str:
    if status < 300:
        return "published"
    if status in (401, 403):
        return "unauthorized"
    return "rejected" if status < 500 else "failed"
