"""Directories on the server's disk as upstreams, and ``--upstream pip`` following pip's
whole configuration, with pip installing through the proxy.

One proxy has two local upstreams: a PEP 503 tree (``simple/<project>/index.html``
with relative links, a hash on some links only, a ``.metadata`` beside one wheel)
and a plain directory of wheels and sdists. Another is started with
``--upstream pip`` and a pip configuration file of the test's own.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.clients import new_venv, pip_install
from support.distributions import make_sdist, make_wheel
from support.server import MinistryServer
from support.upstreams import StaticUpstream, with_userinfo

pytestmark = pytest.mark.slow

DIRECT = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"


@dataclass
class Trees:
    root: Path
    tree: Path
    flat: Path
    files: dict[str, Path]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> Trees:
    """``root/simple/`` (a PEP 503 tree over ``root/files/``), ``root/dists/`` (a plain
    directory), and a wheel outside both that a tree page links all the same."""
    root = tmp_path_factory.mktemp("local")
    files_dir, flat = root / "files", root / "dists"
    files_dir.mkdir()
    flat.mkdir()
    outside = tmp_path_factory.mktemp("outside")
    files = {
        "tree1": make_wheel(files_dir, "ltree-app", "1.0"),
        "tree2": make_wheel(files_dir, "ltree-app", "2.0"),
        "escape": make_wheel(outside, "ltree-app", "3.0"),
        "flat_wheel": make_wheel(flat, "lflat-lib", "1.0"),
        "flat_sdist": make_sdist(flat, "lflat-lib", "0.9"),
        "flat_other": make_wheel(flat, "lflat-other", "1.0"),
    }
    metadata = files["tree2"].with_name(files["tree2"].name + ".metadata")
    metadata.write_text("Metadata-Version: 2.1\nName: ltree-app\nVersion: 2.0\n")
    page = root / "simple" / "ltree-app"
    page.mkdir(parents=True)
    escape = "../" * (len(page.parts) - 1) + str(files["escape"]).lstrip("/")
    page.joinpath("index.html").write_text(
        "<!DOCTYPE html><html><body>\n"
        f'<a href="../../files/{files["tree1"].name}#sha256={sha256(files["tree1"])}">1</a>\n'
        f'<a href="../../files/{files["tree2"].name}">2</a>\n'
        f'<a href="{escape}">3</a>\n'
        "</body></html>\n"
    )
    return Trees(root, root / "simple", flat, files)


@pytest.fixture(scope="module")
def proxy(trees: Trees, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinistryServer]:
    server = MinistryServer(
        tmp_path_factory.mktemp("proxy"),
        arguments=(
            "--upstream", trees.tree.as_uri() + "/",
            "--upstream", trees.flat.as_uri() + "/",
            "--upstream-ttl", "0",
        ),
        environment=DIRECT,
    ).start()  # fmt: skip
    yield server
    server.stop()


def installed(python: Path, module: str) -> str:
    code = f"import {module}; print({module}.VERSION)"
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return result.stdout.strip()


def test_a_pep_503_tree_and_a_plain_directory_install_with_pip(
    proxy: MinistryServer, trees: Trees, tmp_path: Path, home: Path
) -> None:
    """Files of both local upstreams install; a link without a hash is hashed here, a
    ``.metadata`` beside a wheel is offered, and a link out of the tree is dropped."""
    with proxy.client() as client:
        tree = client.get("/simple/ltree-app/", headers={"Accept": SIMPLE_JSON}).json()
        flat = client.get("/simple/lflat-lib/", headers={"Accept": SIMPLE_JSON}).json()
        missing = client.get("/simple/lnowhere/")
    offered = {f["filename"]: f for f in tree["files"]}
    assert set(offered) == {trees.files["tree1"].name, trees.files["tree2"].name}
    two = offered[trees.files["tree2"].name]
    assert two["hashes"]["sha256"] == sha256(trees.files["tree2"])
    assert two["core-metadata"] and not offered[trees.files["tree1"].name]["core-metadata"]
    assert {f["filename"] for f in flat["files"]} == {
        trees.files["flat_wheel"].name,
        trees.files["flat_sdist"].name,
    }
    assert missing.status_code == 404

    python = new_venv(tmp_path / "venv")
    index = f"{proxy.url}/simple/"
    result = pip_install(python, home, "--index-url", index, "ltree-app", "lflat-lib")
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed(python, "ltree_app") == "2.0"
    assert installed(python, "lflat_lib") == "1.0"
    for key, project in (("tree2", "ltree-app"), ("flat_wheel", "lflat-lib")):
        assert proxy.served(f"/packages/{project}/{trees.files[key].name}") == 1
    assert proxy.served(f"/packages/ltree-app/{trees.files['tree2'].name}.metadata") == 1
    result = pip_install(python, home, "--index-url", index, "ltree-app==3.0")
    assert result.returncode != 0

    # A file changed on disk is hashed again: its new bytes are seen, and refused, since
    # the filename keeps its first bytes (never cached, so it leaves the page).
    sdist = trees.files["flat_sdist"]
    before = sha256(sdist)
    sdist.write_bytes(sdist.read_bytes() + b"\0")
    with proxy.client() as client:
        flat = client.get("/simple/lflat-lib/", headers={"Accept": SIMPLE_JSON}).json()
    assert {f["filename"] for f in flat["files"]} == {trees.files["flat_wheel"].name}
    assert f"with sha256 {sha256(sdist)}, but it was {before}" in proxy.log()


def test_upstream_pip_follows_index_url_extra_index_url_and_find_links(
    trees: Trees, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pip's configuration file names an index, an extra index and a find-links
    directory: the proxy has them as three upstreams, in pip's order, says so in its
    log (the password masked), and installs from each."""
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX"):
        monkeypatch.delenv(name, raising=False)  # the file alone is pip's configuration
    for directory in ("first", "extra"):
        (tmp_path / directory).mkdir()
    with StaticUpstream() as first, StaticUpstream() as extra:
        first.add(make_wheel(tmp_path / "first", "lpip-first", "1.0"))
        extra.add(make_wheel(tmp_path / "extra", "lpip-extra", "1.0"))
        with_password = with_userinfo(extra.url, "pipuser", "pip-s3cret")
        config = tmp_path / "pip.conf"
        config.write_text(
            "[global]\n"
            f"index-url = {first.url}\n"
            f"extra-index-url = {with_password}\n"
            f"find-links = {trees.flat}\n"
        )
        proxy = MinistryServer(
            tmp_path / "proxy",
            arguments=["--upstream", "pip"],
            environment={**DIRECT, "PIP_CONFIG_FILE": str(config)},
        ).start()
        try:
            shown = json.loads(proxy.cli("index", "show", "upstream").stdout)
            assert [u["url"] for u in shown["upstreams"]] == [
                first.url,
                with_userinfo(extra.url, "pipuser", "***"),
                trees.flat.as_uri() + "/",
            ]
            python = new_venv(tmp_path / "venv")
            result = pip_install(
                python, home, "--index-url", f"{proxy.url}/simple/",
                "lpip-first", "lpip-extra", "lflat-other",
            )  # fmt: skip
            assert result.returncode == 0, result.stdout + result.stderr
            log = proxy.log()
        finally:
            proxy.stop()
        assert first.count(first.page_path("lpip-first")) == 1
        assert extra.count(extra.page_path("lpip-extra")) == 1
    resolved = next(line for line in log.splitlines() if "--upstream pip resolved to" in line)
    assert first.url in resolved and trees.flat.as_uri() in resolved
    assert "pipuser:***@" in resolved and "pip-s3cret" not in log
    assert installed(python, "lflat_other") == "1.0"
