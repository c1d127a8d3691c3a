"""A private index is indistinguishable from a missing one to whoever may not read it.

docs/security.md, "Private indexes": every URL that names an index, for strangers
(401 with a challenge) and signed-in non-readers (404); inheritance that neither
shows nor hides what an unreadable base holds; /-/metrics without private names.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from conftest import ALICE, BOB, add_user
from support.clients import run, tool
from support.distributions import make_wheel
from support.inprocess import InProcessServer
from support.logins import without_xsrf_token
from support.multipart import FileField, encode
from support.server import Server
from support.uploads import form_fields, post_upload

CAROL = ("carol", "carol-password-333")
ROOT = ("root", "root-password-4444")
# Names of one length, so that the answers can be compared byte for byte.
SECRET, ABSENT = "team/secret", "team/absent"
WHEEL = "hidden_lib-1.0-py3-none-any.whl"
# Every URL that names an index, with {} for the index.
READ_PATHS = [
    "/{}/simple/",
    "/{}/simple/hidden-lib/",
    "/{}/simple/nothing-here/",
    "/{}/simple/Hidden_Lib/",
    "/{}/packages/",
    "/{}/packages/hidden-lib/",
    f"/{{}}/packages/hidden-lib/{WHEEL}",
    f"/{{}}/packages/hidden-lib/{WHEEL}.metadata",
    "/{}/pypi/hidden-lib/json",
    "/{}/pypi/hidden-lib/1.0/json",
    "/{}/project/hidden-lib/",
    "/{}/project/hidden-lib/1.0/",
    "/{}/",
    "/{}/hidden-lib/",
    "/{}/nothing-here/",
    "/{}/Hidden_Lib/",
    "/{}/search",
    "/{}/search?q=hidden",
    "/-/indexes/{}/",
    "/-/help?index={}",
    "/-/api/indexes/{}",
]


def _cli(server: Server, *arguments: str) -> None:
    result = server.cli(*arguments)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``team/secret`` (private, bob reads) under the public ``team/dev``; carol reads nothing.

    ``team/secret`` holds ``hidden-lib`` and ``twin`` 1.0; the public ``team/pub``
    holds ``twin`` 2.0; ``team/dev`` inherits from both, the secret one first.
    """
    tmp = tmp_path_factory.mktemp("private")
    server = InProcessServer(tmp / "data").start()
    for user in (ALICE, BOB, CAROL, ROOT):
        add_user(server, *user)
    _cli(server, "user", "update", "root", "--admin")
    _cli(server, "index", "create", SECRET, "--private", "--readers", "bob", "--uploaders", "bob")
    _cli(server, "index", "create", "team/pub", "--uploaders", "alice")
    _cli(server, "index", "create", "team/dev", "--bases", f"{SECRET},team/pub")
    _cli(server, "index", "create", "team/carols", "--admins", "carol")
    _cli(server, "index", "create", "team/bobs", "--admins", "bob")
    _cli(server, "index", "create", "hushed", "--private")
    uploads = [
        (make_wheel(tmp, "hidden-lib", "1.0", summary="Nobody may see this"), SECRET, BOB),
        (make_wheel(tmp, "twin", "1.0", summary="The private twin"), SECRET, BOB),
        (make_wheel(tmp, "twin", "2.0", summary="The public twin"), "team/pub", ALICE),
    ]
    with server.client() as client:
        for wheel, index, auth in uploads:
            response = post_upload(client, wheel, auth=auth, url=f"/{index}/")
            assert response.status_code == 200, response.text
    yield server
    server.stop()


def _seen(response: httpx.Response, name: str) -> tuple[object, ...]:
    """Status, body and headers, with the index name spelt as SECRET and nothing random."""
    body = without_xsrf_token(response.content.decode())
    body = body.replace(quote(name, safe=""), quote(SECRET, safe="")).replace(name, SECRET)
    varying = ("date", "set-cookie")
    headers = sorted((k, v) for k, v in response.headers.multi_items() if k not in varying)
    return response.status_code, body, headers


def _ask(
    server: Server, method: str, path: str, auth: tuple[str, str] | None, **options: object
) -> dict[str, tuple[object, ...]]:
    """The answers for SECRET and for ABSENT, each asked by a fresh client."""
    headers = {"X-Request-ID": "same-request", **options.pop("headers", {})}  # type: ignore[dict-item]
    answers = {}
    for name in (SECRET, ABSENT):
        with server.client() as client:
            response = client.request(
                method,
                path.format(name),
                auth=auth,
                headers=headers,
                **options,  # type: ignore[arg-type]
            )
        answers[name] = _seen(response, name)
    return answers


