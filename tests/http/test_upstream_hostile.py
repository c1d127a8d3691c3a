"""A hostile upstream: pages that point into the server's network, error bodies that must
not reach clients, and a page of 200 MiB.

The upstream and the "internal service" a hostile page points at are scripted
servers on loopback ports of their own; the internal service records every path
asked for, so a test sees that a request never reached it. The upstream is named
``localhost``: the rule is checked on the address a name resolves to.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from conftest import ALICE, BOB
from support.inprocess import InProcessServer
from support.scripted import Answer, ForwardProxy, ScriptedServer
from support.server import MinistryServer, Server

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
GENERIC = "The upstream index failed to answer"
SECRET = "SECRET-7f3a9c internal trace"
MiB = 1024 * 1024
# services.upstream.MAX_PAGE_BYTES
PAGE_CAP = 32 * MiB


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wheel(name: str, version: str) -> str:
    return f"{name}-{version}-py3-none-any.whl"


def html_page(links: Iterable[tuple[str, bytes]]) -> Answer:
    """A PEP 503 page linking each URL with the sha256 of its bytes."""
    anchors = "".join(
        f'<a href="{url}#sha256={sha256(data)}">{url.rsplit("/", 1)[1]}</a><br>\n'
        for url, data in links
    )
    body = f"<!DOCTYPE html><html><body>\n{anchors}</body></html>\n".encode()
    return Answer(200, body, {"Content-Type": "text/html"})


def file_answer(data: bytes) -> Answer:
    return Answer(200, data, {"Content-Type": "application/octet-stream"})


@dataclass
class Scene:
    upstream: ScriptedServer
    internal: ScriptedServer
    strict: Server
    allowing: Server


def serve(data: Path, upstream: ScriptedServer, *options: str) -> Server:
    arguments = ["--upstream", upstream.url("/simple/", host="localhost"), *options]
    return InProcessServer(data, arguments=arguments).start()


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    with ScriptedServer() as upstream, ScriptedServer() as internal:
        secret_bytes, own_bytes = b"internal service data", b"a file of the upstream itself"
        for name in ("leaky", "bouncy"):
            internal.answers[f"/files/{wheel(name, '1.0')}"] = file_answer(secret_bytes)
        upstream.answers[f"/files/{wheel('leaky', '1.1')}"] = file_answer(own_bytes)
        upstream.answers["/simple/leaky/"] = html_page(
            [
                (internal.url(f"/files/{wheel('leaky', '1.0')}"), secret_bytes),
                (upstream.url(f"/files/{wheel('leaky', '1.1')}", host="localhost"), own_bytes),
                (internal.url(f"/files/{wheel('leaky', '1.2')}", host="localhost"), own_bytes),
            ]
        )
        # The upstream's own host, then a redirect into the internal service.
        upstream.answers[f"/go/{wheel('bouncy', '1.0')}"] = Answer(
            302, b"", {"Location": internal.url(f"/files/{wheel('bouncy', '1.0')}")}
        )
        upstream.answers["/simple/bouncy/"] = html_page(
            [(upstream.url(f"/go/{wheel('bouncy', '1.0')}", host="localhost"), secret_bytes)]
        )
        upstream.answers["/simple/broken/"] = Answer(
            500, SECRET.encode(), {"Content-Type": "text/plain"}
        )
        root = tmp_path_factory.mktemp("hostile")
        strict = serve(root / "strict", upstream)
        allowing = serve(
            root / "allowing",
            upstream,
            "--upstream-allow-internal",
            "127.0.0.1",
            "--upstream-ttl",
            "0",
        )
        try:
            yield Scene(upstream, internal, strict, allowing)
        finally:
            strict.stop()
            allowing.stop()


def files_of(client: httpx.Client, project: str) -> dict[str, str]:
    """Filename -> URL of the proxied JSON page."""
    response = client.get(f"/simple/{project}/", headers={"Accept": SIMPLE_JSON})
    assert response.status_code == 200, response.text
    return {f["filename"]: f["url"] for f in response.json()["files"]}


def test_files_on_internal_addresses_are_dropped_and_never_fetched(scene: Scene) -> None:
    """A file at another loopback port (by address or by a name that resolves to loopback)
    is left off the page, and asking for it directly does not reach that port."""
    with scene.strict.client() as client:
        files = files_of(client, "leaky")
        assert list(files) == [wheel("leaky", "1.1")]
        own = client.get(files[wheel("leaky", "1.1")])
        assert own.content == b"a file of the upstream itself"
        for version in ("1.0", "1.2"):
            guessed = files[wheel("leaky", "1.1")].replace(
                wheel("leaky", "1.1"), wheel("leaky", version)
            )
            assert client.get(guessed).status_code == 404
    assert scene.internal.paths == []
    log = scene.strict.log()
    assert f"dropped {wheel('leaky', '1.0')} from the page of leaky" in log
    assert f"dropped {wheel('leaky', '1.2')} from the page of leaky" in log


def test_a_redirect_into_the_network_is_not_followed(scene: Scene) -> None:
    """The page links the upstream's own host, which redirects to an internal port: 502."""
    with scene.strict.client() as client:
        files = files_of(client, "bouncy")
        response = client.get(files[wheel("bouncy", "1.0")])
        assert response.status_code == 502
        assert GENERIC in response.text
    assert f"/go/{wheel('bouncy', '1.0')}" in scene.upstream.paths
    assert scene.internal.paths == []
    assert "leads to an internal address" in scene.strict.log()


