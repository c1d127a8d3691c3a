"""The management API under ``/-/api/`` against a real server (docs/api.md, issue 3).

One server for the module, with alice as server administrator and bob and carol as
plain users; every test names its indexes, groups and users after ``unique``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ALICE, BOB
from support.distributions import make_sdist, make_wheel
from support.inprocess import InProcessServer
from support.server import Server
from support.uploads import post_upload

CAROL = ("carol", "carol-password-333")
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
JSON = {"Content-Type": "application/json"}
Auth = tuple[str, str]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of this module's own: alice is a server admin, bob and carol are not."""
    instance = InProcessServer(tmp_path_factory.mktemp("api") / "data").start()
    result = instance.cli(
        "user", "add", ALICE[0], "--admin", "--password-stdin", stdin=ALICE[1] + "\n"
    )
    assert result.returncode == 0, result.stderr
    with instance.client() as client:
        for name, password in (BOB, CAROL):
            response = client.post(
                "/-/api/users", json={"name": name, "password": password}, auth=ALICE
            )
            assert response.status_code == 201, response.text
    yield instance
    instance.stop()


@pytest.fixture
def client(api: Server) -> Iterator[httpx.Client]:
    """An HTTP client for the module's server."""
    with api.client() as instance:
        yield instance


# -- helpers --------------------------------------------------------------------------------


def refused(response: httpx.Response, status: int, words: str) -> dict[str, Any]:
    """An error: the status, and the JSON ``{"message", "code", "title"}`` holding ``words``."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    document: dict[str, Any] = response.json()
    assert set(document) == {"message", "code", "title"}
    assert words in document["message"], document
    assert document["code"] == f"{status} {document['message']}"
    return document


def ok(response: httpx.Response, status: int = 200) -> Any:
    """A success: the status and the JSON document."""
    assert response.status_code == status, response.text
    assert response.headers["Cache-Control"] == "no-store"
    return response.json()


def create_index(client: httpx.Client, name: str, **settings: Any) -> dict[str, Any]:
    """Create an index as alice (server admin)."""
    document: dict[str, Any] = ok(
        client.post("/-/api/indexes", json={"name": name, **settings}, auth=ALICE), 201
    )
    assert document["name"] == name
    return document


def create_user(client: httpx.Client, name: str) -> Auth:
    """Create a plain user as alice; returns their credentials."""
    password = f"{name}-password"
    ok(client.post("/-/api/users", json={"name": name, "password": password}, auth=ALICE), 201)
    return name, password


def create_token(client: httpx.Client, auth: Auth, **body: Any) -> tuple[str, dict[str, Any]]:
    """Create a token for ``auth``'s user with their password; returns the secret and document."""
    document = ok(client.post(f"/-/api/users/{auth[0]}/tokens", json=body, auth=auth), 201)
    return document["token"], document


def upload(client: httpx.Client, path: Path, index: str, auth: Auth) -> httpx.Response:
    """Upload a file to an index at ``/<index>/``."""
    return post_upload(client, path, auth=auth, url=f"/{index}/")


def yanked_on_simple_page(client: httpx.Client, index: str, project: str) -> dict[str, Any]:
    """filename -> the ``yanked`` field of the PEP 691 project page."""
    response = client.get(f"/{index}/simple/{project}/", headers={"Accept": SIMPLE_JSON})
    assert response.status_code == 200, response.text
    return {entry["filename"]: entry["yanked"] for entry in response.json()["files"]}


def log(client: httpx.Client, **query: Any) -> list[dict[str, Any]]:
    """The audit log as alice sees it."""
    changes: list[dict[str, Any]] = ok(client.get("/-/api/log", params=query, auth=ALICE))[
        "changes"
    ]
    return changes


# -- whoami ---------------------------------------------------------------------------------


def test_whoami_with_a_password(client: httpx.Client) -> None:
    """A password names the user, their role and groups, and no token."""
    assert ok(client.get("/-/api/whoami", auth=ALICE)) == {
        "user": "alice",
        "admin": True,
        "groups": [],
        "token": None,
    }
    assert ok(client.get("/-/api/whoami", auth=BOB))["admin"] is False


def test_whoami_with_a_token(client: httpx.Client) -> None:
    """A token names its user and its id, with __token__ or the user name."""
    secret, document = create_token(client, BOB, description="whoami")
    for username in ("__token__", "bob"):
        answer = ok(client.get("/-/api/whoami", auth=(username, secret)))
        assert answer == {"user": "bob", "admin": False, "groups": [], "token": document["id"]}


def test_whoami_without_or_with_bad_credentials_is_401(client: httpx.Client) -> None:
    """401 with a Basic challenge and the JSON error shape."""
    response = client.get("/-/api/whoami")
    refused(response, 401, "Authentication required")
    assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
    refused(client.get("/-/api/whoami", auth=("alice", "wrong-password")), 401, "Invalid")
    refused(client.get("/-/api/whoami", auth=("nobody", "whatever-pw")), 401, "Invalid")


# -- indexes --------------------------------------------------------------------------------


def test_index_list_shows_only_what_the_caller_may_read(client: httpx.Client, unique: str) -> None:
    """A private index is hidden from anonymous readers and from users who may not read it."""
    public, private = f"{unique}/public", f"{unique}/private"
    create_index(client, public)
    create_index(client, private, private=True, readers=["bob"])

    def names(auth: Auth | None) -> set[str]:
        return {i["name"] for i in ok(client.get("/-/api/indexes", auth=auth))["indexes"]}

    for auth in (None, CAROL):
        assert public in names(auth)
        assert "main" in names(auth)
        assert private not in names(auth)
    assert {public, private} <= names(BOB)
    assert {public, private} <= names(ALICE)


