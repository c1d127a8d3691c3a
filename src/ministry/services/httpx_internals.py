"""What the upstream client takes from httpx that httpx offers no public API for.

Both uses of httpx's private parts are here, so that an httpx release that
changes one breaks this module alone, and tests/unit/test_httpx_internals.py
says which.

- ``environment_proxies`` (``httpx._utils.get_environment_proxies``): the mounts
  that HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY ask for, read as httpx
  reads them. A client given a transport of its own, as the checked one is, reads
  none of them, so ``upstream_network`` mounts them itself; rewriting httpx's
  NO_PROXY rules there would let the two drift apart.
- ``send_through`` (``AsyncHTTPTransport._pool``): a transport over a connection
  pool made by the caller. httpx builds its pool itself and takes no network
  backend, and the checked backend is what holds every connection to the reach
  rule; the transport keeps all it does above the pool (requests, streams, and
  httpcore's errors raised as httpx's).
"""

from __future__ import annotations

import httpcore
import httpx
from httpx._utils import get_environment_proxies

__all__ = ["environment_proxies", "send_through"]


def environment_proxies() -> dict[str, str | None]:
    """URL patterns and the proxy each goes through (None: none), from the environment."""
    return get_environment_proxies()


def send_through(transport: httpx.AsyncHTTPTransport, pool: httpcore.AsyncConnectionPool) -> None:
    """Make ``transport`` send every request through ``pool``."""
    transport._pool = pool
