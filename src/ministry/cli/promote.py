"""``ministry promote``: a release of one hosted index published in another."""

from __future__ import annotations

import argparse

from packaging.utils import canonicalize_name

from ministry.cli.runtime import local_admin, with_services
from ministry.services.uploads import PublishResult
from ministry.settings import Settings
from ministry.wiring import Services

__all__ = ["promote"]


def promote(settings: Settings, arguments: argparse.Namespace) -> int:
    """Promote, as the local administrator, and print each file and what became of it."""

    async def work(services: Services) -> list[PublishResult]:
        return await services.promote.promote(
            local_admin(),
            arguments.source,
            canonicalize_name(arguments.project),
            arguments.version,
            arguments.target,
        )

    for result in with_services(settings, work):
        state = "promoted" if result.created else "already there"
        print(f"{state}: {result.file.filename} sha256={result.file.sha256}")
    return 0
