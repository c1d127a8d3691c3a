"""What every handler of the management API shares: JSON in, JSON out, errors as JSON."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ministry.core.models import Change, Token, User
from ministry.errors import InvalidRequest
from ministry.web.base import BaseHandler
from ministry.web.crosssite import require_json

__all__ = ["ApiHandler", "change_document", "token_document", "user_document"]


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def user_document(user: User) -> dict[str, Any]:
    """A user as the API shows it (never the password hash)."""
    return {
        "name": user.name,
        "admin": user.is_admin,
        "disabled": user.disabled,
        "created": _time(user.created),
    }


def token_document(token: Token) -> dict[str, Any]:
    """A token as the API shows it (never its secret or hash)."""
    return {
        "id": token.token_id,
        "user": token.user,
        "description": token.description,
        "index": token.index,
        "projects": list(token.projects),
        "created": _time(token.created),
        "expires": _time(token.expires),
        "last_used": _time(token.last_used),
        "revoked": token.revoked,
    }


def change_document(change: Change) -> dict[str, Any]:
    """An audit-log entry."""
    return {
        "serial": change.serial,
        "time": _time(change.time),
        "actor": change.actor,
        "address": change.address,
        "action": change.action,
        "index": change.index or None,
        "project": change.project,
        "version": change.version,
        "filename": change.filename,
        "detail": change.detail,
    }


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
