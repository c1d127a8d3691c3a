"""What makes an index name and an index's settings valid.

Index names become URL prefixes (``/team/dev/simple/``), so a name must never
shadow a path the server already answers, nor the words that follow an index
name in its own URLs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from ministry.core.inheritance import resolution_order
from ministry.core.masking import mask_url
from ministry.core.models import IndexConfig
from ministry.errors import InvalidRequest

__all__ = ["RESERVED_NAMES", "check_index_config", "check_index_name", "check_principal"]

_PART = r"[a-z0-9][a-z0-9._-]*"
_NAME = re.compile(rf"{_PART}(?:/{_PART})?\Z")
_PRINCIPAL = re.compile(r"@?[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
_PATTERN = re.compile(r"[a-z0-9*?\[\]!._-]+\Z")
_MAX_NAME = 100

#: First path segments of the server's own URLs, and the words after an index name.
RESERVED_NAMES = frozenset(
    {
        "-", "simple", "packages", "pypi", "project", "projects", "static", "legacy", "dist",
        "json", "files", "releases", "search", "login", "logout", "account", "admin", "api",
        "user", "users", "help", "health", "metrics", "integrity", "favicon.ico", "robots.txt",
    }
)  # fmt: skip


def check_index_name(name: str) -> str:
    """Refuse names that are not URL-safe or that clash with the server's own paths."""
    if len(name) > _MAX_NAME or not _NAME.match(name):
        raise InvalidRequest(
            f"Invalid index name {name[:_MAX_NAME]!r}: use lower-case letters, digits, '.', '_' "
            "and '-', starting with a letter or digit, optionally two such parts joined by "
            "one '/' (like 'team/dev')."
        )
    clashes = [part for part in name.split("/") if part in RESERVED_NAMES]
    if clashes:
        raise InvalidRequest(
            f"Invalid index name {name!r}: {clashes[0]!r} is a word the server's own URLs use."
        )
    return name


def check_principal(principal: str) -> str:
    """A user name or an ``@group`` name."""
    if not _PRINCIPAL.match(principal):
        raise InvalidRequest(
            f"Invalid user or group {principal[:70]!r}: write a user name, or @group."
        )
    return principal


def check_index_config(config: IndexConfig, configs: Mapping[str, IndexConfig]) -> None:
    """Check a new or changed index against the others (``configs`` may include it)."""
    check_index_name(config.name)
    for base in config.bases:
        if base == config.name:
            raise InvalidRequest(f"Index {config.name!r} cannot inherit from itself.")
        if base not in configs:
            raise InvalidRequest(
                f"Index {config.name!r} cannot inherit from {base!r}: no such index."
            )
    others = {**configs, config.name: config}
    for base in config.bases:
        if config.name in resolution_order(base, others):
            raise InvalidRequest(
                f"Index {config.name!r} cannot inherit from {base!r}: {base!r} inherits from it."
            )
    for principal in (*config.readers, *config.uploaders, *config.admins):
        check_principal(principal)
    patterns = (
        *config.allow_inherit,
        *config.min_age_exempt,
        *(r.pattern for r in config.routes),
        *(p for u in config.upstreams for p in u.only),
    )
    for pattern in patterns:
        if not _PATTERN.match(pattern):
            raise InvalidRequest(
                f"Invalid project pattern {pattern[:100]!r}: use normalized (lower-case) names "
                "with the wildcards * and ?."
            )
    for route in config.routes:
        if route.base != "-" and route.base not in configs:
            raise InvalidRequest(f"Routing rule {route.pattern!r}: no index {route.base!r}.")
    _check_kind(config)


def _check_kind(config: IndexConfig) -> None:
    if config.page_ttl < 0 or config.min_age < 0:
        raise InvalidRequest("Times (page_ttl, min_age) cannot be negative.")
    if config.kind == "hosted":
        if config.upstreams:
            raise InvalidRequest(
                f"Index {config.name!r} is hosted; only a proxy index has an upstream."
            )
        if config.max_cache_size is not None:
            raise InvalidRequest(
                f"Index {config.name!r} is hosted: its files are never evicted, so it takes "
                "no max_cache_size (only a proxy index keeps a cache)."
            )
        return
    wrong = [u for u in config.upstreams if not _upstream_url(u.url)]
    if not config.upstreams or wrong:
        raise InvalidRequest(
            f"Proxy index {config.name!r} needs an upstream http(s) URL, like the simple "
            "index URL pip would use, or file:///PATH/ of a directory on the server"
            + (f" ({mask_url(wrong[0].url)!r} is not one)." if wrong else ".")
        )
    if config.bases or config.routes:
        raise InvalidRequest(f"Proxy index {config.name!r} cannot have bases or routing rules.")


def _upstream_url(url: str) -> bool:
    """An http(s) URL with a host, or a ``file:`` URL of an absolute path on this server."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme == "file":
        return not parts.netloc and parts.path.startswith("/")
    return parts.scheme in ("http", "https") and bool(parts.hostname)
