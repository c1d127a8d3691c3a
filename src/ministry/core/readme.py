"""A project's description as safe HTML, the way the public index shows it.

``readme_renderer`` renders Markdown, reStructuredText and plain text and cleans
the result of scripts, event handlers and ``javascript:`` links; a description
that does not render (reStructuredText with errors, or with the ``raw``
directive) is shown as plain text rather than not at all.

Images from other hosts lose their address and show as their alt text: a page
of this server never makes a reader's browser call a host a package author
chose, which could track who reads it (docs/security.md,
"Content-Security-Policy"). Images at relative addresses stay.

A code block names its programming language in the class ``language-<name>``
(the renderer puts it in ``lang``, which HTML keeps for human languages), and
takes the keyboard focus (``tabindex="0"``), so that one too wide for the page
can be scrolled without a mouse.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["render_description"]

#: Rendering a long README takes milliseconds; the same one is asked for again and again.
_REMEMBERED = 256
_IGNORED_IN_URL = re.compile("[\t\n\r]")
#: A code block as the renderer writes it: its (escaped, quoted) language in ``lang``.
_CODE_LANGUAGE = re.compile(r'<pre lang="([^"]*)"')
#: What a language's name may hold in a class: enough for "c++", "c#" or "python3".
_NOT_IN_LANGUAGE = re.compile(r"[^A-Za-z0-9_+#.-]")
_LANGUAGE_CLASS = re.compile(r"language-[A-Za-z0-9_+#.-]{1,40}")


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
    return _cleaned_again(_CODE_LANGUAGE.sub(_language_class, rendered or ""))


def _language_class(match: re.Match[str]) -> str:
    """``<pre lang="python">`` as ``<pre class="language-python">``."""
    language = _NOT_IN_LANGUAGE.sub("", match.group(1))[:40]
    return f'<pre class="language-{language}"' if language else "<pre"


def _cleaned_again(html: str) -> str:
    """The sanitized HTML through the sanitizer again, with this page's own rules: no
    ``lang`` on code, a language class and ``tabindex="0"`` on every code block, and
    the ``src`` of every image from another host dropped."""
    import nh3
    from readme_renderer.clean import ALLOWED_ATTRIBUTES, ALLOWED_TAGS

    attributes = {tag: set(allowed) for tag, allowed in ALLOWED_ATTRIBUTES.items()}
    attributes["pre"] = {"class"}
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=attributes,
        link_rel="nofollow",
        url_schemes={"http", "https", "mailto"},
        attribute_filter=_allowed_value,
        set_tag_attribute_values={"pre": {"tabindex": "0"}},
    )


def _allowed_value(element: str, attribute: str, value: str) -> str | None:
    """Keeps every attribute but a code block's class that is not a language, and an
    image's address with a scheme or a host."""
    if element == "pre" and attribute == "class":
        return value if _LANGUAGE_CLASS.fullmatch(value) else None
    if element == "img" and attribute == "src":
        # Browsers drop tabs and newlines from an address and read a backslash as "/".
        address = _IGNORED_IN_URL.sub("", value).strip().replace("\\", "/")
        if ":" in address.split("/", 1)[0] or address.startswith("//"):
            return None
    return value
