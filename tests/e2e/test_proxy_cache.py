"""The bounded proxy cache end to end: real uv installs through ``ministry serve --max-cache-size``.

One static upstream on loopback and one proxy for the module. Each project is a wheel
of about 100 kB of incompressible bytes and the proxy keeps at most 350 KiB, so a few
installs force evictions; every install must still succeed, the cache must stay within
its bound, and an evicted file must come back from upstream when asked for again.
``ministry cache stats`` and ``prune`` run as commands on the server's data directory
while it serves.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.clients import uv
from support.distributions import make_wheel
from support.server import MinistryServer, run_cli, wait_for
from support.upstreams import StaticUpstream

pytestmark = pytest.mark.slow

KiB = 1024
CAP = 350 * KiB
#: The proxy must reach its loopback upstream directly, whatever this machine's settings.
DIRECT = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
PROJECTS = [f"cached-p{n}" for n in range(1, 7)]


class Site:
    """The upstream, the proxy, and the wheels the upstream serves."""

    def __init__(self, static: StaticUpstream, proxy: MinistryServer, wheels: dict[str, Path]):
        self.static = static
        self.proxy = proxy
        self.wheels = wheels

    def file_requests(self, project: str) -> int:
        """How many times the upstream was asked for a project's wheel."""
        return self.static.count(f"/files/{self.wheels[project].name}")

    def cache(self, *arguments: str) -> str:
        """``ministry cache …`` in a process of its own, with the server's bound in its
        environment (as a config file or ``MINISTRY_MAX_CACHE_SIZE`` gives it)."""
        result = run_cli(
            "cache", *arguments, "--data", str(self.proxy.data),
            environment={"MINISTRY_MAX_CACHE_SIZE": str(CAP)},
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout

    def stats(self) -> dict[str, Any]:
        """``ministry cache stats --json``."""
        document: dict[str, Any] = json.loads(self.cache("stats", "--json"))
        return document

    def metrics(self) -> dict[str, float]:
        """The proxy's ``/-/metrics`` samples of the cache, by name and index."""
        with self.proxy.client() as client:
            text = client.get("/-/metrics").text
        found = {}
        for line in text.splitlines():
            match = re.fullmatch(r'(ministry_proxy_cache_\w+)\{index="([^"]*)"\} (\S+)', line)
            if match:
                found[f"{match[1]}/{match[2]}"] = float(match[3])
        return found


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Six ~100 kB wheels upstream; a proxy of it bounded to 350 KiB."""
    directory = tmp_path_factory.mktemp("cache")
    (directory / "wheels").mkdir()
    wheels = {}
    for name in PROJECTS:
        module = name.replace("-", "_")
        files = {
            f"{module}/__init__.py": b"VERSION = '1.0'\n",
            f"{module}/payload.bin": os.urandom(100 * KiB),
        }
        wheels[name] = make_wheel(directory / "wheels", name, "1.0", files=files)
    with StaticUpstream() as static:
        for wheel in wheels.values():
            static.add(wheel)
        proxy = MinistryServer(
            directory / "proxy",
            arguments=("--upstream", static.url, "--max-cache-size", "350K"),
            environment=DIRECT,
        ).start()
        try:
            yield Site(static, proxy, wheels)
        finally:
            proxy.stop()


def _install(site: Site, venv: Path, home: Path, *projects: str, index: str = "") -> None:
    """Install with uv (quicker than pip for the many installs here; test_proxy.py has
    pip), without its cache, so every wheel is asked of the proxy."""
    python = venv / "bin" / "python"
    if not python.exists():
        created = uv(home, "venv", "--python", sys.executable, str(venv))
        assert created.returncode == 0, created.stderr
    url = f"{site.proxy.url}/{index}simple/"
    result = uv(home, "pip", "install", "--python", str(python), "--index-url", url,
                "--no-cache", "--reinstall", *projects)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def _within(site: Site, bound: int, index: str | None = None) -> bool:
    document = site.stats()
    if index is None:
        return int(document["bytes"]) <= bound
    return all(e["bytes"] <= bound for e in document["indexes"] if e["index"] == index)


def test_installs_through_a_small_cache_evict_and_fetch_again(
    site: Site, tmp_path: Path, home: Path
) -> None:
    """Six installs through a 350 KiB cache all succeed; the oldest wheels are evicted,
    the cache ends within its bound, the metrics count the evictions, and an evicted
    wheel installs again, fetched once more from upstream."""
    venv = tmp_path / "venv"
    largest = max(wheel.stat().st_size for wheel in site.wheels.values())
    for project in PROJECTS:
        _install(site, venv, home, project)
        # At most the one file just kept over the bound, until the pass it started ends.
        assert _within(site, CAP + largest)
        wait_for(lambda: _within(site, CAP), 30, "the cache within its bound")
    assert all(site.file_requests(p) == 1 for p in PROJECTS)
    stats = site.stats()
    assert stats["bound"] == CAP
    assert 0 < int(stats["bytes"]) <= CAP
    (upstream,) = [e for e in stats["indexes"] if e["index"] == "upstream"]
    assert upstream["files"] == 3  # the three most recent of six ~100 kB wheels
    metrics = site.metrics()
    assert metrics["ministry_proxy_cache_evicted_files_total/upstream"] == 3
    assert metrics["ministry_proxy_cache_evicted_bytes_total/upstream"] > 300 * KiB
    assert metrics["ministry_proxy_cache_bytes/upstream"] == upstream["bytes"]

    # The first wheel was evicted: asked for again, it is fetched from upstream again
    # (checked against the hash its filename was pinned to) and installs.
    _install(site, tmp_path / "again", home, PROJECTS[0])
    assert site.file_requests(PROJECTS[0]) == 2
    wait_for(lambda: _within(site, CAP), 30, "the cache within its bound")
    assert site.metrics()["ministry_proxy_cache_evicted_files_total/upstream"] == 4


def test_cache_commands_prune_and_an_index_of_its_own_bound(
    site: Site, tmp_path: Path, home: Path
) -> None:
    """``prune --dry-run`` evicts nothing, ``prune --max-size`` evicts down to it, an
    index created with its own bound keeps to it, and bad values are one line, status 2."""
    _install(site, tmp_path / "venv", home, PROJECTS[1], PROJECTS[2])
    wait_for(lambda: _within(site, CAP), 30, "the cache within its bound")
    before = site.stats()
    assert before["files"] > 0
    dry = site.cache("prune", "--max-size", "0", "--dry-run")
    assert f"Would evict {before['files']} files" in dry
    assert site.stats() == before
    pruned = site.cache("prune", "--max-size", "0")
    assert f"Evicted {before['files']} files" in pruned
    assert "All proxy indexes: 0 files, 0 B; bound 350.0 KiB." in pruned
    assert site.stats()["files"] == 0
    _install(site, tmp_path / "back", home, PROJECTS[1])  # fetched again after the prune

    created = site.proxy.cli(
        "index", "create", "mirror/small", "--upstream", site.static.url,
        "--max-cache-size", "150K",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["max_cache_size"] == 150 * KiB
    _install(site, tmp_path / "small", home, PROJECTS[3], PROJECTS[4], index="mirror/small/")
    wait_for(lambda: _within(site, 150 * KiB, "mirror/small"), 30, "the index within its bound")
    (small,) = [e for e in site.stats()["indexes"] if e["index"] == "mirror/small"]
    assert small["bound"] == 150 * KiB and small["files"] == 1

    refused = [
        site.proxy.cli("index", "update", "main", "--max-cache-size", "1G"),
        site.proxy.cli("index", "update", "mirror/small", "--max-cache-size", "lots"),
        site.proxy.cli("cache", "prune", "--max-size", "lots"),
        site.proxy.cli("cache", "prune", "--index", "main"),
        run_cli("serve", "--max-cache-size", "5 gigs", "--data", str(tmp_path / "none")),
    ]
    for result in refused:
        assert result.returncode == 2, result.stdout + result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "hosted" in refused[0].stderr and "max_cache_size" in refused[0].stderr
    assert "is not a size" in refused[1].stderr and "is not a size" in refused[2].stderr
    assert "hosted" in refused[3].stderr
    assert "--max-cache-size: '5 gigs' is not a size" in refused[4].stderr
    assert not (tmp_path / "none").exists()
