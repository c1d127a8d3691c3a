"""Every index answers under its own name; the default one also at the root (docs/indexes.md)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ALICE, BOB
from support.distributions import make_wheel
from support.inprocess import InProcessServer
from support.server import Server
from support.uploads import post_upload
from support.upstreams import StaticUpstream

JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with ``solo`` (one-part name), ``team/prod`` and private ``team/dev`` on it."""
    server = InProcessServer(tmp_path_factory.mktemp("indexed") / "data").start()
    for name, password in (ALICE, BOB):
        assert server.cli("user", "add", name, "--password-stdin", stdin=password).returncode == 0
    for arguments in (
        ("solo", "--uploaders", "alice"),
        ("team/prod", "--uploaders", "alice"),
        ("team/dev", "--bases", "team/prod", "--uploaders", "alice", "--private"),
    ):
        result = server.cli("index", "create", *arguments)
        assert result.returncode == 0, result.stderr
    yield server
    server.stop()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("index", "url"),
    [("solo", "/solo/"), ("solo", "/solo/legacy/"), ("solo", "/solo"),
     ("team/prod", "/team/prod/"), ("team/prod", "/team/prod/legacy"), ("team/prod", "/team/prod"),
     ("main", "/main/"), ("main", "/main/legacy/")],
)  # fmt: skip
def test_uploads_under_the_index_name(
    indexed: Server, tmp_path: Path, index: str, url: str
) -> None:
    """``POST /<index>/``, ``/<index>`` and ``/<index>/legacy/`` publish into that index and
    no other, answered in place (docs/protocol.md, "Upload URLs")."""
    name = "up-" + url.strip("/").replace("/", "-") + ("-bare" if url[-1] != "/" else "")
    wheel = make_wheel(tmp_path, name, "1.0")
    prefix = "" if index == "main" else f"/{index}"
    with indexed.client() as client:
        response = post_upload(client, wheel, auth=ALICE, url=url)
        assert response.status_code == 200, response.text
        page = client.get(f"{prefix}/simple/{name}/", headers={"Accept": JSON}).json()
        assert [f["hashes"]["sha256"] for f in page["files"]] == [digest(wheel)]
        assert page["files"][0]["url"] == f"{prefix}/packages/{name}/{wheel.name}"
        assert client.get(page["files"][0]["url"]).content == wheel.read_bytes()
        others = {"solo", "team/prod", "main"} - {index}
        for other in others:
            other_prefix = "" if other == "main" else f"/{other}"
            assert client.get(f"{other_prefix}/simple/{name}/").status_code == 404


def test_default_index_answers_at_both_places(indexed: Server, tmp_path: Path) -> None:
    """``/simple/`` and ``/main/simple/`` are the same index, as are the JSON APIs."""
    wheel = make_wheel(tmp_path, "both-places", "1.0")
    with indexed.client() as client:
        assert post_upload(client, wheel, auth=ALICE, url="/").status_code == 200
        root = client.get("/simple/both-places/", headers={"Accept": JSON}).json()
        named = client.get("/main/simple/both-places/", headers={"Accept": JSON}).json()
        assert root == named
        assert client.get("/main/pypi/both-places/json").json()["info"]["version"] == "1.0"
        assert client.get("/main/packages/both-places/").status_code == 200
        assert client.get("/main/simple/Both_Places/").headers["Location"] == (
            "/main/simple/both-places/"
        )


def test_inherited_files_are_served_under_the_reading_index(
    indexed: Server, tmp_path: Path
) -> None:
    """A file of ``team/prod`` read through private ``team/dev`` has a ``team/dev`` URL."""
    wheel = make_wheel(tmp_path, "inherited", "1.0")
    with indexed.client() as client:
        assert post_upload(client, wheel, auth=ALICE, url="/team/prod/").status_code == 200
        page = client.get("/team/dev/simple/inherited/", headers={"Accept": JSON}, auth=ALICE)
        url = page.json()["files"][0]["url"]
        assert url == f"/team/dev/packages/inherited/{wheel.name}"
        assert client.get(url, auth=ALICE).content == wheel.read_bytes()
        assert client.get(url + ".metadata", auth=ALICE).status_code == 200
        document = client.get("/team/dev/pypi/inherited/json", auth=ALICE).json()
        assert document["urls"][0]["url"].endswith(url)
        listing = client.get("/team/dev/packages/inherited/", auth=ALICE)
        assert wheel.name in listing.text


