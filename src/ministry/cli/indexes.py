"""``ministry index create|list|show|update|delete``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from ministry.cli.admin import admin_for
from ministry.cli.output import print_json
from ministry.cli.parsers.indexes import given_settings
from ministry.settings import Settings

__all__ = ["create_index", "delete_index", "list_indexes", "show_index", "update_index"]


def _given(arguments: argparse.Namespace) -> dict[str, Any]:
    """The settings given, with ``--upstream pip`` read as ``serve --upstream pip`` reads
    it: the index pip on this machine uses."""
    given = given_settings(arguments)
    if given.get("upstream"):
        from ministry.services.upstream import resolve_upstreams

        given["upstream"] = [
            {"url": u.url, "only": list(u.only), "page_ttl": u.page_ttl}
            for u in resolve_upstreams(given["upstream"])
        ]
    return given


def create_index(settings: Settings, arguments: argparse.Namespace) -> int:
    """Create an index."""
    created = admin_for(settings, arguments).create_index(arguments.name, _given(arguments))
    print(json.dumps(created, indent=2))
    return 0


def update_index(settings: Settings, arguments: argparse.Namespace) -> int:
    """Change the settings given on the command line."""
    updated = admin_for(settings, arguments).update_index(arguments.name, _given(arguments))
    print(json.dumps(updated, indent=2))
    return 0


def show_index(settings: Settings, arguments: argparse.Namespace) -> int:
    """Print one index's settings."""
    print(json.dumps(admin_for(settings, arguments).show_index(arguments.name), indent=2))
    return 0


def list_indexes(settings: Settings, arguments: argparse.Namespace) -> int:
    """Print every index with its bases and access."""
    documents = admin_for(settings, arguments).list_indexes()
    if arguments.json:
        print_json(documents)
        return 0
    table = Table("index", "bases or upstream", "read", "upload", "delete")
    for index in documents:
        readers = ", ".join(index["readers"]) or "private" if index["private"] else "public"
        table.add_row(
            index["name"],
            index["upstream"] or ", ".join(index["bases"]),  # the upstream comes masked
            readers,
            ", ".join(index["uploaders"]) or "admins only",
            "allowed" if index["allow_delete"] else "",
        )
    Console(width=160).print(table)
    return 0


def delete_index(settings: Settings, arguments: argparse.Namespace) -> int:
    """Delete an index."""
    admin_for(settings, arguments).delete_index(arguments.name, force=arguments.force)
    print(f"Index {arguments.name!r} deleted.")
    return 0
