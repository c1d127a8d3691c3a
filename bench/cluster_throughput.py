"""Cluster throughput: one node on SQLite + files, one and two nodes on Redis + S3, in one run.

Each deployment starts empty (a fresh data directory, or a fresh Redis and
SeaweedFS S3), behind the same plain nginx (round-robin over its nodes, no cache,
so every request reaches a node and one node and two are compared through the
same hop). Then, against each in turn:

1. uploads: ``--clients`` connections posting distinct tiny wheels for
   ``--seconds`` (uploads/s, p50, p99), then ``--sequential`` uploads one after
   another on one connection (p50, p99);
2. round trips: Redis commands (``INFO commandstats`` deltas) and S3 requests (the
   SeaweedFS gateway's request counter) per upload, over ``ROUND_TRIP_UPLOADS``
   sequential uploads, and per warm read of each page kind;
3. reads: wrk on a 30-file project page (HTML and PEP 691 JSON), the root
   listing and a download, each warmed then loaded for ``--duration``.

The CPU time of every process (nodes, nginx, Redis, SeaweedFS) is read from /proc
around the upload and read phases, per operation: what bounds the figures.

With ``--table RUN.json …`` it only prints the tables of earlier runs (medians,
with the range of the runs). With ``--src DIR`` the Redis + S3 deployments also run
the code of another checkout's ``src`` (``git archive COMMIT src | tar -x -C DIR``), so a change's
before and after are measured in the same run. Writes JSON and prints a table.

    python bench/cluster_throughput.py [--seconds 15] [--duration 8s] [--src DIR] [--out F]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from corpus import JSON_TYPE, Layout, make_wheel, work_dir
from measure_upload import _post_all, multipart_body
from measure_wrk import Endpoint, Load, run_wrk
from run import machine
from servers import (
    LOOPBACK,
    MINISTRY,
    PASSWORD,
    USER,
    MinistryCluster,
    SeaweedS3,
    ServerError,
    descendants,
    free_port,
    ministry_cli,
    ministry_environment,
    nginx_command,
    render_nginx,
)

#: The project whose page is read: this many tiny wheels, one release each.
PAGE_FILES = 30
PAGE_PROJECT = "pageproj"
ROUND_TRIP_UPLOADS = 20
ROUND_TRIP_READS = 50
READS = ("page_html", "page_json", "root", "download")


class MeteredSeaweed(SeaweedS3):
    """SeaweedFS with its Prometheus metrics on, to count the S3 requests it answered."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.metrics_port = 0

    def command(self) -> list[str]:
        self.metrics_port = free_port()
        return [*super().command(), f"-metricsPort={self.metrics_port}", f"-metricsIp={LOOPBACK}"]

    def requests(self) -> dict[str, int]:
        """S3 requests answered so far, by action (``SeaweedFS_s3_request_total``)."""
        url = f"http://{LOOPBACK}:{self.metrics_port}/metrics"
        text = httpx.get(url, timeout=10, trust_env=False).text
        counts: dict[str, int] = {}
        for line in text.splitlines():
            if line.startswith("SeaweedFS_s3_request_total{"):
                found = re.search(r'type="([^"]+)"', line)
                action = found[1] if found else "?"
                counts[action] = counts.get(action, 0) + int(float(line.rsplit(" ", 1)[1]))
        return counts


def redis_commands(port: int) -> dict[str, int]:
    """Calls per command so far (``INFO commandstats``, raw RESP: no client library)."""
    with socket.create_connection((LOOPBACK, port), timeout=10) as connection:
        connection.sendall(b"INFO commandstats\r\n")
        data = b""
        while True:
            data += connection.recv(65536)
            header, _, rest = data.partition(b"\r\n")
            if header.startswith(b"$") and len(rest) >= int(header[1:]):
                break
    counts = {}
    for name, calls in re.findall(r"cmdstat_([a-z|_]+):calls=(\d+)", rest.decode()):
        if name != "info":
            counts[name] = int(calls)
    return counts


