"""The catalog's caches: kept while nothing changed, made again as soon as something did.

A hosted project's view, its rendered pages, its JSON document and the index's
project list are kept while the store's serial stands, and rebuilt after an
upload, a yank or a delete moves it (in this process or another one on the same
store). A proxied project's view is kept while its upstream page is fresh, and
looked at again when the page falls due or when a file held back by the
minimum-age rule comes of age.

Time: nothing in the services takes a clock, so files come of age and pages fall
due on the real one. The tests script upload times a second or so short of the
minimum age (or set a page TTL of one second) and then wait until the time the
catalog itself gives (``HeldBack.until``): about two seconds in all, never minutes.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ministry.core.negotiation import SIMPLE_HTML, SIMPLE_JSON
from ministry.core.permissions import Identity
from ministry.errors import NotFound
from ministry.services import catalog as catalog_module
from ministry.services.catalog import Catalog, RenderedPage
from ministry.services.projects import ProjectResolver
from ministry.wiring import Services
from support.distributions import make_wheel
from support.services import ADMIN, PROXY, in_event_loop, project, proxy_rig, started_services

ALICE = Identity("alice")
DEMO = project("cache-demo")


def wheel(directory: Path, name: str, version: str) -> Path:
    """A wheel in a directory of its own (two wheels of one name can differ)."""
    place = directory / f"{name}-{version}"
    place.mkdir(parents=True, exist_ok=True)
    return make_wheel(place, name, version)


def listed(page: RenderedPage) -> dict[str, object]:
    """The files a JSON project page lists, with their yanked value."""
    return {f["filename"]: f["yanked"] for f in json.loads(page.body)["files"]}


def indexed(page: RenderedPage) -> set[str]:
    """The projects a JSON index page lists (kept only in its gzip form)."""
    assert page.body is None
    return {p["name"] for p in json.loads(gzip.decompress(page.gzipped))["projects"]}


async def demo_page(services: Services) -> RenderedPage:
    access = await services.indexes.read_access("main", None)
    return await services.catalog.project_page(access, DEMO, SIMPLE_JSON)


# -- hosted projects: the serial -------------------------------------------------------


@in_event_loop
async def test_pages_documents_and_lists_are_kept_while_the_serial_stands(tmp_path: Path) -> None:
    async with started_services(tmp_path / "data") as services:
        await services.uploads.import_file("main", ALICE, wheel(tmp_path, DEMO, "1.0"))
        catalog = services.catalog
        first = await services.indexes.read_access("main", None)
        page = await catalog.project_page(first, DEMO, SIMPLE_HTML)
        document = await catalog.project_json(first, DEMO, None, "http://127.0.0.1:8080")
        index = await catalog.index_page(first, SIMPLE_JSON)
        view = await catalog.project_view(first, DEMO)

        # A later request (a new access, as each request has) at the same serial.
        later = await services.indexes.read_access("main", None)
        assert later.serial == first.serial
        assert await catalog.project_page(later, DEMO, SIMPLE_HTML) is page
        assert await catalog.project_json(later, DEMO, None, "http://127.0.0.1:8080") is document
        assert await catalog.index_page(later, SIMPLE_JSON) is index
        assert await catalog.project_view(later, DEMO) is view


@pytest.mark.parametrize("change", ["upload", "yank", "delete"])
@in_event_loop
async def test_a_change_to_the_project_rebuilds_its_pages(tmp_path: Path, change: str) -> None:
    async with started_services(tmp_path / "data") as services:
        await services.indexes.update(ADMIN, "main", {"allow_delete": True})
        await services.uploads.import_file("main", ALICE, wheel(tmp_path, DEMO, "1.0"))
        await services.uploads.import_file("main", ALICE, wheel(tmp_path, DEMO, "2.0"))
        before = await demo_page(services)
        document_access = await services.indexes.read_access("main", None)
        document = await services.catalog.project_json(
            document_access, DEMO, None, "http://127.0.0.1:8080"
        )
        old, new = "cache_demo-1.0-py3-none-any.whl", "cache_demo-2.0-py3-none-any.whl"
        assert listed(before) == {old: False, new: False}

        expected: dict[str, object]
        if change == "upload":
            await services.uploads.import_file("main", ALICE, wheel(tmp_path, DEMO, "3.0"))
            expected = {old: False, new: False, "cache_demo-3.0-py3-none-any.whl": False}
        elif change == "yank":
            await services.maintenance.yank(ALICE, "main", DEMO, version="2.0", reason="broken")
            expected = {old: False, new: "broken"}
        else:
            await services.maintenance.delete(ALICE, "main", DEMO, version="2.0")
            expected = {old: False}

        after = await demo_page(services)
        assert after is not before
        assert listed(after) == expected
        assert after.last_serial > before.last_serial
        assert after.etag != before.etag
        access = await services.indexes.read_access("main", None)
        rebuilt = await services.catalog.project_json(access, DEMO, None, "http://127.0.0.1:8080")
        assert rebuilt.last_serial > document.last_serial
        latest = json.loads(rebuilt.body)["info"]["version"]
        assert latest == {"upload": "3.0", "yank": "1.0", "delete": "1.0"}[change]
        # Downloads look files up in the same view.
        if change == "delete":
            with pytest.raises(NotFound):
                await services.catalog.locate_download(access, DEMO, new)
        else:
            download = await services.catalog.locate_download(access, DEMO, new)
            assert download.entry.yanked == ("broken" if change == "yank" else None)


@in_event_loop
async def test_the_project_list_is_rebuilt_when_a_project_appears_or_goes(tmp_path: Path) -> None:
    async with started_services(tmp_path / "data") as services:
        await services.indexes.update(ADMIN, "main", {"allow_delete": True})
        await services.uploads.import_file("main", ALICE, wheel(tmp_path, DEMO, "1.0"))

        async def index() -> RenderedPage:
            access = await services.indexes.read_access("main", None)
            return await services.catalog.index_page(access, SIMPLE_JSON)

        first = await index()
        assert indexed(first) == {DEMO}
        await services.uploads.import_file("main", ALICE, wheel(tmp_path, "other-demo", "1.0"))
        second = await index()
        assert indexed(second) == {DEMO, "other-demo"}
        await services.maintenance.delete(ALICE, "main", DEMO)
        assert indexed(await index()) == {"other-demo"}


@in_event_loop
async def test_a_change_to_another_project_keeps_this_ones_page(tmp_path: Path) -> None:
    """The serial moved, but this project's contributions did not: its page is kept
    another round instead of being rendered again."""
    async with started_services(tmp_path / "data") as services:
        await services.uploads.import_file("main", ALICE, wheel(tmp_path, DEMO, "1.0"))
        before = await demo_page(services)
        await services.uploads.import_file("main", ALICE, wheel(tmp_path, "other-demo", "1.0"))
        assert await demo_page(services) is before


@in_event_loop
async def test_a_view_heavier_than_the_budget_is_gathered_anew_and_stays_right(
    tmp_path: Path,
) -> None:
    """Views are weighed by their files: one that alone outweighs the budget is not kept,
    so each request gathers it again, and still sees every change at once."""
    async with started_services(tmp_path / "data") as services:
        resolver = ProjectResolver(services.metadata, services.proxy_pages)
        catalog = Catalog(
            services.metadata, services.blobs, resolver, services.proxy_files,
            services.file_path, view_files_kept=4, page_bytes_kept=1,
        )  # fmt: skip
        await services.uploads.import_file("main", ALICE, wheel(tmp_path, DEMO, "1.0"))
        access = await services.indexes.read_access("main", None)
        first = await catalog.project_view(access, DEMO)
        assert await catalog.project_view(access, DEMO) is not first
        page = await catalog.project_page(access, DEMO, SIMPLE_JSON)
        assert await catalog.project_page(access, DEMO, SIMPLE_JSON) is not page
        await services.uploads.import_file("main", ALICE, wheel(tmp_path, DEMO, "2.0"))
        access = await services.indexes.read_access("main", None)
        after = await catalog.project_page(access, DEMO, SIMPLE_JSON)
        assert sorted(listed(after)) == [
            "cache_demo-1.0-py3-none-any.whl",
            "cache_demo-2.0-py3-none-any.whl",
        ]


@in_event_loop
async def test_a_large_page_keeps_only_its_gzip_form_with_the_same_tag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past ``_PLAIN_KEPT`` bytes a page is kept compressed only: the same bytes and the
    same ETag as when its plain form is kept too."""
    async with started_services(tmp_path / "data") as services:
        await services.uploads.import_file("main", ALICE, wheel(tmp_path, DEMO, "1.0"))
        await services.uploads.import_file("main", ALICE, wheel(tmp_path, DEMO, "2.0"))
        access = await services.indexes.read_access("main", None)
        whole = await services.catalog.project_page(access, DEMO, SIMPLE_HTML)
        assert whole.body is not None
        monkeypatch.setattr(catalog_module, "_PLAIN_KEPT", 100)
        resolver = ProjectResolver(services.metadata, services.proxy_pages)
        catalog = Catalog(
            services.metadata, services.blobs, resolver, services.proxy_files, services.file_path
        )
        compressed = await catalog.project_page(access, DEMO, SIMPLE_HTML)
        assert compressed.body is None
        assert gzip.decompress(compressed.gzipped) == whole.body
        assert compressed.etag == whole.etag


