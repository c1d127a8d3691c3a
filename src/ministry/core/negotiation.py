"""HTTP ``Accept`` negotiation (RFC 9110 §12.5.1) as the simple API needs it (PEP 691).

Clients send q-values in every spelling (``;q=0.1``, ``; q=0.1``), list types in
any order, and ``q=0`` means "never". Among equal q-values an explicitly named
type beats a wildcard match, and the server's order breaks the remaining ties:
the JSON form for clients that name it, ``text/html`` for those that only send
``*/*`` (curl, browsers, hatch), as the public index does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "SIMPLE_FORMATS",
    "SIMPLE_HTML",
    "SIMPLE_JSON",
    "TEXT_HTML",
    "accepts_encoding",
    "choose_simple_format",
    "negotiate",
    "prefers_html",
]

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
SIMPLE_HTML = "application/vnd.pypi.simple.v1+html"
TEXT_HTML = "text/html"
#: Server preference when the client names several of them with equal quality.
SIMPLE_FORMATS = (SIMPLE_JSON, SIMPLE_HTML, TEXT_HTML)
# PEP 691: "latest" means the newest version the server speaks; answer with the concrete type.
_SIMPLE_ALIASES = {
    "application/vnd.pypi.simple.latest+json": SIMPLE_JSON,
    "application/vnd.pypi.simple.latest+html": SIMPLE_HTML,
}
# Bound the work a hostile header can cause.
_MAX_ENTRIES = 64
# Clients send a handful of distinct headers, each thousands of times: the answers
# are kept (bounded, so that varied hostile headers cannot grow memory).
_REMEMBERED = 256


@dataclass(frozen=True)
class _Range:
    media_type: str
    quality: float

    def specificity(self, offer: str) -> int:
        """2 for an exact match, 1 for ``type/*``, 0 for ``*/*``, -1 for no match."""
        if self.media_type == offer:
            return 2
        if self.media_type == "*/*":
            return 0
        major, _, minor = self.media_type.partition("/")
        if minor == "*" and offer.startswith(major + "/"):
            return 1
        return -1


def _parse(accept: str, aliases: Mapping[str, str]) -> list[_Range]:
    ranges = []
    for entry in accept.split(",")[:_MAX_ENTRIES]:
        media_type, *params = (part.strip() for part in entry.split(";"))
        media_type = media_type.lower()
        if "/" not in media_type:
            continue
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                quality = _quality(value.strip())
        ranges.append(_Range(aliases.get(media_type, media_type), quality))
    return ranges


def _quality(value: str) -> float:
    # A malformed q-value is read as 1 rather than dropping the entry
    # (docs/protocol.md, "Content negotiation").
    try:
        quality = float(value)
    except ValueError:
        return 1.0
    if quality != quality:  # NaN
        return 1.0
    return min(max(quality, 0.0), 1.0)


def negotiate(
    accept: str | None,
    offers: Sequence[str],
    *,
    default: str,
    aliases: Mapping[str, str] | None = None,
) -> str | None:
    """The offer the client prefers: ``default`` without an Accept header, None if none fits."""
    if accept is None or not accept.strip():
        return default
    ranges = _parse(accept, aliases or {})
    best: tuple[float, int, int] | None = None
    chosen = None
    for position, offer in enumerate(offers):
        matches = [(r.specificity(offer), r.quality) for r in ranges if r.specificity(offer) >= 0]
        if not matches:
            continue
        specificity, quality = max(matches)  # the most specific range decides the quality
        if quality <= 0:
            continue
        rank = -position if specificity > 0 else (1 if offer == default else -position)
        key = (quality, min(specificity, 1), rank)
        if best is None or key > best:
            best, chosen = key, offer
    return chosen


@lru_cache(maxsize=_REMEMBERED)
def prefers_html(accept: str | None) -> bool:
    """Whether a client wants an error as a web page: it names ``text/html`` among the
    types it likes most, as browsers do.

    pip names ``text/html`` too, at ``q=0.01`` after the simple API's types, and
    curl or httpx send ``*/*``: they keep their plain text (or JSON) answers.
    """
    if accept is None:
        return False
    ranges = _parse(accept, {})
    liked = [r.quality for r in ranges if r.quality > 0]
    html = [r.quality for r in ranges if r.media_type == TEXT_HTML]
    return bool(html) and html[0] > 0 and html[0] >= max(liked)


@lru_cache(maxsize=_REMEMBERED)
def choose_simple_format(accept: str | None) -> str | None:
    """The simple API content type for this Accept header, or None for 406."""
    return negotiate(accept, SIMPLE_FORMATS, default=TEXT_HTML, aliases=_SIMPLE_ALIASES)


@lru_cache(maxsize=_REMEMBERED)
def accepts_encoding(accept_encoding: str | None, coding: str) -> bool:
    """Whether ``Accept-Encoding`` allows ``coding`` (named or by ``*``, with q above 0)."""
    if not accept_encoding:
        return False
    qualities: dict[str, float] = {}
    for entry in accept_encoding.split(",")[:_MAX_ENTRIES]:
        token, *params = (part.strip() for part in entry.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                quality = _quality(value.strip())
        qualities[token.lower()] = quality
    return qualities.get(coding, qualities.get("*", 0.0)) > 0
