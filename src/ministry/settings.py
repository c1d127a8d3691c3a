"""One immutable ``Settings``: flags over ``MINISTRY_*`` over the config file over defaults.

Every setting is described once, in ``OPTIONS``: its flag, its variable, its place
in the TOML file, its default and what it does. The command line, the file
reader, ``ministry config show`` and docs/configuration.md (which a test keeps
in step) are all made from that table, so they cannot disagree.

Read once, at start, by the CLI and passed down; nothing reads the environment
at import time, so tests and several servers in one process never interfere.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ministry.core.durations import parse_duration
from ministry.core.sizes import parse_size
from ministry.core.upstream_entries import parse_upstreams
from ministry.errors import InvalidRequest

if TYPE_CHECKING:
    from ministry.config_file import ConfigFile

__all__ = [
    "OPTION",
    "OPTIONS",
    "TABLES",
    "Option",
    "Settings",
    "SettingsError",
    "parse_size",
    "settings_from",
]

_HOST_NAME = re.compile(
    r"(?=.{1,253}\.?\Z)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?\Z"
)


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
    #: Bytes of upstream files all proxy indexes together keep before the least
    #: recently used are evicted (services.proxy_cache); None: no bound.
    max_cache_size: int | None = None
    #: Upstream simple index that the default index proxies ("pip": the one pip uses).
    upstream: tuple[str, ...] = ()
    #: Minimum age, in seconds, of upstream files before they are offered.
    upstream_min_age: int = 0
    #: Seconds a proxied project page stays fresh.
    upstream_ttl: int = 300
    #: Seconds to wait for an upstream to connect or send the next bytes.
    upstream_timeout: float = 10.0
    #: Internal networks (CIDR) and host names that files on upstream pages may lead to.
    upstream_allow_internal: tuple[str, ...] = ()
    #: Never contact an upstream: serve only what is cached.
    offline: bool = False
    #: Metadata store: ``sqlite:///path`` (default: in the data directory) or ``redis://host:port/N``.
    db: str | None = None
    #: A Redis metadata store that may lose acknowledged uploads: "strict" refuses to
    #: start on it, "warn" starts and reports the risk (storage/redis/durability.py).
    redis_durability: str = "strict"
    #: Replicas each change must reach (Redis WAIT) before it is acknowledged; 0: none.
    redis_wait_replicas: int = 0
    #: Milliseconds WAIT gives the replicas before the request fails with 503.
    redis_wait_timeout: int = 1000
    #: Seconds a request waits for Redis before it fails with 503.
    redis_timeout: float = 2.0
    #: Blob store: ``file:///path`` (default: in the data directory) or ``s3://bucket/prefix``.
    storage: str | None = None
    #: Answer downloads from an S3 store with a redirect to a pre-signed URL.
    storage_redirect: bool = False
    #: Worker processes sharing the listening socket ("auto": one per core).
    processes: str = "1"
    #: URL prefix of an nginx ``internal`` location over the blob directory: downloads
    #: are answered with ``X-Accel-Redirect`` and nginx sends the bytes.
    accel_redirect: str | None = None
    #: The TOML config file the other settings may come from.
    config: Path | None = None
    #: Failed logins per user and client address within 10 minutes before further
    #: attempts wait (an address alone may fail five times as often); 0: no limit.
    login_failures: int = 10
    #: Log records as text lines ("text", the access log in a common-log-like line) or
    #: as one JSON object per line ("json").
    log_format: str = "text"
    #: The scheme, host and port clients reach the server at, for absolute URLs
    #: (``https://HOST[:PORT]``, no trailing slash); None: from each request.
    public_url: str | None = None
    #: Addresses and networks of reverse proxies whose ``X-Forwarded-*`` headers are
    #: believed; from any other peer those headers are ignored.
    trusted_proxies: tuple[str, ...] = ()
    #: Seconds a browser sign-in lasts.
    session_lifetime: int = 12 * 3600
    #: The Argon2id cost of new password hashes: "standard" (argon2-cffi's defaults,
    #: the RFC 9106 low-memory profile), or "minimal", for test suites that make many
    #: users and servers and have no password worth guessing.
    password_hash_cost: str = "standard"  # noqa: S105 (a cost level, not a password)
    #: Connections one process serves at once; more wait for a 503 and retry.
    max_connections: int = 2048
    #: Seconds a client has to send a form's body, and the window in which an upload
    #: must keep sending; a request's head (and the next one on an idle connection)
    #: gets 15 s more (web.server).
    client_timeout: int = 60
    #: The audience identity tokens must name to be exchanged here (trusted publishing);
    #: None: the public URL's host, else "ministry".
    oidc_audience: str | None = None
    #: Issuers whose signing keys are read from a file instead of fetched (``ISSUER`` to
    #: a JWKS file): for sites without a way out, and for tests.
    oidc_jwks: tuple[tuple[str, Path], ...] = ()
    #: Seconds an upload token minted for a trusted publisher lasts.
    publish_token_lifetime: int = 15 * 60
    #: PEM file of the server's certificate (and its chain) for HTTPS; None: plain HTTP.
    tls_cert: Path | None = None
    #: PEM file of the certificate's private key, unencrypted.
    tls_key: Path | None = None
    #: The config file as read, for its ``[[index]]`` and ``[[mirror]]`` entries.
    file: ConfigFile | None = field(default=None, compare=False, repr=False)
    #: Where each setting not left at its default came from: its flag, its variable, or
    #: the file and line (``ministry config show`` prints them).
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def audience(self) -> str:
        """What identity tokens must be addressed to: distinct per server, so that a
        token one index was given cannot be exchanged at another."""
        if self.oidc_audience:
            return self.oidc_audience
        if self.public_url:
            return urlsplit(self.public_url).netloc
        return "ministry"

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


def _size(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size; write bytes or a number with K, M or G")
    return value if isinstance(value, int) and value >= 0 else parse_size(_text(value))


def _text(value: Any) -> str:
    return str(value).strip()


def _upstreams(value: Any) -> tuple[str, ...]:
    """Upstream entries: a list in the file or of flags, or text with ``;`` between them;
    ``pip`` stands for pip's configured indexes."""
    items = value if isinstance(value, list | tuple) else _text(value).split(";")
    entries = tuple(str(item).strip() for item in items if str(item).strip())
    try:
        parse_upstreams([entry for entry in entries if entry != "pip"])
    except InvalidRequest as exc:
        raise ValueError(exc.message) from exc
    return entries