@in_event_loop
async def test_a_change_made_by_another_process_is_seen(tmp_path: Path) -> None:
    """Two servers on one store (as ``--processes`` runs them): the serial is shared, so
    neither keeps serving a page the other has made stale."""
    data = tmp_path / "data"
    async with started_services(data) as reader, started_services(data) as writer:
        await writer.uploads.import_file("main", ALICE, wheel(tmp_path, DEMO, "1.0"))
        before = await demo_page(reader)
        assert list(listed(before)) == ["cache_demo-1.0-py3-none-any.whl"]
        await writer.uploads.import_file("main", ALICE, wheel(tmp_path, DEMO, "2.0"))
        await writer.maintenance.yank(ALICE, "main", DEMO, version="1.0")
        after = await demo_page(reader)
        assert listed(after) == {
            "cache_demo-1.0-py3-none-any.whl": True,
            "cache_demo-2.0-py3-none-any.whl": False,
        }


# -- proxied projects: freshness and the minimum age -------------------------------------


@in_event_loop
async def test_a_fresh_upstream_page_is_kept_across_serial_changes(tmp_path: Path) -> None:
    async with proxy_rig(tmp_path / "data", page_ttl=3600) as rig:
        rig.upstream.publish("remote", "remote-1.0-py3-none-any.whl", b"one")
        first = await rig.catalog.project_page(await rig.access(), project("remote"), SIMPLE_JSON)
        # The upstream changes, and a hosted upload moves the serial: the page is fresh,
        # so neither asks the upstream again.
        rig.upstream.publish("remote", "remote-2.0-py3-none-any.whl", b"two")
        await rig.services.uploads.import_file("main", ALICE, wheel(tmp_path, DEMO, "1.0"))
        again = await rig.catalog.project_page(await rig.access(), project("remote"), SIMPLE_JSON)
        assert again is first
        assert list(listed(again)) == ["remote-1.0-py3-none-any.whl"]
        assert rig.upstream.requests_for("remote") == 1