def test_create_index_echoes_its_settings(client: httpx.Client, unique: str) -> None:
    """201 with every setting; text lists and routes are read like the CLI's flags."""
    base = create_index(client, f"{unique}/prod")["name"]
    ok(client.post("/-/api/groups", json={"name": unique}, auth=ALICE), 201)
    document = create_index(
        client,
        f"{unique}/dev",
        bases=f"{base},main",
        private=True,
        readers=["bob", f"@{unique}"],
        uploaders="alice",
        admins=["bob"],
        allow_inherit="Acme-*",
        allow_delete=True,
        routes=[f"acme-*={base}", {"pattern": "internal-*", "base": "-"}],
        description="dev builds",
    )
    assert document == {
        "name": f"{unique}/dev",
        "kind": "hosted",
        "bases": [base, "main"],
        "readers": ["bob", f"@{unique}"],
        "uploaders": ["alice"],
        "admins": ["bob"],
        "allow_inherit": ["acme-*"],
        "private": True,
        "allow_delete": True,
        "allow_overwrite": False,
        "routes": [{"pattern": "acme-*", "base": base}, {"pattern": "internal-*", "base": "-"}],
        "description": "dev builds",
        "upstream": None,
        "upstreams": [],
        "page_ttl": 300,
        "min_age": 0,
        "min_age_exempt": [],
        "max_cache_size": None,
    }
    assert ok(client.get(f"/-/api/indexes/{unique}/dev", auth=BOB)) == document


def test_a_proxy_index_takes_a_cache_bound_and_a_hosted_one_does_not(
    client: httpx.Client, unique: str
) -> None:
    """``max_cache_size`` goes through the same size parser as the server's setting; a
    bound on a hosted index (nothing of it is ever evicted) is refused, nothing changed."""
    upstream = "http://127.0.0.1:9/simple/"
    proxy = create_index(client, f"{unique}/proxy", upstream=upstream, max_cache_size="500M")
    assert proxy["max_cache_size"] == 500 * 1024**2
    path = f"/-/api/indexes/{unique}/proxy"
    changed = ok(client.patch(path, json={"max_cache_size": 4096}, auth=ALICE))
    assert changed["max_cache_size"] == 4096
    refused(client.patch(path, json={"max_cache_size": "lots"}, auth=ALICE), 400, "not a size")
    refused(client.patch(path, json={"max_cache_size": True}, auth=ALICE), 400, "max_cache_size")
    assert ok(client.get(path, auth=ALICE))["max_cache_size"] == 4096
    assert (
        ok(client.patch(path, json={"max_cache_size": None}, auth=ALICE))["max_cache_size"] is None
    )
    create_index(client, f"{unique}/hosted")
    refused(
        client.patch(f"/-/api/indexes/{unique}/hosted", json={"max_cache_size": "1G"}, auth=ALICE),
        400,
        "hosted",
    )
    body = {"name": f"{unique}/other", "max_cache_size": "1G"}
    refused(client.post("/-/api/indexes", json=body, auth=ALICE), 400, "max_cache_size")


def test_index_permissions_name_groups_that_exist(client: httpx.Client, unique: str) -> None:
    """A misspelt group would grant nothing now and, created later, what no one decided."""
    body = {"name": unique, "uploaders": f"alice,@{unique}-nope"}
    refused(client.post("/-/api/indexes", json=body, auth=ALICE), 400, f"No group '{unique}-nope'")
    create_index(client, unique)
    refused(
        client.patch(f"/-/api/indexes/{unique}", json={"admins": "@nope"}, auth=ALICE),
        400,
        "No group 'nope'",
    )


def test_new_index_defaults(client: httpx.Client, unique: str) -> None:
    """Public, no uploaders, files immutable."""
    document = create_index(client, unique)
    assert document["private"] is False
    assert document["uploaders"] == []
    assert document["allow_delete"] is False
    assert document["allow_overwrite"] is False


def test_create_index_by_a_non_admin_is_403(client: httpx.Client, unique: str) -> None:
    """Only server administrators create indexes."""
    response = client.post("/-/api/indexes", json={"name": unique}, auth=BOB)
    refused(response, 403, "Only server administrators may create indexes")
    refused(client.get(f"/-/api/indexes/{unique}", auth=BOB), 404, f"No index '{unique}'")


def test_create_index_anonymously_is_401(client: httpx.Client, unique: str) -> None:
    """No credentials, no management."""
    refused(client.post("/-/api/indexes", json={"name": unique}), 401, "Authentication required")


def test_create_index_with_an_admin_token_is_403(client: httpx.Client, unique: str) -> None:
    """A token of a server admin still cannot manage: it needs the password."""
    secret, _ = create_token(client, ALICE, description="ci")
    response = client.post("/-/api/indexes", json={"name": unique}, auth=("__token__", secret))
    refused(response, 403, "needs your password")
    refused(client.get(f"/-/api/indexes/{unique}", auth=BOB), 404, "No index")


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("simple", "'simple' is a word the server's own URLs use"),
        ("team/simple", "'simple' is a word the server's own URLs use"),
        ("packages", "'packages' is a word the server's own URLs use"),
        ("Team", "Invalid index name 'Team'"),
        ("team/Dev", "Invalid index name 'team/Dev'"),
        ("a/b/c", "Invalid index name 'a/b/c'"),
        ("-", "Invalid index name '-'"),
        ("", "Invalid index name ''"),
    ],
)
def test_invalid_index_names_are_400(client: httpx.Client, name: str, words: str) -> None:
    """Reserved words, upper case and three parts are refused."""
    refused(client.post("/-/api/indexes", json={"name": name}, auth=ALICE), 400, words)


@pytest.mark.parametrize("body", [{}, {"name": 5}, {"name": None}, {"name": ["a"]}])
def test_create_index_needs_a_name(client: httpx.Client, body: dict[str, Any]) -> None:
    """A missing or non-text name is 400."""
    refused(
        client.post("/-/api/indexes", json=body, auth=ALICE), 400, "Give the new index a 'name'"
    )


def test_create_index_with_a_missing_base_is_400(client: httpx.Client, unique: str) -> None:
    """Bases must exist."""
    body = {"name": unique, "bases": ["main", f"{unique}/nope"]}
    response = client.post("/-/api/indexes", json=body, auth=ALICE)
    refused(response, 400, f"cannot inherit from '{unique}/nope': no such index")
    refused(client.get(f"/-/api/indexes/{unique}", auth=BOB), 404, "No index")


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"colour": "red"}, "Unknown index settings: colour."),
        ({"kind": "hosted"}, "Unknown index settings: kind."),
        ({"private": "yes"}, "'private' must be true or false"),
        ({"readers": 5}, "'readers' must be a list of names"),
        ({"readers": ["bad name"]}, "Invalid user or group 'bad name'"),
        ({"routes": ["acme"]}, "PATTERN=INDEX"),
        ({"routes": ["acme-*=nowhere"]}, "no index 'nowhere'"),
        ({"allow_inherit": ["a/b"]}, "Invalid project pattern"),
    ],
)
def test_create_index_with_bad_settings_is_400(
    client: httpx.Client, unique: str, settings: dict[str, Any], words: str
) -> None:
    """Each setting is checked, with a message naming it."""
    response = client.post("/-/api/indexes", json={"name": unique, **settings}, auth=ALICE)
    refused(response, 400, words)


