"""The parser of ``ministry mirror``; ``ministry.cli.mirror`` runs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ministry.cli.options import add_options
from ministry.cli.parsers import Common, Run
from ministry.settings import OPTION

__all__ = ["UPSTREAM_INDEX", "register"]

#: The proxy index ``--upstream`` makes: ``ministry.services.indexes.UPSTREAM_INDEX``, written
#: again here because the services are not imported to build a parser (a test keeps the two equal).
UPSTREAM_INDEX = "upstream"


def register(commands: Any, common: Common) -> None:
    """Add the ``mirror`` sub-command."""
    parser = commands.add_parser(
        "mirror",
        help="fill a proxy index ahead of time from its upstream",
        description="Fetch the files a set of requirements needs from the upstream of a "
        "proxy index into its cache, so the server can serve them without the upstream.",
    )
    common(parser)
    parser.add_argument(
        "projects", nargs="*", metavar="REQUIREMENT",
        help="projects to take, with optional version specifiers: 'requests>=2.31'",
    )  # fmt: skip
    parser.add_argument(
        "-r", "--requirement", dest="requirement_files", action="append", type=Path,
        default=[], metavar="FILE", help="take the requirements of a pip requirements file",
    )  # fmt: skip
    # The proxy index 'upstream' of this simple index, made as a base of main if missing.
    add_options(parser, (OPTION["upstream"], OPTION["upstream_timeout"]))
    parser.add_argument(
        "--index", default=UPSTREAM_INDEX,
        help=f"the proxy index to fill (default {UPSTREAM_INDEX!r})",
    )  # fmt: skip
    parser.add_argument(
        "--with-deps", action="store_true",
        help="also take the dependencies of every release taken, recursively",
    )  # fmt: skip
    parser.add_argument(
        "--python-version", dest="python_versions", action="append", default=[],
        metavar="X.Y", help="take only files for this Python version (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--platform", dest="platforms", action="append", default=[], metavar="TAG",
        help="take only wheels for this platform tag, e.g. manylinux_2_17_x86_64, "
        "win_amd64, macosx_11_0_arm64 (repeatable; pure wheels always)",
    )  # fmt: skip
    kinds = parser.add_mutually_exclusive_group()
    kinds.add_argument("--only-binary", action="store_true", help="take wheels only")
    kinds.add_argument("--only-source", action="store_true", help="take sdists only")
    parser.add_argument("--pre", action="store_true", help="take pre-releases too")
    parser.add_argument(
        "--newest", type=int, metavar="N",
        help="take at most the N newest matching versions of each project (default: "
        "every matching version)",
    )  # fmt: skip
    parser.add_argument(
        "--all", dest="everything", action="store_true",
        help="take every project the upstreams list (mind the size: try --dry-run)",
    )  # fmt: skip
    parser.add_argument(
        "--dry-run", action="store_true",
        help="print what would be fetched and its size; fetch only pages and metadata "
        "files (so --with-deps follows only the dependencies those files name)",
    )  # fmt: skip
    parser.add_argument(
        "--connections", type=int, default=4, metavar="N",
        help="downloads at once (default 4)",
    )  # fmt: skip
    parser.add_argument(
        "--job", metavar="NAME",
        help="run this [[mirror]] job of --config now, and record its result as the server does",
    )  # fmt: skip
    parser.set_defaults(run=Run("ministry.cli.mirror", "run"))
