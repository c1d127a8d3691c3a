"""Time how long ``ministry`` takes to answer light commands, as whole processes.

Every command pays for Python's start and for the imports of what it runs, then
does its work: ``--help`` and ``--version`` only build the parser, ``user list``
also opens a SQLite store and a file store (a temporary data directory holding
three users, made untimed before the runs). Each round runs every command once,
in turn, so a change in the machine's speed touches them all alike; one
untimed round comes first (it writes the bytecode caches). The best of the runs
is the figure to compare with a goal, the median says how steady the machine was.

    python bench/cli_startup.py [--runs 5] [--src DIR] [--out F]

``--src DIR`` puts another source tree first on ``PYTHONPATH`` (an older checkout's
``src``, say), so the same interpreter times the two.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
USERS = ("alice", "bob", "carol")
TIMEOUT = 120


def ministry(*arguments: str) -> list[str]:
    """The ``ministry`` console script beside this interpreter, as an installation runs it."""
    script = Path(sys.executable).with_name("ministry")
    if script.exists():
        return [str(script), *arguments]
    return [sys.executable, "-m", "ministry", *arguments]


def commands(data: Path) -> dict[str, list[str]]:
    """The measured command lines, by the name the table shows."""
    return {
        "ministry --help": ministry("--help"),
        "ministry --version": ministry("--version"),
        "ministry user list": ministry("user", "list", "--data", str(data)),
    }


def add_users(data: Path, environment: dict[str, str]) -> None:
    """A data directory holding a few users (hashed at the least cost: untimed anyway)."""
    for user in USERS:
        subprocess.run(
            ministry("user", "add", user, "--password-stdin", "--data", str(data)),
            input=f"{user}-password-1\n",
            env={**environment, "MINISTRY_PASSWORD_HASH_COST": "minimal"},
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=True,
        )


def run_once(command: list[str], environment: dict[str, str]) -> float:
    """Seconds from start to exit of one process; a failure stops the benchmark.

    The wait blocks until the exit (``wait(timeout)`` would poll, in steps of up to
    50 ms, as long as the whole command); a timer kills a process that hangs.
    """
    began = time.perf_counter()
    with subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL) as process:
        watchdog = threading.Timer(TIMEOUT, process.kill)
        watchdog.start()
        try:
            status = process.wait()
        finally:
            watchdog.cancel()
    seconds = time.perf_counter() - began
    if status != 0:
        raise subprocess.CalledProcessError(status, command)
    return seconds


def measure(runs: int, source: Path) -> dict[str, Any]:
    """Every command ``runs`` times, round by round, after one untimed round."""
    path = [str(source), *filter(None, [os.environ.get("PYTHONPATH")])]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    with tempfile.TemporaryDirectory(prefix="ministry-cli-") as scratch:
        data = Path(scratch) / "data"
        add_users(data, environment)
        measured = commands(data)
        times: dict[str, list[float]] = {name: [] for name in measured}
        for round_ in range(runs + 1):
            for name, command in measured.items():
                seconds = run_once(command, environment)
                if round_:
                    times[name].append(seconds)
    return {
        "source": str(source),
        "python": sys.version.split()[0],
        "load": os.getloadavg()[0],
        "runs": runs,
        "seconds": times,
    }


def table(result: dict[str, Any]) -> str:
    """The result as a Markdown table: best and median of each command."""
    lines = [
        f"source {result['source']}, Python {result['python']}, "
        f"load average {result['load']:.2f} at the start, {result['runs']} runs each",
        "",
        "| command | best s | median s |",
        "| --- | ---: | ---: |",
    ]
    for name, seconds in result["seconds"].items():
        lines.append(f"| `{name}` | {min(seconds):.3f} | {statistics.median(seconds):.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the tree to time")
    parser.add_argument("--out", help="also write the times as JSON here")
    arguments = parser.parse_args()
    result = measure(arguments.runs, arguments.src.resolve())
    print(table(result))
    if arguments.out:
        Path(arguments.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
