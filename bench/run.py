"""Run the benchmark: every selected server, one at a time, then the report.

For each server (all others stopped): load the corpus its normal way, start
it (launch to first 200 on the simple root), memory idle, wrk on the five
endpoints, memory, pip and uv installs, memory, stop. Then the upload
benchmark on an empty instance of each server that takes uploads, the caching
proxy (cold and warm installs through ``ministry serve --upstream`` of the
static nginx), the proxy comparison (bench/proxy_compare.py: Ministry, devpi-server
and proxpi in front of one upstream), the large-store benchmark (bench/large_store.py), and
report.py, which writes docs/benchmarks.md.

Results: ``$MINISTRY_BENCH/results/<kind>-<label>.json``. A run of every server
starts from an empty results directory; a run of some (``--servers``) replaces
only theirs, and the report says when its figures come from several runs.

    python bench/run.py [--servers a,b] [--runs 3] [--duration 10s] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import measure_install
import measure_upload
import measure_wrk
import proxy_compare
from corpus import Layout, build, local_wheel_tree, work_dir
from servers import (
    BENCH,
    MINISTRY,
    NGINX,
    PASSWORD,
    REPO,
    SERVERS,
    USER,
    MinistryProxy,
    StaticNginx,
    memory,
)

PROXY = "ministry-proxy"
LABELS = (*SERVERS, PROXY)
LARGE_STORE = BENCH / "large_store.py"
SETTLE_SECONDS = 1.0


@dataclass(frozen=True)
class Options:
    """How long and how often each measurement runs."""

    runs: int
    duration: str
    install_runs: int
    upload_seconds: float
    large_store_timeout: int

    @classmethod
    def parse(cls, arguments: argparse.Namespace) -> Options:
        if arguments.quick:
            return cls(1, "3s", 1, 3.0, arguments.large_store_timeout)
        return cls(
            arguments.runs,
            arguments.duration,
            arguments.install_runs,
            arguments.upload_seconds,
            arguments.large_store_timeout,
        )


class Recorder:
    """Writes one result file per kind and label, each stamped with the run it came from."""

    def __init__(self, layout: Layout, run_id: str) -> None:
        self.layout = layout
        self.run_id = run_id

    def save(self, kind: str, label: str, data: dict[str, Any]) -> None:
        path = self.layout.results / f"{kind}-{label}.json"
        path.write_text(json.dumps({"label": label, "run_id": self.run_id, **data}, indent=1))


@contextlib.contextmanager
def recording(errors: list[str], step: str) -> Iterator[None]:
    """Record a failed step and go on: one server's failure must not end the run."""
    try:
        yield
    except Exception as exc:
        errors.append(f"{step}: {type(exc).__name__}: {exc}"[:4000])
        print(f"  ERROR in {step}: {exc}", flush=True)
        traceback.print_exc()


def rss_mib(pids: list[int]) -> float:
    """The summed RSS of some processes (what the large-upload sampler reads)."""
    return memory(pids)["rss_mib"]


