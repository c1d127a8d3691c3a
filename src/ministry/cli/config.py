"""``ministry config show``: the settings a server would start with, and where each came from.

The output is itself a config file (TOML), with secrets masked and the source of
every value in a comment, so it answers "why does the server do that?" and can
be kept as a starting point. Everything is checked as ``serve`` checks it, so a
file that shows without an error starts without one.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import tomli_w

from ministry.config_file import ConfigFile
from ministry.core.masking import mask_url
from ministry.services.mirror_jobs import mirror_jobs
from ministry.settings import OPTIONS, TABLES, Option, Settings

__all__ = ["render", "run"]


def run(settings: Settings, arguments: argparse.Namespace) -> int:
    """Check everything ``serve`` checks at start, then print."""
    mirror_jobs(settings.file)
    print(render(settings), end="")
    return 0


def render(settings: Settings) -> str:
    """The configuration as TOML, every value commented with its source."""
    lines = [
        "# The configuration 'ministry serve' would use here: flags win over MINISTRY_*",
        "# variables, which win over the config file, which wins over the defaults.",
        "# Secrets are masked.",
    ]
    if settings.file is not None:
        lines.append(f"# Config file: {settings.file.path.resolve()}")
    for table in TABLES:
        lines += ["", f"[{table}]"]
        for option in (o for o in OPTIONS if o.table == table):
            source = settings.sources.get(option.name, "default")
            lines.append(_line(option, getattr(settings, option.name), settings, source))
    if settings.file is not None:
        lines += _entries(settings.file)
    return "\n".join(lines) + "\n"


def _line(option: Option, value: Any, settings: Settings, source: str) -> str:
    if value is None:
        effective = {"db": settings.db_url, "storage": settings.storage_url}.get(option.name)
        shown = f" ({mask_url(effective)})" if effective else ""
        return f"# {option.key}: not set; {option.default}{shown}"
    if isinstance(value, Path):
        value = str(value)
    elif option.name == "oidc_jwks":
        # A table in the file, issuer to key file.
        pairs = ", ".join(f"{_toml(issuer)} = {_toml(str(path))}" for issuer, path in value)
        return f"{option.key} = {{ {pairs} }}  # {source}"
    elif isinstance(value, tuple):
        value = list(value)
    if option.secret and isinstance(value, str):
        value = mask_url(value)  # docs/security.md, "Secrets at rest and on screen"
    elif option.secret and isinstance(value, list):
        value = [mask_url(str(item)) for item in value]
    return f"{option.key} = {_toml(value)}  # {source}"


def _toml(value: Any) -> str:
    """A value in TOML, lists on one line (tomli_w writes them one item a line)."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return tomli_w.dumps({"v": value}).partition("=")[2].strip()


def _entries(file: ConfigFile) -> list[str]:
    lines: list[str] = []
    for declared in file.indexes:
        lines += ["", "[[index]]", f"name = {_toml(declared.name)}"]
        lines += [f"{k} = {_toml(_masked(v))}" for k, v in declared.values.items()]
    for mirror in file.mirrors:
        lines += ["", "[[mirror]]", *(f"{k} = {_toml(_masked(v))}" for k, v in mirror.items())]
    return lines


def _masked(value: Any) -> Any:
    """A value as the file wrote it, with the secrets of any URL in it masked."""
    if isinstance(value, str) and "://" in value:
        return mask_url(value)
    return value
