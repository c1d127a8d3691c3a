"""Administration in the browser (``/-/admin/``, docs/web.md): indexes, groups, users and a
project's owners, driven in Debian's Chromium against one ``ministry serve`` process."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from test_browser import chromium, screenshot, watch_policy

from conftest import ALICE, BOB, add_user
from support.axe import preload, violations
from support.distributions import make_wheel
from support.server import MinistryServer
from support.uploads import post_upload

ROOT = ("root", "root-password-1")
CAROL = ("carol", "carol-password-1")
SIZES = {"desktop": (1366, 900), "phone": (390, 844)}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinistryServer]:
    """A server of this module's own: its tests create users, groups and indexes."""
    instance = MinistryServer(tmp_path_factory.mktemp("admin") / "data").start()
    for user in (ALICE, BOB):
        add_user(instance, *user)
    made = instance.cli("user", "add", ROOT[0], "--admin", "--password-stdin", stdin=ROOT[1])
    assert made.returncode == 0, made.stderr
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), headless=True)
        yield launched
        launched.close()


#: A new context's window, which ``Session.sign_out`` puts back.
WINDOW = {"width": 1280, "height": 720}


class Session:
    """A browser context signed in as one user; the policy's complaints are collected."""

    def __init__(self, browser: Browser, server: MinistryServer) -> None:
        self.context = browser.new_context(viewport=WINDOW)  # type: ignore[arg-type]
        preload(self.context)
        self.page = self.context.new_page()
        self.page.set_default_timeout(10_000)
        self.blocked = watch_policy(self.page)
        self.server = server

    def log_in(self, user: tuple[str, str], next_path: str = "/") -> None:
        page = self.page
        page.goto(f"{self.server.url}/-/login?next={next_path}")
        page.get_by_label("User name", exact=True).fill(user[0])
        page.get_by_label("Password", exact=True).fill(user[1])
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{self.server.url}{next_path}")

    def goto(self, path: str) -> int:
        response = self.page.goto(self.server.url + path)
        assert response is not None
        return response.status

    def sign_out(self) -> None:
        """Back to what a new context is (no cookies, a blank page in a window of the
        first size, light colours, nothing blocked yet) for the next user: the same tab
        costs Chromium no new renderer process."""
        self.context.clear_cookies()
        self.page.goto("about:blank")
        self.page.set_viewport_size(WINDOW)
        self.page.emulate_media(color_scheme="light")
        self.blocked.clear()

    def done(self) -> None:
        """Fails if the policy blocked anything so far; signs out."""
        blocked = list(self.blocked)
        self.sign_out()
        assert blocked == [], "the Content-Security-Policy blocked parts of a page"


@pytest.fixture(scope="module")
def tab(browser: Browser, server: MinistryServer) -> Iterator[Session]:
    """The tab the tests' sessions take turns in."""
    opened = Session(browser, server)
    yield opened
    opened.context.close()


@pytest.fixture
def session(tab: Session) -> Iterator[Session]:
    """A signed-out session of the test's own; it fails if the policy blocked anything."""
    tab.sign_out()
    yield tab
    tab.done()


@pytest.fixture
def other(browser: Browser, server: MinistryServer) -> Iterator[Session]:
    """A second browser beside ``session``: another user's, taken in turns by the test."""
    opened = Session(browser, server)
    yield opened
    opened.context.close()


def accessible(page: Page) -> None:
    """axe finds nothing on the open page at desktop and phone sizes, light and dark, and
    nothing is wider than the screen."""
    found = []
    for size, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        wide = page.evaluate("() => document.documentElement.scrollWidth")
        if wide > width:
            found.append(f"{size}: the page is {wide} pixels wide")
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            checked = violations(page, colours_only=scheme == "dark")
            found += [f"{size} {scheme}: {v}" for v in checked]
    page.set_viewport_size({"width": 1366, "height": 900})
    page.emulate_media(color_scheme="light")
    assert found == []