@pytest.mark.parametrize(
    "path",
    [
        "/team/dev/simple/",
        "/team/dev/simple/inherited/",
        "/team/dev/packages/",
        "/team/dev/packages/inherited/",
        "/team/dev/packages/inherited/inherited-1.0-py3-none-any.whl",
        "/team/dev/pypi/inherited/json",
        "/team/dev/simple/no-such-project/",
    ],
)
def test_private_index_refuses_strangers_everywhere(indexed: Server, path: str) -> None:
    """401 with a challenge on every URL, whether the project exists or not; 404 for a non-reader.

    docs/security.md, "Private indexes".
    """
    with indexed.client() as client:
        anonymous = client.get(path)
        wrong_user = client.get(path, auth=BOB)
        bad_password = client.get(path, auth=("alice", "not-the-password"))
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert wrong_user.status_code == 404
    assert bad_password.status_code == 401
    assert "inherited" not in anonymous.text + wrong_user.text


def test_unknown_indexes_and_odd_paths(indexed: Server) -> None:
    """Unknown indexes are 401 to strangers (as private ones are), 404 to users;
    ``/<two>/<parts>/`` naming no index nor an index's project is no page; uploads there
    need an index."""
    with indexed.client() as client:
        assert client.get("/nowhere/simple/").status_code == 401
        assert client.get("/nowhere/simple/", auth=BOB).status_code == 404
        assert client.get("/team/nowhere/simple/x/", auth=BOB).status_code == 404
        assert client.get("/team/nowhere/", auth=BOB).status_code == 404
        assert client.get("/team/prod?x=1").headers["Location"] == "/team/prod/?x=1"
        assert client.get("/team/dev", auth=ALICE).headers["Location"] == "/team/dev/"
        for path in ("/team/dev", "/team/nowhere", "/favicon.ico"):
            for auth in (None, BOB):
                assert client.get(path, auth=auth).status_code == 404, path
        assert client.get("/team/prod/simple").headers["Location"] == "/team/prod/simple/"
        upload = client.post("/nowhere/legacy/", content=b"", auth=ALICE)
        assert upload.status_code == 404
        assert "No index 'nowhere'" in upload.text
        assert client.post("/team/prod/simple/", content=b"x").status_code == 405


def test_upload_rights_are_checked_before_the_body(indexed: Server, tmp_path: Path) -> None:
    """A user who may not upload to an index gets 403 and nothing is stored there."""
    wheel = make_wheel(tmp_path, "not-bobs", "1.0")
    with indexed.client() as client:
        refused = post_upload(client, wheel, auth=BOB, url="/team/prod/")
        assert refused.status_code == 403
        assert "may not upload to index 'team/prod'" in refused.text
        assert client.get("/team/prod/simple/not-bobs/").status_code == 404
        # main lets every user upload.
        assert post_upload(client, wheel, auth=BOB, url="/legacy/").status_code == 200


