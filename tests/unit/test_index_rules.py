"""Unit tests for ministry.core.index_rules: valid index names and settings."""

from __future__ import annotations

import pytest

from ministry.core.index_rules import (
    RESERVED_NAMES,
    check_index_config,
    check_index_name,
    check_principal,
)
from ministry.core.models import IndexConfig, Route
from ministry.errors import InvalidRequest

EXISTING = {
    "main": IndexConfig("main"),
    "team/prod": IndexConfig("team/prod", bases=("main",)),
}


# -- names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["main", "dev", "team/dev", "a", "0", "a.b_c-d", "team-1/dev.2", "x" * 100, "a/b"],
)
def test_valid_index_names(name: str) -> None:
    """Lower-case URL-safe parts, one or two joined by one slash."""
    assert check_index_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Dev",
        "team/Dev",
        "a/b/c",
        "/dev",
        "dev/",
        "team//dev",
        "-dev",
        ".dev",
        "_dev",
        "team/-dev",
        "dev env",
        "dév",
        "dev\n",
        "dev?x",
        "x" * 101,
    ],
)
def test_invalid_index_names(name: str) -> None:
    """Anything else is refused with a message that says what a name may hold."""
    with pytest.raises(InvalidRequest, match="use lower-case letters, digits"):
        check_index_name(name)


@pytest.mark.parametrize(
    "name",
    ["simple", "packages", "pypi", "project", "static", "legacy", "dist", "json", "files", "api"],
)
def test_reserved_words_are_refused(name: str) -> None:
    """First path segments the server uses, and words that follow an index name."""
    with pytest.raises(InvalidRequest, match=rf"{name!r} is a word the server's own URLs use"):
        check_index_name(name)


@pytest.mark.parametrize("name", ["team/simple", "simple/team", "team/packages", "pypi/x"])
def test_reserved_words_are_refused_in_either_part(name: str) -> None:
    """``team/simple`` would make ``/team/simple/`` ambiguous."""
    with pytest.raises(InvalidRequest, match="is a word the server's own URLs use"):
        check_index_name(name)


def test_reserved_words_cover_the_issue_list() -> None:
    """Issue 3 names these; "-" is the management prefix."""
    assert {"simple", "packages", "pypi", "project", "static", "legacy", "dist", "-"} <= (
        RESERVED_NAMES
    )


def test_words_containing_a_reserved_word_are_fine() -> None:
    """Only whole parts clash."""
    assert check_index_name("simpler") == "simpler"
    assert check_index_name("team/my-packages") == "team/my-packages"


def test_long_invalid_names_are_cut_in_the_message() -> None:
    """A hostile name does not fill the message."""
    with pytest.raises(InvalidRequest) as caught:
        check_index_name("X" * 10_000)
    assert len(caught.value.message) < 400


# -- principals ---------------------------------------------------------------------------


@pytest.mark.parametrize("principal", ["alice", "Alice.B_c-1", "@team", "@all", "a" * 64, "0"])
def test_valid_principals(principal: str) -> None:
    """User names and @group names."""
    assert check_principal(principal) == principal


@pytest.mark.parametrize(
    "principal", ["", "@", "@@team", "-alice", "al ice", "alice,bob", "a" * 65, "alice/x", "@-x"]
)
def test_invalid_principals(principal: str) -> None:
    """Anything that is not one name."""
    with pytest.raises(InvalidRequest, match="write a user name, or @group"):
        check_principal(principal)


# -- whole configurations -----------------------------------------------------------------


def test_a_valid_configuration_passes() -> None:
    """Bases, principals, patterns and routes that all make sense."""
    config = IndexConfig(
        "team/dev",
        bases=("team/prod", "main"),
        readers=("alice", "@readers"),
        uploaders=("@all",),
        admins=("bob",),
        allow_inherit=("acme-*", "tool?", "[ab]-lib"),
        routes=(Route("acme-*", "team/prod"), Route("internal-*", "-")),
    )
    check_index_config(config, EXISTING)


