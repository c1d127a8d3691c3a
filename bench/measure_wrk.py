"""Read throughput and latency of an index with wrk, given only its simple base URL.

Endpoints: the root listing, the 500-file project page as HTML and as PEP 691
JSON (reported as unsupported when the server does not answer JSON), a
one-file project page, and a ~1.25 MB wheel download whose URL comes from the
server's own page (so any URL layout works). Each endpoint is first fetched
and checked once (which also warms caches), then timed with 5 sequential
requests on fresh connections (unloaded latency), then loaded by wrk for
two seconds untimed (a warm-up: the first seconds of a cold nginx cache or a
worker's first requests are not the steady state), then ``runs`` times;
medians are reported.

    python bench/measure_wrk.py SIMPLE_URL [--label L] [--runs 3] [--duration 10s] [--out F]
"""

from __future__ import annotations

import argparse
import contextlib
import html.parser
import json
import re
import statistics
import subprocess
import time
import urllib.parse
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from corpus import DOWNLOAD_PROJECT, JSON_TYPE, ONE_FILE_PROJECT, WIDE_PROJECT, Layout, work_dir

HTML_ACCEPT = "text/html"
ENDPOINTS = ("root", "wide_html", "wide_json", "project", "download")
SERIAL_REQUESTS = 5
PROBE_ATTEMPTS = 3
UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


@dataclass
class Endpoint:
    """One URL under test and what its first answer looked like."""

    key: str
    url: str
    accept: str | None
    status: int = 0
    content_type: str = ""
    body_bytes: int = 0
    items: int = 0  # links or files on a page
    unsupported: str = ""
    failed: str = ""
    serial_ms: float | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)
    rps: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int = 0


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.append(dict(attrs).get("href") or "")


def links(body: bytes) -> list[str]:
    """Every ``<a href>`` of an HTML page."""
    parser = _Links()
    parser.feed(body.decode("utf-8", "replace"))
    return parser.hrefs


def probe(client: httpx.Client, endpoint: Endpoint) -> bytes | None:
    """Fetch until a 200 (a few tries); record what came back, or why it never came."""
    headers = {"Accept": endpoint.accept} if endpoint.accept else {}
    for _ in range(PROBE_ATTEMPTS):
        try:
            response = client.get(endpoint.url, headers=headers)
        except httpx.HTTPError as exc:
            endpoint.failed = f"probe failed: {type(exc).__name__}: {exc}"
            continue
        endpoint.status = response.status_code
        endpoint.content_type = response.headers.get("content-type", "")
        endpoint.body_bytes = len(response.content)
        if response.status_code == 200:
            endpoint.failed = ""
            return response.content
        endpoint.failed = f"probe failed: HTTP {response.status_code}"
    return None


def download_url(client: httpx.Client, base: str, download_file: str) -> str:
    """The download's URL as the server's own project page links it (after redirects)."""
    page = urllib.parse.urljoin(base, f"{DOWNLOAD_PROJECT}/")
    response = client.get(page, headers={"Accept": HTML_ACCEPT})
    response.raise_for_status()
    href = next(h for h in links(response.content) if download_file in urllib.parse.unquote(h))
    url = urllib.parse.urljoin(page, href.split("#", 1)[0])
    return str(client.get(url, follow_redirects=True).url)


def discover(client: httpx.Client, base: str, download_file: str) -> dict[str, Endpoint]:
    """The five endpoints, each checked; one that never answers 200 is marked failed."""
    wide = urllib.parse.urljoin(base, f"{WIDE_PROJECT}/")
    project = urllib.parse.urljoin(base, f"{ONE_FILE_PROJECT}/")
    endpoints = {
        "root": Endpoint("root", base, HTML_ACCEPT),
        "wide_html": Endpoint("wide_html", wide, HTML_ACCEPT),
        "wide_json": Endpoint("wide_json", wide, JSON_TYPE),
        "project": Endpoint("project", project, HTML_ACCEPT),
    }
    for key in ("root", "wide_html", "project"):
        if (body := probe(client, endpoints[key])) is not None:
            endpoints[key].items = len(links(body))
    json_page = endpoints["wide_json"]
    if (body := probe(client, json_page)) is not None:
        if JSON_TYPE in json_page.content_type:
            json_page.items = len(json.loads(body).get("files", []))
        else:
            answered = json_page.content_type or "?"
            json_page.unsupported = f"PEP 691 JSON not supported (answers {answered})"
    try:
        endpoints["download"] = Endpoint(
            "download", download_url(client, base, download_file), None
        )
    except (httpx.HTTPError, StopIteration) as exc:
        failure = f"no link to {download_file}: {type(exc).__name__}: {exc}"
        endpoints["download"] = Endpoint("download", base, None, failed=failure)
    else:
        probe(client, endpoints["download"])
    return endpoints


