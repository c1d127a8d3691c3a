"""Unit tests for ministry.core.index_settings: settings as the API and the CLI write them."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest

from ministry.core.index_rules import check_index_config
from ministry.core.index_settings import SETTINGS, index_settings, new_index, settings_document
from ministry.core.models import IndexConfig, Route
from ministry.errors import InvalidRequest


def test_settings_are_every_config_field_but_name_and_kind() -> None:
    """The name and kind are fixed at creation; every other field is a setting."""
    assert {f.name for f in fields(IndexConfig)} - SETTINGS == {"name", "kind"}


def test_nothing_given_is_nothing_set() -> None:
    """An empty mapping changes nothing."""
    assert index_settings({}) == {}


@pytest.mark.parametrize("name", ["bases", "readers", "uploaders", "admins"])
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a,b", ("a", "b")),
        ("a, b ,c", ("a", "b", "c")),
        ("a,,b,", ("a", "b")),
        ("a", ("a",)),
        ("", ()),
        (["a", "b"], ("a", "b")),
        ([" a ", "b"], ("a", "b")),
        (("a", "b"), ("a", "b")),
        (["a", "b", "a"], ("a", "b")),
        ("b,a,b", ("b", "a")),
        ([], ()),
    ],
)
def test_lists_from_strings_and_lists(name: str, value: object, expected: tuple[str, ...]) -> None:
    """Comma-separated text (CLI) or a JSON list; trimmed, first occurrence kept, order kept."""
    assert index_settings({name: value}) == {name: expected}


@pytest.mark.parametrize("value", [1, True, None, {"a": 1}, ["a", 2], [["a"]]])
def test_lists_of_anything_else_are_refused(value: object) -> None:
    """A list setting must be names."""
    with pytest.raises(InvalidRequest, match="'readers' must be a list of names"):
        index_settings({"readers": value})


def test_allow_inherit_patterns_are_lower_cased() -> None:
    """Patterns match normalized (lower-case) names."""
    assert index_settings({"allow_inherit": "Acme-*,Tool"}) == {"allow_inherit": ("acme-*", "tool")}
    assert index_settings({"allow_inherit": ["ACME-*"]}) == {"allow_inherit": ("acme-*",)}


@pytest.mark.parametrize("name", ["private", "allow_delete", "allow_overwrite"])
@pytest.mark.parametrize("value", [True, False])
def test_booleans(name: str, value: bool) -> None:
    """Flags are JSON booleans."""
    assert index_settings({name: value}) == {name: value}


@pytest.mark.parametrize("value", ["true", "yes", 1, 0, None, []])
def test_anything_else_is_not_a_boolean(value: object) -> None:
    """No guessing at "true" or 1."""
    with pytest.raises(InvalidRequest, match="'private' must be true or false"):
        index_settings({"private": value})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("acme-*=team/prod", (Route("acme-*", "team/prod"),)),
        (" ACME-* = team/prod ", (Route("acme-*", "team/prod"),)),
        ("acme-*=team/prod,internal-*=-", (Route("acme-*", "team/prod"), Route("internal-*", "-"))),
        (["acme-*=team/prod", "x=-"], (Route("acme-*", "team/prod"), Route("x", "-"))),
        ([{"pattern": "Acme-*", "base": "team/prod"}], (Route("acme-*", "team/prod"),)),
        (
            [{"pattern": "a", "base": "main"}, "b=-"],
            (Route("a", "main"), Route("b", "-")),
        ),
        ([], ()),
        ("", ()),
    ],
)
def test_routes_from_text_and_objects(value: object, expected: tuple[Route, ...]) -> None:
    """``PATTERN=INDEX`` text, or ``{"pattern", "base"}`` objects; patterns lower-cased."""
    assert index_settings({"routes": value}) == {"routes": expected}


@pytest.mark.parametrize(
    "value",
    [
        "acme-*",
        ["acme-*"],
        [{"pattern": "acme-*"}],
        [{"base": "main"}],
        [{"pattern": 1, "base": "main"}],
        [1],
        [None],
        7,
    ],
)
def test_malformed_routes_are_refused(value: object) -> None:
    """A rule without both a pattern and a base is refused with the form to use."""
    with pytest.raises(InvalidRequest, match=r"routing rule is 'PATTERN=INDEX'|must be a list"):
        index_settings({"routes": value})


def test_description_is_text() -> None:
    """Free text, kept as given."""
    assert index_settings({"description": " Team builds "}) == {"description": " Team builds "}
    with pytest.raises(InvalidRequest, match="'description' must be text"):
        index_settings({"description": 5})


@pytest.mark.parametrize("names", [["bogus"], ["name"], ["kind"], ["bogus", "Private", "readers"]])
def test_unknown_settings_are_refused(names: list[str]) -> None:
    """Unknown names, and the fixed name and kind, are refused all together by name."""
    values: dict[str, Any] = dict.fromkeys(names, "x")
    unknown = sorted(n for n in names if n != "readers")
    with pytest.raises(InvalidRequest) as caught:
        index_settings(values)
    assert caught.value.message == f"Unknown index settings: {', '.join(unknown)}."


def test_several_settings_at_once() -> None:
    """Every setting converted in one call."""
    given = {
        "bases": "team/prod,main",
        "readers": ["alice", "@team"],
        "uploaders": "alice",
        "admins": [],
        "allow_inherit": "acme-*",
        "private": True,
        "allow_delete": False,
        "allow_overwrite": True,
        "routes": "acme-*=team/prod",
        "description": "dev builds",
    }
    assert IndexConfig("team/dev", **index_settings(given)) == IndexConfig(
        "team/dev",
        bases=("team/prod", "main"),
        readers=("alice", "@team"),
        uploaders=("alice",),
        admins=(),
        allow_inherit=("acme-*",),
        private=True,
        allow_delete=False,
        allow_overwrite=True,
        routes=(Route("acme-*", "team/prod"),),
        description="dev builds",
    )


def test_settings_document_shows_every_field() -> None:
    """The JSON form: lists as lists, routes as objects."""
    config = IndexConfig(
        "team/dev",
        bases=("team/prod",),
        private=True,
        readers=("@team",),
        routes=(Route("acme-*", "team/prod"),),
        description="dev",
    )
    assert settings_document(config) == {
        "name": "team/dev",
        "kind": "hosted",
        "bases": ["team/prod"],
        "readers": ["@team"],
        "uploaders": [],
        "admins": [],
        "allow_inherit": [],
        "private": True,
        "allow_delete": False,
        "allow_overwrite": False,
        "routes": [{"pattern": "acme-*", "base": "team/prod"}],
        "description": "dev",
        "upstream": None,
        "upstreams": [],
        "page_ttl": 300,
        "min_age": 0,
        "min_age_exempt": [],
        "max_cache_size": None,
    }


@pytest.mark.parametrize(
    "config",
    [
        IndexConfig("main"),
        IndexConfig(
            "team/dev",
            bases=("team/prod", "main"),
            private=True,
            readers=("alice", "@readers"),
            uploaders=("@all",),
            admins=("bob",),
            allow_delete=True,
            allow_overwrite=True,
            allow_inherit=("acme-*", "tool"),
            routes=(Route("acme-*", "team/prod"), Route("internal-*", "-")),
            description="dev builds",
        ),
    ],
)
def test_settings_document_round_trip(config: IndexConfig) -> None:
    """The document, less its fixed name and kind, gives back the same settings."""
    document = settings_document(config)
    name, kind = document.pop("name"), document.pop("kind")
    assert IndexConfig(name=name, kind=kind, **index_settings(document)) == config


@pytest.mark.parametrize(
    ("value", "expected"),
    [("500M", 500 * 1024**2), ("10GiB", 10 * 1024**3), (4096, 4096), (None, None), ("none", None)],
)
def test_max_cache_size_takes_a_size_bytes_or_none(value: object, expected: int | None) -> None:
    """The API's JSON and the CLI's text go through the same parser as the server setting."""
    assert index_settings({"max_cache_size": value}) == {"max_cache_size": expected}


@pytest.mark.parametrize("value", ["lots", "-1", -1, True, 1.5, ["5G"]])
def test_max_cache_size_refuses_what_is_no_size(value: object) -> None:
    """A bad size is refused with the setting's name, and nothing else is read."""
    with pytest.raises(InvalidRequest, match="max_cache_size"):
        index_settings({"max_cache_size": value})


def test_max_cache_size_round_trips_on_a_proxy_and_is_refused_on_a_hosted_index() -> None:
    """A proxy keeps its bound; a hosted index has nothing to evict, so it takes none."""
    proxy = new_index(
        "mirror/upstream", {"upstream": "https://pypi.example/simple/", "max_cache_size": "5G"}
    )
    assert proxy.max_cache_size == 5 * 1024**3
    document = settings_document(proxy)
    assert document["max_cache_size"] == 5 * 1024**3
    document.pop("name"), document.pop("kind")
    document["upstream"] = proxy.upstream
    assert IndexConfig(name="mirror/upstream", kind="proxy", **index_settings(document)) == proxy
    check_index_config(proxy, {})
    hosted = new_index("team", {"max_cache_size": "5G"})
    with pytest.raises(InvalidRequest, match=r"hosted.*max_cache_size"):
        check_index_config(hosted, {})
