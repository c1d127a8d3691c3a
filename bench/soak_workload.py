"""The client side of the soak test: generated wheels, the ledger, the operation mix.

Each worker thread has its own HTTP connection pool and repeats a random mix of
operations until the deadline: uploads of new wheels (distinct versions,
random payload sizes), the same bytes again (must be 200: retries are safe),
other bytes under a taken filename (must be 400 "File already exists"),
downloads (the sha256 of the body against the upload's), project pages in JSON
and HTML, the root listing, and, one at a time every so often, a real
``pip install`` of an uploaded release. Every outcome other than the one
expected is an error of that operation; bench/soak.py turns them into verdicts.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import io
import math
import random
import secrets
import subprocess
import tempfile
import threading
import time
import traceback
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from corpus import JSON_TYPE, _record_hash, _zip_entry, wheel_files
from measure_install import isolated_environment
from measure_upload import multipart_parts

#: Relative weights of the operations a worker picks (pip installs are paced apart).
MIX = {
    "upload_new": 20,
    "upload_same": 4,
    "upload_conflict": 4,
    "download": 30,
    "page_json": 20,
    "page_html": 15,
    "root_json": 2,
}
VERSIONS_PER_PROJECT = 50  # then a new project: pages stay a realistic size, projects grow
MIN_PAYLOAD = 1024
HTTP_TIMEOUT = 120.0
PIP_TIMEOUT = 300.0
DETAILS_KEPT = 30  # error details kept for the result file


@dataclass(frozen=True)
class Published:
    """A file the server accepted with 200, and how to make its bytes again."""

    project: str
    version: str
    filename: str
    seed: int
    size: int
    sha256: str
    at: float = 0.0  # monotonic time the 200 arrived

    @property
    def module(self) -> str:
        return self.project.replace("-", "_")


def wheel_bytes(project: str, version: str, seed: int, size: int) -> bytes:
    """A valid py3-none-any wheel with ``size`` random bytes; the same inputs, the same bytes."""
    files = wheel_files(project, version, "soak test")
    module = project.replace("-", "_")
    files[f"{module}/payload.bin"] = random.Random(seed).randbytes(size)
    info = f"{module}-{version}.dist-info"
    record = "".join(f"{n},{_record_hash(b)},{len(b)}\n" for n, b in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(_zip_entry(name, zipfile.ZIP_DEFLATED), data)
    return buffer.getvalue()


def wheel_filename(project: str, version: str) -> str:
    return f"{project.replace('-', '_')}-{version}-py3-none-any.whl"


class Ledger:
    """Every upload that got 200, in the order the answers came (the ground truth)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.files: list[Published] = []
        self.projects: dict[str, list[Published]] = defaultdict(list)

    def add(self, entry: Published) -> Published:
        with self.lock:
            stamped = dataclasses.replace(entry, at=time.monotonic())
            self.files.append(stamped)
            self.projects[stamped.project].append(stamped)
            return stamped

    def pick(self, rng: random.Random, settled: float) -> Published | None:
        """A random file published at least ``settled`` seconds ago, if any."""
        cutoff = time.monotonic() - settled
        with self.lock:
            count = bisect.bisect_right(self.files, cutoff, key=lambda f: f.at)
            return self.files[rng.randrange(count)] if count else None

    def of_project(self, project: str, before: float) -> list[Published]:
        """The project's files published before the monotonic time ``before``."""
        with self.lock:
            return [f for f in self.projects[project] if f.at <= before]

    def by_project(self) -> dict[str, list[Published]]:
        with self.lock:
            return {project: list(files) for project, files in self.projects.items()}


