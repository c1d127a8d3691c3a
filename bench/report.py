"""Write docs/benchmarks.md and docs/benchmarks.png from the JSON results of a run.

Every figure is set beside the peers measured in the same run on the same
machine: absolute numbers depend on the machine and on what else runs on it,
ratios much less. The targets are checked against those ratios; a missed target
gets a section of its own for the explanation.

    python bench/report.py [--results DIR] [--out docs/benchmarks.md] [--plot docs/benchmarks.png]
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corpus import Layout, work_dir

REPO = Path(__file__).resolve().parents[1]
#: Why a target is missed, one "## <target name>" section each; report.py quotes them.
MISSED = REPO / "bench" / "missed.md"
#: The last soak run's findings (bench/soak.py), written by hand from its soak.json and
#: kept here so that regenerating the report keeps them.
SOAK = REPO / "bench" / "soak.md"
#: The last command-line start-up timing (bench/cli_startup.py), before and after a change,
#: written by hand from its output and kept here for the same reason.
CLI_STARTUP = REPO / "bench" / "cli_startup.md"
#: The last tiny-upload latency runs (measure_upload.py --latency), before and after a
#: change to the upload's disk flushes, written by hand and kept for the same reason.
UPLOAD_LATENCY = REPO / "bench" / "upload_latency.md"
#: One SQLite node against one and two Redis + S3 nodes, with the round trips each upload
#: and read costs, before and after a change (bench/cluster_throughput.py), written by hand
#: from its output and kept for the same reason.
CLUSTER_THROUGHPUT = REPO / "bench" / "cluster_throughput.md"
#: The last fault run's table (bench/chaos.py), written by hand from its output and kept
#: here for the same reason.
FAULTS = REPO / "bench" / "faults.md"
#: Memory after every kind of page on the large store, before and after a change
#: (bench/large_store.py --memory-only), written by hand from its output and kept here for
#: the same reason; the large store's section ends with it.
LARGE_STORE_MEMORY = REPO / "bench" / "large_store_memory.md"
#: A store the size of the public index against one a tenth of it (bench/public_scale.py),
#: written by hand from its output and kept here for the same reason; it follows the
#: large store's section.
PUBLIC_SCALE = REPO / "bench" / "public_scale.md"
#: What bounds each proxy in the comparison (bench/proxy_compare.py), profiled, written
#: by hand from its results and kept here; the comparison's section ends with it.
PROXY_COMPARE = REPO / "bench" / "proxy_compare.md"
ORDER = (
    "nginx",
    "pypiserver",
    "pypiserver-gunicorn",
    "devpi",
    "ministry",
    "ministry-2proc",
    "ministry-nginx",
    "ministry-cluster",
)
PEERS = ("nginx", "pypiserver", "pypiserver-gunicorn", "devpi")
PYPISERVERS = ("pypiserver", "pypiserver-gunicorn")
PAGES = ("root", "wide_html", "wide_json", "project")
ENDPOINTS = (*PAGES, "download")
TITLES = {
    "root": "`/simple/` root listing ({projects} projects)",
    "wide_html": "500-file project page, HTML",
    "wide_json": "500-file project page, PEP 691 JSON",
    "project": "one-file project page (`requests`)",
    "download": "{download_mb} MB wheel download",
}
SHORT = {
    "root": "root",
    "wide_html": "500 files HTML",
    "wide_json": "500 files JSON",
    "project": "1-file page",
    "download": "download",
}
MISSING = "–"
Results = dict[str, dict[str, Any]]


# -- loading ----------------------------------------------------------------------------------


@dataclass
class Run:
    """Every result file of the results directory, by kind and label."""

    wrk: Results
    install: Results
    server: Results
    upload: Results
    proxy: dict[str, Any]
    compare: list[dict[str, Any]]
    large_store: dict[str, Any]
    meta: dict[str, Any]

    @classmethod
    def load(cls, directory: Path) -> Run:
        def kind(name: str) -> Results:
            found = {}
            for path in sorted(directory.glob(f"{name}-*.json")):
                data = json.loads(path.read_text())
                found[data.get("label", path.stem.removeprefix(f"{name}-"))] = data
            return found

        def single(name: str) -> dict[str, Any]:
            path = directory / name
            return json.loads(path.read_text()) if path.exists() else {}

        return cls(
            wrk=kind("wrk"),
            install=kind("install"),
            server=kind("server"),
            upload=kind("upload"),
            proxy=single("proxy-ministry-proxy.json"),
            compare=compare_results(directory),
            large_store=single("large-store.json"),
            meta=single("run-all.json"),
        )

    def run_ids(self) -> set[str]:
        """The runs the figures come from (more than one: ratios mix runs)."""
        groups: list[Results] = [self.wrk, self.install, self.server, self.upload]
        ids = {r.get("run_id") for group in groups for r in group.values()}
        ids |= {self.proxy.get("run_id")}
        return {i for i in ids if i}

    def labels(self) -> list[str]:
        present = set(self.wrk) | set(self.install) | set(self.server)
        return [label for label in ORDER if label in present]

    def endpoint(self, label: str, key: str) -> dict[str, Any]:
        return self.wrk.get(label, {}).get("endpoints", {}).get(key, {})

    def rps(self, label: str, key: str) -> float | None:
        return self.endpoint(label, key).get("rps")

    def best_pypiserver(self, key: str) -> float | None:
        values = [v for label in PYPISERVERS if (v := self.rps(label, key))]
        return max(values) if values else None

    def install_s(self, label: str, tool: str) -> float | None:
        return self.install.get(label, {}).get("tools", {}).get(tool, {}).get("median_s")


# -- formatting -------------------------------------------------------------------------------


def number(value: float | None, digits: int = 1) -> str:
    """Readable figures: thousands separators, fewer decimals as numbers grow."""
    if value is None:
        return MISSING
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:,.{min(digits, 1)}f}"
    return f"{value:,.{max(digits, 2)}f}"


def ratio(top: float | None, bottom: float | None) -> str:
    if not top or not bottom:
        return MISSING
    value = top / bottom
    if value >= 100:
        return f"{value:,.0f}×"
    return f"{value:.1f}×" if value >= 10 else f"{value:.2f}×"


def divide(top: float | None, bottom: float | None) -> float | None:
    return top / bottom if top and bottom else None


def table(header: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 1) -> str:
    """A Markdown table; columns from ``right_from`` on are right-aligned."""
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def median_rps(endpoint: dict[str, Any]) -> str:
    runs = [r["rps"] for r in endpoint.get("runs", []) if r.get("rps")]
    return ", ".join(number(r) for r in runs) if runs else MISSING


# -- sections ---------------------------------------------------------------------------------


def header(run: Run) -> str:
    meta = run.meta
    machine = meta.get("machine", {})
    lines = [
        "# Benchmarks",
        "",
        "Ministry of Packages measured against the peers it replaces, on one corpus, one server "
        "at a time, on one machine. Every figure comes from the run described here; rerun with "
        "`bench/run.py` (see [bench/README.md](../bench/README.md)). Compare ratios rather than "
        "absolute numbers: wrk and the installers share the machine's cores with the server.",
        "",
        f"- Date: {meta.get('date', MISSING)}",
        f"- Command: `{meta.get('command', 'bench/run.py')}`"
        + (f" ({number(meta['seconds'] / 60)} minutes)" if meta.get("seconds") else ""),
        f"- Machine: {machine.get('cores', '?')} cores, {machine.get('cpu', '?')}, "
        f"{machine.get('memory_gib', '?')} GiB, {machine.get('os', '?')}, "
        f"kernel {machine.get('kernel', '?')}, Python {machine.get('python', '?')}",
    ]
    options = meta.get("options")
    if options:
        lines.append(
            "- Load: wrk -t2 -c32 --timeout 30s --latency, "
            f"{options['runs']} × {options['duration']} per endpoint (median); "
            f"{options['install_runs']} install runs (median)"
        )
    if len(run.run_ids()) > 1:
        lines.append(
            f"- **Note:** these results come from {len(run.run_ids())} different runs "
            f"({', '.join(sorted(run.run_ids()))}); ratios between them are less reliable."
        )
    versions = meta.get("versions", {})
    if versions:
        lines += ["", "Versions: " + "; ".join(f"{k} {v}" for k, v in versions.items()) + "."]
    corpus = meta.get("corpus")
    if corpus:
        counts = corpus["counts"]
        lines += [
            "",
            f"Corpus: {corpus['files']:,} files ({corpus['bytes'] / 1e6:,.0f} MB) in "
            f"{corpus['projects']:,} projects: {counts['real']} real wheels (one per project, "
            f"including the dependency closure of the install set, {len(corpus['closure'])} "
            f"distributions), `bigproj` with {counts['wide']} files, and {counts['many']:,} "
            "one-file projects. Every server holds the same files.",
        ]
    return "\n".join(lines)


def servers_section(run: Run) -> str:
    rows = []
    for label in run.labels():
        record = run.server.get(label, {})
        notes = "; ".join(record.get("notes", []) + record.get("errors", []))
        rows.append([f"`{label}`", record.get("summary", ""), notes or ""])
    return "## Servers\n\n" + table(["server", "what", "notes"], rows, right_from=3)


def endpoint_section(run: Run, key: str) -> str:
    corpus = run.meta.get("corpus", {})
    title = TITLES[key].format(
        projects=f"{corpus.get('projects', 5301):,}",
        download_mb=f"{corpus.get('download_bytes', 1_250_000) / 1e6:.2f}",
    )
    head = ["server", "req/s", "p50 ms", "p99 ms", "unloaded ms", "errors", "runs req/s"]
    head += ["÷ devpi", "÷ pypiserver", "÷ nginx"]
    rows = []
    for label in run.labels():
        endpoint = run.endpoint(label, key)
        if not endpoint:
            continue
        if endpoint.get("unsupported") or endpoint.get("failed"):
            why = endpoint.get("unsupported") or endpoint["failed"]
            rows.append([f"`{label}`", why, *[""] * (len(head) - 2)])
            continue
        rps = endpoint.get("rps")
        rows.append(
            [
                f"`{label}`",
                number(rps),
                number(endpoint.get("p50_ms")),
                number(endpoint.get("p99_ms")),
                number(endpoint.get("serial_ms")),
                str(endpoint.get("errors", 0)),
                median_rps(endpoint),
                ratio(rps, run.rps("devpi", key)),
                ratio(rps, run.best_pypiserver(key)),
                ratio(rps, run.rps("nginx", key)),
            ]
        )
    return f"### {title}\n\n" + table(head, rows)


def reads_section(run: Run) -> str:
    intro = (
        "## Index pages and downloads\n\n"
        "wrk with 2 threads and 32 connections; median of the runs. *unloaded* is the median of "
        "5 sequential requests, each on a new connection. The ratio columns divide the row's "
        "req/s by the peer's (÷ pypiserver: the better of its two setups); above 1 is faster. "
        "![req/s and p99 per endpoint and server](benchmarks.png)"
    )
    return "\n\n".join([intro, *(endpoint_section(run, key) for key in ENDPOINTS)])


def installs_section(run: Run) -> str:
    rows = []
    for label in run.labels():
        tools = run.install.get(label, {}).get("tools", {})
        if not tools:
            continue
        row = [f"`{label}`"]
        for tool in ("pip", "uv"):
            entry = tools.get(tool, {})
            median = entry.get("median_s")
            runs = ", ".join(number(t) for t in entry.get("times_s", []))
            row += [number(median), ratio(median, run.install_s("nginx", tool)), runs or MISSING]
        dists = max(t.get("dists", 0) for t in tools.values())
        errors = sum(len(t.get("errors", [])) for t in tools.values())
        rows.append([*row, str(dists), str(errors)])
    head = ["server", "pip s", "pip ÷ nginx", "pip runs", "uv s", "uv ÷ nginx", "uv runs"]
    intro = (
        "## Installs\n\n"
        "`pip install` and `uv pip install` of requests, flask, rich, attrs, python-dateutil, "
        "pyyaml, httpx, jsonschema, pytest and pydantic with all their dependencies into a fresh "
        "virtual environment, caches off and the machine's configuration ignored (pip "
        "`--isolated --no-cache-dir`, uv `--no-config --no-cache`). Seconds, median; "
        "÷ nginx above 1 is slower than the static tree."
    )
    return intro + "\n\n" + table([*head, "dists", "errors"], rows)


def upload_rate(run: Run, label: str, metric: str) -> float | None:
    record = run.upload.get(label, {})
    if metric == "tiny":
        return record.get("twine", {}).get("tiny", {}).get("files_per_s")
    return record.get("concurrent", {}).get("uploads_per_s")


def best_upload(run: Run, labels: Sequence[str], metric: str) -> float | None:
    values = [v for label in labels if (v := upload_rate(run, label, metric))]
    return max(values) if values else None


def uploads_section(run: Run) -> str:
    rows = []
    for label in [*ORDER, *sorted(set(run.upload) - set(ORDER))]:
        record = run.upload.get(label)
        if not record:
            continue
        twine = record.get("twine", {})
        tiny, real = twine.get("tiny", {}), twine.get("real", {})
        concurrent = record.get("concurrent", {})
        large = record.get("large", {})
        tiny_rate, load_rate = upload_rate(run, label, "tiny"), upload_rate(run, label, "load")
        rss = [large.get(k) for k in ("rss_mib_before", "rss_mib_peak", "rss_mib_after")]
        rows.append(
            [
                f"`{label}`",
                number(tiny.get("seconds")),
                number(tiny_rate),
                number(real.get("seconds")),
                number(real.get("mb_per_s")),
                number(load_rate),
                number(concurrent.get("p99_ms")),
                number(large.get("mb_per_s")),
                " / ".join(number(v) for v in rss) if large else MISSING,
                ratio(tiny_rate, best_upload(run, PYPISERVERS, "tiny")),
                ratio(tiny_rate, upload_rate(run, "devpi", "tiny")),
                ratio(load_rate, best_upload(run, PYPISERVERS, "load")),
                ratio(load_rate, upload_rate(run, "devpi", "load")),
                "; ".join(record.get("errors", [])) or "",
            ]
        )
    head = [
        "server", "100 tiny s", "tiny files/s", "100 real s", "real MB/s", "16 conns uploads/s",
        "16 conns p99 ms", "large MB/s", "RSS MiB before / peak / after large",
        "tiny ÷ pypiserver", "tiny ÷ devpi", "conns ÷ pypiserver", "conns ÷ devpi", "errors",
    ]  # fmt: skip
    real_mb = next(
        (
            r["twine"]["real"].get("mb")
            for r in run.upload.values()
            if r.get("twine", {}).get("real")
        ),
        None,
    )
    intro = (
        "## Uploads\n\n"
        "Each server starts empty (pypiserver with authentication off, devpi with a new index, "
        "Ministry with a new data directory and user `bench`). *100 tiny* and *100 real* are "
        f"one `twine upload` each (100 generated ~1 kB wheels; the first 100 real wheels of the "
        f"corpus, {number(real_mb)} MB), start-up of twine included. *16 conns* posts distinct "
        "small wheels with twine's multipart form from 16 concurrent connections for a fixed "
        "time: the server's own upload rate. *large* is one ~95 MB wheel, with the server's RSS "
        "sampled before, during and after."
    )
    return intro + "\n\n" + table(head, rows)


def memory_cell(record: dict[str, Any], stage: str, field: str = "rss_mib") -> str:
    return number(record.get("memory", {}).get(stage, {}).get(field))


def startup_section(run: Run) -> str:
    rows = []
    for label in run.labels():
        record = run.server.get(label, {})
        load = record.get("load", {})
        how = load.get("how", MISSING)
        if load.get("cached"):
            how += " (kept from an earlier run)"
        stores = record.get("memory", {}).get("stores_after_install", {})
        rows.append(
            [
                f"`{label}`",
                how,
                number(load.get("seconds")),
                number(record.get("startup_s")),
                memory_cell(record, "idle"),
                memory_cell(record, "after_wrk"),
                memory_cell(record, "after_install"),
                memory_cell(record, "after_install", "pss_mib"),
                str(record.get("memory", {}).get("after_install", {}).get("procs", MISSING)),
                number(stores.get("rss_mib")) if stores else "",
            ]
        )
    head = [
        "server", "corpus loaded by", "load s", "start-up s", "RSS idle MiB", "RSS after wrk",
        "RSS after installs", "PSS after installs", "processes", "Redis + S3 RSS",
    ]  # fmt: skip
    intro = (
        "## Start-up and memory\n\n"
        "Start-up: launch to the first 200 on the simple root, with the corpus loaded. Memory "
        "is summed over all of a server's processes (nginx included where it is in front); PSS "
        "counts shared pages once."
    )
    return intro + "\n\n" + table(head, rows, right_from=2)


def proxy_section(run: Run) -> str:
    proxy = run.proxy
    if not proxy:
        return "## Caching proxy\n\nNot measured in this run."
    rows = []
    for tool, entry in proxy.get("tools", {}).items():
        direct = proxy.get("direct", {}).get(tool, {}).get("median_s")
        cold, warm = entry["cold"].get("median_s"), entry["warm"].get("median_s")
        errors = len(entry["cold"].get("errors", [])) + len(entry["warm"].get("errors", []))
        rows.append(
            [
                tool,
                number(direct),
                number(cold),
                ratio(cold, direct),
                number(warm),
                ratio(warm, direct),
                ", ".join(number(t) for t in entry["warm"].get("times_s", [])) or MISSING,
                str(errors),
            ]
        )
    head = ["tool", "nginx direct s", "cold s", "cold ÷ nginx", "warm s", "warm ÷ nginx"]
    intro = (
        "## Caching proxy\n\n"
        "`ministry serve --upstream` of the static nginx tree, on an empty data directory: the "
        "*cold* install fills the cache (pages and files come through from nginx), the *warm* "
        "ones that follow are served from it. *nginx direct* installs from the static tree "
        "itself, in the same step."
    )
    errors = "; ".join(proxy.get("errors", []))
    text = intro + "\n\n" + table([*head, "warm runs", "errors"], rows)
    return text + (f"\n\nErrors: {errors}" if errors else "")


def compare_results(directory: Path) -> list[dict[str, Any]]:
    """bench/proxy_compare.py's results: loopback first, then each added delay."""
    found = [json.loads(p.read_text()) for p in directory.glob("proxy-compare*.json")]
    return sorted(found, key=lambda r: r.get("delay_ms", 0))