def test_routing_rules_pin_names_to_one_base(indexed: Server, tmp_path: Path) -> None:
    """``acme-*=team/prod`` takes matching names only from team/prod; ``local-*=-`` from no base."""
    result = indexed.cli(
        "index", "create", "routed", "--bases", "solo,team/prod", "--uploaders", "alice",
        "--route", "acme-*=team/prod", "--route", "local-*=-",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    uploads = {
        "/solo/": ["acme-squat", "local-thing", "plain-lib"],
        "/team/prod/": ["acme-real"],
        "/routed/": ["local-own"],
    }
    with indexed.client() as client:
        for url, names in uploads.items():
            for name in names:
                wheel = make_wheel(tmp_path, name, "1.0")
                assert post_upload(client, wheel, auth=ALICE, url=url).status_code == 200
        status = {
            name: client.get(f"/routed/simple/{name}/").status_code
            for names in uploads.values()
            for name in names
        }
        listed = client.get("/routed/simple/", headers={"Accept": JSON}).json()["projects"]
    assert status == {
        "acme-squat": 404,  # an acme-* name from a base other than team/prod
        "local-thing": 404,  # a local-* name from any base
        "plain-lib": 200,  # no rule: bases as usual
        "acme-real": 200,
        "local-own": 200,
    }
    assert {"acme-squat", "local-thing"}.isdisjoint(p["name"] for p in listed)
    assert {"plain-lib", "acme-real", "local-own"} <= {p["name"] for p in listed}


def test_overwrite_where_the_index_allows_it(indexed: Server, tmp_path: Path) -> None:
    """With ``--allow-overwrite`` an upload replaces a file of the same name; without, 400."""
    result = indexed.cli("index", "create", "scratch", "--uploaders", "alice", "--allow-overwrite")
    assert result.returncode == 0, result.stderr
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = make_wheel(tmp_path / "a", "scratchy", "1.0")
    second = make_wheel(tmp_path / "b", "scratchy", "1.0", summary="rebuilt")
    with indexed.client() as client:
        for url in ("/scratch/", "/solo/"):
            assert post_upload(client, first, auth=ALICE, url=url).status_code == 200
        assert post_upload(client, second, auth=ALICE, url="/scratch/").status_code == 200
        refused = post_upload(client, second, auth=ALICE, url="/solo/")
        assert refused.status_code == 400
        assert "File already exists" in refused.text
        page = client.get("/scratch/simple/scratchy/", headers={"Accept": JSON}).json()
        assert [f["hashes"]["sha256"] for f in page["files"]] == [digest(second)]
        assert client.get(page["files"][0]["url"]).content == second.read_bytes()
        solo = client.get(f"/solo/packages/scratchy/{first.name}").content
        assert solo == first.read_bytes()


def test_private_answers_never_go_to_shared_caches(indexed: Server, tmp_path: Path) -> None:
    """A page or file of a private index says ``private``; a public one ``public``."""
    wheel = make_wheel(tmp_path, "cache-scope", "1.0")
    with indexed.client() as client:
        assert post_upload(client, wheel, auth=ALICE, url="/team/prod/").status_code == 200
        for prefix, auth, scope in (
            ("/team/prod", None, "public"),
            ("/team/dev", ALICE, "private"),
        ):
            for path in (
                f"{prefix}/simple/cache-scope/",
                f"{prefix}/pypi/cache-scope/json",
                f"{prefix}/packages/cache-scope/{wheel.name}",
            ):
                response = client.get(path, auth=auth)
                assert response.status_code == 200, path
                assert response.headers["Cache-Control"].startswith(scope + ","), path


ROOT_FORMS = [("solo", None), ("team/prod", None), ("team/dev", ALICE), ("main", None)]


@pytest.mark.parametrize(("index", "auth"), ROOT_FORMS)
def test_every_index_has_the_root_form(
    indexed: Server, tmp_path: Path, index: str, auth: tuple[str, str] | None
) -> None:
    """``/<index>/`` is the index's project list and ``/<index>/<project>/`` the project's
    simple page, the same bytes, negotiation and ETags as under ``/<index>/simple/``."""
    name = "rooted-" + index.replace("/", "-")
    wheel = make_wheel(tmp_path, name, "1.0")
    with indexed.client() as client:
        assert post_upload(client, wheel, auth=ALICE, url=f"/{index}/").status_code == 200
        for accept in (JSON, "text/html"):
            headers = {"Accept": accept}
            simple = client.get(f"/{index}/simple/{name}/", headers=headers, auth=auth)
            root = client.get(f"/{index}/{name}/", headers=headers, auth=auth)
            assert root.status_code == 200
            assert root.content == simple.content
            assert root.headers["Content-Type"] == simple.headers["Content-Type"]
            assert root.headers["ETag"] == simple.headers["ETag"]
            again = {**headers, "If-None-Match": root.headers["ETag"]}
            assert client.get(f"/{index}/{name}/", headers=again, auth=auth).status_code == 304
            listed = client.get(f"/{index}/", headers=headers, auth=auth)
            assert (
                listed.content
                == client.get(f"/{index}/simple/", headers=headers, auth=auth).content
            )
        projects = client.get(f"/{index}/", headers={"Accept": JSON}, auth=auth).json()
        assert name in {p["name"] for p in projects["projects"]}
        assert f'href="{name}/"' in client.get(f"/{index}/", auth=auth).text
        assert client.head(f"/{index}/{name}/", auth=auth).status_code == 200
        odd = client.get(f"/{index}/{name.upper().replace('-', '_')}/?x=1", auth=auth)
        assert odd.status_code == 301
        assert odd.headers["Location"] == f"/{index}/{name}/?x=1"
        assert client.get(f"/{index}/no-such-project/", auth=auth).status_code == 404
        found = client.get(f"/{index}/search", params={"q": name}, auth=auth)
        assert f'href="/{index}/project/{name}/"' in found.text
        assert f'action="/{index}/search"' in found.text
        everywhere = client.get("/search", params={"q": name}, auth=auth)
        prefix = "" if index == "main" else f"/{index}"
        assert f'href="{prefix}/project/{name}/"' in everywhere.text
        assert ("private" in everywhere.headers["Cache-Control"]) == (auth is not None)
        if auth is not None:
            for stranger in (None, BOB):
                shown = client.get("/search", params={"q": name}, auth=stranger).text
                assert f"/project/{name}/" not in shown
                assert ">0 projects for" in shown
        assert client.get(f"/{index}/project/{name}/", auth=auth).status_code == 200
        assert f'href="{name}/"' in client.get(f"/{index}/packages/", auth=auth).text
        short = indexed.url + ("" if index == "main" else f"/{index}")
        assert (
            f"pip install -i {short} PROJECT"
            in client.get("/-/help", params={"index": index}, auth=auth).text
        )


@pytest.fixture(scope="module")
def kept_private(indexed: Server, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A project of private team/dev: ``kept-private``."""
    wheel = make_wheel(tmp_path_factory.mktemp("kept"), "kept-private", "1.0")
    with indexed.client() as client:
        assert post_upload(client, wheel, auth=ALICE, url="/team/dev/").status_code == 200
    return "kept-private"


@pytest.mark.parametrize(
    "path", ["/team/dev/", "/team/dev/kept-private/", "/team/dev/nothing-here/",
             "/team/dev/search", "/team/dev/search?q=kept"],
)  # fmt: skip
def test_private_root_forms_refuse_strangers(indexed: Server, kept_private: str, path: str) -> None:
    """The root forms and search of a private index answer as its other URLs do."""
    with indexed.client() as client:
        anonymous = client.get(path)
        assert anonymous.status_code == 401
        assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
        assert client.get(path, auth=BOB).status_code == 404
        assert kept_private not in anonymous.text
        mine = client.get(path, auth=ALICE)
        assert mine.status_code == (404 if "nothing" in path else 200)
        if mine.status_code == 200:
            assert mine.headers["Cache-Control"].startswith("private"), path
        if path != "/team/dev/search":
            assert (kept_private in mine.text) == ("nothing" not in path)


@pytest.fixture(scope="module")
def crew(indexed: Server, tmp_path_factory: pytest.TempPathFactory) -> Server:
    """Index ``crew``, where bob uploads, and below it public ``crew/pub`` and private
    ``crew/ops`` and ``crew/hush`` that only alice reads (and private ``lonely``); bob has
    made projects ``pub`` and ``ops`` in ``crew``, and ``solo`` in ``main``."""
    for arguments in (
        ("crew", "--uploaders", "bob"),
        ("crew/pub", "--uploaders", "alice"),
        ("crew/ops", "--uploaders", "alice", "--private"),
        ("crew/hush", "--uploaders", "alice", "--private"),
        ("lonely", "--uploaders", "alice", "--private"),
    ):
        result = indexed.cli("index", "create", *arguments)
        assert result.returncode == 0, result.stderr
    where = tmp_path_factory.mktemp("crew")
    with indexed.client() as client:
        for index, project in (("crew", "pub"), ("crew", "ops"), ("main", "solo")):
            wheel = make_wheel(where, project, "6.6.6")
            assert post_upload(client, wheel, auth=BOB, url=f"/{index}/").status_code == 200
    return indexed


def test_an_uploader_cannot_put_a_project_in_front_of_an_index(crew: Server) -> None:
    """docs/security.md, "URLs of an index": ``/crew/pub/`` stays index crew/pub's, and
    ``/solo/`` index solo's, whatever projects bob names ``pub`` and ``solo``; a private
    index wins for its readers, and its name shows to no one else."""
    with crew.client() as client:
        for path, auth in (("/crew/pub/", None), ("/crew/pub/", BOB), ("/solo/", None),
                           ("/crew/ops/", ALICE)):  # fmt: skip
            page = client.get(path, headers={"Accept": JSON}, auth=auth).json()
            assert "projects" in page, (path, auth)
            assert "6.6.6" not in json.dumps(page)
        # Where the index exists for the reader, bob's projects are under /simple/, and
        # a name spelt otherwise is sent there rather than to the index.
        assert client.get("/crew/simple/pub/").status_code == 200
        assert client.get("/simple/solo/").status_code == 200
        for path, auth, target in (
            ("/crew/Pub/", None, "/crew/simple/pub/"),
            ("/SOLO/", None, "/simple/solo/"),
            ("/crew/OPS/", ALICE, "/crew/simple/ops/"),
            ("/crew/OPS/", None, "/crew/ops/"),
        ):
            assert client.get(path, auth=auth).headers["Location"] == target, (path, auth)
        # To those who may not read crew/ops it does not exist: the address is bob's
        # project, exactly as if there were no such index.
        for auth in (None, BOB):
            shown = client.get("/crew/ops/", headers={"Accept": JSON}, auth=auth)
            assert shown.json()["name"] == "ops"
        for hidden_path, missing_path in (("/crew/hush/", "/crew/gone/"), ("/lonely/", "/gone/")):
            hidden = client.get(hidden_path)
            missing = client.get(missing_path)
            assert hidden.status_code == missing.status_code == 404
            spelt = hidden.text.replace("hush", "gone").replace("lonely", "gone")
            assert spelt == missing.text
            assert "WWW-Authenticate" not in hidden.headers
        assert "projects" in client.get("/lonely/", headers={"Accept": JSON}, auth=ALICE).json()


def test_old_flat_file_links_redirect(indexed: Server, tmp_path: Path) -> None:
    """``/packages/<filename>`` (pypiserver) redirects to the one file of that name among
    the indexes the caller may read; 404 when there is none or several differ."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    only = make_wheel(tmp_path, "flat-only", "1.0")
    hidden = make_wheel(tmp_path, "flat-hidden", "1.0")
    twice = make_wheel(tmp_path / "a", "flat-twice", "1.0")
    same = make_wheel(tmp_path / "c", "flat-twice", "1.0")
    clash = make_wheel(tmp_path / "b", "flat-twice", "1.0", summary="other bytes")
    assert digest(twice) == digest(same) != digest(clash)
    with indexed.client() as client:
        for path, url in ((only, "/solo/"), (hidden, "/team/dev/"), (twice, "/team/prod/"),
                          (same, "/"), (clash, "/solo/")):  # fmt: skip
            assert post_upload(client, path, auth=ALICE, url=url).status_code == 200
        moved = client.get(f"/packages/{only.name}")
        assert moved.status_code == 302
        assert moved.headers["Location"] == f"/solo/packages/flat-only/{only.name}"
        assert client.get(moved.headers["Location"]).content == only.read_bytes()
        assert client.head(f"/packages/{only.name}").status_code == 302
        for auth in (None, BOB):
            refused = client.get(f"/packages/{hidden.name}", auth=auth)
            assert refused.status_code == 404
            assert "team/dev" not in refused.text
        mine = client.get(f"/packages/{hidden.name}", auth=ALICE)
        assert mine.headers["Location"] == f"/team/dev/packages/flat-hidden/{hidden.name}"
        # main and team/prod hold the same bytes, solo others: no single file.
        assert client.get(f"/packages/{twice.name}").status_code == 404
        assert client.get("/packages/nothing-1.0.tar.gz").status_code == 404
        assert client.get("/packages/..%2Fetc").status_code == 404


def test_flat_file_links_never_ask_an_upstream(indexed: Server, tmp_path: Path) -> None:
    """A file only a proxy index could fetch is not found, and its upstream hears nothing
    (docs/security.md, "URLs of an index")."""
    far = make_wheel(tmp_path, "flat-far", "1.0")
    with StaticUpstream() as upstream:
        upstream.add(far)
        result = indexed.cli("index", "create", "far", "--upstream", upstream.url)
        assert result.returncode == 0, result.stderr
        with indexed.client() as client:
            assert client.get(f"/packages/{far.name}").status_code == 404
            assert upstream.requests == []
            # The proxy does reach it: through the root form, say.
            assert client.get("/far/flat-far/").status_code == 200
            assert upstream.requests == [("GET", "/simple/flat-far/")]
