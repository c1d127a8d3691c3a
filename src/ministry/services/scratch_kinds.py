"""The kinds of temporary file kept in the scratch space, each named once.

A service names its temporary files by kind; every process removes, as it starts,
what dead processes left of these kinds, before any of those services is built.
"""

from __future__ import annotations

__all__ = ["BUNDLE", "LEFT_BY_CRASHES", "PROXY", "UPLOAD"]

#: An upload's file part, spooled while it is checked.
UPLOAD = "upload"
#: A proxied file while it is fetched from the upstream.
PROXY = "proxy"
#: What a bundle import unpacks.
BUNDLE = "bundle"
#: Every kind a crash can leave behind. (A mirror's partial downloads are not among
#: them: a run resumes from them.)
LEFT_BY_CRASHES = (UPLOAD, PROXY, BUNDLE)
