"""Project and release pages in a real browser: the README's code, the files by kind,
badges, install snippets, yanking and deleting, and the /packages/ listings on a phone.

One server and one browser for the module; one index of its own, which allows
deleting and has a description, with one project published once in several kinds
of file. Every page checked is also checked with axe-core, at desktop and phone
sizes, light and dark.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from conftest import ALICE, BOB
from support.axe import violations
from support.browser import chromium, log_in, screenshot, watch_policy
from support.clients import uv
from support.distributions import make_sdist, make_wheel
from support.logins import form_login
from support.server import MinistryServer
from support.uploads import post_upload
from support.upstreams import StaticUpstream

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
LINUX_TAG = "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64"
README = """\
# Demo

```python
def answer() -> int:
    return 42  # the answer
```

| Name | Count |
|:-----|------:|
| a    | 12345 |
"""
INDEX_DESCRIPTION = "Packages of the project-page tests, which may be deleted."


@dataclass(frozen=True)
class Published:
    """The module's index and project, and the files of its release 1.0 by kind."""

    index: str
    name: str
    sdist: Path
    pure: Path
    linux: Path
    windows: Path

    @property
    def prefix(self) -> str:
        return f"/{self.index}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def published(server: MinistryServer, tmp_path_factory: pytest.TempPathFactory) -> Published:
    stem = "p" + hashlib.sha256(__name__.encode()).hexdigest()[:8]
    index, name = f"{stem}-team", f"{stem}-widgets"
    created = server.cli(
        "index", "create", index, "--allow-delete", "--admins", "alice",
        "--uploaders", "alice", "--description", INDEX_DESCRIPTION,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    directory = tmp_path_factory.mktemp("project-pages")
    readme = {
        "description": README,
        "extra_headers": [("Description-Content-Type", "text/markdown")],
        "summary": "Widgets for the tests",
    }
    files = Published(
        index,
        name,
        sdist=make_sdist(directory, name, "1.0", **readme),  # type: ignore[arg-type]
        pure=make_wheel(directory, name, "1.0", **readme),  # type: ignore[arg-type]
        linux=make_wheel(directory, name, "1.0", tag=LINUX_TAG, **readme),  # type: ignore[arg-type]
        windows=make_wheel(directory, name, "1.0", tag="cp312-cp312-win_amd64", **readme),  # type: ignore[arg-type]
    )
    later = [make_wheel(directory, name, version) for version in ("1.1", "2.0rc1")]
    with server.client() as client:
        for path in (files.sdist, files.pure, files.linux, files.windows, *later):
            response = post_upload(client, path, auth=ALICE, url=f"/{index}/legacy/")
            assert response.status_code == 200, response.text
    return files


@pytest.fixture(scope="module")
def context(browser: Browser, server: MinistryServer) -> Iterator[BrowserContext]:
    """A desktop window that may use the clipboard."""
    opened = browser.new_context(viewport=DESKTOP)
    opened.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def tab(context: BrowserContext) -> tuple[Page, list[str]]:
    """The tab the tests take turns in, and what the policy blocked in it."""
    opened = context.new_page()
    return opened, watch_policy(opened)


@pytest.fixture
def page(tab: tuple[Page, list[str]]) -> Iterator[Page]:
    """A page whose test fails if the Content-Security-Policy blocked anything on it. It
    starts as a new one would (blank, desktop size, light colours, nothing blocked yet), in
    the same tab: a new tab costs Chromium a renderer process."""
    opened, blocked = tab
    opened.goto("about:blank")
    opened.set_viewport_size(DESKTOP)
    opened.emulate_media(color_scheme="light")
    blocked.clear()
    yield opened
    assert blocked == [], "the Content-Security-Policy blocked parts of a page"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def accessible_everywhere(page: Page, *, authored: bool = False) -> None:
    """No axe violation at desktop and phone sizes, light and dark (the README too if
    ``authored``); the page is left at desktop size in light mode."""
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for size in (DESKTOP, PHONE):
            page.set_viewport_size(size)
            found = violations(page, authored=authored)
            assert found == [], f"{page.url} {scheme} {size['width']}px: {found}"
            if size is PHONE:
                width = page.evaluate("() => document.documentElement.scrollWidth")
                assert width <= PHONE["width"], f"{page.url} is {width}px wide on a phone"
    page.emulate_media(color_scheme="light")
    page.set_viewport_size(DESKTOP)


def colour(page: Page, selector: str) -> str:
    return str(page.locator(selector).first.evaluate("e => getComputedStyle(e).color"))


def test_release_page_readme_files_badges_and_snippets(
    server: MinistryServer, page: Page, published: Published
) -> None:
    name, prefix = published.name, published.prefix
    page.goto(f"{server.url}{prefix}/project/{name}/1.0/")
    # README code: coloured tokens in both schemes, its language in a class, focusable.
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        assert colour(page, ".readme pre .k") != colour(page, ".readme pre")
        assert colour(page, ".readme pre .c1") != colour(page, ".readme pre .k")
    page.emulate_media(color_scheme="light")
    assert page.locator(".readme [lang]").count() == 0
    code = page.locator(".readme pre")
    assert (code.get_attribute("class") or "").startswith("language-python")
    assert code.get_attribute("tabindex") == "0"
    cells = page.locator(".readme td")
    align = "e => getComputedStyle(e).textAlign"
    assert [cells.nth(0).evaluate(align), cells.nth(1).evaluate(align)] == ["left", "right"]

    # Files by kind, with sizes, times and a hash to copy.
    files = page.locator("section.files")
    assert files.locator("h3").all_inner_texts() == [
        "Source distribution",
        "Wheels: pure Python (any platform)",
        "Wheels for manylinux2014_x86_64, manylinux_2_17_x86_64",
        "Wheels for win_amd64",
    ]
    tables = files.locator("table")
    for number, path in enumerate(
        (published.sdist, published.pure, published.linux, published.windows)
    ):
        row = tables.nth(number).locator("tbody tr")
        assert row.count() == 1
        assert row.locator("td.file a").inner_text() == path.name
        assert re.fullmatch(r"\d+ bytes|\d+\.\d kB", row.locator("td.num").inner_text())
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row.locator("td.time").inner_text())
        digest = sha256(path)
        assert row.locator("td.hash code").get_attribute("title") == digest
        assert row.locator("td.hash code").inner_text() == f"{digest[:12]}…"
        copy = page.get_by_role("button", name=f"Copy the sha256 of {path.name}")
        assert copy.get_attribute("data-copy") == digest
        assert copy.inner_text().startswith("Copy")
    page.get_by_role("button", name=f"Copy the sha256 of {published.linux.name}").click()
    assert page.evaluate("() => navigator.clipboard.readText()") == sha256(published.linux)
    # The hash column keeps its width beside the longest filename.
    hash_width = page.locator("td.hash").nth(2).bounding_box()
    assert hash_width is not None and hash_width["width"] >= 140

    # Badges: a newer release exists; the history marks the pre-release.
    newer = page.locator(".notice.newer")
    assert newer.locator(".badge").inner_text() == "newer version available"
    assert newer.get_by_role("link").get_attribute("href") == f"{prefix}/project/{name}/1.1/"
    history = page.locator("ul.plain li", has=page.get_by_role("link", name="2.0rc1"))
    assert history.locator(".badge.pre").inner_text() == "pre-release"
    assert page.locator("h1 .badge").count() == 0

    # Install snippets for this index, pinned on a release page.
    simple = f"{server.url}{prefix}/simple/"
    source = published.index
    snippets = [t.strip() for t in page.locator(".snippet pre").all_text_contents()]
    assert snippets == [
        f"pip install --index-url {simple} {name}==1.0",
        f"uv pip install --index-url {simple} {name}==1.0",
        f"uv add --index {source}={simple} {name}==1.0",
        f"poetry source add --priority=explicit {source} {simple}\n"
        f"poetry add --source {source} {name}==1.0",
        f'[[tool.pdm.source]]\nname = "{source}"\nurl = "{simple}"',
        f"pdm add {name}==1.0",
    ]
    copies = page.locator(".snippet button")
    assert [copies.nth(i).get_attribute("data-copy") for i in range(6)] == snippets
    # pip's command shows; the other installers wait behind one line, so the README's
    # heading is on the first screen at desktop and phone sizes.
    more = page.locator("details.more-installers")
    assert more.get_attribute("open") is None
    assert page.locator("#install").is_visible() and copies.nth(0).is_visible()
    assert [copies.nth(i).is_visible() for i in range(1, 6)] == [False] * 5
    for size in (DESKTOP, PHONE):
        page.set_viewport_size(size)
        top = page.locator("#description").evaluate("e => e.getBoundingClientRect().top")
        assert top < size["height"] * 0.75, f"the README starts at {top}px at {size['width']}px"
    page.set_viewport_size(DESKTOP)
    page.get_by_text("More installers: uv, Poetry, PDM").click()
    assert [copies.nth(i).is_visible() for i in range(6)] == [True] * 6
    assert page.get_by_role("button", name="Copy the uv pip command").count() == 1
    copies.nth(1).click()
    assert page.evaluate("() => navigator.clipboard.readText()") == snippets[1]

    # The index's description, where the page names the index.
    assert INDEX_DESCRIPTION in page.locator("aside").inner_text()
    screenshot(page, "project-release")
    accessible_everywhere(page, authored=True)
    page.set_viewport_size(PHONE)
    screenshot(page, "project-release-phone")
    page.set_viewport_size(DESKTOP)


