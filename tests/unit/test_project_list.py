"""The compact project list gives back exactly the projects it was made from, finds them by
name, and its streamed listings are the pages rendered whole."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from packaging.utils import NormalizedName

from ministry.core.models import Project
from ministry.core.project_list import ProjectList
from ministry.core.simple_pages import (
    API_VERSION,
    IndexEntry,
    index_html_chunks,
    index_json_chunks,
    render_index_html,
    render_index_json,
)

_CREATED = datetime(2024, 2, 29, 12, 30, 45, 123456, tzinfo=UTC)


def _projects(count: int) -> list[Project]:
    """Sorted by name, spread over two indexes, some spelt apart from their names."""
    projects = []
    for i in range(count):
        name = NormalizedName(f"p{i:06d}")
        display = f"P_{i:06d}é" if i % 3 == 0 else name
        index = "main" if i % 2 else "team/base"
        created = _CREATED + timedelta(microseconds=i * 7919)
        projects.append(Project(index, name, display, created, i * 11))
    return projects


def test_the_list_gives_back_every_project_exactly() -> None:
    projects = _projects(1000)
    listed = ProjectList(projects)
    assert len(listed) == 1000
    assert list(listed) == projects
    assert listed[-1] == projects[-1] and listed[3] == projects[3]
    assert list(listed[10:20:3]) == projects[10:20:3]
    assert list(listed.rows()) == [(p.name, p.display_name, p.last_serial) for p in projects]
    assert projects[5] in listed
    assert Project("other", projects[5].name, "x", _CREATED, 0) not in listed
    assert list(ProjectList([])) == []


def test_lookups_by_name_and_index() -> None:
    projects = _projects(1000)
    listed = ProjectList(projects)
    for project in (projects[0], projects[517], projects[-1]):
        assert listed.position(project.name) == projects.index(project)
        assert listed.find(project.index, project.name) == project
    assert listed.position("p000500a") is None and listed.position("") is None
    assert listed.position("zzz") is None
    # Shown from the other index: not this index's project.
    assert listed.find("main", projects[0].name) is None
    names = sorted({p.name for p in projects[:4]} | {"absent", ""})
    wanted = [i for i in range(4) if projects[i].index == "main"]
    # A few names are bisected, many are found in one walk: both give the same.
    assert list(listed.positions("main", names)) == wanted
    every = sorted({p.name for p in projects} | {"absent", "", "zzz"})
    assert list(listed.positions("main", iter(every))) == [
        i for i, p in enumerate(projects) if p.index == "main"
    ]
    assert list(listed.positions("main", [])) == []


def test_the_fingerprint_follows_what_a_listing_shows() -> None:
    projects = _projects(50)
    same = ProjectList(_projects(50)).fingerprint
    assert ProjectList(projects).fingerprint == same
    moved = [*projects[:-1], Project("main", projects[-1].name, "Renamed", _CREATED, 1)]
    assert ProjectList(moved).fingerprint != same
    later = [*projects[:-1], Project("main", projects[-1].name, projects[-1].name, _CREATED, 2)]
    assert ProjectList(later).fingerprint != ProjectList(moved).fingerprint


def test_streamed_lists_are_the_whole_pages_over_many_chunks() -> None:
    """12,000 projects make three chunks; the JSON is what ``json.dumps`` of the document
    gives, escapes included, and the HTML is the page rendered whole."""
    rows = [(p.name, p.display_name + '"<&', p.last_serial) for p in _projects(12_000)]
    json_page = b"".join(index_json_chunks(iter(rows), 77))
    expected = {
        "meta": {"api-version": API_VERSION, "_last-serial": 77},
        "projects": [{"name": display, "_last-serial": serial} for _, display, serial in rows],
    }
    assert json_page == json.dumps(expected, separators=(",", ":")).encode() + b"\n"
    html_page = b"".join(index_html_chunks(iter(rows))).decode()
    assert html_page.count("<a href=") == 12_000
    assert html_page.endswith("</a><br />\n  </body>\n</html>\n")
    entries = [IndexEntry(*row) for row in reversed(rows)]
    assert render_index_html(entries).decode() == html_page
    assert render_index_json(entries, 77) == json_page
    empty = json.loads(b"".join(index_json_chunks(iter(()), 5)))
    assert empty == {"meta": {"api-version": API_VERSION, "_last-serial": 5}, "projects": []}
