"""Unit tests for ministry.core.mirror_targets: which files and dependencies a mirror takes."""

from __future__ import annotations

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from ministry.core.mirror_targets import (
    Dependency,
    Targets,
    dependencies,
    file_wanted,
    marker_environments,
    requirement_applies,
    select_versions,
    targets,
)
from ministry.errors import InvalidRequest

LINUX_311 = targets(["3.11"], ["manylinux_2_17_x86_64"])


# -- targets -------------------------------------------------------------------------------


def test_targets_keeps_values_in_order_without_duplicates() -> None:
    """Duplicates are dropped, the order is the user's; a lone string is one value."""
    chosen = targets(["3.12", "3.11", "3.12"], "win_amd64", only_binary=True, pre=True, newest=3)
    assert chosen == Targets(("3.12", "3.11"), ("win_amd64",), True, False, True, 3)


@pytest.mark.parametrize(
    ("python_versions", "platforms", "named"),
    [
        (["3"], [], "'3'"),
        (["3.11.2"], [], "'3.11.2'"),
        (["2.7"], [], "'2.7'"),
        (["cp311"], [], "'cp311'"),
        (["3.011"], [], "'3.011'"),
        ([], ["Win_AMD64"], "'Win_AMD64'"),
        ([], ["manylinux-2.17-x86_64"], "'manylinux-2.17-x86_64'"),
        ([], [""], "''"),
        ([], ["linux x86_64"], "'linux x86_64'"),
    ],
)
def test_targets_refuses_bad_values_by_name(
    python_versions: list[str], platforms: list[str], named: str
) -> None:
    """A bad version or platform is named in the message, so the user can fix it."""
    with pytest.raises(InvalidRequest, match=named):
        targets(python_versions, platforms)


def test_targets_refuses_only_binary_with_only_source() -> None:
    """Wheels only and sdists only together would take nothing."""
    with pytest.raises(InvalidRequest, match="choose one"):
        targets(["3.11"], [], only_binary=True, only_source=True)


@pytest.mark.parametrize("newest", [0, -1])
def test_targets_refuses_fewer_than_one_newest(newest: int) -> None:
    """Keeping no version at all is not a mirror."""
    with pytest.raises(InvalidRequest, match=str(newest)):
        targets([], [], newest=newest)


def test_targets_accepts_any_platform() -> None:
    """ "any" is a valid (if pointless) platform tag."""
    assert targets([], ["any"]).platforms == ("any",)


# -- wheel tags ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "wanted"),
    [
        ("demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", True),
        ("demo-1.0-cp312-cp312-manylinux_2_17_x86_64.whl", False),
        ("demo-1.0-cp310-cp310-manylinux_2_17_x86_64.whl", False),
        ("demo-1.0-cp38-abi3-manylinux_2_17_x86_64.whl", True),
        ("demo-1.0-cp312-abi3-manylinux_2_17_x86_64.whl", False),
        ("demo-1.0-py2.py3-none-any.whl", True),
        ("demo-1.0-py3-none-any.whl", True),
        ("demo-1.0-py2-none-any.whl", False),
        ("demo-1.0-py311-none-any.whl", True),
        ("demo-1.0-cp311-none-any.whl", True),
        ("demo-1.0-pp310-pypy310_pp73-manylinux_2_17_x86_64.whl", False),
        ("demo-1.0-pp39-pypy39_pp73-any.whl", False),
        ("demo-1.0-cp311-cp311t-manylinux_2_17_x86_64.whl", False),
        # Platform ladder of a glibc 2.17 x86_64 machine.
        ("demo-1.0-cp311-cp311-manylinux_2_28_x86_64.whl", False),
        ("demo-1.0-cp311-cp311-manylinux_2_18_x86_64.whl", False),
        ("demo-1.0-cp311-cp311-manylinux_2_12_x86_64.whl", True),
        ("demo-1.0-cp311-cp311-manylinux2014_x86_64.whl", True),
        ("demo-1.0-cp311-cp311-manylinux2010_x86_64.whl", True),
        ("demo-1.0-cp311-cp311-manylinux1_x86_64.whl", True),
        ("demo-1.0-cp311-cp311-manylinux_2_17_aarch64.whl", False),
        ("demo-1.0-cp311-cp311-manylinux2014_aarch64.whl", False),
        ("demo-1.0-cp311-cp311-musllinux_1_1_x86_64.whl", False),
        ("demo-1.0-cp311-cp311-win_amd64.whl", False),
        ("demo-1.0-cp311-cp311-macosx_11_0_x86_64.whl", False),
        ("demo-1.0-cp311-cp311-linux_x86_64.whl", False),
        # Compressed tag sets: one compatible tag is enough.
        (
            "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            True,
        ),
        ("demo-1.0-cp311-cp311-win_amd64.manylinux_2_5_x86_64.whl", True),
        ("demo-1.0-cp310.cp311-cp310.cp311-manylinux_2_17_x86_64.whl", True),
    ],
)
def test_wheel_tags_for_cpython_311_on_manylinux_2_17(filename: str, wanted: bool) -> None:
    """Interpreter, ABI and platform all have to suit the target, as for pip."""
    assert file_wanted(LINUX_311, filename, None) is wanted