COMPARED = {"ministry": "Ministry", "devpi": "devpi-server", "proxpi": "proxpi"}
#: Ministry's goals against installing straight from the upstream (issue 23, item 4).
COLD_GOAL, WARM_GOAL = 1.15, 1.0


def paired(entry: dict[str, Any], direct: dict[str, Any]) -> float | None:
    """The median over rounds of this install's time over the direct install's of the same
    round: a change in the machine's load during the run falls on both of a pair."""
    mine, theirs = entry.get("times_s", []), direct.get("times_s", [])
    if not mine or len(mine) != len(theirs) or entry.get("errors") or direct.get("errors"):
        return None
    return statistics.median(m / t for m, t in zip(mine, theirs, strict=True))


def compare_table(result: dict[str, Any]) -> str:
    """Times of one comparison run: direct, then each proxy cold and warm, per tool."""
    rows = []
    for tool, direct in result.get("direct", {}).items():
        base = direct.get("median_s")
        runs = ", ".join(number(t) for t in direct.get("times_s", [])) or MISSING
        rows.append(
            [tool, "direct", number(base), "", "", runs, "", "", "", str(len(direct["errors"]))]
        )
        for name, tools in result.get("proxies", {}).items():
            entry = tools.get(tool)
            if not entry:
                continue
            cold, warm = entry["cold"], entry["warm"]
            rows.append(
                [
                    tool,
                    COMPARED.get(name, name),
                    number(cold.get("median_s")),
                    ratio(cold.get("median_s"), base),
                    times(paired(cold, direct)),
                    ", ".join(number(t) for t in cold.get("times_s", [])) or MISSING,
                    number(warm.get("median_s")),
                    ratio(warm.get("median_s"), base),
                    times(paired(warm, direct)),
                    str(len(cold["errors"]) + len(warm["errors"])),
                ]
            )
    head = ["tool", "from", "cold s", "cold ÷ direct", "per round", "runs", "warm s"]
    head += ["warm ÷ direct", "per round", "errors"]
    return table(head, rows, right_from=2)


