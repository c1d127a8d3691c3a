"""How the server copes with a large store: start-up, memory and page latency at a million files.

``python bench/large_store.py --out RESULT.json [--data DIR]`` builds a synthetic store
of 100,000 projects and 1,000,000 files (``bench/synthetic.py``; reused when built
before), serves it with ``ministry serve`` and measures:

- ``startup_s``: launch until the server logs "serving";
- ``first_response_s``: launch until the first 200 of a small project's page;
- ``rss_mib_idle`` after that first page, ``rss_mib_after`` once every load below is done;
- ``root_ms``: the first ``/simple/`` (the whole project list, rendered on demand);
- the page of a typical small project under ``wrk -t2 -c32 -d10s``, against the same
  measurement on a store of 1,000 files and 100 projects built by the same code: equal
  latency is what shows that nothing on the request path grows with the store;
- in ``notes``: further ``wrk`` runs (a medium and the largest project's page, a JSON
  API page), the first and second request of each page (the first renders it), and how
  long a cached page waits while the home page or ``/packages/`` is being made (the
  time those keep the event loop from everyone else).

``--memory-only`` runs only the memory walk below (a minute, not ten): with ``--src DIR``
it measures another checkout's ``src`` (``git worktree add`` or ``git archive`` of an
older commit) on the same store, which is how a change's before and after are compared.
The walk, ``rss_mib_by_page``, serves every kind of page once, in this order, and reads
the server's resident memory (VmRSS) and its peak so far (VmHWM) after each: the home
page, ``/simple/`` in HTML and in JSON (each also once without gzip), ``/packages/``, a
project's simple page, its page for people, a search, the JSON API; then the whole walk
again, which shows what stays once everything has been made.

``--profile DIR`` also records py-spy profiles (raw collapsed stacks and a summary of
the heaviest frames) of the server starting up and of the server under load.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import Plan, build, file_counts, project_name

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
MINISTRY = ROOT / ".venv" / "bin" / "ministry"
PY_SPY = ROOT / ".venv" / "bin" / "py-spy"
LARGE = Plan(projects=100_000, files=1_000_000)
SMALL = Plan(projects=100, files=1_000)
#: Every wait is bounded: a server that is not up by then has failed.
START_TIMEOUT = 120.0
REQUEST_TIMEOUT = 120.0
WRK = ("wrk", "-t2", "-c32", "-d10s", "--latency", "--timeout", "10s")
WRK_TIMEOUT = 60.0
#: Clients ask for compressed pages; the server keeps a gzip copy of each.
HEADERS = {"Accept-Encoding": "gzip"}
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_WRK_P50 = re.compile(r"^\s*50%\s+([\d.]+)(us|ms|s|m)\b", re.MULTILINE)
_WRK_P99 = re.compile(r"^\s*99%\s+([\d.]+)(us|ms|s|m)\b", re.MULTILINE)
_WRK_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_WRK_BAD = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_WRK_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def default_data() -> Path:
    """``${MINISTRY_BENCH:-${TMPDIR:-/tmp}/ministry-bench}/large-store``."""
    base = os.environ.get("MINISTRY_BENCH") or str(
        Path(os.environ.get("TMPDIR") or "/tmp") / "ministry-bench"  # noqa: S108
    )
    return Path(base) / "large-store"


# -- the server ----------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class Response:
    """One timed request."""

    status: int
    size: int
    seconds: float


def fetch(
    port: int, path: str, timeout: float = REQUEST_TIMEOUT, headers: dict[str, str] | None = None
) -> Response:
    """GET ``path`` on a new connection, timed from connecting to the last byte."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers=HEADERS if headers is None else headers)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    return Response(response.status, len(body), time.perf_counter() - started)


