"""The servers under test: how each is loaded with the corpus, started, probed and stopped.

Every server listens on 127.0.0.1 only, on a port that was free a moment
before; every process runs in a session of its own, so that stopping a server
signals exactly the processes it started and nothing else on the machine.

Peers: ``nginx`` serving the static tree (the upper bound for reads),
``pypiserver`` (its bare default) and ``pypiserver-gunicorn`` (with its cache
extra under gunicorn, as its documentation recommends), ``devpi`` (an index
without a mirror). Ministry: ``ministry`` (one process, SQLite and files),
``ministry-2proc`` (``--processes 2``), ``ministry-nginx`` (behind the nginx
configuration of docs/deploy.md, with X-Accel-Redirect) and
``ministry-cluster`` (two nodes on Redis and S3 behind that configuration).

    python bench/servers.py serve LABEL     # load, start, print the URL, wait for Ctrl-C
    python bench/servers.py list
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import httpx
from corpus import DOWNLOAD_PROJECT, JSON_TYPE, Layout, corpus_files, work_dir

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
MINISTRY = REPO / ".venv" / "bin" / "ministry"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
DEPLOY_DOC = REPO / "docs" / "deploy.md"
LOOPBACK = "127.0.0.1"
USER, PASSWORD = "bench", "bench-password-0123"
START_TIMEOUT = 180.0
STOP_GRACE = 10.0
POLL = 0.02
LOG_TAIL = 4000


class ServerError(RuntimeError):
    """A server did not load, start or answer; the message carries the end of its log."""


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without settings that would change a server's behaviour.

    MINISTRY_* would configure Ministry behind the command line's back, and the
    proxy variables could send loopback requests elsewhere.
    """
    dropped = ("MINISTRY_", "PIP_", "UV_", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
    environment = {k: v for k, v in os.environ.items() if not k.upper().startswith(dropped)}
    environment["NO_PROXY"] = environment["no_proxy"] = f"{LOOPBACK},localhost"
    return {**environment, **(extra or {})}


def tail(path: Path) -> str:
    """The end of a log file, for error messages."""
    try:
        return path.read_bytes()[-LOG_TAIL:].decode(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"


class Proc:
    """One launched process in a session of its own, its output in a log file."""

    def __init__(self, name: str, command: Sequence[str], log: Path, env: dict[str, str]) -> None:
        self.name = name
        self.command = [str(part) for part in command]
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as handle:
            handle.write(f"$ {' '.join(self.command)}\n".encode())
            handle.flush()
            self.popen = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM the process group, SIGKILL whatever is left after ``grace`` seconds."""
        if self.running:
            self._signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=grace)
        self._signal(signal.SIGKILL)  # forked children may outlive their parent
        self.popen.wait(timeout=30)

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signum)


def descendants(root: int) -> list[int]:
    """``root`` and every process below it, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _kib(path: Path, field: str) -> int:
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def memory(pids: Sequence[int]) -> dict[str, float]:
    """RSS and PSS summed over the processes, in MiB (PSS shares pages fairly)."""
    rss = sum(_kib(Path(f"/proc/{pid}/status"), "VmRSS:") for pid in pids)
    pss = sum(_kib(Path(f"/proc/{pid}/smaps_rollup"), "Pss:") for pid in pids)
    return {"rss_mib": round(rss / 1024, 1), "pss_mib": round(pss / 1024, 1), "procs": len(pids)}


def http_ok(url: str, timeout: float = 10.0) -> bool:
    """Whether a GET answers 200 (the readiness probe)."""
    try:
        with httpx.Client(trust_env=False, timeout=timeout) as client:
            return client.get(url).status_code == 200
    except httpx.HTTPError:
        return False


def render_nginx(directory: Path, site: str) -> Path:
    """Write nginx.conf (bench/nginx/main.conf around ``site``) into ``directory``."""
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (directory / "temp" / kind).mkdir(parents=True, exist_ok=True)
    # A root master runs its workers as nobody, who may not enter private directories.
    user = "user root;\n" if os.geteuid() == 0 else ""
    text = (BENCH / "nginx" / "main.conf").read_text()
    text = text.replace("@USER@", user).replace("@DIR@", str(directory))
    path = directory / "nginx.conf"
    path.write_text(text.replace("@SITE@", site))
    return path


def nginx_command(conf: Path) -> list[str]:
    """nginx in the foreground with every path it writes under the config's directory."""
    directory = conf.parent
    return [NGINX, "-p", str(directory), "-e", str(directory / "error.log"), "-c", str(conf)]


def documented_block(marker: str) -> str | None:
    """The ``nginx`` block of docs/deploy.md that contains ``marker``, if there is one."""
    blocks = re.findall(r"```nginx\n(.*?)```", DEPLOY_DOC.read_text(), re.DOTALL)
    found = [block for block in blocks if marker in block]
    return found[0] if len(found) == 1 else None


def single_machine_site(port: int, node: int, cache: Path, blobs: Path) -> str:
    """The single-machine ``nginx`` block of docs/deploy.md, with this run's addresses."""
    text = documented_block("X-Accel-Redirect")
    if text is None:
        raise ServerError("docs/deploy.md has no nginx block with X-Accel-Redirect")
    replacements = {
        "server 127.0.0.1:8081;": f"server {LOOPBACK}:{node};",
        "listen 80;": f"listen {LOOPBACK}:{port};",
        "/var/cache/nginx/ministry": str(cache),
        "/var/lib/ministry/blobs/": f"{blobs}/",
    }
    for old, new in replacements.items():
        if text.count(old) != 1:
            raise ServerError(f"docs/deploy.md's single-machine block no longer has {old!r} once")
        text = text.replace(old, new)
    return text


def documented_site(port: int, upstreams: Sequence[int], cache: Path) -> str:
    """The multi-node ``nginx`` block of docs/deploy.md with this run's addresses put in.

    Only the upstream servers, the listen address and the cache path change,
    so the benchmark measures the configuration users are told to run.
    """
    text = documented_block("upstream ministry {")
    if text is None:
        raise ServerError("docs/deploy.md has no nginx block with 'upstream ministry {'")
    servers = "".join(f"    server {LOOPBACK}:{p};\n" for p in upstreams)
    text, count = re.subn(r"(    server 127\.0\.0\.1:\d+;\n)+", servers, text, count=1)
    replacements = {
        "listen 80;": f"listen {LOOPBACK}:{port};",
        "/var/cache/nginx/ministry": str(cache),
    }
    for old, new in replacements.items():
        if count != 1 or text.count(old) != 1:
            raise ServerError(f"docs/deploy.md no longer has the upstream servers or {old!r} once")
        text = text.replace(old, new)
    return text


class Server:
    """A server under test: its processes, its URLs, how it takes the corpus.

    ``empty=True`` prepares an empty store instead of the corpus, for the upload
    benchmark (each upload set must go into an empty target).
    """

    label: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    simple_path: ClassVar[str] = "/simple/"
    upload_path: ClassVar[str] = "/"
    takes_uploads: ClassVar[bool] = False

    def __init__(self, layout: Layout, *, empty: bool = False) -> None:
        self.layout = layout
        self.empty = empty
        suffix = "-upload" if empty else ""
        self.dir = layout.servers / f"{self.label}{suffix}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.procs: list[Proc] = []
        self.stores: list[Proc] = []  # backing stores: started with the data, not timed
        self.port = 0
        self.notes: list[str] = []

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def simple_url(self) -> str:
        return self.base_url + self.simple_path

    @property
    def upload_url(self) -> str:
        return self.base_url + self.upload_path

    @property
    def ready_url(self) -> str:
        return self.simple_url

    def load(self) -> dict[str, Any]:
        """Put the corpus (or, when empty, nothing) where the server reads it; untimed here."""
        return {}

    def launch(self) -> None:
        """Start the server's processes (without waiting)."""
        raise NotImplementedError

    def after_start(self) -> None:
        """Anything to do once the server answers (creating an upload index, say)."""

    def spawn(
        self, name: str, command: Sequence[object], env: dict[str, str] | None = None
    ) -> Proc:
        """Start one process of this server, logged to logs/<label>-<name>.log."""
        tag = f"{self.dir.name}-{name}"
        proc = Proc(
            tag,
            [str(c) for c in command],
            self.layout.logs / f"{tag}.log",
            env or clean_environment(),
        )
        self.procs.append(proc)
        return proc

    def start(self, timeout: float = START_TIMEOUT) -> float:
        """Launch and wait for the first 200 on the ready URL; returns the seconds it took."""
        began = time.perf_counter()
        self.launch()
        self.wait(self.ready_url, timeout)
        seconds = time.perf_counter() - began
        self.after_start()
        return seconds

    def wait(self, url: str, timeout: float, probe: Callable[[str], bool] = http_ok) -> None:
        """Poll ``url`` until it answers; fail early when a process exits."""
        deadline = time.monotonic() + timeout
        while not probe(url):
            for proc in self.procs + self.stores:
                if not proc.running:
                    raise ServerError(f"{proc.name} exited while starting:\n{tail(proc.log)}")
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {p.name}\n{tail(p.log)}" for p in self.procs)
                raise ServerError(f"{self.label} not ready after {timeout:.0f} s:\n{logs}")
            time.sleep(POLL)

    def pids(self) -> list[int]:
        """The server's processes (backing stores excluded), for memory figures."""
        return [pid for proc in self.procs if proc.running for pid in descendants(proc.popen.pid)]

    def store_pids(self) -> list[int]:
        """The backing stores' processes (Redis, S3), reported apart."""
        return [pid for proc in self.stores if proc.running for pid in descendants(proc.popen.pid)]

    def stop(self) -> None:
        """Stop every process this server started, the server first, then its stores."""
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()
        for proc in reversed(self.stores):
            proc.stop(grace=2.0)
        self.stores.clear()


class StaticNginx(Server):
    """nginx serving the static PEP 503/691 tree and the corpus files."""

    label = "nginx"
    summary = "nginx serving a static PEP 503/691 tree of the corpus"

    def launch(self) -> None:
        self.port = free_port()
        self.spawn("nginx", nginx_command(render_nginx(self.dir, self.site())))

    def site(self) -> str:
        """The ``server`` block of static.conf for this port and corpus."""
        site = (BENCH / "nginx" / "static.conf").read_text()
        for name, value in {
            "@PORT@": str(self.port),
            "@STATIC@": str(self.layout.static),
            "@CORPUS@": str(self.layout.corpus),
        }.items():
            site = site.replace(name, value)
        return site


class Pypiserver(Server):
    """pypiserver as ``pip install pypiserver`` gives it: its default server and backend."""

    label = "pypiserver"
    summary = "pypiserver, its default (`pypi-server run`, no extras)"
    takes_uploads = True

    @property
    def root(self) -> Path:
        """The packages directory: the corpus, or an empty one for uploads."""
        return self.dir / "packages" if self.empty else self.layout.corpus

    def load(self) -> dict[str, Any]:
        if self.empty:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root.mkdir(parents=True)
        return {"how": "reads the directory at start", "seconds": 0.0}

    def launch(self) -> None:
        self.port = free_port()
        tool = self.layout.tool("pypiserver-bare", "pypi-server")
        auth = ["-a", ".", "-P", "."] if self.empty else []
        self.spawn("server", [tool, "run", "-i", LOOPBACK, "-p", self.port, *auth, self.root])


class PypiserverGunicorn(Pypiserver):
    """pypiserver with its cache extra under gunicorn -w4, the setup its docs recommend."""

    label = "pypiserver-gunicorn"
    summary = "pypiserver[cache,passlib] under gunicorn -w4, as its docs recommend"

    def launch(self) -> None:
        self.port = free_port()
        options = f"root={str(self.root)!r}"
        if self.empty:
            options += ", authenticate=[], password_file='.'"
        gunicorn = self.layout.tool("pypiserver-gunicorn", "gunicorn")
        bind = f"{LOOPBACK}:{self.port}"
        self.spawn("server", [gunicorn, "-w4", "-b", bind, f"pypiserver:app({options})"])


class Devpi(Server):
    """devpi-server with an index of the corpus and no mirror (``--no-root-pypi``).

    The corpus goes in through twine, as users publish to devpi, which takes
    about 12 minutes; the loaded server directory is kept and reused while the
    corpus fingerprint and the devpi-server version stay the same.
    """

    label = "devpi"
    summary = "devpi-server, an index without a mirror (offline mode)"
    takes_uploads = True
    index = "bench/corpus"

    @property
    def simple_url(self) -> str:
        return f"{self.base_url}/{self.index}/+simple/"

    @property
    def upload_url(self) -> str:
        return f"{self.base_url}/{self.index}/"

    @property
    def ready_url(self) -> str:
        # An empty server gets its upload index only once it answers.
        return f"{self.base_url}/+api"

    @property
    def serverdir(self) -> Path:
        return self.dir / "serverdir"

    def devpi(self, *arguments: str) -> None:
        """Run devpi-client against this server (its own client directory)."""
        client = self.layout.tool("client", "devpi")
        command = [str(client), "--clientdir", str(self.dir / "client"), *arguments]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=clean_environment(),
        )
        if result.returncode != 0:
            raise ServerError(f"{' '.join(command)}: {result.stdout}{result.stderr}")

    def version(self) -> str:
        python = self.layout.tool("devpi", "python")
        command = [
            str(python),
            "-c",
            "import importlib.metadata as m; print(m.version('devpi-server'))",
        ]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=60, check=True
        ).stdout.strip()

    def init(self) -> None:
        shutil.rmtree(self.serverdir, ignore_errors=True)
        command = [self.layout.tool("devpi", "devpi-init"), "--serverdir", self.serverdir]
        command += ["--no-root-pypi", "--root-passwd", "root"]
        subprocess.run([str(c) for c in command], capture_output=True, timeout=300, check=True)

    def create_index(self, name: str) -> None:
        """User ``bench`` and an index without bases (so, without a mirror)."""
        self.devpi("use", self.base_url)
        self.devpi("login", "root", "--password", "root")
        self.devpi("user", "-c", USER, f"password={PASSWORD}")
        self.devpi("login", USER, "--password", PASSWORD)
        self.devpi("index", "-c", name, "bases=")

    def load(self) -> dict[str, Any]:
        if self.empty:
            self.index = "bench/upload"
            self.init()
            return {"how": "fresh server directory", "seconds": 0.0}
        stamp = self.dir / "corpus.json"
        manifest = json.loads(self.layout.manifest.read_text())
        key = {"fingerprint": manifest["fingerprint"], "devpi-server": self.version()}
        if stamp.exists():
            recorded = json.loads(stamp.read_text())
            if {k: recorded.get(k) for k in key} == key:
                return {**recorded, "cached": True}
        recorded = {**key, **self.upload_corpus(), "cached": False}
        stamp.write_text(json.dumps(recorded, indent=1))
        return recorded

    def upload_corpus(self) -> dict[str, Any]:
        """twine-upload every corpus file into a fresh server; the seconds it took."""
        stamp = self.dir / "corpus.json"
        stamp.unlink(missing_ok=True)
        self.init()
        self.launch()
        try:
            self.wait(f"{self.base_url}/+api", START_TIMEOUT)
            self.create_index(self.index)
            files = [str(p) for p in corpus_files(self.layout.corpus)]
            began = time.perf_counter()
            twine = self.layout.tool("client", "twine")
            command = [str(twine), "upload", "--non-interactive", "--disable-progress-bar"]
            command += ["--repository-url", self.upload_url, "-u", USER, "-p", PASSWORD]
            with (self.layout.logs / "devpi-corpus-upload.log").open("w") as log:
                subprocess.run(
                    command + files, stdout=log, stderr=subprocess.STDOUT, timeout=3600, check=True
                )
            return {
                "how": "twine upload",
                "files": len(files),
                "seconds": round(time.perf_counter() - began, 1),
            }
        finally:
            self.stop()

    def launch(self) -> None:
        self.port = free_port()
        tool = self.layout.tool("devpi", "devpi-server")
        command = [tool, "--serverdir", self.serverdir, "--host", LOOPBACK, "--port", self.port]
        self.spawn("server", [*command, "--offline-mode"])

    def after_start(self) -> None:
        if self.empty:
            self.create_index(self.index)