def times(value: float | None) -> str:
    """A ratio already divided."""
    return MISSING if value is None else f"{value:.2f}×"


def upstream_table(result: dict[str, Any]) -> str:
    """What each proxy asked the upstream for, beside what one direct install asks."""
    rows = []
    for tool, direct in result.get("direct", {}).items():
        asked = direct.get("upstream", {})
        rows.append(
            [tool, "direct (one install)", *(str(asked.get(k, MISSING)) for k in
             ("requests", "distinct", "repeated", "head")), number(asked.get("mib")), ""]
        )  # fmt: skip
        for name, tools in result.get("proxies", {}).items():
            entry = tools.get(tool)
            if not entry:
                continue
            cold = entry["upstream"]["cold"][0]
            warm = entry["upstream"].get("warm", {})
            rows.append(
                [tool, COMPARED.get(name, name), *(str(cold.get(k, MISSING)) for k in
                 ("requests", "distinct", "repeated", "head")), number(cold.get("mib")),
                 str(warm.get("requests", MISSING))]
            )  # fmt: skip
    head = ["tool", "through", "cold requests", "distinct URLs", "GET again", "HEAD"]
    return table([*head, "MiB", "warm requests (all runs)"], rows, right_from=2)


def compare_targets(result: dict[str, Any]) -> str:
    """Ministry's cold and warm goals against direct, met or missed."""
    rows = []
    for tool, direct in result.get("direct", {}).items():
        entry = result.get("proxies", {}).get("ministry", {}).get(tool)
        if not entry:
            continue
        for phase, goal in (("cold", COLD_GOAL), ("warm", WARM_GOAL)):
            figure = paired(entry[phase], direct)
            met = at_most(figure, goal)
            rows.append(
                [f"Ministry, {phase} {tool}", f"≤ {goal:.2f}×", times(figure), verdict(met)]
            )
    return table(["target", "goal", "figure", "verdict"], rows, right_from=4)


