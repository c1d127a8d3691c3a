"""The management API under ``/-/api/``: JSON over HTTP Basic authentication (docs/api.md)."""

from __future__ import annotations

from typing import Any

from ministry.web.api.accounts import (
    GroupHandler,
    GroupsHandler,
    LogHandler,
    TokenHandler,
    TokensHandler,
    UserHandler,
    UsersHandler,
    WhoamiHandler,
)
from ministry.web.api.indexes import DeleteHandler, IndexesHandler, IndexHandler, YankHandler
from ministry.web.api.projects import (
    IndexPublishersHandler,
    PublisherByIdHandler,
    PublisherHandler,
    PublishersHandler,
    RoleHandler,
    RolesHandler,
)
from ministry.web.api.promote import PromoteHandler

__all__ = ["routes"]

_NAME = r"[^/]+"


def routes(index: str, project: str) -> list[Any]:
    """The API's routes; ``index`` and ``project`` are the URL table's named groups."""
    target = rf"/-/api/indexes/{index}/projects/{project}"
    return [
        (r"/-/api/whoami", WhoamiHandler),
        (r"/-/api/log", LogHandler),
        (r"/-/api/indexes", IndexesHandler),
        (rf"/-/api/indexes/{index}", IndexHandler),
        (target, DeleteHandler),
        (rf"{target}/releases/(?P<version>{_NAME})", DeleteHandler),
        (rf"{target}/releases/(?P<version>{_NAME})/yank", YankHandler),
        (rf"{target}/releases/(?P<version>{_NAME})/promote", PromoteHandler),
        (rf"{target}/files/(?P<filename>{_NAME})", DeleteHandler),
        (rf"{target}/files/(?P<filename>{_NAME})/yank", YankHandler),
        (rf"{target}/roles", RolesHandler),
        (rf"{target}/publishers", PublishersHandler),
        (rf"{target}/publishers/(?P<publisher_id>[0-9a-f]{{12}})", PublisherHandler),
        (rf"{target}/(?P<kind>owners|maintainers)/(?P<principal>{_NAME})", RoleHandler),
        (r"/-/api/users", UsersHandler),
        (rf"/-/api/users/(?P<user>{_NAME})", UserHandler),
        (rf"/-/api/users/(?P<user>{_NAME})/tokens", TokensHandler),
        (rf"/-/api/users/(?P<user>{_NAME})/tokens/(?P<token_id>{_NAME})", TokenHandler),
        (r"/-/api/publishers", IndexPublishersHandler),
        (r"/-/api/publishers/(?P<publisher_id>[0-9a-f]{12})", PublisherByIdHandler),
        (r"/-/api/groups", GroupsHandler),
        (rf"/-/api/groups/(?P<group>{_NAME})", GroupHandler),
    ]