def _whole(value: Any, what: str, low: int, high: int | None = None) -> int:
    text = _text(value)
    if isinstance(value, float) or not text.isdigit():
        raise ValueError(f"{value!r} is not {what}")
    number = int(text)
    if number < low or (high is not None and number > high):
        raise ValueError(f"{number} is not {what}")
    return number


def _port(value: Any) -> int:
    return _whole(value, "a TCP port (0 to 65535)", 0, 65535)


def _switch(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{value!r} is not true or false")


def _seconds(value: Any) -> int:
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value} is not a length of time")
        return value
    try:
        return int(parse_duration(_text(value)).total_seconds())
    except InvalidRequest as exc:
        raise ValueError(exc.message) from exc


def _lifetime(value: Any) -> int:
    seconds = _seconds(value)
    if seconds < 60:
        raise ValueError(f"{value!r} is shorter than a minute")
    return seconds


def _timeout(value: Any) -> float:
    try:
        seconds = float(_text(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a number of seconds") from None
    if not 0 < seconds <= 3600:
        raise ValueError(f"{value!r} is not a number of seconds between 0 and 3600")
    return seconds


def _file(value: Any) -> Path:
    text = _text(value)
    if not text or isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a file name")
    return Path(text)


def _processes(value: Any) -> str:
    text = _text(value).lower()
    if text != "auto" and not (text.isdigit() and int(text) >= 1):
        raise ValueError(f"{value!r} is not a number of processes (1 or more) or 'auto'")
    return text


def _accel_prefix(value: Any) -> str:
    text = _text(value)
    if not (text.startswith("/") and text.endswith("/")) or any(c in text for c in "?#\r\n"):
        raise ValueError(f"{value!r} is not a URL path starting and ending with '/'")
    return text


def _log_format(value: Any) -> str:
    text = _text(value).lower()
    if text not in ("text", "json"):
        raise ValueError(f"{value!r} is not a log format: use text or json")
    return text


def _redis_durability(value: Any) -> str:
    text = _text(value).lower()
    if text not in ("strict", "warn"):
        raise ValueError(f"{value!r} is not a Redis durability mode: use strict or warn")
    return text


def _password_hash_cost(value: Any) -> str:
    text = _text(value).lower()
    if text not in ("standard", "minimal"):
        raise ValueError(f"{value!r} is not a password hash cost: use standard or minimal")
    return text


def _public_url(value: Any) -> str:
    text = _text(value)
    parts = urlsplit(text)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
        or any(c.isspace() for c in text)
    ):
        raise ValueError(
            f"{value!r} is not the address of a server: write scheme, host and port only, "
            "like https://HOST or https://HOST:PORT (the server answers at the root of its address)"
        )
    try:
        parts.port  # noqa: B018 (a bad port raises here)
    except ValueError as exc:
        raise ValueError(f"{value!r} has a bad port: {exc}") from None
    return f"{parts.scheme}://{parts.netloc.lower()}"


def _publish_token_lifetime(value: Any) -> int:
    seconds = _seconds(value)
    # What the trusted-publishing standard (PEP 807) allows an index to issue.
    if not 15 * 60 <= seconds <= 6 * 3600:
        raise ValueError(f"{value!r} is not between 15 minutes and 6 hours")
    return seconds


def _audience(value: Any) -> str:
    text = _text(value)
    if not text or len(text) > 200 or not text.isprintable():
        raise ValueError(f"{value!r} is not an audience (a short name, such as this host's)")
    return text


def _jwks(value: Any) -> tuple[tuple[str, Path], ...]:
    """``ISSUER=FILE`` pairs: a table in the file, a list of flags, or commas in a variable."""
    if isinstance(value, dict):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    else:
        items = value if isinstance(value, list | tuple) else _text(value).split(",")
        pairs = []
        for item in items:
            issuer, equals, file = str(item).strip().rpartition("=")
            if not equals or not issuer or not file:
                raise ValueError(f"{item!r} is not ISSUER=FILE")
            pairs.append((issuer, file))
    checked: list[tuple[str, Path]] = []
    for issuer, file in pairs:
        parts = urlsplit(issuer)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ValueError(f"{issuer!r} is not an issuer URL")
        checked.append((issuer.rstrip("/"), Path(file).expanduser()))
    return tuple(checked)


def _internal(value: Any) -> tuple[str, ...]:
    """Networks as CIDR and host names in lower case: the two ways an operator names a place."""
    items = value if isinstance(value, list | tuple) else _text(value).split(",")
    allowed: list[str] = []
    for item in items:
        text = item.strip().lower() if isinstance(item, str) else ""
        if not text and isinstance(item, str):
            continue
        try:
            allowed.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError:
            if not _HOST_NAME.match(text):
                raise ValueError(
                    f"{item!r} is neither a network like 10.1.0.0/16 nor a host name"
                ) from None
            allowed.append(text.rstrip("."))
    return tuple(dict.fromkeys(allowed))


def _networks(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list | tuple) else _text(value).split(",")
    networks: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"{item!r} is not an address or network")
        if not item.strip():
            continue
        try:
            networks.append(str(ipaddress.ip_network(item.strip(), strict=False)))
        except ValueError:
            raise ValueError(
                f"{item.strip()!r} is not an IP address or network like 10.0.0.0/8"
            ) from None
    return tuple(dict.fromkeys(networks))