def upload(server: MinistryServer, tmp_path: Path, user: tuple[str, str], index: str,
           name: str, version: str = "1.0") -> int:  # fmt: skip
    wheel = make_wheel(tmp_path, name, version)
    with server.client() as client:
        return post_upload(client, wheel, auth=user, url=f"/{index}/legacy/").status_code


def simple_status(server: MinistryServer, user: tuple[str, str], index: str, name: str) -> int:
    with server.client() as client:
        return client.get(f"/{index}/simple/{name}/", auth=user).status_code


def alert(page: Page) -> str:
    return page.get_by_role("alert").inner_text()


def status(page: Page) -> str:
    return page.get_by_role("status").inner_text()


def test_an_administrator_creates_edits_and_deletes_an_index(
    server: MinistryServer, session: Session, tmp_path: Path
) -> None:
    page = session.page
    session.log_in(ROOT)
    page.get_by_role("link", name="Administration").click()
    page.wait_for_url("**/-/admin/")
    accessible(page)
    page.get_by_role("link", name="New index").click()
    page.wait_for_url("**/-/admin/indexes/new")
    accessible(page)

    # A base that does not exist is refused in the form, with what was typed kept.
    page.get_by_label("Name", exact=True).fill("team/dev")
    page.get_by_label("Bases", exact=True).fill("no-such-index")
    page.get_by_label("Uploaders", exact=True).fill("alice")
    page.get_by_label("Private", exact=True).check()
    with page.expect_response("**/-/admin/indexes/new") as answer:
        page.get_by_role("button", name="Create index").click()
    assert answer.value.status == 400
    assert "'no-such-index': no such index" in alert(page)
    expect(page.get_by_label("Name", exact=True)).to_have_value("team/dev")
    expect(page.get_by_label("Uploaders", exact=True)).to_have_value("alice")
    expect(page.get_by_label("Private", exact=True)).to_be_checked()
    accessible(page)  # with the message shown

    page.get_by_label("Bases", exact=True).fill("main")
    page.get_by_role("button", name="Create index").click()
    page.wait_for_url("**/-/admin/indexes/team/dev/?done=index-created")
    assert status(page) == "Index created."
    accessible(page)
    screenshot(page, "admin-index")

    # The new index takes uploads and hides itself from others, as it says.
    assert upload(server, tmp_path, ALICE, "team/dev", "devtool") == 200
    assert simple_status(server, ALICE, "team/dev", "devtool") == 200
    assert simple_status(server, BOB, "team/dev", "devtool") == 404
    page.get_by_label("Readers", exact=True).fill("bob")
    page.get_by_role("button", name="Save settings").click()
    page.wait_for_url("**/-/admin/indexes/team/dev/?done=index-saved")
    assert simple_status(server, BOB, "team/dev", "devtool") == 200
    page.get_by_label("Private", exact=True).uncheck()
    page.get_by_role("button", name="Save settings").click()
    page.wait_for_url("**/?done=index-saved")
    with server.client() as client:  # now anyone reads it
        assert client.get("/team/dev/simple/devtool/").status_code == 200

    # A proxy index needs an http(s) upstream: said in the form, the input kept.
    session.goto("/-/indexes")
    page.get_by_role("link", name="New index").click()
    page.get_by_label("Name", exact=True).fill("mirror")
    page.get_by_label("Upstream URLs", exact=True).fill("ftp://files.example/simple/")
    with page.expect_response("**/-/admin/indexes/new") as answer:
        page.get_by_role("button", name="Create index").click()
    assert answer.value.status == 400
    assert "needs an upstream http(s) URL" in alert(page)
    expect(page.get_by_label("Upstream URLs", exact=True)).to_have_value(
        "ftp://files.example/simple/"
    )
    with server.client() as client:
        assert client.get("/-/api/indexes/mirror", auth=ROOT).status_code == 404
    # The upstream's password is never shown again, and saving what is shown keeps it.
    upstream = page.get_by_label("Upstream URLs", exact=True)
    upstream.fill("https://mirror-user:s3cret-word@files.example/simple/")
    page.get_by_label("Page freshness", exact=True).fill("10m")
    page.get_by_role("button", name="Create index").click()
    page.wait_for_url("**/-/admin/indexes/mirror/?done=index-created")
    assert "s3cret-word" not in page.content()
    expect(page.get_by_label("Page freshness", exact=True)).to_have_value("600")
    page.get_by_label("Minimum age of files", exact=True).fill("3d")
    page.get_by_role("button", name="Save settings").click()
    page.wait_for_url("**/-/admin/indexes/mirror/?done=index-saved")
    stored = sqlite3.connect(f"file:{server.data / 'ministry.sqlite3'}?mode=ro", uri=True)
    with contextlib.closing(stored):
        (config,) = stored.execute("SELECT config FROM indexes WHERE name = 'mirror'").fetchone()
    assert "mirror-user:s3cret-word@files.example" in config and "259200" in config
    # The upstreams are a list, one a line; a second one, routed, keeps the first's password.
    upstream = page.get_by_label("Upstream URLs", exact=True)
    expect(upstream).to_have_value("https://mirror-user:***@files.example/simple/")
    upstream.fill(
        "https://mirror-user:***@files.example/simple/\n"
        "https://corp.example/simple/ only=acme-* ttl=1m"
    )
    page.get_by_role("button", name="Save settings").click()
    page.wait_for_url("**/-/admin/indexes/mirror/?done=index-saved")
    expect(page.get_by_label("Upstream URLs", exact=True)).to_have_value(
        "https://mirror-user:***@files.example/simple/\n"
        "https://corp.example/simple/ only=acme-* ttl=60s"
    )
    accessible(page)
    with contextlib.closing(
        sqlite3.connect(f"file:{server.data / 'ministry.sqlite3'}?mode=ro", uri=True)
    ) as stored:
        (config,) = stored.execute("SELECT config FROM indexes WHERE name = 'mirror'").fetchone()
    upstreams = json.loads(config)["upstreams"]
    assert [u["url"] for u in upstreams] == [
        "https://mirror-user:s3cret-word@files.example/simple/",
        "https://corp.example/simple/",
    ]
    assert upstreams[1]["only"] == ["acme-*"] and upstreams[1]["page_ttl"] == 60
    # A bad entry is said in the form, nothing changed.
    upstream = page.get_by_label("Upstream URLs", exact=True)
    upstream.fill("https://files.example/simple/ mirror=yes")
    with page.expect_response("**/-/admin/indexes/mirror/") as answer:
        page.get_by_role("button", name="Save settings").click()
    assert answer.value.status == 400
    assert "Unknown upstream option 'mirror=yes'" in alert(page)

    # Deleting asks for confirmation, and says so when the index still holds projects.
    session.goto("/-/indexes/team/dev/")
    page.get_by_role("link", name="edit its settings").click()
    page.wait_for_url("**/-/admin/indexes/team/dev/")
    page.get_by_label("Yes, delete team/dev").check()
    with page.expect_response("**/-/admin/indexes/team/dev/") as answer:
        page.get_by_role("button", name="Delete index team/dev").click()
    assert answer.value.status == 400
    assert "holds 1 projects" in alert(page)
    page.get_by_label("Yes, delete team/dev").check()
    page.get_by_label("Also when it still holds projects").check()
    page.get_by_role("button", name="Delete index team/dev").click()
    page.wait_for_url("**/-/admin/?done=index-deleted")
    assert status(page) == "Index deleted."
    assert session.goto("/-/indexes/team/dev/") == 404


