"""``ministry promote``: a release of one hosted index published in another."""

from __future__ import annotations

import argparse

from ministry.cli.admin import admin_for
from ministry.settings import Settings

__all__ = ["promote"]


def promote(settings: Settings, arguments: argparse.Namespace) -> int:
    """Promote, as the local administrator or the credentials of ``--url``, and print each
    file and what became of it."""
    files = admin_for(settings, arguments).promote(
        arguments.source, arguments.project, arguments.version, arguments.target
    )
    for file in files:
        state = "promoted" if file["created"] else "already there"
        print(f"{state}: {file['filename']} sha256={file['sha256']}")
    return 0