@dataclass(frozen=True)
class Option:
    """One setting: where it is written (flag, variable, file) and what it means."""

    #: The ``Settings`` field.
    name: str
    #: The config file's table, or "" for a setting the file cannot hold.
    table: str
    #: The key in that table.
    key: str
    #: The default as people read it.
    default: str
    #: What it does, in one sentence.
    help: str
    convert: Callable[[Any], Any]
    #: The placeholder in ``--help``; None for an on/off switch.
    metavar: str | None = "VALUE"
    #: Shown masked (credentials in a URL).
    secret: bool = False
    #: Taken by every command, not only by ``serve``: it says where the stores are.
    every_command: bool = False
    #: The flag may be given more than once (each adds a value).
    repeatable: bool = False

    @property
    def flag(self) -> str:
        """The command-line flag."""
        return "--" + self.name.replace("_", "-")

    @property
    def variable(self) -> str:
        """The environment variable."""
        return "MINISTRY_" + self.name.upper()

    @property
    def place(self) -> str:
        """Where the config file holds it, like ``[server] port``."""
        return f"[{self.table}] {self.key}" if self.table else ""


OPTIONS: tuple[Option, ...] = (
    Option("config", "", "", "none", "The TOML config file that the other settings may come "
           "from, with [[index]] and [[mirror]] entries.", Path, "FILE", every_command=True),
    Option("host", "server", "host", "127.0.0.1", "The address to listen on.", _text, "ADDRESS"),
    Option("port", "server", "port", "8080", "The TCP port to listen on; 0 takes any free "
           "port.", _port, "PORT"),
    Option("processes", "server", "processes", "1", "Worker processes sharing the port; "
           "auto starts one per core.", _processes, "N"),
    Option("public_url", "server", "public_url", "none (from each request)", "The address "
           "clients reach the server at, like https://HOST[:PORT]; absolute URLs in "
           "answers are built from it.", _public_url, "URL"),
    Option("trusted_proxies", "server", "trusted_proxies", "none", "Addresses or networks of "
           "reverse proxies whose X-Forwarded-For, -Proto and -Host headers are believed "
           "(comma-separated in a flag or variable, a list in the file).", _networks,
           "ADDRESSES"),
    Option("tls_cert", "server", "tls_cert", "none (plain HTTP)", "Serve HTTPS only, with "
           "the certificate (and its chain) in this PEM file; needs tls_key; SIGHUP reloads "
           "both.", _file, "FILE"),
    Option("tls_key", "server", "tls_key", "none", "The PEM file of the TLS certificate's "
           "private key, unencrypted and readable by the server's user only.", _file, "FILE"),
    Option("log_format", "server", "log_format", "text", "Log lines as text, or json for one "
           "JSON object per line.", _log_format, "FORMAT"),
    Option("data", "storage", "data", "./ministry-data", "The data directory: the SQLite "
           "database and the files by default, and room to receive uploads.", Path, "DIR",
           every_command=True),
    Option("db", "storage", "db", "SQLite in the data directory", "The metadata store: "
           "sqlite:///PATH or redis://HOST:PORT/N.", _text, "URL", secret=True,
           every_command=True),
    Option("redis_durability", "storage", "redis_durability", "strict", "Redis only: strict "
           "refuses to start unless Redis runs with appendonly yes and appendfsync always "
           "(else a crash of Redis loses acknowledged uploads); warn starts anyway and "
           "reports the risk in the log, /-/ready and the metrics.", _redis_durability,
           "MODE", every_command=True),
    Option("redis_wait_replicas", "storage", "redis_wait_replicas", "0", "Redis only: "
           "replicas each change must reach (WAIT) before it is acknowledged; fewer in time "
           "answer 503. 0 waits for none.",
           lambda v: _whole(v, "a number of replicas (0 to 100)", 0, 100), "N",
           every_command=True),
    Option("redis_wait_timeout", "storage", "redis_wait_timeout", "1000", "Redis only: "
           "milliseconds the replicas have to acknowledge a change.",
           lambda v: _whole(v, "a number of milliseconds from 1 to 60000", 1, 60000), "MS",
           every_command=True),
    Option("redis_timeout", "storage", "redis_timeout", "2", "Redis only: seconds a request "
           "waits for Redis before it fails with 503.", _timeout, "SECONDS",
           every_command=True),
    Option("storage", "storage", "blobs", "a directory in the data directory", "The blob "
           "store: file:///PATH or s3://BUCKET/PREFIX.", _text, "URL", secret=True,
           every_command=True),
    Option("storage_redirect", "storage", "redirect", "off", "S3 only: answer downloads with "
           "a redirect to a pre-signed URL.", _switch, None),
    Option("accel_redirect", "storage", "accel_redirect", "none", "File store behind nginx: "
           "answer downloads with X-Accel-Redirect to this internal location.", _accel_prefix,
           "PREFIX"),
    Option("upstream", "upstream", "url", "none", "An index to proxy for every name not "
           "hosted here (repeatable, in order of preference: 'URL [only=PATTERNS] [ttl=TIME]'; "
           "a list in the file, ';' between them in the variable); pip means the indexes pip "
           "is configured with.", _upstreams, "URL", secret=True, repeatable=True),
    Option("upstream_min_age", "upstream", "min_age", "0", "Offer upstream files only once "
           "they are this old, like 3d.", _seconds, "TIME"),
    Option("upstream_ttl", "upstream", "ttl", "300s", "How long a proxied project page stays "
           "fresh.", _seconds, "TIME"),
    Option("upstream_timeout", "upstream", "timeout", "10", "Seconds to wait for an upstream "
           "to connect or send more.", _timeout, "SECONDS"),
    Option("upstream_allow_internal", "upstream", "allow_internal", "none", "Internal "
           "networks (CIDR) and host names that files on upstream pages may lead to, beyond "
           "the upstream's own host and port (comma-separated in a flag or variable, a list "
           "in the file).", _internal, "NETWORKS"),
    Option("offline", "upstream", "offline", "off", "Never contact an upstream: serve only "
           "what is cached.", _switch, None),
    Option("max_upload_size", "limits", "max_upload_size", "100M", "The largest file an "
           "upload may send.", lambda v: v if isinstance(v, int) else parse_size(_text(v)),
           "SIZE"),
    Option("max_cache_size", "limits", "max_cache_size", "none (no bound)", "The most bytes "
           "of upstream files all proxy indexes together keep, like 5G; the least recently "
           "used are evicted beyond it (docs/proxy.md).", _size, "SIZE"),
    Option("max_connections", "limits", "max_connections", "2048", "Connections one process "
           "serves at once (fewer when the open-files limit is low); more get 503 and retry.",
           lambda v: _whole(v, "a number of connections (1 or more)", 1), "N"),
    Option("client_timeout", "limits", "client_timeout", "60", "Seconds a client has to send "
           "a form's body, and in which an upload must send 16 KiB more; a request's head, or "
           "the next request on an idle connection, gets 15 s longer.",
           lambda v: _whole(v, "a number of seconds from 1 to 3600", 1, 3600), "SECONDS"),
    Option("login_failures", "auth", "login_failures", "10", "Failed logins per user and "
           "address in 10 minutes before more must wait (5 times as many per address); 0 for "
           "no limit.", lambda v: _whole(v, "a number (0 or more)", 0), "N"),
    Option("session_lifetime", "auth", "session_lifetime", "12h", "How long a sign-in to the "
           "web pages lasts.", _lifetime, "TIME"),
    Option("password_hash_cost", "auth", "password_hash_cost", "standard", "The Argon2id cost "
           "of new password hashes: standard, or minimal for test suites only (a stolen "
           "database then gives up weak passwords quickly).", _password_hash_cost, "COST"),
    Option("oidc_audience", "auth", "oidc_audience", "the public URL's host, else ministry",
           "The audience CI identity tokens must name to be exchanged for upload tokens "
           "(trusted publishing).", _audience, "NAME"),
    Option("oidc_jwks", "auth", "oidc_jwks", "none (fetched from each issuer)", "An "
           "issuer's signing keys from a JWKS file instead of its website, as ISSUER=FILE "
           "(repeatable; a table in the file).", _jwks, "ISSUER=FILE", repeatable=True),
    Option("publish_token_lifetime", "auth", "publish_token_lifetime", "15m", "How long an "
           "upload token minted for a trusted publisher lasts (15m to 6h).",
           _publish_token_lifetime, "TIME"),
)  # fmt: skip

