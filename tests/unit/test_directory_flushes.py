"""Group commit of directory fsyncs (``storage.flushes``): writers arriving during a
flush share the next one, and none is answered by a flush that began before it asked."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from ministry.storage.flushes import DirectoryFlushes
from support.server import wait_for


class Disk:
    """Really fsyncs each directory; the first flush of ``held`` waits for ``release``,
    and flush number ``fail_at`` (counting all) fails."""

    def __init__(self, held: Path, fail_at: int = 0) -> None:
        self.held = held
        self.fail_at = fail_at
        self.release = threading.Event()
        self.began: list[Path] = []
        self.lock = threading.Lock()

    def sync(self, directory: Path) -> None:
        with self.lock:
            self.began.append(directory)
            number = len(self.began)
            first_of_held = directory == self.held and self.began.count(directory) == 1
        if first_of_held:
            assert self.release.wait(30)
        if number == self.fail_at:
            raise OSError(5, "Input/output error")
        descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def waiting(flushes: DirectoryFlushes, directory: Path) -> int:
    """How many writers are inside ``flush(directory)`` now."""
    state = flushes._directories.get(directory)
    return state.waiting if state is not None else 0


def writers(count: int, work: Callable[[], None]) -> tuple[list[threading.Thread], list[object]]:
    """``count`` started threads running ``work``; each one's outcome (None or the error)."""
    outcomes: list[object] = []

    def run() -> None:
        try:
            work()
        except OSError as exc:
            outcomes.append(exc)
        else:
            outcomes.append(None)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, outcomes


def test_a_burst_of_writers_shares_two_flushes_and_none_counts_an_earlier_one(
    tmp_path: Path,
) -> None:
    leaf, other = tmp_path / "ab", tmp_path / "cd"
    leaf.mkdir()
    other.mkdir()
    disk = Disk(held=leaf)
    flushes = DirectoryFlushes(disk.sync)

    first, first_outcome = writers(1, lambda: flushes.flush(leaf))
    wait_for(lambda: disk.began == [leaf], 10, "the first flush on the disk")
    # Six more writers of the same directory arrive while it runs.
    later, later_outcomes = writers(6, lambda: flushes.flush(leaf))
    wait_for(lambda: waiting(flushes, leaf) == 7, 10, "seven writers waiting")
    flushes.flush(other)  # another directory does not wait for this one
    assert disk.began == [leaf, other]
    assert later_outcomes == []  # the flush in progress began before they asked

    disk.release.set()
    for thread in first + later:
        thread.join(30)
    assert first_outcome + later_outcomes == [None] * 7
    assert disk.began == [leaf, other, leaf]  # seven writers, two flushes
    assert flushes._directories == {}  # nothing kept once all are answered

    flushes.flush_all([leaf, other, leaf])  # nothing in progress: one flush each
    assert disk.began[3:] == [leaf, other]


def test_a_failed_flush_fails_every_writer_that_shared_it_and_the_next_one_runs(
    tmp_path: Path,
) -> None:
    disk = Disk(held=tmp_path, fail_at=2)
    flushes = DirectoryFlushes(disk.sync)
    first, first_outcome = writers(1, lambda: flushes.flush(tmp_path))
    wait_for(lambda: len(disk.began) == 1, 10, "the first flush on the disk")
    sharing, outcomes = writers(3, lambda: flushes.flush(tmp_path))
    wait_for(lambda: waiting(flushes, tmp_path) == 4, 10, "three writers waiting")
    disk.release.set()
    for thread in first + sharing:
        thread.join(30)
    assert first_outcome == [None]
    assert len(outcomes) == 3
    assert all(isinstance(o, OSError) for o in outcomes)
    assert len(disk.began) == 2  # one flush for the three, and it failed

    flushes.flush(tmp_path)
    assert len(disk.began) == 3
    with pytest.raises(FileNotFoundError):
        flushes.flush(tmp_path / "gone")  # a failure of the writer's own flush