def test_an_index_admin_edits_their_index_with_the_keyboard_alone(
    server: MinistryServer, session: Session
) -> None:
    for name, extra in (("kb", []), ("kbproxy", ["--upstream", "http://127.0.0.1:9/simple/"])):
        made = server.cli("index", "create", name, "--admins", "alice", *extra)
        assert made.returncode == 0, made.stderr
    page = session.page
    session.log_in(ALICE, "/-/indexes/kb/")
    assert page.get_by_role("link", name="edit its settings").count() == 1
    # Not a server administrator: no "New index", no users, groups or new indexes.
    for path in ("/-/admin/users", "/-/admin/groups", "/-/admin/indexes/new"):
        assert session.goto(path) == 403
    assert session.goto("/-/indexes") == 200
    assert page.get_by_role("link", name="New index").count() == 0
    page.get_by_role("link", name="Administration").click()
    assert page.get_by_role("link", name="Settings of kb", exact=True).count() == 1
    assert page.get_by_role("link", name="Users").count() == 0
    session.goto("/-/admin/indexes/kb/")
    accessible(page)
    assert page.get_by_role("button", name=re.compile("Delete index")).count() == 0

    # Tab from the top of the page through the form, typing and ticking on the way.
    order: list[str] = []
    focused = ""
    for _ in range(40):
        page.keyboard.press("Tab")
        focused = page.evaluate("() => document.activeElement.id || document.activeElement.name")
        if focused == "description":
            page.keyboard.type("Kept by keyboard")
        elif focused == "readers":
            page.keyboard.type("bob")
        elif focused == "private":
            page.keyboard.press("Space")
        elif focused == "action":
            break
        if focused in {"description", "bases", "routes", "allow_inherit", "readers", "uploaders",
                       "admins", "private", "allow_delete", "allow_overwrite"}:  # fmt: skip
            order.append(focused)
    assert focused == "action"
    assert order == ["description", "bases", "routes", "allow_inherit", "readers", "uploaders",
                     "admins", "private", "allow_delete", "allow_overwrite"]  # fmt: skip
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"  # the focus is visible
    page.keyboard.press("Enter")
    page.wait_for_url("**/-/admin/indexes/kb/?done=index-saved")
    with server.client() as client:
        settings = client.get("/-/api/indexes/kb", auth=ALICE).json()
    assert settings["description"] == "Kept by keyboard"
    assert settings["readers"] == ["bob"] and settings["private"] is True

    # An index admin may not change where an index connects (docs/security.md, SSRF):
    # the field is read-only, and a crafted post is refused in the form.
    session.goto("/-/admin/indexes/kbproxy/")
    field = page.get_by_label("Upstream URLs", exact=True)
    expect(field).to_have_attribute("readonly", "")
    field.evaluate("element => element.removeAttribute('readonly')")
    field.fill("http://127.0.0.1:10/simple/")
    with page.expect_response("**/-/admin/indexes/kbproxy/") as answer:
        page.get_by_role("button", name="Save settings").click()
    assert answer.value.status == 403
    assert "Only server administrators may change the upstream" in alert(page)
    expect(page.get_by_label("Upstream URLs", exact=True)).to_have_value(
        "http://127.0.0.1:10/simple/"
    )
    with server.client() as client:
        settings = client.get("/-/api/indexes/kbproxy", auth=ALICE).json()
    assert settings["upstream"] == "http://127.0.0.1:9/simple/"

    # The proxy's cache bound, which an index admin may set as the API lets them: a
    # size people read, a refusal inline with the input kept, empty for none.
    session.goto("/-/admin/indexes/kbproxy/")
    bound = page.get_by_label("Cache bound", exact=True)
    expect(bound).to_have_value("")
    bound.fill("lots")
    with page.expect_response("**/-/admin/indexes/kbproxy/") as answer:
        page.get_by_role("button", name="Save settings").click()
    assert answer.value.status == 400
    assert "max_cache_size" in alert(page) and "not a size" in alert(page)
    expect(page.get_by_label("Cache bound", exact=True)).to_have_value("lots")
    accessible(page)  # with the message shown
    page.get_by_label("Cache bound", exact=True).fill("512M")
    page.get_by_role("button", name="Save settings").click()
    page.wait_for_url("**/-/admin/indexes/kbproxy/?done=index-saved")
    expect(page.get_by_label("Cache bound", exact=True)).to_have_value("512 MiB")
    page.get_by_role("button", name="Save settings").click()  # shown, saved back the same
    page.wait_for_url("**/-/admin/indexes/kbproxy/?done=index-saved")
    with server.client() as client:
        settings = client.get("/-/api/indexes/kbproxy", auth=ALICE).json()
    assert settings["max_cache_size"] == 512 * 1024 * 1024
    # The index's page tells those who manage it what its cache holds; others, nothing.
    session.goto("/-/indexes/kbproxy/")
    usage = page.get_by_role("heading", name="Cache").locator("xpath=following-sibling::p[1]")
    expect(usage).to_have_text(
        re.compile(r"^0 files of the upstream's kept, 0 B; bound: 512\.0 MiB")
    )
    accessible(page)
    with server.client() as client:
        anonymous = client.get("/-/indexes/kbproxy/")
    assert anonymous.status_code == 200 and "kept, 0 B" not in anonymous.text
    session.goto("/-/admin/indexes/kbproxy/")
    page.get_by_label("Cache bound", exact=True).fill("")
    page.get_by_role("button", name="Save settings").click()
    page.wait_for_url("**/-/admin/indexes/kbproxy/?done=index-saved")
    with server.client() as client:
        settings = client.get("/-/api/indexes/kbproxy", auth=ALICE).json()
    assert settings["max_cache_size"] is None
    session.goto("/-/admin/indexes/kb/")  # a hosted index keeps no cache: no such field
    assert page.get_by_label("Cache bound", exact=True).count() == 0


