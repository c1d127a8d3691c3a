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
from ministry.web.api.indexes import (
    FileHandler,
    FileYankHandler,
    IndexesHandler,
    IndexHandler,
    ProjectHandler,
    ReleaseHandler,
    ReleaseYankHandler,
)

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
        (target, ProjectHandler),
        (rf"{target}/releases/(?P<version>{_NAME})", ReleaseHandler),
        (rf"{target}/releases/(?P<version>{_NAME})/yank", ReleaseYankHandler),
        (rf"{target}/files/(?P<filename>{_NAME})", FileHandler),
        (rf"{target}/files/(?P<filename>{_NAME})/yank", FileYankHandler),
        (r"/-/api/users", UsersHandler),
        (rf"/-/api/users/(?P<user>{_NAME})", UserHandler),
        (rf"/-/api/users/(?P<user>{_NAME})/tokens", TokensHandler),
        (rf"/-/api/users/(?P<user>{_NAME})/tokens/(?P<token_id>{_NAME})", TokenHandler),
        (r"/-/api/groups", GroupsHandler),
        (rf"/-/api/groups/(?P<group>{_NAME})", GroupHandler),
    ]