def test_create_an_existing_index_is_409(client: httpx.Client, unique: str) -> None:
    """Names are unique."""
    create_index(client, unique)
    response = client.post("/-/api/indexes", json={"name": unique}, auth=ALICE)
    refused(response, 409, f"Index '{unique}' exists already")


def test_cycles_are_400(client: httpx.Client, unique: str) -> None:
    """An index cannot inherit from itself, directly or through others."""
    first, second = f"{unique}/a", f"{unique}/b"
    create_index(client, first)
    create_index(client, second, bases=[first])
    response = client.patch(f"/-/api/indexes/{first}", json={"bases": [second]}, auth=ALICE)
    refused(response, 400, f"'{second}' inherits from it")
    response = client.patch(f"/-/api/indexes/{first}", json={"bases": [first]}, auth=ALICE)
    refused(response, 400, f"'{first}' cannot inherit from itself")
    assert ok(client.get(f"/-/api/indexes/{first}"))["bases"] == []


def test_show_a_private_index(client: httpx.Client, unique: str) -> None:
    """401 for anonymous readers, 404 for users who may not read it (as if it were missing)."""
    create_index(client, unique, private=True, readers=["bob"])
    response = client.get(f"/-/api/indexes/{unique}")
    refused(response, 401, f"No index '{unique}' is open to anonymous readers: log in")
    assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
    refused(client.get(f"/-/api/indexes/{unique}", auth=CAROL), 404, f"No index '{unique}'.")
    assert ok(client.get(f"/-/api/indexes/{unique}", auth=BOB))["readers"] == ["bob"]
    refused(client.get(f"/-/api/indexes/{unique}/nope", auth=ALICE), 404, "No index")


def test_update_by_an_index_admin(client: httpx.Client, unique: str) -> None:
    """A user in ``admins`` changes the index; others and tokens may not."""
    create_index(client, unique, admins=["bob"])
    body = {"description": "changed", "uploaders": "bob,carol", "allow_overwrite": True}
    document = ok(client.patch(f"/-/api/indexes/{unique}", json=body, auth=BOB))
    assert document["description"] == "changed"
    assert document["uploaders"] == ["bob", "carol"]
    assert document["allow_overwrite"] is True
    assert document["admins"] == ["bob"]  # what the body did not name stays
    assert ok(client.get(f"/-/api/indexes/{unique}")) == document

    response = client.patch(f"/-/api/indexes/{unique}", json={"private": True}, auth=CAROL)
    refused(response, 403, f"'carol' may not change index '{unique}'")
    secret, _ = create_token(client, BOB)
    response = client.patch(
        f"/-/api/indexes/{unique}", json={"private": True}, auth=("__token__", secret)
    )
    refused(response, 403, "changing an index needs your password")
    assert ok(client.get(f"/-/api/indexes/{unique}"))["private"] is False


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"colour": "red"}, "Unknown index settings: colour."),
        ({"name": "other"}, "An index's name cannot change."),
        ({"kind": "proxy"}, "An index's kind cannot change."),
        ({"bases": ["nope-at-all"]}, "no such index"),
    ],
)
def test_update_with_bad_settings_is_400(
    client: httpx.Client, unique: str, body: dict[str, Any], words: str
) -> None:
    """Unknown settings, the fixed name, and bad values are refused."""
    create_index(client, unique)
    refused(client.patch(f"/-/api/indexes/{unique}", json=body, auth=ALICE), 400, words)


def test_update_unknown_index_is_404(client: httpx.Client, unique: str) -> None:
    """No index, nothing to change."""
    response = client.patch(f"/-/api/indexes/{unique}", json={"private": True}, auth=ALICE)
    refused(response, 404, f"No index '{unique}'")


def test_main_cannot_be_deleted(client: httpx.Client) -> None:
    """The default index stays."""
    response = client.delete("/-/api/indexes/main", auth=ALICE)
    refused(response, 400, "The default index 'main' cannot be deleted")
    assert ok(client.get("/-/api/indexes/main"))["name"] == "main"


def test_delete_an_index_others_inherit_from_is_400(client: httpx.Client, unique: str) -> None:
    """Delete the inheriting index first."""
    base, child = f"{unique}/base", f"{unique}/child"
    create_index(client, base)
    create_index(client, child, bases=[base])
    response = client.delete(f"/-/api/indexes/{base}", auth=ALICE)
    refused(response, 400, f"Index '{child}' inherits from '{base}'; change it first")
    assert client.delete(f"/-/api/indexes/{child}", auth=ALICE).status_code == 204
    response = client.delete(f"/-/api/indexes/{base}", auth=ALICE)
    assert response.status_code == 204
    assert response.content == b""
    refused(client.get(f"/-/api/indexes/{base}", auth=BOB), 404, "No index")


def test_delete_an_index_a_route_points_to_is_400(client: httpx.Client, unique: str) -> None:
    """A routing rule counts as inheriting."""
    base, child = f"{unique}/base", f"{unique}/child"
    create_index(client, base)
    create_index(client, child, routes=[f"acme-*={base}"])
    refused(client.delete(f"/-/api/indexes/{base}", auth=ALICE), 400, "inherits from")


def test_delete_an_index_with_projects_needs_force(
    client: httpx.Client, unique: str, tmp_path: Path
) -> None:
    """An index that holds projects is deleted only with ``?force=true``."""
    create_index(client, unique, uploaders=["alice"])
    wheel = make_wheel(tmp_path, unique, "1.0")
    assert upload(client, wheel, unique, ALICE).status_code == 200
    response = client.delete(f"/-/api/indexes/{unique}", auth=ALICE)
    refused(response, 400, f"Index '{unique}' holds 1 projects; delete it with force")
    assert client.get(f"/{unique}/simple/{unique}/").status_code == 200

    refused(client.delete(f"/-/api/indexes/{unique}?force=true", auth=BOB), 403, "administrators")
    assert client.delete(f"/-/api/indexes/{unique}?force=true", auth=ALICE).status_code == 204
    refused(client.get(f"/-/api/indexes/{unique}", auth=BOB), 404, "No index")
    assert client.get(f"/{unique}/simple/{unique}/", auth=BOB).status_code == 404


