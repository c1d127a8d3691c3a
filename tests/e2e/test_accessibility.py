"""Every page of the site passes axe-core and fits a phone, in light and dark colours;
people who use only the keyboard can log in and create a token.

One server with demo data (support/demo.py), one browser, one context (and tab) per
screen size: each page is one case, named ``page-size``, checked in light and then dark.
The signed-in pages get their user's session cookie, made once.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from support.axe import preload, violations
from support.demo import ADMIN, FORM_PAGES, MEMBER, PAGES, PRIVATE, SIZES, Demo, seed
from support.server import MinistryServer

SCHEMES = ("light", "dark")


def _cases(pages: list[Any]) -> list[Any]:
    return [pytest.param(page, size, id=f"{page[0]}-{size}") for page in pages for size in SIZES]


def _chromium() -> str:
    """Debian's Chromium: browsers are never downloaded by the tests."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("Chromium is missing: scripts/test installs Debian's chromium package")
    return found


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MinistryServer, Demo]]:
    """A server of this module's own, with the demo data."""
    directory = tmp_path_factory.mktemp("accessibility")
    server = MinistryServer(directory / "data").start()
    demo = seed(server, directory / "dist")
    yield server, demo
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=_chromium(), headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def contexts(browser: Browser) -> Iterator[dict[str, BrowserContext]]:
    """One context per size (a phone's is a mobile one)."""
    made = {
        size: browser.new_context(viewport=SIZES[size], is_mobile=size == "phone")  # type: ignore[arg-type]
        for size in SIZES
    }
    for context in made.values():
        preload(context)
    yield made
    for context in made.values():
        context.close()


def _open(
    contexts: dict[str, BrowserContext],
    site: tuple[MinistryServer, Demo],
    size: str,
    who: str | None,
) -> Page:
    server, demo = site
    context = contexts[size]
    context.clear_cookies()
    if who is not None:
        cookie = {"name": "ministry_session", "value": demo.sessions[who], "url": server.url}
        context.add_cookies([cookie])  # type: ignore[list-item]
    # One tab per context, navigated from case to case: a new tab costs Chromium a
    # renderer process, more than the page load itself. Each case still starts from its
    # own cookies, a new document (page.goto) and the light scheme.
    if not context.pages:
        context.new_page()
    page = context.pages[0]
    page.emulate_media(color_scheme="light")
    return page


def _check(page: Page, width: int) -> None:
    """No axe violation in either colour scheme, nothing wider than the screen."""
    found = []
    for scheme in SCHEMES:
        page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
        checked = violations(page, colours_only=scheme != SCHEMES[0])
        found += [f"{scheme}: {violation}" for violation in checked]
    assert found == []
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width


@pytest.mark.parametrize(("shown", "size"), _cases(PAGES))
def test_page(
    site: tuple[MinistryServer, Demo],
    contexts: dict[str, BrowserContext],
    shown: tuple[str, str, str | None],
    size: str,
) -> None:
    name, path, who = shown
    page = _open(contexts, site, size, who)
    response = page.goto(site[0].url + path)
    assert response is not None
    if name.startswith("error-"):
        assert response.status == int(name.removeprefix("error-"))
        assert page.locator("main#content h1").count() == 1
    else:
        assert response.status == 200, page.content()
    _check(page, SIZES[size]["width"])


@pytest.mark.parametrize(("shown", "size"), _cases(FORM_PAGES))
def test_form_page(
    site: tuple[MinistryServer, Demo],
    contexts: dict[str, BrowserContext],
    shown: tuple[str, str, str | None, dict[str, str], str],
    size: str,
) -> None:
    _name, path, who, fields, button = shown
    page = _open(contexts, site, size, who)
    page.goto(site[0].url + path)
    for label, value in fields.items():
        page.get_by_label(label).fill(value)
    with page.expect_navigation():
        page.get_by_role("button", name=button, exact=True).click()
    _check(page, SIZES[size]["width"])


