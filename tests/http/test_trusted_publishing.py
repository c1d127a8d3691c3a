"""Trusted publishing: CI identity tokens exchanged for upload tokens (docs/security.md,
"Trusted publishing").

A loopback stand-in issuer signs the tokens (tests/support/oidc.py); the server reads
its keys from a file (``--oidc-jwks``), as an air-gapped site would. Every refused
exchange must publish nothing.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from conftest import ALICE, BOB, add_user
from support.distributions import make_wheel
from support.inprocess import InProcessServer, call_cli
from support.logins import form_login
from support.oidc import Issuer
from support.uploads import post_upload

AUDIENCE = "ministry-tests"
REPOSITORY = "acme/widgets"
WORKFLOW = "release.yml"


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def server(tmp_path: Path, issuer: Issuer) -> Iterator[InProcessServer]:
    arguments = issuer.server_arguments(tmp_path, AUDIENCE)
    instance = InProcessServer(tmp_path / "data", arguments=arguments).start()
    add_user(instance, *ALICE)
    add_user(instance, *BOB)
    yield instance
    instance.stop()


@pytest.fixture
def client(server: InProcessServer) -> Iterator[httpx.Client]:
    with server.client() as instance:
        yield instance


def add_publisher(server: InProcessServer, project: str, *extra: str) -> str:
    result = server.cli(
        "publisher", "add", project, "--github", REPOSITORY, "--workflow", WORKFLOW, *extra
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[0]


def mint(client: httpx.Client, token: str) -> httpx.Response:
    # uv sends the body without a content type.
    return client.post("/_/oidc/mint-token", content=json.dumps({"token": token}))


def minted(client: httpx.Client, issuer: Issuer, **changes: Any) -> str:
    claims = issuer.github_claims(REPOSITORY, WORKFLOW, AUDIENCE, **changes)
    response = mint(client, issuer.sign(claims))
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["success"] is True
    return str(document["token"])


def files_of(client: httpx.Client, project: str) -> list[str]:
    response = client.get(
        f"/simple/{project}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    return [f["filename"] for f in response.json()["files"]] if response.status_code == 200 else []


def test_the_audience_is_the_configured_one(client: httpx.Client) -> None:
    response = client.get("/_/oidc/audience")
    assert response.status_code == 200
    assert response.json() == {"audience": AUDIENCE}


def test_a_run_of_the_publishers_workflow_publishes(
    server: InProcessServer, client: httpx.Client, issuer: Issuer, tmp_path: Path, unique: str
) -> None:
    add_publisher(server, unique)
    token = minted(client, issuer)
    wheel = make_wheel(tmp_path, unique, "1.0")
    response = post_upload(client, wheel, auth=("__token__", token))
    assert response.status_code == 200, response.text
    assert files_of(client, unique) == [wheel.name]
    # The project the first publish created is owned by nobody: the index's admins.
    roles = client.get(f"/-/api/indexes/main/projects/{unique}/roles", auth=ALICE).json()
    assert roles["owners"] == []
    log = server.cli("log", "--limit", "20").stdout
    assert "mint-token" in log
    assert f"github:{REPOSITORY}" in log
    assert "run_id=987654" in log  # the upload names the run it came from


def test_a_pending_publisher_makes_its_owner_the_projects(
    server: InProcessServer, client: httpx.Client, issuer: Issuer, tmp_path: Path, unique: str
) -> None:
    add_publisher(server, unique, "--owner", "bob")
    token = minted(client, issuer)
    response = post_upload(client, make_wheel(tmp_path, unique, "1.0"), auth=("__token__", token))
    assert response.status_code == 200, response.text
    roles = client.get(f"/-/api/indexes/main/projects/{unique}/roles", auth=ALICE).json()
    assert roles["owners"] == ["bob"]


def test_a_pending_publisher_does_not_publish_in_a_project_someone_else_created(
    server: InProcessServer, client: httpx.Client, issuer: Issuer, tmp_path: Path, unique: str
) -> None:
    add_publisher(server, unique, "--owner", "bob")
    response = post_upload(client, make_wheel(tmp_path, unique, "1.0"), auth=ALICE)
    assert response.status_code == 200, response.text  # alice was first: she owns it
    token = minted(client, issuer)
    response = post_upload(client, make_wheel(tmp_path, unique, "2.0"), auth=("__token__", token))
    assert response.status_code == 403, response.text
    assert "alice" in response.text
    assert len(files_of(client, unique)) == 1


def _refused(client: httpx.Client, token: str, code: str, words: str) -> None:
    response = mint(client, token)
    assert response.status_code in (400, 422), response.text
    document = response.json()
    assert document["message"] == "Token request failed"
    (error,) = document["errors"]
    assert error["code"] == code
    assert words in error["description"], error["description"]


def _hs256_with_the_public_key(issuer: Issuer, claims: dict[str, Any]) -> str:
    """The old confusion attack: an HMAC keyed with the issuer's public key."""
    header = base64.urlsafe_b64encode(
        json.dumps({"alg": "HS256", "typ": "JWT", "kid": issuer.key_id}).encode()
    ).rstrip(b"=")
    import hashlib
    import hmac

    from cryptography.hazmat.primitives import serialization

    public = issuer.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    signature = hmac.new(public, header + b"." + payload, hashlib.sha256).digest()
    return (
        header + b"." + payload + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")
    ).decode()


