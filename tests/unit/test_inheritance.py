"""Unit tests for ministry.core.inheritance: search order, owners, allow-inherit and routes.

The rule under test (module docstring): an index is searched before its bases, bases
in the order listed, depth first; the first index that has the project owns it and
ends the search for that name, unless it allows the name to inherit. An owner the
reader may not see contributes nothing but still ends the search. Routing rules
send a name to one base, or ("-") to none.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import pytest

from ministry.core.inheritance import contributors, matches, resolution_order
from ministry.core.models import IndexConfig, Route


def configs(*indexes: IndexConfig) -> dict[str, IndexConfig]:
    """A name-to-settings mapping, as the index service keeps it."""
    return {config.name: config for config in indexes}


def found(
    name: str,
    indexes: dict[str, IndexConfig],
    has: Iterable[str],
    *,
    hidden: Collection[str] = (),
    project: str = "acme-lib",
) -> list[str]:
    """``contributors`` for a reader who may read every index except ``hidden``."""
    readable = {n: c for n, c in indexes.items() if n not in hidden}
    return contributors(name, project, readable, set(has))


# A team layout: dev inherits from prod and main; prod from main.
TEAM = configs(
    IndexConfig("main"),
    IndexConfig("team/prod", bases=("main",)),
    IndexConfig("team/dev", bases=("team/prod", "main")),
)


# -- matches ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patterns", "name", "expected"),
    [
        (["acme-*"], "acme-lib", True),
        (["acme-*"], "acme", False),
        (["acme-?ib"], "acme-lib", True),
        (["acme-lib"], "acme-lib", True),
        (["acme-lib"], "acme-lib2", False),
        (["other", "acme-*"], "acme-x", True),
        ([], "acme-lib", False),
        (["[ab]cme"], "bcme", True),
        (["ACME-*"], "acme-lib", False),  # case-sensitive: patterns are stored lower-case
    ],
)
def test_matches(patterns: list[str], name: str, expected: bool) -> None:
    """Shell-style patterns over the normalized name, case-sensitive."""
    assert matches(patterns, name) is expected


# -- resolution_order ---------------------------------------------------------------------


def test_resolution_order_is_the_index_then_its_bases() -> None:
    """The index itself first, then each base once (main is not repeated)."""
    assert resolution_order("team/dev", TEAM) == ["team/dev", "team/prod", "main"]
    assert resolution_order("team/prod", TEAM) == ["team/prod", "main"]
    assert resolution_order("main", TEAM) == ["main"]


def test_resolution_order_is_depth_first_in_listed_order() -> None:
    """A base's own bases come before the next base of the index."""
    indexes = configs(
        IndexConfig("a", bases=("b", "c")),
        IndexConfig("b", bases=("d",)),
        IndexConfig("c", bases=("e",)),
        IndexConfig("d"),
        IndexConfig("e"),
    )
    assert resolution_order("a", indexes) == ["a", "b", "d", "c", "e"]


def test_resolution_order_lists_a_shared_base_after_every_index_inheriting_it() -> None:
    """Diamond: the shared base appears once, after both indexes that inherit from it."""
    indexes = configs(
        IndexConfig("top", bases=("left", "right")),
        IndexConfig("left", bases=("root",)),
        IndexConfig("right", bases=("root",)),
        IndexConfig("root"),
    )
    assert resolution_order("top", indexes) == ["top", "left", "right", "root"]


def test_cycles_are_harmless() -> None:
    """A cycle (which index_rules refuses) cannot make the search loop."""
    indexes = configs(
        IndexConfig("a", bases=("b",)),
        IndexConfig("b", bases=("a",)),
        IndexConfig("c", bases=("c",)),
    )
    assert resolution_order("a", indexes) == ["a", "b"]
    assert resolution_order("b", indexes) == ["b", "a"]
    assert resolution_order("c", indexes) == ["c"]
    assert found("a", indexes, has={"b"}) == ["b"]
    assert found("a", indexes, has=set()) == []


def test_unknown_indexes_are_skipped() -> None:
    """A base that no longer exists, or an unknown starting name, adds nothing."""
    indexes = configs(IndexConfig("a", bases=("gone", "b")), IndexConfig("b"))
    assert resolution_order("a", indexes) == ["a", "b"]
    assert resolution_order("nope", indexes) == []
    assert found("nope", indexes, has={"a", "b"}) == []


# -- contributors: owners -----------------------------------------------------------------


def test_nobody_has_the_project() -> None:
    """No files from anywhere."""
    assert found("team/dev", TEAM, has=set()) == []


@pytest.mark.parametrize("owner", ["team/dev", "team/prod", "main"])
def test_the_only_index_that_has_the_project_contributes(owner: str) -> None:
    """Wherever along the order the project is, it is found."""
    assert found("team/dev", TEAM, has={owner}) == [owner]


