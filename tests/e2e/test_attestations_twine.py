"""``twine upload --attestations`` against a ``ministry serve`` process (PEP 740).

twine sends the attestation files given beside a distribution (``<dist>.<kind>.attestation``)
as the upload's ``attestations`` field. The distribution and its attestation are the
real ones of tests/fixtures/attestations/; the upload token is minted from a stand-in
issuer's identity token for the workflow that signed them.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.clients import twine_upload
from support.oidc import Issuer
from support.server import MinistryServer

FIXTURES = Path(__file__).parent.parent / "fixtures" / "attestations"
SDIST = FIXTURES / "pypi_attestations-0.0.19.tar.gz"
PROVENANCE = FIXTURES / "pypi_attestations-0.0.19.tar.gz.provenance.json"
PROJECT = "pypi-attestations"
REPOSITORY = "trailofbits/pypi-attestations"
WORKFLOW = "release.yml"
AUDIENCE = "ministry-tests"
INTEGRITY = f"/integrity/{PROJECT}/0.0.19/{SDIST.name}/provenance"


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def server(tmp_path: Path, issuer: Issuer) -> Iterator[MinistryServer]:
    arguments = issuer.server_arguments(tmp_path, AUDIENCE)
    instance = MinistryServer(tmp_path / "data", arguments=arguments).start()
    result = instance.cli(
        "publisher", "add", PROJECT, "--github", REPOSITORY, "--workflow", WORKFLOW
    )
    assert result.returncode == 0, result.stderr
    yield instance
    instance.stop()


def minted(server: MinistryServer, issuer: Issuer) -> str:
    token = issuer.sign(issuer.github_claims(REPOSITORY, WORKFLOW, AUDIENCE))
    with server.client() as client:
        response = client.post("/_/oidc/mint-token", content=json.dumps({"token": token}))
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def recorded() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(PROVENANCE.read_text())
    return document


def dist_with_attestation(directory: Path, attestation: dict[str, Any]) -> list[Path]:
    """The sdist and its ``.publish.attestation`` file, as the publishing action leaves them."""
    directory.mkdir()
    sdist = Path(shutil.copy(SDIST, directory / SDIST.name))
    beside = directory / f"{SDIST.name}.publish.attestation"
    beside.write_text(json.dumps(attestation))
    return [sdist, beside]


def the_attestation() -> dict[str, Any]:
    (bundle,) = recorded()["attestation_bundles"]
    (attestation,) = bundle["attestations"]
    return dict(attestation)


def test_twine_uploads_attestations_and_the_integrity_api_serves_them(
    server: MinistryServer, issuer: Issuer, tmp_path: Path
) -> None:
    files = dist_with_attestation(tmp_path / "dist", the_attestation())
    home = tmp_path / "home"
    home.mkdir()
    token = minted(server, issuer)
    result = twine_upload(
        home, f"{server.url}/legacy/", "__token__", token, *files, options=["--attestations"]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    with httpx.Client(base_url=server.url) as client:
        served = client.get(INTEGRITY)
        assert served.status_code == 200, served.text
        assert served.headers["Content-Type"] == "application/vnd.pypi.integrity.v1+json"
        assert served.json() == recorded()
        page = client.get(
            f"/simple/{PROJECT}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
        ).json()
        assert page["files"][0]["provenance"] == server.url + INTEGRITY


def test_twine_reports_a_refused_attestation(
    server: MinistryServer, issuer: Issuer, tmp_path: Path
) -> None:
    attestation = the_attestation()
    signature = attestation["envelope"]["signature"]
    attestation["envelope"]["signature"] = ("A" if signature[0] != "A" else "B") + signature[1:]
    files = dist_with_attestation(tmp_path / "dist", attestation)
    home = tmp_path / "home"
    home.mkdir()
    token = minted(server, issuer)
    result = twine_upload(
        home, f"{server.url}/legacy/", "__token__", token, *files, options=["--attestations"]
    )
    assert result.returncode != 0
    assert "400" in result.stdout + result.stderr
    assert "does not verify" in result.stdout + result.stderr
    with httpx.Client(base_url=server.url) as client:
        assert client.get(f"/simple/{PROJECT}/").status_code == 404
