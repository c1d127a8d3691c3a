"""Uploads with PEP 740 attestations, and the Integrity API that serves them
(docs/security.md, "Attestations").

The distribution and its attestation are real (tests/fixtures/attestations/README.md):
the sdist of pypi-attestations 0.0.19, signed in GitHub Actions by the workflow
``release.yml`` of ``trailofbits/pypi-attestations``. They verify offline, so the
server never reaches Sigstore. The upload token is minted from a stand-in issuer's
identity token for that workflow, as ``twine upload --attestations`` would use it in CI.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ALICE, add_user
from support.inprocess import InProcessServer
from support.oidc import Issuer
from support.server import wait_for
from support.uploads import form_fields, post_upload
from support.upstreams import StaticUpstream

FIXTURES = Path(__file__).parent.parent / "fixtures" / "attestations"
SDIST = FIXTURES / "pypi_attestations-0.0.19.tar.gz"
PROVENANCE = FIXTURES / "pypi_attestations-0.0.19.tar.gz.provenance.json"
GITLAB_ATTESTATION = FIXTURES / "gitlab_oidc_project-0.0.3.tar.gz.publish.attestation"
PROJECT = "pypi-attestations"
REPOSITORY = "trailofbits/pypi-attestations"
WORKFLOW = "release.yml"
AUDIENCE = "ministry-tests"
INTEGRITY = f"/integrity/{PROJECT}/0.0.19/{SDIST.name}/provenance"
SIMPLE_JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def server(tmp_path: Path, issuer: Issuer) -> Iterator[InProcessServer]:
    arguments = issuer.server_arguments(tmp_path, AUDIENCE)
    instance = InProcessServer(tmp_path / "data", arguments=arguments).start()
    add_user(instance, *ALICE)
    yield instance
    instance.stop()


@pytest.fixture
def client(server: InProcessServer) -> Iterator[httpx.Client]:
    with server.client() as instance:
        yield instance


def recorded() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(PROVENANCE.read_text())
    return document


def attestations() -> list[dict[str, Any]]:
    """What twine sends: the attestation objects, from the recorded provenance's bundle."""
    bundles = recorded()["attestation_bundles"]
    return [a for bundle in bundles for a in bundle["attestations"]]


def add_publisher(server: InProcessServer, repository: str = REPOSITORY) -> None:
    result = server.cli("publisher", "add", PROJECT, "--github", repository, "--workflow", WORKFLOW)
    assert result.returncode == 0, result.stderr


def minted(client: httpx.Client, issuer: Issuer, repository: str = REPOSITORY) -> str:
    claims = issuer.github_claims(repository, WORKFLOW, AUDIENCE)
    response = client.post("/_/oidc/mint-token", content=json.dumps({"token": issuer.sign(claims)}))
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def upload(client: httpx.Client, auth: tuple[str, str], attested: object | None) -> httpx.Response:
    fields = form_fields(SDIST)
    if attested is not None:
        fields.append(("attestations", json.dumps(attested)))
    return post_upload(client, SDIST, auth=auth, fields=fields)


def nothing_stored(client: httpx.Client, server: InProcessServer) -> None:
    assert client.get(f"/simple/{PROJECT}/", headers=SIMPLE_JSON).status_code == 404
    assert client.get(INTEGRITY).status_code == 404
    blobs = [p for p in (server.data / "blobs" / "sha256").rglob("*") if p.is_file()]
    assert blobs == []


