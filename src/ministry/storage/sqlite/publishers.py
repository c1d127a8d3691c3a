"""Trusted publishers, the upload tokens minted for their runs, and the identity tokens used.

Adding and removing a publisher, minting a token and revoking one are changes
(a serial, an audit entry). Recording an exchanged token's id (``use_jti``) and
the repository ids a publisher's first exchange saw (``pin_publisher``) are the
exchange's bookkeeping: no serial, no entry of their own.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime

from packaging.utils import NormalizedName

from ministry.core.models import Actor
from ministry.core.trusted_publishing import PublishToken, TrustedPublisher
from ministry.errors import NotFound
from ministry.storage.publishers import (
    KEPT_AFTER_EXPIRY,
    burn_detail,
    duplicate_of,
    mint_detail,
    publisher_detail,
)
from ministry.storage.sqlite.database import Database, now

__all__ = [
    "INSERT_PUBLISHER",
    "PUBLISHER_COLUMNS",
    "PublishersMixin",
    "publisher_of",
    "publisher_values",
]

PUBLISHER_COLUMNS = (
    "publisher_id, index_name, project, provider, repository, workflow, environment, issuer, "
    "owner, added_by, created, pinned"
)
INSERT_PUBLISHER = f"INSERT INTO publishers ({PUBLISHER_COLUMNS}) VALUES ({', '.join('?' * 12)})"  # noqa: S608
_SELECT_PUBLISHERS = f"SELECT {PUBLISHER_COLUMNS} FROM publishers"  # noqa: S608


def _pairs(text: str) -> tuple[tuple[str, str], ...]:
    return tuple((name, value) for name, value in json.loads(text))


def publisher_of(row: sqlite3.Row) -> TrustedPublisher:
    """A ``publishers`` row."""
    return TrustedPublisher(
        publisher_id=row["publisher_id"],
        index=row["index_name"],
        project=NormalizedName(row["project"]),
        provider=row["provider"],
        repository=row["repository"],
        workflow=row["workflow"],
        environment=row["environment"],
        issuer=row["issuer"],
        owner=row["owner"],
        added_by=row["added_by"],
        created=datetime.fromisoformat(row["created"]),
        pinned=_pairs(row["pinned"]),
    )


def publisher_values(p: TrustedPublisher) -> tuple[object, ...]:
    """The values of a ``publishers`` row, in ``PUBLISHER_COLUMNS`` order."""
    return (p.publisher_id, p.index, p.project, p.provider, p.repository, p.workflow,
            p.environment, p.issuer, p.owner, p.added_by, p.created.isoformat(),
            json.dumps([list(pair) for pair in p.pinned]))  # fmt: skip


def _publish_token_of(row: sqlite3.Row) -> PublishToken:
    return PublishToken(
        token_id=row["token_id"],
        secret_hash=row["secret_hash"],
        publishers=tuple(json.loads(row["publishers"])),
        name=row["name"],
        created=datetime.fromisoformat(row["created"]),
        expires=datetime.fromisoformat(row["expires"]),
        revoked=bool(row["revoked"]),
        claims=_pairs(row["claims"]),
    )


def _instant(when: datetime) -> str:
    # UTC with every digit of the microseconds: expiries are compared as text, and
    # only one offset and one width make text order the order of time.
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def _publishers(
    c: sqlite3.Connection, index: str | None, project: str | None
) -> list[TrustedPublisher]:
    query, where, values = _SELECT_PUBLISHERS, [], []
    for column, value in (("index_name", index), ("project", project)):
        if value is not None:
            where.append(f"{column} = ?")
            values.append(value)
    if where:
        query += " WHERE " + " AND ".join(where)
    found = [publisher_of(row) for row in c.execute(query, values)]
    # By instant, not by text: a creation time may carry any offset.
    return sorted(found, key=lambda p: (p.created, p.publisher_id))


def _publisher(c: sqlite3.Connection, publisher_id: str) -> TrustedPublisher | None:
    row = c.execute(f"{_SELECT_PUBLISHERS} WHERE publisher_id = ?", (publisher_id,)).fetchone()
    return publisher_of(row) if row else None


def _token_index(c: sqlite3.Connection, token: PublishToken) -> str:
    """The index an exchange is audited under: its first publisher's."""
    first = _publisher(c, token.publishers[0]) if token.publishers else None
    return first.index if first else ""


