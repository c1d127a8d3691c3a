"""What ``ministry mirror`` takes from an upstream: which files and which dependencies.

A mirror pre-fetches only what its users will install: some Python versions, some
platforms, wheels and/or sdists, with or without pre-releases, the newest N
versions. Everything here is decided from names and metadata alone (no I/O), the
way an installer would decide it, using ``packaging`` for tags, specifiers and
markers. Where the answer is uncertain (bad upstream metadata, unknown platform
families, markers that cannot be evaluated) the choice is to take more: a mirror
holding an extra file costs disk space, one missing a file breaks an install.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from packaging.markers import Marker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import compatible_tags, cpython_tags, mac_platforms
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from ministry.errors import InvalidRequest

__all__ = [
    "Dependency",
    "Targets",
    "dependencies",
    "file_wanted",
    "marker_environments",
    "requirement_applies",
    "select_versions",
    "targets",
]

_PYTHON_VERSION = re.compile(r"3\.(0|[1-9][0-9]*)\Z")
# Wheel platform tags are lower-case words joined by "_" (PEP 425: "-" and "." become "_").
_PLATFORM = re.compile(r"[a-z0-9]+(_[a-z0-9]+)*\Z")
# When no Python version is given, markers are evaluated for every CPython still in use.
_DEFAULT_PYTHON_VERSIONS = tuple(f"3.{minor}" for minor in range(8, 15))
# Requires-Python is tested against these micro releases of each target X.Y, so that
# ">=3.11.2" admits 3.11 and "<3.11.0" does not.
_MICRO_RELEASES = range(31)

# packaging has no public parser for platform tags, so their families are read here.
_LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
_LEGACY_MANYLINUX_TAG = re.compile(r"(manylinux1|manylinux2010|manylinux2014)_(.+)\Z")
_GLIBC_TAG = re.compile(r"(manylinux|musllinux)_([0-9]+)_([0-9]+)_(.+)\Z")
_MACOS_TAG = re.compile(r"macosx_([0-9]+)_([0-9]+)_(.+)\Z")
_LINUX_TAG = re.compile(r"linux_(.+)\Z")
# The machines a multi-architecture macOS tag stands for when evaluating markers.
_MACOS_MACHINES = {
    "universal2": ("x86_64", "arm64"),
    "universal": ("x86_64",),
    "intel": ("x86_64",),
}
_WINDOWS_MACHINES = {"win_amd64": "AMD64", "win32": "x86", "win_arm64": "ARM64"}

# (sys_platform, platform_system, os_name, platform_machine) of each kind of computer.
_System = tuple[str, str, str, str]
_DEFAULT_SYSTEMS: tuple[_System, ...] = (
    ("linux", "Linux", "posix", "x86_64"),
    ("linux", "Linux", "posix", "aarch64"),
    ("win32", "Windows", "nt", "AMD64"),
    ("darwin", "Darwin", "posix", "x86_64"),
    ("darwin", "Darwin", "posix", "arm64"),
)


@dataclass(frozen=True)
class Targets:
    """The Pythons and platforms a mirror serves, and which releases and file types it keeps.

    Build it with :func:`targets`, which checks the values; an empty tuple means "any".
    """

    #: "X.Y" of each CPython served, such as "3.12".
    python_versions: tuple[str, ...] = ()
    #: Wheel platform tags, such as "manylinux_2_17_x86_64", "win_amd64", "macosx_11_0_arm64".
    platforms: tuple[str, ...] = ()
    #: Wheels only.
    only_binary: bool = False
    #: Sdists only.
    only_source: bool = False
    #: Pre-releases and development releases too.
    pre: bool = False
    #: At most this many releases of each requirement, the newest.
    newest: int | None = None


def targets(
    python_versions: Iterable[str] = (),
    platforms: Iterable[str] = (),
    *,
    only_binary: bool = False,
    only_source: bool = False,
    pre: bool = False,
    newest: int | None = None,
) -> Targets:
    """Check what a user asked to mirror and return it as :class:`Targets`.

    A lone string is taken as one value rather than as a sequence of characters.
    Duplicates are dropped, the order is kept.
    """
    versions = _unique((python_versions,) if isinstance(python_versions, str) else python_versions)
    tags = _unique((platforms,) if isinstance(platforms, str) else platforms)
    for version in versions:
        if not _PYTHON_VERSION.match(version):
            raise InvalidRequest(
                f"Invalid Python version {version!r}: give a major and minor version "
                "of Python 3, such as '3.12'."
            )
    for tag in tags:
        if not _PLATFORM.match(tag):
            raise InvalidRequest(
                f"Invalid platform {tag!r}: give a wheel platform tag in lower case with "
                "'_' between words, such as 'manylinux_2_17_x86_64', 'win_amd64' "
                "or 'macosx_11_0_arm64'."
            )
    if only_binary and only_source:
        raise InvalidRequest(
            "Only wheels and only sdists were both asked for: choose one, or neither for both."
        )
    if newest is not None and newest < 1:
        raise InvalidRequest(f"Invalid number of newest versions {newest}: give 1 or more.")
    return Targets(versions, tags, only_binary, only_source, pre, newest)


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


# -- files ---------------------------------------------------------------------------------


def file_wanted(targets: Targets, filename: str, requires_python: str | None) -> bool:
    """Whether an installer on one of the targets could pick this file.

    Sdists are ``.tar.gz`` or legacy ``.zip`` (older releases on the public index
    have them, and installers still build them). Anything that is neither a wheel
    nor an sdist (eggs, ``.exe``) is not wanted.
    """
    if filename.endswith(".whl"):
        try:
            _name, _version, _build, tags = parse_wheel_filename(filename)
        except InvalidWheelFilename:
            return False
        if targets.only_source or not _python_admitted(targets, requires_python):
            return False
        return any(
            _interpreter_compatible(targets.python_versions, tag.interpreter, tag.abi)
            and _platform_compatible(targets.platforms, tag.platform)
            for tag in tags
        )
    try:
        parse_sdist_filename(filename)
    except InvalidSdistFilename:
        return False
    return not targets.only_binary and _python_admitted(targets, requires_python)


def _python_admitted(targets: Targets, requires_python: str | None) -> bool:
    """Requires-Python admits a target version (Core metadata; PEP 345).

    Unparseable values admit everything: the upstream's bad metadata must not
    silently hide files, and the installer has the last word anyway.
    """
    if requires_python is None or not targets.python_versions:
        return True
    try:
        specifier = SpecifierSet(requires_python)
    except InvalidSpecifier:
        return True
    return any(
        specifier.contains(f"{version}.{micro}", prereleases=True)
        for version in targets.python_versions
        for micro in _MICRO_RELEASES
    )


def _interpreter_compatible(python_versions: tuple[str, ...], interpreter: str, abi: str) -> bool:
    if not python_versions:
        return True
    return any((interpreter, abi) in _interpreter_abis(version) for version in python_versions)


@lru_cache(maxsize=64)
def _interpreter_abis(python_version: str) -> frozenset[tuple[str, str]]:
    """The (interpreter, abi) pairs CPython X.Y installs, as pip's ``--python-version X.Y``."""
    major, minor = (int(part) for part in python_version.split("."))
    version = (major, minor)
    cpython = f"cp{major}{minor}"
    tags = [
        *cpython_tags(python_version=version, abis=[cpython], platforms=["any"]),
        *compatible_tags(python_version=version, interpreter=cpython, platforms=["any"]),
    ]
    return frozenset((tag.interpreter, tag.abi) for tag in tags)


