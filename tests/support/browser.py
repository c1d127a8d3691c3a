"""What the browser tests share: Debian's Chromium, the policy watch, screenshots, logging in.

Screenshots of the pages are written to ``$MINISTRY_TEST_ARTIFACTS`` (default
``test-artifacts/`` in the repository), for people to look at.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, Page

from conftest import ALICE
from support.server import MinistryServer

__all__ = ["ARTIFACTS", "chromium", "log_in", "screenshot", "watch_policy"]

ARTIFACTS = Path(
    os.environ.get("MINISTRY_TEST_ARTIFACTS") or Path(__file__).parents[2] / "test-artifacts"
)


def chromium() -> str:
    """Debian's Chromium: browsers are never downloaded by the tests."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("Chromium is missing: scripts/test installs Debian's chromium package")
    return found


def watch_policy(page: Page) -> list[str]:
    """Collects what the page's Content-Security-Policy blocked, as the browser reports it."""
    blocked: list[str] = []
    page.add_init_script(
        """document.addEventListener("securitypolicyviolation", (event) => console.error(
            "CSP violation: " + event.violatedDirective + " " + event.blockedURI))"""
    )

    def seen(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "CSP violation" in message.text:
            blocked.append(message.text)

    page.on("console", seen)
    return blocked


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def log_in(page: Page, server: MinistryServer, next_path: str = "/") -> None:
    page.goto(f"{server.url}/-/login?next={next_path}")
    page.get_by_label("User name").fill(ALICE[0])
    page.get_by_label("Password").fill(ALICE[1])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{server.url}{next_path}")
