"""Properties of Accept negotiation for the simple API (PEP 691;
docs/protocol.md, "Content negotiation")."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import example, given
from hypothesis import strategies as st

from ministry.core.negotiation import SIMPLE_FORMATS, accepts_encoding, choose_simple_format

# Media ranges a client may name, each standing for a distinct range after aliasing.
_TYPES = [
    "application/vnd.pypi.simple.v1+json",
    "application/vnd.pypi.simple.latest+html",
    "text/html",
    "text/*",
    "application/*",
    "*/*",
    "application/json",
    "image/png",
]
_QUALITIES = ["0", "0.0", "0.000", "0.001", "0.1", "0.5", "1", "1.0", "abc", "-3", "7", "nan"]


@dataclass(frozen=True)
class Entry:
    """One media range of an Accept header: its type and, if given, its q-value."""

    media_type: str
    quality: str | None

    def spell(self, data: st.DataObject) -> str:
        """The entry with arbitrary (legal) spacing and case."""
        space = st.sampled_from(["", " ", "  ", "\t"])
        text = data.draw(space) + data.draw(st.sampled_from([str.lower, str.upper]))(
            self.media_type
        )
        if self.quality is not None:
            text += f"{data.draw(space)};{data.draw(space)}q={self.quality}"
        return text + data.draw(space)


entries = st.lists(
    st.builds(Entry, st.sampled_from(_TYPES), st.none() | st.sampled_from(_QUALITIES)),
    max_size=6,
    unique_by=lambda entry: entry.media_type,
)


def _header(items: list[Entry]) -> str:
    return ",".join(f"{entry.media_type};q={entry.quality or 1}" for entry in items)


@given(st.none() | st.text(max_size=200) | entries.map(_header))
@example(",,,;;;q=")
@example("*/*;q=inf")
@example("text/html;q=1e999")
@example("/;q=1")
def test_any_header_gives_a_supported_type_or_406(accept: str | None) -> None:
    """Arbitrary Accept text: one of the three simple formats, or None (the 406), nothing else."""
    assert choose_simple_format(accept) in (*SIMPLE_FORMATS, None)


def _is_zero(quality: str | None) -> bool:
    try:
        return quality is not None and float(quality) <= 0
    except ValueError:
        return False


@given(entries)
def test_a_type_refused_with_q0_is_never_chosen(items: list[Entry]) -> None:
    """q=0 means "not acceptable" (RFC 9110 §12.4.2), even when a wildcard would allow it."""
    chosen = choose_simple_format(_header(items))
    for entry in items:
        if _is_zero(entry.quality):
            assert not _names(entry.media_type, chosen)


def _names(media_type: str, chosen: str | None) -> bool:
    """Whether ``media_type`` names ``chosen`` exactly (or through the PEP 691 alias)."""
    alias = media_type.replace(".latest+", ".v1+")
    return chosen is not None and alias == chosen


@given(entries, st.data())
def test_order_spacing_and_case_do_not_matter(items: list[Entry], data: st.DataObject) -> None:
    """The answer depends on the ranges and their q-values, not on how the header is written."""
    plain = choose_simple_format(_header(items))
    shuffled = data.draw(st.permutations(items))
    respelled = ",".join(entry.spell(data) for entry in shuffled)
    assert choose_simple_format(respelled) == plain


@given(st.none() | st.text(max_size=200), st.sampled_from(["gzip", "br", "identity"]))
@example(",;q=,*;;", "gzip")
def test_accept_encoding_never_fails(header: str | None, coding: str) -> None:
    """Accept-Encoding of any shape is answered with a yes or a no."""
    assert isinstance(accepts_encoding(header, coding), bool)


@given(
    st.dictionaries(
        st.sampled_from(["gzip", "br", "deflate", "*"]), st.sampled_from(_QUALITIES), max_size=4
    ),
    st.sampled_from(["gzip", "br"]),
)
def test_accept_encoding_follows_the_named_quality(qualities: dict[str, str], coding: str) -> None:
    """A coding is allowed when its own q-value (else that of ``*``) is above 0."""
    header = ", ".join(f"{token};q={quality}" for token, quality in qualities.items())
    quality = qualities.get(coding, qualities.get("*"))
    expected = quality is not None and not _is_zero(quality)
    assert accepts_encoding(header or None, coding) == expected