def test_delete_index_by_a_non_admin_is_403(client: httpx.Client, unique: str) -> None:
    """Even an index's own admin may not delete it."""
    create_index(client, unique, admins=["bob"])
    response = client.delete(f"/-/api/indexes/{unique}", auth=BOB)
    refused(response, 403, "Only server administrators may delete indexes")
    assert ok(client.get(f"/-/api/indexes/{unique}"))["name"] == unique


# -- users ----------------------------------------------------------------------------------


def test_list_users_is_for_admins(client: httpx.Client) -> None:
    """Admins see every user without password hashes; others get 403."""
    users = {u["name"]: u for u in ok(client.get("/-/api/users", auth=ALICE))["users"]}
    assert {"alice", "bob", "carol"} <= set(users)
    assert set(users["bob"]) == {"name", "admin", "disabled", "created"}
    assert users["alice"]["admin"] is True
    assert users["bob"]["admin"] is False
    assert users["bob"]["disabled"] is False
    assert "argon2" not in client.get("/-/api/users", auth=ALICE).text
    refused(client.get("/-/api/users", auth=BOB), 403, "Only server administrators may list users")
    refused(client.get("/-/api/users"), 401, "Authentication required")


def test_create_user_is_for_admins(client: httpx.Client, unique: str) -> None:
    """201 with the new user; non-admins 403; duplicates 409; bad names and passwords 400."""
    body = {"name": unique, "password": "long-enough-pw"}
    refused(client.post("/-/api/users", json=body, auth=BOB), 403, "may create users")
    document = ok(client.post("/-/api/users", json=body, auth=ALICE), 201)
    assert document["name"] == unique
    assert document["admin"] is False
    assert document["disabled"] is False
    assert datetime.fromisoformat(document["created"]) > datetime.now(UTC) - timedelta(minutes=5)
    assert ok(client.get("/-/api/whoami", auth=(unique, "long-enough-pw")))["user"] == unique
    refused(client.post("/-/api/users", json=body, auth=ALICE), 409, "exists already")
    short = {"name": f"{unique}-2", "password": "short"}
    refused(client.post("/-/api/users", json=short, auth=ALICE), 400, "at least 8 characters")
    bad = {"name": "bad name", "password": "long-enough-pw"}
    refused(client.post("/-/api/users", json=bad, auth=ALICE), 400, "Invalid name 'bad name'")
    token_name = {"name": "__token__", "password": "long-enough-pw"}
    refused(client.post("/-/api/users", json=token_name, auth=ALICE), 400, "Invalid name")
    refused(client.post("/-/api/users", json={"name": unique}, auth=ALICE), 400, "'password'")


def test_a_user_sees_their_own_record(client: httpx.Client) -> None:
    """``GET /-/api/users/NAME``: the user themselves or an administrator (handler docstring)."""
    assert ok(client.get("/-/api/users/bob", auth=ALICE))["name"] == "bob"
    assert ok(client.get("/-/api/users/bob", auth=BOB))["name"] == "bob"
    refused(client.get("/-/api/users/bob", auth=CAROL), 403, "bob")


def test_unknown_user_is_404(client: httpx.Client, unique: str) -> None:
    """Like every other unknown thing (group members, tokens), an unknown user is 404."""
    response = client.patch(f"/-/api/users/{unique}", json={"disabled": True}, auth=ALICE)
    refused(response, 404, f"No user '{unique}'")
    refused(client.get(f"/-/api/users/{unique}/tokens", auth=ALICE), 404, f"No user '{unique}'")
    refused(client.get(f"/-/api/users/{unique}", auth=ALICE), 404, f"No user '{unique}'")


def test_change_own_password(client: httpx.Client, unique: str) -> None:
    """A user changes their password; the old one stops working at once."""
    user, old = create_user(client, unique)
    assert ok(client.get("/-/api/whoami", auth=(user, old)))["user"] == user
    new = "a-brand-new-password"
    document = ok(client.patch(f"/-/api/users/{user}", json={"password": new}, auth=(user, old)))
    assert document["name"] == user
    refused(client.get("/-/api/whoami", auth=(user, old)), 401, "Invalid")
    assert ok(client.get("/-/api/whoami", auth=(user, new)))["user"] == user
    response = client.patch(f"/-/api/users/{user}", json={"password": "short"}, auth=(user, new))
    refused(response, 400, "at least 8 characters")


def test_change_another_users_password_is_for_admins(client: httpx.Client, unique: str) -> None:
    """Others may not; a server admin may."""
    user, old = create_user(client, unique)
    response = client.patch(f"/-/api/users/{user}", json={"password": "carols-choice"}, auth=CAROL)
    refused(response, 403, f"Only '{user}' or a server administrator may change this password")
    assert ok(client.get("/-/api/whoami", auth=(user, old)))["user"] == user
    ok(client.patch(f"/-/api/users/{user}", json={"password": "admins-choice"}, auth=ALICE))
    assert ok(client.get("/-/api/whoami", auth=(user, "admins-choice")))["user"] == user


def test_password_change_with_a_token_is_403(client: httpx.Client, unique: str) -> None:
    """A token cannot change its user's password."""
    user, old = create_user(client, unique)
    secret, _ = create_token(client, (user, old))
    response = client.patch(
        f"/-/api/users/{user}", json={"password": "stolen-by-token"}, auth=("__token__", secret)
    )
    refused(response, 403, "needs your password")
    assert ok(client.get("/-/api/whoami", auth=(user, old)))["user"] == user


def test_admin_role_is_changed_by_admins_only(client: httpx.Client, unique: str) -> None:
    """A user cannot make themselves admin; a server admin can."""
    auth = create_user(client, unique)
    response = client.patch(f"/-/api/users/{unique}", json={"admin": True}, auth=auth)
    refused(response, 403, "Only server administrators may change roles or disable users")
    assert ok(client.get("/-/api/whoami", auth=auth))["admin"] is False
    document = ok(client.patch(f"/-/api/users/{unique}", json={"admin": True}, auth=ALICE))
    assert document["admin"] is True
    assert ok(client.get("/-/api/whoami", auth=auth))["admin"] is True
    refused(client.patch(f"/-/api/users/{unique}", json={"admin": "yes"}, auth=ALICE), 400, "true")


