"""How to install a project from an index with pip, uv, Poetry and PDM: the commands
a project page offers to copy.

Every one names the index's own simple URL: this server is not the public index,
so no tool may fall back to its default. Poetry's source is ``explicit``, so only
the project asked for comes from it; uv's ``--index`` and PDM's source are named
after the index (a name these tools accept: letters, digits, ``-``, ``_``, ``.``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ministry.core.models import DEFAULT_INDEX

__all__ = ["Snippet", "install_snippets", "source_name"]

_NOT_IN_SOURCE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Snippet:
    """One way to install: the tool, what to type (or write into a file), and where."""

    tool: str
    text: str
    where: str = "shell"


def source_name(index: str) -> str:
    """The name an installer's configuration gives an index: ``team/apps`` is ``team-apps``,
    the default index ``ministry`` (as on the help page)."""
    if index == DEFAULT_INDEX:
        return "ministry"
    return _NOT_IN_SOURCE_NAME.sub("-", index).strip("-") or "ministry"


def install_snippets(simple_url: str, index: str, requirement: str) -> list[Snippet]:
    """The commands for ``requirement`` (a name, pinned or not) from the index at
    ``simple_url`` (ending in ``/simple/``)."""
    name = source_name(index)
    return [
        Snippet("pip", f"pip install --index-url {simple_url} {requirement}"),
        Snippet("uv pip", f"uv pip install --index-url {simple_url} {requirement}"),
        Snippet("uv add", f"uv add --index {name}={simple_url} {requirement}"),
        Snippet(
            "poetry",
            f"poetry source add --priority=explicit {name} {simple_url}\n"
            f"poetry add --source {name} {requirement}",
        ),
        Snippet(
            "pdm",
            f'[[tool.pdm.source]]\nname = "{name}"\nurl = "{simple_url}"',
            where="pyproject.toml",
        ),
        Snippet("pdm add", f"pdm add {requirement}"),
    ]