def serial_latency(endpoint: Endpoint, count: int = SERIAL_REQUESTS) -> float | None:
    """Median ms of sequential single requests, each on a new connection (no load).

    Only answers with a 200 count; None when there was none.
    """
    headers = {"Accept": endpoint.accept} if endpoint.accept else {}
    limits = httpx.Limits(max_keepalive_connections=0)
    times = []
    with httpx.Client(trust_env=False, timeout=120, limits=limits) as client:
        for _ in range(count):
            began = time.perf_counter()
            with contextlib.suppress(httpx.HTTPError):
                if client.get(endpoint.url, headers=headers).status_code == 200:
                    times.append((time.perf_counter() - began) * 1e3)
    return round(statistics.median(times), 2) if times else None


def to_ms(text: str) -> float:
    """wrk's latency figures (``812.00us``, ``1.20ms``, ``2.00s``) in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match[1]) * UNIT_MS[match[2]]


def parse_wrk(output: str) -> dict[str, Any]:
    """req/s, percentiles, counts and errors from ``wrk --latency`` output."""
    result: dict[str, Any] = {}
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    result["rps"] = float(rate[1]) if rate else 0.0
    for pct in ("50", "75", "90", "99"):
        found = re.search(rf"^\s+{pct}%\s+(\S+)", output, re.MULTILINE)
        result[f"p{pct}_ms"] = to_ms(found[1]) if found else None
    totals = re.search(r"(\d+) requests in ([\d.]+\w+), ([\d.]+\w+) read", output)
    result["requests"] = int(totals[1]) if totals else 0
    result["read"] = totals[3] if totals else ""
    sockets = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    names = ("connect", "read", "write", "timeout")
    result["socket_errors"] = (
        dict(zip(names, map(int, sockets.groups()), strict=True)) if sockets else {}
    )
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["non_2xx"] = int(non2xx[1]) if non2xx else 0
    return result


WARM_UP = "2s"


@dataclass(frozen=True)
class Load:
    """How wrk loads the server."""

    threads: int = 2
    connections: int = 32
    duration: str = "10s"
    timeout: str = "30s"

    def seconds(self) -> float:
        return to_ms(self.duration) / 1e3


def run_wrk(endpoint: Endpoint, load: Load) -> dict[str, Any]:
    """One bounded wrk run against one endpoint."""
    command = ["wrk", f"-t{load.threads}", f"-c{load.connections}", f"-d{load.duration}"]
    command += [f"--timeout={load.timeout}", "--latency"]
    if endpoint.accept:
        command += ["-H", f"Accept: {endpoint.accept}"]
    command.append(endpoint.url)
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=load.seconds() + 120, check=False
    )
    result = parse_wrk(done.stdout)
    if done.returncode != 0 or not result["requests"]:
        result["failure"] = (done.stderr or done.stdout)[-500:]
    return result


def summarize(endpoint: Endpoint) -> None:
    """Medians over the runs, and every socket error and non-2xx answer counted."""
    for key in ("rps", "p50_ms", "p99_ms"):
        values = [run[key] for run in endpoint.runs if run.get(key) is not None]
        setattr(endpoint, key, statistics.median(values) if values else None)
    endpoint.errors = sum(
        sum(run["socket_errors"].values()) + run["non_2xx"] + ("failure" in run)
        for run in endpoint.runs
    )


def measure(base: str, download_file: str, runs: int, load: Load) -> dict[str, Any]:
    """Every endpoint: probe, unloaded latency, then ``runs`` wrk runs."""
    with httpx.Client(trust_env=False, timeout=120) as client:
        endpoints = discover(client, base, download_file)
    for endpoint in endpoints.values():
        if endpoint.unsupported or endpoint.failed:
            print(f"  {endpoint.key:10} {endpoint.unsupported or endpoint.failed}", flush=True)
            continue
        endpoint.serial_ms = serial_latency(endpoint)
        # Untimed: connection pools, worker processes and caches in front (nginx's
        # proxy_cache) are filled once, so the runs measure the steady state.
        run_wrk(endpoint, replace(load, duration=WARM_UP))
        endpoint.runs = [run_wrk(endpoint, load) for _ in range(runs)]
        summarize(endpoint)
        print(
            f"  {endpoint.key:10} {endpoint.rps or 0:10,.1f} req/s  p50 {endpoint.p50_ms} ms  "
            f"p99 {endpoint.p99_ms} ms  unloaded {endpoint.serial_ms} ms  errors {endpoint.errors}",
            flush=True,
        )
    return {
        "base": base,
        "load": asdict(load),
        "runs": runs,
        "endpoints": {key: asdict(e) for key, e in endpoints.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="simple index base URL, ending in /")
    parser.add_argument("--label", default="")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", default="10s")
    parser.add_argument("--download-file", help="the wheel's filename (default: the corpus's)")
    parser.add_argument("--out")
    arguments = parser.parse_args()
    base = arguments.base if arguments.base.endswith("/") else arguments.base + "/"
    manifest = json.loads(Layout(work_dir()).manifest.read_text())
    download = arguments.download_file or manifest["download_file"]
    result = measure(base, download, arguments.runs, Load(duration=arguments.duration))
    result["label"] = arguments.label
    if arguments.out:
        Path(arguments.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
