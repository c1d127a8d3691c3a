"""The parsers of ``ministry serve`` and ``ministry init``; ``ministry.cli.serve`` and
``ministry.cli.init`` run them."""

from __future__ import annotations

from typing import Any

from ministry.cli.options import add_server_options
from ministry.cli.parsers import Common, Run

__all__ = ["register"]


def register(commands: Any, common: Common) -> None:
    """Add the ``serve`` and ``init`` sub-commands."""
    parser = commands.add_parser("serve", help="run the index server")
    common(parser)
    add_server_options(parser)
    parser.set_defaults(run=Run("ministry.cli.serve", "run"))
    init = commands.add_parser(
        "init",
        help="create a new, empty store (serve, user add, import and mirror also do)",
        description="Create the stores named by --data (or --db and --storage) with the "
        "default index. Other commands refuse a data directory that holds no store, so that "
        "a mistyped --data is not taken for an empty index. A store already there is left "
        "as it is.",
    )
    common(init)
    init.set_defaults(run=Run("ministry.cli.init", "run"))
