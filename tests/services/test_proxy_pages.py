"""Upstream project pages of a proxy index: kept, revalidated, and served stale when the
upstream fails (docs/proxy.md, "Pages" and "When the upstream fails").

The upstream is a ``FakeUpstream`` the tests script and count. A page's freshness
runs from its fetch time, which the store keeps: a page TTL of 0 makes every kept
page due at once, and where a test needs a page fetched longer ago than a minute,
it writes that fetch time into the store (as if the page had been fetched then),
instead of waiting for the clock.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from ministry.core.negotiation import SIMPLE_JSON
from ministry.errors import NotFound, UpstreamUnavailable
from ministry.services.proxy_pages import ProxyPage
from support.services import PROXY, ProxyRig, in_event_loop, project, proxy_rig, read_all

REMOTE = project("remote")
ONE, TWO = "remote-1.0-py3-none-any.whl", "remote-2.0-py3-none-any.whl"


async def get(rig: ProxyRig, name: str = REMOTE) -> ProxyPage | None:
    """The proxy index's page of a project, as the catalog asks for it."""
    config = await rig.services.indexes.get(PROXY)
    return await rig.pages.get(config, project(name))


def offered(page: ProxyPage | None) -> dict[str, str]:
    """filename -> sha256 of the files a kept page lists."""
    assert page is not None
    return {f.filename: f.hashes["sha256"] for f in page.kept.page.files}


def pages_counted(rig: ProxyRig, result: str) -> float:
    return rig.counted("ministry_proxy_pages", index=PROXY, result=result)


# -- kept and revalidated ------------------------------------------------------------------


@in_event_loop
async def test_a_page_is_fetched_once_and_kept_in_the_store(tmp_path: Path) -> None:
    async with proxy_rig(tmp_path / "data", page_ttl=3600) as rig:
        rig.upstream.publish("remote", ONE, b"one")
        first = await get(rig)
        assert first is not None and not first.stale
        assert list(offered(first)) == [ONE]
        stored = await rig.services.metadata.get_cached_page(PROXY, REMOTE)
        assert stored is not None and stored.status == 200 and stored.token == first.token

        again = await get(rig)
        assert again is not None and again.token == first.token
        # Another process on the same store (or this one restarted) finds it there.
        kept = await rig.restarted_pages().get(await rig.services.indexes.get(PROXY), REMOTE)
        assert kept is not None and kept.token == first.token
        assert rig.upstream.requests_for("remote") == 1
        assert (pages_counted(rig, "miss"), pages_counted(rig, "hit")) == (1, 1)


@in_event_loop
async def test_a_page_past_its_freshness_is_revalidated_with_its_etag(tmp_path: Path) -> None:
    async with proxy_rig(tmp_path / "data", page_ttl=0) as rig:
        rig.upstream.publish("remote", ONE, b"one")
        first = await get(rig)
        assert first is not None
        assert rig.upstream.page_requests[-1].etag is None

        unchanged = await get(rig)  # 304: the kept page stands, fresh again
        etag = rig.upstream.page_requests[-1].etag
        assert etag is not None
        assert unchanged is not None and unchanged.token == first.token and not unchanged.stale
        assert pages_counted(rig, "revalidated") == 1

        rig.upstream.publish("remote", TWO, b"two")
        changed = await get(rig)
        assert rig.upstream.page_requests[-1].etag == etag
        assert changed is not None and changed.token != first.token
        assert set(offered(changed)) == {ONE, TWO}
        assert pages_counted(rig, "refreshed") == 1
        assert rig.upstream.requests_for("remote") == 3


@in_event_loop
async def test_concurrent_requests_for_a_page_share_one_upstream_request(tmp_path: Path) -> None:
    async with proxy_rig(tmp_path / "data") as rig:
        rig.upstream.publish("remote", ONE, b"one")
        hold = asyncio.Event()
        rig.upstream.hold_pages = hold
        readers = [asyncio.ensure_future(get(rig)) for _ in range(5)]
        # Let every reader reach the upstream request (or join the one in flight).
        await asyncio.sleep(0.2)
        hold.set()
        pages = await asyncio.gather(*readers)
        assert len({p.token for p in pages if p is not None}) == 1
        assert rig.upstream.requests_for("remote") == 1


# -- the upstream fails ------------------------------------------------------------------