@pytest.mark.parametrize(
    ("target", "platform", "wanted"),
    [
        # A legacy alias as the target expands to its glibc version.
        ("manylinux2014_x86_64", "manylinux_2_17_x86_64", True),
        ("manylinux2014_x86_64", "manylinux_2_12_x86_64", True),
        ("manylinux2014_x86_64", "manylinux_2_24_x86_64", False),
        ("manylinux2010_x86_64", "manylinux2014_x86_64", False),
        ("manylinux1_x86_64", "manylinux_2_5_x86_64", True),
        ("manylinux_2_28_aarch64", "manylinux2014_aarch64", True),
        ("manylinux_2_28_aarch64", "manylinux_2_28_aarch64", True),
        ("manylinux_2_28_aarch64", "manylinux_2_31_aarch64", False),
        # musllinux: older musl of the same major version and machine.
        ("musllinux_1_2_x86_64", "musllinux_1_0_x86_64", True),
        ("musllinux_1_2_x86_64", "musllinux_1_1_x86_64", True),
        ("musllinux_1_2_x86_64", "musllinux_1_2_x86_64", True),
        ("musllinux_1_1_x86_64", "musllinux_1_2_x86_64", False),
        ("musllinux_1_2_x86_64", "musllinux_1_2_aarch64", False),
        ("musllinux_1_2_x86_64", "manylinux_2_17_x86_64", False),
        ("musllinux_2_0_x86_64", "musllinux_1_2_x86_64", False),
        # macOS: packaging's ladder (older releases, universal2) but not a newer release.
        ("macosx_11_0_arm64", "macosx_11_0_arm64", True),
        ("macosx_11_0_arm64", "macosx_11_0_universal2", True),
        ("macosx_11_0_arm64", "macosx_10_9_universal2", True),
        ("macosx_11_0_arm64", "macosx_10_9_x86_64", False),
        ("macosx_11_0_arm64", "macosx_12_0_arm64", False),
        ("macosx_11_0_arm64", "macosx_11_0_x86_64", False),
        ("macosx_14_0_arm64", "macosx_12_0_arm64", True),
        ("macosx_10_15_x86_64", "macosx_10_9_x86_64", True),
        ("macosx_10_15_x86_64", "macosx_10_9_intel", True),
        ("macosx_10_15_x86_64", "macosx_11_0_x86_64", False),
        ("macosx_10_15_x86_64", "macosx_10_15_arm64", False),
        ("macosx_11_0_universal2", "macosx_11_0_arm64", True),
        ("macosx_11_0_universal2", "macosx_10_9_x86_64", True),
        # Windows and plain linux tags: exactly themselves.
        ("win_amd64", "win_amd64", True),
        ("win_amd64", "win32", False),
        ("win_amd64", "win_arm64", False),
        ("win_amd64", "manylinux_2_17_x86_64", False),
        ("linux_x86_64", "linux_x86_64", True),
        ("linux_x86_64", "manylinux_2_17_x86_64", False),
        ("linux_x86_64", "linux_aarch64", False),
        ("manylinux_2_17_x86_64", "linux_x86_64", False),
        # Unknown families match exactly; "any" wheels suit every platform.
        ("ios_13_0_arm64_iphoneos", "ios_13_0_arm64_iphoneos", True),
        ("ios_13_0_arm64_iphoneos", "ios_12_0_arm64_iphoneos", False),
        ("win_amd64", "any", True),
        ("musllinux_1_2_x86_64", "any", True),
    ],
)
def test_platform_compatibility(target: str, platform: str, wanted: bool) -> None:
    """A platform accepts what an installer running on it would install."""
    chosen = targets(["3.12"], [target])
    assert file_wanted(chosen, f"demo-1.0-cp312-cp312-{platform}.whl", None) is wanted