def test_groups_and_users(
    server: MinistryServer, session: Session, other: Session, tmp_path: Path
) -> None:
    made = server.cli("index", "create", "crew")
    assert made.returncode == 0, made.stderr
    page = session.page
    session.log_in(ROOT, "/-/admin/users")
    accessible(page)
    page.get_by_label("User name", exact=True).fill("not a name!")
    page.get_by_label("Password (at least 8 characters)").fill(CAROL[1])
    with page.expect_response("**/-/admin/users") as answer:
        page.get_by_role("button", name="Create user").click()
    assert answer.value.status == 400
    assert "Invalid name 'not a name!'" in alert(page)
    expect(page.get_by_label("User name", exact=True)).to_have_value("not a name!")
    for name in (CAROL[0], "dave"):
        page.get_by_label("User name", exact=True).fill(name)
        page.get_by_label("Password (at least 8 characters)").fill(CAROL[1])
        page.get_by_role("button", name="Create user").click()
        page.wait_for_url("**/-/admin/users?done=user-created")

    page.get_by_role("link", name="Groups").click()
    page.wait_for_url("**/-/admin/groups")
    page.get_by_label("Group name", exact=True).fill("release")
    page.get_by_role("button", name="Create group").click()
    page.wait_for_url("**/-/admin/groups?done=group-created")
    new_member = page.get_by_label("New member of @release")
    new_member.fill("nobody")
    with page.expect_response("**/-/admin/groups") as answer:
        page.get_by_role("button", name="Add member to @release").click()
    assert answer.value.status == 404
    assert alert(page) == "No user 'nobody'."
    expect(page.get_by_label("New member of @release")).to_have_value("nobody")
    accessible(page)  # with the message shown
    page.get_by_label("New member of @release").fill(CAROL[0])
    page.get_by_role("button", name="Add member to @release").click()
    page.wait_for_url("**/-/admin/groups?done=member-added")
    accessible(page)

    # The group gets upload rights in the index's form; then its member uploads.
    assert upload(server, tmp_path, CAROL, "crew", "crewtool") == 403
    session.goto("/-/admin/indexes/crew/")
    page.get_by_label("Uploaders", exact=True).fill("@release")
    page.get_by_role("button", name="Save settings").click()
    page.wait_for_url("**/?done=index-saved")
    assert upload(server, tmp_path, CAROL, "crew", "crewtool") == 200

    # Carol signs in; she administers nothing, so sees no link to it and gets 403.
    carol = other
    carol.log_in(CAROL)
    assert carol.page.get_by_role("link", name="Administration").count() == 0
    assert carol.goto("/-/admin/") == 403
    assert carol.goto("/-/indexes/crew/") == 200  # an uploader, not one of its admins
    assert carol.page.get_by_role("link", name="edit its settings").count() == 0
    carol.done()

    # Removing her is refused while a right names her (she owns what she uploaded).
    session.goto("/-/admin/users")
    page.get_by_role("checkbox", name="Yes, remove carol").check()
    with page.expect_response("**/-/admin/users") as answer:
        page.get_by_role("button", name="Remove carol").click()
    assert answer.value.status == 409
    assert "User 'carol' is still named in the owners of crew/crewtool" in alert(page)
    page.get_by_role("checkbox", name="Yes, remove dave").check()
    page.get_by_role("button", name="Remove dave").click()
    page.wait_for_url("**/-/admin/users?done=user-removed")
    assert page.get_by_role("heading", name="dave").count() == 0

    # Disabled, she cannot sign in; enabled with a new password, she can.
    page.get_by_role("button", name="Disable carol").click()
    page.wait_for_url("**/-/admin/users?done=user-disabled")
    assert page.locator("#user-carol .badge").inner_text() == "disabled"
    refused = other
    refused.goto("/-/login")
    refused.page.get_by_label("User name", exact=True).fill(CAROL[0])
    refused.page.get_by_label("Password", exact=True).fill(CAROL[1])
    refused.page.get_by_role("button", name="Log in").click()
    assert "Invalid" in refused.page.get_by_role("alert").inner_text()
    refused.done()
    page.get_by_role("button", name="Enable carol").click()
    page.wait_for_url("**/-/admin/users?done=user-enabled")
    page.get_by_label("New password for carol").fill("carol-new-password")
    page.get_by_role("button", name="Set the password of carol").click()
    page.wait_for_url("**/-/admin/users?done=password-set")
    accessible(page)
    screenshot(page, "admin-users")
    again = other
    again.log_in((CAROL[0], "carol-new-password"))
    again.done()

    session.goto("/-/admin/groups")
    page.get_by_role("button", name="Remove carol from @release").click()
    page.wait_for_url("**/-/admin/groups?done=member-removed")
    assert page.get_by_text("no members").count() == 1


