"""Group commit of directory fsyncs (``storage.flushes``): writers arriving during a
flush share the next one, and none is answered by a flush that began before it asked."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from ministry.storage.flushes import DirectoryFlushes


class Disk:
    """Really fsyncs each directory; the first flush of ``held`` waits for ``release``."""

    def __init__(self, held: Path) -> None:
        self.held = held
        self.release = asyncio.Event()
        self.began: list[Path] = []
        self.ended: list[Path] = []
        self.fail_next = False

    async def sync(self, directory: Path) -> None:
        self.began.append(directory)
        if directory == self.held and self.began.count(directory) == 1:
            await self.release.wait()
        if self.fail_next:
            self.fail_next = False
            raise OSError(5, "Input/output error")
        descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            await asyncio.to_thread(os.fsync, descriptor)
        finally:
            os.close(descriptor)
        self.ended.append(directory)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_a_burst_of_writers_shares_two_flushes_and_none_counts_an_earlier_one(
    tmp_path: Path,
) -> None:
    leaf, other = tmp_path / "ab", tmp_path / "cd"
    leaf.mkdir()
    other.mkdir()

    async def scenario() -> None:
        disk = Disk(held=leaf)
        flushes = DirectoryFlushes(disk.sync)
        first = asyncio.ensure_future(flushes.flush(leaf))
        await settle()
        assert disk.began == [leaf]  # the first writer's flush is on the disk

        # Six more writers of the same directory arrive while it runs, plus one elsewhere.
        later = [asyncio.ensure_future(flushes.flush(leaf)) for _ in range(6)]
        await flushes.flush(other)  # another directory does not wait for this one
        await settle()
        assert disk.began == [leaf, other]
        assert not first.done()

        disk.release.set()
        await first
        # The first flush began before the later writers asked: it is not theirs.
        await settle()
        await asyncio.gather(*later)
        assert disk.began == [leaf, other, leaf]  # seven writers, two flushes
        assert disk.ended.count(leaf) == 2

        # Nothing in progress: the next writer gets a flush of its own at once.
        await flushes.flush(leaf)
        assert disk.began.count(leaf) == 3

    asyncio.run(scenario())


def test_a_failed_flush_fails_every_writer_that_shared_it_and_the_next_one_runs(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        disk = Disk(held=tmp_path / "never")
        flushes = DirectoryFlushes(disk.sync)
        disk.fail_next = True
        shared = [flushes.flush(tmp_path) for _ in range(3)]
        outcomes = await asyncio.gather(*shared, return_exceptions=True)
        assert all(isinstance(o, OSError) for o in outcomes)
        assert disk.began == [tmp_path]  # one flush for the three, and it failed

        await flushes.flush(tmp_path)
        assert disk.ended == [tmp_path]

    asyncio.run(scenario())


def test_a_cancelled_writer_leaves_the_flush_to_the_others(tmp_path: Path) -> None:
    async def scenario() -> None:
        disk = Disk(held=tmp_path)
        flushes = DirectoryFlushes(disk.sync)
        leaving = asyncio.ensure_future(flushes.flush(tmp_path))
        staying = asyncio.ensure_future(flushes.flush(tmp_path))
        await settle()
        leaving.cancel()
        await settle()
        disk.release.set()
        await staying
        assert disk.ended == [tmp_path]
        with pytest.raises(asyncio.CancelledError):
            await leaving

    asyncio.run(scenario())