@pytest.mark.slow
def test_through_an_http_proxy_each_hop_is_checked_before_it_is_sent(
    scene: Scene, tmp_path: Path
) -> None:
    """With HTTP_PROXY the proxy connects; the redirect into the network is still refused,
    before the proxy is asked for it."""
    through = {"HTTP_PROXY": "", "http_proxy": "", "NO_PROXY": "", "no_proxy": ""}
    with ForwardProxy() as forward:
        through["HTTP_PROXY"] = through["http_proxy"] = forward.url("")
        arguments = ["--upstream", scene.upstream.url("/simple/", host="localhost")]
        server = MinistryServer(tmp_path / "data", arguments=arguments, environment=through)
        server.start()
        try:
            with server.client() as client:
                files = files_of(client, "bouncy")
                assert client.get(files[wheel("bouncy", "1.0")]).status_code == 502
                assert list(files_of(client, "leaky")) == [wheel("leaky", "1.1")]
        finally:
            server.stop()
    assert scene.upstream.url("/simple/bouncy/", host="localhost") in forward.paths
    assert scene.upstream.url(f"/go/{wheel('bouncy', '1.0')}", host="localhost") in forward.paths
    assert not [path for path in forward.paths if f":{scene.internal.port}/" in path]
    assert scene.internal.paths == []


def test_allowed_internal_networks_are_reached(scene: Scene) -> None:
    """With --upstream-allow-internal 127.0.0.1 the same files are offered and served."""
    with scene.allowing.client() as client:
        files = files_of(client, "leaky")
        assert wheel("leaky", "1.0") in files
        assert client.get(files[wheel("leaky", "1.0")]).content == b"internal service data"
        bouncy = files_of(client, "bouncy")
        assert client.get(bouncy[wheel("bouncy", "1.0")]).content == b"internal service data"
    assert f"/files/{wheel('leaky', '1.0')}" in scene.internal.paths
    assert f"/files/{wheel('bouncy', '1.0')}" in scene.internal.paths


def test_an_upstream_error_is_a_plain_502(scene: Scene) -> None:
    """Neither the upstream's status nor its body reach the client; the log has them."""
    with scene.strict.client() as client:
        for accept in (SIMPLE_JSON, "text/html"):
            response = client.get("/simple/broken/", headers={"Accept": accept})
            assert response.status_code == 502
            assert GENERIC in response.text
            assert "SECRET" not in response.text
            assert "500" not in response.text
    assert "answered 500" in scene.strict.log()


def test_changing_an_upstream_is_for_server_administrators(scene: Scene) -> None:
    """An index admin may change the index's other settings, not where it connects to."""
    server = scene.strict
    for name, password in (ALICE, BOB):
        admin = ["--admin"] if name == ALICE[0] else []
        result = server.cli("user", "add", name, *admin, "--password-stdin", stdin=password + "\n")
        assert result.returncode == 0, result.stderr
    first = scene.upstream.url("/simple/", host="localhost")
    with server.client() as client:
        body = {"name": "team-proxy", "upstream": first, "admins": ["bob"]}
        assert client.post("/-/api/indexes", json=body, auth=ALICE).status_code == 201
        moved = {"upstream": scene.internal.url("/simple/")}
        refused = client.patch("/-/api/indexes/team-proxy", json=moved, auth=BOB)
        assert refused.status_code == 403
        assert "Only server administrators may change the upstream" in refused.text
        # Nor add an upstream to the list, nor name a directory of the server's disk
        # (docs/security.md, "Local trees as upstreams").
        for changed in (
            {"upstreams": [first, scene.internal.url("/simple/")]},
            {"upstream": "file:///etc/"},
            {"upstreams": [{"url": "file:///var/lib/", "only": ["team-*"]}]},
        ):
            refused = client.patch("/-/api/indexes/team-proxy", json=changed, auth=BOB)
            assert refused.status_code == 403, changed
        shown = client.get("/-/api/indexes/team-proxy", auth=BOB).json()
        assert [u["url"] for u in shown["upstreams"]] == [first]
        same = {"upstream": first, "description": "ours"}
        assert client.patch("/-/api/indexes/team-proxy", json=same, auth=BOB).status_code == 200
        # The document as shown, sent back whole, changes nothing the index admin may not.
        assert client.patch("/-/api/indexes/team-proxy", json=shown, auth=BOB).status_code == 200
        assert client.patch("/-/api/indexes/team-proxy", json=moved, auth=ALICE).status_code == 200


