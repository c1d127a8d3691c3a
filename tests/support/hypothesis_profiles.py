"""Hypothesis settings for the property tests (tests/property/).

The default profile ("ci") is what the suite runs: a fixed number of examples,
derandomized so that every run of the same code tries the same inputs (a red CI
run can be reproduced locally, and a green one is not luck), which also keeps
Hypothesis from writing an example database into the checkout. No deadline and
no "too slow" health check: they measure time, and the machines are shared.

``HYPOTHESIS_PROFILE=long`` explores with fresh random inputs and many more
examples, for a run by hand after changing a parser.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

__all__ = ["load_profile"]


def load_profile() -> None:
    """Register the profiles and load the one ``HYPOTHESIS_PROFILE`` names (default "ci")."""
    settings.register_profile(
        "ci",
        max_examples=200,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
        print_blob=True,
    )
    settings.register_profile(
        "long",
        max_examples=20_000,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
        print_blob=True,
    )
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
