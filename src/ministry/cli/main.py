"""The ``ministry`` command: parse arguments, build settings, run one sub-command.

Every command builds the whole parser first, and ``ministry --help`` does nothing
else, so building it stays light: argparse, the settings table (``ministry.settings``,
``ministry.cli.options``) and a few constants of ``ministry.core.models``, no more.
Each sub-command's flags and help are in ``ministry.cli.parsers.<name>``, which names
the function that does the work, ``Run("ministry.cli.<name>", "function")``; that
module, with the stores, the services, Tornado, rich and the rest, is imported only
when its sub-command runs. tests/unit/test_cli_imports.py fails when it is not so.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from ministry.cli.failures import DEBUG_FLAG, OneLineParser, report
from ministry.cli.logs import configure_logging
from ministry.cli.options import add_common_options, add_debug_option, given_settings
from ministry.cli.parsers import (
    accounts,
    backup,
    cache,
    config,
    export,
    importer,
    indexes,
    maintenance,
    migrate,
    mirror,
    projects,
    promote,
    publishers,
    rebuild,
    serve,
    verify,
)
from ministry.config_file import read_config
from ministry.settings import Settings, settings_from
from ministry.storage.private_files import PRIVATE_UMASK

__all__ = ["build_parser", "main", "parse"]


class _VersionAction(argparse.Action):
    """``--version``, looked up only when asked: reading the installed metadata takes
    longer than building the whole parser."""

    def __init__(self, option_strings: Sequence[str], dest: str, **_: Any) -> None:
        super().__init__(
            option_strings,
            dest=argparse.SUPPRESS,
            default=argparse.SUPPRESS,
            nargs=0,
            help="show program's version number and exit",
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        from ministry.version import version

        print(f"{parser.prog} {version()}")
        parser.exit()


#: The signals that interrupted the command (SIGTERM), for its exit status.
_signalled: list[int] = []


def _terminated(signum: int, frame: FrameType | None) -> None:
    """SIGTERM takes Ctrl-C's path: whatever handles SIGINT now (asyncio's, which
    cancels the running command so that its clean-ups run, or Python's, which raises
    KeyboardInterrupt) handles it too."""
    _signalled.append(signum)
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:  # SIGINT ignored (a background job of a shell script)
        raise KeyboardInterrupt


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: every sub-command with its flags and help, nothing run."""
    parser = OneLineParser(
        prog="ministry", description="Ministry of Packages: a self-hosted Python package index."
    )
    parser.add_argument("--version", action=_VersionAction)
    add_debug_option(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups = (serve, accounts, indexes, maintenance, projects, publishers, importer, export,
              mirror, migrate, backup, verify, rebuild, config, promote, cache)  # fmt: skip
    for group in groups:
        group.register(commands, add_common_options)
    return parser


def parse(
    argv: Sequence[str] | None, environ: Mapping[str, str]
) -> tuple[argparse.Namespace, Settings]:
    """The parsed command line and the settings it resolves to with ``environ``.

    Raises SettingsError for a bad setting or config file; argparse exits on bad usage.
    """
    arguments = build_parser().parse_args(argv)
    # For the commands that read variables of their own (MINISTRY_URL, MINISTRY_TOKEN).
    arguments.environ = environ
    flags = given_settings(arguments)
    path = flags["config"] or environ.get("MINISTRY_CONFIG")
    file = read_config(Path(path)) if path else None
    return arguments, settings_from(flags, environ, file)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the command line with ``environ`` (the process's by default); the exit status.

    A failure is one line on stderr (``ministry.cli.failures``), with the traceback
    before it only when ``--debug`` is among the arguments. Ctrl-C and SIGTERM unwind
    the command (its ``finally`` clean-ups run) and exit with 130 and 143.
    """
    os.umask(PRIVATE_UMASK)  # nothing a command creates is open to other users
    argv = sys.argv[1:] if argv is None else list(argv)
    if threading.current_thread() is threading.main_thread():  # (serve sets its own)
        signal.signal(signal.SIGTERM, _terminated)
    try:
        arguments, settings = parse(argv, os.environ if environ is None else environ)
        configure_logging(settings.log_format)
        result: int = arguments.run(settings, arguments)
    except KeyboardInterrupt:
        return 128 + (_signalled[-1] if _signalled else signal.SIGINT)
    except Exception as exc:  # every failure, expected or not, is reported the same way
        return report(exc, debug=DEBUG_FLAG in argv)
    return result
