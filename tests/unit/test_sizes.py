"""Sizes: the one parser every door uses (flags, file, variables, the API) and the printer."""

from __future__ import annotations

import pytest

from ministry.core.sizes import exact_size, format_size, parse_size
from ministry.settings import SettingsError, settings_from


@pytest.mark.parametrize(
    ("text", "expected"),
    [("5G", 5 * 1024**3), ("500M", 500 * 1024**2), ("10GiB", 10 * 1024**3), ("300000", 300000)],
)
def test_the_sizes_a_cache_bound_is_written_in(text: str, expected: int) -> None:
    """What docs/proxy.md shows for max_cache_size parses to binary units."""
    assert parse_size(text) == expected
    assert settings_from({"max_cache_size": text}, {}).max_cache_size == expected


@pytest.mark.parametrize("text", ["5 gigs", "-5G", "5.5G", "G"])
def test_a_bad_cache_bound_is_refused_naming_the_flag(text: str) -> None:
    """A bad value stops the command with one line that names where it came from."""
    with pytest.raises(SettingsError, match=r"--max-cache-size: .* is not a size"):
        settings_from({"max_cache_size": text}, {})
    with pytest.raises(SettingsError, match="MINISTRY_MAX_CACHE_SIZE: "):
        settings_from({}, {"MINISTRY_MAX_CACHE_SIZE": text})


def test_no_bound_by_default() -> None:
    """Without the setting the caches are unbounded, as before."""
    assert settings_from({}, {}).max_cache_size is None


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (5 * 1024**3, "5.0 GiB"),
        (3 * 1024**4, "3.0 TiB"),
        (5000 * 1024**4, "5000.0 TiB"),
    ],
)
def test_format_size(size: int, shown: str) -> None:
    """People read sizes in the largest binary unit that fits, to one decimal."""
    assert format_size(size) == shown


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0 B"),
        (1000, "1000 B"),
        (1024, "1 KiB"),
        (1536 * 1024, "1536 KiB"),
        (512 * 1024**2, "512 MiB"),
        (5 * 1024**3, "5 GiB"),
        (2 * 1024**4, "2 TiB"),
        (1024**3 + 1, "1073741825 B"),
    ],
)
def test_exact_size_reads_back_to_the_same_bytes(size: int, shown: str) -> None:
    """A form shows a bound this way and takes it back unchanged."""
    assert exact_size(size) == shown
    assert parse_size(shown) == size
