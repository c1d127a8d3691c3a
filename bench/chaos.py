"""Faults under load: two Ministry nodes on Redis + SeaweedFS S3, one fault per scenario.

Everything runs on 127.0.0.1: one ``redis-server`` (appendonly yes, appendfsync
always, as docs/deploy.md asks), one ``weed server -s3``, two ``ministry serve``
nodes on them. ``--uploaders`` threads upload new tiny wheels through both nodes
in turn, recording every acknowledged (200) upload's filename and sha256; two
reader threads fetch simple pages. Each scenario runs the load for a few seconds,
makes one fault in the middle, ends it, lets the load run on, then checks that
every upload acknowledged so far is listed on both nodes' simple pages and
downloads from both with its sha256.

Scenarios: ``node-kill`` (kill -9 of one node, then restarted), ``redis-kill``
(kill -9 of redis-server, restarted on the same AOF), ``redis-stop`` (SIGSTOP of
Redis for 5 s, then SIGCONT: requests must fail fast), ``s3-down`` (SeaweedFS
stopped for a few seconds, then restarted on its data).

Per scenario: uploads acknowledged, acknowledged uploads lost (this scenario's,
and earlier ones checked again), failed requests by status (or the client's
exception when there was no answer), the longest request and the longest failed
one, ``restart`` (from the fault's end, when the restart began or SIGCONT was
sent, until the part answered again) and ``recovery`` (from the fault's end until
each node had acknowledged an upload begun after it).

Not covered: Redis restarted empty and rebuilt, failover to a lagging replica.

    python bench/chaos.py [--seconds 10] [--uploaders 4] [--out chaos.json]
        [--scenarios node-kill,redis-kill,redis-stop,s3-down]

The servers are started with the test suite's launchers (tests/support), so the
script needs the repository's tests directory and the ``test`` extra installed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
for entry in (REPO / "src", REPO / "tests"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from support.backends import RedisServer, SeaweedS3  # noqa: E402
from support.distributions import make_wheel  # noqa: E402
from support.server import MinistryServer, run_cli  # noqa: E402
from support.uploads import post_upload  # noqa: E402

JSON_TYPE = {"Accept": "application/vnd.pypi.simple.v1+json"}
USER, PASSWORD = "chaos", "chaos-password-0123"
BUCKET = "chaos"
CHECK_DEADLINE = 60.0  # seconds a check may retry a file before it counts as lost
REQUEST_TIMEOUT = 30.0
SCENARIOS = ("node-kill", "redis-kill", "redis-stop", "s3-down")
REDIS_STOP_SECONDS = 5.0
S3_DOWN_SECONDS = 4.0


@dataclass
class Outcome:
    """One request as a client saw it."""

    kind: str  # "upload" or "read"
    node: int
    began: float
    ended: float
    status: str  # the HTTP status, or the exception's name when there was none


@dataclass
class Acknowledged:
    project: str
    filename: str
    sha256: str


@dataclass
class Cluster:
    """The stores and the two nodes; nodes are looked up by index, as they are restarted."""

    work: Path
    redis: RedisServer
    s3: SeaweedS3
    nodes: list[MinistryServer]
    token: str = ""

    def url(self, index: int) -> str:
        return self.nodes[index].url


@dataclass
class Load:
    """The uploaders and readers, and everything they saw."""

    cluster: Cluster
    uploaders: int
    outcomes: list[Outcome] = field(default_factory=list)
    acknowledged: list[Acknowledged] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    counter: int = 0

    def run(
        self, seconds_before: float, fault: Callable[[], tuple[float, float]], seconds_after: float
    ) -> tuple[float, float]:
        """Load, ``fault()``, more load; what ``fault()`` returned (when the fault ended, and
        when the faulty part answered again)."""
        self.stopping.clear()
        threads = [
            threading.Thread(target=self.upload_loop, args=(i,), daemon=True)
            for i in range(self.uploaders)
        ]
        threads += [
            threading.Thread(target=self.read_loop, args=(i,), daemon=True) for i in range(2)
        ]
        for thread in threads:
            thread.start()
        time.sleep(seconds_before)
        times = fault()
        time.sleep(seconds_after)
        self.stopping.set()
        for thread in threads:
            thread.join(timeout=REQUEST_TIMEOUT + 5)
        return times

    def record(self, outcome: Outcome, acked: Acknowledged | None = None) -> None:
        with self.lock:
            self.outcomes.append(outcome)
            if acked is not None:
                self.acknowledged.append(acked)

    def next_version(self) -> int:
        with self.lock:
            self.counter += 1
            return self.counter

    def upload_loop(self, uploader: int) -> None:
        project = f"chaos-u{uploader}"
        directory = self.cluster.work / "wheels" / project
        directory.mkdir(parents=True, exist_ok=True)
        auth = ("__token__", self.cluster.token)
        with httpx.Client(trust_env=False, timeout=REQUEST_TIMEOUT) as client:
            turn = uploader
            while not self.stopping.is_set():
                turn += 1
                node = turn % 2
                path = make_wheel(directory, project, f"1.{self.next_version()}")
                sha = hashlib.sha256(path.read_bytes()).hexdigest()
                began = time.monotonic()
                try:
                    url = self.cluster.url(node) + "/legacy/"
                    status = str(post_upload(client, path, auth=auth, url=url).status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                ended = time.monotonic()
                acked = Acknowledged(project, path.name, sha) if status == "200" else None
                self.record(Outcome("upload", node, began, ended, status), acked)
                path.unlink()
                if status != "200":
                    time.sleep(0.05)  # a client's pause before trying again

    def read_loop(self, reader: int) -> None:
        with httpx.Client(trust_env=False, timeout=REQUEST_TIMEOUT) as client:
            turn = reader
            while not self.stopping.is_set():
                turn += 1
                node = turn % 2
                project = f"chaos-u{turn % self.uploaders}"
                began = time.monotonic()
                try:
                    url = f"{self.cluster.url(node)}/simple/{project}/"
                    status = str(client.get(url, headers=JSON_TYPE).status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                ended = time.monotonic()
                self.record(Outcome("read", node, began, ended, status))
                if status not in ("200", "404"):
                    time.sleep(0.05)


def missing_files(cluster: Cluster, acknowledged: list[Acknowledged]) -> set[str]:
    """The acknowledged files some node does not list or serve with their sha256."""
    wanted: dict[str, dict[str, str]] = {}
    for item in acknowledged:
        wanted.setdefault(item.project, {})[item.filename] = item.sha256
    missing: set[str] = set()
    with httpx.Client(trust_env=False, timeout=REQUEST_TIMEOUT) as client:
        for index in range(len(cluster.nodes)):
            for project, files in wanted.items():
                page_url = f"{cluster.url(index)}/simple/{project}/"
                try:
                    page = client.get(page_url, headers=JSON_TYPE)
                    listed = {f["filename"]: f for f in page.json()["files"]}
                except (httpx.HTTPError, ValueError, KeyError):
                    missing.update(files)
                    continue
                for filename, sha in files.items():
                    entry = listed.get(filename)
                    if entry is None or entry.get("hashes", {}).get("sha256") != sha:
                        missing.add(filename)
                        continue
                    try:
                        body = client.get(httpx.URL(page_url).join(entry["url"]))
                    except httpx.HTTPError:
                        missing.add(filename)
                        continue
                    if body.status_code != 200 or hashlib.sha256(body.content).hexdigest() != sha:
                        missing.add(filename)
    return missing


def check(cluster: Cluster, acknowledged: list[Acknowledged]) -> set[str]:
    """Files still missing after retrying for a while (a store may still be coming back)."""
    deadline = time.monotonic() + CHECK_DEADLINE
    missing = missing_files(cluster, acknowledged)
    while missing and time.monotonic() < deadline:
        time.sleep(1.0)
        missing = missing_files(cluster, [a for a in acknowledged if a.filename in missing])
    return missing


def node_environment(redis: RedisServer, s3: SeaweedS3, redis_timeout: float) -> dict[str, str]:
    """What a node runs with (on top of this process's environment): the stores."""
    path = os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p)
    return {
        **s3.environment(BUCKET),
        "MINISTRY_DB": f"{redis.url}?prefix=chaos",
        "MINISTRY_REDIS_TIMEOUT": str(redis_timeout),
        "PYTHONPATH": path,
    }


