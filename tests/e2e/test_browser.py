"""The browser interface in a real browser: Playwright driving Debian's Chromium.

Screenshots of the pages are written to ``$MINISTRY_TEST_ARTIFACTS`` (default
``test-artifacts/`` in the repository), for people to look at.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from conftest import ALICE
from support.distributions import make_wheel
from support.server import MinistryServer
from support.uploads import post_upload

ARTIFACTS = Path(
    os.environ.get("MINISTRY_TEST_ARTIFACTS") or Path(__file__).parents[2] / "test-artifacts"
)
README = """\
# Demo heading

Some *emphasis* and a [link](https://example.invalid/docs).

<script>document.title = "owned"</script>

[click me](javascript:alert(1))
<img src="x" onerror="document.title = 'owned'">
<a href="https://example.invalid" onclick="document.title = 'owned'">handler</a>

```python
print("hello")
```
"""


def chromium() -> str:
    """Debian's Chromium: browsers are never downloaded by the tests."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("Chromium is missing: scripts/test installs Debian's chromium package")
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(java_script_enabled=True)
    opened = context.new_page()
    yield opened
    context.close()


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


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
    assert page.locator("td.hash").first.inner_text() == digest
    assert page.get_by_text(">=3.9").count() == 1
    assert page.get_by_text("requests>=2").count() == 1
    assert page.locator("#install").inner_text() == (
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
    assert page.locator("#install").inner_text().endswith(f"{unique}==1.0")


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
