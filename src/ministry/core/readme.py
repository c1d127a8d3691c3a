"""A project's description as safe HTML, the way the public index shows it.

``readme_renderer`` renders Markdown, reStructuredText and plain text and cleans
the result of scripts, event handlers and ``javascript:`` links; a description
that does not render (reStructuredText with errors, or with the ``raw``
directive) is shown as plain text rather than not at all.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = ["render_description"]

#: Rendering a long README takes milliseconds; the same one is asked for again and again.
_REMEMBERED = 256


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
    return rendered or ""