def _cpu(pid: int) -> float:
    """User and system CPU seconds of one process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_per(after: dict[str, float], before: dict[str, float], n: int) -> dict[str, float]:
    """CPU milliseconds per operation of each process group."""
    return {k: round((v - before.get(k, 0.0)) * 1e3 / max(n, 1), 2) for k, v in after.items()}


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    changed = {k: v - before.get(k, 0) for k, v in after.items()}
    return {k: v for k, v in sorted(changed.items()) if v}


class Deployment(MinistryCluster):
    """``nodes`` Ministry nodes on SQLite + files or on Redis + S3, behind a plain nginx."""

    def __init__(self, layout: Layout, label: str, nodes: int, shared: bool, src: Path | None):
        self.label = label  # type: ignore[misc]
        super().__init__(layout, empty=True)
        self.summary = label  # type: ignore[misc]
        self.nodes = nodes
        self.shared = shared
        self.src = src
        self.s3 = MeteredSeaweed(self.dir / "seaweedfs")
        self.node_ports: list[int] = []

    @property
    def upload_url(self) -> str:
        return self.base_url + "/legacy/"

    def environment(self) -> dict[str, str]:
        extra = self.s3.environment() if self.shared else {}
        if self.src is not None:
            extra["PYTHONPATH"] = str(self.src / "src")
        return ministry_environment(extra)

    def store_arguments(self, scratch: Path) -> list[str]:
        if self.shared:
            return [*self.store_options, "--data", str(scratch)]
        return ["--data", str(self.dir / "data")]

    def load(self) -> dict[str, Any]:
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        if self.shared:
            self.start_stores()
        return {}

    def credentials(self) -> tuple[str, str]:
        """User ``bench`` and an upload token of theirs, made with the CLI."""
        log = self.layout.logs / f"{self.dir.name}-cli.log"
        arguments = self.store_arguments(self.dir / "cli")
        env = self.environment()
        command = ["user", "add", USER, "--password-stdin", *arguments]
        ministry_cli(command, log, env=env, stdin=PASSWORD + "\n")
        output = ministry_cli(["token", "create", USER, *arguments], log, env=env)
        token = next((word for word in output.split() if word.startswith("mop_")), None)
        if token is None:
            raise ServerError(f"no token from 'ministry token create'; see {log}")
        return "__token__", token

    def launch(self) -> None:
        self.node_ports = [free_port() for _ in range(self.nodes)]
        for i, port in enumerate(self.node_ports):
            options = self.store_arguments(self.dir / f"node{i}")
            command = [MINISTRY, "serve", "--host", LOOPBACK, "--port", port, *options]
            self.spawn(f"node{i}", command, self.environment())
        for port in self.node_ports:
            self.wait(f"http://{LOOPBACK}:{port}/simple/", 180)
        self.port = free_port()
        servers = "".join(f"    server {LOOPBACK}:{p};\n" for p in self.node_ports)
        site = (
            f"upstream ministry {{\n{servers}    keepalive 32;\n}}\n"
            f"server {{\n    listen {LOOPBACK}:{self.port};\n    client_max_body_size 0;\n"
            '    proxy_http_version 1.1;\n    proxy_set_header Connection "";\n'
            "    proxy_set_header Host $http_host;\n    proxy_request_buffering off;\n"
            "    location / { proxy_pass http://ministry; }\n}\n"
        )
        self.spawn("nginx", nginx_command(render_nginx(self.dir, site)))

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time so far of each process this deployment started (nodes, nginx, stores)."""
        prefix = f"{self.dir.name}-"
        found: dict[str, float] = {}
        for proc in [*self.procs, *self.stores]:
            name = proc.name.removeprefix(prefix).removeprefix(f"{self.label}-")
            found[name] = sum(_cpu(pid) for pid in descendants(proc.popen.pid))
        return found

    def counters(self) -> dict[str, dict[str, int]]:
        if not self.shared:
            return {"redis": {}, "s3": {}}
        return {"redis": redis_commands(self.redis_port), "s3": self.s3.requests()}


