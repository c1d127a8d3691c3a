"""Keeping secrets out of logs and answers (docs/security.md, "Secrets at rest and on screen")."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit

__all__ = ["mask_text", "mask_url"]

#: Query parameters that carry a secret: ``?password=`` of a Redis URL, tokens,
#: access and secret keys, signatures of pre-signed URLs. Matched anywhere in the
#: name, so ``X-Amz-Signature``, ``aws_secret_access_key`` and ``api-key`` are too.
_SECRET_PARAMETER = re.compile(r"pass|pwd|token|secret|key|sig|credential|auth", re.IGNORECASE)
#: Schemes whose user name is itself a key (an S3 access key id).
_KEY_AS_USER = frozenset({"s3"})
_MASK = "***"
#: A URL inside free text: up to the first space, quote or bracket that ends it.
_URL_IN_TEXT = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")


def mask_url(url: str) -> str:
    """A URL fit for logs and answers: passwords, tokens and keys in it replaced by ``***``.

    A user name is kept beside a password (``redis://user:***@host``) but masked
    when it stands alone (``https://***@index.example``: then it is a token), and always
    in an S3 URL.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return _MASK  # not even a URL: nothing of it is shown
    netloc = _masked_netloc(parts.scheme.lower(), parts.netloc)
    query = _masked_query(parts.query)
    # Replaced in place: rebuilding the URL would drop the empty host of ``unix:///path``.
    if netloc != parts.netloc:
        url = url.replace(parts.netloc, netloc, 1)
    if query != parts.query:
        url = url.replace(f"?{parts.query}", f"?{query}", 1)
    return url


def mask_text(text: str) -> str:
    """Free text (an audit-log entry's detail) with every URL in it masked as ``mask_url``
    masks one: an index's settings name its upstream, with a password when it needs one."""
    return _URL_IN_TEXT.sub(lambda match: mask_url(match[0]), text)


def _masked_netloc(scheme: str, netloc: str) -> str:
    userinfo, at, host = netloc.rpartition("@")
    if not at:
        return netloc
    # The host part is kept as written: an IPv6 address keeps its brackets.
    user, colon, _ = userinfo.partition(":")
    if not colon:
        return f"{_MASK}@{host}"
    shown = _MASK if user and scheme in _KEY_AS_USER else user
    return f"{shown}:{_MASK}@{host}"


def _masked_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(_SECRET_PARAMETER.search(key) for key, _ in pairs):
        return query
    return urlencode([(k, _MASK if _SECRET_PARAMETER.search(k) else v) for k, v in pairs], safe="*")
