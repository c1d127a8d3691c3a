"""One immutable ``Settings``: flags over environment (``MINISTRY_*``) over defaults.

Read once, at start, by the CLI and passed down; nothing reads the environment
at import time, so tests and several servers in one process never interfere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ministry.core.durations import parse_duration
from ministry.errors import InvalidRequest

__all__ = ["Settings", "SettingsError", "parse_size", "settings_from"]

_SIZE = re.compile(r"(\d+)\s*([kmgt]?)(i?b)?\Z", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the setting."""


@dataclass(frozen=True)
class Settings:
    """Everything a server or a command needs to know before it starts."""

    host: str = "127.0.0.1"
    port: int = 8080
    data: Path = Path("ministry-data")
    #: Largest accepted distribution file, in bytes (the public index's default).
    max_upload_size: int = 100 * 1024**2
    #: Upstream simple index that the default index proxies ("pip": the one pip uses).
    upstream: str | None = None
    #: Minimum age, in seconds, of upstream files before they are offered.
    upstream_min_age: int = 0
    #: Seconds a proxied project page stays fresh.
    upstream_ttl: int = 300
    #: Seconds to wait for an upstream to connect or send the next bytes.
    upstream_timeout: float = 10.0
    #: Never contact an upstream: serve only what is cached.
    offline: bool = False
    #: Metadata store: ``sqlite:///path`` (default: in the data directory) or ``redis://host:port/N``.
    db: str | None = None
    #: Blob store: ``file:///path`` (default: in the data directory) or ``s3://bucket/prefix``.
    storage: str | None = None
    #: Answer downloads from an S3 store with a redirect to a pre-signed URL.
    storage_redirect: bool = False
    #: Worker processes sharing the listening socket ("auto": one per core).
    processes: str = "1"
    #: URL prefix of an nginx ``internal`` location over the blob directory: downloads
    #: are answered with ``X-Accel-Redirect`` and nginx sends the bytes.
    accel_redirect: str | None = None
    #: A TOML file with the server's ``[[mirror]]`` jobs.
    config: Path | None = None
    #: Failed logins per user and client address within 10 minutes before further
    #: attempts wait (an address alone may fail five times as often); 0: no limit.
    login_failures: int = 10
    #: Log records as text lines ("text", the access log in a common-log-like line) or
    #: as one JSON object per line ("json").
    log_format: str = "text"

    @property
    def db_url(self) -> str:
        """The metadata store's URL, the SQLite file in the data directory unless told otherwise."""
        return self.db or f"sqlite:///{(self.data / 'ministry.sqlite3').resolve()}"

    @property
    def storage_url(self) -> str:
        """The blob store's URL, a directory in the data directory unless told otherwise."""
        return self.storage or f"file:///{(self.data / 'blobs').resolve()}"

    @property
    def spool_directory(self) -> Path:
        """Where uploads are received before they are checked."""
        return self.data / "tmp"


def parse_size(text: str) -> int:
    """Parse ``100M``, ``1GiB``, ``512k`` or a number of bytes."""
    match = _SIZE.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a size; write bytes or a number with K, M or G")
    return int(match[1]) * _UNITS[match[2].lower()]


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{value!r} is not true or false")


def _seconds(value: Any) -> int:
    if isinstance(value, int):
        return value
    try:
        return int(parse_duration(str(value)).total_seconds())
    except InvalidRequest as exc:
        raise ValueError(exc.message) from exc


def _processes(value: Any) -> str:
    text = str(value).strip().lower()
    if text != "auto" and not (text.isdigit() and int(text) >= 1):
        raise ValueError(f"{value!r} is not a number of processes (1 or more) or 'auto'")
    return text


def _accel_prefix(value: Any) -> str:
    text = str(value).strip()
    if not (text.startswith("/") and text.endswith("/")) or any(c in text for c in "?#\r\n"):
        raise ValueError(f"{value!r} is not a URL path starting and ending with '/'")
    return text


def _count(value: Any) -> int:
    text = str(value).strip()
    if not text.isdigit():
        raise ValueError(f"{value!r} is not a number (0 or more)")
    return int(text)


def _log_format(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in ("text", "json"):
        raise ValueError(f"{value!r} is not a log format: use text or json")
    return text


def _convert(name: str, value: Any) -> Any:
    if name == "port":
        port = int(value)
        if not 0 <= port <= 65535:
            raise ValueError(f"{port} is not a TCP port")
        return port
    converters: dict[str, Any] = {
        "data": Path,
        "config": Path,
        "max_upload_size": lambda v: v if isinstance(v, int) else parse_size(str(v)),
        "upstream_min_age": _seconds,
        "upstream_ttl": _seconds,
        "upstream_timeout": float,
        "offline": _flag,
        "storage_redirect": _flag,
        "processes": _processes,
        "accel_redirect": _accel_prefix,
        "login_failures": _count,
        "log_format": _log_format,
    }
    return converters.get(name, str)(value)


def settings_from(flags: Mapping[str, Any], environ: Mapping[str, str]) -> Settings:
    """Settings from command-line flags (None = not given) and ``MINISTRY_*`` variables."""
    values: dict[str, Any] = {}
    for field in fields(Settings):
        variable = "MINISTRY_" + field.name.upper()
        flag = flags.get(field.name)
        source, raw = (
            (f"--{field.name.replace('_', '-')}", flag)
            if flag is not None
            else (
                variable,
                environ.get(variable),
            )
        )
        if raw is None or raw == "":
            continue
        try:
            values[field.name] = _convert(field.name, raw)
        except ValueError as exc:
            raise SettingsError(f"{source}: {exc}") from exc
    return Settings(**values)
