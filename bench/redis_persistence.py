"""What each way of running Redis costs an upload: the figures behind docs/deploy.md,
"Redis persistence".

One ``ministry serve`` node on a Redis metadata store and a local blob directory,
everything on 127.0.0.1, started afresh for each setting:

- ``no-aof``: snapshots only (``appendonly no``); the node runs with
  ``--redis-durability warn``, since Ministry refuses it otherwise;
- ``everysec``: ``appendonly yes``, ``appendfsync everysec`` (``warn`` too);
- ``always``: ``appendonly yes``, ``appendfsync always``, what Ministry asks for;
- ``always+wait``: the same, with a replica (also ``always``) and
  ``--redis-wait-replicas 1``, so each change waits for the replica (``WAIT``).

For each: ``--sequential`` uploads of distinct tiny wheels one after another (the
p50 and p99 of their latency, as one CI job publishing sees it), then
``--concurrency`` connections uploading for ``--seconds`` (uploads per second).
Every upload must be answered 200.

    python bench/redis_persistence.py [--sequential 200] [--concurrency 8]
        [--seconds 10] [--settings no-aof,everysec,always,always+wait] [--out F]

The servers are started with the test suite's launchers (tests/support), so the
script needs the repository's tests directory and the ``test`` extra installed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import redis

REPO = Path(__file__).resolve().parents[1]
for entry in (REPO / "src", REPO / "tests"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from support.backends import RedisServer  # noqa: E402
from support.distributions import make_wheel  # noqa: E402
from support.server import MinistryServer, run_cli  # noqa: E402
from support.uploads import post_upload  # noqa: E402

USER, PASSWORD = "bench", "bench-password-0123"
SETTINGS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "no-aof": (RedisServer.NOT_DURABLE, {"MINISTRY_REDIS_DURABILITY": "warn"}),
    "everysec": (
        ("--appendonly", "yes", "--appendfsync", "everysec"),
        {"MINISTRY_REDIS_DURABILITY": "warn"},
    ),
    "always": (RedisServer.DURABLE, {}),
    "always+wait": (RedisServer.DURABLE, {"MINISTRY_REDIS_WAIT_REPLICAS": "1"}),
}


@contextmanager
def node_on(work: Path, setting: str) -> Iterator[tuple[str, tuple[str, str]]]:
    """A node on a fresh Redis run as ``setting``: its URL and upload credentials."""
    options, extra = SETTINGS[setting]
    with ExitStack() as stack:
        primary = RedisServer(work / "redis", options=options)
        primary.start()
        stack.callback(primary.stop)
        if setting == "always+wait":
            replica = RedisServer(
                work / "replica", options=(*options, "--replicaof", "127.0.0.1", str(primary.port))
            )
            replica.start()
            stack.callback(replica.stop)
            wait_until_replicating(replica.port)
        path = os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p)
        environment = {"MINISTRY_DB": primary.url, "PYTHONPATH": path, **extra}
        node = MinistryServer(work / "node", environment=environment)
        node.start()
        stack.callback(node.stop)
        data = ["--data", str(node.data)]
        added = run_cli(
            "user", "add", USER, "--password-stdin", *data, stdin=PASSWORD + "\n",
            environment=environment,
        )  # fmt: skip
        if added.returncode:
            raise RuntimeError(f"could not add the user: {added.stderr}")
        yield node.url, (USER, PASSWORD)


def wait_until_replicating(port: int, timeout: float = 30.0) -> None:
    """Until the replica has its first copy and follows the primary."""
    replica = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + timeout
    while replica.info("replication").get("master_link_status") != "up":
        if time.monotonic() > deadline:
            raise RuntimeError("the replica did not catch up with the primary")
        time.sleep(0.1)
    replica.close()


def wheels(directory: Path, project: str, count: int) -> list[Path]:
    """``count`` distinct tiny wheels, built before any is timed."""
    directory.mkdir(parents=True, exist_ok=True)
    return [make_wheel(directory, project, f"1.{n}") for n in range(count)]


def upload(client: httpx.Client, url: str, path: Path, auth: tuple[str, str]) -> float:
    """Seconds one upload took; raises unless it was answered 200."""
    began = time.perf_counter()
    response = post_upload(client, path, auth=auth, url=url + "/legacy/")
    seconds = time.perf_counter() - began
    if response.status_code != 200:
        raise RuntimeError(f"{path.name}: {response.status_code} {response.text[:200]}")
    return seconds


def sequential(url: str, auth: tuple[str, str], files: list[Path]) -> dict[str, float]:
    with httpx.Client(trust_env=False, timeout=60) as client:
        upload(client, url, files[0], auth)  # the first pays for connections and imports
        times = sorted(upload(client, url, path, auth) for path in files[1:])
    return {
        "p50_ms": round(statistics.median(times) * 1000, 2),
        "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))] * 1000, 2),
    }


def concurrent(
    url: str, auth: tuple[str, str], work: Path, connections: int, seconds: float
) -> float:
    """Uploads per second of ``connections`` threads uploading for ``seconds``."""
    done: list[int] = [0] * connections
    stop = threading.Event()
    errors: list[str] = []

    def loop(worker: int) -> None:
        directory = work / f"c{worker}"
        directory.mkdir(parents=True, exist_ok=True)
        with httpx.Client(trust_env=False, timeout=60) as client:
            n = 0
            while not stop.is_set():
                path = make_wheel(directory, f"bench-c{worker}", f"2.{n}")
                n += 1
                try:
                    upload(client, url, path, auth)
                except (RuntimeError, httpx.HTTPError) as exc:
                    errors.append(str(exc))
                    return
                path.unlink()
                done[worker] += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(connections)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(errors[0])
    return round(sum(done) / (time.perf_counter() - began), 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    arguments = parser.parse_args(argv)
    chosen = [s.strip() for s in arguments.settings.split(",") if s.strip()]
    if set(chosen) - set(SETTINGS) or arguments.sequential < 2 or arguments.seconds <= 0:
        parser.error(f"settings are {', '.join(SETTINGS)}; --sequential ≥ 2, --seconds > 0")
    for name in [n for n in os.environ if n.startswith("MINISTRY_")]:
        del os.environ[name]  # the node inherits this environment: only our settings count
    results: list[dict[str, Any]] = []
    for setting in chosen:
        work = Path(tempfile.mkdtemp(prefix="ministry-redis-persistence-"))
        try:
            files = wheels(work / "wheels", "bench-seq", arguments.sequential + 1)
            with node_on(work, setting) as (url, auth):
                result: dict[str, Any] = {"setting": setting, **sequential(url, auth, files)}
                result["uploads_per_s"] = concurrent(
                    url, auth, work / "concurrent", arguments.concurrency, arguments.seconds
                )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        results.append(result)
        print(json.dumps(result), file=sys.stderr, flush=True)
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "sequential": arguments.sequential,
        "concurrency": arguments.concurrency,
        "seconds": arguments.seconds,
        "results": results,
    }
    if arguments.out is not None:
        arguments.out.write_text(json.dumps(report, indent=2) + "\n")
    print("| Redis runs with | sequential p50 | sequential p99 | concurrent uploads/s |")
    print("| --- | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['setting']} | {r['p50_ms']} ms | {r['p99_ms']} ms | {r['uploads_per_s']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