def ministry_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """What Ministry's processes run with: no stray MINISTRY_* settings, a quiet terminal."""
    return clean_environment({"NO_COLOR": "1", "COLUMNS": "200", **(extra or {})})


def ministry_cli(
    arguments: Sequence[object], log: Path, *, env: dict[str, str] | None = None, stdin: str = ""
) -> str:
    """Run one ``ministry`` administration command; its output (also logged)."""
    command = [str(MINISTRY), *(str(a) for a in arguments)]
    result = subprocess.run(
        command, input=stdin, capture_output=True, text=True, timeout=3600, check=False,
        env=env or ministry_environment(),
    )  # fmt: skip
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as handle:
        handle.write(f"$ {' '.join(command)}\n{result.stdout}{result.stderr}\n")
    if result.returncode not in (0, 1):  # 1: some files refused, listed in the output
        raise ServerError(f"{' '.join(command)} failed:\n{result.stderr[-LOG_TAIL:]}")
    return result.stdout + result.stderr


def import_corpus(
    layout: Layout, store: Sequence[str], env: dict[str, str] | None = None
) -> dict[str, Any]:
    """``ministry import`` of the corpus into the given store options; timed."""
    began = time.perf_counter()
    output = ministry_cli(
        ["import", layout.corpus, *store], layout.logs / "ministry-import.log", env=env
    )
    seconds = time.perf_counter() - began
    summary = re.search(r"(\d+) published.*?(\d+) refused", output)
    published, refused = (int(summary[1]), int(summary[2])) if summary else (None, None)
    return {
        "how": "ministry import",
        "seconds": round(seconds, 1),
        "published": published,
        "refused": refused,
    }