class PublishersMixin(Database):
    """The ``PublisherStore`` role of ``MetadataStore``."""

    async def add_publisher(self, publisher: TrustedPublisher, actor: Actor) -> None:
        """Store a publisher; ``Conflict`` if the project has one for the same workflow."""

        def add(connection: sqlite3.Connection) -> None:
            with self._write(connection) as c:
                others = _publishers(c, publisher.index, publisher.project)
                refusal = duplicate_of(publisher, others)
                if refusal is not None:
                    raise refusal
                self._log(
                    c, actor, "add-publisher", publisher.index, project=publisher.project,
                    detail=publisher_detail(publisher),
                )  # fmt: skip
                c.execute(INSERT_PUBLISHER, publisher_values(publisher))

        await self._run(add)

    async def list_publishers(
        self, index: str | None = None, project: NormalizedName | None = None
    ) -> list[TrustedPublisher]:
        """Publishers, of one index and one project when given, oldest first."""
        return await self._run(lambda c: _publishers(c, index, project))

    async def get_publisher(self, publisher_id: str) -> TrustedPublisher | None:
        """One publisher by id."""
        return await self._run(lambda c: _publisher(c, publisher_id))

    async def remove_publisher(self, publisher_id: str, actor: Actor) -> None:
        """Remove a publisher; ``NotFound`` if there is none with that id."""

        def remove(connection: sqlite3.Connection) -> None:
            with self._write(connection) as c:
                publisher = _publisher(c, publisher_id)
                if publisher is None:
                    raise NotFound(f"No trusted publisher {publisher_id!r}.")
                self._log(
                    c, actor, "remove-publisher", publisher.index, project=publisher.project,
                    detail=publisher_detail(publisher),
                )  # fmt: skip
                c.execute("DELETE FROM publishers WHERE publisher_id = ?", (publisher_id,))

        await self._run(remove)

    async def pin_publisher(self, publisher_id: str, pinned: tuple[tuple[str, str], ...]) -> None:
        """Record the repository ids of a publisher's first exchange, unless some are recorded.

        One statement, so of two first exchanges racing the first write stays. A
        publisher removed meanwhile is left removed.
        """
        value = json.dumps([list(pair) for pair in pinned])
        await self._run(
            lambda c: c.execute(
                "UPDATE publishers SET pinned = ? WHERE publisher_id = ? AND pinned = '[]'",
                (value, publisher_id),
            )
        )

    async def use_jti(self, issuer: str, jti: str, expires: datetime) -> bool:
        """Record an identity token's id; False if it was recorded before (a replay).

        Ids whose tokens have expired are forgotten on the way: the verifier refuses an
        expired token before it gets here, so they can no longer be replayed.
        """

        def use(connection: sqlite3.Connection) -> bool:
            with self._write(connection) as c:
                c.execute("DELETE FROM used_jtis WHERE expires < ?", (_instant(now()),))
                cursor = c.execute(
                    "INSERT OR IGNORE INTO used_jtis VALUES (?, ?, ?)",
                    (issuer, jti, _instant(expires)),
                )
                return cursor.rowcount == 1

        return await self._run(use)

    async def add_publish_token(self, token: PublishToken, actor: Actor) -> None:
        """Store a minted token and audit the exchange; tokens expired a day ago go."""

        def add(connection: sqlite3.Connection) -> None:
            with self._write(connection) as c:
                forgotten = _instant(now() - KEPT_AFTER_EXPIRY)
                c.execute("DELETE FROM publish_tokens WHERE expires < ?", (forgotten,))
                self._log(c, actor, "mint-token", _token_index(c, token),
                          detail=mint_detail(token))  # fmt: skip
                c.execute(
                    "INSERT INTO publish_tokens (token_id, secret_hash, publishers, name,"
                    " created, expires, revoked, claims) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (token.token_id, token.secret_hash, json.dumps(list(token.publishers)),
                     token.name, token.created.isoformat(), _instant(token.expires),
                     int(token.revoked), json.dumps([list(pair) for pair in token.claims])),
                )  # fmt: skip

        await self._run(add)

    async def get_publish_token(self, token_id: str) -> PublishToken | None:
        """One minted token by its public id (gone a day after it expired)."""
        row = await self._run(
            lambda c: c.execute(
                "SELECT * FROM publish_tokens WHERE token_id = ?", (token_id,)
            ).fetchone()
        )
        return _publish_token_of(row) if row else None

    async def revoke_publish_token(self, token_id: str, actor: Actor) -> None:
        """End a minted token before it expires; ``NotFound`` if there is none."""

        def revoke(connection: sqlite3.Connection) -> None:
            with self._write(connection) as c:
                row = c.execute(
                    "SELECT * FROM publish_tokens WHERE token_id = ?", (token_id,)
                ).fetchone()
                if row is None:
                    raise NotFound(f"No publish token {token_id!r}.")
                token = _publish_token_of(row)
                self._log(c, actor, "burn-token", _token_index(c, token),
                          detail=burn_detail(token))  # fmt: skip
                c.execute("UPDATE publish_tokens SET revoked = 1 WHERE token_id = ?", (token_id,))

        await self._run(revoke)
