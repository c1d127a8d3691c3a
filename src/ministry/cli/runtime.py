"""Running a command against the stores: open them, do the work as the local administrator."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ministry.core.permissions import Identity
from ministry.settings import Settings
from ministry.web.urls import file_path, provenance_path
from ministry.wiring import Services, build_services

__all__ = ["local_admin", "with_services"]

T = TypeVar("T")


def local_admin() -> Identity:
    """Whoever runs a command on the server's machine administers it; the log names them."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "unknown"
    return Identity(user=f"cli:{login}", address="local", is_admin=True)


def with_services(settings: Settings, work: Callable[[Services], Awaitable[T]]) -> T:
    """Run ``work`` with open services and close them afterwards, whatever happens."""

    async def run() -> T:
        services = build_services(settings, file_path, provenance_path=provenance_path)
        await services.start()
        try:
            return await work(services)
        finally:
            await services.stop()

    return asyncio.run(run())