def _outline(page: Page) -> str:
    """The focused element's outline as computed, e.g. "2px solid ...": visible focus."""
    style: str = page.evaluate(
        """() => { const s = getComputedStyle(document.activeElement);
            return s.outlineStyle === 'none' ? '' : s.outlineWidth + ' ' + s.outlineStyle; }"""
    )
    return style


def _tab_to(page: Page, text: str, limit: int = 15) -> None:
    """Press Tab until the focused element reads ``text``; each stop shows its focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        assert _outline(page), page.evaluate("() => document.activeElement.outerHTML")
        if page.evaluate("() => document.activeElement.textContent.trim()") == text:
            return
    raise AssertionError(f"no {text!r} within {limit} presses of Tab")


def test_log_in_and_create_a_token_with_the_keyboard(
    site: tuple[MinistryServer, Demo], browser: Browser
) -> None:
    """Skip link, login link, the form, the tokens page: Tab, typing and Enter only."""
    server, _ = site
    context = browser.new_context(viewport=SIZES["desktop"])  # type: ignore[arg-type]
    page = context.new_page()
    page.goto(server.url + "/")
    page.keyboard.press("Tab")
    skip = page.locator(".skip-link")
    assert page.evaluate("() => document.activeElement.className") == "skip-link"
    assert _outline(page)
    box = skip.bounding_box()
    assert box is not None and box["y"] >= 0 and box["width"] > 1  # shown on screen when focused
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "content"

    page.goto(server.url + "/")
    _tab_to(page, "Log in")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "username"  # autofocus
    assert _outline(page)
    page.keyboard.type(MEMBER[0])
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "password"
    assert _outline(page)
    page.keyboard.type(MEMBER[1])
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url == server.url + "/"

    page.goto(server.url + "/-/tokens")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the skip link: the next Tab is in the main part
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "description"
    assert _outline(page)
    page.keyboard.type("typed with the keyboard")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "index"
    assert _outline(page)
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "days"
    page.keyboard.type("30")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Create token"
    assert _outline(page)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator("#token-secret").inner_text().startswith("mop_")
    row = page.locator("tr", has_text="typed with the keyboard")
    assert row.count() == 1
    context.close()


def test_copy_buttons_say_copied_then_get_their_label_back(
    site: tuple[MinistryServer, Demo], browser: Browser
) -> None:
    """The accessible name holds the visible word; after "Copied" the whole label is back."""
    server, demo = site
    context = browser.new_context(viewport=SIZES["desktop"])  # type: ignore[arg-type]
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    cookie = {"name": "ministry_session", "value": demo.sessions["member"], "url": server.url}
    context.add_cookies([cookie])  # type: ignore[list-item]
    page = context.new_page()
    page.clock.install()
    page.goto(server.url + "/-/tokens")
    page.get_by_label("What it is for").fill("copied")
    with page.expect_navigation():
        page.get_by_role("button", name="Create token").click()
    button = page.get_by_role("button", name="Copy the token", exact=True)
    button.click()
    page.get_by_role("button", name="Copied").wait_for()
    secret = page.locator("#token-secret").inner_text()
    assert page.evaluate("() => navigator.clipboard.readText()") == secret
    page.clock.run_for(2000)
    assert button.text_content() == "Copy the token"  # the hidden words are back too
    assert button.locator(".visually-hidden").count() == 1
    assert page.get_by_role("button", name="Copied").count() == 0
    context.close()


def test_the_401_page_logs_in_and_comes_back(
    site: tuple[MinistryServer, Demo], browser: Browser
) -> None:
    server, _ = site
    context = browser.new_context(viewport=SIZES["phone"])  # type: ignore[arg-type]
    page = context.new_page()
    path = f"/-/help?index={PRIVATE}"
    response = page.goto(server.url + path)
    assert response is not None and response.status == 401
    assert page.title() == "401 Unauthorized · Ministry of Packages"
    page.locator("main").get_by_role("link", name="Log in").click()
    page.get_by_label("User name").fill(ADMIN[0])
    page.get_by_label("Password").fill(ADMIN[1])
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
    assert page.url == server.url + path
    assert PRIVATE in page.locator("main").inner_text()
    context.close()
