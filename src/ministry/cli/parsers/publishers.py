"""The parsers of ``ministry publisher …``; ``ministry.cli.publishers`` runs them."""

from __future__ import annotations

from typing import Any

from ministry.cli.parsers import Common, Run, add_json_flag, with_remote
from ministry.core.models import DEFAULT_INDEX

__all__ = ["register"]

_IMPLEMENTATION = "ministry.cli.publishers"


def register(commands: Any, common: Common) -> None:
    """Add the ``publisher`` sub-commands."""
    common = with_remote(common)
    publishers = commands.add_parser(
        "publisher", help="CI workflows that publish without a secret (trusted publishing)"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    add = publishers.add_parser("add", help="let a GitHub or GitLab workflow publish a project")
    common(add)
    add.add_argument("project", help="the project; it may not exist yet (its first publish "
                     "creates it)")  # fmt: skip
    add.add_argument("--index", default=DEFAULT_INDEX, help="default: main")
    where = add.add_mutually_exclusive_group(required=True)
    where.add_argument("--github", metavar="OWNER/REPO", help="a GitHub repository")
    where.add_argument("--gitlab", metavar="NAMESPACE/PROJECT", help="a GitLab project")
    add.add_argument("--workflow", required=True, metavar="FILE",
                     help="GitHub: the workflow's file name (release.yml); GitLab: the CI "
                     "file's path (.gitlab-ci.yml)")  # fmt: skip
    add.add_argument("--environment", metavar="NAME", help="only runs in this environment")
    add.add_argument("--issuer", metavar="URL", help="the token issuer of GitHub Enterprise "
                     "Server or a self-hosted GitLab (default: the public service's)")  # fmt: skip
    add.add_argument("--owner", metavar="USER", help="who owns the project its first publish "
                     "creates (default: the index's admins)")  # fmt: skip
    add.set_defaults(run=Run(_IMPLEMENTATION, "add"))
    listed = publishers.add_parser("list", help="list the trusted publishers of an index")
    common(listed)
    listed.add_argument("project", nargs="?", help="only this project's")
    listed.add_argument("--index", default=DEFAULT_INDEX, help="default: main")
    add_json_flag(listed)
    listed.set_defaults(run=Run(_IMPLEMENTATION, "show"))
    remove = publishers.add_parser("remove", help="stop a trusted publisher (by its id)")
    common(remove)
    remove.add_argument("publisher_id", metavar="ID", help="as `publisher list` shows it")
    remove.set_defaults(run=Run(_IMPLEMENTATION, "remove"))
