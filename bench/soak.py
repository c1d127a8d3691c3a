"""Soak test: many clients against one Ministry for minutes on end, then every upload checked.

Starts an empty Ministry (one node on SQLite and files, or ``--nodes 2``: two
nodes sharing Redis and S3 (SeaweedFS) behind the nginx of docs/deploy.md),
creates a user and an upload token, and runs ``--clients`` workers for
``--minutes`` (the mix is in bench/soak_workload.py) while the RSS of every
server process is sampled from /proc. Afterwards every upload that got 200 must
be on its project's JSON page with its sha256 and must download with it, and no
request may have had a 5xx. Writes ``soak.json`` and prints a summary; the exit
status is 1 when an invariant failed, 130 when interrupted.

Not a test: CI never runs it. Everything lives under ``$MINISTRY_BENCH``.

    python bench/soak.py --clients 8 --minutes 10 [--nodes 1|2] [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from corpus import JSON_TYPE, Layout, work_dir
from rich.console import Console
from rich.table import Table
from run import machine
from servers import (
    PASSWORD,
    USER,
    Ministry,
    MinistryCluster,
    Server,
    ServerError,
    descendants,
    memory,
    ministry_cli,
    ministry_environment,
)
from soak_workload import HTTP_TIMEOUT, Context, Published, Worker

PROGRESS_SECONDS = 30.0
JOIN_TIMEOUT = HTTP_TIMEOUT + 30.0
VERIFY_OPERATIONS = ("verify_page", "verify_download")


class SoakMinistry(Ministry):
    """One ``ministry serve`` on a fresh data directory of its own."""

    label = "soak-ministry"
    summary = "Ministry, one process (SQLite + files)"
    settle = 0.0  # one node answers from its own store: an upload is visible at once

    @property
    def data(self) -> Path:
        return self.dir / "data"

    def store_arguments(self) -> list[str]:
        return ["--data", str(self.data)]

    def cli_environment(self) -> dict[str, str]:
        return ministry_environment()

    def load(self) -> dict[str, Any]:
        """Nothing to import: soak() starts it on an empty directory."""
        return {}


class SoakCluster(MinistryCluster):
    """Two nodes on a fresh Redis and S3 behind the documented nginx, nothing imported."""

    label = "soak-ministry-cluster"
    summary = "two Ministry nodes on Redis + S3 (SeaweedFS) behind the nginx of docs/deploy.md"
    # docs/deploy.md: nginx shows an upload within three seconds; one more for a busy machine.
    settle = 4.0

    @property
    def data(self) -> Path:
        return self.dir / "cli"

    def store_arguments(self) -> list[str]:
        return [*self.store_options, "--data", str(self.data)]

    def cli_environment(self) -> dict[str, str]:
        return ministry_environment(self.s3.environment())

    def load(self) -> dict[str, Any]:
        """Empty stores: no corpus, unlike the benchmark's cluster."""
        self.start_stores()
        return {}


SoakServer = SoakMinistry | SoakCluster


def upload_credentials(server: SoakServer) -> tuple[str, str]:
    """User ``bench`` and a token of theirs, made with the CLI; the token's basic auth."""
    log = server.layout.logs / f"{server.dir.name}-cli.log"
    env = server.cli_environment()
    arguments = server.store_arguments()
    ministry_cli(
        ["user", "add", USER, "--password-stdin", *arguments], log, env=env, stdin=PASSWORD + "\n"
    )
    output = ministry_cli(["token", "create", USER, *arguments], log, env=env)
    token = next((word for word in output.split() if word.startswith("mop_")), None)
    if token is None:
        raise ServerError(f"no token from 'ministry token create'; see {log}")
    return "__token__", token


def pip_command(layout: Layout) -> list[str]:
    """The benchmark clients' pip (bench/setup.sh), else the pip of this interpreter."""
    pip = layout.tool("client", "pip")
    return [str(pip)] if pip.exists() else [sys.executable, "-m", "pip"]


def rss_by_process(server: Server) -> dict[str, float]:
    """RSS in MiB of each process group the server started, named without its prefix."""
    prefix = f"{server.dir.name}-"
    return {
        proc.name.removeprefix(prefix): memory(descendants(proc.popen.pid))["rss_mib"]
        for proc in [*server.procs, *server.stores]
        if proc.running
    }


def run_load(server: SoakServer, context: Context, clients: int, every: float) -> list[Any]:
    """Run the workers to the deadline, sampling memory every ``every`` seconds."""
    began = time.monotonic()
    samples = [{"t": 0.0, "rss_mib": rss_by_process(server)}]
    workers = [Worker(number, context) for number in range(clients)]
    for worker in workers:
        worker.start()
    reported = began
    try:
        while any(worker.is_alive() for worker in workers):
            context.stop.wait(every)
            now = time.monotonic()
            samples.append({"t": round(now - began, 1), "rss_mib": rss_by_process(server)})
            if not all(proc.running for proc in server.procs):
                print("a server process exited: stopping the clients", flush=True)
                context.stop.set()
            if now - reported >= PROGRESS_SECONDS:
                reported = now
                progress(context, samples[-1], now - began)
    finally:
        context.stop.set()
        for worker in workers:
            worker.join(JOIN_TIMEOUT)
    samples.append({"t": round(time.monotonic() - began, 1), "rss_mib": rss_by_process(server)})
    return samples