@contextmanager
def cluster_up(work: Path, redis_timeout: float) -> Iterator[Cluster]:
    redis = RedisServer(work / "redis", options=RedisServer.DURABLE)
    s3 = SeaweedS3(work / "seaweedfs")
    nodes: list[MinistryServer] = []
    redis.start()
    try:
        s3.start()
        s3.create_bucket(BUCKET)
        environment = node_environment(redis, s3, redis_timeout)
        nodes = [MinistryServer(work / f"node{i}", environment=environment) for i in range(2)]
        for node in nodes:
            node.start()
        cluster = Cluster(work, redis, s3, nodes)
        added = run_cli(
            "user", "add", USER, "--password-stdin", "--data", str(nodes[0].data),
            stdin=PASSWORD + "\n", environment=environment,
        )  # fmt: skip
        token = run_cli(
            "token", "create", USER, "--description", "chaos", "--data", str(nodes[0].data),
            environment=environment,
        )  # fmt: skip
        if added.returncode or token.returncode:
            raise RuntimeError(f"could not make the user and token: {added.stderr}{token.stderr}")
        cluster.token = token.stdout.strip()
        yield cluster
    finally:
        for node in nodes:
            if node.running:
                node.stop(signal.SIGKILL)
        s3.stop()
        redis.stop()


