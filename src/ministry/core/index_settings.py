"""Index settings as people write them (JSON bodies, command-line flags) turned into values.

Both the HTTP API and the CLI pass a mapping of setting names to plain values
through here, so an index is configured the same way, with the same messages,
whichever door is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ministry.core.models import IndexConfig, Route
from ministry.errors import InvalidRequest

__all__ = ["SETTINGS", "index_settings", "settings_document"]

_LISTS = ("bases", "readers", "uploaders", "admins")
_PATTERNS = ("allow_inherit",)
_FLAGS = ("private", "allow_delete", "allow_overwrite")
#: Every setting an index has besides its name and kind.
SETTINGS = frozenset({*_LISTS, *_PATTERNS, *_FLAGS, "routes", "description"})


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


def index_settings(values: Mapping[str, object]) -> dict[str, Any]:
    """Validated ``IndexConfig`` fields from plain values; unknown names are refused."""
    unknown = set(values) - SETTINGS
    if unknown:
        raise InvalidRequest(f"Unknown index settings: {', '.join(sorted(unknown))}.")
    settings: dict[str, Any] = {}
    for name, value in values.items():
        if name in _LISTS:
            settings[name] = _strings(name, value)
        elif name in _PATTERNS:
            settings[name] = tuple(p.lower() for p in _strings(name, value))
        elif name in _FLAGS:
            if not isinstance(value, bool):
                raise InvalidRequest(f"Index setting {name!r} must be true or false.")
            settings[name] = value
        elif name == "routes":
            rules = value if isinstance(value, list | tuple) else _strings(name, value)
            settings[name] = tuple(_route(rule) for rule in rules)
        elif not isinstance(value, str):
            raise InvalidRequest("Index setting 'description' must be text.")
        else:
            settings[name] = value
    return settings


def settings_document(config: IndexConfig) -> dict[str, Any]:
    """An index's settings as JSON-ready values (the inverse of ``index_settings``)."""
    return {
        "name": config.name,
        "kind": config.kind,
        **{name: list(getattr(config, name)) for name in (*_LISTS, *_PATTERNS)},
        **{name: getattr(config, name) for name in _FLAGS},
        "routes": [{"pattern": r.pattern, "base": r.base} for r in config.routes],
        "description": config.description,
    }
