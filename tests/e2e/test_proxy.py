"""The caching proxy end to end: pip and uv install through ``ministry serve --upstream``.

The upstreams are real servers on loopback (issue 4), never the internet: another
``ministry serve`` (PEP 691 JSON with PEP 658 metadata), pypiserver (an
independent implementation), and a static PEP 503 tree (HTML only). pip and uv
run isolated from this machine's configuration and see only the proxy; what
they cause upstream is counted on the upstream side.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import ALICE
from support.clients import new_venv, pip_install, uv
from support.distributions import make_wheel
from support.server import MinistryServer
from support.uploads import post_upload
from support.upstreams import PypiServerUpstream, StaticUpstream, Upstream

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
# The proxy must reach its loopback upstreams directly, whatever this machine's proxy settings.
DIRECT = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


@pytest.fixture(params=["static", "pypiserver", "ministry"])
def upstream(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Upstream]:
    """Each kind of upstream in turn, of this test's own (the test may stop it)."""
    if request.param == "static":
        with StaticUpstream() as static:
            yield Upstream.of_static(static)
    elif request.param == "pypiserver":
        with PypiServerUpstream(tmp_path / "pypiserver") as pypiserver:
            yield Upstream.of_pypiserver(pypiserver)
    else:
        ministry = MinistryServer(tmp_path / "upstream-data").start()
        try:
            result = ministry.cli(
                "user", "add", ALICE[0], "--password-stdin", stdin=ALICE[1] + "\n"
            )
            assert result.returncode == 0, result.stderr
            yield Upstream.of_ministry(ministry, ALICE)
        finally:
            if ministry.process is not None and ministry.process.poll() is None:
                ministry.stop()


@pytest.fixture
def proxies(tmp_path: Path) -> Iterator[Callable[..., MinistryServer]]:
    """Starts ``ministry serve`` with the given arguments on one data directory; stops them."""
    started: list[MinistryServer] = []

    def start(*arguments: str) -> MinistryServer:
        server = MinistryServer(tmp_path / "proxy", arguments=arguments, environment=DIRECT)
        started.append(server.start())
        return server

    yield start
    for server in started:
        if server.process is not None and server.process.poll() is None:
            server.stop()


def chain(directory: Path, stem: str) -> dict[str, Path]:
    """``<stem>-app`` needs ``<stem>-lib>=1,<2``, which needs ``<stem>-base``; lib 2.0 exists."""
    directory.mkdir(parents=True, exist_ok=True)
    return {
        "app": make_wheel(directory, f"{stem}-app", "1.0", requires_dist=[f"{stem}-lib>=1,<2"]),
        "lib": make_wheel(directory, f"{stem}-lib", "1.0", requires_dist=[f"{stem}-base"]),
        "lib2": make_wheel(directory, f"{stem}-lib", "2.0"),
        "base": make_wheel(directory, f"{stem}-base", "1.0"),
    }


def versions(python: Path, *modules: str) -> list[str]:
    """The VERSION of each module, imported in the venv of ``python``."""
    code = f"import {', '.join(modules)}; print({', '.join(m + '.VERSION' for m in modules)})"
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return result.stdout.split()