class Ministry(Server):
    """``ministry serve``: one process, SQLite and a directory of files."""

    label = "ministry"
    summary = "Ministry, one process (SQLite + files)"
    upload_path = "/legacy/"
    takes_uploads = True
    options: ClassVar[tuple[str, ...]] = ()
    fresh_import: ClassVar[bool] = True  # the plain variant measures the import every run

    @property
    def data(self) -> Path:
        """The data directory: the corpus store is shared by the file-store variants."""
        return self.dir / "data" if self.empty else self.layout.servers / "ministry-data"

    def load(self) -> dict[str, Any]:
        if self.empty:
            shutil.rmtree(self.data, ignore_errors=True)
            log = self.layout.logs / f"{self.dir.name}-cli.log"
            ministry_cli(
                ["user", "add", USER, "--password-stdin", "--data", self.data],
                log,
                stdin=PASSWORD + "\n",
            )
            return {"how": "fresh data directory, user bench", "seconds": 0.0}
        stamp = self.data / "bench-corpus.json"
        fingerprint = json.loads(self.layout.manifest.read_text())["fingerprint"]
        if not self.fresh_import and stamp.exists():
            recorded = json.loads(stamp.read_text())
            if recorded.get("fingerprint") == fingerprint:
                return {**recorded, "cached": True}
        shutil.rmtree(self.data, ignore_errors=True)
        recorded = {"fingerprint": fingerprint, **import_corpus(self.layout, ["--data", self.data])}
        stamp.write_text(json.dumps(recorded, indent=1))
        return {**recorded, "cached": False}

    def serve_command(self, port: int, *options: object) -> list[object]:
        return [
            MINISTRY,
            "serve",
            "--host",
            LOOPBACK,
            "--port",
            port,
            "--data",
            self.data,
            *options,
        ]

    def launch(self) -> None:
        self.port = free_port()
        self.spawn("serve", self.serve_command(self.port, *self.options), ministry_environment())