def proxy_compare_section(run: Run) -> str:
    """Ministry, devpi-server and proxpi in front of one upstream (bench/proxy_compare.py)."""
    intro = (
        "## Proxy comparison\n\n"
        "`bench/proxy_compare.py`: the static nginx tree is the upstream, with an access log "
        "that counts what each proxy asks it. Through it, each on an empty cache: Ministry "
        "(`ministry serve --upstream`), devpi-server with a mirror index of it (`type=mirror`, "
        "`mirror_url=`) and proxpi (`PROXPI_INDEX_URL`, under gunicorn with one worker and "
        "eight threads, as its cache lives in the process). *direct* installs from the upstream "
        "itself. *cold*: the first install through a fresh server; *warm*: the install "
        "after it, from its cache. Round by round, so that the shared machine's changing "
        "load falls on all of them alike: *÷ direct* divides the medians, *per round* is "
        "the median of each round's time over that round's direct install (the figure the "
        "targets are judged on, since the load moves between rounds); *runs* lists every "
        "cold run (every direct run on the direct rows)."
    )
    if not run.compare:
        return intro + "\n\nNot measured in this run."
    parts = [intro]
    for result in run.compare:
        delay = result.get("delay_ms", 0)
        where = (
            f"upstream behind a relay adding {delay} ms to each request and connection"
            if delay
            else "upstream on loopback"
        )
        load = ", ".join(f"{x:.1f}" for x in result.get("load_before", []))
        after = ", ".join(f"{x:.1f}" for x in result.get("load_after", []))
        parts.append(
            f"### {where.capitalize()}\n\n"
            f"{result.get('date', MISSING)}; {result.get('rounds')} rounds, each a direct "
            f"install, then per server a fresh one with a cold install and "
            f"{result.get('warm')} warm; load average before {load}, after {after}."
        )
        parts.append(compare_table(result))
        parts.append(upstream_table(result))
        parts.append(compare_targets(result))
    if PROXY_COMPARE.exists():
        parts.append(PROXY_COMPARE.read_text().strip())
    return "\n\n".join(parts)


