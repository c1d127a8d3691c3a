"""Everything in the Redis store as records, and records back into an empty store.

Trusted publishers travel; the upload tokens minted for their runs and the ids of
the identity tokens exchanged do not: they live minutes, and a migration or a
restore (done with the server stopped) outlasts them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from packaging.utils import canonicalize_version
from redis.asyncio.client import Pipeline

from ministry.core.models import (
    CachedFile,
    CachedPage,
    DistFile,
    PinnedFile,
    Project,
    Release,
    Token,
)
from ministry.core.records import dumps, from_record, to_record
from ministry.core.trusted_publishing import TrustedPublisher
from ministry.storage.redis.base import RedisDatabase, text
from ministry.storage.redis.mirrors import mirror_run_from_record
from ministry.storage.redis.side_blobs import CACHED_BLOB, SIDE_BLOB, side_blobs

__all__ = ["Record", "TransferMixin"]

#: A kind ("file", "user", …) and the value's JSON record.
Record = tuple[str, dict[str, Any]]
_BATCH = 1000


class TransferMixin(RedisDatabase):
    """The ``TransferStore`` role of ``MetadataStore``: export and import of every record."""

    async def _hash_values(self, key: str) -> list[dict[str, Any]]:
        return [json.loads(v) for v in await self.read(self.redis.hvals(key))]

    async def export_records(self) -> AsyncIterator[Record]:
        """Every value the store holds, in an order ``import_records`` can follow."""
        indexes = await self._hash_values(self.key("indexes"))
        for entry in indexes:
            yield "index", entry
        for user in await self._hash_values(self.key("users")):
            yield "user", user
        for group in await self._hash_values(self.key("groups")):
            yield "group", group
        for token in await self.list_tokens_of_everyone():
            yield "token", to_record(token)
        for index in sorted(e["config"]["name"] for e in indexes):
            async for record in self._export_index(index):
                yield record
        for publisher in await self._hash_values(self.key("publishers")):
            yield "publisher", publisher
        for change in await self.changes_since(0, limit=2**62):
            yield "change", to_record(change)
        async for record in self._export_caches():
            yield record
        # Mirror jobs' last runs travel; their claims (leases of running processes) do not.
        for run in await self._hash_values(self.key("mirror-runs")):
            yield "mirror-run", run

    async def list_tokens_of_everyone(self) -> list[Token]:
        """Every token, with its last use."""
        tokens = [from_record(Token, t) for t in await self._hash_values(self.key("tokens"))]
        return await self._with_last_use(tokens)  # type: ignore[attr-defined, no-any-return]

    async def _export_index(self, index: str) -> AsyncIterator[Record]:
        projects = await self._hash_values(self.key("projects", index))
        for project in projects:
            yield "project", project
            for release in await self._hash_values(self.key("releases", index, project["name"])):
                yield "release", release
        for file in await self._hash_values(self.key("files", index)):
            yield "file", file
        roles = await self.read(self.redis.hgetall(self.key("roles", index)))
        for name, held in roles.items():
            for principal, role in json.loads(held).items():
                yield "role", {
                    "index": index, "project": text(name), "principal": principal,
                    "role": role,
                }  # fmt: skip
        retired = await self.read(self.redis.hgetall(self.key("retired", index)))
        for filename, sha256 in retired.items():
            yield "retired", {"index": index, "filename": text(filename), "sha256": text(sha256)}

    async def _export_caches(self) -> AsyncIterator[Record]:
        for index in await self.read(self.redis.smembers(self.key("cached-indexes"))):
            for name in await self.read(self.redis.hkeys(self.key("cached", text(index)))):
                entry = await self.get_cached_file(text(index), text(name))  # type: ignore[attr-defined]
                if entry is not None:
                    yield "cached", to_record(entry)
        for index in await self.read(self.redis.hkeys(self.key("indexes"))):
            for page in await self._hash_values(self.key("pages", text(index))):
                yield "page", page
            pins = await self.read(self.redis.hgetall(self.key("pins", text(index))))
            for field, sha256 in pins.items():
                project, _, filename = text(field).partition("/")
                pin = PinnedFile(text(index), project, filename, text(sha256))
                yield "pinned", to_record(pin)

    async def import_records(self, records: AsyncIterable[Record]) -> int:
        """Load records into this (empty) store, keeping every serial; returns how many."""
        count, serial = 0, 0
        pipe = self.redis.pipeline(transaction=False)
        # A project's roles are one value: gathered here, written at the end.
        roles: dict[tuple[str, str], dict[str, str]] = {}
        async for kind, record in records:
            if kind == "role":
                key = (record["index"], record["project"])
                roles.setdefault(key, {})[record["principal"]] = record["role"]
            else:
                self._queue(pipe, kind, record)
            if kind == "change":
                serial = max(serial, int(record["serial"]))
            count += 1
            if count % _BATCH == 0:
                await self.read(pipe.execute())
        for (index, project), held in roles.items():
            pipe.hset(self.key("roles", index), project, json.dumps(held, sort_keys=True))
        pipe.set(self.key("serial"), serial)
        await self.read(pipe.execute())
        return count

    def _queue(self, pipe: Pipeline, kind: str, r: dict[str, Any]) -> None:
        key = self.key
        if kind == "index":
            pipe.hset(key("indexes"), r["config"]["name"], json.dumps(r, sort_keys=True))
        elif kind in ("user", "group"):
            pipe.hset(key(kind + "s"), r["name"], json.dumps(r, sort_keys=True))
        elif kind == "token":
            token = from_record(Token, r)
            pipe.hset(key("tokens"), token.token_id, dumps(token))
            pipe.sadd(key("user-tokens", token.user), token.token_id)
            if token.last_used:
                pipe.hset(key("token-used"), token.token_id, token.last_used.isoformat())
        elif kind == "project":
            pipe.hset(key("projects", r["index"]), r["name"], dumps(from_record(Project, r)))
        elif kind == "release":
            release = from_record(Release, r)
            releases = key("releases", release.index, release.project)
            pipe.hset(releases, canonicalize_version(release.version), dumps(release))
        elif kind == "file":
            file = from_record(DistFile, r)
            pipe.hset(key("files", file.index), file.filename, dumps(file))
            pipe.sadd(key("project-files", file.index, file.project), file.filename)
            pipe.hset(key("sha256", file.index), file.sha256, file.filename)
            for side in side_blobs(file):
                pipe.sadd(key(SIDE_BLOB, file.index, side), file.filename)
        elif kind == "publisher":
            publisher = from_record(TrustedPublisher, r)
            pipe.hset(key("publishers"), publisher.publisher_id, dumps(publisher))
        elif kind == "retired":
            pipe.hset(key("retired", r["index"]), r["filename"], r["sha256"])
        elif kind == "change":
            pipe.zadd(
                key("changes"), {json.dumps(r, separators=(",", ":"), sort_keys=True): r["serial"]}
            )
        elif kind == "page":
            pipe.hset(key("pages", r["index"]), r["project"], dumps(from_record(CachedPage, r)))
        elif kind == "cached":
            entry = from_record(CachedFile, r)
            pipe.hset(key("cached", entry.index), entry.filename, dumps(entry))
            pipe.sadd(key(CACHED_BLOB, entry.index, entry.sha256), entry.filename)
            pipe.hset(
                key("cached-used", entry.index), entry.filename, entry.last_access.isoformat()
            )
            pipe.sadd(key("cached-indexes"), entry.index)
        elif kind == "pinned":
            pipe.hset(key("pins", r["index"]), f"{r['project']}/{r['filename']}", r["sha256"])
        elif kind == "mirror-run":
            run = mirror_run_from_record(r)
            pipe.hset(key("mirror-runs"), run.job, dumps(run))
        else:
            raise ValueError(f"unknown record kind {kind!r}")
