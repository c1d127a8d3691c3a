"""Values as JSON records: how the Redis store and the manifests keep them, and how
``ministry migrate`` moves them.

One codec for every model, driven by the dataclass fields: times travel as ISO 8601
text, tuples (pairs in a tuple too) as lists, routing rules as ``[pattern, base]`` pairs,
an index's upstreams as tables.
"""

from __future__ import annotations

import json
from dataclasses import fields, is_dataclass
from datetime import datetime
from typing import Any, TypeVar

from ministry.core.models import Route, Upstream

__all__ = ["dumps", "from_record", "loads", "to_record"]

T = TypeVar("T")

_TIMES = frozenset(
    {"created", "upload_time", "fetched", "cached", "last_access", "expires", "last_used", "time"}
)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Route):
        return [value.pattern, value.base]
    if isinstance(value, Upstream):
        return {"url": value.url, "only": list(value.only), "page_ttl": value.page_ttl}
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


def _tuples(value: list[Any]) -> tuple[Any, ...]:
    return tuple(_tuples(item) if isinstance(item, list) else item for item in value)


def to_record(value: Any) -> dict[str, Any]:
    """A dataclass value as a JSON-ready dict."""
    assert is_dataclass(value) and not isinstance(value, type)
    return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}


def from_record(cls: type[T], record: dict[str, Any]) -> T:
    """A dataclass value from its record; fields the record lacks take their defaults."""
    values: dict[str, Any] = {}
    legacy = "upstream" in record and "upstreams" not in record
    if legacy and any(f.name == "upstreams" for f in fields(cls)):  # type: ignore[arg-type]
        # An index kept before it could have several upstreams.
        old = record["upstream"]
        record = {**record, "upstreams": [{"url": old}] if old else []}
    for field in fields(cls):  # type: ignore[arg-type]
        if field.name not in record:
            continue
        value = record[field.name]
        if field.name in _TIMES and value is not None:
            value = datetime.fromisoformat(value)
        elif field.name == "routes":
            value = tuple(Route(pattern, base) for pattern, base in value)
        elif field.name == "upstreams":
            value = tuple(
                Upstream(u["url"], tuple(u.get("only", ())), u.get("page_ttl")) for u in value
            )
        elif isinstance(value, list):
            value = _tuples(value)
        values[field.name] = value
    return cls(**values)


def dumps(value: Any) -> str:
    """A dataclass value as compact JSON text."""
    return json.dumps(to_record(value), separators=(",", ":"), sort_keys=True)


def loads(cls: type[T], text: str | bytes) -> T:
    """A dataclass value from JSON text."""
    record: dict[str, Any] = json.loads(text)
    return from_record(cls, record)