def splice_proxy_compare(results: Path, out: Path | None = None) -> None:
    """Rewrite the proxy comparison's section of docs/benchmarks.md alone, from its results
    (bench/proxy_compare.py run on its own leaves the other sections as they are)."""
    out = out or REPO / "docs" / "benchmarks.md"
    run = Run.load(results)
    section = proxy_compare_section(run)
    text = out.read_text()
    start = text.find("## Proxy comparison\n")
    if start < 0:
        start = end = text.index("## Large store\n")
        section += "\n\n"
    else:
        following = text.find("\n## ", start + 1)
        end = len(text) if following < 0 else following + 1
        section += "\n\n" if following >= 0 else "\n"
    out.write_text(text[:start] + section + text[end:])
    print(f"wrote the proxy comparison into {out}")


def large_store_section(run: Run) -> str:
    data = run.large_store
    if not data:
        skipped = run.meta.get("large_store", {}).get("skipped")
        return "## Large store\n\n" + (
            f"Not measured: {skipped}." if skipped else "Not measured in this run."
        )
    rows = [
        ["projects", number(data.get("projects"))],
        ["files", number(data.get("files"))],
        ["building the store, s", number(data.get("build_seconds"))],
        ["start-up, s", number(data.get("startup_s"))],
        ["first response after start, s", number(data.get("first_response_s"))],
        ["RSS idle, MiB", number(data.get("rss_mib_idle"))],
        ["RSS after, MiB", number(data.get("rss_mib_after"))],
    ]
    for kind in ("large", "small"):
        rows.append([f"project page p50 ms, {kind}", number(data.get("page_p50_ms", {}).get(kind))])
        rows.append([f"project page req/s, {kind}", number(data.get("page_rps", {}).get(kind))])
    notes = "\n".join(f"- {note}" for note in data.get("notes", []))
    memory = LARGE_STORE_MEMORY.read_text().strip() if LARGE_STORE_MEMORY.exists() else ""
    scale = PUBLIC_SCALE.read_text().strip() if PUBLIC_SCALE.exists() else ""
    return (
        "## Large store\n\n"
        + table(["", "value"], rows)
        + (f"\n\n{notes}" if notes else "")
        + (f"\n\n{memory}" if memory else "")
        + (f"\n\n{scale}" if scale else "")
    )


