"""Digests computed while bytes stream past, so a file is read exactly once."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["Digests", "StreamingHasher", "sha256_hex"]


@dataclass(frozen=True)
class Digests:
    """The three digests the upload API and the JSON API speak of (hex, lower case)."""

    sha256: str
    md5: str
    blake2b_256: str
    size: int


class StreamingHasher:
    """Feeds every chunk to sha256, md5 and blake2b-256 at once."""

    def __init__(self) -> None:
        self._sha256 = hashlib.sha256()
        # md5 is what older clients send and the JSON API reports; never used for trust.
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._blake2 = hashlib.blake2b(digest_size=32)
        self._size = 0

    def update(self, chunk: bytes) -> None:
        """Add the next chunk."""
        self._sha256.update(chunk)
        self._md5.update(chunk)
        self._blake2.update(chunk)
        self._size += len(chunk)

    @property
    def size(self) -> int:
        """Bytes seen so far."""
        return self._size

    def digests(self) -> Digests:
        """The digests of everything fed so far."""
        return Digests(
            sha256=self._sha256.hexdigest(),
            md5=self._md5.hexdigest(),
            blake2b_256=self._blake2.hexdigest(),
            size=self._size,
        )


def sha256_hex(data: bytes) -> str:
    """The hex sha256 of a small in-memory value (metadata files)."""
    return hashlib.sha256(data).hexdigest()
