"""``ministry cache stats|prune``: the proxy caches on the local stores, as the local
administrator (the server may run meanwhile)."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from ministry.cli.output import print_json
from ministry.cli.runtime import local_admin, with_services
from ministry.core.documents import cache_document
from ministry.core.sizes import format_size, parse_size
from ministry.errors import InvalidRequest
from ministry.services.proxy_cache import PruneOutcome
from ministry.settings import Settings
from ministry.wiring import Services

__all__ = ["prune", "stats"]


def stats(settings: Settings, arguments: argparse.Namespace) -> int:
    """Print what every proxy index keeps."""

    async def work(services: Services) -> PruneOutcome:
        return await services.proxy_cache.stats(local_admin())

    outcome = with_services(settings, work)
    if arguments.json:
        print_json(cache_document(outcome.usage, outcome.bound))
        return 0
    _table(outcome)
    return 0


def prune(settings: Settings, arguments: argparse.Namespace) -> int:
    """Evict down to the bounds (or ``--max-size``) and say what went."""
    max_size = None
    if arguments.max_size is not None:
        try:
            max_size = parse_size(arguments.max_size)
        except ValueError as exc:
            raise InvalidRequest(f"--max-size: {exc}.") from exc

    async def work(services: Services) -> PruneOutcome:
        return await services.proxy_cache.prune(
            local_admin(), index=arguments.index, max_size=max_size, dry_run=arguments.dry_run
        )

    outcome = with_services(settings, work)
    verb = "Would evict" if outcome.dry_run else "Evicted"
    print(f"{verb} {outcome.evicted_files} files ({format_size(outcome.evicted_bytes)}).")
    for index, (files, size) in sorted(outcome.by_index.items()):
        print(f"  {index}: {files} files ({format_size(size)})")
    _table(outcome)
    return 0


def _table(outcome: PruneOutcome) -> None:
    table = Table("index", "files", "size", "held by mirrors", "bound")
    for usage in outcome.usage:
        bound = format_size(usage.bound) if usage.bound is not None else "none"
        table.add_row(
            usage.index,
            str(usage.files),
            format_size(usage.bytes),
            format_size(usage.mirrored_bytes),
            bound,
        )
    Console(width=160).print(table)
    bound = format_size(outcome.bound) if outcome.bound is not None else "none"
    files = sum(u.files for u in outcome.usage)
    print(f"All proxy indexes: {files} files, {format_size(outcome.total)}; bound {bound}.")