# -- targets ----------------------------------------------------------------------------------


@dataclass
class Target:
    """One goal, the figure it is judged on, and the verdict (None: not measured)."""

    name: str
    goal: str
    figure: str
    met: bool | None


def at_least(value: float | None, bound: float) -> bool | None:
    return None if value is None else value >= bound


def at_most(value: float | None, bound: float) -> bool | None:
    return None if value is None else value <= bound


def page_targets(run: Run) -> list[Target]:
    targets = []
    for key in PAGES:
        one = run.rps("ministry", key)
        devpi = divide(one, run.rps("devpi", key))
        targets.append(
            Target(
                f"{SHORT[key]}: one process vs devpi",
                "≥ 10× req/s",
                ratio(one, run.rps("devpi", key)),
                at_least(devpi, 10),
            )
        )
        two = run.rps("ministry-2proc", key)
        higher = None if two is None or one is None else two > one
        targets.append(
            Target(
                f"{SHORT[key]}: `--processes 2` vs one",
                "higher req/s",
                f"{number(two)} vs {number(one)} req/s",
                higher,
            )
        )
        behind = run.rps("ministry-nginx", key)
        nginx = run.rps("nginx", key)
        targets.append(
            Target(
                f"{SHORT[key]}: behind nginx (proxy_cache) vs nginx static",
                "≥ 0.9×",
                ratio(behind, nginx),
                at_least(divide(behind, nginx), 0.9),
            )
        )
    for key in ("wide_html", "wide_json", "project"):
        p99 = run.endpoint("ministry", key).get("p99_ms")
        targets.append(
            Target(
                f"{SHORT[key]}: p99 at 32 connections, one process",
                "< 50 ms",
                f"{number(p99)} ms",
                None if p99 is None else p99 < 50,
            )
        )
    return targets


