"""The shared metadata store: Redis, for many stateless nodes (``--db redis://host:port/N``).

Keys live under a prefix (``ministry`` unless the URL says ``?prefix=…``), so one
Redis database can hold several stores.
"""

from __future__ import annotations

from ministry.storage.redis.accounts import AccountsMixin
from ministry.storage.redis.caches import CachesMixin
from ministry.storage.redis.indexes import IndexesMixin
from ministry.storage.redis.mirrors import MirrorsMixin
from ministry.storage.redis.packages import PackagesMixin
from ministry.storage.redis.publishers import PublishersMixin
from ministry.storage.redis.transfer import TransferMixin

__all__ = ["RedisMetadataStore"]


class RedisMetadataStore(
    PackagesMixin,
    AccountsMixin,
    IndexesMixin,
    CachesMixin,
    MirrorsMixin,
    PublishersMixin,
    TransferMixin,
):
    """``MetadataStore`` on a Redis database."""