def test_project_page_prerelease_page_and_index_page(
    server: MinistryServer, page: Page, published: Published
) -> None:
    name, prefix = published.name, published.prefix
    page.goto(f"{server.url}{prefix}/project/{name}/")
    assert page.locator("h1").inner_text() == f"{name} 1.1"  # the newest that is no pre-release
    assert page.locator(".notice.newer").count() == 0
    assert page.locator("#install").inner_text().strip() == (
        f"pip install --index-url {server.url}{prefix}/simple/ {name}"
    )
    accessible_everywhere(page)

    page.goto(f"{server.url}{prefix}/project/{name}/2.0rc1/")
    assert page.locator("h1 .badge.pre").inner_text() == "pre-release"
    assert page.locator(".notice.newer").count() == 0  # newer than the newest stable
    assert page.locator("#install").inner_text().strip().endswith(f"{name}==2.0rc1")

    page.goto(f"{server.url}/-/indexes/{published.index}/")
    assert page.locator(".index-description").inner_text() == INDEX_DESCRIPTION
    accessible_everywhere(page)


def test_the_uv_snippet_installs(
    server: MinistryServer, page: Page, published: Published, tmp_path: Path, home: Path
) -> None:
    page.goto(f"{server.url}{published.prefix}/project/{published.name}/1.0/")
    command = (page.locator(".snippet pre").nth(1).text_content() or "").split()
    assert command[:3] == ["uv", "pip", "install"]
    venv = tmp_path / "venv"
    created = uv(home, "venv", "--python", sys.executable, str(venv))
    assert created.returncode == 0, created.stderr
    installed = uv(home, *command[1:3], "--python", str(venv / "bin" / "python"), *command[3:])
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert f"{published.name}==1.0" in installed.stdout + installed.stderr


