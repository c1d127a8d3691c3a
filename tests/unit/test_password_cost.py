"""The Argon2id cost of new password hashes: standard unless a test suite lowers it."""

from __future__ import annotations

from argon2 import PasswordHasher

from ministry.settings import settings_from
from ministry.wiring import password_hasher


def test_the_standard_cost_is_the_default() -> None:
    """A server nobody configured hashes as argon2-cffi recommends."""
    settings = settings_from({}, {}, None)
    assert settings.password_hash_cost == "standard"
    standard = PasswordHasher()
    hasher = password_hasher(settings.password_hash_cost)
    assert (hasher.time_cost, hasher.memory_cost, hasher.parallelism) == (
        standard.time_cost,
        standard.memory_cost,
        standard.parallelism,
    )


def test_hashes_of_either_cost_verify_with_either_hasher() -> None:
    """Lowering or raising the cost never locks out a user whose hash was made the other way."""
    minimal, standard = password_hasher("minimal"), password_hasher("standard")
    assert minimal.memory_cost < standard.memory_cost
    for made_by in (minimal, standard):
        stored = made_by.hash("correct horse")
        assert stored.startswith("$argon2id$")
        for checker in (minimal, standard):
            assert checker.verify(stored, "correct horse")