def measure_reads(layout: Layout, recorder: Recorder, label: str, options: Options) -> None:
    """Load, start, wrk, installs and memory of one server."""
    server = SERVERS[label](layout)
    manifest = json.loads(layout.manifest.read_text())
    record: dict[str, Any] = {"summary": server.summary, "errors": [], "memory": {}}
    wrk: dict[str, Any] = {"errors": []}
    installs: dict[str, Any] = {"errors": []}
    try:
        with recording(record["errors"], "load"):
            record["load"] = server.load()
            print(f"  load: {record['load']}", flush=True)
        record["startup_s"] = round(server.start(), 3)
        print(f"  started in {record['startup_s']} s: {server.simple_url}", flush=True)
        time.sleep(SETTLE_SECONDS)
        record["memory"]["idle"] = memory(server.pids())
        load = measure_wrk.Load(duration=options.duration)
        with recording(wrk["errors"], "wrk"):
            wrk.update(
                measure_wrk.measure(
                    server.simple_url, manifest["download_file"], options.runs, load
                )
            )
        record["memory"]["after_wrk"] = memory(server.pids())
        with recording(installs["errors"], "install"):
            installs.update(
                measure_install.measure(layout, server.simple_url, options.install_runs)
            )
        record["memory"]["after_install"] = memory(server.pids())
        if server.stores:
            record["memory"]["stores_after_install"] = memory(server.store_pids())
    except Exception as exc:
        record["errors"].append(f"{type(exc).__name__}: {exc}"[:4000])
        print(f"  ERROR: {exc}", flush=True)
    finally:
        server.stop()
    record["notes"] = server.notes
    recorder.save("server", label, record)
    if len(wrk) > 1 or wrk["errors"]:
        recorder.save("wrk", label, wrk)
    if len(installs) > 1 or installs["errors"]:
        recorder.save("install", label, installs)


def measure_uploads(layout: Layout, recorder: Recorder, label: str, options: Options) -> None:
    """twine, concurrent and large uploads into an empty instance of one server."""
    server = SERVERS[label](layout, empty=True)
    sets = json.loads(layout.manifest.read_text())["uploads"]
    auth = (USER, PASSWORD)
    record: dict[str, Any] = {"summary": server.summary, "errors": [], "twine": {}}
    try:
        record["load"] = server.load()
        record["startup_s"] = round(server.start(), 3)
        time.sleep(SETTLE_SECONDS)
        record["memory_idle"] = memory(server.pids())
        url = server.upload_url
        for name in ("tiny", "real"):
            with recording(record["errors"], f"twine {name}"):
                record["twine"][name] = outcome = measure_upload.twine_upload(
                    layout, sets[name], url, auth
                )
                rate = f"{outcome['seconds']} s, {outcome['files_per_s']} files/s"
                print(f"  twine {name}: {rate}, rc {outcome['rc']}", flush=True)
                if outcome["rc"] != 0:
                    record["errors"].append(f"twine {name}: {outcome.get('error', '')[-600:]}")
        with recording(record["errors"], "concurrent"):
            concurrent = measure_upload.concurrent_uploads(
                url, auth, sets["concurrent"], measure_upload.CONCURRENCY, options.upload_seconds
            )
            record["concurrent"] = concurrent
            print(
                f"  concurrent: {concurrent['uploads_per_s']} uploads/s {concurrent['statuses']}",
                flush=True,
            )
        with recording(record["errors"], "large"):
            large_file = Path(sets["large"][0])
            large = measure_upload.large_upload(url, auth, large_file, server.pids, rss_mib)
            record["large"] = large
            print(f"  large: {large}", flush=True)
        record["memory_after"] = memory(server.pids())
    except Exception as exc:
        record["errors"].append(f"{type(exc).__name__}: {exc}"[:4000])
        print(f"  ERROR: {exc}", flush=True)
    finally:
        server.stop()
    recorder.save("upload", label, record)


def measure_proxy(layout: Layout, recorder: Recorder, options: Options) -> None:
    """Cold and warm installs through Ministry proxying the static nginx, and nginx direct."""
    upstream = StaticNginx(layout)
    record: dict[str, Any] = {"summary": MinistryProxy.summary, "errors": [], "tools": {}}
    try:
        upstream.start()
        record["upstream"] = upstream.simple_url
        record["direct"] = measure_install.measure(
            layout, upstream.simple_url, options.install_runs
        )["tools"]
        for tool in measure_install.TOOLS:
            with recording(record["errors"], f"proxy {tool}"):
                record["tools"][tool] = proxy_tool(layout, upstream.simple_url, tool, options)
    except Exception as exc:
        record["errors"].append(f"{type(exc).__name__}: {exc}"[:4000])
    finally:
        upstream.stop()
    recorder.save("proxy", PROXY, record)