def test_yank_with_a_reason_then_delete_a_file_and_a_release(
    server: MinistryServer, page: Page, published: Published, tmp_path: Path
) -> None:
    name, prefix = published.name, published.prefix
    release = f"{prefix}/project/{name}/1.0/"
    page.goto(f"{server.url}{release}")
    assert page.locator("section.manage").count() == 0  # not signed in
    log_in(page, server, release)
    for button in page.locator("section.manage button").all():
        assert "danger" in (button.get_attribute("class") or "").split()
    delete_text = page.locator("section.manage").inner_text()
    assert "no file with other contents can ever be uploaded under them" in delete_text
    accessible_everywhere(page)

    # Yank: the box must be ticked; the reason reaches installers.
    reason = "Broken on Windows, use 1.1"
    page.get_by_label("Reason (shown to installers)").fill(reason)
    page.get_by_role("button", name="Yank 1.0").click()
    assert page.url == f"{server.url}{release}"  # the browser asked for the tick first
    page.get_by_role("checkbox", name="Yes, yank 1.0").check()
    page.get_by_role("button", name="Yank 1.0").click()
    page.wait_for_url(f"{server.url}{release}?done=yanked")
    assert "This release is yanked" in page.get_by_role("status").inner_text()
    assert page.locator("h1 .badge.yanked").inner_text() == "yanked"
    assert reason in page.locator("p.yanked").inner_text()
    line = page.locator("ul.plain li", has=page.get_by_role("link", name="1.0", exact=True))
    assert line.locator(".badge.yanked").inner_text() == "yanked"
    assert reason in line.inner_text()
    accessible_everywhere(page)  # the yanked release, with its message
    screenshot(page, "project-release-yanked")
    with server.client() as client:
        listed = client.get(f"{prefix}/simple/{name}/", headers={"Accept": SIMPLE_JSON}).json()
    yanked = {f["filename"]: f.get("yanked") for f in listed["files"]}
    assert yanked[published.pure.name] == reason
    assert yanked[f"{name.replace('-', '_')}-1.1-py3-none-any.whl"] is False

    # Delete one file: gone from the simple page, its filename retired.
    page.get_by_label("File", exact=True).select_option(published.windows.name)
    page.get_by_role("checkbox", name="Yes, delete this file for good").check()
    page.get_by_role("button", name="Delete the file").click()
    page.wait_for_url(f"{server.url}{release}?done=deleted*")
    assert published.windows.name in page.get_by_role("status").inner_text()
    assert page.locator("section.files h3").all_inner_texts()[-1] != "Wheels for win_amd64"
    with server.client() as client:
        listed = client.get(f"{prefix}/simple/{name}/", headers={"Accept": SIMPLE_JSON}).json()
        assert published.windows.name not in {f["filename"] for f in listed["files"]}
        assert published.linux.name in {f["filename"] for f in listed["files"]}
        other = make_wheel(tmp_path, name, "1.0", tag="cp312-cp312-win_amd64", summary="Other")
        assert other.name == published.windows.name
        again = post_upload(client, other, auth=ALICE, url=f"{prefix}/legacy/")
        assert again.status_code == 400, again.text
        assert "since been deleted" in again.text

    # Delete the pre-release: the project page says so.
    page.goto(f"{server.url}{prefix}/project/{name}/2.0rc1/")
    page.get_by_role("checkbox", name="Yes, delete release 2.0rc1 for good").check()
    page.get_by_role("button", name="Delete release 2.0rc1").click()
    page.wait_for_url(f"{server.url}{prefix}/project/{name}/?done=deleted&what=2.0rc1")
    assert "Deleted release 2.0rc1: its files are gone" in page.get_by_role("status").inner_text()
    assert page.get_by_role("link", name="2.0rc1", exact=True).count() == 0

    # The message names only a version or a filename, never other words.
    page.goto(f"{server.url}{prefix}/project/{name}/?done=deleted&what=Call+us+now")
    assert page.get_by_role("status").count() == 0