def test_administrators_and_confirmed_removals(server: MinistryServer, session: Session) -> None:
    made = server.cli("user", "add", "erin", "--password-stdin", stdin="erin-password-1")
    assert made.returncode == 0, made.stderr
    page = session.page
    session.log_in(ROOT, "/-/admin/users")

    # root is the only administrator: the right stays, said beside the form (as the API says).
    with page.expect_response("**/-/admin/users") as answer:
        page.get_by_role("button", name="Take the administrator right from root").click()
    assert answer.value.status == 409
    assert "'root' is the last enabled server administrator" in alert(page)
    accessible(page)  # with the message shown
    with server.client() as client:
        refused = client.patch("/-/api/users/root", json={"admin": False}, auth=ROOT)
        assert refused.status_code == 409, refused.text
        assert "last enabled server administrator" in refused.json()["message"]

    # erin becomes one, and then no longer; root may not take the right from himself.
    page.get_by_role("button", name="Make erin a server administrator").click()
    page.wait_for_url("**/-/admin/users?done=admin-granted")
    assert status(page) == "The user is now a server administrator."
    assert page.locator("#user-erin .badge").inner_text() == "administrator"
    with server.client() as client:
        assert client.get("/-/api/users/erin", auth=ROOT).json()["admin"] is True
    with page.expect_response("**/-/admin/users") as answer:
        page.get_by_role("button", name="Take the administrator right from root").click()
    assert answer.value.status == 400
    assert "You cannot take away your own administrator right" in alert(page)
    page.get_by_role("button", name="Take the administrator right from erin").click()
    page.wait_for_url("**/-/admin/users?done=admin-revoked")
    assert page.locator("#user-erin .badge").count() == 0
    with server.client() as client:
        assert client.get("/-/api/users/erin", auth=ROOT).json()["admin"] is False

    # Removing a user needs the box ticked: the browser asks, and the server refuses a
    # form sent without it (the attribute taken away, as a script would).
    page.get_by_role("button", name="Remove erin").click()
    assert page.url.endswith("/-/admin/users?done=admin-revoked")  # nothing was sent
    box = page.get_by_role("checkbox", name="Yes, remove erin")
    box.evaluate("element => element.removeAttribute('required')")
    with page.expect_response("**/-/admin/users") as answer:
        page.get_by_role("button", name="Remove erin").click()
    assert answer.value.status == 400
    assert alert(page) == "Tick the box to confirm: removing a user cannot be undone."
    assert page.get_by_role("heading", name="erin").count() == 1
    accessible(page)
    page.get_by_role("checkbox", name="Yes, remove erin").check()
    page.get_by_role("button", name="Remove erin").click()
    page.wait_for_url("**/-/admin/users?done=user-removed")
    assert page.get_by_role("heading", name="erin").count() == 0

    # Deleting a group likewise.
    made = server.cli("group", "create", "doomed")
    assert made.returncode == 0, made.stderr
    session.goto("/-/admin/groups")
    box = page.get_by_role("checkbox", name="Yes, delete @doomed")
    box.evaluate("element => element.removeAttribute('required')")
    with page.expect_response("**/-/admin/groups") as answer:
        page.get_by_role("button", name="Delete group @doomed").click()
    assert answer.value.status == 400
    assert alert(page) == "Tick the box to confirm: deleting a group cannot be undone."
    assert page.get_by_role("heading", name="@doomed").count() == 1
    accessible(page)
    page.get_by_role("checkbox", name="Yes, delete @doomed").check()
    page.get_by_role("button", name="Delete group @doomed").click()
    page.wait_for_url("**/-/admin/groups?done=group-deleted")
    assert page.get_by_role("heading", name="@doomed").count() == 0


