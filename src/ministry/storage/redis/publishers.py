"""Trusted publishers, the upload tokens minted for their runs, and the identity tokens used.

Publishers live in one hash by id (a server has a few per project at most, and an
exchange looks through all of them). Each minted token is a key of its own that
Redis drops a day after the token expires; each exchanged identity token's id is
a key that Redis drops when that token expires. None of these keys existed
before, and an older release never reads them, so the layout stays 2.

Adding and removing a publisher, minting a token and revoking one are changes
(a serial, an audit entry). Recording an exchanged token's id and the repository
ids a publisher's first exchange saw are the exchange's bookkeeping: no serial.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import datetime

from packaging.utils import NormalizedName

from ministry.core.models import Actor
from ministry.core.records import dumps, loads
from ministry.core.trusted_publishing import PublishToken, TrustedPublisher
from ministry.errors import NotFound
from ministry.storage.publishers import (
    KEPT_AFTER_EXPIRY,
    burn_detail,
    duplicate_of,
    mint_detail,
    publisher_detail,
)
from ministry.storage.redis.base import RedisDatabase, Transaction, now

__all__ = ["PublishersMixin"]


def _sorted(publishers: list[TrustedPublisher]) -> list[TrustedPublisher]:
    return sorted(publishers, key=lambda p: (p.created, p.publisher_id))


class PublishersMixin(RedisDatabase):
    """The ``PublisherStore`` role of ``MetadataStore``."""

    def _publishers_key(self) -> str:
        return self.key("publishers")

    def _publish_token_key(self, token_id: str) -> str:
        return self.key("publish-token", token_id)

    async def _all_publishers(self) -> list[TrustedPublisher]:
        values = await self.read(self.redis.hvals(self._publishers_key()))
        return [loads(TrustedPublisher, v) for v in values]

    async def add_publisher(self, publisher: TrustedPublisher, actor: Actor) -> None:
        """Store a publisher; ``Conflict`` if the project has one for the same workflow."""

        async def work(tx: Transaction) -> None:
            values = await tx.pipe.hvals(self._publishers_key())
            others = [loads(TrustedPublisher, v) for v in values]
            same_project = [
                p for p in others if (p.index, p.project) == (publisher.index, publisher.project)
            ]
            refusal = duplicate_of(publisher, same_project)
            if refusal is not None:
                raise refusal
            tx.log(
                actor, "add-publisher", publisher.index, project=publisher.project,
                detail=publisher_detail(publisher),
            )  # fmt: skip
            value = dumps(publisher)
            tx.write(lambda p: p.hset(self._publishers_key(), publisher.publisher_id, value))

        await self.change(work)

    async def list_publishers(
        self, index: str | None = None, project: NormalizedName | None = None
    ) -> list[TrustedPublisher]:
        """Publishers, of one index and one project when given, oldest first."""
        return _sorted(
            [
                p
                for p in await self._all_publishers()
                if index in (None, p.index) and project in (None, p.project)
            ]
        )

    async def get_publisher(self, publisher_id: str) -> TrustedPublisher | None:
        """One publisher by id."""
        value = await self.read(self.redis.hget(self._publishers_key(), publisher_id))
        return loads(TrustedPublisher, value) if value else None

    async def remove_publisher(self, publisher_id: str, actor: Actor) -> None:
        """Remove a publisher; ``NotFound`` if there is none with that id."""

        async def work(tx: Transaction) -> None:
            value = await tx.pipe.hget(self._publishers_key(), publisher_id)
            if value is None:
                raise NotFound(f"No trusted publisher {publisher_id!r}.")
            publisher = loads(TrustedPublisher, value)
            tx.log(
                actor, "remove-publisher", publisher.index, project=publisher.project,
                detail=publisher_detail(publisher),
            )  # fmt: skip
            tx.write(lambda p: p.hdel(self._publishers_key(), publisher_id))

        await self.change(work)

    async def pin_publisher(self, publisher_id: str, pinned: tuple[tuple[str, str], ...]) -> None:
        """Record the repository ids of a publisher's first exchange, unless some are recorded.

        The publishers' hash is watched besides the serial (a pin takes none), so of two
        first exchanges racing the first write stays. A publisher removed meanwhile is
        left removed.
        """

        async def work(tx: Transaction) -> None:
            await tx.pipe.watch(self._publishers_key())
            value = await tx.pipe.hget(self._publishers_key(), publisher_id)
            if value is None:
                return
            publisher = loads(TrustedPublisher, value)
            if publisher.pinned or not pinned:
                return
            pinned_value = dumps(replace(publisher, pinned=pinned))
            tx.write(lambda p: p.hset(self._publishers_key(), publisher_id, pinned_value))

        await self.change(work)

    async def use_jti(self, issuer: str, jti: str, expires: datetime) -> bool:
        """Record an identity token's id; False if it was recorded before (a replay).

        One SET NX, which Redis forgets when the token expires (a second at least):
        the verifier refuses an expired token before it gets here.
        """
        seconds = max(1, math.ceil((expires - now()).total_seconds()))
        key = self.key("jti", json.dumps([issuer, jti]))  # issuers hold colons themselves
        return bool(await self.read(self.redis.set(key, "1", nx=True, ex=seconds)))

    async def _index_of(self, tx: Transaction, token: PublishToken) -> str:
        """The index an exchange is audited under: its first publisher's."""
        if not token.publishers:
            return ""
        value = await tx.pipe.hget(self._publishers_key(), token.publishers[0])
        return loads(TrustedPublisher, value).index if value else ""

    async def add_publish_token(self, token: PublishToken, actor: Actor) -> None:
        """Store a minted token, kept a day past its expiry, and audit the exchange."""
        forgotten = math.ceil((token.expires + KEPT_AFTER_EXPIRY).timestamp())

        async def work(tx: Transaction) -> None:
            tx.log(actor, "mint-token", await self._index_of(tx, token), detail=mint_detail(token))
            value, key = dumps(token), self._publish_token_key(token.token_id)
            tx.write(lambda p: p.set(key, value, exat=forgotten))

        await self.change(work)

    async def get_publish_token(self, token_id: str) -> PublishToken | None:
        """One minted token by its public id (gone a day after it expired)."""
        value = await self.read(self.redis.get(self._publish_token_key(token_id)))
        return loads(PublishToken, value) if value else None

    async def revoke_publish_token(self, token_id: str, actor: Actor) -> None:
        """End a minted token before it expires; ``NotFound`` if there is none."""

        async def work(tx: Transaction) -> None:
            key = self._publish_token_key(token_id)
            value = await tx.pipe.get(key)
            if value is None:
                raise NotFound(f"No publish token {token_id!r}.")
            token = replace(loads(PublishToken, value), revoked=True)
            tx.log(actor, "burn-token", await self._index_of(tx, token), detail=burn_detail(token))
            revoked = dumps(token)
            # XX KEEPTTL: a token that Redis dropped meanwhile is not made again for good.
            tx.write(lambda p: p.set(key, revoked, xx=True, keepttl=True))

        await self.change(work)
