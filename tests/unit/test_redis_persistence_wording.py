"""What the Redis persistence settings risk, as the start check words it (no server)."""

from __future__ import annotations

import pytest

from ministry.storage.redis.durability import Persistence, parse_persistence


@pytest.mark.parametrize(
    ("appendonly", "appendfsync", "words"),
    [
        ("no", "always", "every acknowledged upload since its last snapshot"),
        ("yes", "everysec", "of up to a second"),
        ("yes", "no", "not yet on disk"),
    ],
)
def test_what_each_setting_risks(appendonly: str, appendfsync: str, words: str) -> None:
    found = parse_persistence({"appendonly": appendonly}, {"appendfsync": appendfsync}, 0)
    assert found.risk is not None and words in found.risk
    refusal = found.refusal("redis://h:6379/0")
    assert "\n" not in refusal
    assert "--redis-durability warn" in refusal
    assert "set appendonly yes and appendfsync always" in refusal


def test_aof_always_risks_nothing_and_replicas_are_named() -> None:
    assert parse_persistence({"appendonly": "yes"}, {"appendfsync": "always"}, 2).risk is None
    found = parse_persistence({"appendonly": "yes"}, {"appendfsync": "everysec"}, 2)
    assert "2 replica(s) receive writes asynchronously" in found.refusal("redis://h/0")


def test_config_that_answers_nothing_or_fails_is_a_risk() -> None:
    assert parse_persistence({}, {}, 0).risk is not None  # an empty answer: unknown
    failed = Persistence(None, None, 0, config_error="unknown command 'CONFIG'")
    assert failed.risk is not None and "cannot be checked" in failed.risk
    assert "make sure it runs with appendonly yes" in failed.refusal("redis://h/0")
