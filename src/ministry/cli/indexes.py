"""``ministry index create|list|show|update|delete``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from ministry.cli.output import print_json
from ministry.cli.parsers.indexes import given_settings
from ministry.cli.runtime import local_admin, with_services
from ministry.core.index_settings import index_settings, new_index, settings_document
from ministry.core.masking import mask_url
from ministry.core.models import IndexConfig
from ministry.settings import Settings
from ministry.wiring import Services

__all__ = ["create_index", "delete_index", "list_indexes", "show_index", "update_index"]


def _given(arguments: argparse.Namespace) -> dict[str, Any]:
    """The settings given, with ``--upstream pip`` read as ``serve --upstream pip`` reads
    it: the index pip on this machine uses."""
    given = given_settings(arguments)
    if given.get("upstream") == "pip":
        from ministry.services.upstream import pip_index_url

        given["upstream"] = pip_index_url()
    return given


def create_index(settings: Settings, arguments: argparse.Namespace) -> int:
    """Create an index."""
    given = _given(arguments)

    async def work(services: Services) -> IndexConfig:
        return await services.indexes.create(local_admin(), new_index(arguments.name, given))

    print(json.dumps(settings_document(with_services(settings, work)), indent=2))
    return 0


def update_index(settings: Settings, arguments: argparse.Namespace) -> int:
    """Change the settings given on the command line."""
    changes = index_settings(_given(arguments))

    async def work(services: Services) -> IndexConfig:
        return await services.indexes.update(local_admin(), arguments.name, changes)

    print(json.dumps(settings_document(with_services(settings, work)), indent=2))
    return 0


def show_index(settings: Settings, arguments: argparse.Namespace) -> int:
    """Print one index's settings."""

    async def work(services: Services) -> IndexConfig:
        return await services.indexes.get(arguments.name)

    print(json.dumps(settings_document(with_services(settings, work)), indent=2))
    return 0


def list_indexes(settings: Settings, arguments: argparse.Namespace) -> int:
    """Print every index with its bases and access."""

    async def work(services: Services) -> list[IndexConfig]:
        return list((await services.indexes.configs()).values())

    configs = sorted(with_services(settings, work), key=lambda c: c.name)
    if arguments.json:
        print_json([settings_document(config) for config in configs])
        return 0
    table = Table("index", "bases or upstream", "read", "upload", "delete")
    for config in configs:
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