def test_own_project_hides_the_bases() -> None:
    """Dependency confusion: a local project hides the same name in every base."""
    assert found("team/dev", TEAM, has={"team/dev", "team/prod", "main"}) == ["team/dev"]
    assert found("team/prod", TEAM, has={"team/prod", "main"}) == ["team/prod"]


def test_nearest_owner_wins_below_the_index() -> None:
    """When the index has no files of its own, the nearest base that has them owns it."""
    assert found("team/dev", TEAM, has={"team/prod", "main"}) == ["team/prod"]


def test_first_owner_ends_the_search_for_later_sibling_bases() -> None:
    """A project in the first base hides the same name in a later base that is not its own.

    ``dev`` inherits from ``prod`` and then ``upstream``; ``prod`` does not inherit from
    ``upstream`` at all. A private ``acme-lib`` in ``prod`` still hides the ``acme-lib``
    that someone published on ``upstream``.
    """
    indexes = configs(
        IndexConfig("upstream"),
        IndexConfig("prod"),
        IndexConfig("dev", bases=("prod", "upstream")),
    )
    assert found("dev", indexes, has={"prod", "upstream"}) == ["prod"]
    assert found("dev", indexes, has={"upstream"}) == ["upstream"]


def test_owner_deep_in_the_first_base_hides_a_later_sibling() -> None:
    """The search ends at the first owner however deep it is in an earlier base."""
    indexes = configs(
        IndexConfig("dev", bases=("a", "upstream")),
        IndexConfig("a", bases=("b",)),
        IndexConfig("b"),
        IndexConfig("upstream"),
    )
    assert found("dev", indexes, has={"b", "upstream"}) == ["b"]


def test_a_project_hides_its_own_bases_whatever_order_an_inheriting_index_lists_them() -> None:
    """A project in ``team/prod`` hides ``upstream``'s, also when ``dev`` lists upstream first.

    ``team/prod`` inherits from ``upstream``, so its private ``acme-lib`` hides the
    ``acme-lib`` on ``upstream`` (issue 3: "a project that exists in an index hides the
    same name in all its bases"; module docstring: "whatever order the bases come
    in"). ``dev`` listing ``upstream`` before ``team/prod`` must not undo that.
    """
    indexes = configs(
        IndexConfig("upstream"),
        IndexConfig("team/prod", bases=("upstream",)),
        IndexConfig("dev", bases=("upstream", "team/prod")),
    )
    assert found("dev", indexes, has={"team/prod", "upstream"}) == ["team/prod"]


# -- contributors: allow_inherit ----------------------------------------------------------


def test_allow_inherit_lets_the_bases_through() -> None:
    """An index that allows a name to inherit shows its own files and the base's."""
    indexes = {
        **TEAM,
        "team/dev": IndexConfig("team/dev", bases=("team/prod", "main"), allow_inherit=("acme-*",)),
    }
    assert found("team/dev", indexes, has={"team/dev", "team/prod"}) == ["team/dev", "team/prod"]


def test_allow_inherit_pattern_that_does_not_match_still_hides() -> None:
    """Only names matching a pattern are let through."""
    indexes = {
        **TEAM,
        "team/dev": IndexConfig("team/dev", bases=("team/prod", "main"), allow_inherit=("other",)),
    }
    assert found("team/dev", indexes, has={"team/dev", "team/prod"}) == ["team/dev"]


def test_allow_inherit_stops_at_the_next_owner_that_does_not_allow_it() -> None:
    """dev allows inheriting, prod does not: main's files stay hidden behind prod's."""
    indexes = {
        **TEAM,
        "team/dev": IndexConfig("team/dev", bases=("team/prod", "main"), allow_inherit=("acme-*",)),
    }
    has = {"team/dev", "team/prod", "main"}
    assert found("team/dev", indexes, has=has) == ["team/dev", "team/prod"]


def test_allow_inherit_on_every_owner_collects_them_all_in_order() -> None:
    """Each owner that allows inheriting passes the search on; order is nearest first."""
    indexes = configs(
        IndexConfig("main"),
        IndexConfig("team/prod", bases=("main",), allow_inherit=("acme-lib",)),
        IndexConfig("team/dev", bases=("team/prod", "main"), allow_inherit=("acme-*",)),
    )
    has = {"team/dev", "team/prod", "main"}
    assert found("team/dev", indexes, has=has) == ["team/dev", "team/prod", "main"]