def test_disabled_user_is_locked_out(client: httpx.Client, unique: str) -> None:
    """A disabled user's password and tokens are 401; enabling them again restores both."""
    auth = create_user(client, unique)
    secret, _ = create_token(client, auth)
    response = client.patch(f"/-/api/users/{unique}", json={"disabled": True}, auth=auth)
    refused(response, 403, "Only server administrators")
    document = ok(client.patch(f"/-/api/users/{unique}", json={"disabled": True}, auth=ALICE))
    assert document["disabled"] is True
    refused(client.get("/-/api/whoami", auth=auth), 401, "Invalid")
    refused(client.get("/-/api/whoami", auth=("__token__", secret)), 401, "Invalid")
    ok(client.patch(f"/-/api/users/{unique}", json={"disabled": False}, auth=ALICE))
    assert ok(client.get("/-/api/whoami", auth=auth))["user"] == unique
    assert ok(client.get("/-/api/whoami", auth=("__token__", secret)))["user"] == unique


# -- tokens ---------------------------------------------------------------------------------


def test_create_a_token_for_yourself(client: httpx.Client, unique: str) -> None:
    """201; the secret (``mop_<id>_...``) is in the answer, with the limits given."""
    create_index(client, unique, uploaders=["bob"])
    secret, document = create_token(
        client, BOB, description="ci", index=unique, projects=["acme-lib"], expires="30d"
    )
    assert secret.startswith(f"mop_{document['id']}_")
    assert document["user"] == "bob"
    assert document["description"] == "ci"
    assert document["index"] == unique
    assert document["projects"] == ["acme-lib"]
    assert document["revoked"] is False
    assert document["last_used"] is None
    expires = datetime.fromisoformat(document["expires"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=5)
    assert ok(client.get("/-/api/whoami", auth=("__token__", secret)))["token"] == document["id"]


def test_token_list_shows_no_secret_and_no_hash(client: httpx.Client, unique: str) -> None:
    """Listing shows ids and limits, never the secret or its hash; last use is recorded."""
    auth = create_user(client, unique)
    secret, created = create_token(client, auth, description="listed")
    ok(client.get("/-/api/whoami", auth=("__token__", secret)))
    response = client.get(f"/-/api/users/{unique}/tokens", auth=auth)
    tokens = ok(response)["tokens"]
    assert len(tokens) == 1
    listed = tokens[0]
    assert set(listed) == set(created) - {"token"}
    assert listed["id"] == created["id"]
    assert listed["description"] == "listed"
    assert listed["last_used"] is not None
    raw = secret.rsplit("_", 1)[1]
    assert raw not in response.text
    assert hashlib.sha256(raw.encode()).hexdigest() not in response.text
    assert hashlib.sha256(secret.encode()).hexdigest() not in response.text
    assert ok(client.get(f"/-/api/users/{unique}/tokens", auth=ALICE))["tokens"] == tokens
    refused(client.get(f"/-/api/users/{unique}/tokens", auth=CAROL), 403, "list this user's")


def test_revoked_token_fails(client: httpx.Client, unique: str, tmp_path: Path) -> None:
    """After revoking, the token is 401 for uploads and everything else."""
    create_index(client, unique, uploaders=["bob"])
    secret, document = create_token(client, BOB, index=unique)
    token_auth = ("__token__", secret)
    first = make_wheel(tmp_path, unique, "1.0")
    assert upload(client, first, unique, token_auth).status_code == 200
    response = client.delete(f"/-/api/users/bob/tokens/{document['id']}", auth=BOB)
    assert response.status_code == 204
    assert response.content == b""
    listed = ok(client.get("/-/api/users/bob/tokens", auth=BOB))["tokens"]
    assert next(t for t in listed if t["id"] == document["id"])["revoked"] is True
    second = make_wheel(tmp_path, unique, "2.0")
    response = upload(client, second, unique, token_auth)
    assert response.status_code == 401, response.text
    assert "Invalid or non-existent authentication information" in response.text
    refused(client.get("/-/api/whoami", auth=token_auth), 401, "Invalid")


def test_revoking_another_users_token_through_your_own_url_is_404(client: httpx.Client) -> None:
    """A token id under the wrong user is not found; the token keeps working."""
    secret, document = create_token(client, BOB, description="bob's")
    response = client.delete(f"/-/api/users/carol/tokens/{document['id']}", auth=CAROL)
    refused(response, 404, f"User 'carol' has no token '{document['id']}'")
    response = client.delete(f"/-/api/users/bob/tokens/{document['id']}", auth=CAROL)
    refused(response, 403, "Only 'bob' or a server administrator may revoke")
    assert ok(client.get("/-/api/whoami", auth=("__token__", secret)))["user"] == "bob"
    refused(client.delete("/-/api/users/bob/tokens/0000000000000000", auth=BOB), 404, "no token")


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"expires": "2000-01-01"}, 400, "A token's expiry must lie in the future"),
        ({"expires": "soon"}, 400, "Invalid expiry 'soon'"),
        ({"projects": ["acme-lib"]}, 400, "must also name its index"),
        ({"projects": "acme-lib", "index": "main"}, 400, "'projects' as a list of names"),
        ({"index": 5}, 400, "Give 'index' as text"),
        ({"description": ["x"]}, 400, "Give 'description' as text"),
        ({"index": "no-such-index"}, 404, "No index 'no-such-index'"),
    ],
)
def test_bad_token_requests(
    client: httpx.Client, body: dict[str, Any], status: int, words: str
) -> None:
    """Past or unreadable expiry, projects without an index, wrong types, unknown index."""
    refused(client.post("/-/api/users/bob/tokens", json=body, auth=BOB), status, words)


def test_tokens_for_others_and_by_tokens_are_refused(client: httpx.Client) -> None:
    """Only the user (by password) or an admin creates tokens for a user."""
    refused(client.post("/-/api/users/bob/tokens", json={}, auth=CAROL), 403, "Only 'bob'")
    secret, _ = create_token(client, BOB)
    response = client.post("/-/api/users/bob/tokens", json={}, auth=("__token__", secret))
    refused(response, 403, "needs your password")
    document = ok(client.post("/-/api/users/bob/tokens", json={}, auth=ALICE), 201)
    assert document["user"] == "bob"
    refused(client.post("/-/api/users/nobody-here/tokens", json={}, auth=ALICE), 404, "No user")