@dataclass
class Wheels:
    """Tiny distinct wheels, built once under the work directory and reused by every run."""

    directory: Path

    def make(self, tag: str, count: int) -> list[Path]:
        self.directory.mkdir(parents=True, exist_ok=True)
        return [
            make_wheel(
                self.directory / f"ct{tag}{i}-1.0-py3-none-any.whl", f"ct{tag}{i}", "1.0", "x"
            )
            for i in range(count)
        ]

    def page(self) -> list[Path]:
        self.directory.mkdir(parents=True, exist_ok=True)
        return [
            make_wheel(
                self.directory / f"{PAGE_PROJECT}-{v}.0-py3-none-any.whl",
                PAGE_PROJECT,
                f"{v}.0",
                "x",
            )
            for v in range(1, PAGE_FILES + 1)
        ]


def post(url: str, auth: tuple[str, str], files: list[Path], clients: int, seconds: float):
    bodies = [multipart_body(f) for f in files]
    latencies, statuses, elapsed = asyncio.run(_post_all(url, auth, bodies, clients, seconds))
    ok = sum(n for status, n in statuses.items() if status.startswith("2"))
    ordered = sorted(latencies)
    return {
        "clients": clients,
        "ok": ok,
        "seconds": round(elapsed, 2),
        "uploads_per_s": round(ok / elapsed, 1),
        "p50_ms": round(statistics.median(ordered) * 1e3, 2) if ordered else None,
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))] * 1e3, 2) if ordered else None,
        "statuses": dict(statuses),
    }


def read_urls(base: str) -> dict[str, Endpoint]:
    page = f"{base}/simple/{PAGE_PROJECT}/"
    with httpx.Client(trust_env=False, timeout=60) as client:
        listed = client.get(page, headers={"Accept": JSON_TYPE}).json()["files"]
        download = str(httpx.URL(page).join(listed[0]["url"]))
    return {
        "page_html": Endpoint("page_html", page, "text/html"),
        "page_json": Endpoint("page_json", page, JSON_TYPE),
        "root": Endpoint("root", f"{base}/simple/", "text/html"),
        "download": Endpoint("download", download, None),
    }


def round_trips(
    deployment: Deployment, auth: tuple[str, str], wheels: Wheels, endpoints: dict[str, Endpoint]
) -> dict[str, Any]:
    """Redis commands and S3 requests per upload and per warm read of each kind."""
    if not deployment.shared:
        return {}
    files = wheels.make("rt", ROUND_TRIP_UPLOADS)
    before = deployment.counters()
    post(deployment.upload_url, auth, files, 1, 600)
    after = deployment.counters()
    found: dict[str, Any] = {"upload": per_operation(after, before, ROUND_TRIP_UPLOADS)}
    with httpx.Client(trust_env=False, timeout=60) as client:
        for key, endpoint in endpoints.items():
            headers = {"Accept": endpoint.accept} if endpoint.accept else {}
            client.get(endpoint.url, headers=headers)  # warm
            before = deployment.counters()
            for _ in range(ROUND_TRIP_READS):
                client.get(endpoint.url, headers=headers).raise_for_status()
            found[key] = per_operation(deployment.counters(), before, ROUND_TRIP_READS)
    return found


def per_operation(after: dict[str, dict[str, int]], before: dict[str, dict[str, int]], n: int):
    result: dict[str, Any] = {}
    for store in ("redis", "s3"):
        changed = delta(after[store], before[store])
        result[store] = round(sum(changed.values()) / n, 2)
        result[f"{store}_by_command"] = {k: round(v / n, 2) for k, v in changed.items()}
    return result


