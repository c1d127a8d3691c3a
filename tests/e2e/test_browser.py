"""The browser interface in a real browser: Playwright driving Debian's Chromium.

Screenshots of the pages are written to ``$MINISTRY_TEST_ARTIFACTS`` (default
``test-artifacts/`` in the repository), for people to look at (``support.browser``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from conftest import ALICE
from support.browser import chromium, log_in, screenshot, watch_policy
from support.clients import new_venv, pip_install, twine_upload
from support.distributions import make_wheel
from support.server import MinistryServer
from support.uploads import post_upload

README = """\
# Demo heading

Some *emphasis* and a [link](https://example.invalid/docs).

<script>document.title = "owned"</script>

![Build status](https://tracker.example.test/badge.svg)

[click me](javascript:alert(1))
<img src="x" onerror="document.title = 'owned'">
<a href="https://example.invalid" onclick="document.title = 'owned'">handler</a>

```python
print("hello")
```
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def tab(browser: Browser) -> Iterator[tuple[Page, list[str]]]:
    """The tab the tests take turns in, and what the policy blocked in it."""
    context = browser.new_context(java_script_enabled=True)
    opened = context.new_page()
    yield opened, watch_policy(opened)
    context.close()


@pytest.fixture
def page(tab: tuple[Page, list[str]]) -> Iterator[Page]:
    """A page whose test fails if the pages' policy blocked anything on them. It starts
    as a new context's would (no cookies, blank, nothing blocked yet), in the same tab:
    a new tab costs Chromium a renderer process."""
    opened, blocked = tab
    opened.context.clear_cookies()
    opened.goto("about:blank")
    blocked.clear()
    yield opened
    assert blocked == [], "the Content-Security-Policy blocked parts of a page"


def publish(
    server: MinistryServer, directory: Path, name: str, version: str, **options: object
) -> Path:
    wheel = make_wheel(directory, name, version, **options)
    with server.client() as client:
        assert post_upload(client, wheel, auth=ALICE).status_code == 200
    return wheel


def test_project_page_shows_readme_metadata_and_hashes(
    server: MinistryServer, page: Page, tmp_path: Path, unique: str
) -> None:
    publish(server, tmp_path, unique, "1.0", summary="The old one")
    wheel = publish(
        server, tmp_path, unique, "2.0",
        summary="A demo project", requires_python=">=3.9", requires_dist=["requests>=2"],
        extra_headers=[
            ("Description-Content-Type", "text/markdown"),
            ("Classifier", "Programming Language :: Python :: 3"),
            ("Project-URL", "Source, https://example.invalid/src"),
            ("Project-URL", "Evil, javascript:alert(1)"),
        ],
        description=README,
    )  # fmt: skip
    response = page.goto(f"{server.url}/project/{unique}/")
    assert response is not None and response.status == 200
    assert page.title() == f"{unique} 2.0 · Ministry of Packages"
    assert page.locator("h1").first.inner_text().startswith(f"{unique} 2.0")
    assert page.locator(".readme h1").inner_text() == "Demo heading"
    assert page.locator(".readme em").inner_text() == "emphasis"
    assert page.locator(".readme pre").inner_text().strip() == 'print("hello")'
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert page.locator("td.hash code").first.get_attribute("title") == digest
    assert (
        page.get_by_role("button", name=f"Copy the sha256 of {wheel.name}").get_attribute(
            "data-copy"
        )
        == digest
    )
    assert page.get_by_text(">=3.9").count() == 1
    assert page.get_by_text("requests>=2").count() == 1
    assert page.locator("#install").inner_text().strip() == (
        f"pip install --index-url {server.url}/simple/ {unique}"
    )
    assert page.get_by_role("link", name="Source").get_attribute("href") == (
        "https://example.invalid/src"
    )
    assert page.get_by_role("link", name="Evil").count() == 0
    assert page.get_by_role("link", name="1.0").count() == 1
    screenshot(page, "project")

    page.get_by_role("link", name="1.0").click()
    assert page.url == f"{server.url}/project/{unique}/1.0/"
    assert page.locator(".summary").inner_text() == "The old one"
    assert page.locator("#install").inner_text().strip().endswith(f"{unique}==1.0")


def test_readme_cannot_run_scripts(
    server: MinistryServer, page: Page, tmp_path: Path, unique: str
) -> None:
    """XSS: scripts, javascript: links and event handlers are gone from the page."""
    publish(
        server, tmp_path, unique, "1.0",
        extra_headers=[("Description-Content-Type", "text/markdown")], description=README,
    )  # fmt: skip
    page.goto(f"{server.url}/project/{unique}/")
    assert page.title() == f"{unique} 1.0 · Ministry of Packages"  # no script changed it
    readme = page.locator(".readme")
    assert readme.locator("script").count() == 0
    hrefs = [a.get_attribute("href") or "" for a in readme.locator("a").all()]
    assert not [h for h in hrefs if h.strip().lower().startswith("javascript:")]
    handlers = page.evaluate(
        """() => [...document.querySelectorAll('.readme *')].flatMap(
            e => [...e.attributes].map(a => a.name).filter(n => n.startsWith('on')))"""
    )
    assert handlers == []


def test_unknown_project_is_a_404_page(server: MinistryServer, page: Page) -> None:
    response = page.goto(f"{server.url}/project/no-such-project-here/")
    assert response is not None and response.status == 404
    assert page.title() == "404 Not Found · Ministry of Packages"
    assert "no-such-project-here" in page.locator("main").inner_text()
    screenshot(page, "not-found")


def test_names_redirect_to_the_normalized_page(
    server: MinistryServer, page: Page, tmp_path: Path, unique: str
) -> None:
    publish(server, tmp_path, unique, "1.0")
    page.goto(f"{server.url}/project/{unique.upper()}")
    assert page.url == f"{server.url}/project/{unique}/"


def test_search_finds_by_name_and_summary(
    server: MinistryServer, page: Page, tmp_path: Path, unique: str
) -> None:
    publish(server, tmp_path, f"{unique}-alpha", "1.0", summary="Parses quaternion files")
    publish(server, tmp_path, f"{unique}-beta", "1.0", summary="Something else entirely")
    publish(server, tmp_path, f"{unique}-beta", "2.0", summary=f"Now about {unique}zeta")
    page.goto(server.url + "/")
    page.get_by_role("searchbox", name="Search projects").first.fill("quaternion")
    page.get_by_role("searchbox", name="Search projects").first.press("Enter")
    page.wait_for_url("**/search?q=quaternion")
    results = page.locator("ul.results li a")
    assert results.all_inner_texts() == [f"{unique}-alpha"]
    screenshot(page, "search")

    # Name parts match by prefix; the newest release's summary is the one searched.
    page.goto(f"{server.url}/search?q={unique[:6]}")
    assert set(results.all_inner_texts()) >= {f"{unique}-alpha", f"{unique}-beta"}
    page.goto(f"{server.url}/search?q={unique}zeta")
    assert results.all_inner_texts() == [f"{unique}-beta"]
    page.goto(f"{server.url}/search?q=something+else+entirely+{unique}")
    assert results.count() == 0


def test_home_page_lists_recent_uploads(
    server: MinistryServer, page: Page, tmp_path: Path, unique: str
) -> None:
    publish(server, tmp_path, unique, "3.1", summary="Fresh off the press")
    page.goto(server.url + "/")
    assert page.title() == "Ministry of Packages"
    recent = page.get_by_role("link", name=f"{unique} 3.1")
    assert recent.get_attribute("href") == f"/project/{unique}/3.1/"
    screenshot(page, "home")
    recent.click()
    assert page.locator(".summary").inner_text() == "Fresh off the press"


def test_login_token_upload_revoke(
    server: MinistryServer, page: Page, tmp_path: Path, home: Path, unique: str
) -> None:
    """Log in, create a token, upload with it, revoke it: then it no longer uploads."""
    page.goto(f"{server.url}/-/tokens")
    page.wait_for_url("**/-/login?next=/-/tokens")
    page.get_by_label("User name").fill(ALICE[0])
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").inner_text() == (
        "Invalid or non-existent authentication information."
    )
    log_in(page, server, "/-/tokens")
    cookie = next(c for c in page.context.cookies() if c["name"] == "ministry_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.get_by_label("What it is for").fill("browser test")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#token-secret").inner_text()
    assert secret.startswith("mop_")
    screenshot(page, "tokens")

    upload_url = f"{server.url}/legacy/"
    first = make_wheel(tmp_path, unique, "1.0")
    uploaded = twine_upload(home, upload_url, "__token__", secret, first)
    assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr

    page.goto(f"{server.url}/-/tokens")  # the secret is never shown again
    assert page.locator("#token-secret").count() == 0
    row = page.locator("tr", has_text="browser test")
    row.get_by_role("button", name="Revoke").click()
    assert page.locator("tr", has_text="browser test").inner_text().endswith("revoked")
    refused = twine_upload(
        home, upload_url, "__token__", secret, make_wheel(tmp_path, unique, "2.0")
    )
    assert refused.returncode != 0
    assert "403" in refused.stdout + refused.stderr or "401" in refused.stdout + refused.stderr

    page.get_by_role("button", name="Log out").click()
    page.goto(f"{server.url}/-/tokens")
    page.wait_for_url("**/-/login?next=/-/tokens")


def test_yank_from_the_page_makes_pip_skip_it(
    server: MinistryServer, page: Page, tmp_path: Path, home: Path, unique: str
) -> None:
    publish(server, tmp_path, unique, "1.0")
    publish(server, tmp_path, unique, "2.0")
    page.goto(f"{server.url}/project/{unique}/")
    assert page.get_by_role("button", name="Yank 2.0").count() == 0  # not signed in
    log_in(page, server, f"/project/{unique}/")
    # The owner (alice, the first uploader) adds a maintainer with the page's form.
    page.get_by_label("User or @group").fill("bob")
    page.get_by_role("button", name="Add", exact=True).click()
    page.get_by_role("button", name="Remove maintainer bob").wait_for()
    page.get_by_role("checkbox", name="Yes, yank 2.0").check()
    page.get_by_role("button", name="Yank 2.0").click()
    page.wait_for_url(f"{server.url}/project/{unique}/2.0/?done=yanked")
    assert page.locator(".badge.yanked").first.inner_text() == "yanked"
    assert page.get_by_text("This release has no description.").count() == 1
    screenshot(page, "yanked")

    python = new_venv(tmp_path / "venv")
    installed = pip_install(python, home, "--index-url", f"{server.url}/simple/", unique)
    assert installed.returncode == 0, installed.stderr
    assert f"{unique}-1.0" in installed.stdout
    assert server.served(f"/packages/{unique}/{unique}-1.0-py3-none-any.whl") == 1

    page.get_by_role("button", name="Unyank 2.0").click()
    assert page.locator("h1 .badge").count() == 0


def test_forms_without_the_xsrf_token_are_refused(
    server: MinistryServer, page: Page, tmp_path: Path, unique: str
) -> None:
    """A form posted from elsewhere carries the session cookie but not the token."""
    publish(server, tmp_path, unique, "1.0")
    log_in(page, server)
    session = next(c for c in page.context.cookies() if c["name"] == "ministry_session")
    cookies = {"ministry_session": session["value"]}
    with httpx.Client(base_url=server.url, trust_env=False, cookies=cookies) as forger:
        yank = {"index": "main", "project": unique, "version": "1.0", "action": "yank"}
        assert forger.post("/-/yank", data=yank).status_code == 403
        assert forger.post("/-/tokens", data={"description": "forged"}).status_code == 403
        # The session alone is no credential for the APIs.
        assert forger.get("/-/api/users/alice/tokens").status_code == 401
    page.goto(f"{server.url}/project/{unique}/")
    assert page.locator("h1 .badge").count() == 0
    page.goto(f"{server.url}/-/tokens")
    assert page.locator("tr", has_text="forged").count() == 0


def test_help_page_uses_this_servers_addresses(server: MinistryServer, page: Page) -> None:
    page.goto(server.url + "/")
    page.get_by_role("link", name="Help").click()
    page.wait_for_url("**/-/help")
    text = page.locator("main").inner_text()
    assert f"index-url = {server.url}/simple/" in text
    assert f'url = "{server.url}/simple/"' in text  # uv and PDM
    assert f"poetry config repositories.ministry {server.url}/legacy/" in text
    assert f"repository = {server.url}/legacy/" in text  # .pypirc
    screenshot(page, "help")
    # To a stranger, a missing index answers as a private one does (docs/security.md,
    # "Private indexes"): log in first.
    assert page.goto(f"{server.url}/-/help?index=no-such-index") is not None
    assert page.title().startswith("401")


def test_indexes_list_their_projects(
    server: MinistryServer, page: Page, tmp_path: Path, unique: str
) -> None:
    publish(server, tmp_path, unique, "1.0")
    page.goto(f"{server.url}/-/indexes")
    page.get_by_role("link", name="main").click()
    page.wait_for_url("**/-/indexes/main/")
    page.get_by_role("link", name=unique).click()
    page.wait_for_url(f"{server.url}/project/{unique}/")
    screenshot(page, "index")
    # The index page searches that index (docs/indexes.md, "URLs").
    page.go_back()
    page.get_by_role("searchbox", name="Search the projects of main").fill(unique)
    page.get_by_role("searchbox", name="Search the projects of main").press("Enter")
    page.wait_for_url(f"{server.url}/main/search?q={unique}")
    assert page.locator("ul.results li a").all_inner_texts() == [unique]


def test_audit_log_is_for_administrators(
    fresh_server: MinistryServer, page: Page, tmp_path: Path, unique: str
) -> None:
    root = ("root", "root-password-1")
    assert fresh_server.cli("user", "add", root[0], "--admin", "--password-stdin",
                            stdin=root[1] + "\n").returncode == 0  # fmt: skip
    publish(fresh_server, tmp_path, unique, "1.0")
    log_in(page, fresh_server, "/-/audit")
    assert page.title().startswith("403")
    page.get_by_role("button", name="Log out").click()
    page.goto(f"{fresh_server.url}/-/login?next=/-/audit")
    page.get_by_label("User name").fill(root[0])
    page.get_by_label("Password").fill(root[1])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/-/audit")
    rows = page.locator("tbody tr").all_inner_texts()
    assert not [row for row in rows if "token" in row]  # logging in is no change
    upload = next(row for row in rows if "add-file" in row)
    assert unique in upload and "alice" in upload
    screenshot(page, "audit")


def test_delete_button_where_the_index_allows_it(
    fresh_server: MinistryServer, page: Page, tmp_path: Path, unique: str
) -> None:
    index = "team/scratch"
    created = fresh_server.cli(
        "index", "create", index, "--allow-delete", "--admins", "alice", "--uploaders", "alice"
    )
    assert created.returncode == 0, created.stderr
    for version in ("1.0", "2.0"):
        wheel = make_wheel(tmp_path, unique, version)
        with fresh_server.client() as client:
            response = post_upload(client, wheel, auth=ALICE, url=f"/{index}/legacy/")
            assert response.status_code == 200, response.text
    log_in(page, fresh_server, "/-/user")
    assert "team/scratch" in page.locator("main").inner_text()
    screenshot(page, "user")
    page.goto(f"{fresh_server.url}/{index}/project/{unique}/1.0/")
    assert page.get_by_role("button", name="Delete release 1.0").count() == 1
    page.goto(f"{fresh_server.url}/project/{unique}/1.0/")  # main does not allow deleting
    assert page.get_by_role("button", name="Delete release 1.0").count() == 0
    page.goto(f"{fresh_server.url}/{index}/project/{unique}/")
    delete = page.locator("form", has=page.get_by_role("button", name="Delete release 2.0"))
    delete.get_by_role("button", name="Delete release 2.0").click()  # not confirmed: it stays
    assert page.url == f"{fresh_server.url}/{index}/project/{unique}/"
    assert page.get_by_role("link", name="2.0", exact=True).count() == 1
    delete.get_by_role("checkbox").check()
    delete.get_by_role("button", name="Delete release 2.0").click()
    page.wait_for_url(f"{fresh_server.url}/{index}/project/{unique}/?done=deleted&what=2.0")
    assert page.locator("h1").first.inner_text().startswith(f"{unique} 1.0")
    assert page.get_by_role("link", name="2.0", exact=True).count() == 0
    with fresh_server.client() as client:
        page_json = client.get(
            f"/{index}/simple/{unique}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
        ).json()
    assert [f["filename"] for f in page_json["files"]] == [f"{unique}-1.0-py3-none-any.whl"]


def test_pages_work_on_a_phone_and_from_the_keyboard(
    server: MinistryServer, browser: Browser
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone = context.new_page()
    blocked = watch_policy(phone)
    phone.goto(server.url + "/")
    width = phone.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390  # nothing wider than the screen
    screenshot(phone, "home-phone")
    phone.keyboard.press("Tab")
    assert phone.evaluate("() => document.activeElement.textContent") == "Skip to content"
    phone.keyboard.press("Tab")
    phone.keyboard.press("Tab")
    focused = phone.evaluate(
        "() => document.activeElement.textContent || document.activeElement.name"
    )
    assert focused.strip() in {"Search", "q"}
    context.close()
    assert blocked == []


def test_everything_works_with_javascript_off(
    server: MinistryServer, browser: Browser, tmp_path: Path, unique: str
) -> None:
    publish(server, tmp_path, unique, "1.0")
    publish(server, tmp_path, unique, "2.0")
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{server.url}/search?q={unique}")
    page.get_by_role("link", name=unique, exact=True).click()
    log_in(page, server, f"/project/{unique}/")
    page.get_by_role("link", name="1.0", exact=True).click()
    page.get_by_role("checkbox", name="Yes, yank 1.0").check()
    page.get_by_role("button", name="Yank 1.0").click()
    page.wait_for_url(f"{server.url}/project/{unique}/1.0/?done=yanked")
    assert page.locator("h1 .badge").inner_text() == "yanked"
    context.close()
