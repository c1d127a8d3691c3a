"""``ministry serve``: run the server until SIGINT or SIGTERM, then stop cleanly.

With ``--tls-cert`` and ``--tls-key`` it serves HTTPS, and SIGHUP reloads them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Sequence
from typing import Any

import tornado.netutil

from ministry.app import make_app
from ministry.cli.processes import supervise
from ministry.cli.runtime import prepare_store, with_services
from ministry.errors import InvalidRequest
from ministry.services.metrics import Metrics
from ministry.services.mirror_jobs import MirrorJob, MirrorScheduler, mirror_jobs
from ministry.settings import Settings
from ministry.web.server import make_server
from ministry.web.tls import ServerTLS, server_tls
from ministry.web.urls import file_path, provenance_path
from ministry.wiring import Services, build_services

__all__ = ["run", "serving"]

log = logging.getLogger("ministry")

_GRACE_SECONDS = 10.0

# Why the port could not be taken, in words that point at the fix.
_CANNOT_LISTEN = {
    errno.EADDRINUSE: "the port is in use (another server?); stop it, or choose another --port",
    errno.EADDRNOTAVAIL: "no network interface of this machine has that address; "
    "choose one of its addresses with --host (0.0.0.0: all of them)",
    errno.EACCES: "not allowed to use that port as this user; choose --port 1024 or above",
}


def run(settings: Settings, _arguments: argparse.Namespace) -> int:
    """Serve until told to stop, in one process or several sharing the listening socket."""
    count = (os.cpu_count() or 1) if settings.processes == "auto" else int(settings.processes)
    # A mistake in the config file or the TLS files stops the start, before the port is taken.
    jobs = mirror_jobs(settings.file)
    tls = server_tls(settings.tls_cert, settings.tls_key)
    sockets = _listen(settings.host, settings.port)
    port = sockets[0].getsockname()[1]
    scheme = "http" if tls is None else "https"
    try:
        # After the port: a server that cannot start leaves no empty data directory.
        new = prepare_store(settings, create=True)
        # The first log line says which store is served, and whether it was just made.
        store = f"data: {settings.data.resolve()}" + (", a new store" if new else "")
        if count == 1:
            started = f"serving {scheme}://{settings.host}:{port}/ ({store})"
            asyncio.run(_serve(settings, jobs, sockets, tls, started))
            return 0
        # Schema upgrades and the default indexes are settled once, before the workers start.
        with_services(settings, _nothing, create=True)
        log.info(
            "serving %s://%s:%d/ with %d processes (%s)", scheme, settings.host, port, count, store
        )
        # Each worker inherits the context; the supervisor reloads its own copy too, so
        # that a worker started after a reload begins with the new certificate.
        return supervise(
            count,
            lambda: asyncio.run(_serve(settings, jobs, sockets, tls, None)),
            on_hangup=None if tls is None else tls.reload,
        )
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
    tls: ServerTLS | None,
    started: str | None,
) -> None:
    """Serve until SIGINT or SIGTERM; ``started`` is logged once serving (not by workers)."""
    stopping = asyncio.Event()
    # Before anything is said to be served: a signal from then on stops cleanly.
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    if tls is not None:
        loop.add_signal_handler(signal.SIGHUP, tls.reload)
    async with serving(settings, jobs, sockets, tls):
        if started is not None:
            log.info("%s", started)
        await stopping.wait()
    if started is not None:
        log.info("stopped")


def _listen(host: str, port: int) -> list[socket.socket]:
    """The listening sockets, or an error that says what to change."""
    try:
        return tornado.netutil.bind_sockets(port, host)
    except OSError as exc:
        reason = _CANNOT_LISTEN.get(exc.errno or 0, exc.strerror or str(exc))
        if isinstance(exc, socket.gaierror):
            reason = "the host name does not resolve; check --host"
        raise InvalidRequest(f"Cannot listen on {host}:{port}: {reason}.") from exc


@contextlib.asynccontextmanager
async def serving(
    settings: Settings,
    jobs: Sequence[MirrorJob],
    sockets: list[socket.socket],
    tls: ServerTLS | None = None,
) -> AsyncIterator[Services]:
    """The server answering on ``sockets`` for as long as the block runs, then stopped
    the way SIGTERM stops it: no new connections, requests in flight finished first.
    With ``tls``, it speaks HTTPS only, with that context.

    Also what the test suite runs inside its own process, so that the server it talks
    to there is this one, not a copy.
    """
    services = build_services(settings, file_path, Metrics(), provenance_path)
    # Logins are built now, not in the first request that asks for them: their decoy
    # hash would hold up the event loop there.
    _ = services.auth
    if settings.oidc_jwks:
        _ = services.trusted_publishing  # reads the pinned key files: a bad one stops the start
    await services.start()
    services.metrics.store_risks.labels("metadata").set(len(services.metadata.risks()))
    for job in jobs:
        config = await services.indexes.get(job.index)
        if config.kind != "proxy":
            raise InvalidRequest(
                f"Mirror job {job.name!r} fills index {job.index!r}, which is not a proxy index."
            )
    scheduler = MirrorScheduler(jobs, services.mirror, services.metadata)
    scheduler.start()
    services.proxy_cache.start()
    app = make_app(services)
    server = make_server(
        app, settings.max_connections, settings.client_timeout, None if tls is None else tls.context
    )
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
