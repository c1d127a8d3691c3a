"""Time ``pip install`` and ``uv pip install`` of the install set from an index.

Each run installs the ten packages of ``corpus.INSTALL_SET`` with all their
dependencies (about 37 distributions) into a fresh virtual environment, with
every cache off and nothing from this machine's configuration: pip runs with
``--isolated --no-cache-dir``, uv with ``--no-config --no-cache``, and PIP_* and
UV_* variables are removed. So every run asks the index for every page and
every file, which is what a CI runner without a cache does. The fresh venv is
made (untimed) with ``python3 -m venv --without-pip`` and targeted with
``--python``. Every run is bounded by a timeout.

    python bench/measure_install.py SIMPLE_URL [--runs 3] [--out F]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from corpus import INSTALL_SET, Layout, work_dir

TOOLS = ("pip", "uv")
INSTALL_TIMEOUT = 600


def isolated_environment() -> dict[str, str]:
    """The environment without pip's and uv's settings (the machine's index, constraints)."""
    environment = {k: v for k, v in os.environ.items() if not k.upper().startswith(("PIP_", "UV_"))}
    environment["NO_PROXY"] = environment["no_proxy"] = "127.0.0.1,localhost"
    return environment


def fresh_venv(directory: Path) -> Path:
    """An empty virtual environment (no pip inside); returns its interpreter."""
    if directory.exists():
        shutil.rmtree(directory)
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(directory)], check=True, timeout=120
    )
    return directory / "bin" / "python"


def install_command(layout: Layout, tool: str, python: Path, index: str) -> list[str]:
    """The measured command line of one tool."""
    if tool == "pip":
        pip = layout.tool("client", "pip")
        return [
            str(pip), "--isolated", "--python", str(python), "install", "--no-cache-dir",
            "--disable-pip-version-check", "--index-url", index, *INSTALL_SET,
        ]  # fmt: skip
    uv = layout.tool("client", "uv")
    return [
        str(uv), "pip", "install", "--no-config", "--no-cache", "--python", str(python),
        "--index-url", index, *INSTALL_SET,
    ]  # fmt: skip


def installed(python: Path) -> int:
    """How many distributions the venv holds after the install."""
    script = "import importlib.metadata as m; print(len(list(m.distributions())))"
    done = subprocess.run([str(python), "-c", script], capture_output=True, text=True, timeout=60)
    return int(done.stdout.strip() or 0)


def install_once(layout: Layout, tool: str, index: str, scratch: Path) -> dict[str, Any]:
    """One timed install into a fresh venv: seconds, distributions, or the error."""
    python = fresh_venv(scratch / "venv")
    command = install_command(layout, tool, python, index)
    began = time.perf_counter()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False,
            env=isolated_environment(),
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {INSTALL_TIMEOUT} s"}
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        return {"error": f"exit {done.returncode}: {(done.stderr or done.stdout)[-800:]}"}
    return {"seconds": round(seconds, 2), "dists": installed(python)}


def runs_summary(attempts: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of the successful runs, every run kept."""
    times = [a["seconds"] for a in attempts if "seconds" in a]
    return {
        "median_s": round(statistics.median(times), 2) if times else None,
        "times_s": times,
        "dists": max((a.get("dists", 0) for a in attempts), default=0),
        "errors": [a["error"] for a in attempts if "error" in a],
    }


def attempts(layout: Layout, tool: str, index: str, runs: int) -> list[dict[str, Any]]:
    """``runs`` installs with one tool, each into a fresh venv."""
    with tempfile.TemporaryDirectory(prefix="bench-install-") as scratch:
        return [install_once(layout, tool, index, Path(scratch)) for _ in range(runs)]


def report_line(tool: str, entry: dict[str, Any]) -> None:
    """One line of progress per tool, and its errors."""
    print(
        f"  {tool:4} median {entry['median_s']} s  runs {entry['times_s']}  "
        f"dists {entry['dists']}  errors {len(entry['errors'])}",
        flush=True,
    )
    for error in entry["errors"]:
        print("    ", error[-400:], flush=True)


def measure(layout: Layout, index: str, runs: int) -> dict[str, Any]:
    """``runs`` installs per tool; medians."""
    result: dict[str, Any] = {"index": index, "install_set": list(INSTALL_SET), "tools": {}}
    for tool in TOOLS:
        entry = runs_summary(attempts(layout, tool, index, runs))
        entry["command"] = " ".join(install_command(layout, tool, Path("<venv>/bin/python"), index))
        result["tools"][tool] = entry
        report_line(tool, entry)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("index", help="simple index URL")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out")
    arguments = parser.parse_args()
    result = measure(Layout(work_dir()), arguments.index, arguments.runs)
    if arguments.out:
        Path(arguments.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
