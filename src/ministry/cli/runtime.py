"""Running a command against the stores: open them, do the work, close them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ministry.settings import Settings
from ministry.web.routes import file_path
from ministry.wiring import Services, build_services

__all__ = ["with_services"]

T = TypeVar("T")


def with_services(settings: Settings, work: Callable[[Services], Awaitable[T]]) -> T:
    """Run ``work`` with open services and close them afterwards, whatever happens."""

    async def run() -> T:
        services = build_services(settings, file_path)
        await services.start()
        try:
            return await work(services)
        finally:
            await services.stop()

    return asyncio.run(run())