class Ministry2Proc(Ministry):
    """``ministry serve --processes 2``: one worker per core on the same port."""

    label = "ministry-2proc"
    summary = "Ministry, `--processes 2`"
    options = ("--processes", "2")
    fresh_import = False


class MinistryNginx(Ministry):
    """Ministry (``--processes 2``) behind the single-machine nginx of docs/deploy.md.

    nginx caches the simple pages for two seconds; downloads are answered by the
    node with an X-Accel-Redirect to an ``internal`` location that aliases the
    blob directory, so nginx sends the file itself.
    """

    label = "ministry-nginx"
    summary = "Ministry `--processes 2` behind the single-machine nginx of docs/deploy.md"
    takes_uploads = False
    fresh_import = False

    def __init__(self, layout: Layout, *, empty: bool = False) -> None:
        super().__init__(layout, empty=empty)
        self.node = 0

    def launch(self) -> None:
        self.node = free_port()
        options = ("--processes", "2", "--accel-redirect", "/_blobs/")
        self.spawn("serve", self.serve_command(self.node, *options), ministry_environment())
        self.port = free_port()
        site = single_machine_site(self.port, self.node, self.dir / "cache", self.data / "blobs")
        shutil.rmtree(self.dir / "cache", ignore_errors=True)
        self.spawn("nginx", nginx_command(render_nginx(self.dir, site)))

    def after_start(self) -> None:
        """Check, on the node itself, that downloads really are answered with X-Accel-Redirect."""
        node = f"http://{LOOPBACK}:{self.node}/simple/{DOWNLOAD_PROJECT}/"
        with httpx.Client(trust_env=False, timeout=30) as client:
            page = client.get(node, headers={"Accept": JSON_TYPE}).json()
            url = httpx.URL(node).join(page["files"][0]["url"])
            header = client.get(url).headers.get("x-accel-redirect")
        verdict = f"X-Accel-Redirect: {header}" if header else "no X-Accel-Redirect on a download"
        self.notes.append(f"node checked directly: {verdict}")