@in_event_loop
async def test_an_upstream_page_past_its_freshness_is_fetched_again(tmp_path: Path) -> None:
    async with proxy_rig(tmp_path / "data", page_ttl=1) as rig:
        rig.upstream.publish("remote", "remote-1.0-py3-none-any.whl", b"one")
        first = await rig.catalog.project_page(await rig.access(), project("remote"), SIMPLE_JSON)
        assert list(listed(first)) == ["remote-1.0-py3-none-any.whl"]
        rig.upstream.publish("remote", "remote-2.0-py3-none-any.whl", b"two")

        await asyncio.sleep(1.1)  # the page's TTL, and a little
        later = await rig.catalog.project_page(await rig.access(), project("remote"), SIMPLE_JSON)
        assert set(listed(later)) == {
            "remote-1.0-py3-none-any.whl",
            "remote-2.0-py3-none-any.whl",
        }
        assert rig.upstream.requests_for("remote") == 2
        assert not later.stale


@in_event_loop
async def test_a_file_younger_than_the_minimum_age_comes_of_age(tmp_path: Path) -> None:
    """Held back while too young, offered once old enough, without asking the upstream
    again: the catalog itself looks again when the held-back file is due."""
    min_age = 3600
    async with proxy_rig(tmp_path / "data", page_ttl=3600, min_age=min_age) as rig:
        now = datetime.now(UTC)
        aged, young = "remote-1.0-py3-none-any.whl", "remote-2.0-py3-none-any.whl"
        rig.upstream.publish("remote", aged, b"old", upload_time=now - timedelta(days=3))
        due = now - timedelta(seconds=min_age) + timedelta(seconds=1.5)
        rig.upstream.publish("remote", young, b"new", upload_time=due)
        name = project("remote")

        view = await rig.catalog.project_view(await rig.access(), name)
        assert [f.filename for f in view.files] == [aged]
        [held] = view.held_back
        assert held.entry.filename == young
        assert abs((held.until - due - timedelta(seconds=min_age)).total_seconds()) < 0.001
        page = await rig.catalog.project_page(await rig.access(), name, SIMPLE_JSON)
        assert list(listed(page)) == [aged]
        assert page.held_back is not None and page.held_back.startswith("2.0 until ")
        with pytest.raises(NotFound, match="held back by the minimum-age rule"):
            await rig.catalog.locate_download(await rig.access(), name, young)

        await asyncio.sleep((held.until - datetime.now(UTC)).total_seconds() + 0.05)
        page = await rig.catalog.project_page(await rig.access(), name, SIMPLE_JSON)
        assert set(listed(page)) == {aged, young}
        assert page.held_back is None
        download = await rig.catalog.locate_download(await rig.access(), name, young)
        assert download.entry.filename == young
        assert rig.upstream.requests_for("remote") == 1


