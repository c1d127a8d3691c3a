"""The compact search words find exactly what a plain map from word to projects finds,
give back every summary and version, and stay right through changes and refreezing."""

from __future__ import annotations

import random

import pytest

from ministry.core import search_index
from ministry.core.search import name_words, summary_words
from ministry.core.search_index import FrozenWords, SearchWords, SearchWordsBuilder

_WORDS = ("django", "rest", "framework", "parse", "parser", "pars", "yaml", "py", "tool",
          "async", "http", "client", "zeta", "über", "naïve", "x1", "2fa")  # fmt: skip


def _rows(count: int, seed: int) -> dict[str, tuple[str, str]]:
    """Generated projects: name -> (summary, version), names sharing parts and summaries
    sharing words, some of them outside ASCII."""
    rng = random.Random(seed)
    rows: dict[str, tuple[str, str]] = {}
    while len(rows) < count:
        parts = rng.sample(_WORDS[:10], rng.randint(1, 3))
        name = "-".join([*parts, str(rng.randrange(count))]).replace("ü", "u")
        summary = " ".join(rng.choices(_WORDS, k=rng.randint(0, 6))).title()
        rows[name] = (summary, f"{rng.randint(0, 9)}.{rng.randint(0, 20)}")
    return rows


def _reference(rows: dict[str, tuple[str, str]], words: list[str]) -> set[str]:
    """What the words must find: every query word starts a word of the name or summary."""
    return {
        name
        for name, (summary, _version) in rows.items()
        if all(
            any(w.startswith(word) for w in name_words(name) | summary_words(summary))
            for word in words
        )
    }


_QUERIES = [["p"], ["pars"], ["parser"], ["django", "rest"], ["py", "y"], ["1"], ["uber"],
            ["über"], ["na"], ["zeta", "2"], ["nothing"], ["django-rest"], ["x"],
            ["2fa"]]  # fmt: skip


@pytest.fixture(autouse=True)
def small_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    """Segments of 97 projects, so that a few hundred projects span several of them."""
    monkeypatch.setattr(search_index, "SEGMENT", 97)


def test_frozen_words_match_a_plain_word_map_and_give_back_every_row() -> None:
    rows = _rows(700, seed=1)
    words = SearchWords.of((name, version, summary) for name, (summary, version) in rows.items())
    for query in [*_QUERIES, *([name] for name in list(rows)[:20])]:
        assert words.matching(query) == _reference(rows, query), query
    for name, (summary, version) in rows.items():
        assert words.entry(name) == (summary, version)
        assert words.summary(name) == summary and words.version(name) == version
    assert words.entry("absent") is None and words.summary("absent") == ""
    assert words.entry("") is None and words.entry("\U0010ffff") is None
    assert list(words.rows()) == sorted((n, v, s) for n, (s, v) in rows.items())
    frozen = FrozenWords(sorted((n, v, s) for n, (s, v) in rows.items()))
    assert len(frozen) == 700 and list(frozen.names()) == sorted(rows)


def test_words_built_batch_by_batch_are_the_words_built_at_once() -> None:
    """A store's stream, in lists that do not line up with the segments, gives the same
    words as the whole list; rows out of name order are refused, not misfiled."""
    rows = _rows(500, seed=6)
    ordered = sorted((n, v, s) for n, (s, v) in rows.items())
    builder = SearchWordsBuilder()
    for start in range(0, len(ordered), 41):
        builder.add(ordered[start : start + 41])
    words = builder.build()
    assert list(words.rows()) == ordered
    for query in [*_QUERIES, *([name] for name in list(rows)[:20])]:
        assert words.matching(query) == _reference(rows, query), query
    assert list(SearchWordsBuilder().build().rows()) == []
    backwards = SearchWordsBuilder()
    backwards.add(ordered[100:110])
    with pytest.raises(ValueError, match="out of order"):
        backwards.add(ordered[50:60])
    with pytest.raises(ValueError, match="out of order"):
        SearchWordsBuilder().add([ordered[0], ordered[0]])


def test_changes_removals_and_refreezing_keep_the_answers() -> None:
    rows = _rows(400, seed=2)
    words = SearchWords.of((name, version, summary) for name, (summary, version) in rows.items())
    rng = random.Random(3)
    names = sorted(rows)
    fresh = _rows(60, seed=4)
    for step, name in enumerate(rng.sample(names, 120)):
        if step % 3 == 0:
            del rows[name]
            words.put(name, None)
        else:
            rows[name] = (f"Now about zeta{step} naïve", f"{step}.0")
            words.put(name, *rows[name])
    for name, (summary, version) in fresh.items():
        rows[name] = (summary, version)
        words.put(name, summary, version)
    # A name removed and put back is held again.
    back = next(n for n in names if n not in rows)
    rows[back] = ("Back again", "9.9")
    words.put(back, "Back again", "9.9")
    assert words.changes > 100
    queries = [*_QUERIES, ["zeta1"], ["now", "naive"], ["na", "zeta"], ["back"]]
    for current in (words, words.refrozen()):
        for query in queries:
            assert current.matching(query) == _reference(rows, query), query
            # In name order, the overlay's changes merged in, each name once.
            in_order = list(current.matching_in_order(query))
            assert in_order == sorted(_reference(rows, query)), query
        for name in names:
            assert current.entry(name) == rows.get(name)
    refrozen = words.refrozen()
    assert refrozen.changes == 0
    assert list(refrozen.rows()) == sorted((n, v, s) for n, (s, v) in rows.items())


def test_noting_names_gives_only_unheld_names_an_empty_summary() -> None:
    rows = _rows(300, seed=5)
    words = SearchWords.of((name, version, summary) for name, (summary, version) in rows.items())
    gone = sorted(rows)[10]
    words.put(gone, None)
    shown = sorted([*rows, "aaa-proxied", "zzz-proxied", "mid-proxied"])
    words.note(shown)
    assert words.entry("aaa-proxied") == ("", "") and words.entry("zzz-proxied") == ("", "")
    assert words.entry(gone) == ("", "")  # still shown: found by its name again
    held = sorted(rows)[11]
    assert words.entry(held) == rows[held]  # held names keep their summary
    assert words.changes == 4
    assert words.matching(["mid"]) >= {"mid-proxied"}
    empty = SearchWords()
    empty.note(["one", "two"])
    assert empty.matching(["t"]) == {"two"} and empty.refrozen().matching(["o"]) == {"one"}