def focused_outline(page: Page) -> str:
    """The computed outline of the focused control, as a sighted keyboard user sees it."""
    return str(
        page.evaluate(
            "() => { const s = getComputedStyle(document.activeElement);"
            " return `${s.outlineStyle} ${s.outlineWidth}`; }"
        )
    )


def test_yank_with_the_keyboard_alone(
    server: MinistryServer, page: Page, published: Published, tmp_path: Path
) -> None:
    name = f"{published.name}-keys"
    with server.client() as client:
        wheel = make_wheel(tmp_path, name, "1.0")
        assert post_upload(client, wheel, auth=ALICE, url=f"{published.prefix}/legacy/").is_success
    release = f"{published.prefix}/project/{name}/1.0/"
    log_in(page, server, release)

    # Tab from the top of the page to the reason; every stop on the way shows its focus.
    reason = "Keyboard says: broken build"
    unmarked: list[str] = []
    for _ in range(80):
        page.keyboard.press("Tab")
        if focused_outline(page) != "solid 2px":
            unmarked.append(page.evaluate("() => document.activeElement.outerHTML.slice(0, 80)"))
        if page.evaluate("() => document.activeElement.id") == "yank-reason":
            break
    else:
        pytest.fail("Tab never reached the yank reason")
    assert unmarked == []
    page.keyboard.type(reason)
    page.keyboard.press("Tab")
    checkbox = "() => [document.activeElement.type, document.activeElement.name]"
    assert page.evaluate(checkbox) == ["checkbox", "confirm"]
    assert focused_outline(page) == "solid 2px"
    page.keyboard.press("Space")
    assert page.get_by_role("checkbox", name="Yes, yank 1.0").is_checked()
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Yank 1.0"
    assert focused_outline(page) == "solid 2px"
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server.url}{release}?done=yanked")
    assert reason in page.locator("p.yanked").inner_text()
    with server.client() as client:
        listed = client.get(
            f"{published.prefix}/simple/{name}/", headers={"Accept": SIMPLE_JSON}
        ).json()
    assert [f["yanked"] for f in listed["files"]] == [reason]


