"""Properties of project and index names: normalization (PEP 503) and refusal of bad names."""

from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st
from packaging.utils import canonicalize_name

from ministry.core.index_rules import RESERVED_NAMES, check_index_name
from ministry.core.upload_form import FilePart, read_upload_form
from ministry.core.upstream_pages import parse_project_list
from ministry.errors import InvalidRequest, InvalidUpload
from support.strategies import project_names, separator_runs, versions

_VALID_NAME = re.compile(r"([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])\Z", re.IGNORECASE | re.ASCII)
# Text that is mostly made of the characters names are made of, so that near-misses
# (a trailing separator, a space, a look-alike letter) come up often.
name_like = st.text(alphabet="aZ09._- \n\t\x00/é\u0430\u202e", max_size=20) | st.text(max_size=20)


def _respell(name: str, data: st.DataObject) -> str:
    """The same project under another PEP 503 spelling: any case, any separator runs."""
    pieces = re.split(r"[-_.]+", name)
    spelled = pieces[0]
    for piece in pieces[1:]:
        spelled += data.draw(separator_runs) + piece
    return "".join(c.upper() if data.draw(st.booleans()) else c.lower() for c in spelled)


def _name_error(name: str) -> InvalidUpload:
    """What the upload form says about a name (the version is left out, so it always stops)."""
    try:
        read_upload_form({":action": ["file_upload"], "name": [name]}, [])
    except InvalidUpload as error:
        return error
    raise AssertionError("a form without a version was accepted")


@given(project_names)
def test_normalization_is_idempotent(name: str) -> None:
    """A normalized name normalizes to itself, so a stored key never drifts."""
    once = canonicalize_name(name)
    assert canonicalize_name(once) == once
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", once)


@given(project_names, st.data())
def test_separator_runs_and_case_name_one_project(name: str, data: st.DataObject) -> None:
    """docs/protocol.md, "Project names": My.Pkg, my_pkg and MY--PKG are one project."""
    assert canonicalize_name(_respell(name, data)) == canonicalize_name(name)


@given(project_names, versions(), st.data())
def test_upload_form_accepts_any_spelling_of_the_filename_name(
    name: str, version: str, data: st.DataObject
) -> None:
    """The form may spell the name any PEP 503 way; the PEP 625 filename still matches it."""
    filename = f"{canonicalize_name(name).replace('-', '_')}-{version}.tar.gz"
    spelled = _respell(name, data)
    fields = {
        ":action": ["file_upload"],
        "name": [spelled],
        "version": [version],
        "filetype": ["sdist"],
        "sha256_digest": ["0" * 64],
    }
    form = read_upload_form(fields, [FilePart("content", filename, None)])
    assert form.distribution.project == canonicalize_name(name)
    assert form.name == spelled


@given(name_like)
@example("foo\n")
@example("-foo")
@example("foo.")
@example("f\u0430o")
@example("\u017f")  # folds to "s" under a Unicode-aware IGNORECASE
def test_upload_names_are_valid_or_refused_with_the_name_field(name: str) -> None:
    """Any text as the form's name: valid names pass the name check, others get a 400 on it."""
    error = _name_error(name)
    if _VALID_NAME.match(name):
        assert error.field == "version"
    else:
        assert error.field == "name"
        assert "invalid value for Name" in error.message or name == ""


@given(st.text(max_size=120) | st.from_regex(r"[a-z0-9._/-]{1,12}", fullmatch=True))
@example("simple")
@example("team/simple")
@example("a//b")
@example("a/b/c")
def test_index_names_are_url_safe_or_refused(name: str) -> None:
    """An index name is returned as given when it is safe as a URL prefix, or refused (400)."""
    try:
        accepted = check_index_name(name)
    except InvalidRequest as error:
        assert error.message.startswith("Invalid index name")
        return
    assert accepted == name
    parts = name.split("/")
    assert 1 <= len(parts) <= 2
    for part in parts:
        assert re.fullmatch(r"[a-z0-9][a-z0-9._-]*", part)
        assert part not in RESERVED_NAMES


@given(st.lists(name_like | project_names, max_size=8))
def test_upstream_project_lists_hold_only_normalized_names(names: list[str]) -> None:
    """An upstream root page's names come back normalized, valid, each once, sorted."""
    body = "".join(f"<a href='/simple/x/'>{n}</a>" for n in names).encode("utf-8", "replace")
    listed = parse_project_list(body, "text/html")
    assert listed == sorted(set(listed))
    for name in listed:
        assert canonicalize_name(name, validate=True) == name
