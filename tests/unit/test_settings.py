"""Unit tests for ministry.settings: flags over MINISTRY_* environment over defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from ministry.core.sizes import parse_size
from ministry.settings import Settings, SettingsError, settings_from

MiB = 1024 * 1024
NO_FLAGS: dict[str, object] = {"host": None, "port": None, "data": None, "max_upload_size": None}


def test_defaults() -> None:
    """Defaults: loopback 127.0.0.1:8080, ./ministry-data, 100 MiB uploads (the public index's 100
    MB)."""
    settings = settings_from(NO_FLAGS, {})
    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    assert settings.data == Path("ministry-data")
    assert settings.max_upload_size == 100 * MiB
    assert settings == Settings()


def test_defaults_with_no_flags_at_all() -> None:
    """An empty flag mapping is the same as every flag omitted."""
    assert settings_from({}, {}) == Settings()


def test_environment_overrides_defaults() -> None:
    """MINISTRY_HOST/PORT/DATA/MAX_UPLOAD_SIZE override the defaults."""
    environ = {
        "MINISTRY_HOST": "192.0.2.10",
        "MINISTRY_PORT": "9000",
        "MINISTRY_DATA": "/srv/ministry",
        "MINISTRY_MAX_UPLOAD_SIZE": "1GiB",
    }
    settings = settings_from(NO_FLAGS, environ)
    assert settings.host == "192.0.2.10"
    assert settings.port == 9000
    assert settings.data == Path("/srv/ministry")
    assert settings.max_upload_size == 1024**3


def test_unrelated_environment_is_ignored() -> None:
    """Only MINISTRY_* variables are read."""
    settings = settings_from(NO_FLAGS, {"PORT": "1", "HOST": "x", "ministry_port": "2"})
    assert settings == Settings()


def test_empty_environment_variable_means_unset() -> None:
    """``MINISTRY_PORT=`` (empty) falls back to the default rather than failing."""
    assert settings_from(NO_FLAGS, {"MINISTRY_PORT": "", "MINISTRY_HOST": ""}) == Settings()


def test_flags_override_environment() -> None:
    """Flags win over the environment, field by field."""
    environ = {
        "MINISTRY_HOST": "192.0.2.10",
        "MINISTRY_PORT": "9000",
        "MINISTRY_DATA": "/srv/env",
        "MINISTRY_MAX_UPLOAD_SIZE": "1G",
    }
    flags = {"host": "::1", "port": 7000, "data": "/srv/flag", "max_upload_size": "5M"}
    settings = settings_from(flags, environ)
    assert settings.host == "::1"
    assert settings.port == 7000
    assert settings.data == Path("/srv/flag")
    assert settings.max_upload_size == 5 * MiB


def test_unset_flag_keeps_environment_value() -> None:
    """A flag left as None does not hide the environment variable."""
    settings = settings_from({**NO_FLAGS, "host": "::1"}, {"MINISTRY_PORT": "9000"})
    assert settings.host == "::1"
    assert settings.port == 9000


def test_integer_upload_size_flag_is_bytes() -> None:
    """max_upload_size given as an int is a number of bytes."""
    assert settings_from({**NO_FLAGS, "max_upload_size": 12345}, {}).max_upload_size == 12345


@pytest.mark.parametrize("value", ["http", "80a", "-1", "65536", "1e3", "8080.5"])
def test_bad_port_in_environment_names_the_variable(value: str) -> None:
    """A bad MINISTRY_PORT raises SettingsError naming MINISTRY_PORT."""
    with pytest.raises(SettingsError) as caught:
        settings_from(NO_FLAGS, {"MINISTRY_PORT": value})
    assert "MINISTRY_PORT" in str(caught.value)


@pytest.mark.parametrize("value", ["http", "70000", "-5"])
def test_bad_port_flag_names_the_flag(value: str) -> None:
    """A bad --port raises SettingsError naming --port, not the environment variable."""
    with pytest.raises(SettingsError) as caught:
        settings_from({**NO_FLAGS, "port": value}, {"MINISTRY_PORT": "9000"})
    assert "--port" in str(caught.value)
    assert "MINISTRY_PORT" not in str(caught.value)


@pytest.mark.parametrize("port", ["0", "1", "65535"])
def test_port_range_edges_are_accepted(port: str) -> None:
    """Ports 0 (any free port) to 65535 are valid."""
    assert settings_from(NO_FLAGS, {"MINISTRY_PORT": port}).port == int(port)


def test_bad_upload_size_names_its_source() -> None:
    """A bad MINISTRY_MAX_UPLOAD_SIZE or --max-upload-size names where it came from."""
    with pytest.raises(SettingsError) as from_env:
        settings_from(NO_FLAGS, {"MINISTRY_MAX_UPLOAD_SIZE": "lots"})
    assert "MINISTRY_MAX_UPLOAD_SIZE" in str(from_env.value)
    with pytest.raises(SettingsError) as from_flag:
        settings_from({**NO_FLAGS, "max_upload_size": "lots"}, {})
    assert "--max-upload-size" in str(from_flag.value)


def test_settings_error_is_a_value_error() -> None:
    """SettingsError is a ValueError, so callers can catch either."""
    assert issubclass(SettingsError, ValueError)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("123", 123),
        ("0", 0),
        ("512k", 512 * 1024),
        ("512K", 512 * 1024),
        ("512KiB", 512 * 1024),
        ("100M", 100 * MiB),
        ("100m", 100 * MiB),
        ("100MB", 100 * MiB),
        ("100 MiB", 100 * MiB),
        ("1G", 1024**3),
        ("1GiB", 1024**3),
        ("2T", 2 * 1024**4),
        (" 7M ", 7 * MiB),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    """parse_size: bytes, or a number with a K/M/G/T (binary) suffix."""
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "M", "1.5G", "-1M", "10X", "1 0M", "ten", "1MM"])
def test_parse_size_refuses_junk(text: str) -> None:
    """parse_size refuses anything that is not a whole number with an optional unit."""
    with pytest.raises(ValueError):
        parse_size(text)


def test_stores_default_to_the_data_directory() -> None:
    """Without --db and --storage, SQLite and the blobs live under the data directory."""
    settings = Settings(data=Path("/srv/m"))
    assert settings.db_url == "sqlite:////srv/m/ministry.sqlite3"
    assert settings.storage_url == "file:////srv/m/blobs"
    assert settings.spool_directory.parent == Path("/srv/m")
    chosen = settings_from(
        {"db": "redis://127.0.0.1:6379/2"}, {"MINISTRY_STORAGE": "s3://bucket/ministry"}
    )
    assert (chosen.db_url, chosen.storage_url) == (
        "redis://127.0.0.1:6379/2",
        "s3://bucket/ministry",
    )


@pytest.mark.parametrize(
    ("value", "valid"), [("1", True), ("4", True), ("auto", True), ("0", False), ("many", False)]
)
def test_processes(value: str, valid: bool) -> None:
    """--processes is a positive number or 'auto'."""
    if valid:
        assert settings_from({"processes": value}, {}).processes == value
    else:
        with pytest.raises(SettingsError, match="--processes"):
            settings_from({"processes": value}, {})


def test_proxy_settings_from_flags_and_environment() -> None:
    """Upstream, times and offline come from flags or MINISTRY_* like every setting."""
    settings = settings_from(
        {"upstream": "pip", "upstream_min_age": "3d", "offline": None},
        {
            "MINISTRY_UPSTREAM_TTL": "5m",
            "MINISTRY_OFFLINE": "yes",
            "MINISTRY_UPSTREAM_TIMEOUT": "2.5",
        },
    )
    assert settings.upstream == ("pip",)
    assert settings.upstream_min_age == 3 * 86400
    assert settings.upstream_ttl == 300
    assert settings.upstream_timeout == 2.5
    assert settings.offline is True
    assert settings_from({}, {}).offline is False


@pytest.mark.parametrize(
    ("environment", "named"),
    [
        ({"MINISTRY_OFFLINE": "maybe"}, "MINISTRY_OFFLINE"),
        ({"MINISTRY_UPSTREAM_TTL": "soon"}, "MINISTRY_UPSTREAM_TTL"),
    ],
)
def test_bad_proxy_settings_name_their_source(environment: dict[str, str], named: str) -> None:
    """A bad value names the variable it came from."""
    with pytest.raises(SettingsError, match=named):
        settings_from({}, environment)


@pytest.mark.parametrize(
    ("value", "valid"),
    [("/_blobs/", True), ("/a/b/", True), ("_blobs/", False), ("/_blobs", False),
     ("/x?y/", False), ("/a\r\nX: y/", False)],
)  # fmt: skip
def test_accel_redirect_prefix(value: str, valid: bool) -> None:
    """An X-Accel-Redirect prefix is a URL path ending in '/', with nothing that ends a header."""
    if valid:
        assert settings_from({"accel_redirect": value}, {}).accel_redirect == value
    else:
        with pytest.raises(SettingsError, match="--accel-redirect"):
            settings_from({"accel_redirect": value}, {})


@pytest.mark.parametrize(
    ("value", "valid"),
    [("1", True), ("60", True), ("3600", True), ("0", False), ("3601", False), ("-5", False),
     ("2.5", False), ("1m", False), ("", True)],
)  # fmt: skip
def test_client_timeout(value: str, valid: bool) -> None:
    """Whole seconds from 1 to 3600; an empty variable leaves the default of 60."""
    if valid:
        expected = int(value) if value else 60
        assert settings_from({}, {"MINISTRY_CLIENT_TIMEOUT": value}).client_timeout == expected
    else:
        with pytest.raises(SettingsError, match="MINISTRY_CLIENT_TIMEOUT"):
            settings_from({}, {"MINISTRY_CLIENT_TIMEOUT": value})