def test_a_trusted_publish_with_attestations_serves_its_provenance(
    server: InProcessServer, client: httpx.Client, issuer: Issuer
) -> None:
    add_publisher(server)
    response = upload(client, ("__token__", minted(client, issuer)), attestations())
    assert response.status_code == 200, response.text
    served = client.get(INTEGRITY)
    assert served.status_code == 200, served.text
    assert served.headers["Content-Type"] == "application/vnd.pypi.integrity.v1+json"
    assert served.json() == recorded()
    again = client.get(INTEGRITY, headers={"If-None-Match": served.headers["ETag"]})
    assert again.status_code == 304
    page = client.get(f"/simple/{PROJECT}/", headers=SIMPLE_JSON).json()
    (entry,) = page["files"]
    assert entry["provenance"] == server.url.rstrip("/") + INTEGRITY
    html = client.get(f"/simple/{PROJECT}/").text
    assert f'data-provenance="{server.url.rstrip("/")}{INTEGRITY}"' in html
    # The index's own name in the path serves it too.
    assert client.get(f"/main{INTEGRITY}").json() == recorded()
    # The project page says which workflow published the file.
    assert "github.com/trailofbits/pypi-attestations, workflow release.yml" in (
        client.get(f"/project/{PROJECT}/").text
    )


def test_an_api_token_upload_is_checked_against_the_projects_publishers(
    server: InProcessServer, client: httpx.Client
) -> None:
    add_publisher(server, "someone/else")
    add_publisher(server)
    response = upload(client, ALICE, attestations())
    assert response.status_code == 200, response.text
    assert client.get(INTEGRITY).json() == recorded()


def test_attestations_without_a_trusted_publisher_are_refused(
    server: InProcessServer, client: httpx.Client
) -> None:
    response = upload(client, ALICE, attestations())
    assert response.status_code == 400, response.text
    assert "only for projects with a trusted publisher" in response.text
    nothing_stored(client, server)


def test_a_tampered_attestation_is_refused_and_nothing_is_stored(
    server: InProcessServer, client: httpx.Client, issuer: Issuer
) -> None:
    add_publisher(server)
    tampered = attestations()
    signature = tampered[0]["envelope"]["signature"]
    tampered[0]["envelope"]["signature"] = ("A" if signature[0] != "A" else "B") + signature[1:]
    response = upload(client, ("__token__", minted(client, issuer)), tampered)
    assert response.status_code == 400, response.text
    assert "does not verify" in response.text
    nothing_stored(client, server)


def test_attestations_of_another_publisher_are_refused(
    server: InProcessServer, client: httpx.Client, issuer: Issuer
) -> None:
    add_publisher(server, "acme/widgets")
    response = upload(client, ("__token__", minted(client, issuer, "acme/widgets")), attestations())
    assert response.status_code == 400, response.text
    assert "not by the trusted publisher" in response.text
    nothing_stored(client, server)


def test_attestations_about_another_file_are_refused(
    server: InProcessServer, client: httpx.Client, issuer: Issuer
) -> None:
    add_publisher(server)
    other = json.loads(GITLAB_ATTESTATION.read_text())
    response = upload(client, ("__token__", minted(client, issuer)), [other])
    assert response.status_code == 400, response.text
    assert "another file" in response.text
    nothing_stored(client, server)


@pytest.mark.parametrize(
    ("value", "words"),
    [("not json", "is not JSON"), ([], "empty list"), ({"version": 1}, "JSON array")],
)
def test_malformed_attestations_are_refused(
    server: InProcessServer, client: httpx.Client, issuer: Issuer, value: object, words: str
) -> None:
    add_publisher(server)
    fields = form_fields(SDIST)
    fields.append(("attestations", value if isinstance(value, str) else json.dumps(value)))
    token = ("__token__", minted(client, issuer))
    response = post_upload(client, SDIST, auth=token, fields=fields)
    assert response.status_code == 400, response.text
    assert words in response.text
    nothing_stored(client, server)


def test_an_upload_without_attestations_has_no_provenance(
    server: InProcessServer, client: httpx.Client, issuer: Issuer
) -> None:
    add_publisher(server)
    response = upload(client, ("__token__", minted(client, issuer)), None)
    assert response.status_code == 200, response.text
    (entry,) = client.get(f"/simple/{PROJECT}/", headers=SIMPLE_JSON).json()["files"]
    assert "provenance" not in entry or entry["provenance"] is None
    assert "data-provenance" not in client.get(f"/simple/{PROJECT}/").text
    missing = client.get(INTEGRITY)
    assert missing.status_code == 404
    assert "without attestations" in missing.text


