"""``ministry init``: make a new, empty store where the settings say, on purpose.

Every other command but ``serve`` and the ones that fill a store refuses a data
directory without a store (``ministry.cli.runtime``); this is the way to make one
without starting the server, for scripts that prepare a machine.
"""

from __future__ import annotations

import argparse
import sys

from ministry.cli.runtime import prepare_store, store_exists, store_name, with_services
from ministry.settings import Settings
from ministry.wiring import Services

__all__ = ["run"]


async def _nothing(_: Services) -> None:
    return None


def run(settings: Settings, _arguments: argparse.Namespace) -> int:
    """Create the store, with its default index; a store already there is left as it is."""
    prepare_store(settings, create=True)
    if store_exists(settings):
        print(f"ministry: {store_name(settings)} already holds a store", file=sys.stderr)
        return 0
    with_services(settings, _nothing, create=True)
    return 0
