"""The nginx configurations of docs/deploy.md, run as written: in front of two nodes, in
front of one machine with nginx sending the files, and ending TLS for one machine.

The configuration is read from the document itself; only the addresses (the
nodes', nginx's port), the cache directory and the certificate are put in, so a
change to the document that breaks caching, uploads, privacy or TLS breaks these
tests.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from conftest import ALICE, add_user, two_nodes
from support.backends import LOOPBACK, Nginx
from support.clients import new_venv, pip_install, run, twine_upload
from support.distributions import make_wheel
from support.server import MinistryServer, Server, wait_for
from support.tls import Certificates, make_certificates
from support.uploads import post_upload

DEPLOY = Path(__file__).parents[2] / "docs" / "deploy.md"
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
# What the document's page rule says: kept this long, then revalidated.
PAGE_SECONDS = 2.0


def documented(marker: str) -> str:
    """The one ``nginx`` block of docs/deploy.md that contains ``marker``."""
    blocks = re.findall(r"```nginx\n(.*?)```", DEPLOY.read_text(), re.DOTALL)
    (text,) = (block for block in blocks if marker in block)
    return text


def substituted(text: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        assert text.count(old) == 1, f"docs/deploy.md no longer has {old!r} once"
        text = text.replace(old, new)
    return text


def documented_site(nodes: list[MinistryServer]) -> Callable[[int, Path], str]:
    """The multi-node ``nginx`` block of docs/deploy.md with this test's addresses put in."""
    text = documented("upstream ministry {")

    def site(port: int, directory: Path) -> str:
        return substituted(text, {
            "server 127.0.0.1:8081;": f"server 127.0.0.1:{nodes[0].port};",
            "server 127.0.0.1:8082;": f"server 127.0.0.1:{nodes[1].port};",
            "listen 80;": f"listen 127.0.0.1:{port};",
            "/var/cache/nginx/ministry": str(directory / "cache"),
        })  # fmt: skip

    return site


@pytest.fixture(scope="module")
def nodes(
    tmp_path_factory: pytest.TempPathFactory, shared_stores: Callable[[], dict[str, str]]
) -> Iterator[list[Server]]:
    """Two nodes for the whole module: every test uses project names of its own, and
    counts only the requests it made itself."""
    with two_nodes(tmp_path_factory.mktemp("nodes"), shared_stores()) as started:
        yield started