def _platform_compatible(targets: tuple[str, ...], platform: str) -> bool:
    if not targets or platform == "any":
        return True
    return any(_platform_accepts(target, platform) for target in targets)


@lru_cache(maxsize=4096)
def _platform_accepts(target: str, platform: str) -> bool:
    """Whether an installer on ``target`` accepts a wheel built for ``platform``.

    manylinux (PEP 600) and musllinux (PEP 656) accept older C libraries of the same
    machine; macOS accepts what ``packaging`` lists for that version and machine;
    anything else (Windows, ``linux_*``, families not known here) only itself.
    """
    if platform == target:
        return True
    target_libc, wheel_libc = _libc(target), _libc(platform)
    if target_libc is not None and wheel_libc is not None:
        family, version, machine = target_libc
        wheel_family, wheel_version, wheel_machine = wheel_libc
        if family != wheel_family or machine != wheel_machine:
            return False
        # musllinux promises compatibility within one major version only (PEP 656).
        same_series = family == "manylinux" or version[0] == wheel_version[0]
        return same_series and wheel_version <= version
    return platform in _macos_platforms(target)


def _libc(platform: str) -> tuple[str, tuple[int, int], str] | None:
    """(family, C library version, machine) of a manylinux or musllinux tag."""
    legacy = _LEGACY_MANYLINUX_TAG.match(platform)
    if legacy:
        return "manylinux", _LEGACY_MANYLINUX[legacy[1]], legacy[2]
    match = _GLIBC_TAG.match(platform)
    if match:
        return match[1], (int(match[2]), int(match[3])), match[4]
    return None


@lru_cache(maxsize=64)
def _macos_platforms(target: str) -> frozenset[str]:
    match = _MACOS_TAG.match(target)
    if not match:
        return frozenset()
    version = (int(match[1]), int(match[2]))
    machines = _MACOS_MACHINES.get(match[3], (match[3],))
    return frozenset(
        platform for machine in machines for platform in mac_platforms(version, machine)
    )


# -- versions ------------------------------------------------------------------------------


