"""Users, tokens, groups, roles, publishers, audit-log entries and proxy caches as
JSON-ready documents.

The management API (docs/api.md) and the ``--json`` of the list commands
(docs/operations.md) show the same things, so they show them with the same keys, made
here once. Times are ISO 8601 with an offset. A password hash, a token's secret or its
hash never goes into a document: nothing that prints one can leak them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ministry.core.models import CacheUsage, Change, Group, ProjectRole, Token, User
from ministry.core.trusted_publishing import TrustedPublisher

__all__ = [
    "cache_document",
    "change_document",
    "group_document",
    "publisher_document",
    "roles_document",
    "token_document",
    "user_document",
]


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def user_document(user: User) -> dict[str, Any]:
    """A user (never the password hash)."""
    return {
        "name": user.name,
        "admin": user.is_admin,
        "disabled": user.disabled,
        "created": _time(user.created),
    }


def token_document(token: Token) -> dict[str, Any]:
    """A token (never its secret or hash)."""
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


def group_document(group: Group) -> dict[str, Any]:
    """A group and its members."""
    return {"name": group.name, "members": list(group.members)}


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


def roles_document(index: str, project: str, roles: list[ProjectRole]) -> dict[str, Any]:
    """Who owns and who maintains a project (no owners: the index's admins decide)."""
    return {
        "index": index,
        "project": project,
        "owners": [r.principal for r in roles if r.role == "owner"],
        "maintainers": [r.principal for r in roles if r.role == "maintainer"],
    }


def publisher_document(publisher: TrustedPublisher) -> dict[str, Any]:
    """A trusted publisher: what it trusts, and who added it when."""
    return {
        "id": publisher.publisher_id,
        "index": publisher.index,
        "project": publisher.project,
        "provider": publisher.provider,
        "repository": publisher.repository,
        "workflow": publisher.workflow,
        "environment": publisher.environment,
        "issuer": publisher.issuer,
        "owner": publisher.owner,
        "added_by": publisher.added_by,
        "created": _time(publisher.created),
    }


def cache_document(usage: list[CacheUsage], bound: int | None) -> dict[str, Any]:
    """What the proxy caches keep: totals, the server-wide bound, and each proxy index
    (sizes in bytes; a bound of None is none)."""
    return {
        "bound": bound,
        "files": sum(u.files for u in usage),
        "bytes": sum(u.bytes for u in usage),
        "indexes": [
            {
                "index": u.index,
                "files": u.files,
                "bytes": u.bytes,
                "mirrored_bytes": u.mirrored_bytes,
                "bound": u.bound,
            }
            for u in usage
        ],
    }