# Each fault returns when it ended (the restart began) and when the part answered again.


def kill_node(cluster: Cluster) -> tuple[float, float]:
    node = cluster.nodes[1]
    node.stop(signal.SIGKILL)
    time.sleep(1.0)
    ended = time.monotonic()
    node.start()  # returns once it says it is serving
    return ended, time.monotonic()


def kill_redis(cluster: Cluster) -> tuple[float, float]:
    process = cluster.redis._process.process  # the launcher's own handle of redis-server
    assert process is not None
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    time.sleep(1.0)
    ended = time.monotonic()
    cluster.redis.resume()  # same port, same directory: it loads the AOF, then answers PING
    return ended, time.monotonic()


def stop_redis(cluster: Cluster) -> tuple[float, float]:
    pid = cluster.redis.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(REDIS_STOP_SECONDS)
    finally:
        os.kill(pid, signal.SIGCONT)
    ended = time.monotonic()
    return ended, ended


def stop_s3(cluster: Cluster) -> tuple[float, float]:
    cluster.s3.halt()
    time.sleep(S3_DOWN_SECONDS)
    ended = time.monotonic()
    cluster.s3.resume()  # same ports and data; returns once a write succeeds
    return ended, time.monotonic()


FAULTS: dict[str, Callable[[Cluster], tuple[float, float]]] = {
    "node-kill": kill_node,
    "redis-kill": kill_redis,
    "redis-stop": stop_redis,
    "s3-down": stop_s3,
}
DESCRIPTIONS = {
    "node-kill": "kill -9 of node 2, restarted after 1 s",
    "redis-kill": "kill -9 of redis-server, restarted on its AOF after 1 s",
    "redis-stop": f"SIGSTOP of redis-server for {REDIS_STOP_SECONDS:.0f} s, then SIGCONT",
    "s3-down": f"SeaweedFS stopped for {S3_DOWN_SECONDS:.0f} s, then restarted on its data",
}


