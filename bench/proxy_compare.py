"""Caching proxies side by side: Ministry, devpi-server and proxpi in front of one upstream.

The upstream is nginx serving the static PEP 503/691 tree of the corpus, with an
access log, so that every request a proxy sends it is counted. Through it, each
with an empty cache: ``ministry serve --upstream``, devpi-server with a mirror
index of it (``type=mirror``, ``mirror_url=``), and proxpi (``PROXPI_INDEX_URL``);
and the clients straight from the upstream (*direct*). For each tool (pip, uv),
``--rounds`` rounds, each: one direct install, then for each proxy a fresh server
(nothing cached) with one *cold* install and ``--warm`` *warm* installs from the
cache it filled. Round by round, so that the shared machine's changing load falls
on all of them alike. Every install is the install benchmark's
(bench/measure_install.py): ten packages, about 37 distributions, into a fresh
virtual environment, with every client cache off.

``--delay-ms`` puts a relay between the proxies (and the direct clients) and the
upstream that holds each request for that long (bench/delay_relay.py), as a
network between them would; 0 measures loopback.

Results: ``$MINISTRY_BENCH/results/proxy-compare[-delayN].json``; the section of
docs/benchmarks.md is rewritten from it (bench/report.py, "Proxy comparison").

    python bench/proxy_compare.py [--rounds 3] [--warm 1] [--delay-ms 0] [--no-report]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import measure_install
from corpus import Layout, build, local_wheel_tree, work_dir
from servers import (
    BENCH,
    LOOPBACK,
    Devpi,
    MinistryProxy,
    Server,
    StaticNginx,
    clean_environment,
    free_port,
    memory,
    nginx_command,
    render_nginx,
)

#: Each request the upstream answers, one line: method, path, status, bytes sent.
LOG_FORMAT = "log_format counted '$request_method $request_uri $status $body_bytes_sent';"


class CountedUpstream(StaticNginx):
    """The static nginx of the corpus, logging every request (what the proxies ask it)."""

    label = "proxy-upstream"
    summary = "nginx serving the static tree, every request logged"

    def __init__(self, layout: Layout) -> None:
        super().__init__(layout)
        #: What the proxies and the direct installs are pointed at: this nginx, or a relay.
        self.url = ""

    @property
    def access_log(self) -> Path:
        return self.dir / "access.log"

    def launch(self) -> None:
        self.port = free_port()
        logged = f"    access_log {self.access_log} counted;\n"
        site = LOG_FORMAT + "\n" + self.site().replace("server {\n", "server {\n" + logged, 1)
        self.access_log.unlink(missing_ok=True)
        self.spawn("nginx", nginx_command(render_nginx(self.dir, site)))
        self.url = self.simple_url

    def mark(self) -> int:
        """Where the log ends now: what is logged after it is the next step's."""
        return self.access_log.stat().st_size if self.access_log.exists() else 0

    def since(self, mark: int) -> list[tuple[str, str, int, int]]:
        """The requests logged after ``mark``: (method, path, status, bytes)."""
        time.sleep(0.2)  # nginx writes its log line once the response is sent
        with self.access_log.open("rb") as log:
            log.seek(mark)
            lines = log.read().decode(errors="replace").splitlines()
        found = []
        for line in lines:
            method, path, status, sent = line.split(" ")
            found.append((method, path, int(status), int(sent)))
        return found


def counted(requests: list[tuple[str, str, int, int]]) -> dict[str, Any]:
    """What a proxy asked the upstream for: how many requests, how many distinct, repeats."""
    gets = Counter(path for method, path, _, _ in requests if method == "GET")
    return {
        "requests": len(requests),
        "distinct": len({path for _, path, _, _ in requests}),
        "repeated": sum(n - 1 for n in gets.values() if n > 1),
        "pages": sum(1 for _, path, _, _ in requests if path.startswith("/simple/")),
        "files": sum(1 for _, path, _, _ in requests if path.startswith("/packages/")),
        "metadata": sum(1 for _, path, _, _ in requests if path.endswith(".metadata")),
        "head": sum(1 for method, _, _, _ in requests if method == "HEAD"),
        "mib": round(sum(sent for _, _, _, sent in requests) / 1024 / 1024, 2),
        "errors": sum(1 for _, _, status, _ in requests if status >= 400),
    }