def test_allow_inherit_of_an_index_without_the_project_changes_nothing() -> None:
    """allow_inherit matters only for an index that has the project itself."""
    indexes = {
        **TEAM,
        "team/dev": IndexConfig("team/dev", bases=("team/prod", "main"), allow_inherit=("acme-*",)),
    }
    assert found("team/dev", indexes, has={"team/prod", "main"}) == ["team/prod"]


# -- contributors: routing rules ----------------------------------------------------------


def test_route_sends_a_name_to_one_base_only() -> None:
    """``acme-*`` only from team/prod: main (listed first) is never asked for it."""
    indexes = configs(
        IndexConfig("main"),
        IndexConfig("team/prod"),
        IndexConfig(
            "team/dev",
            bases=("main", "team/prod"),
            routes=(Route("acme-*", "team/prod"),),
        ),
    )
    assert found("team/dev", indexes, has={"main", "team/prod"}) == ["team/prod"]
    assert found("team/dev", indexes, has={"main"}) == []
    # Names the rule does not match follow the bases in order.
    assert found("team/dev", indexes, has={"main", "team/prod"}, project="other") == ["main"]


def test_route_target_keeps_its_own_bases() -> None:
    """The routed base is searched as usual: its own bases follow it."""
    indexes = configs(
        IndexConfig("upstream"),
        IndexConfig("team/prod", bases=("upstream",)),
        IndexConfig("team/dev", bases=("upstream",), routes=(Route("acme-*", "team/prod"),)),
    )
    assert found("team/dev", indexes, has={"upstream"}) == ["upstream"]


def test_route_to_dash_means_no_base_at_all() -> None:
    """``-``: matching names are only ever taken from the index itself."""
    indexes = configs(
        IndexConfig("main"),
        IndexConfig("team/dev", bases=("main",), routes=(Route("acme-*", "-"),)),
    )
    assert found("team/dev", indexes, has={"main"}) == []
    assert found("team/dev", indexes, has={"team/dev", "main"}) == ["team/dev"]
    assert found("team/dev", indexes, has={"main"}, project="other") == ["main"]


def test_route_applies_after_allow_inherit() -> None:
    """An owner that allows inheriting passes the search on through its routing rule."""
    indexes = configs(
        IndexConfig("main"),
        IndexConfig("team/prod"),
        IndexConfig(
            "team/dev",
            bases=("main", "team/prod"),
            allow_inherit=("acme-*",),
            routes=(Route("acme-*", "team/prod"),),
        ),
    )
    has = {"team/dev", "main", "team/prod"}
    assert found("team/dev", indexes, has=has) == ["team/dev", "team/prod"]


def test_first_matching_route_wins() -> None:
    """Rules are tried in order."""
    indexes = configs(
        IndexConfig("a"),
        IndexConfig("b"),
        IndexConfig("top", bases=("a", "b"), routes=(Route("acme-lib", "b"), Route("acme-*", "-"))),
    )
    assert found("top", indexes, has={"a", "b"}) == ["b"]
    assert found("top", indexes, has={"a", "b"}, project="acme-x") == []


def test_route_of_a_base_applies_when_searching_through_it() -> None:
    """Rules of every index along the way apply, not only those of the starting index."""
    indexes = configs(
        IndexConfig("upstream"),
        IndexConfig("team/prod", bases=("upstream",), routes=(Route("acme-*", "-"),)),
        IndexConfig("team/dev", bases=("team/prod",)),
    )
    assert found("team/dev", indexes, has={"upstream"}) == []
    assert found("team/dev", indexes, has={"upstream"}, project="numpy") == ["upstream"]


# -- contributors: visibility -------------------------------------------------------------


def test_unreadable_owner_is_absent_for_its_non_readers() -> None:
    """A private project blocks a public one of that name for its readers only.

    For everyone else the private index is not there: its names neither show nor
    hide anything, so nobody learns from a 404 what it holds.
    """
    indexes = configs(
        IndexConfig("upstream"),
        IndexConfig("secret", private=True),
        IndexConfig("dev", bases=("secret", "upstream")),
    )
    assert found("dev", indexes, has={"secret", "upstream"}, hidden={"secret"}) == ["upstream"]
    assert found("dev", indexes, has={"upstream"}, hidden={"secret"}) == ["upstream"]
    assert found("dev", indexes, has={"secret", "upstream"}) == ["secret"]


def test_bases_reached_only_through_an_unreadable_index_are_absent_too() -> None:
    """What a private index inherits comes with it: a non-reader sees none of it."""
    indexes = configs(
        IndexConfig("main"),
        IndexConfig("secret", private=True, bases=("main",)),
        IndexConfig("dev", bases=("secret",)),
    )
    assert found("dev", indexes, has={"main"}, hidden={"secret"}) == []
    assert found("dev", indexes, has={"main"}) == ["main"]
