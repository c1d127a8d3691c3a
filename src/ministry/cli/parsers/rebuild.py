"""The parser of ``ministry rebuild``; ``ministry.cli.rebuild`` runs it."""

from __future__ import annotations

from typing import Any

from ministry.cli.parsers import Common, Run

__all__ = ["register"]


def register(commands: Any, common: Common) -> None:
    """Add the ``rebuild`` sub-command."""
    parser = commands.add_parser(
        "rebuild",
        help="put the metadata back from the manifests in the blob store",
        description="Read every manifest the server wrote beside the blobs and put back "
        "into the metadata store whatever it lacks: files, yanks and deletions, indexes, "
        "roles, users, groups, tokens and trusted publishers. For a metadata store that "
        "came back empty or older than it was (docs/operations.md, 'After Redis comes back "
        "empty or older'). Serials are raised above every serial handed out before. Exit "
        "status 0: the store holds everything the manifests name; 1: some of it could not "
        "be put back (printed).",
    )
    common(parser)
    parser.add_argument(
        "--from-storage", action="store_true", required=True,
        help="read the manifests in the blob store (--storage); the one source there is",
    )  # fmt: skip
    parser.add_argument(
        "--dry-run", action="store_true",
        help="say what would be put back, change nothing",
    )  # fmt: skip
    parser.set_defaults(run=Run("ministry.cli.rebuild", "run"))