def proxy_tool(layout: Layout, upstream: str, tool: str, options: Options) -> dict[str, Any]:
    """One tool through a proxy with an empty cache: the first install, then the warm ones."""
    proxy = MinistryProxy(layout, upstream)
    try:
        proxy.load()
        startup = proxy.start()
        cold = measure_install.attempts(layout, tool, proxy.simple_url, 1)
        warm = measure_install.attempts(layout, tool, proxy.simple_url, options.install_runs)
        entry = {
            "startup_s": round(startup, 3),
            "cold": measure_install.runs_summary(cold),
            "warm": measure_install.runs_summary(warm),
            "memory_after": memory(proxy.pids()),
        }
    finally:
        proxy.stop()
    print(f"  {tool}: cold {entry['cold']['times_s']} warm {entry['warm']['times_s']}", flush=True)
    for error in entry["cold"]["errors"] + entry["warm"]["errors"]:
        print("    ", error[-400:], flush=True)
    return entry


def run_large_store(layout: Layout, timeout: int) -> dict[str, Any]:
    """bench/large_store.py, when it exists; its JSON is results/large-store.json."""
    out = layout.results / "large-store.json"
    if not LARGE_STORE.exists():
        return {"skipped": "bench/large_store.py is not there yet"}
    command = [sys.executable, str(LARGE_STORE), "--out", str(out)]
    began = time.perf_counter()
    with (layout.logs / "large-store.log").open("w") as log:
        try:
            done = subprocess.run(
                command, stdout=log, stderr=subprocess.STDOUT, timeout=timeout, check=False
            )
            code: int | str = done.returncode
        except subprocess.TimeoutExpired:
            code = f"timed out after {timeout} s"
    return {
        "rc": code,
        "seconds": round(time.perf_counter() - began, 1),
        "log": str(layout.logs / "large-store.log"),
    }


