"""A project's description as safe HTML, the way the public index shows it.

``readme_renderer`` renders Markdown, reStructuredText and plain text and cleans
the result of scripts, event handlers and ``javascript:`` links; a description
that does not render (reStructuredText with errors, or with the ``raw``
directive) is shown as plain text rather than not at all.

Images from other hosts lose their address and show as their alt text: a page
of this server never makes a reader's browser call a host a package author
chose, which could track who reads it (docs/security.md,
"Content-Security-Policy"). Images at relative addresses stay.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["render_description"]

#: Rendering a long README takes milliseconds; the same one is asked for again and again.
_REMEMBERED = 256
_IGNORED_IN_URL = re.compile("[\t\n\r]")


@lru_cache(maxsize=_REMEMBERED)
def render_description(text: str, content_type: str | None) -> str:
    """Sanitized HTML for a description with its Description-Content-Type."""
    # Imported here: docutils and Pygments take a tenth of a second to load, which
    # every ``ministry`` command would pay and only the pages need.
    from readme_renderer import markdown, rst, txt

    kind, _, parameters = (content_type or "").partition(";")
    kind = kind.strip().lower()
    rendered: str | None
    if kind == "text/markdown":
        variant = "CommonMark" if "variant=commonmark" in parameters.lower() else "GFM"
        rendered = markdown.render(text, variant=variant)
    elif kind == "text/plain":
        rendered = txt.render(text)
    else:
        # No content type means reStructuredText, as on the public index.
        rendered = rst.render(text)
    if rendered is None:
        rendered = txt.render(text)
    return _without_remote_images(rendered or "")


def _without_remote_images(html: str) -> str:
    """The sanitized HTML again, with the ``src`` of every image from another host dropped."""
    import nh3
    from readme_renderer.clean import ALLOWED_ATTRIBUTES, ALLOWED_TAGS

    if "<img" not in html:
        return html
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        link_rel="nofollow",
        url_schemes={"http", "https", "mailto"},
        attribute_filter=_local_image_source,
    )


def _local_image_source(element: str, attribute: str, value: str) -> str | None:
    """Keeps every attribute but an image's address with a scheme or a host."""
    if element == "img" and attribute == "src":
        # Browsers drop tabs and newlines from an address and read a backslash as "/".
        address = _IGNORED_IN_URL.sub("", value).strip().replace("\\", "/")
        if ":" in address.split("/", 1)[0] or address.startswith("//"):
            return None
    return value
