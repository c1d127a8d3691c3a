"""Index settings in Redis, one record per index."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import partial
from typing import Any

from redis.asyncio.client import Pipeline

from ministry.core.models import Actor, DistFile, IndexConfig, Token
from ministry.core.records import dumps, from_record, loads, to_record
from ministry.errors import Conflict, NotFound
from ministry.storage.redis.base import RedisDatabase, Transaction, now, text
from ministry.storage.redis.side_blobs import SIDE_BLOB, side_blobs

__all__ = ["IndexesMixin"]


def _entry(config: IndexConfig, created: str) -> str:
    return json.dumps({"created": created, "config": to_record(config)}, sort_keys=True)


class IndexesMixin(RedisDatabase):
    """The ``IndexStore`` role of ``MetadataStore``."""

    async def list_indexes(self) -> list[IndexConfig]:
        """Every index, by name."""
        values = await self.read(self.redis.hvals(self.key("indexes")))
        configs = [from_record(IndexConfig, json.loads(v)["config"]) for v in values]
        return sorted(configs, key=lambda c: c.name)

    async def create_index(self, config: IndexConfig, actor: Actor) -> None:
        """Create an index; ``Conflict`` if the name is taken."""

        async def work(tx: Transaction) -> None:
            if await tx.pipe.hexists(self.key("indexes"), config.name):
                raise Conflict(f"Index {config.name!r} exists already.")
            tx.log(actor, "add-index", config.name, detail=dumps(config))
            entry = _entry(config, now().isoformat())
            tx.write(lambda p: p.hset(self.key("indexes"), config.name, entry))

        await self.change(work)

    async def update_index(self, config: IndexConfig, actor: Actor) -> None:
        """Replace an index's settings."""

        async def work(tx: Transaction) -> None:
            current = await tx.pipe.hget(self.key("indexes"), config.name)
            if current is None:
                raise NotFound(f"No index {config.name!r}.")
            tx.log(actor, "update-index", config.name, detail=dumps(config))
            entry = _entry(config, json.loads(current)["created"])
            tx.write(lambda p: p.hset(self.key("indexes"), config.name, entry))

        await self.change(work)

    async def delete_index(self, name: str, actor: Actor) -> None:
        """Delete an index with everything in it (its publishers too); its filenames stay retired,
        its tokens die."""

        async def work(tx: Transaction) -> None:
            if not await tx.pipe.hexists(self.key("indexes"), name):
                raise NotFound(f"No index {name!r}.")
            tx.log(actor, "delete-index", name)
            files = await tx.pipe.hgetall(self.key("files", name))
            retired: Any = {  # the client types its keys narrower than it accepts
                text(f): str(json.loads(v)["sha256"]) for f, v in files.items()
            }
            projects = [text(p) for p in await tx.pipe.hkeys(self.key("projects", name))]
            doomed = [self.key(k, name) for k in ("projects", "files", "sha256", "roles")]
            doomed += [
                self.key(SIDE_BLOB, name, side)
                for value in files.values()
                for side in side_blobs(loads(DistFile, value))
            ]
            doomed += [
                self.key(k, name, p) for p in projects for k in ("project-files", "releases")
            ]
            tx.write(lambda p: p.hdel(self.key("indexes"), name))
            tx.write(lambda p: p.delete(*doomed))
            if retired:
                tx.write(lambda p: p.hset(self.key("retired", name), mapping=retired))
            # Its trusted publishers go too: one left pending would create its project in
            # an index made again under this name.
            publishers = await tx.pipe.hgetall(self.key("publishers"))
            gone = [text(i) for i, v in publishers.items() if json.loads(v)["index"] == name]
            if gone:
                tx.write(lambda p: p.hdel(self.key("publishers"), *gone))
            for value in await tx.pipe.hvals(self.key("tokens")):
                token = loads(Token, value)
                if token.index == name and not token.revoked:
                    revoked = dumps(replace(token, revoked=True))
                    tx.write(partial(_set_token, self.key("tokens"), token.token_id, revoked))

        await self.change(work)


def _set_token(key: str, token_id: str, value: str, pipe: Pipeline) -> Any:
    return pipe.hset(key, token_id, value)