class DevpiMirror(Devpi):
    """devpi-server with one index, a mirror of the upstream (``type=mirror``)."""

    label = "devpi-mirror"
    summary = "devpi-server, an index with type=mirror of the upstream"
    takes_uploads = False
    index = "root/upstream"

    def __init__(self, layout: Layout, upstream: str) -> None:
        super().__init__(layout)
        self.upstream = upstream

    def load(self) -> dict[str, Any]:
        self.init()
        return {"how": "fresh server directory", "seconds": 0.0}

    def launch(self) -> None:
        self.port = free_port()
        tool = self.layout.tool("devpi", "devpi-server")
        self.spawn(
            "server", [tool, "--serverdir", self.serverdir, "--host", LOOPBACK, "--port", self.port]
        )

    def after_start(self) -> None:
        self.devpi("use", self.base_url)
        self.devpi("login", "root", "--password", "root")
        self.devpi("index", "-c", "upstream", "type=mirror", f"mirror_url={self.upstream}")


class Proxpi(Server):
    """proxpi under gunicorn: one worker (its cache lives in the process), eight threads."""

    label = "proxpi"
    summary = "proxpi under gunicorn, one worker with 8 threads"
    simple_path = "/index/"

    def __init__(self, layout: Layout, upstream: str) -> None:
        super().__init__(layout)
        self.upstream = upstream

    @property
    def ready_url(self) -> str:
        return self.base_url + "/health"  # /index/ would fetch the upstream's root listing

    def load(self) -> dict[str, Any]:
        cache = self.dir / "cache"
        if cache.exists():
            subprocess.run(["rm", "-rf", str(cache)], check=True, timeout=120)
        cache.mkdir(parents=True)
        return {"how": "empty cache directory", "seconds": 0.0}

    def launch(self) -> None:
        self.port = free_port()
        gunicorn = self.layout.tool("proxpi", "gunicorn")
        env = clean_environment(
            {"PROXPI_INDEX_URL": self.upstream, "PROXPI_CACHE_DIR": str(self.dir / "cache")}
        )
        bind = f"{LOOPBACK}:{self.port}"
        command = [gunicorn, "-w", "1", "--threads", "8", "-b", bind, "proxpi.server:app"]
        self.spawn("server", command, env)


PROXIES: dict[str, type[MinistryProxy | DevpiMirror | Proxpi]] = {
    "ministry": MinistryProxy,
    "devpi": DevpiMirror,
    "proxpi": Proxpi,
}


