"""docs/configuration.md lists every setting exactly as the code defines it."""

from __future__ import annotations

from pathlib import Path

from ministry.settings import OPTIONS

DOCS = Path(__file__).parents[2] / "docs" / "configuration.md"
_HEADER = "| in the file | flag | variable | default | what it does |"


def documented_table() -> str:
    """The settings table as docs/configuration.md must hold it."""
    rows = [_HEADER, "|---|---|---|---|---|"]
    for option in OPTIONS:
        place = f"`{option.place}`" if option.place else "—"
        rows.append(
            f"| {place} | `{option.flag}` | `{option.variable}` | {option.default} "
            f"| {option.help} |"
        )
    return "\n".join(rows)


def test_the_settings_table_matches_the_code() -> None:
    """A setting added, renamed or redescribed in settings.OPTIONS changes the table too."""
    text = DOCS.read_text()
    start = text.index(_HEADER)
    end = text.find("\n\n", start)
    found = text[start:end]
    expected = documented_table()
    assert found == expected, f"Replace the table in {DOCS} with:\n\n{expected}\n"


def test_the_readme_points_to_the_table_instead_of_copying_it() -> None:
    """One table: the README links to it rather than keeping a second copy that drifts."""
    readme = (DOCS.parents[1] / "README.md").read_text()
    assert "docs/configuration.md" in readme
    assert "| `--host` |" not in readme