def test_index_list_through_a_token_shows_only_what_the_token_may_read(
    client: httpx.Client, unique: str
) -> None:
    """A token for index A neither reads nor lists private index B, although its user may.

    ``GET /-/api/indexes/B`` with the token is 404, as for a missing index, so the
    list must not show B's settings to the same token either.
    """
    public, private = f"{unique}/a", f"{unique}/b"
    create_index(client, public)
    create_index(client, private, private=True, readers=["bob"])
    secret, _ = create_token(client, BOB, index=public)
    auth = ("__token__", secret)
    refused(client.get(f"/-/api/indexes/{private}", auth=auth), 404, f"No index '{private}'.")
    assert ok(client.get(f"/-/api/indexes/{private}", auth=BOB))["name"] == private
    names = {i["name"] for i in ok(client.get("/-/api/indexes", auth=auth))["indexes"]}
    assert public in names
    assert private not in names


def test_scoped_token_uploads_only_to_its_index_and_projects(
    client: httpx.Client, unique: str, tmp_path: Path
) -> None:
    """A token for index A cannot upload to main; a project list limits the projects."""
    create_index(client, unique, uploaders=["bob"])
    secret, _ = create_token(client, BOB, index=unique, projects=[f"{unique}-ok"])
    auth = ("__token__", secret)
    allowed = make_wheel(tmp_path, f"{unique}-ok", "1.0")
    other = make_wheel(tmp_path, f"{unique}-other", "1.0")
    response = upload(client, allowed, "main", auth)
    assert response.status_code == 403
    assert f"This token is for index '{unique}', not 'main'" in response.text
    response = upload(client, other, unique, auth)
    assert response.status_code == 403
    assert "not allowed to upload project" in response.text
    assert upload(client, allowed, unique, auth).status_code == 200


# -- groups ---------------------------------------------------------------------------------


def test_group_lifecycle(client: httpx.Client, unique: str) -> None:
    """Create, add, remove, list, delete: server admins only."""
    refused(client.post("/-/api/groups", json={"name": unique}, auth=BOB), 403, "create groups")
    assert ok(client.post("/-/api/groups", json={"name": unique}, auth=ALICE), 201) == {
        "name": unique,
        "members": [],
    }
    refused(client.post("/-/api/groups", json={"name": unique}, auth=ALICE), 409, "exists")
    body = {"add": ["carol", "bob"]}
    document = ok(client.patch(f"/-/api/groups/{unique}", json=body, auth=ALICE))
    assert document == {"name": unique, "members": ["bob", "carol"]}
    assert unique in ok(client.get("/-/api/whoami", auth=BOB))["groups"]
    document = ok(client.patch(f"/-/api/groups/{unique}", json={"remove": ["carol"]}, auth=ALICE))
    assert document == {"name": unique, "members": ["bob"]}
    assert unique not in ok(client.get("/-/api/whoami", auth=CAROL))["groups"]
    groups = {
        g["name"]: g["members"] for g in ok(client.get("/-/api/groups", auth=ALICE))["groups"]
    }
    assert groups[unique] == ["bob"]
    refused(client.get("/-/api/groups", auth=BOB), 403, "list groups")
    refused(client.patch(f"/-/api/groups/{unique}", json=body, auth=BOB), 403, "change groups")
    refused(client.delete(f"/-/api/groups/{unique}", auth=BOB), 403, "delete groups")
    assert client.delete(f"/-/api/groups/{unique}", auth=ALICE).status_code == 204
    names = {g["name"] for g in ok(client.get("/-/api/groups", auth=ALICE))["groups"]}
    assert unique not in names
    assert unique not in ok(client.get("/-/api/whoami", auth=BOB))["groups"]
    refused(client.delete(f"/-/api/groups/{unique}", auth=ALICE), 404, f"No group '{unique}'")


def test_group_errors(client: httpx.Client, unique: str) -> None:
    """Unknown users and groups are 404; bad names and bodies 400."""
    ok(client.post("/-/api/groups", json={"name": unique}, auth=ALICE), 201)
    response = client.patch(f"/-/api/groups/{unique}", json={"add": ["nobody-x"]}, auth=ALICE)
    refused(response, 404, "No user 'nobody-x'")
    response = client.patch(f"/-/api/groups/{unique}-x", json={"add": ["bob"]}, auth=ALICE)
    refused(response, 404, f"No group '{unique}-x'")
    response = client.patch(f"/-/api/groups/{unique}", json={"add": "bob"}, auth=ALICE)
    refused(response, 400, "Give 'add' as a list of names")
    refused(client.post("/-/api/groups", json={"name": "a b"}, auth=ALICE), 400, "Invalid name")
    refused(client.post("/-/api/groups", json={}, auth=ALICE), 400, "Give 'name' as text")
    members = {
        g["name"]: g["members"] for g in ok(client.get("/-/api/groups", auth=ALICE))["groups"]
    }
    assert members[unique] == []


def test_group_grants_reading_a_private_index(client: httpx.Client, unique: str) -> None:
    """``@group`` in readers lets members read; to non-members it is no index (404)."""
    ok(client.post("/-/api/groups", json={"name": unique}, auth=ALICE), 201)
    ok(client.patch(f"/-/api/groups/{unique}", json={"add": ["bob"]}, auth=ALICE))
    create_index(client, unique, private=True, readers=[f"@{unique}"])
    assert ok(client.get(f"/-/api/indexes/{unique}", auth=BOB))["readers"] == [f"@{unique}"]
    assert client.get(f"/{unique}/simple/", auth=BOB).status_code == 200
    refused(client.get(f"/-/api/indexes/{unique}", auth=CAROL), 404, f"No index '{unique}'.")
    assert client.get(f"/{unique}/simple/", auth=CAROL).status_code == 404


# -- yank, unyank, delete -------------------------------------------------------------------


@pytest.fixture
def published(client: httpx.Client, unique: str, tmp_path: Path) -> dict[str, str]:
    """Index ``unique`` (bob uploads) with a wheel and an sdist of project ``unique`` 1.0."""
    create_index(client, unique, uploaders=["bob"])
    wheel = make_wheel(tmp_path, unique, "1.0")
    sdist = make_sdist(tmp_path, unique, "1.0")
    for path in (wheel, sdist):
        assert upload(client, path, unique, BOB).status_code == 200
    return {"index": unique, "wheel": wheel.name, "sdist": sdist.name}


