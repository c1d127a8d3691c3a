"""Prometheus metrics, on a registry of the server's own (no module-level state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

__all__ = ["Metrics"]


class Metrics:
    """The counters and histograms the server keeps, and their text exposition."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.proxy_pages = Counter(
            "ministry_proxy_pages",
            "Upstream project page lookups by result: hit (fresh cache), revalidated (304), "
            "refreshed, miss (first fetch), stale (served past freshness), not_found, error.",
            ["index", "result"],
            registry=self.registry,
        )
        self.proxy_files = Counter(
            "ministry_proxy_files",
            "Proxied file reads by result: hit (from the cache), miss (fetched), error.",
            ["index", "result"],
            registry=self.registry,
        )
        self.upstream_seconds = Histogram(
            "ministry_upstream_request_seconds",
            "Time spent on upstream requests, by kind (page, file, metadata).",
            ["kind"],
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)