def test_error_pages_of_the_simple_pages_name_who_is_signed_in(
    server: MinistryServer, session: Session
) -> None:
    """The simple pages and the API never act on the session cookie (docs/security.md,
    "Cross-site requests"); their error pages for a browser still name who is signed in."""
    made = server.cli("index", "create", "vault", "--private", "--readers", "alice")
    assert made.returncode == 0, made.stderr
    html = {"Accept": "text/html"}
    with server.client() as client:  # what a stranger gets
        expected = {
            path: client.get(path, headers=html).status_code
            for path in ("/simple/no-such-project/", "/vault/simple/", "/vault/simple/x/")
        }
        assert client.get("/vault/simple/", auth=ALICE).status_code == 200
    assert expected["/simple/no-such-project/"] == 404
    page = session.page
    session.log_in(ALICE)
    assert session.goto("/simple/no-such-project/") == 404
    assert page.locator("header.site").get_by_role("link", name="alice", exact=True).count() == 1
    assert page.get_by_role("link", name="Log in").count() == 0
    assert page.get_by_role("button", name="Log out").count() == 1
    accessible(page)

    # The cookie opens nothing: with it, each address answers as to a stranger (a 401
    # challenges for Basic credentials, which a headless browser cannot answer, so the
    # browser's cookies are sent by hand), and the page says why the sign-in does not count.
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    with httpx.Client(base_url=server.url, trust_env=False, cookies=cookies) as browser_like:
        for path, status_code in expected.items():
            answer = browser_like.get(path, headers=html)
            assert answer.status_code == status_code, path
            assert ">alice</a>" in answer.text and ">Log in</a>" not in answer.text, path
        refused = browser_like.get("/vault/simple/", headers=html)
        assert "it does not use the browser's sign-in" in refused.text
        assert browser_like.get("/-/api/whoami", headers=html).status_code == 401


