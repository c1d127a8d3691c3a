"""Store latency: every coroutine method of a metadata store, timed into one histogram.

One wrapper around whichever backend ``wiring`` built, rather than timers in each
backend's helpers: the SQLite and Redis stores reach their engines through
different paths, and this sees both the same way (operation = method name).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from ministry.storage.protocols import MetadataStore

if TYPE_CHECKING:
    from prometheus_client import Histogram

__all__ = ["timed_store"]


class _TimedStore:
    """Forwards every attribute to the store; its coroutine methods are timed."""

    def __init__(self, store: MetadataStore, histogram: Histogram) -> None:
        self._store = store
        self._histogram = histogram
        self._wrapped: dict[str, Callable[..., Awaitable[Any]]] = {}

    def __getattr__(self, name: str) -> Any:
        wrapped = self._wrapped.get(name)
        if wrapped is not None:
            return wrapped
        attribute = getattr(self._store, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute
        observe = self._histogram.labels(name).observe

        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await attribute(*args, **kwargs)
            finally:
                observe(time.perf_counter() - started)

        self._wrapped[name] = timed
        return timed


def timed_store(store: MetadataStore, histogram: Histogram) -> MetadataStore:
    """``store``, with the time of each call observed in ``histogram`` by operation."""
    return cast(MetadataStore, _TimedStore(store, histogram))