class Server:
    """``ministry serve`` on a data directory, as a child process whose output goes to a log."""

    def __init__(
        self,
        data: Path,
        log: Path,
        command_prefix: tuple[str, ...] = (),
        src: Path | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        """``settings``: ``MINISTRY_*`` variables for the server (another metadata store)."""
        self.data = data
        self.log = log
        self.port = free_port()
        self.serving_after: float | None = None
        arguments = ("serve", "--data", str(data), "--port", str(self.port))
        environment = {**os.environ, **settings} if settings else None
        if src is None and not MINISTRY.exists():
            src = ROOT / "src"  # a checkout without bench/setup.sh's environment
        if src is not None:
            # Another checkout's code, run by this interpreter.
            environment = {**(environment or os.environ), "PYTHONPATH": str(src)}
            command: tuple[str, ...] = (sys.executable, "-m", "ministry", *arguments)
        else:
            command = (str(MINISTRY), *arguments)
        with log.open("wb") as output:
            self.launched = time.perf_counter()
            self.process = subprocess.Popen(
                (*command_prefix, *command),
                stdout=output,
                stderr=subprocess.STDOUT,
                env=environment,
            )
        self._watcher = threading.Thread(target=self._watch_log, daemon=True)
        self._watcher.start()

    @property
    def pid(self) -> int:
        """The server's process id (the command's own, not a wrapper's)."""
        return self.process.pid

    def _watch_log(self) -> None:
        """Note when the server logs that it serves, apart from the requests that probe it."""
        deadline = self.launched + START_TIMEOUT
        while time.perf_counter() < deadline and self.process.poll() is None:
            if b"serving" in self.log.read_bytes():
                self.serving_after = time.perf_counter() - self.launched
                return
            time.sleep(0.002)

    def _check_alive(self) -> None:
        if self.process.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the server exited ({self.process.returncode}):\n{tail}")

    def wait_until_serving(self, path: str) -> tuple[float, float]:
        """Seconds from launch to the "serving" log line, and to the first 200 on ``path``."""
        deadline = self.launched + START_TIMEOUT
        while time.perf_counter() < deadline:
            self._check_alive()
            try:
                response = fetch(self.port, path, timeout=deadline - time.perf_counter())
            except OSError:
                time.sleep(0.005)
                continue
            if response.status == 200:
                first = time.perf_counter() - self.launched
                self._watcher.join(timeout=START_TIMEOUT)
                if self.serving_after is None:
                    raise RuntimeError("the server answers but never logged that it serves")
                return self.serving_after, first
        raise TimeoutError(f"no 200 on {path} within {START_TIMEOUT:.0f} s")

    def rss_mib(self, field: str = "VmRSS") -> float:
        """Resident memory of the server process (``VmHWM``: its peak so far), in MiB."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        kib = next(
            int(line.split()[1]) for line in status.splitlines() if line.startswith(f"{field}:")
        )
        return round(kib / 1024, 1)

    def stop(self) -> None:
        """SIGTERM, a bounded wait for a clean stop, then SIGKILL."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@contextmanager
def serving(
    data: Path,
    log: Path,
    command_prefix: tuple[str, ...] = (),
    src: Path | None = None,
    settings: dict[str, str] | None = None,
) -> Iterator[Server]:
    """A server for the duration of a ``with`` block, stopped however the block ends."""
    server = Server(data, log, command_prefix, src, settings)
    try:
        yield server
    finally:
        server.stop()


# -- wrk -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """What ``wrk`` measured on one URL."""

    path: str
    p50_ms: float
    p99_ms: float
    rps: float
    failures: int

    def describe(self) -> str:
        """One line for the notes."""
        failed = f", {self.failures} failed" if self.failures else ""
        return (
            f"wrk {self.path}: p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms, "
            f"{self.rps:.0f} req/s{failed}"
        )


def _milliseconds(pattern: re.Pattern[str], output: str) -> float:
    match = pattern.search(output)
    if match is None:
        raise ValueError(f"wrk printed no {pattern.pattern!r}:\n{output}")
    return float(match[1]) * _UNITS[match[2]]


def run_wrk(port: int, path: str) -> Load:
    """``wrk -t2 -c32 -d10s`` on one path, with the client headers."""
    headers = [arg for name, value in HEADERS.items() for arg in ("-H", f"{name}: {value}")]
    url = f"http://127.0.0.1:{port}{path}"
    result = subprocess.run(
        [*WRK, *headers, url], capture_output=True, text=True, timeout=WRK_TIMEOUT, check=True
    )
    output = result.stdout
    rps = _WRK_RPS.search(output)
    if rps is None:
        raise ValueError(f"wrk printed no Requests/sec:\n{output}")
    bad = _WRK_BAD.search(output)
    errors = _WRK_ERRORS.search(output)
    failures = (int(bad[1]) if bad else 0) + (sum(map(int, errors.groups())) if errors else 0)
    return Load(
        path, _milliseconds(_WRK_P50, output), _milliseconds(_WRK_P99, output),
        float(rps[1]), failures,
    )  # fmt: skip


# -- what to ask for -----------------------------------------------------------------------


@dataclass(frozen=True)
class Pages:
    """The projects the load asks for: two typical ones, a medium one and the largest."""

    typical: str
    other_typical: str
    typical_files: int
    medium: str
    medium_files: int
    largest: str
    largest_files: int


def pages_of(plan: Plan, typical_files: int | None = None) -> Pages:
    """Pick projects by the plan's file counts (the counts the build used).

    Typical projects have ``typical_files`` files, or the median number if not given.
    """
    counts = file_counts(plan.projects, plan.files, plan.seed)
    wanted = typical_files or int(statistics.median(counts))
    typical = sorted(range(len(counts)), key=lambda i: abs(counts[i] - wanted))[:2]
    medium = min(range(len(counts)), key=lambda i: abs(counts[i] - 100))
    largest = max(range(len(counts)), key=counts.__getitem__)
    return Pages(
        project_name(typical[0]), project_name(typical[1]), counts[typical[0]],
        project_name(medium), counts[medium], project_name(largest), counts[largest],
    )  # fmt: skip


def simple(project: str) -> str:
    """The simple-API page of a project in the default index."""
    return f"/simple/{project}/"


# -- the runs ------------------------------------------------------------------------------


@dataclass
class Measurements:
    """Everything one run of the benchmark found, before it becomes the result document."""

    notes: list[str]
    startup_s: float = 0.0
    first_response_s: float = 0.0
    rss_idle: float = 0.0
    rss_after: float = 0.0
    root_ms: float = 0.0
    large_page: Load | None = None
    small_page: Load | None = None


def _cold_and_warm(server: Server, path: str, label: str, notes: list[str]) -> Response:
    """Request a page twice: the first renders it, the second should come from the cache."""
    cold, warm = fetch(server.port, path), fetch(server.port, path)
    notes.append(
        f"{label} {path}: first {cold.seconds * 1000:.1f} ms, again {warm.seconds * 1000:.1f} ms "
        f"({cold.size} bytes, status {cold.status})"
    )
    return cold


def stall(server: Server, slow_path: str, probe_path: str) -> tuple[float, float]:
    """Seconds a slow request takes, and the longest a cached page waits meanwhile.

    The second number is how long the slow request keeps the event loop from
    answering anyone else.
    """
    longest = 0.0
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(fetch, server.port, slow_path)
        while not slow.done():
            longest = max(longest, fetch(server.port, probe_path).seconds)
        return slow.result(timeout=REQUEST_TIMEOUT).seconds, longest


def measure_large(data: Path, pages: Pages, work: Path, found: Measurements) -> None:
    """Start-up, memory and load on the large store."""
    notes = found.notes
    with serving(data, work / "large.log") as server:
        found.startup_s, found.first_response_s = server.wait_until_serving(simple(pages.typical))
        time.sleep(1.0)
        found.rss_idle = server.rss_mib()
        _cold_and_warm(server, simple(pages.other_typical), "large store, typical:", notes)
        root = _cold_and_warm(server, "/simple/", "root listing", notes)
        found.root_ms = round(root.seconds * 1000, 1)
        notes.append(
            f"root /simple/ first 200 at {found.first_response_s + root.seconds:.2f} s after "
            f"launch (after the first project page); RSS then {server.rss_mib()} MiB"
        )
        for project, files in (
            (pages.medium, pages.medium_files),
            (pages.largest, pages.largest_files),
        ):
            _cold_and_warm(server, simple(project), f"large store, {files} files:", notes)
        for path in ("/", "/packages/", f"/pypi/{pages.typical}/json"):
            _cold_and_warm(server, path, "large store:", notes)
        for path in ("/", "/packages/"):
            slow, longest = stall(server, path, simple(pages.typical))
            notes.append(
                f"while {path} takes {slow * 1000:.0f} ms, a cached page waits up to "
                f"{longest * 1000:.0f} ms"
            )
        found.large_page = run_wrk(server.port, simple(pages.typical))
        notes.append(f"large store, {pages.typical_files} files: {found.large_page.describe()}")
        for path in (
            simple(pages.medium),
            simple(pages.largest),
            f"/pypi/{pages.typical}/json",
        ):
            notes.append(f"large store: {run_wrk(server.port, path).describe()}")
        fetch(server.port, "/simple/")
        found.rss_after = server.rss_mib()


def page_walk(pages: Pages) -> list[tuple[str, str, dict[str, str] | None]]:
    """Every kind of page once: what it is, its path, and the request headers (None: the
    usual client headers)."""
    plain = {"Accept-Encoding": "identity"}
    html, json_ = "application/vnd.pypi.simple.v1+html", "application/vnd.pypi.simple.v1+json"
    return [
        ("home page", "/", None),
        ("/simple/ HTML", "/simple/", {**HEADERS, "Accept": html}),
        ("/simple/ HTML, not gzipped", "/simple/", {**plain, "Accept": html}),
        ("/simple/ JSON", "/simple/", {**HEADERS, "Accept": json_}),
        ("/simple/ JSON, not gzipped", "/simple/", {**plain, "Accept": json_}),
        ("/packages/", "/packages/", None),
        ("project page (simple)", simple(pages.typical), None),
        ("project page (people)", f"/project/{pages.typical}/", None),
        ("search", "/search?q=proj", None),
        ("JSON API", f"/pypi/{pages.typical}/json", None),
    ]


def measure_memory(data: Path, pages: Pages, work: Path, src: Path | None = None) -> dict[str, Any]:
    """Resident memory after each kind of page, twice over; the first request of each
    is timed too (it is the one that builds whatever the page keeps)."""
    with serving(data, work / "memory.log", src=src) as server:
        server.wait_until_serving("/-/health")
        time.sleep(1.0)
        steps: list[dict[str, Any]] = [
            {"after": "start", "rss_mib": server.rss_mib(), "peak_mib": server.rss_mib("VmHWM")}
        ]
        for round_ in (1, 2):
            for label, path, headers in page_walk(pages):
                response = fetch(server.port, path, headers=headers)
                if response.status != 200:
                    raise RuntimeError(f"{path} answered {response.status}")
                steps.append(
                    {
                        "after": label if round_ == 1 else f"{label} (again)",
                        "ms": round(response.seconds * 1000, 1),
                        "bytes": response.size,
                        "rss_mib": server.rss_mib(),
                        "peak_mib": server.rss_mib("VmHWM"),
                    }
                )
        return {"src": str(src or ROOT / "src"), "steps": steps}


def print_memory(walk: dict[str, Any]) -> None:
    """The walk as a table."""
    print(f"code: {walk['src']}")
    print(f"{'after':38} {'ms':>9} {'bytes':>10} {'RSS MiB':>8} {'peak MiB':>8}")
    for step in walk["steps"]:
        print(
            f"{step['after']:38} {step.get('ms', ''):>9} {step.get('bytes', ''):>10} "
            f"{step['rss_mib']:>8} {step['peak_mib']:>8}"
        )


def measure_small(data: Path, pages: Pages, work: Path, found: Measurements) -> None:
    """The same typical-page load on the small store, for comparison."""
    with serving(data, work / "small.log") as server:
        startup, first = server.wait_until_serving(simple(pages.typical))
        found.notes.append(
            f"small store: serving after {startup:.2f} s, first project page at {first:.2f} s"
        )
        _cold_and_warm(server, simple(pages.other_typical), "small store, typical:", found.notes)
        found.small_page = run_wrk(server.port, simple(pages.typical))
        found.notes.append(
            f"small store, {pages.typical_files} files: {found.small_page.describe()}"
        )


# -- profiles ------------------------------------------------------------------------------


def summarize(raw: Path, top: int = 30) -> str:
    """The heaviest frames of a py-spy raw profile: by samples inside them, and on top."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples, frames = int(count), stack.split(";")
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    lines = [f"{raw.name}: {total} samples", "", "inclusive:"]
    lines += [f"{n:7d} {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    lines += ["", "own:"]
    lines += [f"{n:7d} {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    return "\n".join(lines) + "\n"


def _py_spy(*arguments: str) -> tuple[str, ...]:
    return (str(PY_SPY), "record", "--format", "raw", "--rate", "250", *arguments)


def profile(data: Path, pages: Pages, out: Path, notes: list[str]) -> None:
    """py-spy on the server while it starts, renders its first pages, and under load."""
    out.mkdir(parents=True, exist_ok=True)
    startup = out / "startup.txt"
    # py-spy starts the server, samples it for the duration, then stops it.
    prefix = _py_spy("--duration", "15", "--output", str(startup), "--")
    with serving(data, out / "startup.log", prefix) as server:
        server.wait_until_serving(simple(pages.typical))
        fetch(server.port, "/simple/")
        fetch(server.port, "/")
        server.process.wait(timeout=60)
    with serving(data, out / "load.log") as server:
        server.wait_until_serving("/-/health")
        load = out / "load.txt"
        recorder = subprocess.Popen(
            [*_py_spy("--nonblocking", "--output", str(load), "--pid", str(server.pid))],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(1.0)  # py-spy attaches
            for project in (pages.typical, pages.medium, pages.largest):
                fetch(server.port, simple(project))
            fetch(server.port, "/simple/")
            run_wrk(server.port, simple(pages.typical))
            run_wrk(server.port, f"/pypi/{pages.typical}/json")
        finally:
            recorder.send_signal(signal.SIGINT)
            recorder.wait(timeout=60)
    for raw in (startup, load):
        if raw.exists():
            (out / f"{raw.stem}-summary.txt").write_text(summarize(raw))
    notes.append(f"py-spy profiles in {out}")


# -- the result ----------------------------------------------------------------------------


def result(large: Plan, build_seconds: float, found: Measurements) -> dict[str, Any]:
    """The result document, in exactly the agreed shape."""
    assert found.large_page is not None and found.small_page is not None
    return {
        "projects": large.projects,
        "files": large.files,
        "build_seconds": build_seconds,
        "startup_s": round(found.startup_s, 3),
        "first_response_s": round(found.first_response_s, 3),
        "rss_mib_idle": found.rss_idle,
        "rss_mib_after": found.rss_after,
        "page_p50_ms": {"large": found.large_page.p50_ms, "small": found.small_page.p50_ms},
        "page_rps": {"large": found.large_page.rps, "small": found.small_page.rps},
        "root_ms": found.root_ms,
        "notes": found.notes,
    }


def main(argv: list[str] | None = None) -> int:
    """Build both stores, measure, write the result."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, required=True, help="where the JSON result goes")
    parser.add_argument("--data", type=Path, default=default_data(), help="the large store")
    parser.add_argument("--small-data", type=Path, help="the small store (default: DATA-small)")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="also record py-spy profiles")
    parser.add_argument(
        "--memory-only", action="store_true", help="only memory after each kind of page"
    )
    parser.add_argument("--src", type=Path, help="serve this checkout's src (with --memory-only)")
    parser.add_argument(
        "--plan",
        default=f"{LARGE.projects}:{LARGE.files}",
        metavar="PROJECTS:FILES",
        help="the large store's size (with --memory-only)",
    )
    arguments = parser.parse_args(argv)
    data: Path = arguments.data
    if arguments.memory_only:
        projects, files = (int(n) for n in arguments.plan.split(":"))
        plan = Plan(projects=projects, files=files)
        build(data, plan)
        with tempfile.TemporaryDirectory(prefix="large-store-") as scratch:
            walk = measure_memory(data, pages_of(plan), Path(scratch), arguments.src)
        walk.update(projects=plan.projects, files=plan.files, load=os.getloadavg()[0])
        arguments.out.write_text(json.dumps(walk, indent=2) + "\n")
        print_memory(walk)
        return 0
    small_data: Path = arguments.small_data or data.with_name(data.name + "-small")
    built = build(data, LARGE)
    build(small_data, SMALL)
    # Other work on the machine shows in every latency: say how busy it was.
    found = Measurements(notes=[f"load average at start: {os.getloadavg()[0]:.1f}"])
    if not built.built:
        found.notes.append(f"store reused: built before in {built.seconds:.1f} s")
    large_pages = pages_of(LARGE)
    small_pages = pages_of(SMALL, large_pages.typical_files)
    if large_pages.typical_files != small_pages.typical_files:
        found.notes.append(
            f"typical project: {large_pages.typical_files} files in the large store, "
            f"{small_pages.typical_files} in the small one"
        )
    with tempfile.TemporaryDirectory(prefix="large-store-") as scratch:
        measure_large(data, large_pages, Path(scratch), found)
        measure_small(small_data, small_pages, Path(scratch), found)
    if arguments.profile is not None:
        profile(data, large_pages, arguments.profile, found.notes)
    document = result(LARGE, built.seconds, found)
    arguments.out.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