def test_owners_and_publishers_on_the_project_page(
    server: MinistryServer, session: Session, tmp_path: Path
) -> None:
    assert upload(server, tmp_path, ALICE, "main", "ownedtool") == 200
    page = session.page
    session.log_in(ALICE, "/project/ownedtool/")
    owner_field = page.get_by_label("User or @group", exact=True)
    owner_field.fill("nobody-here")
    page.locator("select[name=role]").select_option("owner")
    with page.expect_response("**/-/roles") as answer:
        page.get_by_role("button", name="Add", exact=True).click()
    assert answer.value.status == 404
    assert "nobody-here" in alert(page)
    expect(page.get_by_label("User or @group", exact=True)).to_have_value("nobody-here")
    expect(page.locator("select[name=role]")).to_have_value("owner")
    # The message is accessible (the page's own phone layout is another test's business).
    assert violations(page) == []
    page.get_by_label("User or @group", exact=True).fill("bob")
    page.get_by_role("button", name="Add", exact=True).click()
    page.get_by_role("button", name="Remove owner bob").wait_for()
    page.get_by_role("button", name="Remove owner bob").click()
    page.wait_for_url("**/project/ownedtool/")
    assert page.get_by_role("button", name="Remove owner bob").count() == 0

    page.get_by_label("Repository", exact=True).fill("not a repository")
    page.get_by_label("Workflow", exact=True).fill("release.yml")
    with page.expect_response("**/-/publishers") as answer:
        page.get_by_role("button", name="Add publisher").click()
    assert answer.value.status == 400
    assert page.get_by_role("alert").count() == 1
    expect(page.get_by_label("Repository", exact=True)).to_have_value("not a repository")
    expect(page.get_by_label("Workflow", exact=True)).to_have_value("release.yml")
    page.get_by_label("Repository", exact=True).fill("octo-org/ownedtool")
    page.get_by_role("button", name="Add publisher").click()
    page.wait_for_url("**/project/ownedtool/")
    assert "octo-org/ownedtool" in page.locator("ul.publishers").inner_text()


