"""The real ``uv publish --trusted-publishing always`` against a server speaking HTTPS.

The server serves TLS with a certificate of a throw-away authority made here
(tests/support/tls.py) and reads the stand-in issuer's keys from a file; a loopback
stand-in for GitHub Actions' token service (tests/support/oidc.py) gives uv its
identity token, exactly as a workflow run would. uv then asks the server for its
audience, exchanges the token, uploads, and burns the upload token.
"""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ALICE, add_user
from support.clients import uv
from support.distributions import make_wheel
from support.oidc import Issuer, actions_token_service
from support.server import MinistryServer
from support.tls import Certificates

AUDIENCE = "ministry-e2e"
REPOSITORY = "acme/widgets"
WORKFLOW = "release.yml"


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def gitlab() -> Issuer:
    """A self-hosted GitLab's token issuer."""
    return Issuer(url="https://gitlab.example")


@pytest.fixture
def server(
    tmp_path: Path, certificates: Certificates, issuer: Issuer, gitlab: Issuer
) -> Iterator[MinistryServer]:
    tls = ["--tls-cert", str(certificates.certificate), "--tls-key", str(certificates.key)]
    trusted = issuer.server_arguments(tmp_path, AUDIENCE)
    trusted += ["--oidc-jwks", gitlab.write_jwks(tmp_path / "gitlab-jwks.json")]
    instance = MinistryServer(tmp_path / "data", arguments=tls + trusted).start()
    add_user(instance, *ALICE)
    yield instance
    instance.stop()


def https(server: MinistryServer) -> str:
    return f"https://127.0.0.1:{server.port}"


def publish_from_actions(
    server: MinistryServer,
    certificates: Certificates,
    issuer: Issuer,
    claims: dict[str, Any],
    home: Path,
    wheel: Path,
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """``uv publish --trusted-publishing always`` as a GitHub Actions step runs it; uv's
    result and the audiences it asked the token service for."""
    with actions_token_service(issuer, claims) as actions:
        result = uv(
            home,
            "publish", "--trusted-publishing", "always",
            "--publish-url", f"{https(server)}/legacy/", str(wheel),
            environment={
                "GITHUB_ACTIONS": "true",
                "ACTIONS_ID_TOKEN_REQUEST_URL": actions.url,
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN": actions.request_token,
                "SSL_CERT_FILE": str(certificates.authority),
            },
        )  # fmt: skip
    return result, actions.audiences


def test_uv_publishes_with_a_github_actions_identity(
    server: MinistryServer,
    certificates: Certificates,
    issuer: Issuer,
    tmp_path: Path,
    home: Path,
    unique: str,
) -> None:
    added = server.cli("publisher", "add", unique, "--github", REPOSITORY, "--workflow", WORKFLOW)
    assert added.returncode == 0, added.stderr
    wheel = make_wheel(tmp_path, unique, "1.0")
    claims = issuer.github_claims(REPOSITORY, WORKFLOW, AUDIENCE)
    result, audiences = publish_from_actions(server, certificates, issuer, claims, home, wheel)
    assert result.returncode == 0, result.stdout + result.stderr
    assert audiences == [AUDIENCE]
    log = server.log()
    assert '"POST /_/oidc/mint-token HTTP/1.1" 200' in log
    assert '"POST /legacy/ HTTP/1.1" 200' in log
    verify = ssl.create_default_context(cafile=certificates.authority)
    with httpx.Client(base_url=https(server), verify=verify, trust_env=False) as client:
        page = client.get(
            f"/simple/{unique}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
        )
        assert [f["filename"] for f in page.json()["files"]] == [wheel.name]
    audit = server.cli("log", "--limit", "10").stdout
    assert f"github:{REPOSITORY}" in audit and "run_id=" in audit


def test_uv_with_a_workflow_nobody_trusts_publishes_nothing(
    server: MinistryServer,
    certificates: Certificates,
    issuer: Issuer,
    tmp_path: Path,
    home: Path,
    unique: str,
) -> None:
    added = server.cli("publisher", "add", unique, "--github", REPOSITORY, "--workflow", WORKFLOW)
    assert added.returncode == 0, added.stderr
    claims = issuer.github_claims(REPOSITORY, "nightly.yml", AUDIENCE)
    wheel = make_wheel(tmp_path, unique, "1.0")
    result, _ = publish_from_actions(server, certificates, issuer, claims, home, wheel)
    assert result.returncode != 0
    assert "workflow" in result.stderr  # uv prints the server's reason
    assert '"POST /legacy/ HTTP/1.1" 200' not in server.log()


def test_uv_publishes_with_a_gitlab_identity(
    server: MinistryServer,
    certificates: Certificates,
    gitlab: Issuer,
    tmp_path: Path,
    home: Path,
    unique: str,
) -> None:
    """uv reads a GitLab job's token from ``<AUDIENCE>_ID_TOKEN``; the publisher names
    its self-hosted GitLab's issuer."""
    added = server.cli(
        "publisher", "add", unique, "--gitlab", "acme/widgets", "--workflow", ".gitlab-ci.yml",
        "--issuer", gitlab.url,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    token = gitlab.sign(gitlab.gitlab_claims("acme/widgets", ".gitlab-ci.yml", AUDIENCE))
    variable = AUDIENCE.upper().replace("-", "_") + "_ID_TOKEN"
    result = uv(
        home,
        "publish", "--trusted-publishing", "always",
        "--publish-url", f"{https(server)}/legacy/", str(make_wheel(tmp_path, unique, "1.0")),
        environment={
            "GITLAB_CI": "true", variable: token, "SSL_CERT_FILE": str(certificates.authority),
        },
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    log = server.log()
    assert '"POST /_/oidc/mint-token HTTP/1.1" 200' in log
    assert '"POST /legacy/ HTTP/1.1" 200' in log
