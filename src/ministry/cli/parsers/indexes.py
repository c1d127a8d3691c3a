"""The parsers of ``ministry index …``; ``ministry.cli.indexes`` runs them."""

from __future__ import annotations

import argparse
from typing import Any

from ministry.cli.parsers import Common, Run, add_json_flag, with_remote

__all__ = ["given_settings", "register"]

_IMPLEMENTATION = "ministry.cli.indexes"
_LISTS = {
    "bases": "indexes to inherit from, nearest first (a,b)",
    "readers": "users and @groups that may read a private index",
    "uploaders": "users and @groups that may upload (@all: every user)",
    "admins": "users and @groups that may change the index, yank and delete",
    "allow_inherit": "project names or patterns still taken from bases when present here",
    "min_age_exempt": "proxy: project names or patterns the minimum age does not hold back",
}
_FLAGS = {
    "private": "only readers, uploaders and admins may read it",
    "allow_delete": "files may be deleted",
    "allow_overwrite": "an upload may replace a file of the same name",
}


def _settings_arguments(parser: argparse.ArgumentParser) -> None:
    for name, text in _LISTS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, metavar="NAMES", help=text)
    for name, text in _FLAGS.items():
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            action=argparse.BooleanOptionalAction,
            help=text,
        )
    parser.add_argument(
        "--route",
        dest="routes",
        action="append",
        metavar="PATTERN=INDEX",
        help="take matching projects only from INDEX ('-': from no base); repeatable",
    )
    parser.add_argument("--description", help="what the index is for")
    parser.add_argument(
        "--upstream",
        metavar="URL",
        action="append",
        help="make a proxy index of this upstream simple index ('pip': the ones pip uses "
        "here); repeatable, in order of preference; 'URL only=PATTERNS ttl=TIME' routes "
        "matching names to this upstream alone",
    )
    parser.add_argument(
        "--page-ttl", dest="page_ttl", metavar="TIME", help="proxy: page freshness (300s, 5m)"
    )
    parser.add_argument(
        "--min-age", dest="min_age", metavar="TIME", help="proxy: hold back newer files (3d)"
    )
    parser.add_argument(
        "--max-cache-size",
        dest="max_cache_size",
        metavar="SIZE",
        help="proxy: evict least recently used files beyond this size (5G, 500M; none)",
    )


def given_settings(arguments: argparse.Namespace) -> dict[str, Any]:
    """The index settings given on the command line, by name (those left out are absent)."""
    names = (
        *_LISTS, *_FLAGS, "routes", "description", "upstream", "page_ttl", "min_age",
        "max_cache_size",
    )  # fmt: skip
    return {
        name: getattr(arguments, name) for name in names if getattr(arguments, name) is not None
    }


def register(commands: Any, common: Common) -> None:
    """Add the ``index`` sub-commands."""
    common = with_remote(common)
    indexes = commands.add_parser("index", help="manage indexes").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    create = indexes.add_parser("create", help="create an index")
    common(create)
    create.add_argument("name", help="like 'prod' or 'team/dev'")
    _settings_arguments(create)
    create.set_defaults(run=Run(_IMPLEMENTATION, "create_index"))
    update = indexes.add_parser("update", help="change settings of an index")
    common(update)
    update.add_argument("name", help="the index to change")
    _settings_arguments(update)
    update.set_defaults(run=Run(_IMPLEMENTATION, "update_index"))
    show = indexes.add_parser("show", help="print an index's settings as JSON")
    common(show)
    show.add_argument("name", help="the index to show")
    show.set_defaults(run=Run(_IMPLEMENTATION, "show_index"))
    listing = indexes.add_parser("list", help="list indexes")
    common(listing)
    add_json_flag(listing)
    listing.set_defaults(run=Run(_IMPLEMENTATION, "list_indexes"))
    delete = indexes.add_parser("delete", help="delete an index")
    common(delete)
    delete.add_argument("name", help="the index to delete")
    delete.add_argument("--force", action="store_true", help="even if it holds projects")
    delete.set_defaults(run=Run(_IMPLEMENTATION, "delete_index"))