#: The config file's tables of settings, in the order the docs show them.
TABLES: tuple[str, ...] = tuple(dict.fromkeys(o.table for o in OPTIONS if o.table))

#: Each option by its ``Settings`` field.
OPTION = {option.name: option for option in OPTIONS}
assert set(OPTION) == {f.name for f in fields(Settings)} - {"file", "sources"}, (
    "OPTIONS is incomplete"
)


def _convert(option: Option, raw: Any, source: str) -> Any:
    # A file may hold lists, tables and booleans; only some settings take them.
    listed = option.repeatable or option.name in ("trusted_proxies", "upstream_allow_internal")
    if (isinstance(raw, dict) and option.name != "oidc_jwks") or (
        isinstance(raw, list) and not listed
    ):
        raise SettingsError(f"{source}: must be a single value, not {type(raw).__name__}")
    if isinstance(raw, bool) and option.metavar is not None:
        raise SettingsError(f"{source}: {raw!r} is not a value this setting takes")
    try:
        return option.convert(raw)
    except ValueError as exc:
        raise SettingsError(f"{source}: {exc}") from exc


def settings_from(
    flags: Mapping[str, Any], environ: Mapping[str, str], file: ConfigFile | None = None
) -> Settings:
    """Settings from flags (None = not given), then ``MINISTRY_*`` variables, then ``file``."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in OPTIONS:
        flag, variable = flags.get(option.name), environ.get(option.variable)
        stored = file.values.get(option.name) if file is not None else None
        if flag is not None:
            source, where, raw = option.flag, option.flag, flag
        elif variable:
            source, where, raw = option.variable, option.variable, variable
        elif stored is not None:
            source, where, raw = f"{stored.where}: {option.place}", stored.where, stored.raw
        else:
            continue
        values[option.name] = _convert(option, raw, source)
        sources[option.name] = where
    return Settings(**values, file=file, sources=sources)