def install_targets(run: Run) -> list[Target]:
    targets = []
    for tool, bound in (("pip", 1.10), ("uv", 1.15)):
        ours, nginx = run.install_s("ministry", tool), run.install_s("nginx", tool)
        targets.append(
            Target(
                f"{tool} install, one process vs nginx static",
                f"≤ {bound:.2f}×",
                ratio(ours, nginx),
                at_most(divide(ours, nginx), bound),
            )
        )
    return targets


def upload_targets(run: Run) -> list[Target]:
    targets = []
    for metric, what in (("tiny", "twine, 100 tiny files"), ("load", "16 concurrent connections")):
        ours = upload_rate(run, "ministry", metric)
        pypiserver = best_upload(run, PYPISERVERS, metric)
        devpi = upload_rate(run, "devpi", metric)
        targets.append(
            Target(
                f"upload ({what}) vs pypiserver",
                "≥ 0.9×",
                ratio(ours, pypiserver),
                at_least(divide(ours, pypiserver), 0.9),
            )
        )
        targets.append(
            Target(
                f"upload ({what}) vs devpi",
                "≥ 15×",
                ratio(ours, devpi),
                at_least(divide(ours, devpi), 15),
            )
        )
    return targets


def download_targets(run: Run) -> list[Target]:
    one, devpi = run.rps("ministry", "download"), run.rps("devpi", "download")
    behind, nginx = run.rps("ministry-nginx", "download"), run.rps("nginx", "download")
    return [
        Target(
            "download: one process vs devpi",
            "≥ 1.5×",
            ratio(one, devpi),
            at_least(divide(one, devpi), 1.5),
        ),
        Target(
            "download: X-Accel-Redirect behind nginx vs nginx static",
            "≥ 0.9×",
            ratio(behind, nginx),
            at_least(divide(behind, nginx), 0.9),
        ),
    ]


def memory_targets(run: Run) -> list[Target]:
    record = run.server.get("ministry", {}).get("memory", {}).get("after_install", {})
    per_process = divide(record.get("rss_mib"), record.get("procs"))
    return [
        Target(
            "RSS per process after wrk and installs, one process",
            "< 150 MiB",
            f"{number(per_process)} MiB",
            None if per_process is None else per_process < 150,
        )
    ]


def large_store_targets(run: Run) -> list[Target]:
    data = run.large_store
    first = data.get("first_response_s")
    rss = data.get("rss_mib_after")
    pages = data.get("page_p50_ms", {})
    large, small = pages.get("large"), pages.get("small")
    return [
        Target(
            "large store: first response after start",
            "≤ 2 s",
            f"{number(first)} s",
            at_most(first, 2.0),
        ),
        Target(
            "large store: RSS per process after the benchmark",
            "< 150 MiB",
            f"{number(rss)} MiB",
            None if rss is None else rss < 150,
        ),
        Target(
            "large store: project page p50 vs small store",
            "same (≤ 1.2×)",
            ratio(large, small),
            at_most(divide(large, small), 1.2),
        ),
    ]


