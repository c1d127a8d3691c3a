"""The README as the project page shows it: code blocks, their colours, and the sanitizer.

The highlighting rules in ministry.css are Pygments' own (``HtmlFormatter.get_style_defs``)
for two styles whose every colour reads at 4.5:1 or more on the code blocks' background:
``xcode`` in light mode and ``lightbulb`` in dark mode. ``highlight_css`` makes that
part of the stylesheet (``python tests/unit/test_readme_rendering.py`` prints it, to
paste over the old one after a Pygments upgrade); the test below says when it no
longer matches.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pygments.formatters import HtmlFormatter

from ministry.core.readme import render_description

STYLESHEET = Path(__file__).parents[2] / "src" / "ministry" / "static" / "ministry.css"
LIGHT, DARK = "xcode", "lightbulb"
BEGIN = "/* README code, light: Pygments style xcode */"
END = "/* end of README code */"


def _rules(style: str) -> dict[str, str]:
    """The token rules of a style, scoped to ``.readme``: selector to declarations."""
    defs = HtmlFormatter(style=style).get_style_defs(".readme")
    rules = {}
    for line in defs.splitlines():
        found = re.match(r"(\.readme \.\w+) \{ (.*?) \}", line)
        if found:
            rules[found.group(1)] = found.group(2)
    return rules


def highlight_css() -> str:
    """The highlighting part of ministry.css: light rules, then dark ones in the media
    query (a token the dark style leaves alone takes the text colour, not the light one)."""
    light, dark = _rules(LIGHT), _rules(DARK)
    lines = [BEGIN]
    lines += [f"{selector} {{ {rule} }}" for selector, rule in light.items()]
    lines.append(f"/* README code, dark: Pygments style {DARK} */")
    lines.append("@media (prefers-color-scheme: dark) {")
    for selector in sorted(set(light) - set(dark)):
        lines.append(f"  {selector} {{ color: inherit; background-color: transparent }}")
    lines += [f"  {selector} {{ {rule} }}" for selector, rule in dark.items()]
    lines.append("}")
    lines.append(END)
    return "\n".join(lines) + "\n"


def test_the_stylesheet_has_the_highlighting_rules() -> None:
    css = STYLESHEET.read_text()
    start, end = css.find(BEGIN), css.find(END)
    assert start >= 0 and end > start, "the README highlighting section is missing"
    assert css[start : end + len(END) + 1] == highlight_css(), (
        "regenerate it: python tests/unit/test_readme_rendering.py"
    )


def test_code_blocks_name_their_language_in_a_class_and_take_the_focus() -> None:
    html = render_description("```python\nprint(1)\n```\n\n    indented\n", "text/markdown")
    assert 'lang="' not in html
    assert '<pre class="language-python' in html
    assert html.count('tabindex="0"') == html.count("<pre") == 2
    assert '<span class="nb">print</span>' in html
    rst = render_description(".. code-block:: python\n\n   x = 1\n", None)
    assert '<pre tabindex="0">' in rst and 'lang="' not in rst


@pytest.mark.parametrize(
    "readme",
    [
        '<pre lang="x&quot; onclick=&quot;alert(1)">q</pre>',
        "<pre lang='a\" onclick=\"alert(1)'>q</pre>",
        '<pre class="evil" tabindex="-1" style="color:red">q</pre>',
        "```py onclick=alert(1) x\nq\n```",
        '<pre lang="python"><a href="javascript:alert(1)">q</a></pre>',
    ],
)
def test_code_blocks_open_no_hole_in_the_sanitizer(readme: str) -> None:
    html = render_description(readme, "text/markdown")
    assert not re.search(r"\son\w*\s*=", html)  # no event handler attribute
    assert "javascript:" not in html
    assert "style=" not in html
    assert 'tabindex="-1"' not in html
    for value in re.findall(r'<pre class="([^"]*)"', html):
        assert re.fullmatch(r"language-[A-Za-z0-9_+#.-]+", value), value


def test_table_alignment_is_kept_as_an_attribute() -> None:
    html = render_description("| a | b |\n|--:|:-:|\n| 1 | 2 |\n", "text/markdown")
    assert '<td align="right">1</td>' in html
    assert '<td align="center">2</td>' in html


if __name__ == "__main__":
    print(highlight_css(), end="")
