"""Blobs in an S3 bucket, content-addressed by sha256 (``--storage s3://bucket/prefix``).

Why S3: several Ministry nodes behind a load balancer must all see every file the
moment it is published, and none may keep state of its own. Object storage (AWS
S3, or SeaweedFS, MinIO, Ceph and the like) is what every shared package store
uses; it is strongly consistent for new keys, so an upload on one node is
readable on every other as soon as ``put_file`` returns.

How it keeps the ``BlobStore`` promises:

* **Configuration** comes from where every AWS SDK takes it: ``AWS_ENDPOINT_URL``
  (or ``AWS_ENDPOINT_URL_S3``), ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``,
  ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, the shared config and credentials
  files, instance roles. boto3 reads them; this module reads none itself, so a
  deployment configures Ministry exactly like its other AWS tools. Path-style
  URLs, which most self-hosted servers need, are what botocore uses for an
  endpoint given as an IP address; for a host name set ``addressing_style = path``
  in the ``s3`` section of the shared config file.
* **Keys** are ``<prefix>/sha256/<ab>/<cd>/<sha256>``, the layout of the file
  store, so the two can be copied into each other. A key is built only from a
  validated hex digest: no input can name another object.
* **Writes are verified first.** The caller computed the sha256 while spooling
  the upload to a local file; only then does ``put_file`` send it, streaming
  from the file (a multipart upload for big files, never the whole file in
  memory). S3 shows an object only once its upload completed, so a key never
  holds partial bytes. (A bucket lifecycle rule that aborts incomplete multipart
  uploads after a day reclaims the parts of an upload cut short by a crash.)
  Blobs are immutable: a key that exists already never gets other bytes. A small
  blob whose bytes are checked here to be its key's (``put_bytes``, and files up to
  ``_BLIND_PUT``) is simply PUT: one request, and if the key existed it gets the
  same bytes again with ``LastModified`` now, as ``BlobStore.put_file`` asks. Any
  other is looked up first and, if it exists, copied onto itself instead (two
  requests, but no upload of bytes the bucket has).
* **Quarantine** copies a blob to ``<prefix>/quarantine/<sha256>.<time>`` and
  deletes the original: S3 has no rename, and the copy is server-side. Eviction
  sets blobs aside the same way, to ``<prefix>/evicting/<sha256>`` (``set_aside``).
* **Reads stream.** Opening a blob is one GET of its first 64 KiB, whose answer also
  gives its size (no HEAD first): a blob that small is then read from memory, and any
  other bytes come from a ranged GET of their own, its body read in bounded chunks. With
  ``redirect`` on, downloads can instead go straight to S3 through a pre-signed URL
  that makes S3 send the same headers Ministry would.
* **boto3 is synchronous**, so every call runs in a thread pool of this store's own,
  as large as the client's pool of connections (``_CONNECTIONS``), and the loop never
  waits on the network. The event loop's default pool has only a few threads per core:
  shared, a handful of slow downloads or concurrent uploads would queue every other
  S3 call (and every other use of that pool) behind them. boto3's clients are
  thread-safe; one is shared by all threads, its connections kept alive between calls.
* **Errors** become ``StorageError`` (``NotFound`` for a missing key;
  ``StorageUnavailable`` when S3 cannot be reached, times out or answers 5xx).
  Their messages, which clients read, are built from the error code alone —
  never from the server's text, the endpoint or anything that could carry a
  credential; the chained cause carries the details to the server log, and the
  start-up check adds the bucket and endpoint for the operator.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import boto3
import boto3.exceptions
import boto3.s3.transfer
import botocore.config
import botocore.exceptions

from ministry.core.hashing import sha256_hex
from ministry.errors import NotFound, StorageError, StorageUnavailable
from ministry.storage.manifest_keys import NAME, manifest_directory, manifest_path
from ministry.storage.protocols import StoredBlob

__all__ = ["S3Blob", "S3BlobStore"]

T = TypeVar("T")
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_CHUNK = 256 * 1024
#: Bytes the GET that opens a blob asks for: a small blob (most metadata files and many
#: wheels) is read whole in that one request; a larger one costs 64 KiB more than a HEAD.
_FIRST = 64 * 1024
#: The answer to a range over an empty object.
_EMPTY = frozenset({"InvalidRange", "416"})
#: Manifests read at once while listing: a page of keys is as many GETs.
_READS_AT_ONCE = 16
_URL_EXPIRY = 3600  # seconds a pre-signed download URL stays valid
_MiB = 1024 * 1024
#: Files up to this size are hashed and PUT without a look first (the module docstring):
#: hashing a MiB costs about a millisecond, a look one more request.
_BLIND_PUT = _MiB
#: Connections to S3, and threads making calls on them.
_CONNECTIONS = 32
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
_DENIED = frozenset(
    {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden"}
)
# Answers that say "not now" rather than "no": S3 asks to slow down, or gave up waiting.
_BUSY = frozenset({"SlowDown", "RequestTimeout", "ServiceUnavailable", "InternalError"})
_UNREACHABLE = "The blob store (S3) cannot be reached right now; try again shortly."

# Parts of 16 MiB that s3transfer reads straight from the file, two at a time. Each
# part in flight holds about 2 MiB (botocore checksums and frames the body in 1 MiB
# blocks), so an upload uses ~4.5 MiB of memory whatever the file's size.
_TRANSFER = boto3.s3.transfer.TransferConfig(
    multipart_threshold=16 * _MiB,
    multipart_chunksize=16 * _MiB,
    max_concurrency=2,
    use_threads=True,
)


def _check_key(sha256: str) -> str:
    if not _SHA256.match(sha256):
        raise NotFound(f"No blob {sha256[:80]!r}.")
    return sha256


def _attachment(filename: str) -> str:
    """``attachment; filename="…"``, safe for any filename (RFC 6266)."""
    fallback = "".join(
        "_" if ord(c) < 0x20 or ord(c) >= 0x7F or c in '"\\' else c for c in filename
    )
    value = f'attachment; filename="{fallback}"'
    if fallback != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


def _code_of(exc: botocore.exceptions.ClientError) -> str:
    error = exc.response.get("Error", {}) if isinstance(exc.response, dict) else {}
    return str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))


def _status_of(exc: botocore.exceptions.ClientError) -> int:
    metadata = exc.response.get("ResponseMetadata", {}) if isinstance(exc.response, dict) else {}
    return int(metadata.get("HTTPStatusCode") or 0)


def _server_time(response: Any) -> datetime:
    """The S3 server's clock when it answered (its ``Date`` header), else ours."""
    date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        return parsedate_to_datetime(date) if date else datetime.now(UTC)
    except (TypeError, ValueError):
        return datetime.now(UTC)