@pytest.fixture(scope="module")
def elsewhere(site: Server) -> tuple[str, str]:
    """A token of bob (a reader of SECRET) limited to team/pub."""
    return ("__token__", site.cli("token", "create", "bob", "--index", "team/pub").stdout.strip())


# uv's Accept header (JSON errors), and a browser's (HTML error pages).
ACCEPTS = ["application/vnd.pypi.simple.v1+json, application/json;q=0.9", "text/html, */*;q=0.8"]


@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("path", READ_PATHS)
def test_private_index_reads_answer_as_a_missing_one(
    site: Server, elsewhere: tuple[str, str], path: str, accept: str
) -> None:
    """Strangers get the same 401; carol and a token of bob for another index the same 404."""
    for auth, status in ((None, 401), (CAROL, 404), (elsewhere, 404)):
        answers = _ask(site, "GET", path, auth, headers={"Accept": accept})
        assert answers[SECRET] == answers[ABSENT], (path, auth)
        assert answers[SECRET][0] == status, (path, auth, answers[SECRET])
        headers = dict(answers[SECRET][2])  # type: ignore[arg-type]
        if status == 401 and "html" not in headers["content-type"]:
            # Pages for people offer their login form instead of the browser's dialog.
            assert headers["www-authenticate"].startswith("Basic realm=")
        for word in ("hidden-lib", "Nobody may see this"):
            assert word not in str(answers[SECRET][1]) or "hidden-lib" in path
    with site.client(auth=BOB) as bob:
        expected = 404 if "nothing-here" in path else (301 if "Hidden_Lib" in path else 200)
        assert bob.get(path.format(SECRET)).status_code == expected, path


def test_writes_to_a_private_index_answer_as_to_a_missing_one(site: Server, tmp_path: Path) -> None:
    """Uploads, settings changes, yanks, deletes and tokens for it: what a missing index answers."""
    wheel = make_wheel(tmp_path, "carols-lib", "1.0")
    data = wheel.read_bytes()
    body, content_type = encode(form_fields(wheel, data), [FileField("content", wheel.name, data)])
    target = "/-/api/indexes/{}/projects/hidden-lib/releases/1.0"
    requests = [
        ("POST", "/{}/", {"content": body, "headers": {"Content-Type": content_type}}),
        ("POST", "/{}", {"content": body, "headers": {"Content-Type": content_type}}),
        ("POST", "/{}/legacy/", {"content": body, "headers": {"Content-Type": content_type}}),
        ("PATCH", "/-/api/indexes/{}", {"json": {"description": "mine now"}}),
        ("POST", f"{target}/yank", {"json": {"reason": "x"}}),
        ("DELETE", f"{target}/yank", {}),
        ("DELETE", target, {}),
    ]  # fmt: skip
    for method, path, options in requests:
        for auth, status in ((None, 401), (CAROL, 404)):
            answers = _ask(site, method, path, auth, **dict(options))
            assert answers[SECRET] == answers[ABSENT], (method, path, auth)
            assert answers[SECRET][0] == status, (method, path, auth, answers[SECRET])
    for name in (SECRET, ABSENT):
        with site.client() as client:
            response = client.post("/-/api/users/carol/tokens", json={"index": name}, auth=CAROL)
        assert response.status_code == 404, response.text
        assert response.json()["message"] == f"No index {name!r}."
    with site.client() as client:
        shown = client.get(f"/{SECRET}/simple/", auth=BOB)
        assert "carols-lib" not in shown.text
        assert client.get(f"/-/api/indexes/{SECRET}", auth=BOB).json()["description"] != "mine now"


def test_root_form_is_a_project_of_main_whatever_the_name(site: Server) -> None:
    """``/<name>/`` never tells whether an index ``name`` exists: it is main's project page."""
    for auth in (None, CAROL):
        with site.client(auth=auth, headers={"X-Request-ID": "same-request"}) as client:
            secret = client.get("/hushed/")
            absent = client.get("/absent/")
        assert _seen(secret, "hushed") == _seen(absent, "absent")
        assert secret.status_code == 404


def test_unreadable_base_is_absent_through_inheritance(site: Server) -> None:
    """Through team/dev a non-reader sees team/pub's twin, a reader the private one.

    bob asks first, so a page kept for him would be what strangers got if the
    caches were shared; ``hidden-lib`` answers as a name nobody holds.
    """
    pages = {}
    same = {"X-Request-ID": "same-request"}
    for who, auth in (("bob", BOB), ("anonymous", None), ("carol", CAROL)):
        with site.client(auth=auth) as client:
            pages[who] = (
                client.get("/team/dev/simple/twin/").text,
                client.get("/team/dev/simple/").text,
                client.get("/team/dev/pypi/twin/json").json()["info"]["version"],
                _seen(client.get("/team/dev/simple/hidden-lib/", headers=same), "hidden-lib"),
                _seen(client.get("/team/dev/simple/absent-lib/", headers=same), "absent-lib"),
            )
    bob_page, bob_list, bob_version, _, _ = pages["bob"]
    assert "twin-1.0-py3-none-any.whl" in bob_page
    assert "twin-2.0" not in bob_page  # the private twin owns the name for its readers
    assert "hidden-lib" in bob_list
    assert bob_version == "1.0"
    for who in ("anonymous", "carol"):
        page, listing, version, hidden, nothing = pages[who]
        assert "twin-2.0-py3-none-any.whl" in page, who
        assert "twin-1.0" not in page, who
        assert "hidden-lib" not in listing, who
        assert version == "2.0", who
        assert hidden == nothing, who
        assert hidden[0] == 404


