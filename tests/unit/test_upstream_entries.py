"""The upstreams of a proxy index as written, stored before and after there could be several,
and which of them a project name is asked of."""

from __future__ import annotations

import json
import sqlite3

import pytest

from ministry.core.index_settings import index_settings, new_index, settings_document
from ministry.core.models import IndexConfig, Upstream
from ministry.core.records import from_record
from ministry.core.upstream_entries import (
    format_upstream,
    keeping_secrets,
    parse_upstream,
    parse_upstreams,
    routed,
)
from ministry.core.upstream_reach import Reach
from ministry.errors import InvalidRequest
from ministry.services.upstream import base_for
from ministry.storage.sqlite.rows import index_json, index_of

CORP = "https://u:pw@corp.example/simple/"


def test_an_entry_is_a_url_with_options_or_a_table() -> None:
    assert parse_upstream("https://a.example/simple/") == Upstream("https://a.example/simple/")
    assert parse_upstream(f"  {CORP}  only=Acme-*,corp-lib ttl=5m ") == Upstream(
        CORP, ("acme-*", "corp-lib"), 300
    )
    assert parse_upstream({"url": CORP, "only": ["acme-*"], "page_ttl": 60}) == Upstream(
        CORP, ("acme-*",), 60
    )
    assert parse_upstream({"url": CORP, "only": "a-*,b-*"}).only == ("a-*", "b-*")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("https://a.example/ mirror=yes", "Unknown upstream option 'mirror=yes'"),
        ("https://a.example/ only=", "Unknown upstream option 'only='"),
        ("https://a.example/ ttl=soon", "Upstream ttl 'soon'"),
        ({"url": "https://a.example/", "ttl": 5}, "An upstream is 'URL"),
        ({"only": ["a-*"]}, "An upstream is 'URL"),
        ({"url": "https://a.example/", "only": [1]}, "'only' must be a list"),
        ("", "An upstream is 'URL"),
        (7, "An upstream is 'URL"),
    ],
)
def test_a_bad_entry_says_how_to_write_one(value: object, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_upstream(value)
    assert message in caught.value.message


def test_a_list_is_lines_semicolons_or_a_sequence_and_names_each_url_once() -> None:
    one, two = "https://a.example/simple/", f"{CORP} only=acme-*"
    expected = (Upstream(one), Upstream(CORP, ("acme-*",)))
    assert parse_upstreams(f"{one}\n{two}\n") == expected
    assert parse_upstreams(f"{one};{two}") == expected
    assert parse_upstreams([one, {"url": CORP, "only": ["acme-*"]}]) == expected
    assert parse_upstreams(None) == parse_upstreams("") == ()
    with pytest.raises(InvalidRequest) as caught:
        parse_upstreams([CORP, f"{CORP} only=x"])
    assert "'https://u:***@corp.example/simple/' is listed twice" in caught.value.message


def test_shown_entries_mask_passwords_and_read_back_as_the_real_ones() -> None:
    current = (Upstream("https://a.example/"), Upstream(CORP, ("acme-*",), 60))
    shown = [format_upstream(u) for u in current]
    assert shown == ["https://a.example/", "https://u:***@corp.example/simple/ only=acme-* ttl=60s"]
    # Sent back as shown, reordered, with another pattern: the password stays.
    back = parse_upstreams(f"{shown[1]} only=acme-*,corp-*\n{shown[0]}")
    assert keeping_secrets(back, current) == (
        Upstream(CORP, ("acme-*", "corp-*"), 60),
        Upstream("https://a.example/"),
    )


def test_a_routed_name_goes_to_its_upstreams_alone() -> None:
    public, mirror = Upstream("https://pypi.example/"), Upstream("https://m.example/")
    corp = Upstream(CORP, ("acme-*",))
    other = Upstream("https://other.example/", ("acme-*", "corp-*"))
    upstreams = (public, corp, mirror, other)
    assert routed(upstreams, "acme-lib") == (corp, other)
    assert routed(upstreams, "corp-x") == (other,)
    assert routed(upstreams, "requests") == (public, mirror)
    assert routed((corp,), "requests") == ()


def test_settings_take_one_upstream_a_list_or_a_document_as_shown() -> None:
    created = new_index("company", {"upstream": "https://a.example/simple/"})
    assert created.kind == "proxy" and created.upstream == "https://a.example/simple/"
    both = index_settings({"upstream": [CORP, "https://b.example/"]})
    assert both["upstreams"] == (Upstream(CORP), Upstream("https://b.example/"))
    config = IndexConfig("p", "proxy", upstreams=(Upstream(CORP, ("acme-*",)), Upstream("x")))
    document = settings_document(config)
    assert document["upstream"] == "https://u:***@corp.example/simple/"
    sent = {k: v for k, v in document.items() if k not in ("name", "kind")}
    assert index_settings(sent)["upstreams"] == (
        Upstream("https://u:***@corp.example/simple/", ("acme-*",)),
        Upstream("x"),
    )
    with pytest.raises(InvalidRequest, match="not both"):
        index_settings({"upstream": "https://a.example/", "upstreams": ["https://b.example/"]})


def test_an_index_stored_with_one_upstream_reads_as_a_list_of_one() -> None:
    """Settings kept before there could be several upstreams, in SQLite and as a record."""
    config = IndexConfig("upstream", "proxy", upstreams=(Upstream(CORP, ("a-*",), 9),))
    stored = json.loads(index_json(config))
    assert stored["upstreams"] == [{"url": CORP, "only": ["a-*"], "page_ttl": 9}]
    assert stored["upstream"] == CORP  # what a server of an earlier version reads
    old = {**stored, "upstream": CORP}
    del old["upstreams"]
    connection = sqlite3.connect(":memory:")
    connection.row_factory = sqlite3.Row
    row = connection.execute(
        "SELECT 'upstream' AS name, ? AS config", (json.dumps(old),)
    ).fetchone()
    assert index_of(row).upstreams == (Upstream(CORP),)
    assert (
        index_of(
            connection.execute(
                "SELECT 'upstream' AS name, ? AS config", (index_json(config),)
            ).fetchone()
        )
        == config
    )
    record = {"name": "upstream", "kind": "proxy", "upstream": CORP}
    assert from_record(IndexConfig, record).upstreams == (Upstream(CORP),)
    assert from_record(IndexConfig, {"name": "main", "upstream": None}).upstreams == ()
    both = {**record, "upstreams": [{"url": "https://b.example/"}, {"url": CORP}]}
    assert from_record(IndexConfig, both).upstream == "https://b.example/"


def test_a_file_is_fetched_under_the_rule_of_the_upstream_on_its_host() -> None:
    """With several upstreams, a file on another host gets no upstream's own host to
    reach (only what --upstream-allow-internal allows); with one, that one's rule."""
    first, second = "http://127.0.0.1:8080/simple/", "http://127.0.0.1/simple/"
    several = IndexConfig("p", "proxy", upstreams=(Upstream(first), Upstream(second)))
    assert base_for(several, "http://127.0.0.1:80/files/a.whl") == second
    assert base_for(several, "http://127.0.0.1:8080/files/a.whl") == first
    assert base_for(several, "https://files.example/a.whl") == ""
    assert Reach.of(base_for(several, "http://127.0.0.1:9/a.whl"), ()).own is None
    one = IndexConfig("p", "proxy", upstreams=(Upstream(first),))
    assert base_for(one, "https://files.example/a.whl") == first
