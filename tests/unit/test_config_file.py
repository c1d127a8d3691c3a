"""The config file: every setting in its table, precedence, and mistakes named by line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ministry.config_file import read_config
from ministry.core.index_settings import index_settings
from ministry.core.models import Route
from ministry.settings import OPTIONS, Option, Settings, SettingsError, settings_from

# Three different valid values of every setting, as a flag or variable would give them
# (text) and as the file would (TOML), with the value Settings then holds.
_SAMPLES: dict[str, tuple[tuple[str, str, Any], ...]] = {
    "config": (),  # names the file itself; checked on its own below
    "host": (("::1", '"::1"', "::1"), ("192.0.2.7", '"192.0.2.7"', "192.0.2.7"),
             ("192.0.2.1", '"192.0.2.1"', "192.0.2.1")),
    "port": (("9001", "9001", 9001), ("9002", '"9002"', 9002), ("0", "0", 0)),
    "processes": (("2", "2", "2"), ("auto", '"auto"', "auto"), ("3", '"3"', "3")),
    "public_url": (("https://127.0.0.1:8443", '"https://127.0.0.1:8443/"', "https://127.0.0.1:8443"),
                   ("http://127.0.0.2:8080", '"http://127.0.0.2:8080"',
                    "http://127.0.0.2:8080"),
                   ("https://LOCALHOST/", '"https://localhost"', "https://localhost")),
    "trusted_proxies": (("10.0.0.1", '["10.0.0.1"]', ("10.0.0.1/32",)),
                        ("10.0.0.0/8,::1", '["10.0.0.0/8", "::1"]', ("10.0.0.0/8", "::1/128")),
                        ("192.0.2.0/24", '"192.0.2.0/24"', ("192.0.2.0/24",))),
    "tls_cert": (("/etc/a.pem", '"/etc/a.pem"', Path("/etc/a.pem")),
                 ("b.pem", '"b.pem"', Path("b.pem")), ("c.pem", '"c.pem"', Path("c.pem"))),
    "tls_key": (("/etc/a.key", '"/etc/a.key"', Path("/etc/a.key")),
                ("b.key", '"b.key"', Path("b.key")), ("c.key", '"c.key"', Path("c.key"))),
    "log_format": (("json", '"json"', "json"), ("text", '"text"', "text"),
                   ("JSON", '"JSON"', "json")),
    "data": (("/srv/a", '"/srv/a"', Path("/srv/a")), ("/srv/b", '"/srv/b"', Path("/srv/b")),
             ("rel", '"rel"', Path("rel"))),
    "db": (("redis://h:6379/1", '"redis://h:6379/1"', "redis://h:6379/1"),
           ("sqlite:////x.db", '"sqlite:////x.db"', "sqlite:////x.db"),
           ("redis://h:6379/2", '"redis://h:6379/2"', "redis://h:6379/2")),
    "redis_durability": (("warn", '"strict"', "warn"), ("STRICT", '"warn"', "strict"),
                         ("strict", '"WARN"', "warn")),
    "redis_wait_replicas": (("1", "2", 1), ("0", '"3"', 0), ("2", "1", 1)),
    "redis_wait_timeout": (("500", "2000", 500), ("60000", '"1"', 60000), ("1", "250", 250)),
    "redis_timeout": (("0.5", "3", 0.5), ("5", '"1.5"', 5.0), ("10", "2.5", 2.5)),
    "storage": (("s3://a/b", '"s3://a/b"', "s3://a/b"), ("file:////x", '"file:////x"', "file:////x"),
                ("s3://c", '"s3://c"', "s3://c")),
    "storage_redirect": (("yes", "true", True), ("off", "false", False), ("1", '"on"', True)),
    "accel_redirect": (("/a/", '"/a/"', "/a/"), ("/b/", '"/b/"', "/b/"),
                       ("/c/d/", '"/c/d/"', "/c/d/")),
    "upstream": ((["pip", "http://127.0.0.3:9/ only=acme-*"], '"pip"',
                  ("pip", "http://127.0.0.3:9/ only=acme-*")),
                 ("http://127.0.0.1:9/simple/;http://127.0.0.4:9/",
                 '"http://127.0.0.1:9/simple/"', ("http://127.0.0.1:9/simple/",
                                                  "http://127.0.0.4:9/")),
                 ("http://127.0.0.2:9/", '["http://127.0.0.2:9/", "pip"]',
                  ("http://127.0.0.2:9/", "pip"))),
    "upstream_min_age": (("3d", '"3d"', 259200), ("60", "60", 60), ("2h", '"2h"', 7200)),
    "upstream_ttl": (("5m", '"5m"', 300), ("10", "10", 10), ("1h", '"1h"', 3600)),
    "upstream_timeout": (("2.5", "2.5", 2.5), ("7", "7", 7.0), ("30", '"30"', 30.0)),
    "upstream_allow_internal": (
        ("10.1.0.0/16,files.internal.example.test",
         '["10.1.0.0/16", "files.internal.example.test"]',
         ("10.1.0.0/16", "files.internal.example.test")),
        ("127.0.0.1", '["127.0.0.1"]', ("127.0.0.1/32",)),
        ("localhost", '"Localhost"', ("localhost",))),
    "offline": (("true", "true", True), ("no", "false", False), ("on", '"yes"', True)),
    "max_upload_size": (("1K", '"1K"', 1024), ("2048", "2048", 2048), ("1M", '"1MiB"', 1024**2)),
    "max_cache_size": (("5G", '"500M"', 5 * 1024**3), ("10GiB", "4096", 10 * 1024**3),
                       ("2048", '"1KiB"', 1024)),
    "max_connections": (("10", "10", 10), ("20", '"20"', 20), ("1", "1", 1)),
    "client_timeout": (("1", "1", 1), ("3600", '"3600"', 3600), ("5", "5", 5)),
    "login_failures": (("0", "0", 0), ("3", "3", 3), ("50", '"50"', 50)),
    "session_lifetime": (("1h", '"1h"', 3600), ("120", "120", 120), ("2d", '"2d"', 172800)),
    "password_hash_cost": (("minimal", '"minimal"', "minimal"), ("Standard", '"standard"',
                           "standard"), ("MINIMAL", '"Minimal"', "minimal")),
    "oidc_audience": (("a.example", '"a.example"', "a.example"), ("b", '"b"', "b"),
                      ("c.example", '"c.example"', "c.example")),
    "oidc_jwks": (
        ("https://i.example=/k1.json", '"x"', (("https://i.example", Path("/k1.json")),)),
        ("https://j.example/=/k2.json,https://k.example=/k3.json", '"x"',
         (("https://j.example", Path("/k2.json")), ("https://k.example", Path("/k3.json")))),
        ("", '{ "https://l.example" = "/k4.json" }',
         (("https://l.example", Path("/k4.json")),)),
    ),
    "publish_token_lifetime": (("30m", '"30m"', 1800), ("3600", "3600", 3600),
                               ("6h", '"6h"', 21600)),
}  # fmt: skip


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ministry.toml"
    path.write_text(text)
    return path


def _in_table(option: Option, toml_value: str) -> str:
    return f"[{option.table}]\n{option.key} = {toml_value}\n"


def test_every_setting_has_samples() -> None:
    """A new setting gets its three layers tested here, or this fails."""
    assert set(_SAMPLES) == {option.name for option in OPTIONS}


@pytest.mark.parametrize("option", [o for o in OPTIONS if o.table], ids=lambda o: o.name)
def test_precedence_flags_then_environment_then_file_then_default(
    tmp_path: Path, option: Option
) -> None:
    """For every setting: the flag wins over the variable, which wins over the file."""
    (flag, _, from_flag), (variable, _, from_variable), (_, toml, from_file) = _SAMPLES[option.name]
    file = read_config(_file(tmp_path, _in_table(option, toml)))
    flags, environ = {option.name: flag}, {option.variable: variable}

    def value(chosen_flags: dict[str, str], chosen_environ: dict[str, str]) -> Any:
        return getattr(settings_from(chosen_flags, chosen_environ, file), option.name)

    assert value(flags, environ) == from_flag
    assert value({}, environ) == from_variable
    assert value({}, {}) == from_file
    assert getattr(settings_from({}, {}, None), option.name) == getattr(Settings(), option.name)


def test_a_file_value_is_checked_like_a_flag_and_named_by_line(tmp_path: Path) -> None:
    """A bad value names the file, the line and the key."""
    path = _file(tmp_path, "# site settings\n\n[server]\nhost = '::1'\nport = 70000\n")
    file = read_config(path)
    with pytest.raises(SettingsError) as caught:
        settings_from({}, {}, file)
    assert str(caught.value).startswith(f"{path}, line 5: [server] port: 70000 is not a TCP port")
    # A flag that overrides the bad value hides it: the file's value is never used.
    assert settings_from({"port": "1"}, {}, file).port == 1


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("[server]\nhost = 'x'\nprot = 1\n", 3, "unknown key 'prot' in [server]; its keys are"),
        ("[server]\n[sever]\nport = 1\n", 2, "unknown table or key 'sever'"),
        ("port = 8080\n", 1, "unknown table or key 'port'"),
        ("server = 1\n", 1, "'server' must be a table"),
        ("[limits]\n\nmax_upload_size = ['1K']\n", 3, "must be a single value"),
        ("[upstream]\noffline = 'perhaps'\n", 2, "'perhaps' is not true or false"),
        ("[auth]\nlogin_failures = true\n", 2, "True is not a value this setting takes"),
        ("[server]\nprocesses = 0\n", 2, "not a number of processes"),
        ("[server]\ntrusted_proxies = ['10.0.0.1', 'localhost']\n", 2,
         "'localhost' is not an IP address"),
        ("[upstream]\nallow_internal = ['10.1.0.0/16', 'not a host']\n", 2,
         "'not a host' is neither a network like 10.1.0.0/16 nor a host name"),
        ("[server]\npublic_url = 'https://127.0.0.1/sub/'\n", 2,
         "not the address of a server"),
        ("[auth]\nsession_lifetime = '10s'\n", 2, "shorter than a minute"),
        ("[limits]\nclient_timeout = 0\n", 2, "0 is not a number of seconds from 1 to 3600"),
        ("[limits]\nclient_timeout = 7.5\n", 2, "7.5 is not a number of seconds"),
        ("[auth]\npassword_hash_cost = 'cheap'\n", 2, "not a password hash cost"),
        ("[server]\ntls_cert = 443\n", 2, "443 is not a file name"),
        ("[server]\ntls_key = ''\n", 2, "'' is not a file name"),
        ("[[index]]\nname = 'a'\n\n[[index]]\nname = 'b'\nprivate = 'yes'\n", 6,
         "[[index]] 'b': Index setting 'private' must be true or false"),
        ("[[index]]\nname = 'a'\ncolour = 'red'\n", 3, "unknown key 'colour'; the keys of"),
        ("[[index]]\nname = 'simple'\n", 2, "'simple' is a word the server's own URLs use"),
        ("[[index]]\nbases = ['main']\n", 1, "an [[index]] entry needs a 'name'"),
        ("[[index]]\nname = 'a'\n[[index]]\nname = 'a'\n", 3, "a second [[index]] entry"),
        ("index = 'a'\n", 1, "'index' must be a list of tables"),
    ],
)  # fmt: skip
def test_mistakes_name_the_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    """Unknown tables and keys, wrong types and bad index entries: the line and the key."""
    path = _file(tmp_path, text)
    with pytest.raises(SettingsError) as caught:
        settings_from({}, {}, read_config(path))
    assert str(caught.value).startswith(f"{path}, line {line}: "), caught.value
    assert message in str(caught.value)


def test_toml_syntax_errors_name_the_line(tmp_path: Path) -> None:
    """tomllib's own position is kept."""
    path = _file(tmp_path, "[server]\nport 8080\n")
    with pytest.raises(SettingsError, match=r"not valid TOML: .*line 2"):
        read_config(path)