def test_name_is_checked() -> None:
    """A whole configuration with a bad name is refused."""
    with pytest.raises(InvalidRequest, match="Invalid index name"):
        check_index_config(IndexConfig("team/simple"), EXISTING)


def test_bases_must_exist() -> None:
    """A base that is not an index is refused, naming it."""
    with pytest.raises(InvalidRequest, match=r"'team/dev' cannot inherit from 'nope': no such"):
        check_index_config(IndexConfig("team/dev", bases=("main", "nope")), EXISTING)


def test_an_index_cannot_be_its_own_base() -> None:
    """Even when it already exists."""
    configs = {**EXISTING, "team/dev": IndexConfig("team/dev")}
    with pytest.raises(InvalidRequest, match="'team/dev' cannot inherit from itself"):
        check_index_config(IndexConfig("team/dev", bases=("team/dev",)), configs)


def test_cycles_are_refused() -> None:
    """main -> team/prod -> main would loop: refused, naming the base."""
    changed = IndexConfig("main", bases=("team/prod",))
    with pytest.raises(InvalidRequest, match=r"'team/prod' inherits from it"):
        check_index_config(changed, EXISTING)


def test_longer_cycles_are_refused() -> None:
    """a -> b -> c -> a."""
    configs = {
        "a": IndexConfig("a"),
        "b": IndexConfig("b", bases=("a",)),
        "c": IndexConfig("c", bases=("b",)),
    }
    with pytest.raises(InvalidRequest, match="inherits from it"):
        check_index_config(IndexConfig("a", bases=("c",)), configs)


def test_changing_an_index_uses_its_new_settings() -> None:
    """The changed index replaces its old settings in the check (``configs`` may include it)."""
    configs = {
        "a": IndexConfig("a"),
        "b": IndexConfig("b", bases=("a",)),
    }
    # b drops a, so a may now inherit from b.
    check_index_config(IndexConfig("b"), configs)
    check_index_config(IndexConfig("a", bases=("b",)), {**configs, "b": IndexConfig("b")})


def test_diamonds_are_not_cycles() -> None:
    """Two paths to the same base are fine."""
    check_index_config(IndexConfig("team/dev", bases=("team/prod", "main")), EXISTING)


@pytest.mark.parametrize("field", ["readers", "uploaders", "admins"])
def test_principals_are_checked_in_every_list(field: str) -> None:
    """Each of the three lists."""
    config = IndexConfig("x", **{field: ("alice", "bad name")})  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match="Invalid user or group 'bad name'"):
        check_index_config(config, EXISTING)


@pytest.mark.parametrize("pattern", ["Acme-*", "acme lib", "acme/lib", "", "acme,lib", "a+b"])
def test_bad_allow_inherit_patterns_are_refused(pattern: str) -> None:
    """Patterns are normalized names with wildcards."""
    with pytest.raises(InvalidRequest, match="Invalid project pattern"):
        check_index_config(IndexConfig("x", allow_inherit=(pattern,)), EXISTING)


def test_bad_route_patterns_are_refused() -> None:
    """Route patterns follow the same rule."""
    config = IndexConfig("x", bases=("main",), routes=(Route("ACME", "main"),))
    with pytest.raises(InvalidRequest, match="Invalid project pattern 'ACME'"):
        check_index_config(config, EXISTING)


def test_route_targets_must_be_indexes_or_dash() -> None:
    """A route to an unknown index is refused; "-" (no base) is fine."""
    check_index_config(IndexConfig("x", routes=(Route("acme-*", "-"),)), EXISTING)
    check_index_config(IndexConfig("x", routes=(Route("acme-*", "team/prod"),)), EXISTING)
    with pytest.raises(InvalidRequest, match=r"Routing rule 'acme-\*': no index 'nope'"):
        check_index_config(IndexConfig("x", routes=(Route("acme-*", "nope"),)), EXISTING)