def test_several_targets_take_the_union() -> None:
    """A wheel is wanted when it suits any one Python version on any one platform."""
    chosen = targets(["3.11", "3.12"], ["win_amd64", "macosx_11_0_arm64"])
    assert file_wanted(chosen, "demo-1.0-cp312-cp312-win_amd64.whl", None)
    assert file_wanted(chosen, "demo-1.0-cp311-cp311-macosx_11_0_arm64.whl", None)
    assert not file_wanted(chosen, "demo-1.0-cp313-cp313-win_amd64.whl", None)
    assert not file_wanted(chosen, "demo-1.0-cp312-cp312-manylinux_2_17_x86_64.whl", None)


def test_no_python_version_takes_any_interpreter() -> None:
    """With no Python versions, only the platform narrows the wheels."""
    chosen = targets([], ["win_amd64"])
    assert file_wanted(chosen, "demo-1.0-cp36-cp36m-win_amd64.whl", None)
    assert file_wanted(chosen, "demo-1.0-pp310-pypy310_pp73-win_amd64.whl", None)
    assert not file_wanted(chosen, "demo-1.0-cp312-cp312-win32.whl", None)


def test_no_platform_takes_any_platform() -> None:
    """With no platforms, only the interpreter narrows the wheels."""
    chosen = targets(["3.12"], [])
    assert file_wanted(chosen, "demo-1.0-cp312-cp312-win32.whl", None)
    assert file_wanted(chosen, "demo-1.0-cp312-cp312-musllinux_1_1_armv7l.whl", None)
    assert not file_wanted(chosen, "demo-1.0-cp311-cp311-win32.whl", None)


def test_no_targets_take_every_wheel() -> None:
    """Empty targets mean any Python on any platform."""
    assert file_wanted(Targets(), "demo-1.0-pp39-pypy39_pp73-macosx_10_9_x86_64.whl", None)


# -- file types and Requires-Python --------------------------------------------------------


@pytest.mark.parametrize(
    ("chosen", "filename", "wanted"),
    [
        (Targets(), "demo-1.0.tar.gz", True),
        (Targets(), "demo-1.0.zip", True),
        (Targets(only_binary=True), "demo-1.0.tar.gz", False),
        (Targets(only_binary=True), "demo-1.0.zip", False),
        (Targets(only_binary=True), "demo-1.0-py3-none-any.whl", True),
        (Targets(only_source=True), "demo-1.0-py3-none-any.whl", False),
        (Targets(only_source=True), "demo-1.0.tar.gz", True),
        (Targets(), "demo-1.0-py3.11.egg", False),
        (Targets(), "demo-1.0.win-amd64.exe", False),
        (Targets(), "demo-1.0.tar.bz2", False),
        (Targets(), "demo.tar.gz", False),
        (Targets(), "demo-1.0-py3-any.whl", False),
        (Targets(), "README.txt", False),
    ],
)
def test_file_types(chosen: Targets, filename: str, wanted: bool) -> None:
    """Only wheels and sdists are mirrored, and of those only the types asked for."""
    assert file_wanted(chosen, filename, None) is wanted


