"""``ministry index create|list|show|update|delete``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from ministry.cli.runtime import local_admin, with_services
from ministry.core.index_settings import index_settings, new_index, settings_document
from ministry.core.masking import mask_url
from ministry.core.models import IndexConfig
from ministry.settings import Settings
from ministry.wiring import Services

__all__ = ["register"]

Common = Callable[[argparse.ArgumentParser], None]
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
        "--upstream", metavar="URL", help="make a proxy index of this upstream simple index"
    )
    parser.add_argument(
        "--page-ttl", dest="page_ttl", metavar="TIME", help="proxy: page freshness (300s, 5m)"
    )
    parser.add_argument(
        "--min-age", dest="min_age", metavar="TIME", help="proxy: hold back newer files (3d)"
    )


def _given(arguments: argparse.Namespace) -> dict[str, Any]:
    names = (*_LISTS, *_FLAGS, "routes", "description", "upstream", "page_ttl", "min_age")
    return {
        name: getattr(arguments, name) for name in names if getattr(arguments, name) is not None
    }


def register(commands: Any, common: Common) -> None:
    """Add the ``index`` sub-commands."""
    indexes = commands.add_parser("index", help="manage indexes").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    create = indexes.add_parser("create", help="create an index")
    common(create)
    create.add_argument("name", help="like 'prod' or 'team/dev'")
    _settings_arguments(create)
    create.set_defaults(run=create_index)
    update = indexes.add_parser("update", help="change settings of an index")
    common(update)
    update.add_argument("name")
    _settings_arguments(update)
    update.set_defaults(run=update_index)
    show = indexes.add_parser("show", help="print an index's settings as JSON")
    common(show)
    show.add_argument("name")
    show.set_defaults(run=show_index)
    listing = indexes.add_parser("list", help="list indexes")
    common(listing)
    listing.set_defaults(run=list_indexes)
    delete = indexes.add_parser("delete", help="delete an index")
    common(delete)
    delete.add_argument("name")
    delete.add_argument("--force", action="store_true", help="even if it holds projects")
    delete.set_defaults(run=delete_index)


def create_index(settings: Settings, arguments: argparse.Namespace) -> int:
    """Create an index."""

    async def work(services: Services) -> IndexConfig:
        return await services.indexes.create(
            local_admin(), new_index(arguments.name, _given(arguments))
        )

    print(json.dumps(settings_document(with_services(settings, work)), indent=2))
    return 0


def update_index(settings: Settings, arguments: argparse.Namespace) -> int:
    """Change the settings given on the command line."""

    async def work(services: Services) -> IndexConfig:
        changes = index_settings(_given(arguments))
        return await services.indexes.update(local_admin(), arguments.name, changes)

    print(json.dumps(settings_document(with_services(settings, work)), indent=2))
    return 0


def show_index(settings: Settings, arguments: argparse.Namespace) -> int:
    """Print one index's settings."""

    async def work(services: Services) -> IndexConfig:
        return await services.indexes.get(arguments.name)

    print(json.dumps(settings_document(with_services(settings, work)), indent=2))
    return 0


def list_indexes(settings: Settings, _arguments: argparse.Namespace) -> int:
    """Print every index with its bases and access."""

    async def work(services: Services) -> list[IndexConfig]:
        return list((await services.indexes.configs()).values())

    table = Table("index", "bases or upstream", "read", "upload", "delete")
    for config in sorted(with_services(settings, work), key=lambda c: c.name):
        table.add_row(
            config.name,
            mask_url(config.upstream) if config.upstream else ", ".join(config.bases),
            ", ".join(config.readers) or "private" if config.private else "public",
            ", ".join(config.uploaders) or "admins only",
            "allowed" if config.allow_delete else "",
        )
    Console(width=160).print(table)
    return 0


def delete_index(settings: Settings, arguments: argparse.Namespace) -> int:
    """Delete an index."""

    async def work(services: Services) -> None:
        await services.indexes.delete(local_admin(), arguments.name, force=arguments.force)

    with_services(settings, work)
    print(f"Index {arguments.name!r} deleted.")
    return 0
