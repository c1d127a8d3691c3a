"""A proxy index with several upstreams, end to end: pip installs through one proxy
whose upstreams are three static PEP 503 trees on loopback.

``a`` is preferred, ``b`` (with a password in its URL) comes second, and ``corp``
is routed: only the names ``<stem>-corp-*`` are asked of it, and of no other.
Every page is revalidated on each request (``--upstream-ttl 0``), so what each
upstream is asked is counted on its side.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.clients import new_venv, pip_install
from support.distributions import make_wheel
from support.server import MinistryServer
from support.upstreams import StaticUpstream, with_userinfo

pytestmark = pytest.mark.slow

DIRECT = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
PASSWORD = "b-s3cret-word"
STEM = "tmulti"


@dataclass
class Setup:
    proxy: MinistryServer
    a: StaticUpstream
    b: StaticUpstream
    corp: StaticUpstream
    wheels: Path

    @property
    def index(self) -> str:
        return f"{self.proxy.url}/simple/"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """The three upstreams and one proxy of them all, shared by the tests of this module."""
    root = tmp_path_factory.mktemp("upstreams")
    with StaticUpstream() as a, StaticUpstream() as b, StaticUpstream() as corp:
        b_url = with_userinfo(b.url, "reader", PASSWORD)
        proxy = MinistryServer(
            root / "proxy",
            arguments=(
                "--upstream", a.url,
                "--upstream", b_url,
                "--upstream", f"{corp.url} only={STEM}-corp-*",
                "--upstream-ttl", "0",
            ),
            environment=DIRECT,
        ).start()  # fmt: skip
        try:
            yield Setup(proxy, a, b, corp, root / "wheels")
        finally:
            proxy.stop()


def install(setup: Setup, where: Path, home: Path, *requirements: str) -> Path:
    """pip installs ``requirements`` through the proxy into a new venv; returns its python."""
    python = new_venv(where)
    result = pip_install(python, home, "--index-url", setup.index, *requirements)
    assert result.returncode == 0, result.stdout + result.stderr
    return python


def module_text(python: Path, module: str) -> str:
    """What ``module.VERSION`` is in the venv of ``python``."""
    code = f"import {module}; print({module}.VERSION)"
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return result.stdout.strip()


def wheel(setup: Setup, where: str, name: str, version: str, marker: str | None = None) -> Path:
    """A wheel of its own directory; ``marker`` makes its bytes differ from a namesake's."""
    module = name.replace("-", "_")
    files = {f"{module}/__init__.py": f"VERSION = {marker or version!r}\n".encode()}
    directory = setup.wheels / where
    directory.mkdir(parents=True, exist_ok=True)
    return make_wheel(directory, name, version, files=files)


def test_files_of_one_project_come_from_both_upstreams_and_a_namesake_keeps_the_first(
    setup: Setup, tmp_path: Path, home: Path
) -> None:
    """A project's 1.0 from ``a`` and 2.0 from ``b`` make one page; a filename both
    offer with different bytes is ``a``'s, never fetched from ``b``, and logged."""
    old = setup.a.add(wheel(setup, "a", f"{STEM}-mix", "1.0"))
    new = setup.b.add(wheel(setup, "b", f"{STEM}-mix", "2.0"))
    first = setup.a.add(wheel(setup, "a", f"{STEM}-dup", "1.0", marker="from-a"))
    second = setup.b.add(wheel(setup, "b", f"{STEM}-dup", "1.0", marker="from-b"))
    assert first.filename == second.filename and first.sha256 != second.sha256

    with setup.proxy.client() as client:
        answer = client.get(
            f"/simple/{STEM}-mix/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
        )
    assert answer.status_code == 200
    listed = {f["filename"]: f["hashes"]["sha256"] for f in answer.json()["files"]}
    assert listed == {old.filename: old.sha256, new.filename: new.sha256}

    python = install(setup, tmp_path / "v1", home, f"{STEM}-mix==1.0", f"{STEM}-dup")
    assert module_text(python, f"{STEM}_dup") == "from-a"
    python = install(setup, tmp_path / "v2", home, f"{STEM}-mix==2.0")
    assert module_text(python, f"{STEM}_mix") == "2.0"
    assert setup.a.count(setup.a.file_path(old.filename)) == 1
    assert setup.b.count(setup.b.file_path(new.filename)) == 1
    assert setup.a.count(setup.a.file_path(first.filename)) == 1
    assert setup.b.count(setup.b.file_path(second.filename)) == 0
    assert setup.proxy.served(f"/packages/{STEM}-mix/{new.filename}") == 1

    log = setup.proxy.log()
    conflict = next(line for line in log.splitlines() if "keeping the first" in line)
    assert first.filename in conflict and first.sha256 in conflict and second.sha256 in conflict
    assert setup.a.url in conflict and f"reader:***@127.0.0.1:{setup.b.port}" in conflict
    assert PASSWORD not in log