@pytest.mark.parametrize(
    ("python_versions", "requires_python", "wanted"),
    [
        (["3.11"], None, True),
        (["3.11"], "", True),
        (["3.11"], ">=3.11.2", True),
        (["3.11"], ">=3.8", True),
        (["3.11"], "<3.11", False),
        (["3.11"], ">=3.12", False),
        (["3.11"], "==3.11.*", True),
        (["3.11"], "~=3.10", True),
        (["3.11"], ">=3.6, !=3.11.*", False),
        (["3.11"], ">=3.11.31", False),
        (["3.11", "3.12"], ">=3.12", True),
        (["3.11"], "not a specifier", True),
        (["3.11"], ">=3.6,", True),
        ([], "<3.0", True),
    ],
)
def test_requires_python(
    python_versions: list[str], requires_python: str | None, wanted: bool
) -> None:
    """A file is wanted when Requires-Python admits some release of a target X.Y.

    Bad metadata admits (the installer decides); no versions admit everything.
    """
    chosen = targets(python_versions, [])
    assert file_wanted(chosen, "demo-1.0.tar.gz", requires_python) is wanted
    assert file_wanted(chosen, "demo-1.0-py3-none-any.whl", requires_python) is wanted


# -- versions ------------------------------------------------------------------------------

RELEASES = ["1.0", "1.1", "2.0rc1", "1.2.dev0", "0.9", "not-a-version", "2.0b2"]


@pytest.mark.parametrize(
    ("chosen", "specifier", "expected"),
    [
        (Targets(), "", ["1.1", "1.0", "0.9"]),
        (Targets(pre=True), "", ["2.0rc1", "2.0b2", "1.2.dev0", "1.1", "1.0", "0.9"]),
        (Targets(newest=2), "", ["1.1", "1.0"]),
        (Targets(pre=True, newest=2), "", ["2.0rc1", "2.0b2"]),
        (Targets(newest=10), "", ["1.1", "1.0", "0.9"]),
        (Targets(), "==1.0", ["1.0"]),
        (Targets(), "<1.1", ["1.0", "0.9"]),
        (Targets(), SpecifierSet(">=1.0,<2"), ["1.1", "1.0"]),
        (Targets(), "==2.0b2", ["2.0b2"]),
        (Targets(), ">=2.0b1", ["2.0rc1", "2.0b2"]),
        (Targets(), ">1.5", ["2.0rc1", "2.0b2"]),
        (Targets(), "==3.0", []),
        (Targets(), "==1.0.0", ["1.0"]),
    ],
)
def test_select_versions(
    chosen: Targets, specifier: str | SpecifierSet, expected: list[str]
) -> None:
    """Matching releases, newest first; pre-releases when asked, pinned, or nothing else fits."""
    assert select_versions(chosen, RELEASES, specifier) == expected


def test_select_versions_keeps_the_upstream_spelling() -> None:
    """Versions come back as given, so the caller can find the upstream's files by them."""
    assert select_versions(Targets(), ["1.0.0", "v2.0", "1.0.post0"], ">=1") == [
        "v2.0",
        "1.0.post0",
        "1.0.0",
    ]


def test_select_versions_counts_one_release_spelled_twice_once() -> None:
    """Two spellings of one version are one release for ``newest`` and both come back."""
    chosen = Targets(newest=1)
    assert select_versions(chosen, ["0.9", "1.0", "1.0.0"]) == ["1.0", "1.0.0"]


def test_select_versions_only_pre_releases_are_taken() -> None:
    """A project with nothing but pre-releases is still mirrored (pip installs them too)."""
    assert select_versions(Targets(), ["0.1a1", "0.1a2"]) == ["0.1a2", "0.1a1"]


def test_select_versions_refuses_a_bad_specifier() -> None:
    """A specifier given as a string that does not parse is named in the error."""
    with pytest.raises(InvalidRequest, match="'>>1'"):
        select_versions(Targets(), RELEASES, ">>1")


