"""The site's frame over HTTP: error pages for browsers (and the old answers for every
other client), the token form's answers, and sessions kept apart from tokens."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import ALICE, add_user
from support.distributions import make_wheel
from support.inprocess import InProcessServer
from support.logins import form_login
from support.server import Server
from support.uploads import post_upload

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
PIP = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01"
)
PRIVATE = "team/private"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """alice uploads to main and team/dev; team/private is for nobody but its readers."""
    server = InProcessServer(tmp_path_factory.mktemp("frame") / "data").start()
    add_user(server, *ALICE)
    for arguments in (
        ("index", "create", "team/dev", "--uploaders", "alice"),
        ("index", "create", "team/other"),
        ("index", "create", PRIVATE, "--private", "--readers", "nobody-here"),
    ):
        result = server.cli(*arguments)
        assert result.returncode == 0, result.stderr
    yield server
    server.stop()


def test_browsers_get_a_page_of_the_site_with_the_standard_reason(site: Server) -> None:
    with site.client(headers={"Accept": BROWSER}) as client:
        missing = client.get("/no/such/page/here")
        assert (missing.status_code, missing.reason_phrase) == (404, "Not Found")
        assert missing.headers["Content-Type"].startswith("text/html")
        assert missing.headers["Content-Security-Policy"].startswith("default-src 'none'")
        page = missing.text
        assert '<html lang="en">' in page
        assert "<title>404 Not Found · Ministry of Packages</title>" in page
        assert '<main id="content"' in page and "<h1>" in page
        assert '<a class="skip-link" href="#content">' in page
        assert 'aria-label="Site"' in page  # the navigation
        project = client.get("/project/no-such-project/")
        assert (project.status_code, project.reason_phrase) == (404, "Not Found")
        assert "no-such-project" in project.text


def test_other_clients_keep_their_answers(site: Server) -> None:
    """curl, httpx, pip and uv read text or JSON, with the message as the reason phrase."""
    with site.client() as client:
        for accept in (None, "*/*", PIP):
            headers = {"Accept": accept} if accept else {}
            missing = client.get("/no/such/page/here", headers=headers)
            assert missing.status_code == 404
            assert missing.reason_phrase == "Not found: no page at this address."
            assert missing.headers["Content-Type"] == "text/plain; charset=utf-8"
            assert missing.text == "404 Not found: no page at this address.\n"
        private = client.get(f"/{PRIVATE}/simple/", headers={"Accept": PIP})
        assert private.status_code == 401
        assert private.headers["WWW-Authenticate"].startswith("Basic realm=")
        assert private.headers["Content-Type"] == "text/plain; charset=utf-8"
        uv = client.get("/no/such/page/here", headers={"Accept": "application/json"})
        assert uv.json()["code"] == "404 Not found: no page at this address."


def test_a_private_index_offers_a_login_that_comes_back(site: Server) -> None:
    with site.client(headers={"Accept": BROWSER}) as client:
        for path in (f"/-/help?index={PRIVATE}", f"/{PRIVATE}/simple/"):
            refused = client.get(path)
            assert (refused.status_code, refused.reason_phrase) == (401, "Unauthorized")
            link = re.search(r'<a class="action" href="([^"]+)">Log in</a>', refused.text)
            assert link is not None, refused.text
            target = html.unescape(link[1])
            assert target.startswith("/-/login?next=")
            assert httpx.URL(target).params["next"] == path
        # The pages offer their form; a Basic challenge would open the browser's own dialog.
        assert "WWW-Authenticate" not in client.get(f"/-/help?index={PRIVATE}").headers


def test_error_pages_escape_the_address_and_keep_the_login_local(site: Server) -> None:
    """docs/security.md, "HTTP abuse": nothing of the URL runs, and the login link of a
    401 leads back to this server only."""
    with site.client(headers={"Accept": BROWSER}) as client:
        hostile = client.get('/project/"><script>alert(1)</script>/')
        assert hostile.status_code == 404
        assert "<script>alert" not in hostile.text
        assert "&lt;script&gt;" in hostile.text
        # A backslash reads as "/" to browsers: such an address is never a login's target.
        address = httpx.URL(site.url).copy_with(raw_path=f"/-/help?index={PRIVATE}&x=\\/a".encode())
        odd = client.get(address)
        assert odd.status_code == 401
        assert '<a class="action" href="/-/login?next=/">' in odd.text


def _tokens_form(client: httpx.Client, **fields: str) -> httpx.Response:
    client.get("/-/tokens")
    return client.post("/-/tokens", data={"_xsrf": client.cookies["_xsrf"], **fields})


def test_the_token_form_shows_its_mistakes_beside_the_fields(site: Server) -> None:
    with site.client() as client:
        assert form_login(client, *ALICE).status_code == 303
        page = client.get("/-/tokens").text
        options = re.findall(r'<option value="([^"]*)"', page)
        assert options == ["", "main", "team/dev"]  # team/other takes no uploads of alice's
        for fields, field in (
            ({"days": "0"}, "days"),
            ({"days": "99999"}, "days"),
            ({"days": "ninety"}, "days"),
            ({"index": "team/other"}, "index"),
            ({"index": PRIVATE}, "index"),
        ):
            refused = _tokens_form(client, description="kept text", **fields)
            assert refused.status_code == 400, fields
            assert f'id="{field}-error"' in refused.text
            assert 'value="kept text"' in refused.text
            assert "token-secret" not in refused.text
        assert "kept text" not in client.get("/-/tokens").text  # nothing was created
        made = _tokens_form(client, description="for dev", index="team/dev", days="30")
        assert made.status_code == 200
        text = html.unescape(made.text)
        secret = re.search(r'<code id="token-secret">([^<]+)</code>', made.text)
        assert secret is not None
        assert f"{site.url}/team/dev/legacy/" in text
        assert f"{site.url}/legacy/" not in text  # the default index's would refuse it
        assert "-p " + secret[1] not in text and "-p mop_" not in text
        assert "TWINE_USERNAME=__token__" in text and "UV_PUBLISH_TOKEN" in text
        assert f"uv publish --publish-url {site.url}/team/dev/legacy/" in text


def test_sessions_are_no_tokens_and_no_changes(site: Server) -> None:
    with site.client() as other, site.client() as client:
        assert form_login(other, *ALICE).status_code == 303
        assert form_login(client, *ALICE).status_code == 303
        listed = client.get("/-/api/users/alice/tokens", auth=ALICE).json()["tokens"]
        assert not [t for t in listed if t["id"].startswith("s")]
        page = client.get("/-/tokens").text
        assert "Browser session" not in page.split("Signed-in sessions")[0]
        assert page.count("this browser") == 1
        sessions = re.findall(r"<li>Since ", page.split("Signed-in sessions")[1])
        assert len(sessions) >= 2  # this client, the other one (and earlier tests')
        log = site.cli("log", "--json", "--limit", "1000")
        assert log.returncode == 0, log.stderr
        details = [change["detail"] or "" for change in json.loads(log.stdout)]
        assert not [d for d in details if re.search(r"\bs[0-9a-f]{16}\b", d)]
        signed_out = client.post(
            "/-/tokens", data={"_xsrf": client.cookies["_xsrf"], "sign_out": "everywhere"}
        )
        assert signed_out.status_code == 303
        # Both browsers are signed out: the other one's cookie leads to the login form.
        assert other.get("/-/tokens").status_code == 302
        assert client.get("/-/tokens").status_code == 302


def test_keeps_the_user_name_after_a_failed_login(site: Server) -> None:
    with site.client() as client:
        refused = form_login(client, "alice", "not the password")
        assert refused.status_code == 401
        assert 'value="alice"' in refused.text
        assert re.search(r'<input type="password"[^>]* autofocus', refused.text)


def test_search_hits_show_pre_releases_and_their_index(site: Server, tmp_path: Path) -> None:
    for version, index in (("1.0", "main"), ("2.0b1", "main"), ("0.1", "team/dev")):
        name = "frame-stamp" if index == "main" else "frame-stamp-dev"
        wheel = make_wheel(tmp_path, name, version, summary="Stamps frames")
        with site.client() as client:
            prefix = "" if index == "main" else f"/{index}"
            answer = post_upload(client, wheel, auth=ALICE, url=f"{prefix}/legacy/")
            assert answer.status_code == 200, answer.text
    with site.client(headers={"Accept": BROWSER}) as client:
        everywhere = client.get("/search?q=frame").text
        hits = re.findall(r"<li>(.*?)</li>", everywhere, re.S)
        assert len(hits) == 2
        main_hit = next(h for h in hits if ">frame-stamp<" in h)
        dev_hit = next(h for h in hits if ">frame-stamp-dev<" in h)
        assert "2.0b1" in main_hit and '<span class="badge pre">pre-release</span>' in main_hit
        assert "pre-release" not in dev_hit
        assert re.search(r'class="badge index">.*main</span>', main_hit)
        assert re.search(r'class="badge index">.*team/dev</span>', dev_hit)
        one = client.get("/team/dev/search?q=frame")
        assert one.status_code == 200
        assert re.findall(r'<a href="([^"]+)">frame', one.text) == [
            "/team/dev/project/frame-stamp-dev/"
        ]
        assert "badge index" not in one.text  # one index: no need to name it
