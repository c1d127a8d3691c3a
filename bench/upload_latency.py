"""Tiny-upload latency of several servers, interleaved, for bench/upload_latency.md.

Each round starts every server in turn, empty, runs ``measure_upload.latency``
against it (N distinct ~1 kB wheels one after another over one connection, then
N more from 8 connections) and stops it, so that a noisy moment on a shared
machine falls on all of them alike. A server is a label of ``bench/servers.py``
(``ministry``, ``pypiserver``, ``devpi``), or ``ministry=PATH``: Ministry run from
another checkout's ``ministry`` executable (the code before a change). At the end,
each cell's median over the rounds, with the lowest and highest.

    python bench/upload_latency.py [--rounds 8] [--count 200] [--out F] SERVER...
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import measure_upload
import servers
from corpus import Layout, work_dir

FIGURES = (
    ("sequential", "p50_ms"),
    ("sequential", "p99_ms"),
    ("concurrent", "p50_ms"),
    ("concurrent", "p99_ms"),
    ("concurrent", "uploads_per_s"),
)


class MinistryAt(servers.Ministry):
    """Ministry run from the given executable, in a data directory of its own."""

    def __init__(self, layout: Layout, executable: Path, tag: str) -> None:
        self.executable = executable
        self.tag = tag
        super().__init__(layout, empty=True)

    @property
    def data(self) -> Path:
        return self.dir / f"data-{self.tag}"

    def load(self) -> dict[str, Any]:
        saved = servers.MINISTRY
        servers.MINISTRY = self.executable
        try:
            return super().load()
        finally:
            servers.MINISTRY = saved

    def serve_command(self, port: int, *options: object) -> list[object]:
        return [self.executable, *super().serve_command(port, *options)[1:]]


def make_server(layout: Layout, spec: str) -> servers.Server:
    """The server a command-line name stands for (see the module docstring)."""
    if "=" in spec:
        tag, path = spec.split("=", 1)
        return MinistryAt(layout, Path(path), tag)
    return servers.SERVERS[spec](layout, empty=True)


def one_run(layout: Layout, spec: str, count: int) -> dict[str, Any]:
    """Start ``spec`` empty, measure, stop; the figures with the load average."""
    server = make_server(layout, spec)
    server.load()
    try:
        server.start()
        auth = (servers.USER, servers.PASSWORD)
        found = measure_upload.latency(layout, server.upload_url, auth, count)
    finally:
        server.stop()
    return {**found, "load": os.getloadavg()[0]}


def summary(runs: list[dict[str, Any]]) -> dict[str, str]:
    """Each figure's median over the runs, with the lowest and the highest."""
    cells = {}
    for phase, figure in FIGURES:
        values = [r[phase][figure] for r in runs if r[phase][figure] is not None]
        if values:
            cells[f"{phase} {figure}"] = (
                f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"
            )
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("servers", nargs="+", metavar="SERVER")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--out")
    arguments = parser.parse_args()
    layout = Layout(work_dir())
    results: dict[str, list[dict[str, Any]]] = {spec: [] for spec in arguments.servers}
    began = time.time()
    for round_number in range(arguments.rounds):
        for spec in arguments.servers:
            run = one_run(layout, spec, arguments.count)
            results[spec].append(run)
            sequential, concurrent = run["sequential"], run["concurrent"]
            print(
                f"round {round_number + 1} {spec}: sequential p50 {sequential['p50_ms']} ms, "
                f"8 clients p50 {concurrent['p50_ms']} ms, load {run['load']:.2f}",
                flush=True,
            )
    report = {
        "seconds": round(time.time() - began),
        "runs": results,
        "summary": {spec: summary(runs) for spec, runs in results.items()},
    }
    print(json.dumps(report["summary"], indent=1))
    if arguments.out:
        Path(arguments.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
