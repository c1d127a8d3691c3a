"""Trusted publishing over HTTP: the endpoints uv and pypa/gh-action-pypi-publish call.

``GET /_/oidc/audience`` names the audience a CI run asks its provider for;
``POST /_/oidc/mint-token`` exchanges the identity token it gets for an upload
token; ``POST /_/oidc/burn-token`` ends one early. ``GET /.well-known/pytp/KEY``
is PEP 807's discovery: KEY is the sha256 of an upload URL's path, and the answer
names the two endpoints for the indexes this server takes uploads for (404 for any
other path). Refusals have the public index's shape (``message`` and ``errors``
with a ``code`` and a ``description``), which both clients print.

The exchange needs no session and no password, so nothing here is a write another
site could make on a user's behalf: the identity token is the credential.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ministry.errors import InvalidRequest
from ministry.services.trusted_publishing import ExchangeRefused
from ministry.web.base import BaseHandler

__all__ = ["AudienceHandler", "BurnTokenHandler", "DiscoveryHandler", "MintTokenHandler"]

_MAX_BODY = 64 * 1024


class _OidcHandler(BaseHandler):
    def prefers_json(self) -> bool:
        """Answers are JSON, errors too."""
        return True

    def set_default_headers(self) -> None:
        """Tokens are never cached."""
        super().set_default_headers()
        self.set_header("Cache-Control", "no-store")

    def send(self, document: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(document))

    def refuse(self, status: int, code: str, description: str) -> None:
        """The public index's error shape."""
        self.send(
            {
                "message": "Token request failed",
                "errors": [{"code": code, "description": description}],
            },
            status,
        )

    def token_field(self) -> str:
        """The ``token`` of the JSON body (clients send it without a content type)."""
        body = self.request.body
        if len(body) > _MAX_BODY:
            raise InvalidRequest("The request body is too large for a token.")
        try:
            value = json.loads(body or b"null")
        except (ValueError, UnicodeDecodeError):
            value = None
        token = value.get("token") if isinstance(value, dict) else None
        if not isinstance(token, str) or not token:
            raise InvalidRequest('Send {"token": "..."} as JSON.')
        return token


class AudienceHandler(_OidcHandler):
    """``GET /_/oidc/audience``."""

    def get(self) -> None:
        """The audience identity tokens must name."""
        self.send({"audience": self.services.trusted_publishing.audience})


class MintTokenHandler(_OidcHandler):
    """``POST /_/oidc/mint-token``."""

    async def post(self) -> None:
        """An upload token for a verified identity token of a trusted publisher's run."""
        try:
            token = self.token_field()
        except InvalidRequest as exc:
            self.refuse(400, "invalid-payload", exc.message)
            return
        address = self.request.remote_ip or "unknown"
        try:
            minted = await self.services.trusted_publishing.mint(token, address)
        except ExchangeRefused as exc:
            self.refuse(503 if exc.code == "issuer-unavailable" else 422, exc.code, exc.message)
            return
        self.send(
            {
                "success": True,
                "token": minted.token,
                "expires": int(minted.expires.timestamp()),
            }
        )


class BurnTokenHandler(_OidcHandler):
    """``POST /_/oidc/burn-token``."""

    async def post(self) -> None:
        """End a minted token before it expires (uv does once its uploads are done)."""
        try:
            token = self.token_field()
        except InvalidRequest as exc:
            self.refuse(400, "invalid-payload", exc.message)
            return
        address = self.request.remote_ip or "unknown"
        await self.services.trusted_publishing.burn(token, address)
        # 202 whether or not it was a live token, as the public index answers: the
        # answer tells a caller nothing about tokens it does not hold.
        self.send({"success": True}, 202)


class DiscoveryHandler(_OidcHandler):
    """``GET /.well-known/pytp/KEY`` (PEP 807)."""

    async def get(self, key: str) -> None:
        """The endpoints, if KEY is the hash of one of this server's upload paths."""
        if key not in await self._upload_keys():
            self.set_status(404)
            self.finish()
            return
        base = self.base_url
        self.send(
            {
                "audience-endpoint": f"{base}/_/oidc/audience",
                "mint-token-endpoint": f"{base}/_/oidc/mint-token",
            }
        )

    async def _upload_keys(self) -> set[str]:
        # A private index is named to nobody who cannot read it, not even by a hash.
        paths = ["/legacy/", "/legacy", "/dist/", "/dist", "/", ""]
        for config in (await self.services.indexes.configs()).values():
            if config.kind == "hosted" and not config.private:
                paths += [f"/{config.name}/legacy/", f"/{config.name}/legacy"]
        return {hashlib.sha256(path.encode()).hexdigest() for path in paths}