def test_strangers_and_forged_posts_are_turned_away(
    server: MinistryServer, session: Session, other: Session
) -> None:
    page = session.page
    session.goto("/-/admin/users")
    page.wait_for_url("**/-/login?next=/-/admin/users")
    session.log_in(ROOT, "/-/admin/users")
    # The confirmation is a fixed text chosen by a code: nothing of the URL is shown.
    session.goto("/-/admin/users?done=%3Cb%3Eowned%3C/b%3E")
    assert page.get_by_role("status").count() == 0 and "owned" not in page.content()
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    session_only = {"ministry_session": cookies["ministry_session"]}
    with httpx.Client(base_url=server.url, trust_env=False, cookies=session_only) as forger:
        user = {"action": "create", "name": "forged", "password": "forged-password-1"}
        assert forger.post("/-/admin/users", data=user).status_code == 403
        index = {"name": "forged", "uploaders": "@all"}
        assert forger.post("/-/admin/indexes/new", data=index).status_code == 403
        group = {"action": "create", "group": "forged"}
        assert forger.post("/-/admin/groups", data=group).status_code == 403
    # With both cookies but a blank token, as another site's copy of the form would send.
    with httpx.Client(base_url=server.url, trust_env=False, cookies=cookies) as forger:
        user = {"action": "create", "name": "forged", "password": "forged-pw-1", "_xsrf": ""}
        assert forger.post("/-/admin/users", data=user).status_code == 403
    # A signed-in user who is no server administrator, with a valid token, is refused.
    alice = other
    alice.log_in(ALICE)
    theirs = {c["name"]: c["value"] for c in alice.page.context.cookies()}
    alice.done()
    with httpx.Client(base_url=server.url, trust_env=False, cookies=theirs) as client:
        user = {"action": "create", "name": "forged", "password": "forged-pw-1"}
        answer = client.post("/-/admin/users", data={**user, "_xsrf": theirs["_xsrf"]})
        assert answer.status_code == 403
        assert "Only server administrators may create users" in answer.text
    with server.client() as client:
        names = [u["name"] for u in client.get("/-/api/users", auth=ROOT).json()["users"]]
        assert "forged" not in names
        assert client.get("/-/api/indexes/forged", auth=ROOT).status_code == 404