def test_yank_and_unyank_a_release(client: httpx.Client, published: dict[str, str]) -> None:
    """Every file of the release is yanked with the reason, then unyanked."""
    index = project = published["index"]
    url = f"/-/api/indexes/{index}/projects/{project.upper()}/releases/1.0/yank"
    document = ok(client.post(url, json={"reason": "broken build"}, auth=BOB))
    assert sorted(document["files"], key=lambda f: f["filename"]) == sorted(
        [
            {"filename": published["wheel"], "yanked": "broken build"},
            {"filename": published["sdist"], "yanked": "broken build"},
        ],
        key=lambda f: f["filename"],
    )
    assert yanked_on_simple_page(client, index, project) == {
        published["wheel"]: "broken build",
        published["sdist"]: "broken build",
    }
    document = ok(client.delete(url, auth=BOB))
    assert {f["yanked"] for f in document["files"]} == {None}
    assert set(yanked_on_simple_page(client, index, project).values()) == {False}


def test_yank_and_unyank_one_file(client: httpx.Client, published: dict[str, str]) -> None:
    """A single file; without a reason the simple page says ``true``."""
    index = project = published["index"]
    url = f"/-/api/indexes/{index}/projects/{project}/files/{published['wheel']}/yank"
    document = ok(client.post(url, auth=BOB))
    assert document == {"files": [{"filename": published["wheel"], "yanked": ""}]}
    assert yanked_on_simple_page(client, index, project) == {
        published["wheel"]: True,
        published["sdist"]: False,
    }
    document = ok(client.delete(url, auth=BOB))
    assert document == {"files": [{"filename": published["wheel"], "yanked": None}]}
    assert set(yanked_on_simple_page(client, index, project).values()) == {False}


def test_yank_what_is_not_there_is_404(client: httpx.Client, published: dict[str, str]) -> None:
    """Unknown versions, files and projects; a non-text reason is 400."""
    index = project = published["index"]
    base = f"/-/api/indexes/{index}/projects"
    refused(client.post(f"{base}/{project}/releases/9.9/yank", auth=BOB), 404, "version 9.9")
    refused(client.post(f"{base}/{project}/files/nope.whl/yank", auth=BOB), 404, "nope.whl")
    refused(client.post(f"{base}/{project}-x/releases/1.0/yank", auth=BOB), 404, "has no")
    refused(client.post(f"{base}/%24%24/releases/1.0/yank", auth=BOB), 404, "No project")
    refused(
        client.post(f"/-/api/indexes/nope-{index}/projects/x/releases/1/yank", auth=BOB),
        404,
        "No index",
    )
    response = client.post(f"{base}/{project}/releases/1.0/yank", json={"reason": 5}, auth=BOB)
    refused(response, 400, "A yank 'reason' must be text")


def test_yank_by_a_non_uploader_is_403(client: httpx.Client, published: dict[str, str]) -> None:
    """Only the project's owners and maintainers and the index's admins yank, by password."""
    index = project = published["index"]
    url = f"/-/api/indexes/{index}/projects/{project}/releases/1.0/yank"
    refused(client.post(url, auth=CAROL), 403, f"'carol' may not yank in project '{project}'")
    refused(client.post(url), 401, "Authentication required")
    secret, _ = create_token(client, BOB)
    refused(client.post(url, auth=("__token__", secret)), 403, "yank needs your password")
    refused(client.delete(url, auth=CAROL), 403, "may not unyank")
    assert set(yanked_on_simple_page(client, index, project).values()) == {False}


def test_delete_a_file(client: httpx.Client, unique: str, tmp_path: Path) -> None:
    """Refused while the index keeps files; once allowed, gone, and its name stays retired."""
    create_index(client, unique, uploaders=["bob"], admins=["bob"])
    wheel = make_wheel(tmp_path, unique, "1.0")
    original = wheel.read_bytes()
    assert upload(client, wheel, unique, BOB).status_code == 200
    url = f"/-/api/indexes/{unique}/projects/{unique}/files/{wheel.name}"
    document = refused(client.delete(url, auth=BOB), 403, "keeps published files forever")
    assert "--allow-delete" in document["message"]
    file_url = f"/{unique}/packages/{unique}/{wheel.name}"
    assert client.get(file_url).status_code == 200

    ok(client.patch(f"/-/api/indexes/{unique}", json={"allow_delete": True}, auth=BOB))
    refused(client.delete(url, auth=CAROL), 403, "may not delete")
    document = ok(client.delete(url, auth=BOB))
    assert document == {"files": [{"filename": wheel.name, "yanked": None}]}
    assert client.get(file_url).status_code == 404
    refused(client.delete(url, auth=BOB), 404, wheel.name)

    (tmp_path / "other").mkdir()
    other = make_wheel(
        tmp_path / "other", unique, "1.0", files={f"{unique}/__init__.py": b"other = 1\n"}
    )
    assert other.name == wheel.name
    assert other.read_bytes() != original
    response = upload(client, other, unique, BOB)
    assert response.status_code == 400, response.text
    assert "previously used" in response.text
    response = upload(client, wheel, unique, BOB)
    assert response.status_code == 200, response.text
    assert client.get(file_url).content == original


def test_delete_a_release_and_a_project(client: httpx.Client, unique: str, tmp_path: Path) -> None:
    """A release's files, then the rest of the project; by index admins, not other uploaders."""
    create_index(client, unique, uploaders=["bob", "carol"], admins=["bob"], allow_delete=True)
    files = [make_wheel(tmp_path, unique, version) for version in ("1.0", "2.0")]
    for path in files:
        assert upload(client, path, unique, BOB).status_code == 200
    base = f"/-/api/indexes/{unique}/projects/{unique}"
    response = client.delete(f"{base}/releases/1.0", auth=CAROL)
    refused(response, 403, f"'carol' may not delete in project '{unique}' of index '{unique}'")
    document = ok(client.delete(f"{base}/releases/1.0", auth=BOB))
    assert document == {"files": [{"filename": files[0].name, "yanked": None}]}
    assert list(yanked_on_simple_page(client, unique, unique)) == [files[1].name]
    document = ok(client.delete(base, auth=BOB))
    assert document == {"files": [{"filename": files[1].name, "yanked": None}]}
    assert client.get(f"/{unique}/simple/{unique}/").status_code == 404
    refused(client.delete(base, auth=BOB), 404, "has no files")