def _holds(path: Path, sha256: str) -> bool:
    """Whether a file is small enough to PUT without a look first and, read now, has
    exactly the bytes of ``sha256`` (blocking: called in a worker thread)."""
    if path.stat().st_size > _BLIND_PUT:
        return False
    return hashlib.sha256(path.read_bytes()).hexdigest() == sha256


def _first(client: Any, *, bucket: str, key: str) -> tuple[int, bytes]:
    """The size of an object and up to ``_FIRST`` of its first bytes, in one ranged GET
    read whole (its connection goes back to the pool). An empty object has no byte to
    range over (416): a HEAD says its size then."""
    try:
        response = client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{_FIRST - 1}")
    except botocore.exceptions.ClientError as exc:
        if _code_of(exc) not in _EMPTY:
            raise
        return int(client.head_object(Bucket=bucket, Key=key)["ContentLength"]), b""
    body = response["Body"]
    try:
        first = bytes(body.read(_FIRST))
    finally:
        body.close()
    whole = str(response.get("ContentRange") or "").rpartition("/")[2]
    # A server that ignores the range answers 200 with the object: its length is the size.
    return int(whole) if whole.isdigit() else int(response["ContentLength"]), first


def _read(body: Any, size: int, _client: Any) -> bytes:
    """Up to ``size`` bytes of a response body (blocking: called in a worker thread)."""
    return bytes(body.read(size))