@in_event_loop
async def test_an_unreachable_upstream_leaves_the_kept_page_served_stale(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with proxy_rig(tmp_path / "data", page_ttl=0) as rig:
        rig.upstream.publish("remote", ONE, b"one")
        rig.upstream.publish("other", "other-1.0-py3-none-any.whl", b"other")
        kept = await get(rig)
        assert kept is not None
        rig.upstream.state = "down"

        with caplog.at_level(logging.WARNING, logger="ministry.services.proxy_pages"):
            stale = await get(rig)
        assert stale is not None and stale.stale and stale.token == kept.token
        assert offered(stale) == offered(kept)
        assert "serving the kept page (stale)" in caplog.text
        assert pages_counted(rig, "stale") == 1
        assert rig.upstream.requests_for("remote") == 2

        # The failure is remembered: for a while nobody waits for the upstream again,
        # for this project or any other of the same upstream.
        again = await get(rig)
        assert again is not None and again.stale
        with pytest.raises(UpstreamUnavailable, match="not cached"):
            await get(rig, "other")
        assert rig.upstream.requests_for("remote") == 2
        assert rig.upstream.requests_for("other") == 0

        # Readers of the catalog are told the page is stale.
        page = await rig.catalog.project_page(await rig.access(), REMOTE, SIMPLE_JSON)
        assert page.stale


@in_event_loop
async def test_an_upstream_error_for_one_project_does_not_stop_the_others(tmp_path: Path) -> None:
    async with proxy_rig(tmp_path / "data", page_ttl=0) as rig:
        rig.upstream.publish("remote", ONE, b"one")
        rig.upstream.publish("other", "other-1.0-py3-none-any.whl", b"other")
        kept = await get(rig)
        rig.upstream.state = "error"  # a 5xx answer: the upstream is there
        stale = await get(rig)
        assert stale is not None and kept is not None
        assert stale.stale and stale.token == kept.token
        assert (await get(rig)) is not None
        assert rig.upstream.requests_for("remote") == 2

        with pytest.raises(UpstreamUnavailable) as failed:
            await get(rig, "other")
        assert rig.upstream.requests_for("other") == 1
        # What the upstream answered is for the log, never for clients.
        assert "503" not in str(failed.value)
        assert "failed to answer and project 'other' is not cached" in str(failed.value)
        assert pages_counted(rig, "error") == 1


@in_event_loop
async def test_a_page_listing_no_files_never_replaces_a_good_one(tmp_path: Path) -> None:
    """A login or error page parsed as a project page lists no files: an upstream failure."""
    async with proxy_rig(tmp_path / "data", page_ttl=0) as rig:
        rig.upstream.publish("remote", ONE, b"one")
        kept = await get(rig)
        assert kept is not None
        rig.upstream.list_nothing("remote")
        stale = await get(rig)
        assert stale is not None and stale.stale
        assert list(offered(stale)) == [ONE]
        stored = await rig.services.metadata.get_cached_page(PROXY, REMOTE)
        assert stored is not None and stored.token == kept.token


# -- 404 -----------------------------------------------------------------------------------


async def age_kept_page(rig: ProxyRig, name: str, seconds: float) -> None:
    """Make the store say the page was fetched ``seconds`` earlier than it was."""
    kept = await rig.services.metadata.get_cached_page(PROXY, project(name))
    assert kept is not None
    await rig.services.metadata.put_cached_page(
        replace(kept, fetched=kept.fetched - timedelta(seconds=seconds))
    )


@in_event_loop
async def test_an_upstream_404_is_believed_for_a_minute(tmp_path: Path) -> None:
    async with proxy_rig(tmp_path / "data", page_ttl=3600) as rig:
        assert await get(rig, "newcomer") is None
        with pytest.raises(NotFound, match="No project named 'newcomer'"):
            await rig.catalog.project_view(await rig.access(), project("newcomer"))
        assert rig.upstream.requests_for("newcomer") == 1
        assert pages_counted(rig, "not_found") == 1
        # The proxy index's project list names only projects the upstream has.
        assert list(await rig.catalog.projects(await rig.access())) == []

        rig.upstream.publish("newcomer", "newcomer-1.0-py3-none-any.whl", b"new")
        assert await get(rig, "newcomer") is None  # believed: not asked again yet
        assert rig.upstream.requests_for("newcomer") == 1

        await age_kept_page(rig, "newcomer", 61)  # a minute, though the TTL is an hour
        found = await get(rig, "newcomer")
        assert list(offered(found)) == ["newcomer-1.0-py3-none-any.whl"]
        assert rig.upstream.requests_for("newcomer") == 2


@in_event_loop
async def test_a_project_the_upstream_no_longer_has_is_gone_once_revalidated(
    tmp_path: Path,
) -> None:
    async with proxy_rig(tmp_path / "data", page_ttl=0) as rig:
        rig.upstream.publish("remote", ONE, b"one")
        assert await get(rig) is not None
        rig.upstream.remove("remote")
        assert await get(rig) is None
        with pytest.raises(NotFound):
            await rig.catalog.project_view(await rig.access(), REMOTE)


# -- a filename keeps its bytes ----------------------------------------------------------


@in_event_loop
async def test_a_filename_listed_with_other_bytes_is_left_off_unless_cached(
    tmp_path: Path,
) -> None:
    async with proxy_rig(tmp_path / "data", page_ttl=0) as rig:
        rig.upstream.publish("remote", ONE, b"first bytes")
        await get(rig)
        rig.upstream.publish("remote", ONE, b"other bytes")
        rig.upstream.publish("remote", TWO, b"two")

        page = await get(rig)
        assert list(offered(page)) == [TWO]
        assert rig.counted("ministry_upstream_changed_files", index=PROXY) == 1
        with pytest.raises(NotFound):
            await rig.catalog.locate_download(await rig.access(), REMOTE, ONE)
        # The pin stands at every later refresh, whatever the upstream lists.
        rig.upstream.publish("remote", ONE, b"third bytes")
        assert list(offered(await get(rig))) == [TWO]


@in_event_loop
async def test_a_cached_filename_is_offered_at_its_first_bytes(tmp_path: Path) -> None:
    async with proxy_rig(tmp_path / "data", page_ttl=0) as rig:
        original = b"first bytes"
        rig.upstream.publish("remote", ONE, original)
        first = offered(await get(rig))[ONE]
        download = await rig.catalog.locate_download(await rig.access(), REMOTE, ONE)
        assert (
            await read_all(await rig.catalog.open_download(await rig.access(), download))
            == original
        )

        rig.upstream.publish("remote", ONE, b"replaced bytes!")
        page = await get(rig)
        assert offered(page) == {ONE: first}
        assert page is not None and page.kept.page.files[0].size == len(original)
        assert rig.counted("ministry_upstream_changed_files", index=PROXY) == 1
