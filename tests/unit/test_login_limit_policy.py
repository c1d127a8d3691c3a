"""Unit tests for failed-login limits: the policy (core) and its bookkeeping (AuthService).

Time is a number the tests move by hand, so a ten-minute window takes no time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from argon2 import PasswordHasher

from ministry.core.login_limits import (
    WINDOW_SECONDS,
    Budget,
    FailureWindow,
    Lockout,
    LoginLimits,
    client_key,
    login_limits,
)
from ministry.core.permissions import Identity
from ministry.errors import AuthenticationFailed, TooManyAttempts
from ministry.services.accounts import AccountService
from ministry.services.auth import AuthService
from ministry.storage.sqlite import SqliteMetadataStore

T = TypeVar("T")
HERE = "192.0.2.1"
THERE = "192.0.2.2"


def limits(per_user: int = 3, per_address: int = 10, max_keys: int = 100) -> LoginLimits:
    return LoginLimits(Budget(per_user, 60.0), Budget(per_address, 60.0), max_keys)


def fail(policy: LoginLimits, user: str, times: int, now: float = 0.0) -> None:
    """Count ``times`` failed logins of ``user``."""
    for _ in range(times):
        assert policy.locked(user, HERE, now) is None
        policy.failed(user, HERE, now)


# -- the policy ------------------------------------------------------------------------------


def test_the_budget_is_spent_then_attempts_wait_for_the_window() -> None:
    """After N failures the next attempt is refused until the oldest failure is a window old."""
    policy = limits()
    fail(policy, "alice", 3, now=100.0)
    assert policy.locked("alice", HERE, 130.0) == Lockout(retry_after=30, whole_address=False)
    assert policy.locked("alice", HERE, 159.5) == Lockout(retry_after=1, whole_address=False)
    assert policy.locked("alice", HERE, 160.0) is None


def test_the_window_slides() -> None:
    """Failures spread over more than a window never lock; they age out one by one."""
    policy = limits()
    for second in range(0, 600, 21):
        assert policy.locked("alice", HERE, float(second)) is None
        policy.failed("alice", HERE, float(second))


def test_refused_attempts_do_not_count() -> None:
    """Hammering during a lockout does not make it longer: only failures count."""
    policy = limits()
    fail(policy, "alice", 3)
    for second in range(1, 60):
        assert policy.locked("alice", HERE, float(second)) is not None
    assert policy.locked("alice", HERE, 60.0) is None


def test_a_success_forgets_that_users_failures_from_that_address() -> None:
    """Two failures and a success: the budget is whole again."""
    policy = limits()
    fail(policy, "alice", 2)
    policy.succeeded("alice", HERE)
    fail(policy, "alice", 2, now=2.0)
    assert policy.locked("alice", HERE, 3.0) is None
    policy.failed("alice", HERE, 3.0)
    assert policy.locked("alice", HERE, 3.0) is not None


def test_other_users_and_addresses_keep_their_budget() -> None:
    """Locking alice out from here leaves bob, and alice from elsewhere, alone."""
    policy = limits()
    fail(policy, "alice", 3)
    assert policy.locked("alice", HERE, 1.0) is not None
    assert policy.locked("bob", HERE, 1.0) is None
    assert policy.locked("alice", THERE, 1.0) is None


def test_user_names_are_compared_case_folded() -> None:
    """Changing the case of a name is no way around the limit."""
    policy = limits()
    for name in ("alice", "Alice", "ALICE"):
        policy.failed(name, HERE, 0.0)
    assert policy.locked("aLiCe", HERE, 1.0) is not None


def test_spraying_many_names_spends_the_address_budget() -> None:
    """One failure each on many names: the address alone is refused, for every name."""
    policy = limits(per_user=3, per_address=10)
    for n in range(10):
        policy.failed(f"user{n}", HERE, float(n))
    lockout = policy.locked("someone-new", HERE, 20.0)
    assert lockout == Lockout(retry_after=40, whole_address=True)
    assert policy.locked("alice", THERE, 20.0) is None


def test_successes_spend_no_budget() -> None:
    """A client that logs in a thousand times, even all at once, is never refused."""
    policy = limits(per_user=3, per_address=4)
    for _ in range(1000):
        assert policy.locked("alice", HERE, 0.0) is None
    for _ in range(1000):
        policy.succeeded("alice", HERE)
    assert policy.locked("alice", HERE, 0.0) is None


def test_a_success_does_not_refill_the_address_budget_for_others() -> None:
    """Failures on other names keep counting against the address when alice logs in."""
    policy = limits(per_user=3, per_address=4)
    fail(policy, "mallory", 2, now=10.0)
    policy.succeeded("alice", HERE)
    fail(policy, "trudy", 2, now=12.0)
    assert policy.locked("alice", HERE, 13.0) == Lockout(retry_after=57, whole_address=True)


def test_memory_is_bounded_by_forgetting_the_oldest_keys() -> None:
    """Beyond max_keys keys the least recently failed are dropped, not kept forever."""
    window = FailureWindow(Budget(3, 60.0), max_keys=5)
    for n in range(50):
        window.add(f"key{n}", float(n) / 100)
    assert len(window) == 5
    assert window.wait("key49", 1.0) == 0.0
    for _ in range(3):
        window.add("key49", 1.0)
    assert window.wait("key49", 1.0) == pytest.approx(60.0)
    assert window.wait("key0", 1.0) == 0.0


def test_each_key_keeps_at_most_its_budget_of_timestamps() -> None:
    """A thousand failures of one key cost no more memory than three."""
    window = FailureWindow(Budget(3, 60.0))
    for n in range(1000):
        window.add("alice", n / 1000)
    assert len(window._failures["alice"]) == 3


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("unknown", "unknown"),
    ],
)
def test_a_client_is_an_address_or_an_ipv6_64(address: str, key: str) -> None:
    """One IPv6 client holds a whole /64, so the /64 is what is counted."""
    assert client_key(address) == key


def test_the_server_setting_makes_the_budgets() -> None:
    """N per user and address, 5N per address, over ten minutes; 0 turns the limit off."""
    assert login_limits(0) is None
    policy = login_limits(2)
    assert policy is not None
    fail(policy, "alice", 2)
    lockout = policy.locked("alice", HERE, 0.0)
    assert lockout is not None
    assert lockout.retry_after == WINDOW_SECONDS
    for n in range(8):
        policy.failed(f"user{n}", HERE, 0.0)
    assert policy.locked("anyone", HERE, 0.0) == Lockout(600, whole_address=True)


# -- the bookkeeping in AuthService ------------------------------------------------------------


class Clock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


ADMIN = Identity(user="cli:test", address="local", is_admin=True)
PASSWORD = "alice-password-1"


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    instance = asyncio.new_event_loop()
    yield instance
    instance.close()


@pytest.fixture
def store(tmp_path: Path, loop: asyncio.AbstractEventLoop) -> Iterator[SqliteMetadataStore]:
    """A real SQLite store with user alice."""
    metadata = SqliteMetadataStore(tmp_path / "ministry.sqlite3")
    loop.run_until_complete(metadata.open())
    accounts = AccountService(metadata, PasswordHasher())
    loop.run_until_complete(accounts.create_user(ADMIN, "alice", PASSWORD))
    yield metadata
    loop.run_until_complete(metadata.close())


def run(loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, T]) -> T:
    return loop.run_until_complete(coroutine)


def test_the_service_refuses_unchecked_until_the_window_moves_on(
    loop: asyncio.AbstractEventLoop, store: SqliteMetadataStore
) -> None:
    """Ten wrong passwords, then even the right one waits; ten minutes later it works."""
    clock = Clock()
    auth = AuthService(store, PasswordHasher(), login_limits(10), clock)
    for _ in range(10):
        with pytest.raises(AuthenticationFailed):
            run(loop, auth.authenticate("alice", "wrong-password", HERE))
    clock.now += 1
    with pytest.raises(TooManyAttempts) as refused:
        run(loop, auth.authenticate("alice", PASSWORD, HERE))
    assert refused.value.retry_after == 599
    assert refused.value.message == (
        "Too many failed logins for this user from your address; try again in 599 seconds."
    )
    with pytest.raises(AuthenticationFailed):
        run(loop, auth.authenticate("bob", "another-user", HERE))
    clock.now += 599
    assert run(loop, auth.authenticate("alice", PASSWORD, HERE)).user == "alice"


def test_the_service_treats_unknown_users_alike(
    loop: asyncio.AbstractEventLoop, store: SqliteMetadataStore
) -> None:
    """An unknown name is counted and refused exactly as a known one."""
    clock = Clock()
    auth = AuthService(store, PasswordHasher(), login_limits(3), clock)
    refusals: list[str] = []
    for name in ("alice", "nobody"):
        for _ in range(3):
            with pytest.raises(AuthenticationFailed):
                run(loop, auth.authenticate(name, "wrong-password", HERE))
        with pytest.raises(TooManyAttempts) as refused:
            run(loop, auth.authenticate(name, "wrong-password", HERE))
        refusals.append(refused.value.message)
    assert refusals[0] == refusals[1]


def test_the_service_counts_a_token_on_its_own(
    loop: asyncio.AbstractEventLoop, store: SqliteMetadataStore
) -> None:
    """Guessing one token's secret locks that token out, not alice's password or other tokens."""
    clock = Clock()
    auth = AuthService(store, PasswordHasher(), login_limits(3), clock)
    accounts = AccountService(store, PasswordHasher())
    _, secret = run(loop, accounts.create_token(ADMIN, "alice"))
    _, other = run(loop, accounts.create_token(ADMIN, "alice"))
    guess = secret[:-8] + "AAAAAAAA"
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            run(loop, auth.authenticate("__token__", guess, HERE))
    with pytest.raises(TooManyAttempts):
        run(loop, auth.authenticate("__token__", secret, HERE))
    assert run(loop, auth.authenticate("__token__", other, HERE)).user == "alice"
    assert run(loop, auth.authenticate("alice", PASSWORD, HERE)).user == "alice"


def test_the_service_lets_an_honest_burst_through(
    loop: asyncio.AbstractEventLoop, store: SqliteMetadataStore
) -> None:
    """Fifty requests at once with the right password (uv in parallel): every one is in."""
    auth = AuthService(store, PasswordHasher(), login_limits(3), Clock())

    async def burst() -> list[Identity]:
        return await asyncio.gather(
            *(auth.authenticate("alice", PASSWORD, HERE) for _ in range(50))
        )

    assert {identity.user for identity in run(loop, burst())} == {"alice"}


def test_the_service_bounds_a_burst_of_guesses(
    loop: asyncio.AbstractEventLoop, store: SqliteMetadataStore
) -> None:
    """A hundred different guesses sent at once: once the failures among the first few
    spend the budget, the rest are refused without being checked, the right one too."""
    auth = AuthService(store, PasswordHasher(), login_limits(3), Clock())

    async def burst() -> list[BaseException | Identity]:
        guesses = [f"guess-{n}" for n in range(99)] + [PASSWORD]
        return await asyncio.gather(
            *(auth.authenticate("alice", guess, HERE) for guess in guesses),
            return_exceptions=True,
        )

    answers = run(loop, burst())
    checked = [a for a in answers if isinstance(a, AuthenticationFailed)]
    refused = [a for a in answers if isinstance(a, TooManyAttempts)]
    # The budget, plus at most the verifications already running when it was spent.
    assert 3 <= len(checked) <= 3 + 4
    assert len(checked) + len(refused) == 100
    assert isinstance(answers[-1], TooManyAttempts)