def proxy_targets(run: Run) -> list[Target]:
    targets = []
    for tool in ("pip", "uv"):
        warm = run.proxy.get("tools", {}).get(tool, {}).get("warm", {}).get("median_s")
        direct = run.proxy.get("direct", {}).get(tool, {}).get("median_s")
        targets.append(
            Target(
                f"proxy, warm {tool} install vs nginx static",
                "≤ 1.2×",
                ratio(warm, direct),
                at_most(divide(warm, direct), 1.2),
            )
        )
    return targets


def targets(run: Run) -> list[Target]:
    groups: list[Callable[[Run], list[Target]]] = [
        page_targets, install_targets, upload_targets, download_targets,
        memory_targets, large_store_targets, proxy_targets,
    ]  # fmt: skip
    return [target for group in groups for target in group(run)]


def verdict(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[met]


def targets_section(found: list[Target]) -> str:
    rows = [[t.name, t.goal, t.figure, verdict(t.met)] for t in found]
    counts = [sum(t.met is v for t in found) for v in (True, False, None)]
    intro = (
        "## Targets\n\n"
        f"{counts[0]} met, {counts[1]} missed, {counts[2]} not measured. Ratios are Ministry's "
        "figure over the peer's, from this run (for times, lower is better)."
    )
    return intro + "\n\n" + table(["target", "goal", "figure", "verdict"], rows, right_from=4)


def explanations(path: Path) -> dict[str, str]:
    """The reasons written in bench/missed.md, by the target name that heads each."""
    if not path.exists():
        return {}
    found: dict[str, str] = {}
    for section in path.read_text().split("\n## ")[1:]:
        name, _, text = section.partition("\n")
        found[name.strip()] = text.strip()
    return found


def missed_section(found: list[Target], reasons: dict[str, str]) -> str:
    """Each missed target with the reason bench/missed.md gives for it (profiled, not guessed)."""
    missed = [t for t in found if t.met is False]
    if not missed:
        return "## Where targets are missed\n\nNone in this run."
    parts = ["## Where targets are missed"]
    for target in missed:
        reason = reasons.get(target.name, "_Not explained yet: see bench/missed.md._")
        parts.append(f"### {target.name} ({target.figure}; goal {target.goal})\n\n{reason}")
    return "\n\n".join(parts)


# -- plot -------------------------------------------------------------------------------------


def plot(run: Run, path: Path) -> None:
    """Grouped bars of req/s and p99 per endpoint and server, on log scales."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [label for label in run.labels() if label in run.wrk]
    if not labels:
        return
    figure, axes = plt.subplots(2, 1, figsize=(13, 9), constrained_layout=True)
    width = 0.8 / len(labels)
    colors = plt.get_cmap("tab10")
    for axis, field, title in (
        (axes[0], "rps", "requests per second (higher is better)"),
        (axes[1], "p99_ms", "p99 latency, ms, at 32 connections (lower is better)"),
    ):
        for i, label in enumerate(labels):
            values = [run.endpoint(label, key).get(field) or 0 for key in ENDPOINTS]
            offsets = [k + (i - (len(labels) - 1) / 2) * width for k in range(len(ENDPOINTS))]
            axis.bar(offsets, values, width, label=label, color=colors(i % 10))
        axis.set_yscale("log")
        axis.set_xticks(range(len(ENDPOINTS)), [SHORT[key] for key in ENDPOINTS])
        axis.set_title(title)
        axis.grid(axis="y", which="major", alpha=0.3)
    axes[0].legend(ncols=4, fontsize="small")
    date = run.meta.get("date", "")
    figure.suptitle(f"Ministry of Packages and peers, wrk -t2 -c32 ({date})")
    figure.savefig(path, dpi=110)
    plt.close(figure)


# -- main -------------------------------------------------------------------------------------


def render(run: Run) -> str:
    found = targets(run)
    sections = [
        header(run),
        targets_section(found),
        servers_section(run),
        reads_section(run),
        installs_section(run),
        uploads_section(run),
        UPLOAD_LATENCY.read_text().strip(),
        CLUSTER_THROUGHPUT.read_text().strip(),
        startup_section(run),
        proxy_section(run),
        proxy_compare_section(run),
        large_store_section(run),
        missed_section(found, explanations(MISSED)),
        SOAK.read_text().strip(),
        CLI_STARTUP.read_text().strip(),
        FAULTS.read_text().strip(),
    ]
    return "\n\n".join(sections) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=Layout(work_dir()).results)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--plot", type=Path, default=REPO / "docs" / "benchmarks.png")
    arguments = parser.parse_args(argv)
    run = Run.load(arguments.results)
    arguments.out.write_text(render(run))
    plot(run, arguments.plot)
    print(f"wrote {arguments.out} and {arguments.plot}")


if __name__ == "__main__":
    main()
