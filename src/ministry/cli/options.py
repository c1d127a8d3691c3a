"""Command-line flags made from ``settings.OPTIONS``, so each setting is described once."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from ministry.settings import OPTIONS, Option

__all__ = [
    "add_common_options",
    "add_debug_option",
    "add_options",
    "add_server_options",
    "given_settings",
]

# Flags made here keep their values apart from a command's own arguments, so that a
# command's flag that happens to share a setting's name (``index create --upstream``)
# is never taken for the setting.
_PREFIX = "setting:"


def add_options(parser: argparse.ArgumentParser, options: Iterable[Option]) -> None:
    """A flag for each option; left out, it is None, so the variable or the file decides."""
    for option in options:
        text = f"{option.help} (default {option.default}; env {option.variable})"
        text = text.replace("%", "%%")
        dest = _PREFIX + option.name
        if option.metavar is None:
            parser.add_argument(
                option.flag,
                dest=dest,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=text,
            )
        else:
            action = "append" if option.repeatable else "store"
            parser.add_argument(
                option.flag, dest=dest, metavar=option.metavar, action=action, help=text
            )


def given_settings(arguments: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags (None: not given), by setting name."""
    return {option.name: getattr(arguments, _PREFIX + option.name, None) for option in OPTIONS}


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """The flags every command takes: where the config file and the stores are, and
    ``--debug``."""
    add_options(parser, (o for o in OPTIONS if o.every_command))
    add_debug_option(parser)


def add_debug_option(parser: argparse.ArgumentParser) -> None:
    """``--debug``, before or after the sub-command; ``ministry.cli.main`` looks for it
    in the arguments themselves, so that it works even when they do not parse."""
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="on failure, print the traceback before the one-line message",
    )


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """The flags only the server needs (``serve``, and ``config show`` to show its view)."""
    add_options(parser, (o for o in OPTIONS if not o.every_command))