def progress(context: Context, sample: dict[str, Any], elapsed: float) -> None:
    summary = context.stats.summary()
    operations = sum(entry["count"] for entry in summary.values())
    errors = sum(sum(entry["errors"].values()) for entry in summary.values())
    rss = ", ".join(f"{name} {mib:.0f}" for name, mib in sample["rss_mib"].items())
    print(
        f"  {elapsed:5.0f} s: {operations} operations, {errors} errors, "
        f"{len(context.ledger.files)} files; RSS MiB: {rss}",
        flush=True,
    )


def verify_project(context: Context, project: str, files: list[Published]) -> None:
    """The project's JSON page lists every accepted file with its sha256, and each downloads."""
    stats = context.stats
    url = f"{context.simple_url}{project}/"
    with httpx.Client(trust_env=False, timeout=HTTP_TIMEOUT) as client:
        try:
            began = time.perf_counter()
            page = client.get(url, headers={"Accept": JSON_TYPE})
            stats.timing("verify_page", time.perf_counter() - began, page.status_code)
        except httpx.HTTPError as exc:
            return stats.error("verify_page", type(exc).__name__, f"{url}: {exc}")
        if page.status_code != 200:
            return stats.error("verify_page", f"status {page.status_code}", url)
        listed = {entry["filename"]: entry for entry in page.json()["files"]}
        for known in files:
            entry = listed.get(known.filename)
            if entry is None or entry["hashes"].get("sha256") != known.sha256:
                problem = "missing" if entry is None else "wrong sha256"
                stats.error("verify_page", f"accepted file {problem}", known.filename)
                continue
            verify_download(context, client, page.url.join(entry["url"]), known.sha256)
    return None


def verify_download(context: Context, client: httpx.Client, url: httpx.URL, sha256: str) -> None:
    stats = context.stats
    try:
        began = time.perf_counter()
        response = client.get(url)
        stats.timing("verify_download", time.perf_counter() - began, response.status_code)
    except httpx.HTTPError as exc:
        return stats.error("verify_download", type(exc).__name__, f"{url}: {exc}")
    if response.status_code != 200:
        return stats.error("verify_download", f"status {response.status_code}", str(url))
    if hashlib.sha256(response.content).hexdigest() != sha256:
        stats.error("verify_download", "sha256 mismatch", str(url))
    return None


def verify(context: Context, clients: int) -> None:
    """Every accepted upload, checked once the pages may show them all."""
    time.sleep(context.settle)
    projects = context.ledger.by_project()
    with ThreadPoolExecutor(max(1, clients)) as pool:
        for future in [pool.submit(verify_project, context, p, f) for p, f in projects.items()]:
            future.result()