def installs(
    layout: Layout, upstream: CountedUpstream, tool: str, index: str, runs: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``runs`` installs; each one's outcome, and what the upstream was asked meanwhile."""
    mark = upstream.mark()
    outcomes = measure_install.attempts(layout, tool, index, runs)
    return outcomes, counted(upstream.since(mark))


def fresh_round(
    layout: Layout, upstream: CountedUpstream, name: str, tool: str, warm: int
) -> dict[str, Any]:
    """A fresh server of one proxy: one cold install, then ``warm`` installs from its cache."""
    server = PROXIES[name](layout, upstream.url)
    try:
        server.load()
        started = server.start()
        cold, cold_asked = installs(layout, upstream, tool, server.simple_url, 1)
        warmed, warm_asked = installs(layout, upstream, tool, server.simple_url, warm)
        return {
            "startup_s": round(started, 3),
            "cold": cold,
            "warm": warmed,
            "asked": {"cold": cold_asked, "warm": warm_asked},
            "memory_after": memory(server.pids()),
        }
    finally:
        server.stop()


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The rounds of one proxy and tool: medians, every run, what the upstream was asked."""
    cold = [outcome for r in rounds for outcome in r["cold"]]
    warm = [outcome for r in rounds for outcome in r["warm"]]
    return {
        "cold": measure_install.runs_summary(cold),
        "warm": measure_install.runs_summary(warm),
        "upstream": {
            "cold": [r["asked"]["cold"] for r in rounds],
            "warm": rounds[0]["asked"]["warm"],
        },
        "startup_s": [r["startup_s"] for r in rounds],
        "memory_after": rounds[0]["memory_after"],
    }


def measure(layout: Layout, args: argparse.Namespace) -> dict[str, Any]:
    """Direct and every proxy, tool by tool, against one upstream."""
    upstream = CountedUpstream(layout)
    relay: subprocess.Popen[bytes] | None = None
    record: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_before": os.getloadavg(),
        "delay_ms": args.delay_ms,
        "rounds": args.rounds,
        "warm": args.warm,
        "install_set": list(measure_install.INSTALL_SET),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "summaries": {name: PROXIES[name].summary for name in args.proxies},
        "direct": {},
        "proxies": {name: {} for name in args.proxies},
    }
    try:
        upstream.start()
        if args.delay_ms:
            port = free_port()
            relay = subprocess.Popen(
                [sys.executable, str(BENCH / "delay_relay.py"), str(port), str(upstream.port),
                 str(args.delay_ms)],
                start_new_session=True,
            )  # fmt: skip
            upstream.url = f"http://{LOOPBACK}:{port}/simple/"
            upstream.wait(upstream.url, 30)
        record["upstream"] = upstream.url
        for tool in args.tools:
            # Round by round, direct and then each proxy, so that a change in the machine's
            # load (it is shared) falls on all of them alike.
            direct: list[dict[str, Any]] = []
            rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in args.proxies}
            for number in range(args.rounds):
                outcomes, asked = installs(layout, upstream, tool, upstream.url, 1)
                direct.extend(outcomes)
                print(f"  round {number + 1} {tool}: direct {seconds(outcomes)}", flush=True)
                for name in args.proxies:
                    done = fresh_round(layout, upstream, name, tool, args.warm)
                    rounds[name].append(done)
                    print(
                        f"    {name:8} cold {seconds(done['cold'])} warm {seconds(done['warm'])}"
                        f" upstream cold {done['asked']['cold']['requests']}"
                        f" warm {done['asked']['warm']['requests']}",
                        flush=True,
                    )
            record["direct"][tool] = {**measure_install.runs_summary(direct), "upstream": asked}
            for name in args.proxies:
                record["proxies"][name][tool] = summarize(rounds[name])
    finally:
        if relay is not None:
            relay.terminate()
            relay.wait(timeout=30)
        upstream.stop()
    record["load_after"] = os.getloadavg()
    return record


def seconds(outcomes: list[dict[str, Any]]) -> list[Any]:
    """Each install's seconds, or its error's first words."""
    return [o.get("seconds", str(o.get("error", ""))[:60]) for o in outcomes]


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="each: a direct install, then per proxy a fresh "
        "server with one cold install and the warm ones",
    )
    parser.add_argument("--warm", type=int, default=1, help="warm installs per round")
    parser.add_argument("--delay-ms", type=int, default=0, help="added to each upstream request")
    parser.add_argument("--tools", default="pip,uv")
    parser.add_argument("--proxies", default=",".join(PROXIES))
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args(argv)
    args.tools = [t for t in args.tools.split(",") if t]
    args.proxies = [p for p in args.proxies.split(",") if p]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(sys.argv[1:] if argv is None else argv)
    layout = Layout(work_dir())
    for directory in (layout.results, layout.logs, layout.servers):
        directory.mkdir(parents=True, exist_ok=True)
    if not layout.manifest.exists():
        build(layout, local_wheel_tree(), (300, 500, 5000))
    record = measure(layout, args)
    suffix = f"-delay{args.delay_ms}" if args.delay_ms else ""
    out = layout.results / f"proxy-compare{suffix}.json"
    out.write_text(json.dumps(record, indent=1))
    print(f"wrote {out}", flush=True)
    if not args.no_report:
        import report

        report.splice_proxy_compare(layout.results)


if __name__ == "__main__":
    main()
