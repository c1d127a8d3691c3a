"""Prometheus metrics, on a registry of the server's own (no module-level state)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

from ministry.core.models import MirrorRun
from ministry.version import version

__all__ = ["PRIVATE_LABEL", "Metrics"]

#: What the ``index`` label says for every index that is not public: no index has
#: this name, and the name of a private one is never shown (docs/security.md,
#: "Private indexes").
PRIVATE_LABEL = "(private)"


class Metrics:
    """The counters and histograms the server keeps, and their text exposition."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # Which release answers, so a dashboard shows a rolling upgrade node by node.
        Info("ministry_build", "The release of Ministry serving.", registry=self.registry).info(
            {"version": version()}
        )
        self.store_risks = Gauge(
            "ministry_store_risks",
            "Risks a store was started despite, by store: 1 when the operator overrode a "
            "check (redis_durability warn on a Redis that may lose acknowledged uploads).",
            ["store"],
            registry=self.registry,
        )
        self.metadata_rollbacks = Counter(
            "ministry_metadata_rollbacks",
            "Times this process found the metadata store gone back: a serial below the "
            "highest seen, or another generation (a restore from an older snapshot, a Redis "
            "restarted empty). See docs/operations.md.",
            registry=self.registry,
        )
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
        self._cache_metrics()
        self.upstream_changed_files = Counter(
            "ministry_upstream_changed_files",
            "Files an upstream page listed with other bytes than the same filename had "
            "before (pinned), counted at each page refresh that finds one.",
            ["index"],
            registry=self.registry,
        )
        self.upstream_seconds = Histogram(
            "ministry_upstream_request_seconds",
            "Time spent on upstream requests, by kind (page, file, metadata).",
            ["kind"],
            registry=self.registry,
        )

        self._http_metrics()
        labels = ["job", "index"]
        self.mirror_finished = Gauge(
            "ministry_mirror_last_run_finished_seconds",
            "When the last run of a scheduled mirror job finished (Unix time).",
            labels, registry=self.registry,
        )  # fmt: skip
        self.mirror_duration = Gauge(
            "ministry_mirror_last_run_duration_seconds",
            "How long the last run of a scheduled mirror job took.",
            labels, registry=self.registry,
        )  # fmt: skip
        self.mirror_success = Gauge(
            "ministry_mirror_last_run_success",
            "1 when the last run of a mirror job fetched everything asked for, else 0.",
            labels, registry=self.registry,
        )  # fmt: skip
        self.mirror_files = Gauge(
            "ministry_mirror_last_run_files",
            "Files fetched from the upstream by the last run of a mirror job.",
            labels, registry=self.registry,
        )  # fmt: skip
        self.mirror_bytes = Gauge(
            "ministry_mirror_last_run_bytes",
            "Bytes fetched from the upstream by the last run of a mirror job.",
            labels, registry=self.registry,
        )  # fmt: skip
        self.mirror_failed = Gauge(
            "ministry_mirror_last_run_failed_files",
            "Files the last run of a mirror job could not fetch or verify.",
            labels, registry=self.registry,
        )  # fmt: skip

    def _cache_metrics(self) -> None:
        # What a bounded proxy cache holds and gives up (services.proxy_cache); its hits
        # and misses are ministry_proxy_files.
        self.proxy_cache_bytes = Gauge(
            "ministry_proxy_cache_bytes",
            "Bytes of upstream files a proxy index keeps, as of the last eviction pass "
            "plus what this process kept since.",
            ["index"],
            registry=self.registry,
        )
        self.proxy_cache_files = Gauge(
            "ministry_proxy_cache_files",
            "Upstream files (side files included) a proxy index keeps, counted like "
            "ministry_proxy_cache_bytes.",
            ["index"],
            registry=self.registry,
        )
        self.proxy_cache_evicted_files = Counter(
            "ministry_proxy_cache_evicted_files",
            "Cached upstream files (side files included) evicted to keep a cache bound.",
            ["index"],
            registry=self.registry,
        )
        self.proxy_cache_evicted_bytes = Counter(
            "ministry_proxy_cache_evicted_bytes",
            "Bytes of cached upstream files evicted to keep a cache bound.",
            ["index"],
            registry=self.registry,
        )

    def _http_metrics(self) -> None:
        # Labels are route names (handler classes), methods and status codes, never raw
        # paths or user input: their number stays bounded whatever clients send.
        self.requests = Counter(
            "ministry_http_requests",
            "Requests answered, by route (handler name), method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "ministry_http_request_duration_seconds",
            "Time from the request's arrival to its last byte sent, by route and status code.",
            ["route", "status"],
            registry=self.registry,
        )
        self.uploads = Counter(
            "ministry_uploads",
            "Upload requests by outcome: published, rejected (4xx but 401/403), "
            "unauthorized (401/403), failed (5xx).",
            ["outcome"],
            registry=self.registry,
        )
        self.download_bytes = Counter(
            "ministry_download_bytes",
            "Bytes of distribution files sent by this process (not redirects), by index.",
            ["index"],
            registry=self.registry,
        )
        self.open_connections = Gauge(
            "ministry_open_connections",
            "HTTP connections this process holds open now.",
            registry=self.registry,
        )
        self.store_seconds = Histogram(
            "ministry_store_operation_seconds",
            "Time spent in metadata store calls, by operation.",
            ["operation"],
            registry=self.registry,
        )

    def watch_connections(self, count: Callable[[], float]) -> None:
        """Read the open-connection gauge from the server at each scrape."""
        self.open_connections.set_function(count)

    def record_mirror_runs(self, runs: Iterable[MirrorRun]) -> None:
        """Show the last runs as the store has them (any worker or node may have run a job)."""
        gauges = (
            self.mirror_finished, self.mirror_duration, self.mirror_success,
            self.mirror_files, self.mirror_bytes, self.mirror_failed,
        )  # fmt: skip
        for gauge in gauges:
            gauge.clear()
        for run in runs:
            labels = (run.job, run.index)
            self.mirror_finished.labels(*labels).set(run.finished.timestamp())
            self.mirror_duration.labels(*labels).set((run.finished - run.started).total_seconds())
            self.mirror_success.labels(*labels).set(1 if run.ok else 0)
            self.mirror_files.labels(*labels).set(run.files)
            self.mirror_bytes.labels(*labels).set(run.bytes)
            self.mirror_failed.labels(*labels).set(run.failed)

    def exposition(self, public: Collection[str]) -> bytes:
        """The Prometheus text format of every metric, naming only the ``public`` indexes.

        The counts of every other index (private, or deleted since) are added up
        under one label, decided now rather than when counted, so an index made
        private later is hidden too.
        """
        shown = CollectorRegistry(auto_describe=False)
        shown.register(_Relabeled(self.registry, frozenset(public)))
        return generate_latest(shown)


class _Relabeled:
    """The server's registry with each non-public ``index`` label replaced, samples merged."""

    def __init__(self, registry: CollectorRegistry, public: frozenset[str]) -> None:
        self._registry = registry
        self._shown = public | {"-"}  # "-": a request that named no index

    def collect(self) -> Iterator[Metric]:
        """Every family of the registry, relabeled."""
        for family in self._registry.collect():
            merged: dict[tuple[str, tuple[tuple[str, str], ...]], Sample] = {}
            for sample in family.samples:
                labels = sample.labels
                if labels.get("index", "-") not in self._shown:
                    labels = {**labels, "index": PRIVATE_LABEL}
                key = (sample.name, tuple(sorted(labels.items())))
                kept = merged.get(key)
                if kept is None:
                    merged[key] = sample._replace(labels=labels)
                elif sample.name.endswith("_created"):
                    merged[key] = kept._replace(value=min(kept.value, sample.value))
                else:
                    merged[key] = kept._replace(value=kept.value + sample.value)
            family.samples = list(merged.values())
            yield family