def version_of(venv: Path, *distributions: str) -> dict[str, str]:
    """Installed versions of distributions in a virtual environment."""
    script = (
        "import importlib.metadata as m, sys\nfor d in sys.argv[1:]:\n    print(d, m.version(d))"
    )
    python = venv / "bin" / "python"
    if not python.exists():
        return {}
    done = subprocess.run(
        [str(python), "-c", script, *distributions],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return dict(line.split(" ", 1) for line in done.stdout.splitlines())


def command_version(*command: str) -> str:
    """The version a tool prints (some print it on stderr, with other words around it)."""
    try:
        done = subprocess.run(
            list(command), capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return "not found"
    found = re.search(r"\d+\.\d+(?:\.\d+)*", done.stdout + done.stderr)
    return found[0] if found else "?"


def machine() -> dict[str, Any]:
    """What the figures depend on: cores, CPU, kernel, memory, operating system."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    release = Path("/etc/os-release")
    pretty = (
        next(
            (
                line.split("=", 1)[1].strip('"')
                for line in release.read_text().splitlines()
                if line.startswith("PRETTY_NAME=")
            ),
            "?",
        )
        if release.exists()
        else "?"
    )
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "os": pretty,
        "python": platform.python_version(),
    }


def versions(layout: Layout) -> dict[str, str]:
    """Every server and client version, for the report's header."""
    found: dict[str, str] = {}
    git = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    ministry = version_of(REPO / ".venv", "ministry-of-packages").get("ministry-of-packages", "?")
    found["ministry"] = f"{ministry} ({git.stdout.strip() or '?'})"
    found["pypiserver"] = version_of(layout.venvs / "pypiserver-bare", "pypiserver").get(
        "pypiserver", "?"
    )
    documented = version_of(
        layout.venvs / "pypiserver-gunicorn", "pypiserver", "gunicorn", "watchdog"
    )
    found.update(
        {f"{k} (gunicorn setup)" if k == "pypiserver" else k: v for k, v in documented.items()}
    )
    found.update(version_of(layout.venvs / "devpi", "devpi-server"))
    found.update(version_of(layout.venvs / "client", "pip", "uv", "twine", "devpi-client"))
    found["nginx"] = command_version(NGINX, "-v")
    found["redis-server"] = command_version("redis-server", "--version")
    found["seaweedfs"] = command_version(
        str(shutil.which("weed", path=str(MINISTRY.parent)) or "weed"), "version"
    )
    found["wrk"] = command_version("wrk", "--version")
    return found


def select(arguments: argparse.Namespace) -> list[str]:
    if not arguments.servers:
        return list(LABELS)
    chosen = [s.strip() for s in arguments.servers.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in LABELS]
    if unknown:
        raise SystemExit(f"unknown servers {unknown}; known: {', '.join(LABELS)}")
    return chosen


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--servers", help=f"comma-separated, of: {', '.join(LABELS)} (default: all)"
    )
    parser.add_argument("--runs", type=int, default=3, help="wrk runs per endpoint (median)")
    parser.add_argument("--duration", default="10s", help="one wrk run")
    parser.add_argument("--install-runs", type=int, default=3)
    parser.add_argument(
        "--upload-seconds", type=float, default=10.0, help="concurrent upload phase"
    )
    parser.add_argument("--large-store-timeout", type=int, default=3600)
    parser.add_argument(
        "--quick", action="store_true", help="1 run x 3 s, 1 install run: a try-out"
    )
    parser.add_argument("--skip-uploads", action="store_true")
    parser.add_argument("--skip-large-store", action="store_true")
    parser.add_argument("--no-report", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    arguments = parse_arguments(argv)
    options = Options.parse(arguments)
    chosen = select(arguments)
    layout = Layout(work_dir())
    for directory in (layout.results, layout.logs, layout.servers):
        directory.mkdir(parents=True, exist_ok=True)
    if not arguments.servers:
        for stale in layout.results.glob("*.json"):
            stale.unlink()
    began = time.perf_counter()
    manifest = build(layout, local_wheel_tree(), (300, 500, 5000))
    print(f"corpus: {manifest['files']} files, {manifest['projects']} projects", flush=True)
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    recorder = Recorder(layout, run_id)
    run: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["bench/run.py", *argv]),
        "options": asdict(options),
        "servers": chosen,
        "machine": machine(),
        "versions": versions(layout),
        "corpus": {
            k: manifest[k]
            for k in (
                "files",
                "projects",
                "bytes",
                "counts",
                "closure",
                "download_file",
                "download_bytes",
                "fingerprint",
            )
        },
    }
    for label in chosen:
        if label in SERVERS:
            print(f"=== {label} (reads) {datetime.now():%H:%M:%S}", flush=True)
            measure_reads(layout, recorder, label, options)
    if not arguments.skip_uploads:
        for label in chosen:
            if label in SERVERS and SERVERS[label].takes_uploads:
                print(f"=== {label} (uploads) {datetime.now():%H:%M:%S}", flush=True)
                measure_uploads(layout, recorder, label, options)
    if PROXY in chosen:
        print(f"=== {PROXY} {datetime.now():%H:%M:%S}", flush=True)
        measure_proxy(layout, recorder, options)
        print(f"=== proxy comparison {datetime.now():%H:%M:%S}", flush=True)
        compared: list[str] = []
        with recording(compared, "proxy comparison"):
            proxy_compare.main(["--rounds", str(options.install_runs), "--no-report"])
    if not arguments.skip_large_store:
        print(f"=== large store {datetime.now():%H:%M:%S}", flush=True)
        run["large_store"] = run_large_store(layout, options.large_store_timeout)
        print(f"  {run['large_store']}", flush=True)
    run["seconds"] = round(time.perf_counter() - began, 1)
    recorder.save("run", "all", run)
    if not arguments.no_report:
        import report

        report.main([])


if __name__ == "__main__":
    main()