def measure(
    deployment: Deployment, arguments: argparse.Namespace, wheels: Wheels
) -> dict[str, Any]:
    deployment.load()
    auth = deployment.credentials()
    deployment.start()
    print(f"{deployment.label}: {deployment.base_url}", flush=True)
    result: dict[str, Any] = {"nodes": deployment.nodes, "shared": deployment.shared}
    seeded = post(deployment.upload_url, auth, wheels.page(), 1, 600)
    if seeded["ok"] != PAGE_FILES:
        raise ServerError(f"seeding {PAGE_PROJECT} failed: {seeded}")
    pool = wheels.make("c", arguments.pool)
    cpu, counters = deployment.cpu_seconds(), deployment.counters()
    result["uploads"] = post(
        deployment.upload_url, auth, pool, arguments.clients, arguments.seconds
    )
    ok = result["uploads"]["ok"]
    result["uploads"]["cpu_ms"] = cpu_per(deployment.cpu_seconds(), cpu, ok)
    result["uploads"]["per_upload"] = per_operation(deployment.counters(), counters, ok)
    print(f"  concurrent uploads {result['uploads']}", flush=True)
    result["sequential"] = post(
        deployment.upload_url, auth, wheels.make("s", arguments.sequential), 1, 600
    )
    print(f"  sequential uploads {result['sequential']}", flush=True)
    endpoints = read_urls(deployment.base_url)
    result["round_trips"] = round_trips(deployment, auth, wheels, endpoints)
    print(f"  round trips {json.dumps(result['round_trips'])}", flush=True)
    load = Load(threads=2, connections=arguments.connections, duration=arguments.duration)
    result["reads"] = {}
    for key, endpoint in endpoints.items():
        run_wrk(endpoint, Load(threads=2, connections=arguments.connections, duration="2s"))
        cpu = deployment.cpu_seconds()
        measured = run_wrk(endpoint, load)
        measured["cpu_ms"] = cpu_per(deployment.cpu_seconds(), cpu, measured["requests"])
        result["reads"][key] = measured
        print(f"  {key:10} {measured['rps']:8,.0f} req/s p50 {measured['p50_ms']} ms "
              f"p99 {measured['p99_ms']} ms non-2xx {measured['non_2xx']}", flush=True)  # fmt: skip
    return result


def _spread(values: list[float], digits: int = 1) -> str:
    """The median of the runs' figures, with the lowest and highest when there are several."""
    middle = statistics.median(values)
    if len(values) == 1:
        return f"{middle:,.{digits}f}"
    return f"{middle:,.{digits}f} ({min(values):,.{digits}f}–{max(values):,.{digits}f})"


