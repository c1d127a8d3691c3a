"""What every handler of the management API shares: JSON in, JSON out, errors as JSON."""

from __future__ import annotations

import json
from typing import Any

from ministry.errors import InvalidRequest
from ministry.web.base import BaseHandler
from ministry.web.crosssite import require_json

__all__ = ["ApiHandler"]


class ApiHandler(BaseHandler):
    """Base of the ``/-/api/`` handlers."""

    def prefers_json(self) -> bool:
        """API errors are always JSON."""
        return True

    def set_default_headers(self) -> None:
        """No caching of management answers."""
        super().set_default_headers()
        self.set_header("Cache-Control", "no-store")

    def check_write(self) -> None:
        """A write's body is JSON, declared so: no HTML form can send that to another site."""
        require_json(self.request.headers, self.request.body)

    def body(self) -> dict[str, Any]:
        """The request's JSON object; 400 when it is not one."""
        if not self.request.body:
            return {}
        try:
            value = json.loads(self.request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"The request body is not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise InvalidRequest("The request body must be a JSON object.")
        return value

    def send(self, document: Any, status: int = 200) -> None:
        """Answer with a JSON document."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(document))

    def done(self) -> None:
        """Answer 204: done, nothing to say."""
        self.set_status(204)
        self.finish()
