"""How many failed logins a client may make before it must wait (docs/security.md, "Credentials").

Two sliding windows: failures per (user, client address), the guard against
guessing one user's password, and a larger budget per address alone, the guard
against trying a few passwords on many user names. While either is spent, an
attempt is refused *before* the password is checked, so guessing during a
lockout learns nothing, not even a right answer.

A failure is counted once it is known, and a success forgets the failures of
that user from that address. Counting attempts while they are in flight would
lock out an honest client that sends many requests at once (uv downloads and
uploads in parallel, each with its credentials); the burst of guesses it was
meant to stop is bounded by the caller instead, which checks again just before
each expensive password verification and runs only a few of them at a time.

Pure bookkeeping: the caller passes the time in (monotonic seconds), and memory
is bounded: each key keeps at most its budget of timestamps, and beyond
``max_keys`` keys the least recently failed are forgotten.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Hashable
from dataclasses import dataclass

from cachetools import FIFOCache

__all__ = [
    "ADDRESS_FACTOR",
    "WINDOW_SECONDS",
    "Budget",
    "FailureWindow",
    "Lockout",
    "LoginLimits",
    "client_key",
    "login_limits",
]

#: The window in which failures are counted.
WINDOW_SECONDS = 600.0
#: An address alone may fail this many times the per-user budget (many users behind one NAT).
ADDRESS_FACTOR = 5
#: Keys remembered per window; each costs a few hundred bytes.
MAX_KEYS = 10_000
# IPv6 hands a whole /64 to one client: counting addresses inside it would be no limit.
_IPV6_CLIENT_PREFIX = 64


@dataclass(frozen=True)
class Budget:
    """At most ``failures`` failures within ``seconds``."""

    failures: int
    seconds: float = WINDOW_SECONDS


@dataclass(frozen=True)
class Lockout:
    """An attempt refused: when to try again, and whether the address alone is to blame."""

    retry_after: int
    whole_address: bool


class FailureWindow:
    """Recent failures per key, within one budget, for a bounded number of keys."""

    def __init__(self, budget: Budget, max_keys: int = MAX_KEYS) -> None:
        self._budget = budget
        # Oldest failure first in each tuple. Only a failure stores a key again, which puts
        # it last: the least recently failed key is forgotten first.
        self._failures: FIFOCache[Hashable, tuple[float, ...]] = FIFOCache(max_keys)

    def __len__(self) -> int:
        return len(self._failures)

    def wait(self, key: Hashable, now: float) -> float:
        """Seconds until ``key`` may try again; 0 if it may now."""
        recent = self._recent(key, now)
        if len(recent) < self._budget.failures:
            return 0.0
        return recent[-self._budget.failures] + self._budget.seconds - now

    def add(self, key: Hashable, now: float) -> None:
        """Count a failure of ``key`` at ``now``."""
        self._failures[key] = (*self._recent(key, now), now)[-self._budget.failures :]

    def clear(self, key: Hashable) -> None:
        """Forget every failure of ``key``."""
        self._failures.pop(key, None)

    def clear_all(self) -> None:
        """Forget every failure of every key."""
        self._failures.clear()

    def _recent(self, key: Hashable, now: float) -> tuple[float, ...]:
        times = self._failures.get(key, ())
        recent = tuple(t for t in times if t > now - self._budget.seconds)
        if not recent:
            self._failures.pop(key, None)
        return recent


def client_key(address: str) -> str:
    """The client an address stands for: itself, or its /64 network for IPv6."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, _IPV6_CLIENT_PREFIX), strict=False))
    return str(parsed)


class LoginLimits:
    """The failed-login budgets of one process."""

    def __init__(self, per_user: Budget, per_address: Budget, max_keys: int = MAX_KEYS) -> None:
        self._per_user = FailureWindow(per_user, max_keys)
        self._per_address = FailureWindow(per_address, max_keys)

    def locked(self, user: str, address: str, now: float) -> Lockout | None:
        """Whether attempts for ``user`` from ``address`` are refused now, and for how long.

        The same for every user name, known or not: nothing here reveals which exist.
        """
        user_key, address_key = _keys(user, address)
        for_user = self._per_user.wait(user_key, now)
        for_address = self._per_address.wait(address_key, now)
        if for_user <= 0 and for_address <= 0:
            return None
        return Lockout(
            retry_after=max(1, math.ceil(max(for_user, for_address))),
            whole_address=for_address > for_user,
        )

    def failed(self, user: str, address: str, now: float) -> None:
        """Count a failed login."""
        user_key, address_key = _keys(user, address)
        self._per_user.add(user_key, now)
        self._per_address.add(address_key, now)

    def clear(self) -> None:
        """Forget every failure: after the metadata store went back, failures counted
        against credentials it had lost for a while say nothing about guessing."""
        self._per_user.clear_all()
        self._per_address.clear_all()

    def succeeded(self, user: str, address: str) -> None:
        """Credentials were proved: forget that user's failures from that address."""
        user_key, _ = _keys(user, address)
        self._per_user.clear(user_key)


def _keys(user: str, address: str) -> tuple[tuple[str, str], str]:
    # Case-folded: "Alice" and "ALICE" are one target however the store compares names.
    client = client_key(address)
    return (user.casefold(), client), client


def login_limits(failures: int) -> LoginLimits | None:
    """The limits for ``failures`` per user and address in the window; None for no limit."""
    if failures <= 0:
        return None
    return LoginLimits(Budget(failures), Budget(failures * ADDRESS_FACTOR))
