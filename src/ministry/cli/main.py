"""The ``ministry`` command: parse arguments, build settings, run one sub-command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ministry.cli import (
    accounts,
    backup,
    export,
    importer,
    indexes,
    maintenance,
    migrate,
    mirror,
    serve,
    verify,
)
from ministry.cli.logs import configure_logging
from ministry.errors import MinistryError
from ministry.settings import SettingsError, settings_from
from ministry.version import version

__all__ = ["main"]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        metavar="DIR",
        help="data directory (default: ./ministry-data; env MINISTRY_DATA)",
    )
    parser.add_argument(
        "--db",
        metavar="URL",
        help="metadata store: sqlite:///PATH (default: in the data directory) or "
        "redis://HOST:PORT/N (env MINISTRY_DB)",
    )
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="blob store: file:///PATH (default: in the data directory) or "
        "s3://BUCKET/PREFIX (env MINISTRY_STORAGE)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ministry", description="Ministry of Packages: a self-hosted Python package index."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.register(commands, _common)
    accounts.register(commands, _common)
    indexes.register(commands, _common)
    maintenance.register(commands, _common)
    importer.register(commands, _common)
    export.register(commands, _common)
    mirror.register(commands, _common)
    migrate.register(commands, _common)
    backup.register(commands, _common)
    verify.register(commands, _common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    arguments = _parser().parse_args(argv)
    try:
        settings = settings_from(vars(arguments), os.environ)
        configure_logging(settings.log_format)
        result: int = arguments.run(settings, arguments)
    except (SettingsError, MinistryError) as exc:
        print(f"ministry: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result
