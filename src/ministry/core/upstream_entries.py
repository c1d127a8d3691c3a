"""The upstreams of a proxy index as people write them, and which of them a name is asked of.

An entry is a URL, optionally followed by options separated by spaces::

    https://corp.example/simple/ only=acme-*,corp-* ttl=1m

``only`` routes project names (normalized, with ``*`` and ``?``) to this upstream:
a name that matches an upstream's ``only`` is asked of the upstreams whose ``only``
it matches and of no other, so a public upstream can never answer for an internal
name (docs/security.md, "Dependency confusion across upstreams"). ``ttl`` is how
long this upstream's pages stay fresh. In JSON and TOML an entry may also be a
table: ``{"url": ..., "only": [...], "page_ttl": ...}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase

from ministry.core.durations import parse_duration
from ministry.core.masking import mask_url
from ministry.core.models import Upstream
from ministry.errors import InvalidRequest

__all__ = [
    "format_upstream",
    "keeping_secrets",
    "parse_upstream",
    "parse_upstreams",
    "routed",
    "upstream_record",
]

_ENTRY_HELP = (
    "An upstream is 'URL [only=PATTERN,PATTERN] [ttl=TIME]', or a table with url, only "
    "and page_ttl."
)


def _patterns(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.strip().lower() for p in text.split(",") if p.strip()))


def _ttl(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        try:
            return int(parse_duration(value).total_seconds())
        except InvalidRequest as exc:
            raise InvalidRequest(f"Upstream ttl {value[:40]!r}: {exc.message}") from exc
    raise InvalidRequest(f"Upstream ttl must be seconds or a duration like 5m. {_ENTRY_HELP}")


def parse_upstream(value: object) -> Upstream:
    """One entry: ``URL [only=…] [ttl=…]`` text, or a table."""
    if isinstance(value, Mapping):
        url, listed = value.get("url"), value.get("only", ())
        unknown = set(value) - {"url", "only", "page_ttl"}
        if unknown or not isinstance(url, str) or not url.strip():
            raise InvalidRequest(_ENTRY_HELP)
        if isinstance(listed, str):
            listed = listed.split(",")
        if not isinstance(listed, list | tuple) or not all(isinstance(p, str) for p in listed):
            raise InvalidRequest(f"Upstream 'only' must be a list of patterns. {_ENTRY_HELP}")
        return Upstream(url.strip(), _patterns(",".join(listed)), _ttl(value.get("page_ttl")))
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(_ENTRY_HELP)
    url, *options = value.split()
    only: tuple[str, ...] = ()
    ttl: int | None = None
    for option in options:
        name, equals, text = option.partition("=")
        if name == "only" and equals and _patterns(text):
            only = _patterns(text)
        elif name == "ttl" and equals:
            ttl = _ttl(text)
        else:
            raise InvalidRequest(f"Unknown upstream option {option[:40]!r}. {_ENTRY_HELP}")
    return Upstream(url, only, ttl)


def parse_upstreams(value: object) -> tuple[Upstream, ...]:
    """Every entry of a list (or the one entry given alone); None or "" is no upstream.

    Text may hold several entries on separate lines (a form's text area) or separated
    by ``;`` (an environment variable).
    """
    if value is None:
        return ()
    if isinstance(value, str):
        value = [line for part in value.splitlines() for line in part.split(";")]
        value = [line for line in value if line.strip()]
    elif isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, Sequence):
        raise InvalidRequest(f"The upstream setting must be a list of upstreams. {_ENTRY_HELP}")
    upstreams = tuple(parse_upstream(item) for item in value)
    urls = [u.url for u in upstreams]
    duplicate = next((url for url in urls if urls.count(url) > 1), None)
    if duplicate is not None:
        raise InvalidRequest(f"Upstream {mask_url(duplicate)!r} is listed twice.")
    return upstreams


def format_upstream(upstream: Upstream, *, masked: bool = True) -> str:
    """An entry as text, the inverse of :func:`parse_upstream` (password masked)."""
    text = mask_url(upstream.url) if masked else upstream.url
    if upstream.only:
        text += " only=" + ",".join(upstream.only)
    if upstream.page_ttl is not None:
        text += f" ttl={upstream.page_ttl}s"
    return text


def upstream_record(upstream: Upstream, *, masked: bool = True) -> dict[str, object]:
    """An entry as a JSON table."""
    return {
        "url": mask_url(upstream.url) if masked else upstream.url,
        "only": list(upstream.only),
        "page_ttl": upstream.page_ttl,
    }


def routed(upstreams: Sequence[Upstream], project: str) -> tuple[Upstream, ...]:
    """The upstreams asked for ``project``, in order of preference.

    Those whose ``only`` matches it when there are any; otherwise those without ``only``.
    """
    chosen = tuple(u for u in upstreams if any(fnmatchcase(project, p) for p in u.only))
    return chosen or tuple(u for u in upstreams if not u.only)


def keeping_secrets(given: Sequence[Upstream], current: Sequence[Upstream]) -> tuple[Upstream, ...]:
    """``given`` with each URL that is a current upstream's masked URL (a document or a
    form sent back as shown) read as that upstream's real URL: the password stays."""
    real = {mask_url(u.url): u.url for u in current}
    return tuple(Upstream(real.get(u.url, u.url), u.only, u.page_ttl) for u in given)
