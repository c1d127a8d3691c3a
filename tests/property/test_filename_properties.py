"""Properties of distribution filenames: valid names round-trip, anything else is a 400."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st
from packaging.utils import canonicalize_name
from packaging.version import Version

from ministry.core.distributions import check_filename_safe, parse_distribution_filename
from ministry.errors import InvalidUpload
from support.strategies import WheelName, project_names, versions, wheel_names

# Characters that path tricks and confused parsers are made of, so that hostile
# shapes (docs/security.md, "Hostile uploads") come up far more often than in uniform text.
_TRICKY = "ab1.-_+!/\\:\x00\r\n\x7f \u202e\u0131é"
tricky_text = st.text(alphabet=_TRICKY, max_size=30) | st.text(max_size=300)
filenames = (
    tricky_text
    | tricky_text.map(lambda text: text + ".whl")
    | tricky_text.map(lambda text: text + ".tar.gz")
)


@given(wheel_names())
def test_wheel_filenames_round_trip(wheel: WheelName) -> None:
    """A wheel filename as build tools write it parses back to its name, version and tags."""
    parsed = parse_distribution_filename(wheel.filename)
    assert parsed.filename == wheel.filename
    assert parsed.project == canonicalize_name(wheel.project)
    assert parsed.version == Version(wheel.version)
    assert parsed.packagetype == "bdist_wheel"
    assert parsed.tags == wheel.tags
    assert parsed.python_tag == ".".join(sorted({tag.interpreter for tag in wheel.tags}))


@given(project_names, versions())
def test_sdist_filenames_round_trip(project: str, version: str) -> None:
    """A PEP 625 sdist filename parses back to its name and version."""
    filename = f"{canonicalize_name(project).replace('-', '_')}-{version}.tar.gz"
    parsed = parse_distribution_filename(filename)
    assert (parsed.project, parsed.version) == (canonicalize_name(project), Version(version))
    assert (parsed.packagetype, parsed.python_tag, parsed.tags) == ("sdist", "source", frozenset())


@given(filenames)
@example("../../etc/passwd.whl")
@example("C:\\evil-1.0.tar.gz")
@example("demo-1.0.tar.gz\x00.png")
@example("..")
@example("demo-1.0-py3-none-any.whl" + "x" * 300)
@example("demo-1.0-py3-none-any-extra-parts.whl")
@example("demo-1.0!!-py3-none-any.whl")
def test_any_text_parses_or_is_refused(filename: str) -> None:
    """Arbitrary text is a distribution filename or a 400 on the file part, never a crash."""
    try:
        parsed = parse_distribution_filename(filename)
    except InvalidUpload as error:
        assert error.field == "content"
        return
    assert parsed.filename == filename
    assert parsed.packagetype == ("bdist_wheel" if filename.endswith(".whl") else "sdist")


@given(filenames)
@example("..")
@example(".")
@example("a/../b")
@example("a\\b")
@example("CON\x1f")
def test_safe_filenames_hold_no_path_or_control_characters(filename: str) -> None:
    """A filename that passes the check is one plain path component
    (docs/security.md, "Hostile uploads")."""
    try:
        check_filename_safe(filename)
    except InvalidUpload as error:
        assert error.field == "content"
        return
    assert "/" not in filename and "\\" not in filename
    assert not any(ord(char) < 0x20 or ord(char) == 0x7F for char in filename)
    assert filename not in (".", "..") and not filename.startswith(".")
    assert filename.isascii()
    assert 0 < len(filename.encode()) <= 255
