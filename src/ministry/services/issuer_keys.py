"""The keys OpenID Connect issuers sign identity tokens with, for trusted publishing.

An issuer publishes its keys (a JWKS) at the ``jwks_uri`` of its discovery document,
``ISSUER/.well-known/openid-configuration``. They are fetched when first needed, kept
an hour, and fetched again early when a token names a key id not among them (issuers
rotate keys), at most once a minute per issuer, so that tokens with made-up key ids
cannot make this server hammer an issuer. ``--oidc-jwks ISSUER=FILE`` pins an issuer's
keys from a file instead: nothing is fetched for it.

Issuers are named by project owners, so their addresses obey the same reach rule as
upstream files (docs/security.md, "Upstream requests (SSRF)"): an issuer on an
internal address is reached only where the operator allows that network.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ministry.core.upstream_reach import Reach
from ministry.errors import InvalidRequest, UpstreamUnavailable

if TYPE_CHECKING:
    import httpx
    from jwt import PyJWK, PyJWKSet

__all__ = ["IssuerKeys", "UnknownKey"]

_KEPT = 3600.0
_REFETCH_AFTER = 60.0
_MAX_DOCUMENT = 1 << 20


class UnknownKey(Exception):
    """The token names a key its issuer does not (or no longer) publish."""


def _key_set(text: str, where: str) -> PyJWKSet:
    from jwt import PyJWKSet
    from jwt.exceptions import PyJWKSetError

    try:
        return PyJWKSet.from_dict(json.loads(text))
    except (ValueError, PyJWKSetError) as exc:
        raise InvalidRequest(f"{where} is not a JSON Web Key Set: {exc}") from None


def _pinned(files: Iterable[tuple[str, Path]]) -> dict[str, PyJWKSet]:
    sets: dict[str, PyJWKSet] = {}
    for issuer, path in files:
        try:
            text = path.read_text()
        except OSError as exc:
            raise InvalidRequest(f"--oidc-jwks {issuer}: cannot read {path}: {exc}") from None
        sets[issuer] = _key_set(text, f"--oidc-jwks {issuer}: {path}")
    return sets


class IssuerKeys:
    """The signing keys of each issuer, pinned or fetched."""

    def __init__(
        self,
        pinned: Iterable[tuple[str, Path]],
        *,
        allow_internal: Iterable[str] = (),
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pinned = _pinned(pinned)
        self._reach = Reach.of("", allow_internal)
        self._timeout = timeout
        self._clock = clock
        self._fetched: dict[str, tuple[float, PyJWKSet]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._client: httpx.AsyncClient | None = None

    @property
    def pinned(self) -> Mapping[str, PyJWKSet]:
        """The issuers whose keys come from files."""
        return self._pinned

    async def key(self, issuer: str, key_id: str | None) -> PyJWK:
        """The issuer's key with this id; ``UnknownKey`` if it has none such."""
        if issuer in self._pinned:
            return _find(self._pinned[issuer], key_id)
        async with self._locks.setdefault(issuer, asyncio.Lock()):
            fetched = self._fetched.get(issuer)
            now = self._clock()
            if fetched is not None:
                age = now - fetched[0]
                try:
                    if age < _KEPT:
                        return _find(fetched[1], key_id)
                except UnknownKey:
                    if age < _REFETCH_AFTER:
                        raise
            keys = await self._fetch(issuer)
            self._fetched[issuer] = (now, keys)
            return _find(keys, key_id)

    async def close(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _fetch(self, issuer: str) -> PyJWKSet:
        discovery = await self._json(f"{issuer}/.well-known/openid-configuration")
        uri = discovery.get("jwks_uri") if isinstance(discovery, dict) else None
        if not isinstance(uri, str) or not uri.startswith(("https://", issuer)):
            raise UpstreamUnavailable(f"The discovery document of {issuer} names no JWKS.")
        return _key_set(json.dumps(await self._json(uri)), f"The keys of {issuer}")

    async def _json(self, url: str) -> Any:
        from ministry.services.upstream_network import checked_client

        if self._client is None:
            self._client = checked_client(self._reach, self._timeout, max_redirects=3)
        try:
            response = await self._client.get(url)
            response.raise_for_status()
            if len(response.content) > _MAX_DOCUMENT:
                raise ValueError("too large")
            return response.json()
        except Exception as exc:  # httpx errors, bad JSON, refused addresses alike
            raise UpstreamUnavailable(f"Could not read {url}: {exc}") from None


def _find(keys: PyJWKSet, key_id: str | None) -> PyJWK:
    if key_id is None:
        # A token without a key id can only mean the issuer's one key.
        if len(keys.keys) == 1:
            return keys.keys[0]
        raise UnknownKey(key_id)
    for key in keys.keys:
        if key.key_id == key_id:
            return key
    raise UnknownKey(key_id)