def test_tokens_that_are_not_from_the_workflow_mint_nothing(
    server: InProcessServer, client: httpx.Client, issuer: Issuer, tmp_path: Path, unique: str
) -> None:
    add_publisher(server, unique, "--environment", "release")
    claims = issuer.github_claims(REPOSITORY, WORKFLOW, AUDIENCE, environment="release")
    stranger = Issuer()  # same issuer URL, a key the issuer never published
    cases = [
        (issuer.github_claims("acme/gadgets", WORKFLOW, AUDIENCE, environment="release"),
         "invalid-publisher", "repository"),
        (issuer.github_claims(REPOSITORY, "other.yml", AUDIENCE, environment="release"),
         "invalid-publisher", "workflow"),
        (issuer.github_claims(REPOSITORY, WORKFLOW, AUDIENCE, environment="staging"),
         "invalid-publisher", "environment"),
        (issuer.github_claims(REPOSITORY, WORKFLOW, AUDIENCE), "invalid-publisher", "environment"),
        ({**claims, "exp": claims["iat"] - 120}, "invalid-token", "expired"),
        ({**claims, "nbf": claims["iat"] + 600}, "invalid-token", "not valid yet"),
        ({**claims, "iat": claims["iat"] + 600}, "invalid-token", "not valid yet"),
        ({**claims, "aud": "pypi"}, "invalid-token", "audience"),
        ({k: v for k, v in claims.items() if k != "jti"}, "invalid-token", "'jti'"),
    ]  # fmt: skip
    for bad, code, words in cases:
        _refused(client, issuer.sign(bad), code, words)
    _refused(client, stranger.sign(claims), "invalid-token", "does not publish")
    _refused(client, jwt.encode(claims, None, algorithm="none"), "invalid-token", "'none'")
    _refused(client, _hs256_with_the_public_key(issuer, claims), "invalid-token", "'HS256'")
    _refused(client, "not.a.token", "invalid-token", "Not a JSON Web Token")
    other_issuer = Issuer(url="https://gitlab.example")
    _refused(
        client,
        other_issuer.sign({**claims, "iss": other_issuer.url}),
        "invalid-publisher",
        "issuer",
    )
    response = client.post("/_/oidc/mint-token", content=b"{}")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "invalid-payload"
    # The genuine one still works, once.
    good = issuer.sign(claims)
    assert mint(client, good).status_code == 200
    _refused(client, good, "invalid-token", "exchanged before")
    assert files_of(client, unique) == []


