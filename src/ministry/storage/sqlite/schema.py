"""The SQLite schema as a list of migrations; ``PRAGMA user_version`` counts those applied.

A data directory made by an older release is brought up to date on open, in one
transaction, and only once even when several processes open it at the same time.
"""

from __future__ import annotations

import sqlite3

from ministry.errors import StorageError

__all__ = ["migrate"]

_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE IF NOT EXISTS changelog (
            serial INTEGER PRIMARY KEY AUTOINCREMENT,
            time TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            index_name TEXT NOT NULL,
            project TEXT,
            version TEXT,
            filename TEXT,
            detail TEXT
        )""",
        """CREATE TABLE IF NOT EXISTS projects (
            index_name TEXT NOT NULL,
            name TEXT NOT NULL,
            display_name TEXT NOT NULL,
            created TEXT NOT NULL,
            last_serial INTEGER NOT NULL,
            PRIMARY KEY (index_name, name)
        )""",
        """CREATE TABLE IF NOT EXISTS releases (
            index_name TEXT NOT NULL,
            project TEXT NOT NULL,
            canonical_version TEXT NOT NULL,
            version TEXT NOT NULL,
            created TEXT NOT NULL,
            metadata TEXT NOT NULL,
            PRIMARY KEY (index_name, project, canonical_version)
        )""",
        """CREATE TABLE IF NOT EXISTS files (
            index_name TEXT NOT NULL,
            filename TEXT NOT NULL,
            project TEXT NOT NULL,
            version TEXT NOT NULL,
            packagetype TEXT NOT NULL,
            python_version TEXT NOT NULL,
            requires_python TEXT,
            size INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            md5 TEXT NOT NULL,
            blake2b_256 TEXT NOT NULL,
            upload_time TEXT NOT NULL,
            uploader TEXT NOT NULL,
            metadata_sha256 TEXT,
            yanked TEXT,
            serial INTEGER NOT NULL,
            PRIMARY KEY (index_name, filename)
        )""",
        "CREATE INDEX IF NOT EXISTS files_by_project ON files (index_name, project)",
        "CREATE INDEX IF NOT EXISTS files_by_sha256 ON files (index_name, sha256)",
        """CREATE TABLE IF NOT EXISTS users (
            name TEXT PRIMARY KEY,
            password_hash TEXT NOT NULL,
            created TEXT NOT NULL,
            is_admin INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE IF NOT EXISTS tokens (
            token_id TEXT PRIMARY KEY,
            user TEXT NOT NULL REFERENCES users (name),
            secret_hash TEXT NOT NULL,
            created TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            expires TEXT,
            last_used TEXT,
            revoked INTEGER NOT NULL DEFAULT 0
        )""",
    ),
    (
        "ALTER TABLE changelog ADD COLUMN address TEXT NOT NULL DEFAULT 'local'",
        "ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE tokens ADD COLUMN index_name TEXT",
        "ALTER TABLE tokens ADD COLUMN projects TEXT NOT NULL DEFAULT '[]'",
        """CREATE TABLE indexes (
            name TEXT PRIMARY KEY,
            created TEXT NOT NULL,
            config TEXT NOT NULL
        )""",
        """CREATE TABLE groups (
            name TEXT PRIMARY KEY,
            created TEXT NOT NULL
        )""",
        """CREATE TABLE group_members (
            group_name TEXT NOT NULL REFERENCES groups (name) ON DELETE CASCADE,
            user TEXT NOT NULL REFERENCES users (name),
            PRIMARY KEY (group_name, user)
        )""",
        """CREATE TABLE retired_files (
            index_name TEXT NOT NULL,
            filename TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            serial INTEGER NOT NULL,
            PRIMARY KEY (index_name, filename)
        )""",
        "CREATE INDEX changelog_by_index ON changelog (index_name, serial)",
        "CREATE INDEX projects_by_name ON projects (name)",
    ),
    (
        """CREATE TABLE upstream_pages (
            index_name TEXT NOT NULL,
            project TEXT NOT NULL,
            status INTEGER NOT NULL,
            fetched TEXT NOT NULL,
            document TEXT NOT NULL,
            token TEXT NOT NULL,
            etag TEXT,
            last_modified TEXT,
            PRIMARY KEY (index_name, project)
        )""",
        """CREATE TABLE cached_files (
            index_name TEXT NOT NULL,
            filename TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            cached TEXT NOT NULL,
            last_access TEXT NOT NULL,
            PRIMARY KEY (index_name, filename)
        )""",
        "CREATE INDEX cached_files_by_access ON cached_files (last_access)",
    ),
    (
        # A project's files come sorted by filename straight from the index: with only
        # (index_name, project), SQLite walked the primary key in filename order
        # instead, reading every file of the index for one project's page.
        "CREATE INDEX files_by_project_filename ON files (index_name, project, filename)",
        "DROP INDEX files_by_project",
    ),
    (
        # Scheduled mirror jobs: the last run of each, and the lease of the process
        # running one now. ``until`` is UTC ISO text of fixed width, so that text
        # comparison in SQL is time order (see ``sqlite.mirrors``).
        """CREATE TABLE mirror_runs (
            job TEXT PRIMARY KEY,
            index_name TEXT NOT NULL,
            started TEXT NOT NULL,
            finished TEXT NOT NULL,
            ok INTEGER NOT NULL,
            files INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            failed INTEGER NOT NULL,
            message TEXT NOT NULL
        )""",
        """CREATE TABLE mirror_claims (
            job TEXT PRIMARY KEY,
            until TEXT NOT NULL
        )""",
    ),
    (
        # The first sha256 a proxy index saw for each upstream filename: a name, once
        # served, keeps its bytes (docs/security.md, "Pinned proxied files").
        """CREATE TABLE pinned_files (
            index_name TEXT NOT NULL,
            project TEXT NOT NULL,
            filename TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            PRIMARY KEY (index_name, project, filename)
        )""",
        # Owners and maintainers of projects (docs/security.md, "Project ownership").
        """CREATE TABLE project_roles (
            index_name TEXT NOT NULL,
            project TEXT NOT NULL,
            principal TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('owner', 'maintainer')),
            PRIMARY KEY (index_name, project, principal)
        )""",
        # A project made before owners existed belongs to whoever uploaded its first
        # file: the oldest 'add-file' of the audit log, else the oldest file's uploader.
        # Only a user can own: what the command line imported ('cli:…') or a name with
        # no account left is owned by nobody, so the index's admins decide.
        """WITH first_changes AS (
            SELECT index_name, project, actor FROM changelog WHERE serial IN (
                SELECT min(serial) FROM changelog WHERE action = 'add-file'
                GROUP BY index_name, project)
        ), first_files AS (
            SELECT index_name, project, uploader, min(upload_time) FROM files
            GROUP BY index_name, project
        ), firsts AS (
            SELECT p.index_name, p.name, coalesce(c.actor, f.uploader) AS uploader
            FROM projects p
            LEFT JOIN first_changes c ON c.index_name = p.index_name AND c.project = p.name
            LEFT JOIN first_files f ON f.index_name = p.index_name AND f.project = p.name
        )
        INSERT INTO project_roles (index_name, project, principal, role)
        SELECT index_name, name, uploader, 'owner' FROM firsts
        WHERE uploader IN (SELECT name FROM users)""",
    ),
    (
        # Trusted publishers: the CI workflows that may publish a project without a
        # secret (``core.trusted_publishing``). ``pinned`` is JSON: [[name, id], ...].
        """CREATE TABLE publishers (
            publisher_id TEXT PRIMARY KEY,
            index_name TEXT NOT NULL,
            project TEXT NOT NULL,
            provider TEXT NOT NULL,
            repository TEXT NOT NULL,
            workflow TEXT NOT NULL,
            environment TEXT,
            issuer TEXT NOT NULL,
            owner TEXT,
            added_by TEXT NOT NULL,
            created TEXT NOT NULL,
            pinned TEXT NOT NULL DEFAULT '[]'
        )""",
        "CREATE INDEX publishers_by_project ON publishers (index_name, project)",
        # The ids of identity tokens already exchanged, until they expire (UTC ISO text
        # of fixed width, so that text order is time order; see ``sqlite.publishers``).
        """CREATE TABLE used_jtis (
            issuer TEXT NOT NULL,
            jti TEXT NOT NULL,
            expires TEXT NOT NULL,
            PRIMARY KEY (issuer, jti)
        )""",
        "CREATE INDEX used_jtis_by_expiry ON used_jtis (expires)",
        # Upload tokens minted for a run: ``publishers`` and ``claims`` are JSON.
        """CREATE TABLE publish_tokens (
            token_id TEXT PRIMARY KEY,
            secret_hash TEXT NOT NULL,
            publishers TEXT NOT NULL,
            name TEXT NOT NULL,
            created TEXT NOT NULL,
            expires TEXT NOT NULL,
            revoked INTEGER NOT NULL DEFAULT 0,
            claims TEXT NOT NULL DEFAULT '[]'
        )""",
        "CREATE INDEX publish_tokens_by_expiry ON publish_tokens (expires)",
        # sha256 of the file's PEP 740 provenance document in the blob store (None: none).
        "ALTER TABLE files ADD COLUMN provenance_sha256 TEXT",
        # The store's generation (``ChangeLog.generation``): one random id, made once here.
        "CREATE TABLE generation (id TEXT NOT NULL)",
        "INSERT INTO generation (id) VALUES (lower(hex(randomblob(16))))",
    ),
    (
        # The bounded proxy cache (``services.proxy_cache``): files a mirror holds are
        # never evicted, and a blob is deleted only when no record names it any more,
        # which these indexes let one query tell for a batch of blobs.
        "ALTER TABLE cached_files ADD COLUMN mirrored INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX cached_files_by_sha256 ON cached_files (sha256)",
        "CREATE INDEX files_by_blob ON files (sha256)",
        "CREATE INDEX files_by_metadata_blob ON files (metadata_sha256)",
        "CREATE INDEX files_by_provenance_blob ON files (provenance_sha256)",
    ),
)


def migrate(connection: sqlite3.Connection) -> None:
    """Apply the migrations this database has not seen yet.

    A database from a newer release is refused rather than opened: this release
    would write its own version over the newer one, and the newer release would
    then replay migrations whose tables already exist, and never start again.
    """
    connection.execute("BEGIN IMMEDIATE")
    try:
        (applied,) = connection.execute("PRAGMA user_version").fetchone()
        if applied > len(_MIGRATIONS):
            raise StorageError(
                f"The metadata database was written by a newer release of Ministry (schema "
                f"{applied}; this release knows schema {len(_MIGRATIONS)}). Run that release "
                "again, or restore a backup taken before the upgrade."
            )
        for number, statements in enumerate(_MIGRATIONS[applied:], start=applied + 1):
            try:
                for statement in statements:
                    connection.execute(statement)
            except sqlite3.Error as exc:
                raise StorageError(
                    f"Upgrading the metadata database to schema {number} failed ({exc}); "
                    "nothing was changed."
                ) from exc
        connection.execute(f"PRAGMA user_version = {len(_MIGRATIONS)}")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