@in_event_loop
async def test_the_minimum_age_spares_exempt_projects(tmp_path: Path) -> None:
    async with proxy_rig(tmp_path / "data", min_age=3600, min_age_exempt=("urgent-*",)) as rig:
        now = datetime.now(UTC)
        rig.upstream.publish("urgent-fix", "urgent_fix-1.0-py3-none-any.whl", b"a", upload_time=now)
        rig.upstream.publish("routine", "routine-1.0-py3-none-any.whl", b"b", upload_time=now)
        access = await rig.access()
        exempt = await rig.catalog.project_view(access, project("urgent-fix"))
        assert [f.filename for f in exempt.files] == ["urgent_fix-1.0-py3-none-any.whl"]
        guarded = await rig.catalog.project_view(access, project("routine"))
        assert guarded.files == ()
        assert [h.entry.filename for h in guarded.held_back] == ["routine-1.0-py3-none-any.whl"]
        with pytest.raises(NotFound, match="held back"):
            await rig.catalog.project_json(
                access, project("routine"), "1.0", "http://127.0.0.1:8080"
            )


@in_event_loop
async def test_raising_the_minimum_age_holds_back_files_already_shown(tmp_path: Path) -> None:
    async with proxy_rig(tmp_path / "data", page_ttl=0, min_age=0) as rig:
        young = "remote-1.0-py3-none-any.whl"
        rig.upstream.publish("remote", young, b"young", upload_time=datetime.now(UTC))
        shown = await rig.catalog.project_view(await rig.access(), project("remote"))
        assert [f.filename for f in shown.files] == [young]

        await rig.services.indexes.update(ADMIN, PROXY, {"min_age": 3600})
        access = await rig.access()
        assert access.configs[PROXY].min_age == 3600
        view = await rig.catalog.project_view(access, project("remote"))
        assert rig.upstream.requests_for("remote") == 2  # the page was revalidated
        assert [h.entry.filename for h in view.held_back] == [young]
        assert view.files == ()
