"""Keeping secrets out of logs and answers."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["mask_url"]

# Query parameters that carry a password (redis-py reads ``?password=`` of a Redis URL).
_SECRET_PARAMETERS = frozenset({"password"})


def mask_url(url: str) -> str:
    """A URL fit for logs and answers: any password in it replaced by ``***``."""
    parts = urlsplit(url)
    netloc, query = parts.netloc, parts.query
    if parts.password is not None:
        # The host part is kept as written: an IPv6 address keeps its brackets.
        userinfo, _, host = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:***@{host}"
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(key.lower() in _SECRET_PARAMETERS for key, _ in pairs):
        query = urlencode(
            [(k, "***" if k.lower() in _SECRET_PARAMETERS else v) for k, v in pairs], safe="*"
        )
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))