class S3Blob:
    """An open blob: its size, the first bytes its opening GET brought (``first``), and
    the rest by ranged GETs streamed in bounded chunks."""

    def __init__(self, store: S3BlobStore, key: str, size: int, first: bytes = b"") -> None:
        self._store = store
        self._key = key
        self._size = size
        self._first = first

    @property
    def size(self) -> int:
        """Length in bytes."""
        return self._size

    async def chunks(self, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes ``start``..``end`` (inclusive): what ``first`` holds of them, then one
        ranged GET for the rest, if any, read in the thread pool."""
        if start > end:
            return
        if start < len(self._first):
            yield self._first[start : end + 1]
            start = len(self._first)
            if start > end:
                return
        store = self._store
        response = await store._call(
            lambda client: client.get_object(
                Bucket=store.bucket, Key=self._key, Range=f"bytes={start}-{end}"
            ),
            missing=self._key,
        )
        body = response["Body"]
        try:
            remaining = end - start + 1
            while remaining > 0:
                chunk = await store._call(functools.partial(_read, body, min(_CHUNK, remaining)))
                if not chunk:
                    raise StorageError("A stored file is shorter than recorded.")
                remaining -= len(chunk)
                yield chunk
        finally:
            # Closing before the end drops the connection instead of draining it.
            body.close()

    async def close(self) -> None:
        """Nothing is held between reads: ``first`` is in memory, each range a request."""


class S3BlobStore:
    """``BlobStore`` on an S3 bucket (any S3-compatible server)."""

    #: Keys per listing request: the most S3 gives (tests page through fewer).
    listing_page = 1000

    def __init__(self, bucket: str, prefix: str, *, redirect: bool = False) -> None:
        if not bucket:
            raise StorageError("An S3 store needs a bucket: s3://BUCKET/PREFIX.")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.redirect = redirect
        self._client: Any = None
        self._threads: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def key_of(self, sha256: str) -> str:
        """The object key of a blob: two levels of fan-out, as in the file store."""
        key = _check_key(sha256)
        return self._under_prefix(f"sha256/{key[:2]}/{key[2:4]}/{key}")

    def _under_prefix(self, path: str) -> str:
        return f"{self.prefix}/{path}" if self.prefix else path

    def _connect(self) -> Any:
        """The shared client, created on first use (in a worker thread: it reads files)."""
        with self._lock:
            if self._client is None:
                config = botocore.config.Config(
                    connect_timeout=10,
                    read_timeout=60,
                    # Standard retries back off on throttling and 5xx; AWS_MAX_ATTEMPTS
                    # still sets how many attempts.
                    retries={"mode": "standard"},
                    # As many connections as ``_threads`` has threads.
                    max_pool_connections=_CONNECTIONS,
                    # Signature V4 everywhere, pre-signed URLs included (botocore would sign
                    # those with V2, which AWS refuses for newer buckets and regions).
                    signature_version="s3v4",
                    user_agent_extra="ministry-of-packages",
                )
                try:
                    self._client = boto3.session.Session().client("s3", config=config)
                except ValueError as exc:  # a malformed AWS_ENDPOINT_URL, region or the like
                    raise StorageError(f"The S3 store is misconfigured: {exc}") from exc
            return self._client

    @property
    def endpoint(self) -> str:
        """The endpoint in use (for messages), once connected."""
        if self._client is None:
            return "the configured S3 endpoint"
        return str(self._client.meta.endpoint_url)

    def _error(self, exc: Exception, missing: str | None) -> NotFound | StorageError:
        """The domain error for a failed call, with a message fit for clients."""
        if isinstance(exc, boto3.exceptions.Boto3Error):
            # s3transfer wraps the ClientError of a failed upload; its text quotes the server.
            cause = exc.__cause__ or exc.__context__
            if isinstance(
                cause, botocore.exceptions.ClientError | botocore.exceptions.BotoCoreError
            ):
                return self._error(cause, missing)
            return StorageError(f"The blob store (S3) failed ({type(exc).__name__}).")
        if isinstance(exc, botocore.exceptions.ClientError):
            code = _code_of(exc)
            if missing is not None and code in _MISSING:
                return NotFound(f"The stored file {missing.rpartition('/')[2]} is missing.")
            if code == "NoSuchBucket":
                return StorageError("The blob store's S3 bucket does not exist.")
            if code in _DENIED:
                return StorageError(
                    f"The blob store (S3) refused access ({code}): check the credentials "
                    "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or the profile) and the "
                    "bucket's policy."
                )
            if code in _BUSY or _status_of(exc) >= 500:
                return StorageUnavailable(_UNREACHABLE)
            return StorageError(f"The blob store (S3) failed ({code}).")
        if isinstance(exc, botocore.exceptions.NoCredentialsError):
            return StorageError(
                "No AWS credentials found for the S3 store: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, a profile, or an instance role."
            )
        if isinstance(
            exc,
            botocore.exceptions.ConnectionError | botocore.exceptions.HTTPClientError | OSError,
        ):
            # Refused, timed out, or cut off mid-answer: S3 is down or unreachable.
            return StorageUnavailable(_UNREACHABLE)
        if isinstance(exc, botocore.exceptions.BotoCoreError):
            return StorageError(f"The blob store (S3) failed ({type(exc).__name__}).")
        raise exc

    async def _call(self, function: Callable[[Any], T], *, missing: str | None = None) -> T:
        """Run ``function(client)`` in the thread pool, mapping S3 errors to ours."""

        def call() -> T:
            return function(self._connect())

        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool(), call)
        except (
            botocore.exceptions.BotoCoreError,
            botocore.exceptions.ClientError,
            boto3.exceptions.Boto3Error,
            OSError,
        ) as exc:
            raise self._error(exc, missing) from exc

    def _pool(self) -> ThreadPoolExecutor:
        """The threads S3 calls run in, made on first use (and again after ``close``)."""
        with self._lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(_CONNECTIONS, thread_name_prefix="ministry-s3")
            return self._threads

    async def open(self) -> None:
        """Connect and check that the bucket exists and is ours to use; never creates it."""
        try:
            await self._call(lambda client: client.head_bucket(Bucket=self.bucket))
        except StorageError as exc:
            cause = exc.__cause__
            if isinstance(cause, botocore.exceptions.ClientError) and _code_of(
                cause
            ) in _MISSING | {"NoSuchBucket"}:
                raise StorageError(
                    f"The S3 bucket {self.bucket!r} does not exist at {self.endpoint}: create "
                    "it first (Ministry never creates buckets), or check AWS_ENDPOINT_URL."
                ) from cause
            # Whoever starts the server reads this message: say where.
            raise type(exc)(f"{exc.message} (bucket {self.bucket!r} at {self.endpoint})") from cause

    async def check(self) -> None:
        """The bucket answers (S3 tells no more about writes without making one)."""
        await self._call(lambda client: client.head_bucket(Bucket=self.bucket))

    async def close(self) -> None:
        """Close the client's connections."""
        client, self._client = self._client, None
        if client is not None:
            await asyncio.get_running_loop().run_in_executor(None, client.close)
        with self._lock:
            threads, self._threads = self._threads, None
        if threads is not None:
            threads.shutdown(wait=False)

    def _exists(self, client: Any, key: str) -> bool:
        try:
            client.head_object(Bucket=self.bucket, Key=key)
        except botocore.exceptions.ClientError as exc:
            if _code_of(exc) in _MISSING:
                return False
            raise
        return True

    def _refresh(self, client: Any, key: str) -> bool:
        """Copy an object onto itself (its LastModified becomes now); False if it is gone."""
        try:
            client.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": self.bucket, "Key": key},
                MetadataDirective="REPLACE",
                ContentType="application/octet-stream",
            )
        except botocore.exceptions.ClientError as exc:
            if _code_of(exc) in _MISSING:
                return False  # quarantined a moment ago: the caller stores it anew
            raise
        return True

    def _stored_already(self, client: Any, key: str) -> bool:
        return self._exists(client, key) and self._refresh(client, key)

    async def put_file(self, path: Path, sha256: str) -> None:
        """Upload a verified local file, streaming from disk, then remove it."""
        key = self.key_of(sha256)

        def upload(client: Any) -> None:
            if _holds(path, sha256):
                with path.open("rb") as body:
                    client.put_object(
                        Bucket=self.bucket,
                        Key=key,
                        Body=body,
                        ContentType="application/octet-stream",
                    )
            elif not self._stored_already(client, key):
                client.upload_file(
                    str(path),
                    self.bucket,
                    key,
                    ExtraArgs={"ContentType": "application/octet-stream"},
                    Config=_TRANSFER,
                )
            path.unlink(missing_ok=True)

        await self._call(upload)

    async def put_bytes(self, data: bytes) -> str:
        """Store a small value and return its sha256."""
        sha256 = sha256_hex(data)
        key = self.key_of(sha256)

        def put(client: Any) -> None:
            # The key was made from these bytes: PUT them, whether or not it exists.
            client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType="application/octet-stream"
            )

        await self._call(put)
        return sha256

    async def open_blob(self, sha256: str) -> S3Blob:
        """GET the blob's first ``_FIRST`` bytes, whose answer also says its size: a blob
        that small is read in this one request, not a HEAD and a GET, and a larger one
        in two, as before; ``NotFound`` if there is none."""
        key = self.key_of(sha256)
        try:
            size, first = await self._call(
                functools.partial(_first, bucket=self.bucket, key=key), missing=key
            )
        except NotFound:
            # Set aside by an eviction, and a record names it: still readable.
            aside = self.aside_key(sha256)
            try:
                head = await self._call(
                    lambda client: client.head_object(Bucket=self.bucket, Key=aside), missing=aside
                )
            except NotFound:
                pass
            else:
                return S3Blob(self, aside, int(head["ContentLength"]))
            raise
        return S3Blob(self, key, size, first)

    async def put_manifest(self, kind: str, key: str, document: bytes) -> None:
        """One PUT: S3 shows the new document whole or not at all."""
        object_key = self._under_prefix(manifest_path(kind, key))
        await self._call(
            lambda client: client.put_object(
                Bucket=self.bucket, Key=object_key, Body=document, ContentType="application/json"
            )
        )

    async def get_manifest(self, kind: str, key: str) -> bytes | None:
        """The document, or None."""
        object_key = self._under_prefix(manifest_path(kind, key))
        try:
            return await self._call(
                functools.partial(self._get_whole, key=object_key), missing=object_key
            )
        except NotFound:
            return None

    def _get_whole(self, client: Any, *, key: str) -> bytes:
        body = client.get_object(Bucket=self.bucket, Key=key)["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    async def list_manifests(self, kind: str) -> AsyncIterator[tuple[str, bytes]]:
        """Every manifest of a kind: one listing request per page of keys, their GETs in
        parallel (a few at a time)."""
        async for listed in self._pages(self._under_prefix(manifest_directory(kind))):
            keys = [
                str(item["Key"])
                for item in listed
                if NAME.match(str(item["Key"]).rpartition("/")[2])
            ]
            for start in range(0, len(keys), _READS_AT_ONCE):
                batch = keys[start : start + _READS_AT_ONCE]
                documents = await asyncio.gather(*map(self._read_listed, batch))
                for key, document in zip(batch, documents, strict=True):
                    if document is not None:
                        yield key.rpartition("/")[2].removesuffix(".json"), document

    async def _read_listed(self, key: str) -> bytes | None:
        try:
            return await self._call(functools.partial(self._get_whole, key=key), missing=key)
        except NotFound:
            return None  # replaced or removed since the listing

    async def list_blobs(self) -> AsyncIterator[StoredBlob]:
        """Every blob, one page of keys (one request) at a time."""
        async for listed in self._pages(self._under_prefix("sha256/")):
            for item in listed:
                name = str(item["Key"]).rpartition("/")[2]
                if _SHA256.match(name) and item["Key"] == self.key_of(name):
                    yield StoredBlob(name, int(item["Size"]), item["LastModified"])

    async def _pages(self, prefix: str) -> AsyncIterator[list[dict[str, Any]]]:
        """The objects under ``prefix``, one listing request (``listing_page`` keys) at
        a time."""
        token: dict[str, str] = {}
        while True:
            page = await self._call(
                functools.partial(self._list_page, prefix=prefix, continuation=dict(token))
            )
            yield page.get("Contents", [])
            if not page.get("IsTruncated"):
                return
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def _list_page(self, client: Any, *, prefix: str, continuation: dict[str, str]) -> Any:
        return client.list_objects_v2(
            Bucket=self.bucket, Prefix=prefix, MaxKeys=self.listing_page, **continuation
        )

    async def quarantine(self, sha256: str) -> str | None:
        """Move the blob to ``quarantine/<sha256>.<UTC time>``; returns its ``s3://`` URL."""
        key = self.key_of(sha256)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = self._under_prefix(f"quarantine/{sha256}.{stamp}")

        def move(client: Any) -> bool:
            if not self._exists(client, key):
                return False
            # A managed copy: objects over 5 GB need a multipart copy.
            client.copy({"Bucket": self.bucket, "Key": key}, self.bucket, target, Config=_TRANSFER)
            client.delete_object(Bucket=self.bucket, Key=key)
            return True

        try:
            moved = await self._call(move, missing=key)
        except NotFound:
            return None  # another process moved it between the look and the copy
        return f"s3://{self.bucket}/{target}" if moved else None

    def aside_key(self, sha256: str) -> str:
        """Where an eviction sets a blob aside: ``<prefix>/evicting/<sha256>``."""
        return self._under_prefix(f"evicting/{_check_key(sha256)}")

    async def set_aside(self, sha256: str, unless_put_after: datetime) -> bool:
        """Copy the object to ``evicting/`` and delete it, unless its LastModified says it
        was put after ``unless_put_after``, judged by the bucket's own clock.

        The skew between this machine and the S3 server comes from the ``Date`` of the
        HEAD's answer, so neither clock has to be right; both have one-second steps,
        hence a second of margin. S3 has no rename and no conditional delete every
        server offers, so a put landing between the HEAD and the DELETE loses the key's
        object; its bytes are in ``evicting/`` then, and the put's caller, after it
        committed its record, puts them back (``put_back``), or the eviction does when
        it checks the records again. A GET already under way when the object goes
        still completes.
        """
        key = self.key_of(sha256)
        aside = self.aside_key(sha256)

        def move(client: Any) -> bool:
            try:
                head = client.head_object(Bucket=self.bucket, Key=key)
            except botocore.exceptions.ClientError as exc:
                if _code_of(exc) in _MISSING:
                    return False
                raise
            skew = _server_time(head) - datetime.now(UTC)
            if head["LastModified"] > unless_put_after + skew - timedelta(seconds=1):
                return False
            if not self._copy(client, key, aside):
                return False  # set aside by another node a moment ago
            client.delete_object(Bucket=self.bucket, Key=key)
            return True

        return await self._call(move)

    def _copy(self, client: Any, source: str, target: str) -> bool:
        """A server-side copy (managed: objects over 5 GB need a multipart copy; the
        target's LastModified is now); False if the source is gone."""
        try:
            client.copy(
                {"Bucket": self.bucket, "Key": source},
                self.bucket,
                target,
                ExtraArgs={"ContentType": "application/octet-stream"},
                Config=_TRANSFER,
            )
        except botocore.exceptions.ClientError as exc:
            if _code_of(exc) in _MISSING:
                return False
            raise
        return True

    async def put_back(self, sha256: str) -> bool:
        """Copy the set-aside object back unless the key holds one (the copy stays)."""
        key = self.key_of(sha256)
        aside = self.aside_key(sha256)

        def back(client: Any) -> bool:
            if self._exists(client, key):
                return True
            # Over an object put meanwhile: the same bytes.
            return self._copy(client, aside, key) or self._exists(client, key)

        return await self._call(back)

    async def drop_aside(self, sha256: str) -> None:
        """Delete the set-aside copy (a GET under way completes)."""
        aside = self.aside_key(sha256)
        await self._call(lambda client: client.delete_object(Bucket=self.bucket, Key=aside))

    async def list_aside(self) -> AsyncIterator[StoredBlob]:
        """The objects under ``evicting/``, each with the time it was set aside."""
        async for listed in self._pages(self._under_prefix("evicting/")):
            for item in listed:
                name = str(item["Key"]).rpartition("/")[2]
                if _SHA256.match(name) and item["Key"] == self.aside_key(name):
                    yield StoredBlob(name, int(item["Size"]), item["LastModified"])

    def internal_path(self, sha256: str) -> str | None:
        """Objects in a bucket are not files a front server could read: None."""
        del sha256
        return None

    async def download_url(self, sha256: str, filename: str) -> str | None:
        """With ``redirect``, a pre-signed GET URL valid for an hour; else None.

        S3 answers it with the headers Ministry itself sends: ``application/octet-stream``
        and an attachment named ``filename`` for a distribution, ``text/plain`` for a
        ``.metadata`` file.
        """
        if not self.redirect:
            return None
        key = self.key_of(sha256)
        if filename.endswith(".metadata"):
            overrides = {"ResponseContentType": "text/plain; charset=utf-8"}
        else:
            overrides = {
                "ResponseContentType": "application/octet-stream",
                "ResponseContentDisposition": _attachment(filename),
            }
        url = await self._call(
            lambda client: client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": key, **overrides},
                ExpiresIn=_URL_EXPIRY,
            )
        )
        return str(url)
