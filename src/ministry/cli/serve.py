"""``ministry serve``: run the server until SIGINT or SIGTERM, then stop cleanly."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Sequence
from typing import Any

import tornado.netutil

from ministry.app import make_app
from ministry.cli.processes import supervise
from ministry.cli.runtime import with_services
from ministry.errors import InvalidRequest
from ministry.services.metrics import Metrics
from ministry.services.mirror_jobs import MirrorJob, MirrorScheduler, mirror_jobs
from ministry.settings import Settings
from ministry.web.server import make_server
from ministry.web.urls import file_path
from ministry.wiring import Services, build_services

__all__ = ["run", "serving"]

log = logging.getLogger("ministry")

_GRACE_SECONDS = 10.0


def run(settings: Settings, _arguments: argparse.Namespace) -> int:
    """Serve until told to stop, in one process or several sharing the listening socket."""
    count = (os.cpu_count() or 1) if settings.processes == "auto" else int(settings.processes)
    # A mistake in the config file stops the start, before the port is taken.
    jobs = mirror_jobs(settings.file)
    sockets = tornado.netutil.bind_sockets(settings.port, settings.host)
    port = sockets[0].getsockname()[1]
    try:
        if count == 1:
            asyncio.run(_serve(settings, jobs, sockets, port))
            return 0
        # Schema upgrades and the default indexes are settled once, before the workers start.
        with_services(settings, _nothing)
        log.info("serving http://%s:%d/ with %d processes", settings.host, port, count)
        return supervise(count, lambda: asyncio.run(_serve(settings, jobs, sockets, None)))
    finally:
        # The port is free again as soon as serving ends, or fails to begin.
        for listening in sockets:
            listening.close()


async def _nothing(_: Services) -> None:
    return None


async def _serve(
    settings: Settings,
    jobs: Sequence[MirrorJob],
    sockets: list[socket.socket],
    port: int | None,
) -> None:
    stopping = asyncio.Event()
    # Before anything is said to be served: a signal from then on stops cleanly.
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    async with serving(settings, jobs, sockets):
        if port is not None:
            log.info(
                "serving http://%s:%d/ (data: %s)", settings.host, port, settings.data.resolve()
            )
        await stopping.wait()
    if port is not None:
        log.info("stopped")


@contextlib.asynccontextmanager
async def serving(
    settings: Settings, jobs: Sequence[MirrorJob], sockets: list[socket.socket]
) -> AsyncIterator[Services]:
    """The server answering on ``sockets`` for as long as the block runs, then stopped
    the way SIGTERM stops it: no new connections, requests in flight finished first.

    Also what the test suite runs inside its own process, so that the server it talks
    to there is this one, not a copy.
    """
    services = build_services(settings, file_path, Metrics())
    # Logins are built now, not in the first request that asks for them: their decoy
    # hash would hold up the event loop there.
    _ = services.auth
    if settings.oidc_jwks:
        _ = services.trusted_publishing  # reads the pinned key files: a bad one stops the start
    await services.start()
    for job in jobs:
        config = await services.indexes.get(job.index)
        if config.kind != "proxy":
            raise InvalidRequest(
                f"Mirror job {job.name!r} fills index {job.index!r}, which is not a proxy index."
            )
    scheduler = MirrorScheduler(jobs, services.mirror, services.metadata)
    scheduler.start()
    app = make_app(services)
    server = make_server(app, settings.max_connections, settings.client_timeout)
    services.metrics.watch_connections(lambda: server.open_connections)
    server.add_sockets(sockets)
    try:
        yield services
    finally:
        log.info("stopping: no new connections; finishing requests in flight")
        server.stop()
        in_flight: set[Any] = app.settings["in_flight"]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _GRACE_SECONDS
        while in_flight and loop.time() < deadline:
            await asyncio.sleep(0.05)
        if in_flight:
            log.warning("%d requests did not finish within %.0f s", len(in_flight), _GRACE_SECONDS)
        await server.close_all_connections()
        await scheduler.stop()
        await services.stop()
