"""The Integrity API (PEP 740): ``[/<index>]/integrity/<project>/<version>/<filename>/provenance``.

It serves the provenance document of a file: the attestations its trusted publisher
signed, checked when the file was published here or fetched from an upstream. The
same read rules as the file's download apply: a private index's provenance is
private. A provenance never changes once the file has one, but a file may gain one
(a proxied file's, once fetched), so clients revalidate.
"""

from __future__ import annotations

import hashlib
from urllib.parse import quote

from ministry.core.models import DEFAULT_INDEX
from ministry.web.base import BaseHandler
from ministry.web.simple import normalized_or_redirect

__all__ = ["INTEGRITY_JSON", "ProvenanceHandler"]

#: The media type of the Integrity API's answers.
INTEGRITY_JSON = "application/vnd.pypi.integrity.v1+json"


class ProvenanceHandler(BaseHandler):
    """One file's provenance object; 404 when the file has none."""

    async def get(
        self, project: str, version: str, filename: str, index: str = DEFAULT_INDEX
    ) -> None:
        """Send the provenance document, or 304 when the client's copy is current."""
        access = await self.read_access(index)
        rest = "/".join(quote(part, safe="+!") for part in (version, filename))
        template = "{prefix}/integrity/{project}/" + rest + "/provenance"
        normalized = normalized_or_redirect(self, project, template)
        if normalized is None:
            return
        document = await self.services.catalog.provenance(access, normalized, version, filename)
        self.set_header("Content-Type", INTEGRITY_JSON)
        self.set_header("Access-Control-Allow-Origin", "*")
        self.set_header("ETag", f'"{hashlib.sha256(document).hexdigest()}"')
        self.cache_for(access, "max-age=0, must-revalidate")
        if self.check_etag_header():
            self.set_status(304)
            self.finish()
            return
        self.finish(document)

    head = get