# -- the audit log --------------------------------------------------------------------------


def test_log_records_who_did_what_from_where(
    client: httpx.Client, published: dict[str, str]
) -> None:
    """Uploads (the first making its uploader the owner), yanks, unyanks and deletes, each
    with actor, address, index and filename."""
    index = project = published["index"]
    wheel = published["wheel"]
    base = f"/-/api/indexes/{index}/projects/{project}"
    ok(client.post(f"{base}/files/{wheel}/yank", json={"reason": "bad"}, auth=BOB))
    ok(client.delete(f"{base}/files/{wheel}/yank", auth=BOB))
    ok(client.patch(f"/-/api/indexes/{index}", json={"allow_delete": True}, auth=ALICE))
    ok(client.delete(f"{base}/files/{wheel}", auth=ALICE))

    changes = log(client, index=index)
    assert all(c["index"] == index for c in changes)
    assert all(c["address"] == "127.0.0.1" for c in changes)
    assert [(c["action"], c["actor"], c["filename"]) for c in changes] == [
        ("add-index", "alice", None),
        ("add-owner", "bob", None),
        ("add-file", "bob", wheel),
        ("add-file", "bob", published["sdist"]),
        ("yank", "bob", wheel),
        ("unyank", "bob", wheel),
        ("update-index", "alice", None),
        ("delete-file", "alice", wheel),
    ]
    assert (changes[1]["project"], changes[1]["detail"]) == (project, "bob")
    assert changes[4]["detail"] == "bad"
    assert changes[2]["project"] == project
    assert changes[2]["version"] == "1.0"
    serials = [c["serial"] for c in changes]
    assert serials == sorted(serials)
    for change in changes:
        assert datetime.fromisoformat(change["time"]) > datetime.now(UTC) - timedelta(minutes=5)


def test_log_since_and_limit(client: httpx.Client, published: dict[str, str]) -> None:
    """``since`` gives the changes after a serial, ``limit`` caps how many, oldest first."""
    changes = log(client, index=published["index"])
    assert len(changes) == 4
    after = log(client, index=published["index"], since=changes[0]["serial"])
    assert after == changes[1:]
    assert log(client, index=published["index"], limit=1) == changes[:1]
    assert log(client, index=published["index"], since=changes[-1]["serial"]) == []
    everything = log(client, since=changes[0]["serial"] - 1, limit=2)
    assert len(everything) == 2
    assert everything[0] == changes[0]
    assert everything[1]["serial"] > changes[0]["serial"]
    refused(client.get("/-/api/log?since=x", auth=ALICE), 400, "whole numbers")
    refused(client.get("/-/api/log?limit=1.5", auth=ALICE), 400, "whole numbers")


def test_log_records_permission_and_token_changes(client: httpx.Client, unique: str) -> None:
    """Users, tokens and groups, with the details that name them."""
    serial = log(client, since=0, limit=10_000)[-1]["serial"]
    user, password = create_user(client, unique)
    _, token = create_token(client, (user, password))
    ok(client.post("/-/api/groups", json={"name": unique}, auth=ALICE), 201)
    ok(client.patch(f"/-/api/groups/{unique}", json={"add": [user]}, auth=ALICE))
    client.delete(f"/-/api/users/{user}/tokens/{token['id']}", auth=(user, password))
    mine = [c for c in log(client, since=serial) if unique in (c["detail"] or "")]
    assert [(c["action"], c["actor"], c["detail"]) for c in mine] == [
        ("add-user", "alice", user),
        ("add-token", user, f"{user} {token['id']}"),
        ("add-group", "alice", unique),
        ("add-member", "alice", f"{unique} {user}"),
        ("revoke-token", user, f"{user} {token['id']}"),
    ]
    assert {c["address"] for c in mine} == {"127.0.0.1"}


def test_log_is_for_server_admins(client: httpx.Client) -> None:
    """Non-admins, anonymous callers and tokens are refused."""
    refused(client.get("/-/api/log", auth=BOB), 403, "Only server administrators may read")
    refused(client.get("/-/api/log"), 401, "Authentication required")
    secret, _ = create_token(client, ALICE)
    refused(client.get("/-/api/log", auth=("__token__", secret)), 403, "needs your password")


# -- request bodies -------------------------------------------------------------------------


BODY_URLS = [
    ("POST", "/-/api/indexes"),
    ("PATCH", "/-/api/indexes/main"),
    ("POST", "/-/api/users"),
    ("PATCH", "/-/api/users/alice"),
    ("POST", "/-/api/users/alice/tokens"),
    ("POST", "/-/api/groups"),
]


@pytest.mark.parametrize(("method", "url"), BODY_URLS)
@pytest.mark.parametrize("body", [b"{", b"{'name': 'x'}", b"\xff\xfe", b"nul"])
def test_invalid_json_is_400(client: httpx.Client, method: str, url: str, body: bytes) -> None:
    """A body that is not JSON is refused before anything happens."""
    response = client.request(method, url, content=body, auth=ALICE, headers=JSON)
    refused(response, 400, "The request body is not valid JSON")


@pytest.mark.parametrize(("method", "url"), BODY_URLS)
@pytest.mark.parametrize("body", [b"[]", b'["name"]', b'"text"', b"5", b"null", b"true"])
def test_non_object_body_is_400(client: httpx.Client, method: str, url: str, body: bytes) -> None:
    """The body must be a JSON object."""
    response = client.request(method, url, content=body, auth=ALICE, headers=JSON)
    refused(response, 400, "The request body must be a JSON object")


def test_wrong_method_is_405_as_json(client: httpx.Client) -> None:
    """Errors keep the JSON shape for every status."""
    refused(client.put("/-/api/log", auth=ALICE), 405, "Method Not Allowed")


def test_a_fetched_index_document_can_be_sent_back_whole(client: httpx.Client, unique: str) -> None:
    """PATCH accepts the GET document, name and kind included, and applies its settings."""
    create_index(client, unique)
    document = ok(client.get(f"/-/api/indexes/{unique}"))
    document["description"] = "round trip"
    changed = ok(client.patch(f"/-/api/indexes/{unique}", json=document, auth=ALICE))
    assert changed == document
