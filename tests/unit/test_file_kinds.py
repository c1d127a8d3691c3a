"""A release's files by kind on its page, and the names installers give an index."""

from __future__ import annotations

from ministry.core.file_kinds import group_files
from ministry.core.install_snippets import source_name


def test_files_group_source_pure_then_each_platform_then_the_rest() -> None:
    names = [
        "demo-1.0-cp312-cp312-win_amd64.whl",
        "demo-1.0-py3-none-any.whl",
        "demo-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "demo-1.0-cp311-cp311-win_amd64.whl",
        "demo-1.0.tar.gz",
        "demo-1.0-py3.12.egg",
        "demo-1.0.whl",
    ]
    files = [
        {"filename": n, "packagetype": "sdist" if n.endswith(".tar.gz") else "bdist_wheel"}
        for n in names
    ]
    groups = [(heading, [f["filename"] for f in group]) for heading, group in group_files(files)]
    assert groups == [
        ("Source distribution", ["demo-1.0.tar.gz"]),
        ("Wheels: pure Python (any platform)", ["demo-1.0-py3-none-any.whl"]),
        (
            "Wheels for manylinux2014_x86_64, manylinux_2_17_x86_64",
            ["demo-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"],
        ),
        (
            "Wheels for win_amd64",
            ["demo-1.0-cp311-cp311-win_amd64.whl", "demo-1.0-cp312-cp312-win_amd64.whl"],
        ),
        ("Other files", ["demo-1.0-py3.12.egg", "demo-1.0.whl"]),
    ]
    assert group_files([]) == []


def test_source_names_are_what_uv_poetry_and_pdm_accept() -> None:
    assert source_name("main") == "ministry"
    assert source_name("team/apps") == "team-apps"
    assert source_name("a.b_c-d") == "a.b_c-d"