def test_unreadable_file(tmp_path: Path) -> None:
    """A missing file or one that is not text: a message, not a traceback."""
    with pytest.raises(SettingsError, match="Cannot read the config file"):
        read_config(tmp_path / "missing.toml")
    path = tmp_path / "binary.toml"
    path.write_bytes(b"\xff\xfe[server]")
    with pytest.raises(SettingsError, match="not UTF-8"):
        read_config(path)


def test_lines_are_found_past_multiline_strings_and_in_array_tables(tmp_path: Path) -> None:
    """Keys inside a multi-line string are not keys; [[array]] entries are counted."""
    text = (
        "[[index]]\n"                            # 1
        "name = 'a'\n"                           # 2
        'description = """\n'                    # 3
        "private = not a key\n"                  # 4
        '"""\n'                                  # 5
        "[[index]]\n"                            # 6
        "name = 'b'\n"                           # 7
        "  private  =  'no'\n"                   # 8
    )  # fmt: skip
    path = _file(tmp_path, text)
    with pytest.raises(SettingsError) as caught:
        read_config(path)
    assert str(caught.value).startswith(f"{path}, line 8: [[index]] 'b'")


def test_index_entries_are_read_with_their_settings(tmp_path: Path) -> None:
    """[[index]] entries keep their order and what they say, checked as index settings."""
    path = _file(
        tmp_path,
        "[[index]]\nname = 'team/prod'\nuploaders = ['@release']\n\n"
        "[[index]]\nname = 'team/dev'\nbases = ['team/prod', 'main']\nprivate = true\n"
        "routes = ['acme-*=team/prod']\nmin_age = '1d'\n",
    )
    indexes = read_config(path).indexes
    assert [i.name for i in indexes] == ["team/prod", "team/dev"]
    assert indexes[0].values == {"uploaders": ["@release"]}
    assert index_settings(indexes[1].values) == {
        "bases": ("team/prod", "main"),
        "private": True,
        "routes": (Route("acme-*", "team/prod"),),
        "min_age": 86400,
    }
    assert indexes[1].where == f"{path}, line 5: [[index]] 'team/dev'"


def test_config_names_the_file_only_from_a_flag_or_variable(tmp_path: Path) -> None:
    """The file cannot name another file: --config and MINISTRY_CONFIG only."""
    path = _file(tmp_path, "[server]\nconfig = 'other.toml'\n")
    with pytest.raises(SettingsError, match="unknown key 'config'"):
        read_config(path)
    assert settings_from({}, {"MINISTRY_CONFIG": str(path)}).config == path


def test_an_index_entry_takes_a_cache_bound_and_a_bad_one_names_its_line(tmp_path: Path) -> None:
    """``max_cache_size`` in [[index]] is parsed like the API's; a bad size stops the read
    with the file, line and message."""
    good = _file(
        tmp_path, "[[index]]\nname = 'company'\nupstream = 'https://a.example/simple/'\n"
        "max_cache_size = '5G'\n",
    )  # fmt: skip
    (entry,) = read_config(good).indexes
    assert index_settings(entry.values)["max_cache_size"] == 5 * 1024**3
    bad = tmp_path / "bad.toml"
    bad.write_text("[[index]]\nname = 'company'\nmax_cache_size = 'huge'\n")
    with pytest.raises(SettingsError, match=r"line 3.*'huge' is not a size"):
        read_config(bad)
