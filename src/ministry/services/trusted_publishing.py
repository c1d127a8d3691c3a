"""The exchange of a CI run's identity token for a short-lived upload token.

What the public index checks, checked here in the same order: the token is a JWT
signed with an asymmetric algorithm by a key its issuer publishes (never ``none``,
never an HMAC, which would take the public key for a shared secret); its issuer is
one a publisher names; it is addressed to this server (``aud``), current (``exp``,
``nbf``, ``iat``) and never seen before (``jti``); and its claims name the
repository, workflow and, when configured, environment of at least one publisher
(``core.trusted_publishing.claims_match``). The minted token uploads to those
publishers' projects only, expires after ``publish_token_lifetime``, and can be
burnt early. Every exchange is audited with the run it came from.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ministry.core.models import Actor
from ministry.core.trusted_publishing import (
    PublishToken,
    TrustedPublisher,
    claims_match,
    pinned_ids,
    run_details,
)
from ministry.errors import MinistryError, UpstreamUnavailable
from ministry.services.auth import PUBLISH_PREFIX, format_token, hash_token, parse_token
from ministry.services.issuer_keys import IssuerKeys, UnknownKey
from ministry.storage.protocols import PublisherStore

__all__ = ["ExchangeRefused", "Minted", "TrustedPublishing"]

#: Signature algorithms an identity token may use: asymmetric ones only.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")
# Clocks of CI runners and of this server disagree a little.
_LEEWAY = timedelta(seconds=30)
_MAX_TOKEN = 16 * 1024


class ExchangeRefused(MinistryError):
    """An identity token that mints nothing; ``code`` is the error code clients see."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Minted:
    """An upload token as its holder gets it once."""

    token: str
    expires: datetime
    publishers: tuple[TrustedPublisher, ...]


class TrustedPublishing:
    """Verifies identity tokens and mints upload tokens for trusted publishers."""

    def __init__(
        self,
        store: PublisherStore,
        keys: IssuerKeys,
        audience: str,
        lifetime: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._keys = keys
        self.audience = audience
        self._lifetime = lifetime
        self._clock = clock

    async def close(self) -> None:
        """Close the connections to issuers (if any were made)."""
        await self._keys.close()

    async def mint(self, raw: str, address: str) -> Minted:
        """An upload token for the publishers this identity token proves to be."""
        claims = await self._verified(raw)
        publishers = await self._matching(claims)
        if not await self._store.use_jti(
            claims["iss"], str(claims["jti"]), datetime.fromtimestamp(claims["exp"], UTC)
        ):
            raise ExchangeRefused(
                "invalid-token", "This identity token was exchanged before; get a new one."
            )
        for publisher in publishers:
            ids = pinned_ids(claims, publisher.provider)
            if ids and not publisher.pinned:
                await self._store.pin_publisher(publisher.publisher_id, ids)
        now = self._clock()
        token_id, secret = PUBLISH_PREFIX + secrets.token_hex(8), secrets.token_urlsafe(32)
        first = publishers[0]
        token = PublishToken(
            token_id=token_id,
            secret_hash=hash_token(secret),
            publishers=tuple(p.publisher_id for p in publishers),
            name=f"{first.provider}:{first.repository}",
            created=now,
            expires=now + self._lifetime,
            claims=run_details(claims),
        )
        await self._store.add_publish_token(token, Actor(token.name, address))
        return Minted(format_token(token_id, secret), token.expires, publishers)

    async def burn(self, raw: str, address: str) -> bool:
        """End a minted token now (its holder is done uploading); False if it is not one."""
        parsed = parse_token(raw)
        if parsed is None or not parsed[0].startswith(PUBLISH_PREFIX):
            return False
        token = await self._store.get_publish_token(parsed[0])
        if token is None or token.revoked or token.secret_hash != hash_token(parsed[1]):
            return False
        await self._store.revoke_publish_token(token.token_id, Actor(token.name, address))
        return True

    async def _verified(self, raw: str) -> dict[str, Any]:
        import jwt

        if len(raw) > _MAX_TOKEN:
            raise ExchangeRefused("invalid-token", "The identity token is too long.")
        try:
            header = jwt.get_unverified_header(raw)
            unverified = jwt.decode(raw, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise ExchangeRefused("invalid-token", f"Not a JSON Web Token: {exc}") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise ExchangeRefused(
                "invalid-token",
                f"Identity tokens signed with {algorithm!r} are refused; "
                "an issuer's tokens are signed with its public-key algorithms.",
            )
        issuer = unverified.get("iss")
        known = {p.issuer for p in await self._store.list_publishers()}
        if not isinstance(issuer, str) or issuer not in known:
            raise ExchangeRefused(
                "invalid-publisher", f"No trusted publisher here trusts the issuer {issuer!r}."
            )
        try:
            key = await self._keys.key(issuer, header.get("kid"))
        except UnknownKey:
            raise ExchangeRefused(
                "invalid-token",
                f"The identity token is signed with a key {issuer} does not publish.",
            ) from None
        except UpstreamUnavailable as exc:
            raise ExchangeRefused("issuer-unavailable", exc.message) from None
        try:
            claims: dict[str, Any] = jwt.decode(
                raw,
                key=key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=issuer,
                leeway=_LEEWAY,
                options={"require": ["exp", "iat", "nbf", "iss", "aud", "jti"]},
            )
        except jwt.PyJWTError as exc:
            raise ExchangeRefused("invalid-token", _reason(exc, self.audience)) from None
        return claims

    async def _matching(self, claims: dict[str, Any]) -> tuple[TrustedPublisher, ...]:
        publishers = await self._store.list_publishers()
        matching = tuple(p for p in publishers if claims_match(claims, p) is None)
        if matching:
            return matching
        near = [(p, claims_match(claims, p)) for p in publishers if p.issuer == claims["iss"]]
        differences = "; ".join(
            f"{p.index}/{p.project} ({p.description}): the {what} differs" for p, what in near
        )
        raise ExchangeRefused(
            "invalid-publisher",
            "No trusted publisher matches this run"
            + (f" ({_run(claims)}): {differences}" if differences else f" ({_run(claims)})"),
        )


def _run(claims: dict[str, Any]) -> str:
    where = claims.get("repository") or claims.get("project_path") or "?"
    workflow = claims.get("job_workflow_ref") or claims.get("ci_config_ref_uri") or "?"
    return f"repository {where}, workflow {workflow}"


def _reason(exc: Exception, audience: str) -> str:
    import jwt

    if isinstance(exc, jwt.ExpiredSignatureError):
        return "The identity token has expired; get a new one."
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "The identity token is not valid yet (nbf or iat in the future)."
    if isinstance(exc, jwt.InvalidAudienceError):
        return f"The identity token is not addressed to this server: ask for audience {audience!r}."
    if isinstance(exc, jwt.InvalidSignatureError):
        return "The identity token's signature does not verify."
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"The identity token has no {exc.claim!r} claim."
    return f"The identity token is not valid: {exc}"