def test_a_routed_name_is_asked_of_its_upstream_alone(
    setup: Setup, tmp_path: Path, home: Path
) -> None:
    """``<stem>-corp-*`` comes only from ``corp``: a higher version of it on ``a`` is never
    asked for, and a routed name only ``b`` has is not taken from ``b``. Other names
    are never asked of ``corp``."""
    lib = setup.corp.add(wheel(setup, "corp", f"{STEM}-corp-lib", "1.0"))
    setup.a.add(wheel(setup, "a", f"{STEM}-corp-lib", "9.0"))
    setup.b.add(wheel(setup, "b", f"{STEM}-corp-tool", "1.0"))
    setup.corp.add(wheel(setup, "corp", f"{STEM}-plain", "1.0"))
    setup.a.add(wheel(setup, "a", f"{STEM}-plain", "2.0"))

    python = install(setup, tmp_path / "v", home, f"{STEM}-corp-lib", f"{STEM}-plain")
    assert module_text(python, f"{STEM}_corp_lib") == "1.0"
    assert module_text(python, f"{STEM}_plain") == "2.0"
    assert setup.corp.count(setup.corp.file_path(lib.filename)) == 1
    for other in (setup.a, setup.b):
        assert other.count(other.page_path(f"{STEM}-corp-lib")) == 0
    assert setup.corp.count(setup.corp.page_path(f"{STEM}-plain")) == 0

    refused = pip_install(
        new_venv(tmp_path / "w"), home, "--index-url", setup.index, f"{STEM}-corp-tool"
    )
    assert refused.returncode != 0
    assert setup.b.count(setup.b.page_path(f"{STEM}-corp-tool")) == 0
    assert setup.corp.count(setup.corp.page_path(f"{STEM}-corp-tool")) >= 1


def test_one_upstream_down_leaves_the_others_files_served(
    setup: Setup, tmp_path: Path, home: Path
) -> None:
    """With ``a`` stopped, a project both offer installs from ``b``, what was cached of
    ``a`` still installs, and the log says which upstream failed."""
    kept = setup.a.add(wheel(setup, "a", f"{STEM}-kept", "1.0"))
    install(setup, tmp_path / "v0", home, f"{STEM}-kept")  # cached while ``a`` is up
    setup.a.add(wheel(setup, "a", f"{STEM}-half", "1.0"))
    setup.b.add(wheel(setup, "b", f"{STEM}-half", "2.0"))
    setup.a.offline()
    try:
        python = install(setup, tmp_path / "v1", home, f"{STEM}-half")
        assert module_text(python, f"{STEM}_half") == "2.0"
        python = install(setup, tmp_path / "v2", home, f"{STEM}-kept")
        assert module_text(python, f"{STEM}_kept") == "1.0"
    finally:
        setup.a.online()
    assert setup.a.count(setup.a.file_path(kept.filename)) == 1
    log = setup.proxy.log()
    assert f"{setup.a.url} failed for {STEM}-half; serving the files of" in log


def test_the_upstream_list_through_the_command_line_and_the_api(setup: Setup) -> None:
    """``index show`` and the API list every upstream, masked; ``index update`` takes
    ``--upstream`` more than once; a ``file://`` or unknown option is refused."""
    with setup.proxy.client() as client:
        document = client.get("/-/api/indexes/upstream").json()
    assert document["upstream"] == setup.a.url
    assert document["upstreams"] == [
        {"url": setup.a.url, "only": [], "page_ttl": None},
        {"url": with_userinfo(setup.b.url, "reader", "***"), "only": [],
         "page_ttl": None},
        {"url": setup.corp.url, "only": [f"{STEM}-corp-*"], "page_ttl": None},
    ]  # fmt: skip
    refused = setup.proxy.cli(
        "index", "update", "upstream", "--upstream", setup.a.url, "--upstream", "x only"
    )
    assert refused.returncode != 0 and "Unknown upstream option 'only'" in refused.stderr
    changed = setup.proxy.cli(
        "index", "update", "upstream",
        "--upstream", f"{setup.corp.url} only={STEM}-corp-* ttl=1m",
        "--upstream", setup.a.url,
    )  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    shown = json.loads(setup.proxy.cli("index", "show", "upstream").stdout)
    assert [u["url"] for u in shown["upstreams"]] == [setup.corp.url, setup.a.url]
    assert shown["upstreams"][0]["page_ttl"] == 60