def pip_into_new_venv(
    path: Path, home: Path, index: str, *requirements: str
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    python = new_venv(path)
    return python, pip_install(python, home, "--index-url", index, *requirements)


def uv_into_new_venv(
    path: Path, home: Path, index: str, *requirements: str
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    created = uv(home, "venv", "--python", sys.executable, str(path))
    assert created.returncode == 0, created.stderr
    python = path / "bin" / "python"
    result = uv(
        home, "pip", "install", "--python", str(python), "--index-url", index, "--no-cache",
        *requirements,
    )  # fmt: skip
    return python, result


def test_pip_and_uv_install_through_the_proxy_and_again_with_the_upstream_stopped(
    upstream: Upstream,
    proxies: Callable[..., MinistryServer],
    tmp_path: Path,
    home: Path,
    unique: str,
) -> None:
    """A project and its dependencies install through the proxy, each file fetched once;
    with the upstream stopped (and every page past its freshness), they install again."""
    stem = f"{unique}-{upstream.kind}"
    wheels = chain(tmp_path / "wheels", stem)
    for wheel in wheels.values():
        upstream.publish(wheel)
    proxy = proxies("--upstream", upstream.url, "--upstream-ttl", "0")
    index = f"{proxy.url}/simple/"
    modules = [f"{stem.replace('-', '_')}_{part}" for part in ("app", "lib", "base")]

    python, result = pip_into_new_venv(tmp_path / "pip1", home, index, f"{stem}-app")
    assert result.returncode == 0, result.stdout + result.stderr
    assert versions(python, *modules) == ["1.0", "1.0", "1.0"]
    python, result = uv_into_new_venv(tmp_path / "uv1", home, index, f"{stem}-app")
    assert result.returncode == 0, result.stdout + result.stderr
    assert versions(python, *modules) == ["1.0", "1.0", "1.0"]
    for part in ("app", "lib", "base"):
        assert upstream.file_requests(wheels[part].name) == 1, part
        assert proxy.served(f"/packages/{stem}-{part}/{wheels[part].name}") >= 1
    assert upstream.file_requests(wheels["lib2"].name) == 0  # nothing is fetched ahead

    upstream.stop()
    python, result = pip_into_new_venv(tmp_path / "pip2", home, index, f"{stem}-app")
    assert result.returncode == 0, result.stdout + result.stderr
    assert versions(python, *modules) == ["1.0", "1.0", "1.0"]
    python, result = uv_into_new_venv(tmp_path / "uv2", home, index, f"{stem}-app")
    assert result.returncode == 0, result.stdout + result.stderr
    assert versions(python, *modules) == ["1.0", "1.0", "1.0"]
    # The pages came from the kept copies (the stale header is tests/http's business).
    assert proxy.log().count("serving the kept page (stale)") >= 3


def test_offline_restart_installs_everything_cached(
    proxies: Callable[..., MinistryServer], tmp_path: Path, home: Path, unique: str
) -> None:
    """``--offline`` after a restart: what was fetched before installs with the upstream
    stopped; anything never fetched is a 404, and the upstream is never contacted."""
    wheels = chain(tmp_path / "wheels", unique)
    never = make_wheel(tmp_path / "wheels", f"{unique}-never", "1.0")
    with StaticUpstream() as static:
        for wheel in (*wheels.values(), never):
            static.add(wheel)
        first = proxies("--upstream", static.url)
        _, result = pip_into_new_venv(
            tmp_path / "v1", home, f"{first.url}/simple/", f"{unique}-app"
        )
        assert result.returncode == 0, result.stdout + result.stderr
        first.stop()
        static.offline()

        offline = proxies("--upstream", static.url, "--offline")
        python, result = pip_into_new_venv(
            tmp_path / "v2", home, f"{offline.url}/simple/", f"{unique}-app"
        )
        assert result.returncode == 0, result.stdout + result.stderr
        module = f"{unique}_app"
        assert versions(python, module, f"{unique}_lib", f"{unique}_base") == ["1.0"] * 3

        static.online()
        static.clear_requests()
        with offline.client() as client:
            missing = client.get(f"/simple/{unique}-never/", headers={"Accept": SIMPLE_JSON})
            assert missing.status_code == 404
            lib2 = client.get(f"/packages/{unique}-lib/{wheels['lib2'].name}")
            assert lib2.status_code == 404
            assert "offline" in lib2.text
        assert static.requests == []


def test_private_name_is_never_taken_from_upstream(
    proxies: Callable[..., MinistryServer], tmp_path: Path, home: Path, unique: str
) -> None:
    """A name uploaded here wins over a higher upstream version, for pip and uv, even as the
    dependency of an upstream project; the upstream is never asked about that name."""
    private, later = f"{unique}-private", f"{unique}-later"
    upstream_dir, local_dir = tmp_path / "upstream", tmp_path / "local"
    upstream_dir.mkdir()
    local_dir.mkdir()
    with StaticUpstream() as static:
        static.add(make_wheel(upstream_dir, f"{unique}-app", "1.0", requires_dist=[private]))
        static.add(make_wheel(upstream_dir, private, "9.0"))
        static.add(make_wheel(upstream_dir, later, "9.0"))
        proxy = proxies("--upstream", static.url)
        added = proxy.cli("user", "add", ALICE[0], "--password-stdin", stdin=ALICE[1] + "\n")
        assert added.returncode == 0, added.stderr
        local = make_wheel(local_dir, private, "1.0")
        with proxy.client() as client:
            assert post_upload(client, local, auth=ALICE).status_code == 200
            # Seen from upstream first, then uploaded here: from now on only the local one.
            first = client.get(f"/simple/{later}/", headers={"Accept": SIMPLE_JSON}).json()
            assert first["versions"] == ["9.0"]
            assert (
                post_upload(client, make_wheel(local_dir, later, "1.0"), auth=ALICE).status_code
                == 200
            )
            for name in (private, later):
                page = client.get(f"/simple/{name}/", headers={"Accept": SIMPLE_JSON}).json()
                assert page["versions"] == ["1.0"], name
                assert client.get(f"/pypi/{name}/json").json()["info"]["version"] == "1.0"

        module = private.replace("-", "_")
        index = f"{proxy.url}/simple/"
        python, result = pip_into_new_venv(tmp_path / "pip", home, index, f"{unique}-app")
        assert result.returncode == 0, result.stdout + result.stderr
        assert versions(python, f"{unique}_app", module) == ["1.0", "1.0"]
        python, result = uv_into_new_venv(tmp_path / "uv", home, index, f"{unique}-app")
        assert result.returncode == 0, result.stdout + result.stderr
        assert versions(python, f"{unique}_app", module) == ["1.0", "1.0"]
        assert static.count(static.page_path(private)) == 0
        assert static.count(static.file_path(f"{module}-9.0-py3-none-any.whl")) == 0
        assert static.count(static.page_path(later)) == 1


def test_upstream_pip_proxies_the_index_pip_is_configured_with(
    proxies: Callable[..., MinistryServer], tmp_path: Path, home: Path, unique: str
) -> None:
    """``--upstream pip`` asks pip: ``PIP_INDEX_URL`` in the server's environment is proxied."""
    wheel = make_wheel(tmp_path, f"{unique}-via-pip", "1.0")
    with StaticUpstream() as static:
        static.add(wheel)
        proxy = MinistryServer(
            tmp_path / "proxy",
            arguments=["--upstream", "pip"],
            environment={**DIRECT, "PIP_INDEX_URL": static.url, "PIP_CONFIG_FILE": "/dev/null"},
        ).start()
        try:
            shown = proxy.cli("index", "show", "upstream")
            assert shown.returncode == 0, shown.stderr
            assert json.loads(shown.stdout)["upstream"] == static.url
            python, result = pip_into_new_venv(
                tmp_path / "venv", home, f"{proxy.url}/simple/", f"{unique}-via-pip"
            )
            assert result.returncode == 0, result.stdout + result.stderr
            assert versions(python, f"{unique}_via_pip") == ["1.0"]
        finally:
            proxy.stop()
        assert static.count(static.page_path(f"{unique}-via-pip")) == 1
        assert static.count(static.file_path(wheel.name)) == 1


def test_pip_refuses_a_corrupt_upstream_file_and_installs_once_healed(
    proxies: Callable[..., MinistryServer], tmp_path: Path, home: Path, unique: str
) -> None:
    """Bytes that differ from the upstream page's hash never reach an install; nothing bad is
    kept, so once the upstream serves the right bytes, the install succeeds."""
    payload = random.Random(unique).randbytes(600_000)  # several chunks, incompressible
    module = unique.replace("-", "_")
    files = {f"{module}_app/__init__.py": b"VERSION = '1.0'\n", f"{module}_app/data": payload}
    wheel = make_wheel(tmp_path, f"{unique}-app", "1.0", files=files)
    with StaticUpstream() as static:
        static.add(wheel)
        static.corrupt_files(True)
        proxy = proxies("--upstream", static.url)
        python, result = pip_into_new_venv(
            tmp_path / "venv", home, f"{proxy.url}/simple/", f"{unique}-app"
        )
        assert result.returncode != 0, result.stdout + result.stderr
        output = (result.stdout + result.stderr).lower()
        assert "incomplete" in output or "connection" in output, output
        imported = subprocess.run([str(python), "-c", f"import {module}_app"], capture_output=True)
        assert imported.returncode != 0
        static.heal()
        result = pip_install(python, home, "--index-url", f"{proxy.url}/simple/", f"{unique}-app")
        assert result.returncode == 0, result.stdout + result.stderr
        assert versions(python, f"{module}_app") == ["1.0"]
        with proxy.client() as client:
            kept = client.get(f"/packages/{unique}-app/{wheel.name}").content
        assert kept == wheel.read_bytes()
        # test_a_cut_download_does_not_delay_shutdown (tests/http) checks the clean stop.
        proxy.stop(signal.SIGKILL)