class MinistryCluster(Ministry):
    """Two ``ministry serve`` nodes sharing Redis and S3 (SeaweedFS) behind the documented nginx."""

    label = "ministry-cluster"
    summary = "two Ministry nodes on Redis + S3 (SeaweedFS) behind the nginx of docs/deploy.md"
    takes_uploads = False
    bucket = "bench"

    def __init__(self, layout: Layout, *, empty: bool = False) -> None:
        super().__init__(layout, empty=empty)
        self.redis_port = 0
        self.s3 = SeaweedS3(self.dir / "seaweedfs")

    @property
    def store_options(self) -> list[str]:
        redis = f"redis://{LOOPBACK}:{self.redis_port}/0?prefix=bench"
        return ["--db", redis, "--storage", f"s3://{self.bucket}/blobs"]

    def load(self) -> dict[str, Any]:
        """Fresh Redis and S3, then ``ministry import`` into them (timed)."""
        self.start_stores()
        scratch = self.dir / "import-scratch"
        shutil.rmtree(scratch, ignore_errors=True)
        options = [*self.store_options, "--data", str(scratch)]
        return import_corpus(self.layout, options, ministry_environment(self.s3.environment()))

    def start_stores(self) -> None:
        """A fresh Redis and a fresh S3 with the bucket, both answering; nothing in them."""
        self.start_redis()
        self.stores.append(self.s3.start(self.layout.logs / f"{self.label}-seaweedfs.log"))
        self.wait(self.s3.endpoint, START_TIMEOUT, lambda _: self.s3.writable())
        self.s3.create_bucket(self.bucket)

    def start_redis(self) -> None:
        directory = self.dir / "redis"
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        self.redis_port = free_port()
        command = ["redis-server", "--port", str(self.redis_port), "--bind", LOOPBACK]
        command += [
            "--dir",
            str(directory),
            "--save",
            "",
            # As docs/deploy.md recommends, and as Ministry requires to start (redis_durability).
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--daemonize",
            "no",
        ]
        log = self.layout.logs / f"{self.label}-redis.log"
        self.stores.append(Proc(f"{self.label}-redis", command, log, clean_environment()))
        self.wait(f"redis:{self.redis_port}", 60, lambda _: redis_pings(self.redis_port))

    def launch(self) -> None:
        nodes = [free_port(), free_port()]
        env = ministry_environment(self.s3.environment())
        for i, port in enumerate(nodes):
            scratch = self.dir / f"node{i}"
            options = [*self.store_options, "--data", scratch]
            self.spawn(
                f"node{i}", [MINISTRY, "serve", "--host", LOOPBACK, "--port", port, *options], env
            )
        # nginx marks a node that refuses a connection as down for 10 s (each worker on its
        # own); started before the nodes listen, it would answer 502 into the measurements.
        for port in nodes:
            self.wait(f"http://{LOOPBACK}:{port}/simple/", START_TIMEOUT)
        self.port = free_port()
        shutil.rmtree(self.dir / "cache", ignore_errors=True)
        site = documented_site(self.port, nodes, self.dir / "cache")
        self.spawn("nginx", nginx_command(render_nginx(self.dir, site)))


