"""The ``ministry`` command tree as ``ministry.cli.main.build_parser`` builds it, walked."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

__all__ = ["commands"]


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, str]]:
    """Every command below ``parser``, sub-commands included: its path (``("user",
    "list")``), its parser, and the help line its parent lists it with."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            listed = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, child in action.choices.items():
                yield (*path, name), child, listed.get(name, "")
                yield from commands(child, (*path, name))