def recovery(outcomes: list[Outcome], fault_end: float, nodes: int) -> float | None:
    """Seconds from the fault's end until every node has acknowledged an upload begun after it."""
    firsts = []
    for node in range(nodes):
        done = [
            o.ended
            for o in outcomes
            if o.kind == "upload" and o.node == node and o.status == "200" and o.began >= fault_end
        ]
        if not done:
            return None
        firsts.append(min(done))
    return round(max(firsts) - fault_end, 3)


def run_scenario(
    name: str, cluster: Cluster, load: Load, seconds: float, earlier: list[Acknowledged]
) -> dict[str, Any]:
    load.outcomes, load.acknowledged = [], []
    fault_end, back = load.run(seconds / 2, lambda: FAULTS[name](cluster), seconds / 2)
    outcomes, acked = list(load.outcomes), list(load.acknowledged)
    missing = check(cluster, earlier + acked)
    errors = Counter(o.status for o in outcomes if o.status not in ("200", "404"))
    latency = max((o.ended - o.began for o in outcomes), default=0.0)
    fault_errors = [o.ended - o.began for o in outcomes if o.status not in ("200", "404")]
    return {
        "scenario": name,
        "fault": DESCRIPTIONS[name],
        "uploads": sum(o.kind == "upload" for o in outcomes),
        "reads": sum(o.kind == "read" for o in outcomes),
        "acknowledged": len(acked),
        "lost": len([a for a in acked if a.filename in missing]),
        "lost_earlier": len([a for a in earlier if a.filename in missing]),
        "errors": dict(sorted(errors.items())),
        "max_latency_s": round(latency, 3),
        "max_error_latency_s": round(max(fault_errors, default=0.0), 3),
        "max_latency_by_kind_s": {
            kind: round(max((o.ended - o.began for o in outcomes if o.kind == kind), default=0), 3)
            for kind in ("upload", "read")
        },
        "restart_s": round(back - fault_end, 3),
        "recovery_s": recovery(outcomes, fault_end, len(cluster.nodes)),
    }


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| scenario | fault | acknowledged | lost | errors (by status) | max latency | "
        "max error latency | restart | recovery |",
        "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        errors = ", ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "none"
        lost = r["lost"] + r["lost_earlier"]
        recovered = "—" if r["recovery_s"] is None else f"{r['recovery_s']:.2f} s"
        lines.append(
            f"| {r['scenario']} | {r['fault']} | {r['acknowledged']} | {lost} | {errors} | "
            f"{r['max_latency_s']:.2f} s | {r['max_error_latency_s']:.2f} s | "
            f"{r['restart_s']:.2f} s | {recovered} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="load per scenario")
    parser.add_argument("--uploaders", type=int, default=4)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--redis-timeout", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    arguments = parser.parse_args(argv)
    chosen = [s.strip() for s in arguments.scenarios.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown or arguments.seconds <= 0 or arguments.uploaders < 1:
        parser.error(f"scenarios are {', '.join(SCENARIOS)}; --seconds, --uploaders positive")
    for name in [n for n in os.environ if n.startswith("MINISTRY_")]:
        del os.environ[name]  # the nodes inherit this environment: only our settings count
    work = Path(tempfile.mkdtemp(prefix="ministry-chaos-"))
    began = time.monotonic()
    results: list[dict[str, Any]] = []
    try:
        with cluster_up(work, arguments.redis_timeout) as cluster:
            load = Load(cluster, arguments.uploaders)
            earlier: list[Acknowledged] = []
            for name in chosen:
                result = run_scenario(name, cluster, load, arguments.seconds, earlier)
                earlier += load.acknowledged
                results.append(result)
                print(json.dumps(result), file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "seconds": arguments.seconds,
        "uploaders": arguments.uploaders,
        "redis_timeout": arguments.redis_timeout,
        "total_seconds": round(time.monotonic() - began, 1),
        "scenarios": results,
    }
    if arguments.out is not None:
        arguments.out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(results))
    print(f"\n{report['machine']}, {report['total_seconds']} s in all")
    return 1 if any(r["lost"] or r["lost_earlier"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