def shift(upstream: ScriptedServer, old: bytes, new: bytes) -> None:
    """Serve the shifty project's page and files: 1.0 with ``old``, 1.1 with ``new``."""
    for version, data in (("1.0", old), ("1.1", new)):
        upstream.answers[f"/files/{wheel('shifty', version)}"] = file_answer(data)
    upstream.answers["/simple/shifty/"] = html_page(
        (upstream.url(f"/files/{wheel('shifty', v)}", host="localhost"), data)
        for v, data in (("1.0", old), ("1.1", new))
    )


def changed_files(server: Server) -> float:
    with server.client() as client:
        text = client.get("/-/metrics").text
    match = re.search(
        r'^ministry_upstream_changed_files_total\{index="upstream"\} (\S+)$', text, re.M
    )
    return float(match[1]) if match else 0.0


def test_a_filename_keeps_its_first_bytes(scene: Scene) -> None:
    """An upstream that later lists other bytes under a filename served before: the proxy
    keeps offering and serving the first bytes (cached), leaves off a changed file it has
    not cached, and counts both."""
    server, first, second = scene.allowing, b"first bytes of 1.0", b"first bytes of 1.1"
    shift(scene.upstream, first, second)
    with server.client() as client:
        files = files_of(client, "shifty")
        assert client.get(files[wheel("shifty", "1.0")]).content == first
        before = changed_files(server)
        shift(scene.upstream, b"other bytes of 1.0", b"other bytes of 1.1")
        response = client.get("/simple/shifty/", headers={"Accept": SIMPLE_JSON})
        entries = {f["filename"]: f for f in response.json()["files"]}
        assert list(entries) == [wheel("shifty", "1.0")]
        assert entries[wheel("shifty", "1.0")]["hashes"] == {"sha256": sha256(first)}
        assert client.get(files[wheel("shifty", "1.0")]).content == first
        assert client.get(files[wheel("shifty", "1.1")]).status_code == 404
    assert changed_files(server) >= before + 2  # at each refresh (every request: TTL 0)
    assert f"upstream now lists {wheel('shifty', '1.1')} with sha256" in server.log()


def _memory(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    return {k: int(v) * 1024 for k, v in re.findall(r"(VmRSS|VmHWM):\s+(\d+) kB", status)}


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_a_200_mib_page_costs_no_more_memory_than_the_cap(tmp_path: Path) -> None:
    """The page is read up to the cap and refused (502): the server's peak memory grows by
    at most the cap and a few MiB, not by the page."""
    block = b"<!-- " + b"x" * (MiB - 10) + b" -->\n"
    with ScriptedServer() as upstream:
        upstream.answers["/simple/huge/"] = Answer(
            200, headers={"Content-Type": "text/html"}, chunks=lambda: [block] * 200
        )
        # Its own process: the peak memory measured is the server's alone.
        arguments = ["--upstream", upstream.url("/simple/", host="localhost")]
        server = MinistryServer(tmp_path / "data", arguments=arguments).start()
        try:
            assert server.process is not None
            with server.client() as client:
                assert client.get("/simple/nothing-here/").status_code in (404, 502)
                # The peak so far is the start's; from now on it is this request's.
                Path(f"/proc/{server.process.pid}/clear_refs").write_text("5")
                before = _memory(server.process.pid)
                response = client.get("/simple/huge/")
                after = _memory(server.process.pid)
        finally:
            server.stop()
    assert "/simple/huge/" in upstream.paths
    assert after["VmHWM"] - before["VmRSS"] < PAGE_CAP + 8 * MiB, (before, after)
    assert response.status_code == 502
    assert GENERIC in response.text