def select_versions(
    targets: Targets, versions: Iterable[str], specifier: str | SpecifierSet = ""
) -> list[str]:
    """The releases a requirement takes, newest first, spelled as the upstream spells them.

    Pre-releases follow ``packaging`` and pip: taken when ``targets.pre`` is set, when
    the specifier names one, or when nothing else matches. Unparseable versions (old
    releases on the public index have some) are skipped.
    """
    if isinstance(specifier, str):
        try:
            specifier = SpecifierSet(specifier)
        except InvalidSpecifier as exc:
            raise InvalidRequest(f"Invalid version specifier {specifier!r}: {exc}") from exc
    parsed: list[tuple[Version, str]] = []
    for spelling in versions:
        try:
            parsed.append((Version(spelling), spelling))
        except InvalidVersion:
            continue
    matching = set(
        specifier.filter({version for version, _ in parsed}, prereleases=targets.pre or None)
    )
    kept = set(sorted(matching, reverse=True)[: targets.newest])
    ordered = sorted(parsed, key=lambda item: item[0], reverse=True)
    return [spelling for version, spelling in ordered if version in kept]


# -- markers and dependencies --------------------------------------------------------------


def marker_environments(targets: Targets) -> list[dict[str, str]]:
    """The environments (PEP 508) in which dependency markers are evaluated.

    One per target Python version and target machine; a platform of a family not
    known here stands for every default machine, so that no dependency is missed.
    """
    versions = targets.python_versions or _DEFAULT_PYTHON_VERSIONS
    systems: list[_System] = []
    for platform in targets.platforms:
        systems.extend(_platform_systems(platform))
    environments: list[dict[str, str]] = []
    for version in versions:
        for sys_platform, system, os_name, machine in dict.fromkeys(systems or _DEFAULT_SYSTEMS):
            environments.append(
                {
                    "implementation_name": "cpython",
                    "implementation_version": f"{version}.0",
                    "os_name": os_name,
                    "platform_machine": machine,
                    "platform_python_implementation": "CPython",
                    "platform_release": "",
                    "platform_system": system,
                    "platform_version": "",
                    "python_full_version": f"{version}.0",
                    "python_version": version,
                    "sys_platform": sys_platform,
                }
            )
    return environments


def _platform_systems(platform: str) -> tuple[_System, ...]:
    libc = _libc(platform)
    if libc is not None:
        return (("linux", "Linux", "posix", libc[2]),)
    linux = _LINUX_TAG.match(platform)
    if linux:
        return (("linux", "Linux", "posix", linux[1]),)
    if platform in _WINDOWS_MACHINES:
        return (("win32", "Windows", "nt", _WINDOWS_MACHINES[platform]),)
    macos = _MACOS_TAG.match(platform)
    if macos:
        machines = _MACOS_MACHINES.get(macos[3], (macos[3],))
        return tuple(("darwin", "Darwin", "posix", machine) for machine in machines)
    return _DEFAULT_SYSTEMS


@dataclass(frozen=True)
class Dependency:
    """A project a mirrored release needs, with the versions and extras it asks for."""

    name: NormalizedName
    specifier: str
    extras: frozenset[str]


def dependencies(
    requires_dist: Iterable[str],
    extras: Iterable[str],
    environments: Sequence[Mapping[str, str]],
) -> list[Dependency]:
    """The dependencies a release brings in on the targets, in the order listed.

    A requirement under a marker counts when the marker holds in one environment,
    for the base install (``extra == ""``) or for one of the requested ``extras``.
    Unparseable lines are skipped (upstream metadata is not ours to reject), and so
    are ``name @ url`` requirements: a mirror fetches from the index only.
    """
    requested = ["", *(canonicalize_name(extra) for extra in extras)]
    found: dict[Dependency, None] = {}
    for line in requires_dist:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.url is not None:
            continue
        if requirement.marker is not None and not any(
            _marker_holds(requirement.marker, {**environment, "extra": extra})
            for environment in environments
            for extra in requested
        ):
            continue
        dependency = Dependency(
            name=canonicalize_name(requirement.name),
            specifier=str(requirement.specifier),
            extras=frozenset(canonicalize_name(extra) for extra in requirement.extras),
        )
        found.setdefault(dependency)
    return list(found)


def requirement_applies(
    requirement: Requirement, environments: Sequence[Mapping[str, str]]
) -> bool:
    """Whether a requirement given by the user (no extras involved) holds on a target."""
    if requirement.marker is None:
        return True
    return any(
        _marker_holds(requirement.marker, {**environment, "extra": ""})
        for environment in environments
    )


def _marker_holds(marker: Marker, environment: Mapping[str, str]) -> bool:
    """Evaluate a marker; one that cannot be evaluated counts as true (take more, not less)."""
    try:
        return marker.evaluate(environment)
    except (UndefinedComparison, UndefinedEnvironmentName):
        return True
