"""The embedded metadata store: SQLite in WAL mode, one file in the data directory."""

from __future__ import annotations

from ministry.storage.sqlite.accounts import AccountsMixin
from ministry.storage.sqlite.caches import CachesMixin
from ministry.storage.sqlite.indexes import IndexesMixin
from ministry.storage.sqlite.mirrors import MirrorsMixin
from ministry.storage.sqlite.packages import PackagesMixin
from ministry.storage.sqlite.publishers import PublishersMixin
from ministry.storage.sqlite.roles import RolesMixin
from ministry.storage.sqlite.transfer import TransferMixin

__all__ = ["SqliteMetadataStore"]


class SqliteMetadataStore(
    PackagesMixin,
    RolesMixin,
    AccountsMixin,
    IndexesMixin,
    CachesMixin,
    MirrorsMixin,
    PublishersMixin,
    TransferMixin,
):
    """``MetadataStore`` on one SQLite file."""