@pytest.fixture(scope="module")
def nginx(nodes: list[MinistryServer], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    with Nginx(documented_site(nodes), tmp_path_factory.mktemp("nginx")) as server:
        yield server


def get(nginx: Nginx, path: str, **headers: str) -> httpx.Response:
    with httpx.Client(base_url=nginx.url, trust_env=False, timeout=30) as client:
        return client.get(path, headers=headers)


def answered(nodes: list[MinistryServer], path: str, status: int = 200) -> int:
    """How many times the nodes together answered ``GET path`` with ``status``."""
    return sum(node.served(path, status) for node in nodes)


def upload(node: MinistryServer | Nginx, wheel: Path, url: str = "/legacy/") -> None:
    with httpx.Client(base_url=node.url, trust_env=False, timeout=30) as client:
        response = post_upload(client, wheel, auth=ALICE, url=url)
    assert response.status_code == 200, response.text


def test_twine_uploads_and_pip_installs_through_nginx(
    nginx: Nginx, nodes: list[MinistryServer], tmp_path: Path, home: Path, unique: str
) -> None:
    """The whole cycle a team runs, with nginx as the only address the clients know."""
    wheel = make_wheel(tmp_path, unique, "1.0")
    result = twine_upload(home, f"{nginx.url}/legacy/", *ALICE, wheel)
    assert result.returncode == 0, result.stdout + result.stderr

    python = new_venv(tmp_path / "venv")
    result = pip_install(python, home, "--index-url", f"{nginx.url}/simple/", unique)
    assert result.returncode == 0, result.stdout + result.stderr
    assert answered(nodes, f"/packages/{unique}/{wheel.name}") == 1
    assert f"GET /packages/{unique}/{wheel.name} HTTP/1.1 200" in nginx.access_log.read_text()


def test_requests_are_spread_over_both_nodes(nginx: Nginx, nodes: list[MinistryServer]) -> None:
    for n in range(6):
        assert get(nginx, f"/-/health?spread={n}").status_code == 200
    for node in nodes:
        assert sum(f"/-/health?spread={n}" in node.log() for n in range(6)) == 3


def test_pages_are_cached_briefly_then_revalidated(
    nginx: Nginx, nodes: list[MinistryServer], tmp_path: Path, unique: str
) -> None:
    """A thousand runners cost one request per page every two seconds; uploads show soon."""
    path = f"/simple/{unique}/"
    first, second = (make_wheel(tmp_path, unique, v) for v in ("1.0", "2.0"))
    upload(nodes[0], first)

    assert get(nginx, path, **JSON).headers["X-Cache-Status"] == "MISS"
    for _ in range(5):
        assert get(nginx, path, **JSON).headers["X-Cache-Status"] == "HIT"
    assert answered(nodes, path) == 1

    upload(nginx, second)  # through nginx, to whichever node is next

    def shows_second() -> bool:
        names = [f["filename"] for f in get(nginx, path, **JSON).json()["files"]]
        return second.name in names

    wait_for(shows_second, 5 * PAGE_SECONDS, "the new upload to show through nginx")
    assert answered(nodes, path) == 2  # fetched again once, only when the copy expired

    # Let the copy expire (nginx counts whole seconds, so it lasts 2 to 3 s); the page
    # has not changed since.
    time.sleep(PAGE_SECONDS + 1.2)
    again = get(nginx, path, **JSON)
    assert again.headers["X-Cache-Status"] == "REVALIDATED"
    assert {f["filename"] for f in again.json()["files"]} == {first.name, second.name}
    assert answered(nodes, path, 304) == 1  # the node only confirmed the ETag


def test_html_and_json_forms_are_cached_apart(
    nginx: Nginx, nodes: list[MinistryServer], tmp_path: Path, unique: str
) -> None:
    upload(nodes[0], make_wheel(tmp_path, unique, "1.0"))
    path = f"/simple/{unique}/"
    assert get(nginx, path, **JSON).headers["Content-Type"].startswith(JSON["Accept"])
    html = get(nginx, path, Accept="text/html")
    assert html.headers["Content-Type"].startswith("text/html")
    assert get(nginx, path, **JSON).headers["X-Cache-Status"] == "HIT"
    assert get(nginx, path, Accept="text/html").headers["X-Cache-Status"] == "HIT"


def test_files_are_cached_and_ranges_served_from_the_cache(
    nginx: Nginx, nodes: list[MinistryServer], tmp_path: Path, unique: str
) -> None:
    wheel = make_wheel(tmp_path, unique, "1.0")
    upload(nodes[0], wheel)
    path = f"/packages/{unique}/{wheel.name}"
    first = get(nginx, path)
    assert first.content == wheel.read_bytes()
    assert first.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    second = get(nginx, path)
    assert second.headers["X-Cache-Status"] == "HIT"
    assert second.content == wheel.read_bytes()
    ranged = get(nginx, path, Range="bytes=10-19")
    assert ranged.status_code == 206
    assert ranged.content == wheel.read_bytes()[10:20]
    assert answered(nodes, path) == 1


def test_private_indexes_are_never_cached(
    nginx: Nginx, nodes: list[MinistryServer], tmp_path: Path, unique: str
) -> None:
    """With credentials, every request reaches a node: one user's view never serves another."""
    index = f"team/{unique}"
    result = nodes[0].cli("index", "create", index, "--private", "--uploaders", "alice")
    assert result.returncode == 0, result.stderr
    wheel = make_wheel(tmp_path, unique, "1.0")
    upload(nginx, wheel, url=f"/{index}/legacy/")

    page = f"/{index}/simple/{unique}/"
    file = f"/{index}/packages/{unique}/{wheel.name}"
    with httpx.Client(base_url=nginx.url, trust_env=False, timeout=30, auth=ALICE) as client:
        for _ in range(2):
            response = client.get(page, headers=JSON)
            assert response.status_code == 200
            assert response.headers["X-Cache-Status"] == "BYPASS"
            download = client.get(file)
            assert download.content == wheel.read_bytes()
            assert download.headers["Cache-Control"].startswith("private")
    assert answered(nodes, page) == 2
    assert answered(nodes, file) == 2

    anonymous = get(nginx, page, **JSON)
    assert anonymous.status_code == 401
    assert get(nginx, file).status_code == 401  # nothing was kept that it could be given


# -- one machine, nginx sending the files (--accel-redirect) -------------------------------


@pytest.fixture
def accelerated(tmp_path: Path) -> Iterator[tuple[MinistryServer, Nginx]]:
    """Ministry with ``--accel-redirect /_blobs/`` behind the single-machine block of the docs."""
    server = MinistryServer(tmp_path / "data", arguments=["--accel-redirect", "/_blobs/"]).start()
    add_user(server, *ALICE)
    text = documented("X-Accel-Redirect")

    def site(port: int, _: Path) -> str:
        return substituted(text, {
            "server 127.0.0.1:8081;": f"server 127.0.0.1:{server.port};",
            "listen 80;": f"listen 127.0.0.1:{port};",
            "/var/lib/ministry/blobs/": f"{server.data / 'blobs'}/",
            "/var/cache/nginx/ministry": str(tmp_path / "nginx-cache"),
        })  # fmt: skip

    with Nginx(site, tmp_path / "nginx") as nginx:
        yield server, nginx
    server.stop()


def blob_path(digest: str) -> str:
    """Where a blob lives below the blob directory."""
    return f"sha256/{digest[:2]}/{digest[2:4]}/{digest}"


def test_nginx_sends_the_files_ministry_allows(
    accelerated: tuple[MinistryServer, Nginx], tmp_path: Path, unique: str
) -> None:
    server, nginx = accelerated
    wheel = make_wheel(tmp_path, unique, "1.0", files={"data.bin": bytes(range(256)) * 400})
    upload(server, wheel)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    path = f"/packages/{unique}/{wheel.name}"

    whole = get(nginx, path)
    assert whole.content == wheel.read_bytes()
    assert whole.headers["Content-Type"] == "application/octet-stream"
    assert whole.headers["Content-Disposition"] == f'attachment; filename="{wheel.name}"'
    assert whole.headers["ETag"] == f'"{digest}"'
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert whole.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    ranged = get(nginx, path, Range="bytes=100-199")
    assert ranged.status_code == 206
    assert ranged.content == wheel.read_bytes()[100:200]
    assert get(nginx, path, **{"If-None-Match": f'"{digest}"'}).status_code == 304
    metadata = get(nginx, path + ".metadata")
    assert metadata.text.startswith("Metadata-Version:")
    assert metadata.headers["Content-Type"] == "text/plain; charset=utf-8"
    # Ministry answered every one of them, without sending the bytes itself.
    assert server.served(path) == 2
    assert server.served(path, 304) == 1
    # Pages are cached by nginx for a moment; downloads are not (they cannot be).
    page = f"/simple/{unique}/"
    assert wheel.name in get(nginx, page).text
    assert wheel.name in get(nginx, page).text
    assert server.served(page) == 1

    with server.client() as client:  # what nginx sees
        direct = client.get(path)
    assert direct.headers["X-Accel-Redirect"] == "/_blobs/" + blob_path(digest)
    assert direct.content == b""


def test_the_blob_location_is_internal_and_private_files_need_a_reader(
    accelerated: tuple[MinistryServer, Nginx], tmp_path: Path, unique: str
) -> None:
    server, nginx = accelerated
    index = f"team/{unique}"
    result = server.cli("index", "create", index, "--private", "--uploaders", "alice")
    assert result.returncode == 0, result.stderr
    wheel = make_wheel(tmp_path, unique, "1.0")
    upload(server, wheel, url=f"/{index}/legacy/")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    path = f"/{index}/packages/{unique}/{wheel.name}"

    assert get(nginx, path).status_code == 401
    assert get(nginx, "/_blobs/" + blob_path(digest)).status_code == 404
    with httpx.Client(base_url=nginx.url, trust_env=False, timeout=30, auth=ALICE) as client:
        allowed = client.get(path)
    assert allowed.content == wheel.read_bytes()
    assert allowed.headers["Cache-Control"].startswith("private")


# -- one machine, nginx ending TLS, Ministry trusting it (--trusted-proxies) ---------------

# How docs/deploy.md starts Ministry behind the TLS block.
TRUSTED = "--trusted-proxies 127.0.0.1"
# Another address of this machine: a client that nginx's own address cannot be mistaken for.
CLIENT = "127.0.0.2"


@pytest.fixture
def behind_tls(tmp_path: Path) -> Iterator[tuple[MinistryServer, Nginx, Certificates]]:
    """Ministry started as the docs say, behind the TLS block with a certificate of the test's."""
    assert TRUSTED in DEPLOY.read_text(), f"docs/deploy.md no longer starts Ministry with {TRUSTED}"
    certificates = make_certificates(tmp_path / "tls")
    server = MinistryServer(tmp_path / "data", arguments=TRUSTED.split()).start()
    add_user(server, *ALICE)
    text = documented("listen 443 ssl")

    def site(port: int, _: Path) -> str:
        return substituted(text, {
            "server 127.0.0.1:8081;": f"server 127.0.0.1:{server.port};",
            "listen 443 ssl;": f"listen {LOOPBACK}:{port} ssl;",
            "/etc/ssl/ministry/fullchain.pem": str(certificates.certificate),
            "/etc/ssl/ministry/privkey.pem": str(certificates.key),
        })  # fmt: skip

    with Nginx(site, tmp_path / "nginx") as nginx:
        yield server, nginx, certificates
    server.stop()


def test_pip_installs_over_tls_and_ministry_knows_the_client(
    behind_tls: tuple[MinistryServer, Nginx, Certificates], tmp_path: Path, home: Path, unique: str
) -> None:
    server, nginx, certificates = behind_tls
    base = f"https://{LOOPBACK}:{nginx.port}"
    trusting = ssl.create_default_context(cafile=certificates.authority)
    wheel = make_wheel(tmp_path, unique, "1.0")
    with httpx.Client(base_url=base, trust_env=False, timeout=30, verify=trusting) as client:
        response = post_upload(client, wheel, auth=ALICE)
    assert response.status_code == 200, response.text

    python = new_venv(tmp_path / "venv")
    # requests, under pip, prefers these variables to --cert: the machine's must not win.
    result = run(
        [sys.executable, "-m", "pip", "--isolated", "--python", str(python), "install",
         "--no-cache-dir", "--cert", str(certificates.authority), "--index-url",
         f"{base}/simple/", unique],
        home,
        extra_environment={"REQUESTS_CA_BUNDLE": "", "CURL_CA_BUNDLE": ""},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"GET /packages/{unique}/{wheel.name} HTTP/1.1 200" in nginx.access_log.read_text()

    # Absolute URLs name the address the client used, https included; the access log
    # names the client, not nginx.
    request_id = secrets.token_hex(8)
    transport = httpx.HTTPTransport(local_address=CLIENT, verify=trusting)
    with httpx.Client(base_url=base, trust_env=False, timeout=30, transport=transport) as client:
        document = client.get(f"/pypi/{unique}/json", headers={"X-Request-ID": request_id})
    assert document.status_code == 200, document.text
    assert [file["url"] for file in document.json()["urls"]] == [
        f"{base}/packages/{unique}/{wheel.name}"
    ]
    (line,) = (line for line in server.log().splitlines() if f"id={request_id}" in line)
    assert f'{CLIENT} - - "GET /pypi/{unique}/json HTTP/1.1" 200 ' in line