class MinistryProxy(Ministry):
    """Ministry as a caching proxy of another index, on an empty data directory."""

    label = "ministry-proxy"
    summary = "Ministry `--upstream` (caching proxy) of the static nginx"
    takes_uploads = False

    def __init__(self, layout: Layout, upstream: str) -> None:
        super().__init__(layout)
        self.upstream = upstream

    @property
    def data(self) -> Path:
        return self.dir / "data"

    def load(self) -> dict[str, Any]:
        shutil.rmtree(self.data, ignore_errors=True)
        return {"how": "empty data directory", "seconds": 0.0}

    def launch(self) -> None:
        self.port = free_port()
        command = self.serve_command(self.port, "--upstream", self.upstream)
        self.spawn("serve", command, ministry_environment())


def redis_pings(port: int) -> bool:
    """A raw RESP PING: no client library needed to know Redis is up."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=2.0) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class SeaweedS3:
    """SeaweedFS (master, volume, filer, S3 gateway in one ``weed server``) on loopback.

    The same command line as the test suite's launcher: every port free and
    bound to 127.0.0.1, one identity with random keys, buckets never created
    implicitly, small volumes.
    """

    region = "us-east-1"
    parts = ("master", "volume", "filer", "s3")

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.access_key = "bench" + secrets.token_hex(6)
        self.secret_key = secrets.token_urlsafe(30)
        self.ports: dict[str, int] = {}
        self.grpc: dict[str, int] = {}

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.get('s3', 0)}"

    def configure(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
        (self.directory / "config").mkdir(parents=True)
        (self.directory / "data").mkdir()
        identity = {"name": "bench", "actions": ["Admin", "Read", "Write", "List", "Tagging"]}
        identity["credentials"] = [{"accessKey": self.access_key, "secretKey": self.secret_key}]
        (self.directory / "s3.json").write_text(json.dumps({"identities": [identity]}))
        (self.directory / "config" / "master.toml").write_text(
            "[master.volume_growth]\ncopy_1 = 1\n"
        )
        aws = f"[default]\nregion = {self.region}\ns3 =\n    addressing_style = path\n"
        (self.directory / "aws-config").write_text(aws)
        (self.directory / "aws-credentials").write_text("")

    def command(self) -> list[str]:
        weed = shutil.which("weed", path=str(MINISTRY.parent)) or shutil.which("weed") or "weed"
        d = self.directory
        return [
            weed, f"-config_dir={d / 'config'}", "-logtostderr", "server", f"-dir={d / 'data'}",
            f"-ip={LOOPBACK}", f"-ip.bind={LOOPBACK}",
            *(f"-{name}.port={port}" for name, port in self.ports.items()),
            *(f"-{name}.port.grpc={port}" for name, port in self.grpc.items()),
            "-master.telemetry=false", "-master.volumeSizeLimitMB=64", "-volume.max=0",
            "-volume.preStopSeconds=0", "-filer", f"-filer.localSocket={d / 'filer.sock'}",
            "-s3", f"-s3.config={d / 's3.json'}", f"-s3.localSocket={d / 's3.sock'}",
            "-s3.autoCreateBucket=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
        ]  # fmt: skip

    def start(self, log: Path) -> Proc:
        self.configure()
        self.ports = {name: free_port() for name in self.parts}
        self.grpc = {name: free_port() for name in self.parts}
        env = clean_environment({"TMPDIR": str(self.directory)})
        return SeaweedProc("seaweedfs", self.command(), log, env, self.grpc)

    def environment(self) -> dict[str, str]:
        """The AWS settings a Ministry node needs for this server, and nothing from ~/.aws."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_CONFIG_FILE": str(self.directory / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.directory / "aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self) -> Any:
        import boto3
        import botocore.config

        config = botocore.config.Config(
            connect_timeout=10, read_timeout=30, retries={"total_max_attempts": 1},
            s3={"addressing_style": "path"}, proxies={},
        )  # fmt: skip
        return boto3.session.Session(
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
        ).client("s3", endpoint_url=self.endpoint, config=config)

    def writable(self) -> bool:
        """A real write: the gateway listens before a volume server has joined."""
        try:
            client = self.client()
            probe = "ready-" + secrets.token_hex(4)
            client.create_bucket(Bucket=probe)
            client.put_object(Bucket=probe, Key="probe", Body=b"ready")
            client.delete_object(Bucket=probe, Key="probe")
            client.delete_bucket(Bucket=probe)
        except Exception:
            return False
        return True

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)