def test_only_readers_may_add_a_private_base(site: Server) -> None:
    """carol, admin of team/carols, is told team/secret does not exist; bob may add it."""
    answers = {}
    with site.client(headers={"X-Request-ID": "same-request"}) as client:
        for name in (SECRET, ABSENT):
            for setting in ({"bases": [name]}, {"routes": [f"hidden-*={name}"]}):
                response = client.patch("/-/api/indexes/team/carols", json=setting, auth=CAROL)
                answers[(name, next(iter(setting)))] = _seen(response, name)
        for kind in ("bases", "routes"):
            assert answers[(SECRET, kind)] == answers[(ABSENT, kind)], kind
            assert answers[(SECRET, kind)][0] == 400
        added = client.patch("/-/api/indexes/team/bobs", json={"bases": [SECRET]}, auth=BOB)
        assert added.status_code == 200, added.text
        assert client.get("/team/carols/simple/hidden-lib/", auth=CAROL).status_code == 404
        # Bases already there stay when an admin who cannot read them changes other things.
        kept = client.patch("/-/api/indexes/team/bobs", json={"admins": ["bob", "carol"]}, auth=BOB)
        assert kept.status_code == 200, kept.text
        shown = client.get("/-/api/indexes/team/bobs", auth=CAROL).json()
        assert shown["bases"] == []  # carol is told nothing of team/secret
        changed = client.patch(
            "/-/api/indexes/team/bobs", json={**shown, "description": "carol's"}, auth=CAROL
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["bases"] == []
        assert client.get("/-/api/indexes/team/bobs", auth=BOB).json()["bases"] == [SECRET]


def test_settings_name_no_base_the_reader_may_not_read(site: Server) -> None:
    """team/dev's settings, its page and the index list show team/pub as its only base."""
    with site.client(headers={"Accept": "text/html"}) as client:
        for auth in (None, CAROL):
            document = client.get("/-/api/indexes/team/dev", auth=auth).json()
            assert document["bases"] == ["team/pub"]
            listed = client.get("/-/api/indexes", auth=auth).json()["indexes"]
            assert SECRET not in str(listed)
            for page in ("/-/indexes", "/-/indexes/team/dev/"):
                assert SECRET not in client.get(page, auth=auth).text, page
        document = client.get("/-/api/indexes/team/dev", auth=BOB).json()
        assert document["bases"] == [SECRET, "team/pub"]
        assert SECRET in client.get("/-/indexes/team/dev/", auth=BOB).text


def test_metrics_name_no_private_index(site: Server) -> None:
    """Downloads from the private index are counted under one label, unnamed."""
    with site.client() as client:
        secret = client.get(f"/{SECRET}/packages/hidden-lib/{WHEEL}", auth=BOB)
        assert secret.status_code == 200
        public = client.get("/team/pub/packages/twin/twin-2.0-py3-none-any.whl")
        assert public.status_code == 200
        metrics = client.get("/-/metrics").text
    assert SECRET not in metrics
    assert 'ministry_download_bytes_total{index="(private)"}' in metrics
    assert 'ministry_download_bytes_total{index="team/pub"}' in metrics


@pytest.mark.slow
def test_pip_is_challenged_and_installs_with_credentials(
    site: Server, tmp_path: Path, home: Path
) -> None:
    """pip installs from the private index with its netrc credentials."""
    port = site.url.rsplit(":", 1)[1]
    (home / ".netrc").write_text(f"machine 127.0.0.1 login bob password {BOB[1]}\n")
    (home / ".netrc").chmod(0o600)
    target = tmp_path / "target"
    result = run(
        [tool("pip"), "install", "--no-deps", "--target", str(target),
         "--index-url", f"http://127.0.0.1:{port}/{SECRET}/simple/", "hidden-lib"],
        home,
        extra_environment={"NETRC": str(home / ".netrc")},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert (target / "hidden_lib").exists() or any(target.glob("hidden_lib*"))
    assert site.served(f"/{SECRET}/packages/hidden-lib/{WHEEL}") >= 1