def tables(runs: list[dict[str, Any]]) -> str:
    """Markdown tables of one or more runs' results: medians, with the range of the runs."""
    labels = list(runs[0]["deployments"])

    def cells(label: str, pick: Any, digits: int = 1) -> str:
        return _spread([pick(r["deployments"][label]) for r in runs], digits)

    lines = [
        "| deployment | uploads/s, 8 clients | p50 ms | p99 ms | sequential p50 ms "
        "| sequential p99 ms |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for label in labels:
        row = [
            cells(label, lambda d: d["uploads"]["uploads_per_s"]),
            cells(label, lambda d: d["uploads"]["p50_ms"]),
            cells(label, lambda d: d["uploads"]["p99_ms"]),
            cells(label, lambda d: d["sequential"]["p50_ms"]),
            cells(label, lambda d: d["sequential"]["p99_ms"]),
        ]
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    lines += ["", "| deployment | " + " | ".join(f"{k} req/s; p50 ms" for k in READS) + " |"]
    lines.append("| --- |" + " --- |" * len(READS))
    for label in labels:
        row = [
            cells(label, lambda d, k=k: d["reads"][k]["rps"], 0)
            + "; "
            + _spread(
                [statistics.median(r["deployments"][label]["reads"][k]["p50_ms"] for r in runs)]
            )
            for k in READS
        ]
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    lines += ["", "| two nodes against | uploads/s | " + " | ".join(READS) + " |"]
    lines.append("| --- | --- |" + " --- |" * len(READS))
    pairs = [(f"redis-s3-2{v}", f"redis-s3-1{v}") for v in ("", "-before")]
    pairs += [(f"redis-s3-2{v}", "sqlite-1") for v in ("", "-before")]
    for two, one in pairs:
        if two not in labels or one not in labels:
            continue
        figures = [lambda d: d["uploads"]["uploads_per_s"]]
        figures += [lambda d, k=k: d["reads"][k]["rps"] for k in READS]
        row = [
            _spread([pick(r["deployments"][two]) / pick(r["deployments"][one]) for r in runs], 2)
            + "×"
            for pick in figures
        ]
        lines.append(f"| {two} / {one} | " + " | ".join(row) + " |")
    lines += [
        "",
        "| deployment | Redis commands / upload (8 clients) | S3 requests / upload "
        "| Redis / page read | Redis + S3 / download | CPU ms / upload: nodes, SeaweedFS, Redis |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for label in labels:
        if not runs[0]["deployments"][label]["round_trips"]:
            continue

        def node_cpu(d: dict[str, Any]) -> float:
            return sum(v for k, v in d["uploads"]["cpu_ms"].items() if k.startswith("node"))

        row = [
            cells(label, lambda d: d["uploads"]["per_upload"]["redis"]),
            cells(label, lambda d: d["round_trips"]["upload"]["s3"]),
            cells(label, lambda d: d["round_trips"]["page_html"]["redis"]),
            cells(label, lambda d: d["round_trips"]["download"]["redis"])
            + " + "
            + cells(label, lambda d: d["round_trips"]["download"]["s3"]),
            cells(label, node_cpu)
            + ", "
            + cells(label, lambda d: d["uploads"]["cpu_ms"]["seaweedfs"])
            + ", "
            + cells(label, lambda d: d["uploads"]["cpu_ms"]["redis"]),
        ]
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="concurrent upload phase")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--pool", type=int, default=4000, help="wheels for the concurrent phase")
    parser.add_argument("--sequential", type=int, default=100)
    parser.add_argument("--duration", default="8s", help="wrk run per read endpoint")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--src", type=Path, help="another checkout's code, run as 'before'")
    parser.add_argument("--only", help="comma-separated deployment labels")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--table", type=Path, nargs="+", help="only print runs' tables")
    arguments = parser.parse_args()
    if arguments.table:
        print(tables([json.loads(path.read_text()) for path in arguments.table]))
        return
    layout = Layout(work_dir())
    for directory in (layout.logs, layout.servers):
        directory.mkdir(parents=True, exist_ok=True)
    wheels = Wheels(layout.uploads / "cluster")
    plans: list[tuple[str, int, bool, Path | None]] = [("sqlite-1", 1, False, None)]
    if arguments.src is not None:
        plans += [("redis-s3-1-before", 1, True, arguments.src)]
        plans += [("redis-s3-2-before", 2, True, arguments.src)]
    plans += [("redis-s3-1", 1, True, None), ("redis-s3-2", 2, True, None)]
    if arguments.only:
        wanted = set(arguments.only.split(","))
        plans = [p for p in plans if p[0] in wanted]
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average_at_start": os.getloadavg(),
        "arguments": {k: str(v) for k, v in vars(arguments).items()},
        "deployments": {},
    }
    for label, nodes, shared, src in plans:
        deployment = Deployment(layout, label, nodes, shared, src)
        try:
            result["deployments"][label] = measure(deployment, arguments, wheels)
        finally:
            deployment.stop()
        time.sleep(1.0)
    result["load_average_at_end"] = os.getloadavg()
    print(json.dumps(result, indent=1))
    if arguments.out:
        arguments.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
