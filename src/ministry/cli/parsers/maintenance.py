"""The parsers of ``ministry yank``, ``unyank``, ``delete`` and ``log``.

``ministry.cli.maintenance`` runs them.
"""

from __future__ import annotations

from typing import Any

from ministry.cli.parsers import Common, Run
from ministry.core.models import DEFAULT_INDEX

__all__ = ["register"]

_IMPLEMENTATION = "ministry.cli.maintenance"
_ACTIONS = {
    "yank": "yank a release or file (pip skips it unless pinned)",
    "unyank": "take a yank back",
    "delete": "delete a project, release or file (where the index allows it)",
}


def register(commands: Any, common: Common) -> None:
    """Add ``yank``, ``unyank``, ``delete`` and ``log``."""
    for action, text in _ACTIONS.items():
        parser = commands.add_parser(action, help=text)
        common(parser)
        parser.add_argument("project")
        parser.add_argument("version", nargs="?", help="the release (all versions if omitted)")
        parser.add_argument("--index", default=DEFAULT_INDEX, help="default: main")
        parser.add_argument("--file", dest="filename", help="one file instead of a release")
        if action == "yank":
            parser.add_argument("--reason", default="", help="shown to people who install it")
        parser.set_defaults(run=Run(_IMPLEMENTATION, "change_files"), action=action)
    log = commands.add_parser("log", help="show the audit log")
    common(log)
    log.add_argument("--since", type=int, default=0, help="changes after this serial")
    log.add_argument("--limit", type=int, default=100)
    log.add_argument("--index", help="only changes of this index")
    log.set_defaults(run=Run(_IMPLEMENTATION, "show_log"))
