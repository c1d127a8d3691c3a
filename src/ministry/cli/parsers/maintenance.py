"""The parsers of ``ministry yank``, ``unyank``, ``delete`` and ``log``.

``ministry.cli.maintenance`` runs them.
"""

from __future__ import annotations

from typing import Any

from ministry.cli.parsers import Common, Run, add_json_flag, with_remote
from ministry.core.models import DEFAULT_INDEX

__all__ = ["register"]

_IMPLEMENTATION = "ministry.cli.maintenance"
_ACTIONS = {
    "yank": "yank a release or file (pip skips it unless pinned)",
    "unyank": "take a yank back",
    "delete": "delete a project, release or file (where the index allows it)",
}
# What leaving out VERSION means: yank and unyank need a release or a file.
_VERSION = {
    "yank": "the release to yank (required unless --file names one file)",
    "unyank": "the release to unyank (required unless --file names one file)",
    "delete": "the release to delete (without it or --file: the whole project)",
}


def register(commands: Any, common: Common) -> None:
    """Add ``yank``, ``unyank``, ``delete`` and ``log``."""
    common = with_remote(common)
    for action, text in _ACTIONS.items():
        parser = commands.add_parser(action, help=text)
        common(parser)
        parser.add_argument("project", help="the project's name")
        parser.add_argument("version", nargs="?", help=_VERSION[action])
        parser.add_argument("--index", default=DEFAULT_INDEX, help="default: main")
        parser.add_argument("--file", dest="filename", help="one file instead of a release")
        if action == "yank":
            parser.add_argument("--reason", default="", help="shown to people who install it")
        parser.set_defaults(run=Run(_IMPLEMENTATION, "change_files"), action=action)
    log = commands.add_parser("log", help="show the audit log, newest first")
    common(log)
    log.add_argument("--since", type=int, default=0, help="only changes after this serial")
    log.add_argument(
        "--limit", type=int, default=100, help="show the newest N changes (default 100)",
        metavar="N",
    )  # fmt: skip
    log.add_argument("--index", help="only changes of this index (an error if there is none)")
    add_json_flag(log)
    log.set_defaults(run=Run(_IMPLEMENTATION, "show_log"))