# -- marker environments -------------------------------------------------------------------


def _machines(chosen: Targets) -> list[tuple[str, str, str, str, str]]:
    return [
        (
            environment["python_version"],
            environment["sys_platform"],
            environment["platform_system"],
            environment["os_name"],
            environment["platform_machine"],
        )
        for environment in marker_environments(chosen)
    ]


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        ("manylinux_2_17_x86_64", [("linux", "Linux", "posix", "x86_64")]),
        ("manylinux2014_aarch64", [("linux", "Linux", "posix", "aarch64")]),
        ("musllinux_1_2_armv7l", [("linux", "Linux", "posix", "armv7l")]),
        ("linux_ppc64le", [("linux", "Linux", "posix", "ppc64le")]),
        ("win_amd64", [("win32", "Windows", "nt", "AMD64")]),
        ("win32", [("win32", "Windows", "nt", "x86")]),
        ("win_arm64", [("win32", "Windows", "nt", "ARM64")]),
        ("macosx_11_0_arm64", [("darwin", "Darwin", "posix", "arm64")]),
        ("macosx_10_9_x86_64", [("darwin", "Darwin", "posix", "x86_64")]),
        (
            "macosx_10_9_universal2",
            [("darwin", "Darwin", "posix", "x86_64"), ("darwin", "Darwin", "posix", "arm64")],
        ),
        ("macosx_10_6_universal", [("darwin", "Darwin", "posix", "x86_64")]),
    ],
)
def test_marker_environments_per_platform(
    platform: str, expected: list[tuple[str, str, str, str]]
) -> None:
    """Each platform tag becomes the system and machine an installer there reports."""
    environments = _machines(targets(["3.12"], [platform]))
    assert environments == [("3.12", *system) for system in expected]


DEFAULT_SYSTEMS = [
    ("linux", "Linux", "posix", "x86_64"),
    ("linux", "Linux", "posix", "aarch64"),
    ("win32", "Windows", "nt", "AMD64"),
    ("darwin", "Darwin", "posix", "x86_64"),
    ("darwin", "Darwin", "posix", "arm64"),
]


@pytest.mark.parametrize("platforms", [[], ["ios_13_0_arm64_iphoneos"], ["any"]])
def test_marker_environments_without_a_known_platform_cover_every_system(
    platforms: list[str],
) -> None:
    """No platform, or one of a family not known here, means every common system."""
    environments = _machines(targets(["3.11"], platforms))
    assert environments == [("3.11", *system) for system in DEFAULT_SYSTEMS]


def test_marker_environments_without_versions_cover_3_8_to_3_14() -> None:
    """No Python version means every CPython still in use."""
    environments = marker_environments(targets([], ["win_amd64"]))
    assert [environment["python_version"] for environment in environments] == [
        "3.8",
        "3.9",
        "3.10",
        "3.11",
        "3.12",
        "3.13",
        "3.14",
    ]


def test_marker_environment_keys() -> None:
    """Every PEP 508 marker variable is set, so no marker falls back to the host's values."""
    chosen = targets(["3.12", "3.13"], ["manylinux_2_17_x86_64", "manylinux_2_28_x86_64"])
    environments = marker_environments(chosen)
    # Two manylinux versions of one machine are one environment per Python version.
    assert len(environments) == 2
    assert environments[0] == {
        "implementation_name": "cpython",
        "implementation_version": "3.12.0",
        "os_name": "posix",
        "platform_machine": "x86_64",
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": "3.12.0",
        "python_version": "3.12",
        "sys_platform": "linux",
    }
    assert environments[1]["python_full_version"] == "3.13.0"


# -- dependencies --------------------------------------------------------------------------