def test_deleting_the_last_release_lands_on_the_index_page(
    server: MinistryServer, page: Page, published: Published, tmp_path: Path
) -> None:
    name = f"{published.name}-solo"
    with server.client() as client:
        wheel = make_wheel(tmp_path, name, "1.0")
        assert post_upload(client, wheel, auth=ALICE, url=f"{published.prefix}/legacy/").is_success
    log_in(page, server, f"{published.prefix}/project/{name}/1.0/")
    page.get_by_role("checkbox", name="Yes, delete release 1.0 for good").check()
    page.get_by_role("button", name="Delete release 1.0").click()
    page.wait_for_url(f"{server.url}/-/indexes/{published.index}/?done=deleted&what=1.0")
    assert "Deleted release 1.0: its files are gone" in page.get_by_role("status").inner_text()
    assert page.get_by_role("link", name=name, exact=True).count() == 0
    accessible_everywhere(page)


def test_packages_listings_fit_a_phone(
    server: MinistryServer, page: Page, published: Published
) -> None:
    for path in ("/packages/", f"/packages/{published.name}/"):
        page.goto(f"{server.url}{published.prefix}{path}")
        assert page.locator(".table-wrap table").count() == 1
        accessible_everywhere(page)
    page.set_viewport_size(PHONE)
    screenshot(page, "packages-project-phone")
    page.set_viewport_size(DESKTOP)


def test_proxied_project_page(browser: Browser, tmp_path: Path) -> None:
    """A project from an upstream: its page says where its description would be, and
    names the index the reader reads."""
    name = "proxied-widgets"
    with StaticUpstream() as upstream:
        upstream.add(make_wheel(tmp_path, name, "1.0"))
        proxy = MinistryServer(
            tmp_path / "proxy",
            arguments=["--upstream", upstream.url],
            environment={"NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"},
        ).start()
        context = browser.new_context(viewport=DESKTOP)
        try:
            page = context.new_page()
            for prefix, index in (("", "main"), ("/upstream", "upstream")):
                page.goto(f"{proxy.url}{prefix}/project/{name}/")
                text = page.locator("main").inner_text()
                assert "This release has no description" not in text
                assert "comes from the upstream of index upstream" in text
                assert page.locator("aside dd a").first.inner_text() == index
                assert page.locator("#install").inner_text().strip() == (
                    f"pip install --index-url {proxy.url}{prefix}/simple/ {name}"
                )
                accessible_everywhere(page)
        finally:
            context.close()
            proxy.stop()


def test_crafted_delete_forms_are_refused(server: MinistryServer, published: Published) -> None:
    """The file form, posted by hand: only the project's owners delete, only a file of
    the release named, only with the box ticked; nothing changes otherwise."""
    name = published.name
    other_release = f"{name.replace('-', '_')}-1.1-py3-none-any.whl"
    form = {"index": published.index, "project": name, "version": "1.0", "confirm": "yes"}
    for user, fields, status in (
        (BOB, {"filename": published.linux.name}, 403),  # not an owner
        (ALICE, {"filename": other_release}, 404),  # a file of another release
        (ALICE, {"filename": published.linux.name, "confirm": ""}, 400),  # not ticked
    ):
        with server.client() as client:
            assert form_login(client, *user).status_code in (200, 302, 303)
            data = {**form, **fields, "_xsrf": client.cookies["_xsrf"]}
            assert client.post("/-/delete", data=data).status_code == status, (user, fields)
    with server.client() as client:
        listed = client.get(
            f"{published.prefix}/simple/{name}/", headers={"Accept": SIMPLE_JSON}
        ).json()
    assert {published.linux.name, other_release} <= {f["filename"] for f in listed["files"]}
