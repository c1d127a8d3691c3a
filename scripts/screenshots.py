"""Screenshots of every page of the site (run through scripts/screenshots).

A real ``ministry serve`` on 127.0.0.1 in a temporary directory, filled by
tests/support/demo.py, whose ``PAGES`` and ``FORM_PAGES`` are the pages shown: a page
added there is photographed here too.
"""

from __future__ import annotations

import argparse
import html
import os
import shutil
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, sync_playwright

from support.demo import ADMIN_PAGES, FORM_PAGES, PAGES, SIZES, Demo, seed
from support.server import MinistryServer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help="only these pages (default: every one)")
    parser.add_argument("--out", type=Path, default=Path("screenshots"), help="where to write")
    parser.add_argument("--dark", action="store_true", help="also in the dark colour scheme")
    arguments = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        parser.error("Chromium is missing: install Debian's chromium package")
    pages = [
        p
        for p in [*PAGES, *ADMIN_PAGES, *FORM_PAGES]
        if not arguments.names or p[0] in arguments.names
    ]
    if not pages:
        parser.error("no page of that name; the names are in tests/support/demo.py")
    schemes = ["light", "dark"] if arguments.dark else ["light"]
    arguments.out.mkdir(parents=True, exist_ok=True)
    # Cheap password hashing for the demo users: the server lives only for this run.
    os.environ.setdefault("MINISTRY_PASSWORD_HASH_COST", "minimal")
    with tempfile.TemporaryDirectory(prefix="ministry-screenshots-") as temporary:
        server = MinistryServer(Path(temporary) / "data").start()
        try:
            demo = seed(server, Path(temporary) / "dist")
            shots = _photograph(server, demo, pages, schemes, arguments.out, chromium)
        finally:
            server.stop()
    (arguments.out / "index.html").write_text(_gallery(pages, schemes, shots))
    print(f"{len(shots)} screenshots in {arguments.out}/ (open index.html)")
    return 0


def _photograph(
    server: MinistryServer,
    demo: Demo,
    pages: list[tuple[object, ...]],
    schemes: list[str],
    out: Path,
    chromium: str,
) -> set[str]:
    """Each page at each size and scheme; returns the files written."""
    written: set[str] = set()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        for size, viewport in SIZES.items():
            for scheme in schemes:
                context = browser.new_context(
                    viewport=viewport,  # type: ignore[arg-type]
                    color_scheme=scheme,  # type: ignore[arg-type]
                    is_mobile=size == "phone",
                )
                for shown in pages:
                    name = str(shown[0])
                    page = _open(context, server, demo, shown)
                    filename = _filename(name, size, scheme)
                    page.screenshot(path=str(out / filename), full_page=True)
                    written.add(filename)
                    page.close()
                    print(filename, file=sys.stderr)
                context.close()
        browser.close()
    return written


def _open(
    context: BrowserContext, server: MinistryServer, demo: Demo, shown: tuple[object, ...]
) -> Page:
    """The page as its user sees it; a form page after its form was sent."""
    path, who = str(shown[1]), shown[2]
    context.clear_cookies()
    if isinstance(who, str):
        cookie = {"name": "ministry_session", "value": demo.sessions[who], "url": server.url}
        context.add_cookies([cookie])  # type: ignore[list-item]
    page = context.new_page()
    page.goto(server.url + path)
    if len(shown) == 5:  # a form page: (name, path, who, fields, button)
        fields, button = shown[3], shown[4]
        assert isinstance(fields, dict)
        for label, value in fields.items():
            page.get_by_label(label).fill(value)
        with page.expect_navigation():
            page.get_by_role("button", name=str(button), exact=True).click()
    return page


def _filename(name: str, size: str, scheme: str) -> str:
    return f"{name}-{size}{'' if scheme == 'light' else '-' + scheme}.png"


def _gallery(pages: list[tuple[object, ...]], schemes: list[str], shots: set[str]) -> str:
    """index.html: a row per page, its sizes side by side."""
    rows = []
    for shown in pages:
        name, path = html.escape(str(shown[0])), html.escape(str(shown[1]))
        who = f" (signed in: {html.escape(str(shown[2]))})" if shown[2] else ""
        cells = []
        for scheme in schemes:
            for size in SIZES:
                filename = _filename(str(shown[0]), size, scheme)
                if filename in shots:
                    cells.append(
                        f'<figure class="{size}"><a href="{filename}"><img src="{filename}" '
                        f'alt="{name}, {size}, {scheme}" loading="lazy"></a>'
                        f"<figcaption>{size}, {scheme}</figcaption></figure>"
                    )
        rows.append(
            f'<section><h2 id="{name}">{name} <code>{path}</code>{who}</h2>'
            f'<div class="row">{"".join(cells)}</div></section>'
        )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Ministry of Packages: screenshots</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1rem; }}
.row {{ display: flex; gap: 1rem; align-items: flex-start; overflow-x: auto; }}
figure {{ margin: 0; }} figure.desktop img {{ width: 683px; }} figure.phone img {{ width: 195px; }}
img {{ border: 1px solid #ccc; }}
</style></head><body>
<h1>Ministry of Packages: every page</h1>
{"".join(rows)}
</body></html>
"""


if __name__ == "__main__":
    sys.exit(main())