def memory_summary(samples: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per process: RSS at the start, the end, the peak, growth overall and in the second half."""
    names = samples[0]["rss_mib"].keys()
    middle = samples[-1]["t"] / 2
    second_half = next(s for s in samples if s["t"] >= middle)
    summary = {}
    for name in names:
        values = [s["rss_mib"][name] for s in samples if name in s["rss_mib"]]
        start, end = values[0], values[-1]
        summary[name] = {
            "start": start,
            "end": end,
            "max": max(values),
            "growth": round(end - start, 1),
            "growth_second_half": round(end - second_half["rss_mib"].get(name, end), 1),
        }
    return summary


def invariants(context: Context, server: SoakServer, stayed_up: bool) -> list[dict[str, Any]]:
    """The verdicts: each with whether it held and what was seen."""
    stats = context.stats
    summary = stats.summary()
    load_errors = {
        op: entry["errors"]
        for op, entry in summary.items()
        if entry["errors"] and op not in VERIFY_OPERATIONS
    }
    files = len(context.ledger.files)
    checked = summary.get("verify_download", {}).get("count", 0)

    def verdict(name: str, ok: bool, detail: str) -> dict[str, Any]:
        return {"name": name, "ok": ok, "detail": detail}

    return [
        verdict("uploads were accepted", files > 0, f"{files} files got 200"),
        verdict(
            "every accepted upload is listed with its sha256 and downloads with it",
            not any(summary.get(op, {}).get("errors") for op in VERIFY_OPERATIONS)
            and checked == files,
            f"{checked} of {files} downloaded and matched",
        ),
        verdict("no 5xx", stats.server_errors == 0, f"{stats.server_errors} answers >= 500"),
        verdict(
            "every operation answered as expected",
            not load_errors,
            json.dumps(load_errors) if load_errors else "no errors",
        ),
        verdict("the server processes stayed up", stayed_up, server.summary),
    ]


def milliseconds(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def print_summary(result: dict[str, Any], console: Console) -> None:
    """Operations, memory and verdicts as rich tables."""
    operations = Table(title=f"Soak: {result['command']}")
    for column in ("operation", "count", "errors", "p50 ms", "p95 ms", "p99 ms"):
        operations.add_column(column, justify="left" if column == "operation" else "right")
    for name, entry in result["operations"].items():
        errors = sum(entry["errors"].values())
        kinds = ", ".join(f"{kind}: {n}" for kind, n in entry["errors"].items())
        operations.add_row(
            name,
            f"{entry['count']:,}",
            f"{errors} ({kinds})" if errors else "0",
            milliseconds(entry["p50_ms"]),
            milliseconds(entry["p95_ms"]),
            milliseconds(entry["p99_ms"]),
        )
    console.print(operations)
    rss = Table(title="RSS (MiB)")
    for column in ("process", "start", "end", "max", "growth", "growth, 2nd half"):
        rss.add_column(column, justify="left" if column == "process" else "right")
    for name, entry in result["memory"]["processes"].items():
        values = ("start", "end", "max", "growth", "growth_second_half")
        rss.add_row(name, *(f"{entry[key]:,.1f}" for key in values))
    console.print(rss)
    for check in result["invariants"]:
        mark = "[green]held[/green]" if check["ok"] else "[red]FAILED[/red]"
        console.print(f"{mark}  {check['name']}: {check['detail']}", highlight=False)


def soak(server: SoakServer, arguments: argparse.Namespace) -> dict[str, Any]:
    """Start the server, run the load, verify; the result (the server is stopped by the caller)."""
    shutil.rmtree(server.dir, ignore_errors=True)
    server.dir.mkdir(parents=True)
    server.load()
    auth = upload_credentials(server)
    startup = server.start()
    print(f"started in {startup:.1f} s: {server.simple_url}", flush=True)
    scratch = server.dir / "pip"
    scratch.mkdir()
    context = Context(
        base_url=server.base_url,
        simple_url=server.simple_url,
        upload_url=server.upload_url,
        auth=auth,
        pip=pip_command(server.layout),
        scratch=scratch,
        deadline=time.monotonic() + arguments.minutes * 60,
        settle=server.settle,
        max_payload=arguments.max_kib * 1024,
        pip_every=arguments.pip_every,
    )
    began = time.monotonic()
    samples = run_load(server, context, arguments.clients, arguments.sample_seconds)
    seconds = time.monotonic() - began
    stayed_up = all(proc.running for proc in [*server.procs, *server.stores])
    print(
        f"load done after {seconds:.0f} s; verifying {len(context.ledger.files)} files", flush=True
    )
    verify(context, arguments.clients)
    return {
        "server": server.summary,
        "nodes": arguments.nodes,
        "clients": arguments.clients,
        "minutes": arguments.minutes,
        "settle_s": server.settle,
        "seconds": round(seconds, 1),
        "files_accepted": len(context.ledger.files),
        "projects": len(context.ledger.by_project()),
        "operations": context.stats.summary(),
        "statuses": {str(k): v for k, v in sorted(context.stats.statuses.items())},
        "error_details": context.stats.details,
        "memory": {"processes": memory_summary(samples), "samples": samples},
        "invariants": invariants(context, server, stayed_up),
    }


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent client workers")
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the load runs")
    parser.add_argument("--nodes", type=int, choices=(1, 2), default=1)
    parser.add_argument("--out", type=Path, help="result directory (default: under the work dir)")
    parser.add_argument("--max-kib", type=int, default=512, help="largest random payload")
    parser.add_argument("--pip-every", type=float, default=15.0, help="seconds between pip runs")
    parser.add_argument("--sample-seconds", type=float, default=5.0, help="RSS sampling period")
    arguments = parser.parse_args(argv)
    if arguments.clients < 1 or arguments.minutes <= 0:
        parser.error("--clients must be at least 1 and --minutes more than 0")
    return arguments


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    arguments = parse_arguments(argv)
    layout = Layout(work_dir())
    for directory in (layout.logs, layout.servers):
        directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = arguments.out or layout.root / "soak" / f"{stamp}-{arguments.nodes}node"
    server: SoakServer = (SoakMinistry if arguments.nodes == 1 else SoakCluster)(layout)
    header = {
        "command": shlex.join(["bench/soak.py", *argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average_at_start": os.getloadavg(),
    }
    # Also SIGINT: a shell starts background jobs with it ignored, and Ctrl-C must still stop.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _interrupt)
    try:
        result = {**header, **soak(server, arguments)}
    except KeyboardInterrupt:
        print("interrupted: servers stopped, no result written", file=sys.stderr)
        return 130
    finally:
        server.stop()
    result["ok"] = all(check["ok"] for check in result["invariants"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps(result, indent=1))
    print_summary(result, Console())
    print(f"result: {out / 'soak.json'}; server logs: {layout.logs}/{server.dir.name}-*.log")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
