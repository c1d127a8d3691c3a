"""Hypothesis strategies for the things a package index is made of: names, versions, tags."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

from hypothesis import strategies as st
from packaging.tags import Tag
from packaging.utils import canonicalize_name
from packaging.version import Version

# The core metadata specification's name rule, with a bound on the length so that
# filenames built from it stay under the 255-byte limit.
project_names = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,40}[A-Za-z0-9])?", fullmatch=True)
separator_runs = st.text(alphabet="-_.", min_size=1, max_size=3)


@st.composite
def versions(draw: st.DrawFn) -> str:
    """A valid PEP 440 version in its normalized form, with any of the optional segments."""
    text = ""
    epoch = draw(st.integers(0, 3))
    if epoch:
        text += f"{epoch}!"
    release = draw(st.lists(st.integers(0, 2030), min_size=1, max_size=4))
    text += ".".join(map(str, release))
    if draw(st.booleans()):
        text += draw(st.sampled_from(["a", "b", "rc"])) + str(draw(st.integers(0, 20)))
    if draw(st.booleans()):
        text += f".post{draw(st.integers(0, 20))}"
    if draw(st.booleans()):
        text += f".dev{draw(st.integers(0, 20))}"
    if draw(st.booleans()):
        local = draw(
            st.lists(st.from_regex(r"[a-z0-9]{1,6}", fullmatch=True), min_size=1, max_size=3)
        )
        text += "+" + ".".join(local)
    return str(Version(text))  # local segments like "00" normalize to "0"


@dataclass(frozen=True)
class WheelName:
    """The parts a wheel filename is made of, and the filename."""

    project: str
    version: str
    build: str | None
    tags: frozenset[Tag]
    filename: str


_sets = {"min_size": 1, "max_size": 3, "unique": True}


@st.composite
def wheel_names(draw: st.DrawFn) -> WheelName:
    """A wheel filename as build tools write it (PEP 491), with compressed tag sets."""
    project = draw(project_names)
    version = draw(versions())
    build = draw(st.none() | st.from_regex(r"[0-9]{1,3}[a-z_]{0,3}", fullmatch=True))
    pythons = draw(
        st.lists(st.sampled_from(["py3", "py2", "py311", "cp311", "cp39", "pp310"]), **_sets)
    )
    abis = draw(st.lists(st.sampled_from(["none", "abi3", "cp311"]), **_sets))
    platforms = draw(
        st.lists(
            st.sampled_from(
                [
                    "any",
                    "linux_x86_64",
                    "manylinux_2_17_x86_64",
                    "musllinux_1_2_aarch64",
                    "macosx_11_0_arm64",
                    "win_amd64",
                ]
            ),
            **_sets,
        )
    )
    parts = [canonicalize_name(project).replace("-", "_"), version]
    if build is not None:
        parts.append(build)
    parts += [".".join(pythons), ".".join(abis), ".".join(platforms)]
    tags = frozenset(Tag(*combination) for combination in product(pythons, abis, platforms))
    return WheelName(project, version, build, tags, "-".join(parts) + ".whl")
