"""The parsers of ``ministry cache stats|prune``; ``ministry.cli.cache`` runs them."""

from __future__ import annotations

from typing import Any

from ministry.cli.parsers import Common, Run, add_json_flag

__all__ = ["register"]

_IMPLEMENTATION = "ministry.cli.cache"


def register(commands: Any, common: Common) -> None:
    """Add the ``cache`` sub-commands (on the local stores, safe while the server runs)."""
    cache = commands.add_parser(
        "cache", help="see and prune what proxy indexes keep of their upstreams"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    stats = cache.add_parser(
        "stats",
        help="print what each proxy index keeps, with the bounds",
        description="Size and number of the cached upstream files of every proxy index, "
        "what mirror runs hold of them, and the bounds (max_cache_size). Hits and misses "
        "are the server's metric ministry_proxy_files.",
    )
    common(stats)
    add_json_flag(stats, "one JSON object")
    stats.set_defaults(run=Run(_IMPLEMENTATION, "stats"))
    prune = cache.add_parser(
        "prune",
        help="evict least recently used proxied files down to the bounds now",
        description="Evict the least recently used cached upstream files until every bound "
        "holds: the server's max_cache_size and each index's own. Files a mirror holds and "
        "files being sent are kept; an evicted file is fetched again when next asked for. "
        "Safe while the server runs.",
    )
    common(prune)
    prune.add_argument("--index", metavar="NAME", help="evict only from this proxy index")
    prune.add_argument(
        "--max-size",
        metavar="SIZE",
        help="evict down to this size (5G, 500M, bytes) instead of the bound: the total's, "
        "or with --index that index's",
    )
    prune.add_argument(
        "--dry-run", action="store_true", help="print what would be evicted; evict nothing"
    )
    prune.set_defaults(run=Run(_IMPLEMENTATION, "prune"))