def test_a_minted_token_uploads_to_its_project_only_and_manages_nothing(
    server: InProcessServer, client: httpx.Client, issuer: Issuer, tmp_path: Path, unique: str
) -> None:
    add_publisher(server, unique)
    other = f"{unique}-other"
    response = post_upload(client, make_wheel(tmp_path, other, "1.0"), auth=ALICE)
    assert response.status_code == 200, response.text
    token = ("__token__", minted(client, issuer))
    response = post_upload(client, make_wheel(tmp_path, other, "2.0"), auth=token)
    assert response.status_code == 403, response.text
    assert files_of(client, other) == [f"{other.replace('-', '_')}-1.0-py3-none-any.whl"]
    response = post_upload(client, make_wheel(tmp_path, unique, "1.0"), auth=token)
    assert response.status_code == 200, response.text
    yank = client.post(
        f"/-/api/indexes/main/projects/{unique}/releases/1.0/yank", json={"reason": "x"}, auth=token
    )
    assert yank.status_code == 403, yank.text
    assert client.get("/-/api/users", auth=token).status_code == 403
    team = server.cli("index", "create", f"team/{unique}", "--uploaders", "alice")
    assert team.returncode == 0, team.stderr
    response = post_upload(
        client, make_wheel(tmp_path, unique, "3.0"), auth=token, url=f"/team/{unique}/legacy/"
    )
    assert response.status_code == 403, response.text


def test_a_minted_token_publishes_to_a_private_index_without_reading_it(
    server: InProcessServer, client: httpx.Client, issuer: Issuer, tmp_path: Path, unique: str
) -> None:
    index = f"team/{unique}"
    created = server.cli("index", "create", index, "--private", "--uploaders", "alice")
    assert created.returncode == 0, created.stderr
    add_publisher(server, unique, "--index", index)
    token = ("__token__", minted(client, issuer))
    response = post_upload(
        client, make_wheel(tmp_path, unique, "1.0"), auth=token, url=f"/{index}/legacy/"
    )
    assert response.status_code == 200, response.text
    assert client.get(f"/{index}/simple/{unique}/", auth=token).status_code in (401, 403, 404)
    assert client.get(f"/{index}/simple/{unique}/", auth=ALICE).status_code == 200


def test_a_burnt_token_or_a_removed_publisher_uploads_no_more(
    server: InProcessServer, client: httpx.Client, issuer: Issuer, tmp_path: Path, unique: str
) -> None:
    publisher = add_publisher(server, unique)
    burnt = minted(client, issuer)
    response = client.post("/_/oidc/burn-token", json={"token": burnt})
    assert response.status_code == 202, response.text
    response = post_upload(client, make_wheel(tmp_path, unique, "1.0"), auth=("__token__", burnt))
    assert response.status_code == 401
    live = minted(client, issuer)
    removed = server.cli("publisher", "remove", publisher)
    assert removed.returncode == 0, removed.stderr
    response = post_upload(client, make_wheel(tmp_path, unique, "1.1"), auth=("__token__", live))
    assert response.status_code == 401
    assert files_of(client, unique) == []


def test_owners_manage_publishers_through_the_api(
    server: InProcessServer, client: httpx.Client, tmp_path: Path, unique: str
) -> None:
    response = post_upload(client, make_wheel(tmp_path, unique, "1.0"), auth=ALICE)
    assert response.status_code == 200, response.text
    url = f"/-/api/indexes/main/projects/{unique}/publishers"
    body = {"github": REPOSITORY, "workflow": WORKFLOW, "environment": "release"}
    assert client.post(url, json=body, auth=BOB).status_code == 403  # not an owner
    added = client.post(url, json=body, auth=ALICE)
    assert added.status_code == 201, added.text
    document = added.json()
    assert (document["repository"], document["workflow"], document["environment"]) == (
        REPOSITORY, WORKFLOW, "release",
    )  # fmt: skip
    assert client.post(url, json=body, auth=ALICE).status_code == 409  # the same again
    for bad in (
        {"github": "not a repo", "workflow": WORKFLOW},
        {"github": REPOSITORY, "workflow": "../../x.yml"},
        {"github": REPOSITORY, "gitlab": "a/b", "workflow": WORKFLOW},
        {"github": REPOSITORY, "workflow": WORKFLOW, "issuer": "http://issuer.example"},
    ):
        response = client.post(url, json=body | bad if "gitlab" not in bad else bad, auth=ALICE)
        assert response.status_code == 400, (bad, response.text)
    assert [p["id"] for p in client.get(url, auth=ALICE).json()] == [document["id"]]
    assert client.get(url, auth=BOB).status_code == 403
    assert client.delete(f"{url}/{document['id']}", auth=BOB).status_code == 403
    assert client.delete(f"{url}/{document['id']}", auth=ALICE).status_code == 204
    assert client.get(url, auth=ALICE).json() == []


