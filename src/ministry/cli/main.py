"""The ``ministry`` command: parse arguments, build settings, run one sub-command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ministry.cli import (
    accounts,
    backup,
    config,
    export,
    importer,
    indexes,
    maintenance,
    migrate,
    mirror,
    projects,
    serve,
    verify,
)
from ministry.cli.logs import configure_logging
from ministry.cli.options import add_common_options, given_settings
from ministry.config_file import read_config
from ministry.errors import MinistryError
from ministry.settings import Settings, SettingsError, settings_from
from ministry.storage.private_files import PRIVATE_UMASK
from ministry.version import version

__all__ = ["main", "parse"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ministry", description="Ministry of Packages: a self-hosted Python package index."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.register(commands, add_common_options)
    accounts.register(commands, add_common_options)
    indexes.register(commands, add_common_options)
    maintenance.register(commands, add_common_options)
    projects.register(commands, add_common_options)
    importer.register(commands, add_common_options)
    export.register(commands, add_common_options)
    mirror.register(commands, add_common_options)
    migrate.register(commands, add_common_options)
    backup.register(commands, add_common_options)
    verify.register(commands, add_common_options)
    config.register(commands, add_common_options)
    return parser


def parse(
    argv: Sequence[str] | None, environ: Mapping[str, str]
) -> tuple[argparse.Namespace, Settings]:
    """The parsed command line and the settings it resolves to with ``environ``.

    Raises SettingsError for a bad setting or config file; argparse exits on bad usage.
    """
    arguments = _parser().parse_args(argv)
    flags = given_settings(arguments)
    path = flags["config"] or environ.get("MINISTRY_CONFIG")
    file = read_config(Path(path)) if path else None
    return arguments, settings_from(flags, environ, file)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the command line with ``environ`` (the process's by default); the exit status."""
    os.umask(PRIVATE_UMASK)  # nothing a command creates is open to other users
    try:
        arguments, settings = parse(argv, os.environ if environ is None else environ)
        configure_logging(settings.log_format)
        result: int = arguments.run(settings, arguments)
    except (SettingsError, MinistryError) as exc:
        print(f"ministry: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result