class Stats:
    """Per-operation counts, latencies and errors, shared by the workers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, Counter[str]] = defaultdict(Counter)
        self.statuses: Counter[int] = Counter()
        self.details: list[str] = []

    def timing(self, operation: str, seconds: float, status: int | None = None) -> None:
        with self.lock:
            self.latencies[operation].append(seconds)
            if status is not None:
                self.statuses[status] += 1

    def error(self, operation: str, kind: str, detail: str = "") -> None:
        with self.lock:
            self.errors[operation][kind] += 1
            if len(self.details) < DETAILS_KEPT:
                self.details.append(f"{operation}: {kind}: {detail}"[:600])

    @property
    def server_errors(self) -> int:
        with self.lock:
            return sum(n for status, n in self.statuses.items() if status >= 500)

    def summary(self) -> dict[str, Any]:
        """Count, errors and p50/p95/p99 in milliseconds per operation."""
        with self.lock:
            operations = sorted(set(self.latencies) | set(self.errors))
            return {
                op: {
                    "count": len(self.latencies[op]),
                    "errors": dict(self.errors[op]),
                    **percentiles(self.latencies[op]),
                }
                for op in operations
            }


def percentiles(samples: list[float]) -> dict[str, float | None]:
    """Nearest-rank p50, p95 and p99, in milliseconds."""
    ordered = sorted(samples)

    def rank(p: float) -> float | None:
        if not ordered:
            return None
        return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] * 1e3, 1)

    return {"p50_ms": rank(50), "p95_ms": rank(95), "p99_ms": rank(99)}


@dataclass
class Context:
    """What every worker shares: where the server is, the ledger, the clock, the pip pacing."""

    base_url: str
    simple_url: str
    upload_url: str
    auth: tuple[str, str]
    pip: list[str]
    scratch: Path
    deadline: float
    settle: float  # seconds after a 200 within which pages may not show the upload yet
    max_payload: int
    pip_every: float
    ledger: Ledger = field(default_factory=Ledger)
    stats: Stats = field(default_factory=Stats)
    stop: threading.Event = field(default_factory=threading.Event)
    pip_lock: threading.Lock = field(default_factory=threading.Lock)
    next_pip: float = 0.0

    def pip_turn(self) -> bool:
        """Whether this caller runs the next pip install (one at a time, ``pip_every`` apart)."""
        if time.monotonic() < self.next_pip or not self.pip_lock.acquire(blocking=False):
            return False
        if time.monotonic() < self.next_pip:
            self.pip_lock.release()
            return False
        return True

    def pip_done(self) -> None:
        self.next_pip = time.monotonic() + self.pip_every
        self.pip_lock.release()


class Worker(threading.Thread):
    """One client: its own connections, its own projects, the shared ledger."""

    def __init__(self, number: int, context: Context) -> None:
        super().__init__(name=f"soak-{number}", daemon=True)
        self.number = number
        self.context = context
        self.stats = context.stats
        self.rng = random.Random(secrets.randbits(64))
        self.uploads = 0
        self.operations: dict[str, Callable[[], None]] = {name: getattr(self, name) for name in MIX}

    def run(self) -> None:
        names, weights = list(MIX), list(MIX.values())
        with httpx.Client(trust_env=False, timeout=HTTP_TIMEOUT) as self.client:
            while time.monotonic() < self.context.deadline and not self.context.stop.is_set():
                if self.context.pip_turn():
                    try:
                        self.guarded("pip_install", self.pip_install)
                    finally:
                        self.context.pip_done()
                    continue
                name = self.rng.choices(names, weights)[0]
                self.guarded(name, self.operations[name])

    def guarded(self, name: str, operation: Callable[[], None]) -> None:
        """Run one operation; a fault in the benchmark itself is an error too, not an exit."""
        try:
            operation()
        except Exception as exc:
            self.stats.error(name, f"crash {type(exc).__name__}", traceback.format_exc()[-500:])

    def request(
        self, operation: str, method: str, url: str, status: int, **options: Any
    ) -> httpx.Response | None:
        """One timed request; the response if it had ``status``, else None and an error."""
        began = time.perf_counter()
        try:
            response = self.client.request(method, url, **options)
        except httpx.HTTPError as exc:
            self.stats.timing(operation, time.perf_counter() - began)
            self.stats.error(operation, type(exc).__name__, f"{url}: {exc}")
            return None
        self.stats.timing(operation, time.perf_counter() - began, response.status_code)
        if response.status_code != status:
            detail = f"{url}: {response.text[:300]}"
            self.stats.error(operation, f"status {response.status_code}", detail)
            return None
        return response

    def post_wheel(
        self, operation: str, filename: str, data: bytes, status: int
    ) -> httpx.Response | None:
        """A twine-shaped upload of ``data`` as ``filename``, with the token."""
        boundary = secrets.token_hex(16)
        head, end = multipart_parts(Path(filename), data, boundary)
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        url, auth = self.context.upload_url, self.context.auth
        body = head + data + end
        return self.request(
            operation, "POST", url, status, content=body, headers=headers, auth=auth
        )

    def upload_new(self) -> None:
        project = f"soak-w{self.number}-p{self.uploads // VERSIONS_PER_PROJECT}"
        version = f"1.0.{self.uploads}"
        self.uploads += 1
        low, high = math.log(MIN_PAYLOAD), math.log(max(MIN_PAYLOAD, self.context.max_payload))
        size = int(math.exp(self.rng.uniform(low, high)))
        seed = self.rng.getrandbits(62)
        data = wheel_bytes(project, version, seed, size)
        filename = wheel_filename(project, version)
        if self.post_wheel("upload_new", filename, data, 200) is not None:
            sha256 = hashlib.sha256(data).hexdigest()
            self.context.ledger.add(Published(project, version, filename, seed, size, sha256))

    def upload_same(self) -> None:
        entry = self.context.ledger.pick(self.rng, 0.0)
        if entry is None:
            return self.upload_new()
        data = wheel_bytes(entry.project, entry.version, entry.seed, entry.size)
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            return self.stats.error("upload_same", "rebuilt bytes differ", entry.filename)
        self.post_wheel("upload_same", entry.filename, data, 200)
        return None

    def upload_conflict(self) -> None:
        entry = self.context.ledger.pick(self.rng, 0.0)
        if entry is None:
            return self.upload_new()
        data = wheel_bytes(entry.project, entry.version, entry.seed + 1, entry.size)
        response = self.post_wheel("upload_conflict", entry.filename, data, 400)
        if response is not None and "already exists" not in response.text:
            self.stats.error("upload_conflict", "400 without 'already exists'", response.text)
        return None

    def download(self) -> None:
        entry = self.context.ledger.pick(self.rng, 0.0)
        if entry is None:
            return self.upload_new()
        url = f"{self.context.base_url}/packages/{entry.project}/{entry.filename}"
        response = self.request("download", "GET", url, 200)
        if response is not None and hashlib.sha256(response.content).hexdigest() != entry.sha256:
            self.stats.error("download", "sha256 mismatch", url)
        return None

    def page_json(self) -> None:
        """The page lists every file of the project accepted ``settle`` seconds before."""
        entry = self.context.ledger.pick(self.rng, self.context.settle)
        if entry is None:
            return self.upload_new()
        asked = time.monotonic()
        url = f"{self.context.simple_url}{entry.project}/"
        response = self.request("page_json", "GET", url, 200, headers={"Accept": JSON_TYPE})
        if response is None:
            return None
        listed = {f["filename"]: f["hashes"].get("sha256") for f in response.json()["files"]}
        for known in self.context.ledger.of_project(entry.project, asked - self.context.settle):
            if listed.get(known.filename) != known.sha256:
                self.stats.error("page_json", "accepted file missing or wrong", known.filename)
        return None

    def page_html(self) -> None:
        entry = self.context.ledger.pick(self.rng, self.context.settle)
        if entry is None:
            return self.upload_new()
        url = f"{self.context.simple_url}{entry.project}/"
        response = self.request("page_html", "GET", url, 200, headers={"Accept": "text/html"})
        link = f"{entry.filename}#sha256={entry.sha256}"
        if response is not None and link not in response.text:
            self.stats.error("page_html", "accepted file missing", entry.filename)
        return None

    def root_json(self) -> None:
        entry = self.context.ledger.pick(self.rng, self.context.settle)
        url = self.context.simple_url
        response = self.request("root_json", "GET", url, 200, headers={"Accept": JSON_TYPE})
        if response is None or entry is None:
            return
        if entry.project not in {project["name"] for project in response.json()["projects"]}:
            self.stats.error("root_json", "accepted project missing", entry.project)

    def pip_install(self) -> None:
        """``pip install --target`` of a settled release; the installed module must be it."""
        entry = self.context.ledger.pick(self.rng, self.context.settle)
        if entry is None:
            return None
        with tempfile.TemporaryDirectory(dir=self.context.scratch) as target:
            command = [
                *self.context.pip, "--isolated", "install", "--no-cache-dir", "--no-deps",
                "--no-compile", "--disable-pip-version-check", "--target", target,
                "--index-url", self.context.simple_url, f"{entry.project}=={entry.version}",
            ]  # fmt: skip
            began = time.perf_counter()
            try:
                done = subprocess.run(
                    command, capture_output=True, text=True, timeout=PIP_TIMEOUT, check=False,
                    env=isolated_environment(),
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                self.stats.timing("pip_install", time.perf_counter() - began)
                return self.stats.error("pip_install", "timeout", entry.filename)
            self.stats.timing("pip_install", time.perf_counter() - began)
            if done.returncode != 0:
                detail = (done.stderr or done.stdout)[-500:]
                return self.stats.error("pip_install", f"exit {done.returncode}", detail)
            installed = Path(target) / entry.module / "__init__.py"
            if not installed.is_file() or f'"{entry.version}"' not in installed.read_text():
                self.stats.error("pip_install", "wrong or no module installed", entry.filename)
        return None