def test_discovery_names_the_endpoints_for_upload_urls_only(client: httpx.Client) -> None:
    import hashlib

    key = hashlib.sha256(b"/legacy/").hexdigest()
    response = client.get(f"/.well-known/pytp/{key}")
    assert response.status_code == 200
    document = response.json()
    assert document["audience-endpoint"].endswith("/_/oidc/audience")
    assert document["mint-token-endpoint"].endswith("/_/oidc/mint-token")
    unknown = hashlib.sha256(b"/nowhere/").hexdigest()
    assert client.get(f"/.well-known/pytp/{unknown}").status_code == 404


def test_the_cli_refuses_bad_publishers_in_one_line(server: InProcessServer, unique: str) -> None:
    for arguments in (
        ("--github", "acme", "--workflow", WORKFLOW),
        ("--github", REPOSITORY, "--workflow", "release.sh"),
        ("--gitlab", "group/project", "--workflow", ".gitlab-ci.yml", "--owner", "nobody"),
    ):
        result = server.cli("publisher", "add", unique, *arguments)
        assert result.returncode == 2, (arguments, result)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
    assert server.cli("publisher", "list").stdout == ""


def _xsrf(page: str) -> str:
    match = re.search(r'name="_xsrf" value="([^"]+)"', page)
    assert match is not None, "the page has no form"
    return match[1]


def test_owners_add_and_remove_publishers_on_the_project_page(
    server: InProcessServer, client: httpx.Client, tmp_path: Path, unique: str
) -> None:
    response = post_upload(client, make_wheel(tmp_path, unique, "1.0"), auth=ALICE)
    assert response.status_code == 200, response.text
    page_url = f"/project/{unique}/"
    with server.client() as bob:
        assert form_login(bob, *BOB).status_code in (200, 302, 303)
        assert 'action="/-/publishers"' not in bob.get(page_url).text
    with server.client() as alice:
        assert form_login(alice, *ALICE).status_code in (200, 302, 303)
        page = alice.get(page_url)
        assert 'action="/-/publishers"' in page.text
        fields = {"index": "main", "project": unique, "provider": "github",
                  "repository": REPOSITORY, "workflow": WORKFLOW, "environment": "",
                  "action": "add", "_xsrf": _xsrf(page.text)}  # fmt: skip
        added = alice.post("/-/publishers", data=fields)
        assert added.status_code == 303, added.text
        page = alice.get(page_url)
        assert f"github:{REPOSITORY} {WORKFLOW}" in page.text
        (publisher,) = client.get(
            f"/-/api/indexes/main/projects/{unique}/publishers", auth=ALICE
        ).json()
        bad = alice.post(
            "/-/publishers", data={**fields, "repository": "nope", "_xsrf": _xsrf(page.text)}
        )
        assert bad.status_code == 400
        removed = alice.post(
            "/-/publishers",
            data={"index": "main", "project": unique, "publisher": publisher["id"],
                  "action": "remove", "_xsrf": _xsrf(page.text)},
        )  # fmt: skip
        assert removed.status_code == 303, removed.text
    assert client.get(f"/-/api/indexes/main/projects/{unique}/publishers", auth=ALICE).json() == []


def test_config_show_writes_the_pinned_keys_as_a_table_the_file_takes_back(
    tmp_path: Path,
) -> None:
    pins = ["https://a.example=/keys/a.json", "https://b.example=/keys/b.json"]
    flags = [f"--oidc-jwks={pin}" for pin in pins]
    shown = call_cli("config", "show", "--data", str(tmp_path / "d"), *flags)
    assert shown.returncode == 0, shown.stderr
    written = tmp_path / "ministry.toml"
    written.write_text(shown.stdout)
    again = call_cli("config", "show", "--config", str(written))
    assert again.returncode == 0, again.stderr
    line = (
        'oidc_jwks = { "https://a.example" = "/keys/a.json", "https://b.example" = "/keys/b.json" }'
    )
    assert f"{line}  # --oidc-jwks" in shown.stdout.splitlines()
    assert line in again.stdout
    bad = call_cli("config", "show", "--data", str(tmp_path / "d"), "--oidc-jwks", "no-file")
    assert bad.returncode == 2
    assert "ISSUER=FILE" in bad.stderr and "Traceback" not in bad.stderr
