"""Files of a proxy index: fetched once, checked against the page, kept, served from the
cache (docs/proxy.md, "Files" and "A filename keeps its bytes")."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta
from pathlib import Path

import pytest

from ministry.errors import UpstreamUnavailable
from ministry.services.proxy_files import ProxyStream
from ministry.storage.protocols import BlobReader
from support.services import PROXY, ProxyRig, in_event_loop, project, proxy_rig, read_all

REMOTE = project("remote")
ONE = "remote-1.0-py3-none-any.whl"
DATA = b"the first bytes of remote 1.0, " * 4000


async def open_one(rig: ProxyRig) -> BlobReader | ProxyStream:
    """Open ``ONE`` as a download request does: locate it on the page, then open it."""
    access = await rig.access()
    download = await rig.catalog.locate_download(access, REMOTE, ONE)
    return await rig.catalog.open_download(access, download)


def files_counted(rig: ProxyRig, result: str) -> float:
    return rig.counted("ministry_proxy_files", index=PROXY, result=result)


@in_event_loop
async def test_a_file_is_fetched_once_then_served_from_the_cache(tmp_path: Path) -> None:
    async with proxy_rig(tmp_path / "data") as rig:
        rig.upstream.publish("remote", ONE, DATA)
        fetching = await open_one(rig)
        assert isinstance(fetching, ProxyStream)
        assert await read_all(fetching) == DATA
        kept = await rig.files.cached(PROXY, ONE)
        assert kept is not None and kept.sha256 == hashlib.sha256(DATA).hexdigest()

        cached = await open_one(rig)
        assert not isinstance(cached, ProxyStream)
        assert await read_all(cached) == DATA
        assert len(rig.upstream.file_requests) == 1
        assert (files_counted(rig, "miss"), files_counted(rig, "hit")) == (1, 1)


@in_event_loop
async def test_readers_during_a_download_share_it(tmp_path: Path) -> None:
    async with proxy_rig(tmp_path / "data") as rig:
        rig.upstream.publish("remote", ONE, DATA)
        hold = asyncio.Event()
        rig.upstream.hold_files = hold
        readers = [await open_one(rig) for _ in range(3)]
        assert all(isinstance(r, ProxyStream) for r in readers)
        reading = [asyncio.ensure_future(read_all(r)) for r in readers]
        hold.set()
        assert await asyncio.gather(*reading) == [DATA] * 3
        assert len(rig.upstream.file_requests) == 1


@in_event_loop
async def test_bytes_other_than_the_page_promises_are_never_kept(tmp_path: Path) -> None:
    async with proxy_rig(tmp_path / "data") as rig:
        promised = hashlib.sha256(b"what the page promises").hexdigest()
        rig.upstream.publish("remote", ONE, DATA, listed_sha256=promised)
        with pytest.raises(UpstreamUnavailable, match="failed to answer"):
            await read_all(await open_one(rig))
        assert await rig.files.cached(PROXY, ONE) is None
        assert files_counted(rig, "error") == 1
        # Nothing was kept, so the next reader asks the upstream again.
        with pytest.raises(UpstreamUnavailable):
            await read_all(await open_one(rig))
        assert len(rig.upstream.file_requests) == 2
        assert not any(rig.services.settings.spool_directory.iterdir())


@in_event_loop
async def test_a_cached_file_keeps_its_bytes_when_the_upstream_changes_them(
    tmp_path: Path,
) -> None:
    async with proxy_rig(tmp_path / "data", page_ttl=0) as rig:
        rig.upstream.publish("remote", ONE, DATA)
        assert await read_all(await open_one(rig)) == DATA
        rig.upstream.publish("remote", ONE, b"swapped bytes")

        # The page is refreshed (TTL 0) and lists the new bytes; the first ones are served.
        assert await read_all(await open_one(rig)) == DATA
        assert len(rig.upstream.file_requests) == 1
        assert rig.upstream.requests_for("remote") == 2
        assert rig.counted("ministry_upstream_changed_files", index=PROXY) == 1


@in_event_loop
async def test_cached_files_are_served_while_the_upstream_is_down(tmp_path: Path) -> None:
    async with proxy_rig(tmp_path / "data", page_ttl=0) as rig:
        rig.upstream.publish("remote", ONE, DATA)
        assert await read_all(await open_one(rig)) == DATA
        rig.upstream.state = "down"
        assert await read_all(await open_one(rig)) == DATA
        assert len(rig.upstream.file_requests) == 1


@in_event_loop
async def test_a_file_evicted_between_its_record_and_its_blob_is_fetched_again(
    tmp_path: Path,
) -> None:
    """Another process may evict a file after this one read its record: the read finds
    the blob gone and fetches the file from upstream again instead of failing with 500."""
    async with proxy_rig(tmp_path / "data") as rig:
        rig.upstream.publish("remote", ONE, DATA)
        assert await read_all(await open_one(rig)) == DATA
        kept = await rig.files.cached(PROXY, ONE)
        assert kept is not None
        later = kept.cached + timedelta(seconds=5)
        assert await rig.services.blobs.set_aside(kept.sha256, later)
        await rig.services.blobs.drop_aside(kept.sha256)
        again = await open_one(rig)
        assert isinstance(again, ProxyStream)
        assert await read_all(again) == DATA
        assert len(rig.upstream.file_requests) == 2
        assert await rig.files.cached(PROXY, ONE) is not None
