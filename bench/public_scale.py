"""The server on a store the size of the public index, against a store a tenth of it.

``python bench/public_scale.py --out RESULT.json`` builds (or reuses) two synthetic
stores with ``bench/synthetic.py`` — 100,000 projects and 1,000,000 files, and 700,000
projects and 10,000,000 files, the size of the public index — and serves each in turn
with ``ministry serve``, measuring in the same run:

- start-up (launch until the server logs "serving") and resident memory (VmRSS, and its
  peak VmHWM) after start and after every kind of page;
- the root listing ``/simple/``: the first request (which builds the project list and the
  gzipped page), again, without gzip (inflated as it is streamed) and conditional (the
  ETag sent back: 304);
- project pages of a typical and of the largest project, and the JSON API of a typical
  one: p50 and p99 of sequential requests on one keep-alive connection;
- the search: the first query (which builds the words), then p50 of a few queries;
- the same project and JSON pages again with both stores served at once and asked in
  turn, so that the machine's other work weighs on both alike;
- what a mirror reads to follow the index: ``/-/api/log`` (the change log, by serial) from
  the start and from the end, and the newest changes; ``/-/api/whoami`` alongside it shows
  what the password check alone costs those requests.

Each figure of the large store is printed beside the smaller store's, with their ratio:
a ratio near 1 shows that the figure does not follow the store. The largest project grows
with the store (4,826 files at 1,000,000, 47,970 at 10,000,000), so beside it the pages
side by side include, in every store, a project of as many files as the smallest store's
largest: the same page in stores of different sizes. ``--plans`` names other sizes
(``PROJECTS:FILES,…``, smallest first); ``--data DIR`` holds the stores
(``store-PROJECTS-FILES`` each, about 2.5 GB per million files).

``--redis redis://HOST:PORT`` measures the Redis metadata store instead: each plan's
metadata goes into a database of that Redis server of its own (the first plan into
database 1, the next into 2…; about 1 GiB of Redis memory per million files), and its
blobs into ``redis-store-PROJECTS-FILES``; the servers run with ``--db`` set to it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from base64 import b64encode
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from large_store import ROOT, Pages, Server, default_data, pages_of, serving, simple
from synthetic import Plan, build, file_counts, project_name

__all__ = ["main"]

PLANS = "100000:1000000,700000:10000000"
#: The management API's administrator the benchmark adds to each store, for ``/-/api/log``.
ADMIN, PASSWORD = "bench-admin", "bench-admin-password"
AUTH = {"Authorization": "Basic " + b64encode(f"{ADMIN}:{PASSWORD}".encode()).decode()}
GZIP = {"Accept-Encoding": "gzip"}
HTML = "application/vnd.pypi.simple.v1+html"
#: Sequential requests per latency figure.
REPEATS = 200
#: Seconds a Redis call may take in the benchmark's servers (``redis_timeout``).
REDIS_TIMEOUT = 60
SEARCHES = ("proj", "proj-00042", "synthetic 4242", "project 12", "nothing-like-this")


def _settings(plan: Plan) -> dict[str, str]:
    """The server's settings for a plan's store: its Redis database, if it has one."""
    if plan.redis is None:
        return {}
    # A read of a whole index that Redis is slow to answer shows as its time, not as a 503
    # after the default deadline of a Redis call (2 s).
    return {"MINISTRY_DB": plan.redis, "MINISTRY_REDIS_DURABILITY": "warn",
            "MINISTRY_REDIS_TIMEOUT": str(REDIS_TIMEOUT)}  # fmt: skip


def _add_admin(data: Path, plan: Plan) -> None:
    """An administrator for the change log (the CLI, as a person would), added to every
    store each run: one the run rebuilt has none; one kept has it already."""
    done = subprocess.run(
        (sys.executable, "-m", "ministry", "user", "add", ADMIN, "--admin", "--password-stdin",
         "--data", str(data)),
        input=PASSWORD, text=True, capture_output=True,
        env={**os.environ, **_settings(plan), "PYTHONPATH": str(ROOT / "src")},
    )  # fmt: skip
    if done.returncode and "exists" not in done.stderr + done.stdout:
        raise RuntimeError(f"could not add the administrator: {done.stderr}")


def same_size(plan: Plan, files: int) -> tuple[str, int]:
    """The project of ``plan`` whose number of files is nearest ``files`` (and that number)."""
    counts = file_counts(plan.projects, plan.files, plan.seed)
    nearest = min(range(len(counts)), key=lambda i: (abs(counts[i] - files), i))
    return project_name(nearest), counts[nearest]


class Client:
    """One keep-alive connection: the latency of a request, without a new connection each."""

    def __init__(self, port: int) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

    def get(self, path: str, headers: dict[str, str]) -> tuple[int, int, float, dict[str, str]]:
        """Status, body size, seconds and headers of one GET."""
        started = time.perf_counter()
        self._connection.request("GET", path, headers=headers)
        response = self._connection.getresponse()
        body = response.read()
        seconds = time.perf_counter() - started
        return response.status, len(body), seconds, {k.lower(): v for k, v in response.getheaders()}

    def latency(self, path: str, headers: dict[str, str], count: int = REPEATS) -> dict[str, float]:
        """p50 and p99 in milliseconds of ``count`` requests (after one not counted)."""
        self.get(path, headers)
        times = []
        for _ in range(count):
            status, _size, seconds, _ = self.get(path, headers)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}")
            times.append(seconds * 1000)
        times.sort()
        return {"p50_ms": round(statistics.median(times), 2),
                "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2)}  # fmt: skip

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()


def _step(found: dict[str, Any], server: Server, label: str, **figures: Any) -> None:
    found[label] = {**figures, "rss_mib": server.rss_mib(), "peak_mib": server.rss_mib("VmHWM")}


def _first(
    client: Client, server: Server, found: dict[str, Any], label: str, path: str,
    headers: dict[str, str], expect: int = 200,
) -> dict[str, str]:  # fmt: skip
    status, size, seconds, answer_headers = client.get(path, headers)
    if status != expect:
        raise RuntimeError(f"{path} answered {status}, not {expect}")
    _step(found, server, label, ms=round(seconds * 1000, 1), bytes=size)
    return answer_headers


def measure(data: Path, pages: Pages, work: Path, plan: Plan) -> dict[str, Any]:
    """Every figure on one store."""
    found: dict[str, Any] = {}
    log = work / f"{data.name}.log"
    with serving(data, log, src=ROOT / "src", settings=_settings(plan)) as server:
        startup, first = server.wait_until_serving("/-/health")
        time.sleep(1.0)
        _step(found, server, "start", startup_s=round(startup, 2), first_s=round(first, 2))
        client = Client(server.port)
        try:
            _first(client, server, found, "home page", "/", GZIP)
            html = {**GZIP, "Accept": HTML}
            listing = _first(client, server, found, "/simple/ first", "/simple/", html)
            _first(client, server, found, "/simple/ again", "/simple/", html)
            plain = {"Accept-Encoding": "identity", "Accept": HTML}
            _first(client, server, found, "/simple/ not gzipped", "/simple/", plain)
            conditional = {**html, "If-None-Match": listing["etag"]}
            _first(client, server, found, "/simple/ 304", "/simple/", conditional, 304)
            _first(client, server, found, "/packages/", "/packages/", GZIP)
            for label, project in (("typical", pages.typical), ("largest", pages.largest)):
                path = simple(project)
                _first(client, server, found, f"project page, {label}, first", path, GZIP)
                found[f"project page, {label}"] = client.latency(path, GZIP)
            _first(client, server, found, "project page for people", f"/project/{pages.typical}/",
                   GZIP)  # fmt: skip
            _first(client, server, found, "search, first", "/search?q=proj", GZIP)
            found["search"] = {
                query: client.latency(f"/search?q={query.replace(' ', '+')}", GZIP, 5)["p50_ms"]
                for query in SEARCHES
            }
            json_api = f"/pypi/{pages.typical}/json"
            _first(client, server, found, "JSON API, first", json_api, GZIP)
            found["JSON API"] = client.latency(json_api, GZIP)
            serial = int(listing.get("x-pypi-last-serial", "0"))
            for label, path in (
                ("whoami", "/-/api/whoami"),
                ("change log from the start", "/-/api/log?since=0&limit=1000"),
                ("change log, last 1000", f"/-/api/log?since={max(0, serial - 1000)}&limit=1000"),
                ("change log, newest 100", "/-/api/log?order=newest&limit=100"),
            ):
                _first(client, server, found, f"{label}, first", path, {**GZIP, **AUTH})
                found[label] = client.latency(path, {**GZIP, **AUTH}, 20)
            _step(found, server, "end")
        finally:
            client.close()
    return found


def interleaved(
    stores: list[tuple[Path, Pages, Plan, str]], work: Path, rounds: int = 20, count: int = 25
) -> list[dict[str, dict[str, float]]]:
    """Page latency with every store served at once and asked in turn, ``rounds`` times
    ``count`` requests each: whatever else the machine does falls on all of them alike,
    so their ratio is fairer than that of runs one after the other."""
    with ExitStack() as stack:
        servers = [
            stack.enter_context(
                serving(data, work / f"{data.name}-pages.log", src=ROOT / "src",
                        settings=_settings(plan))
            )
            for data, _pages, plan, _same in stores
        ]  # fmt: skip
        clients = []
        for server in servers:
            server.wait_until_serving("/-/health")
            clients.append(stack.enter_context(closing(Client(server.port))))
        paths = [
            {
                "typical": simple(pages.typical),
                "largest": simple(pages.largest),
                "same size": simple(same),
                "JSON API": f"/pypi/{pages.typical}/json",
            }
            for _data, pages, _plan, same in stores
        ]
        times: list[dict[str, list[float]]] = [{kind: [] for kind in p} for p in paths]
        for client, kinds in zip(clients, paths, strict=True):
            for path in kinds.values():
                client.get(path, GZIP)  # rendered once, as every later request finds it
        for _ in range(rounds):
            for client, kinds, found in zip(clients, paths, times, strict=True):
                for kind, path in kinds.items():
                    for _ in range(count):
                        found[kind].append(client.get(path, GZIP)[2] * 1000)
        return [
            {
                kind: {
                    "p50_ms": round(statistics.median(values), 3),
                    "p99_ms": round(sorted(values)[int(len(values) * 0.99)], 3),
                }
                for kind, values in found.items()
            }
            for found in times
        ]


def _figures(found: dict[str, Any]) -> dict[str, float]:
    """The figures to compare, flat."""
    flat: dict[str, float] = {
        "start-up, s": found["start"]["startup_s"],
        "RSS after start, MiB": found["start"]["rss_mib"],
    }
    for label, figures in found.items():
        if not isinstance(figures, dict):
            continue
        if "ms" in figures:
            flat[f"{label}, ms"] = figures["ms"]
        if "rss_mib" in figures and label != "start":
            flat[f"RSS after {label}, MiB"] = figures["rss_mib"]
        for key in ("p50_ms", "p99_ms"):
            if key in figures:
                flat[f"{label}, {key.replace('_ms', '')} ms"] = figures[key]
    for query, ms in found["search"].items():
        flat[f"search {query!r}, p50 ms"] = ms
    flat["peak RSS, MiB"] = found["end"]["peak_mib"]
    for kind, figures in found.get("interleaved", {}).items():
        for key in ("p50_ms", "p99_ms"):
            flat[f"{kind} page, served side by side, {key.replace('_ms', '')} ms"] = figures[key]
    return flat


def print_table(plans: list[Plan], results: list[dict[str, float]]) -> None:
    """Each figure for each store, and the largest store's against the smallest's."""
    heads = [f"{plan.files // 1_000_000}M files" if plan.files >= 1_000_000 else
             f"{plan.files} files" for plan in plans]  # fmt: skip
    print(f"| figure | {' | '.join(heads)} | ratio |")
    print(f"| --- | {' | '.join('---:' for _ in plans)} | ---: |")
    for key in results[0]:
        values = [result.get(key, float("nan")) for result in results]
        ratio = values[-1] / values[0] if values[0] else float("nan")
        print(f"| {key} | {' | '.join(f'{v:,.2f}' for v in values)} | {ratio:.2f} |")


def main(argv: list[str] | None = None) -> int:
    """Build the stores, measure each, write and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, required=True, help="where the JSON result goes")
    parser.add_argument("--data", type=Path, default=default_data().parent, help="the stores")
    parser.add_argument("--plans", default=PLANS, metavar="PROJECTS:FILES,…")
    parser.add_argument("--redis", metavar="URL", help="the Redis store, in this server")
    arguments = parser.parse_args(argv)
    plans = []
    for number, text in enumerate(arguments.plans.split(","), 1):
        projects, files = (int(n) for n in text.split(":"))
        redis = None if arguments.redis is None else f"{arguments.redis.rstrip('/')}/{number}"
        plans.append(Plan(projects, files, redis=redis))
    stores = []
    for plan in plans:
        kind = "store" if plan.redis is None else "redis-store"
        data = arguments.data / f"{kind}-{plan.projects}-{plan.files}"
        built = build(data, plan)
        _add_admin(data, plan)
        stores.append((plan, data, built.seconds))
    smallest_largest = pages_of(plans[0]).largest_files
    same = [same_size(plan, smallest_largest) for plan in plans]
    document: dict[str, Any] = {
        "load_at_start": os.getloadavg()[0], "backend": "redis" if arguments.redis else "sqlite",
        "stores": [],
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="public-scale-") as scratch:
        for (plan, data, seconds), (same_name, same_files) in zip(stores, same, strict=True):
            pages = pages_of(plan)
            found = measure(data, pages, Path(scratch), plan)
            document["stores"].append({
                "projects": plan.projects, "files": plan.files, "build_s": seconds,
                "typical": [pages.typical, pages.typical_files],
                "largest": [pages.largest, pages.largest_files],
                "same size": [same_name, same_files],
                "found": found, "figures": _figures(found),
            })  # fmt: skip
        side_by_side = interleaved(
            [
                (data, pages_of(plan), plan, name)
                for (plan, data, _seconds), (name, _files) in zip(stores, same, strict=True)
            ],
            Path(scratch),
        )
        for store, figures in zip(document["stores"], side_by_side, strict=True):
            store["found"]["interleaved"] = figures
            store["figures"] = _figures(store["found"])
    document["load_at_end"] = os.getloadavg()[0]
    arguments.out.write_text(json.dumps(document, indent=2) + "\n")
    print_table(plans, [store["figures"] for store in document["stores"]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
