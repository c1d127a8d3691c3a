"""The parser of ``ministry promote``; ``ministry.cli.promote`` runs it."""

from __future__ import annotations

from typing import Any

from ministry.cli.parsers import Common, Run, with_remote

__all__ = ["register"]


def register(commands: Any, common: Common) -> None:
    """Add ``promote``."""
    common = with_remote(common)
    parser = commands.add_parser(
        "promote",
        help="publish a release of one hosted index in another (same files, no upload)",
        description=(
            "Publish every file of PROJECT VERSION in index --from also in index --to: "
            "the same bytes, hashes, metadata files and provenance, nothing uploaded "
            "again. Files the target already has with the same bytes are left as they "
            "are; a filename it has with other bytes stops the promotion before anything "
            "changes. Yanks are not carried."
        ),
    )
    common(parser)
    parser.add_argument("project", help="the project's name")
    parser.add_argument("version", help="the release to promote (any spelling of it)")
    parser.add_argument("--from", dest="source", required=True, metavar="INDEX",
                        help="the hosted index that has the release")  # fmt: skip
    parser.add_argument("--to", dest="target", required=True, metavar="INDEX",
                        help="the hosted index to publish it in")  # fmt: skip
    parser.set_defaults(run=Run("ministry.cli.promote", "promote"))
