"""What ``export --fetch-missing`` says it is about to fetch, as far as the upstream says."""

from __future__ import annotations

import pytest

from ministry.services.stored_files import Estimate


@pytest.mark.parametrize(
    ("estimate", "said"),
    [
        (Estimate(0, 0, 0), "nothing to fetch: every file is stored here"),
        (Estimate(3, 4_500_000, 0), "3 files not cached, 4,500,000 bytes"),
        (
            Estimate(3, 4_500_000, 1),
            "3 files not cached, 4,500,000 bytes (and 1 of unknown size: the upstream does not "
            "say)",
        ),
        (Estimate(2, 0, 2), "2 files not cached, of unknown size (the upstream does not say)"),
    ],
)
def test_the_estimate_says_what_is_known_and_what_is_not(estimate: Estimate, said: str) -> None:
    assert estimate.describe() == said
