"""Index settings as people write them (JSON bodies, command-line flags) turned into values.

Both the HTTP API and the CLI pass a mapping of setting names to plain values
through here, so an index is configured the same way, with the same messages,
whichever door is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ministry.core.durations import parse_duration
from ministry.core.masking import mask_url
from ministry.core.models import IndexConfig, Route
from ministry.core.sizes import parse_size
from ministry.core.upstream_entries import parse_upstreams, upstream_record
from ministry.errors import InvalidRequest

__all__ = ["SETTINGS", "index_settings", "new_index", "settings_document"]

_LISTS = ("bases", "readers", "uploaders", "admins")
_PATTERNS = ("allow_inherit", "min_age_exempt")
_FLAGS = ("private", "allow_delete", "allow_overwrite")
_TIMES = ("page_ttl", "min_age")
#: Every setting an index has besides its name and kind; ``upstream`` (one entry or a
#: list, as older clients and files give it) and ``upstreams`` both set ``upstreams``.
SETTINGS = frozenset(
    {*_LISTS, *_PATTERNS, *_FLAGS, *_TIMES, "description", "upstream", "upstreams", "routes",
     "max_cache_size"}
)  # fmt: skip


def _strings(name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(f"Index setting {name!r} must be a list of names.")
    return tuple(dict.fromkeys(v.strip() for v in value))


def _route(value: object) -> Route:
    if isinstance(value, str) and "=" in value:
        before, _, after = value.partition("=")
        return Route(before.strip().lower(), after.strip())
    if isinstance(value, Mapping):
        pattern, base = value.get("pattern"), value.get("base")
        if isinstance(pattern, str) and isinstance(base, str):
            return Route(pattern.strip().lower(), base.strip())
    raise InvalidRequest(
        'A routing rule is \'PATTERN=INDEX\' (or {"pattern": …, "base": …}); '
        "INDEX '-' means from no base at all."
    )


def _seconds(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidRequest(f"Index setting {name!r} must be seconds or a duration like 3d.")
    if isinstance(value, int):
        return value
    return int(parse_duration(value).total_seconds())


def _size(name: str, value: object) -> int | None:
    """A size like ``500M``, a number of bytes, or none (``null``, ``""``, ``none``)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        try:
            return parse_size(value)
        except ValueError as exc:
            raise InvalidRequest(f"Index setting {name!r}: {exc}.") from exc
    raise InvalidRequest(f"Index setting {name!r} must be a size like 5G, or bytes.")


def _setting(name: str, value: object) -> Any:
    if name in _LISTS:
        return _strings(name, value)
    if name in _PATTERNS:
        return tuple(p.lower() for p in _strings(name, value))
    if name in _FLAGS:
        if not isinstance(value, bool):
            raise InvalidRequest(f"Index setting {name!r} must be true or false.")
        return value
    if name in _TIMES:
        return _seconds(name, value)
    if name == "max_cache_size":
        return _size(name, value)
    if name == "routes":
        rules = value if isinstance(value, list | tuple) else _strings(name, value)
        return tuple(_route(rule) for rule in rules)
    if name in ("upstream", "upstreams"):
        return parse_upstreams(value)
    if not isinstance(value, str):
        raise InvalidRequest(f"Index setting {name!r} must be text.")
    return value


def index_settings(values: Mapping[str, object]) -> dict[str, Any]:
    """Validated ``IndexConfig`` fields from plain values; unknown names are refused."""
    unknown = set(values) - SETTINGS
    if unknown:
        raise InvalidRequest(f"Unknown index settings: {', '.join(sorted(unknown))}.")
    settings = {name: _setting(name, value) for name, value in values.items()}
    if "upstream" in settings:
        single = settings.pop("upstream")
        listed = settings.setdefault("upstreams", single)
        # A document as shown has both: ``upstream`` is then its list's first URL.
        if listed != single and [u.url for u in single] != [u.url for u in listed[:1]]:
            raise InvalidRequest("Give 'upstream' or 'upstreams', not both.")
    return settings


def new_index(name: str, values: Mapping[str, object]) -> IndexConfig:
    """A new index from plain settings: a proxy index when it names an upstream."""
    settings = index_settings(values)
    if settings.get("upstreams"):
        return IndexConfig(name=name, kind="proxy", **settings)
    return IndexConfig(name=name, **settings)


def settings_document(config: IndexConfig) -> dict[str, Any]:
    """An index's settings as JSON-ready values (the inverse of ``index_settings``)."""
    return {
        "name": config.name,
        "kind": config.kind,
        **{name: list(getattr(config, name)) for name in (*_LISTS, *_PATTERNS)},
        **{name: getattr(config, name) for name in (*_FLAGS, *_TIMES)},
        "max_cache_size": config.max_cache_size,
        "routes": [{"pattern": r.pattern, "base": r.base} for r in config.routes],
        "description": config.description,
        # An upstream's password never leaves the server. ``upstream`` is the first one,
        # for clients that know only one.
        "upstream": mask_url(config.upstream) if config.upstream else None,
        "upstreams": [upstream_record(u) for u in config.upstreams],
    }
