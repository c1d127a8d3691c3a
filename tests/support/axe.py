"""axe-core, the accessibility checker, run on a page the browser tests have open.

The pages must have no violation of their own. What a package author wrote (the
README inside ``.readme``) is theirs and left out, but what the renderer adds to it
is checked by the tests of the renderer.
"""

from __future__ import annotations

from typing import Any

from axe_playwright_python.base import AXE_FILE_PATH
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import BrowserContext, Page

__all__ = ["preload", "violations"]

_AXE = Axe()
#: The WCAG 2.x A and AA rules and axe's best practices.
_OPTIONS: dict[str, Any] = {
    "resultTypes": ["violations"],
    "runOnly": {
        "type": "tag",
        "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"],
    },
}
#: What a change of colour scheme alone can break.
_COLOURS: dict[str, Any] = {
    "resultTypes": ["violations"],
    "runOnly": {"type": "rule", "values": ["color-contrast", "link-in-text-block"]},
}


def preload(context: BrowserContext) -> None:
    """Put the checker into every page the context opens, before the page's own scripts:
    cheaper than sending it into each page afterwards."""
    context.add_init_script(path=str(AXE_FILE_PATH))


def violations(page: Page, *, authored: bool = False, colours_only: bool = False) -> list[str]:
    """Each violation on the open page as one line (rule, impact, where, what to do);
    the README is left out unless ``authored``; ``colours_only`` checks only the rules
    that a colour scheme decides (for a page already checked in the other scheme)."""
    context = None if authored else {"exclude": [[".readme"]]}
    # The checker (half a megabyte of script) goes into a page once, not on every run.
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_AXE.axe_script)
    found = page.evaluate("([context, options]) => axe.run(context ?? document, options)",
                          [context, _COLOURS if colours_only else _OPTIONS])  # fmt: skip
    return [
        f"{rule['id']} ({rule['impact']}) at "
        f"{', '.join(str(node['target']) for node in rule['nodes'])}: {rule['help']}"
        for rule in found["violations"]
    ]
