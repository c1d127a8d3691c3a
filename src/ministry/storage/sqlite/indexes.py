"""Index settings, one JSON document per index."""

from __future__ import annotations

import sqlite3

from ministry.core.models import Actor, IndexConfig
from ministry.errors import Conflict, NotFound
from ministry.storage.sqlite.database import Database, now
from ministry.storage.sqlite.rows import index_json, index_of

__all__ = ["IndexesMixin"]


class IndexesMixin(Database):
    """The ``IndexStore`` role of ``MetadataStore``."""

    async def list_indexes(self) -> list[IndexConfig]:
        """Every index, by name."""
        rows = await self._lookup(
            lambda c: c.execute("SELECT * FROM indexes ORDER BY name").fetchall()
        )
        return [index_of(row) for row in rows]

    async def create_index(self, config: IndexConfig, actor: Actor) -> None:
        """Create an index; ``Conflict`` if the name is taken."""

        def create(connection: sqlite3.Connection) -> None:
            with self._write(connection) as c:
                if c.execute("SELECT 1 FROM indexes WHERE name = ?", (config.name,)).fetchone():
                    raise Conflict(f"Index {config.name!r} exists already.")
                self._log(c, actor, "add-index", config.name, detail=index_json(config))
                c.execute(
                    "INSERT INTO indexes VALUES (?, ?, ?)",
                    (config.name, now().isoformat(), index_json(config)),
                )

        await self._run(create)

    async def update_index(self, config: IndexConfig, actor: Actor) -> None:
        """Replace an index's settings."""

        def update(connection: sqlite3.Connection) -> None:
            with self._write(connection) as c:
                cursor = c.execute(
                    "UPDATE indexes SET config = ? WHERE name = ?",
                    (index_json(config), config.name),
                )
                if cursor.rowcount == 0:
                    raise NotFound(f"No index {config.name!r}.")
                self._log(c, actor, "update-index", config.name, detail=index_json(config))

        await self._run(update)

    async def delete_index(self, name: str, actor: Actor) -> None:
        """Delete an index with everything in it (its publishers too); its filenames stay retired,
        its tokens die."""

        def delete(connection: sqlite3.Connection) -> None:
            with self._write(connection) as c:
                if c.execute("DELETE FROM indexes WHERE name = ?", (name,)).rowcount == 0:
                    raise NotFound(f"No index {name!r}.")
                serial, _ = self._log(c, actor, "delete-index", name)
                # An index made again under this name must not serve other bytes at the
                # URLs of the old one, nor honour tokens that were meant for it.
                c.execute(
                    "INSERT OR REPLACE INTO retired_files"
                    " SELECT index_name, filename, sha256, ? FROM files WHERE index_name = ?",
                    (serial, name),
                )
                # Its trusted publishers go too: one left pending would create its
                # project in an index made again under this name.
                for table in ("files", "releases", "projects", "project_roles", "publishers"):
                    c.execute(f"DELETE FROM {table} WHERE index_name = ?", (name,))  # noqa: S608
                c.execute("UPDATE tokens SET revoked = 1 WHERE index_name = ?", (name,))

        await self._run(delete)