class SeaweedProc(Proc):
    """``weed server``, which also leaves gRPC sockets behind in /tmp; removed on stop."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        log: Path,
        env: dict[str, str],
        grpc: dict[str, int],
    ) -> None:
        super().__init__(name, command, log, env)
        self.grpc = dict(grpc)

    def stop(self, grace: float = STOP_GRACE) -> None:
        super().stop(grace)
        for name, port in self.grpc.items():
            # weed fixes these paths to /tmp, whatever TMPDIR says; only ours go.
            socket_path = Path("/tmp") / f"seaweedfs-{name}-grpc-{port}.sock"  # noqa: S108
            if socket_path.is_socket():
                socket_path.unlink(missing_ok=True)


SERVERS: dict[str, type[Server]] = {
    cls.label: cls
    for cls in (
        StaticNginx,
        Pypiserver,
        PypiserverGunicorn,
        Devpi,
        Ministry,
        Ministry2Proc,
        MinistryNginx,
        MinistryCluster,
    )
}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve(label: str) -> None:
    """Load and start one server, print its URLs, and keep it up until interrupted."""
    layout = Layout(work_dir())
    server = SERVERS[label](layout)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        print(json.dumps(server.load()))
        print(f"started in {server.start():.2f} s: {server.simple_url} (pids {server.pids()})")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list")
    serving = commands.add_parser("serve")
    serving.add_argument("label", choices=sorted(SERVERS))
    arguments = parser.parse_args()
    if arguments.command == "list":
        for label, cls in SERVERS.items():
            print(f"{label:22} {cls.summary}")
    else:
        serve(arguments.label)


if __name__ == "__main__":
    sys.exit(main())