def test_a_private_index_keeps_its_provenance_private(
    server: InProcessServer, client: httpx.Client, issuer: Issuer
) -> None:
    add_publisher(server)
    assert upload(client, ("__token__", minted(client, issuer)), attestations()).status_code == 200
    result = server.cli("index", "update", "main", "--private", "--readers", "alice")
    assert result.returncode == 0, result.stderr
    assert client.get(INTEGRITY).status_code == 401
    assert client.get(INTEGRITY, auth=ALICE).status_code == 200


# -- a proxy of an index that serves provenance -------------------------------------------


@pytest.fixture
def static() -> Iterator[StaticUpstream]:
    with StaticUpstream() as upstream:
        yield upstream


def proxy_entry(client: httpx.Client) -> dict[str, Any]:
    response = client.get(f"/simple/{PROJECT}/", headers=SIMPLE_JSON)
    assert response.status_code == 200, response.text
    (entry,) = response.json()["files"]
    return dict(entry)


def test_a_proxy_keeps_the_upstreams_provenance_for_offline_use(
    static: StaticUpstream, tmp_path: Path
) -> None:
    static.add(SDIST, provenance=PROVENANCE.read_bytes())
    proxy = InProcessServer(tmp_path / "proxy", arguments=["--upstream", static.url]).start()
    try:
        with proxy.client() as client:
            entry = proxy_entry(client)
            assert entry["provenance"] == proxy.url.rstrip("/") + INTEGRITY
            assert client.get(entry["url"]).status_code == 200
            # Fetching the file fetches its provenance too, once.
            wait_for(lambda: static.count("/integrity/") == 1, what="the provenance fetch")
            served = client.get(INTEGRITY)
            assert served.status_code == 200, served.text
            assert served.headers["Content-Type"] == "application/vnd.pypi.integrity.v1+json"
            assert served.content == PROVENANCE.read_bytes()
            assert static.count("/integrity/") == 1
            assert "github.com/trailofbits/pypi-attestations, workflow release.yml" in (
                client.get(f"/project/{PROJECT}/").text
            )
    finally:
        proxy.stop()
    static.offline()
    offline = InProcessServer(tmp_path / "proxy", arguments=["--offline"]).start()
    try:
        with offline.client() as client:
            assert client.get(INTEGRITY).content == PROVENANCE.read_bytes()
    finally:
        offline.stop()


def test_a_proxy_drops_a_provenance_that_does_not_verify(
    static: StaticUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tampered = recorded()
    bundle = tampered["attestation_bundles"][0]
    bundle["publisher"]["repository"] = "mallory/pypi-attestations"
    static.add(SDIST, provenance=json.dumps(tampered).encode())
    proxy = InProcessServer(tmp_path / "proxy", arguments=["--upstream", static.url]).start()
    try:
        with proxy.client() as client:
            proxy_entry(client)
            missing = client.get(INTEGRITY)
            assert missing.status_code == 404, missing.text
            assert client.get(INTEGRITY).status_code == 404
            # Checked once: the refusal is remembered.
            assert static.count("/integrity/") == 1
            assert client.get(f"/packages/{PROJECT}/{SDIST.name}").status_code == 200
    finally:
        proxy.stop()
    assert "provenance of pypi_attestations-0.0.19.tar.gz was dropped" in caplog.text


def test_verify_knows_a_provenance_is_no_orphan(
    server: InProcessServer, client: httpx.Client, issuer: Issuer
) -> None:
    add_publisher(server)
    assert upload(client, ("__token__", minted(client, issuer)), attestations()).status_code == 200
    result = server.cli("verify", "--grace", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "orphan" not in result.stdout
    assert client.get(INTEGRITY).json() == recorded()