REQUIRES_DIST = [
    "idna>=2.5",
    "Typing_Extensions>=4; python_version < '3.11'",
    "colorama; sys_platform == 'win32'",
    "PySocks!=1.5.7,>=1.5.6; extra == 'socks'",
    "chardet<6,>=3; extra == 'use-chardet-on-py3' and python_version >= '3.12'",
    "brotli; platform_python_implementation == 'CPython' and extra == 'brotli'",
    "local-thing @ https://example.invalid/local_thing-1.0.tar.gz",
    "not a requirement ~~",
    "urllib3[socks,Zstd]<3,>=1.21.1",
]


def _names(found: list[Dependency]) -> list[str]:
    return [dependency.name for dependency in found]


def test_dependencies_on_linux_311_without_extras() -> None:
    """Base requirements whose markers hold; no extras, no URLs, no garbage."""
    found = dependencies(REQUIRES_DIST, [], marker_environments(LINUX_311))
    assert found == [
        Dependency(canonicalize_name("idna"), ">=2.5", frozenset()),
        Dependency(canonicalize_name("urllib3"), "<3,>=1.21.1", frozenset({"socks", "zstd"})),
    ]


def test_dependencies_python_version_marker() -> None:
    """``python_version < '3.11'`` holds for a 3.10 target, not for 3.11."""
    found = dependencies(REQUIRES_DIST, [], marker_environments(targets(["3.10"], ["win_amd64"])))
    assert _names(found) == ["idna", "typing-extensions", "colorama", "urllib3"]


def test_dependencies_platform_marker_holds_in_any_environment() -> None:
    """One target where a marker holds is enough (Windows among Linux)."""
    chosen = targets(["3.11"], ["manylinux_2_17_x86_64", "win_amd64"])
    assert "colorama" in _names(dependencies(REQUIRES_DIST, [], marker_environments(chosen)))


@pytest.mark.parametrize(
    ("extras", "python_version", "expected"),
    [
        (["socks"], "3.11", ["idna", "pysocks", "urllib3"]),
        (["SOCKS"], "3.11", ["idna", "pysocks", "urllib3"]),
        (["use_chardet_on_py3"], "3.11", ["idna", "urllib3"]),
        (["use_chardet_on_py3"], "3.12", ["idna", "chardet", "urllib3"]),
        (["brotli", "socks"], "3.12", ["idna", "pysocks", "brotli", "urllib3"]),
        (["unknown"], "3.12", ["idna", "urllib3"]),
    ],
)
def test_dependencies_extras(extras: list[str], python_version: str, expected: list[str]) -> None:
    """A requirement needing an extra counts only when that extra was asked for (normalized)."""
    environments = marker_environments(targets([python_version], ["manylinux_2_17_x86_64"]))
    assert _names(dependencies(REQUIRES_DIST, extras, environments)) == expected


def test_dependencies_dedupe_identical_entries_only() -> None:
    """The same requirement twice is one; differing specifiers stay separate."""
    found = dependencies(
        ["six>=1.0", "Six >= 1.0", "six<2", "six>=1.0; python_version >= '3'"],
        [],
        marker_environments(LINUX_311),
    )
    assert found == [
        Dependency(canonicalize_name("six"), ">=1.0", frozenset()),
        Dependency(canonicalize_name("six"), "<2", frozenset()),
    ]


def test_dependencies_uncomparable_marker_is_taken() -> None:
    """A marker that cannot be evaluated keeps the dependency: a missing one breaks installs."""
    found = dependencies(["odd; python_version ~= 'abc'"], [], marker_environments(LINUX_311))
    assert _names(found) == ["odd"]


@pytest.mark.parametrize(
    ("marker", "applies"),
    [
        ("", True),
        ("; sys_platform == 'win32'", False),
        ("; sys_platform == 'linux'", True),
        ("; python_version < '3.11'", False),
        ("; python_version >= '3.11'", True),
        ("; extra == 'test'", False),
    ],
)
def test_requirement_applies(marker: str, applies: bool) -> None:
    """User requirements apply when their marker holds on one target."""
    requirement = Requirement(f"demo>=1{marker}")
    assert requirement_applies(requirement, marker_environments(LINUX_311)) is applies
