"""What a proxy index offers from an upstream page, and how kept pages round-trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from packaging.utils import NormalizedName

from ministry.core.masking import mask_url
from ministry.core.models import IndexConfig, Upstream
from ministry.core.proxied_files import offered_files, project_of
from ministry.core.upstream_cache import KeptPage, dump_page, load_page
from ministry.core.upstream_pages import UpstreamFile, UpstreamPage

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SHA = "ab" * 32
PROXY = IndexConfig("upstream", kind="proxy", upstreams=(Upstream("http://127.0.0.1:1/simple/"),))


def upstream_file(filename: str, **options: object) -> UpstreamFile:
    """An upstream file with a sha256 unless ``hashes`` says otherwise."""
    values: dict[str, object] = {
        "filename": filename,
        "url": f"http://127.0.0.1:1/files/{filename}",
        "hashes": {"sha256": SHA},
    }
    values.update(options)
    return UpstreamFile(**values)  # type: ignore[arg-type]


def kept(*files: UpstreamFile, seen: dict[str, datetime] | None = None) -> KeptPage:
    """A kept page of project ``demo``."""
    page = UpstreamPage(name="demo", files=files, versions=(), status=None)
    return KeptPage(page, seen or {})


def test_files_become_entries_with_their_upstream_details() -> None:
    """Version, type, python tag, hashes, metadata hash, yank and provenance carry over."""
    wheel = upstream_file(
        "demo-1.0-py3-none-any.whl",
        requires_python=">=3.9",
        yanked="broken",
        metadata_hashes={"sha256": "cd" * 32},
        size=123,
        upload_time=NOW - timedelta(days=9),
        provenance="https://example.test/provenance",
    )
    offered, held = offered_files(PROXY, NormalizedName("demo"), kept(wheel), NOW)
    assert held == []
    (entry,) = offered
    assert (entry.index, entry.version, entry.packagetype, entry.python_version) == (
        "upstream", "1.0", "bdist_wheel", "py3",
    )  # fmt: skip
    assert (entry.sha256, entry.metadata_sha256, entry.size) == (SHA, "cd" * 32, 123)
    assert (entry.yanked, entry.requires_python) == ("broken", ">=3.9")
    assert entry.provenance == "https://example.test/provenance"
    assert entry.upstream_url == "http://127.0.0.1:1/files/demo-1.0-py3-none-any.whl"
    assert entry.md5 is None


def test_files_without_sha256_or_a_usable_name_are_not_offered() -> None:
    """Bytes that cannot be checked are never offered; legacy .zip sdists are."""
    files = (
        upstream_file("demo-1.0.tar.gz", hashes={"md5": "0" * 32}),
        upstream_file("demo-1.0.tar.gz.asc"),
        upstream_file("demo-0.9.zip"),
        upstream_file("demo-0.8.tar.bz2", hashes={}),
    )
    offered, _ = offered_files(PROXY, NormalizedName("demo"), kept(*files), NOW)
    assert [(e.filename, e.version, e.packagetype) for e in offered] == [
        ("demo-0.9.zip", "0.9", "sdist")
    ]


def test_minimum_age_holds_young_files_back() -> None:
    """Files younger than min_age are held back until they are old enough; exempt names are not."""
    guarded = IndexConfig("upstream", kind="proxy", upstreams=PROXY.upstreams, min_age=3 * 86400)
    old = upstream_file("demo-1.0.tar.gz", upload_time=NOW - timedelta(days=4))
    young = upstream_file("demo-2.0.tar.gz", upload_time=NOW - timedelta(days=1))
    unknown = upstream_file("demo-3.0.tar.gz")  # no upload time: first seen decides
    seen = {"demo-3.0.tar.gz": NOW - timedelta(days=2)}
    offered, held = offered_files(
        guarded, NormalizedName("demo"), kept(old, young, unknown, seen=seen), NOW
    )
    assert [e.version for e in offered] == ["1.0"]
    assert [(h.entry.version, h.until) for h in held] == [
        ("2.0", NOW + timedelta(days=2)),
        ("3.0", NOW + timedelta(days=1)),
    ]
    exempt = IndexConfig(
        "upstream", kind="proxy", upstreams=PROXY.upstreams, min_age=3 * 86400,
        min_age_exempt=("de*",),
    )  # fmt: skip
    offered, held = offered_files(exempt, NormalizedName("demo"), kept(old, young, unknown), NOW)
    assert (len(offered), held) == (3, [])


def test_never_seen_files_count_from_now() -> None:
    """A file appearing for the first time without an upload time waits the full minimum age."""
    guarded = IndexConfig("upstream", kind="proxy", upstreams=PROXY.upstreams, min_age=3600)
    offered, held = offered_files(
        guarded, NormalizedName("demo"), kept(upstream_file("demo-1.0.tar.gz")), NOW
    )
    assert offered == []
    assert held[0].until == NOW + timedelta(hours=1)


def test_kept_pages_round_trip_with_first_seen_times() -> None:
    """What is stored comes back equal; the token changes with the document only."""
    files = (
        upstream_file(
            "demo-1.0-py3-none-any.whl",
            metadata_hashes={},
            size=5,
            upload_time=NOW,
            yanked="",
            requires_python="<4",
        ),
        upstream_file("demo-1.0.tar.gz"),
    )
    page = UpstreamPage(name="demo", files=files, versions=("1.0",), status="active")
    seen = {"demo-1.0.tar.gz": NOW - timedelta(days=1)}
    document, token = dump_page(KeptPage(page, seen), NOW)
    loaded = load_page(document)
    assert loaded.page == page
    assert loaded.first_seen == {
        "demo-1.0-py3-none-any.whl": NOW,
        "demo-1.0.tar.gz": NOW - timedelta(days=1),
    }
    assert dump_page(loaded, NOW + timedelta(days=5)) == (document, token)
    other = UpstreamPage(name="demo", files=files[:1], versions=("1.0",), status="active")
    assert dump_page(KeptPage(other, seen), NOW)[1] != token


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:secret@host.test/simple/", "https://user:***@host.test/simple/"),
        ("https://user:secret@host.test:8443/simple/", "https://user:***@host.test:8443/simple/"),
        ("https://s3cret@127.0.0.1:9/simple/", "https://***@127.0.0.1:9/simple/"),
        ("https://127.0.0.1:9/simple/?token=t&x=1", "https://127.0.0.1:9/simple/?token=***&x=1"),
        ("s3://AKIDKEY:secret@bucket/p", "s3://***:***@bucket/p"),
        ("s3://bucket/p?access_key=a&secret_key=b", "s3://bucket/p?access_key=***&secret_key=***"),
        ("rediss://user:secret@h:6380/0", "rediss://user:***@h:6380/0"),
        ("unix:///run/redis.sock?db=0&password=secret", "unix:///run/redis.sock?db=0&password=***"),
        (
            "https://h.test/f?X-Amz-Signature=s&X-Amz-Credential=c",
            "https://h.test/f?X-Amz-Signature=***&X-Amz-Credential=***",
        ),
        ("http://127.0.0.1:8080/simple/", "http://127.0.0.1:8080/simple/"),
        ("redis://:secret@[::1]:6379/0", "redis://:***@[::1]:6379/0"),
        ("redis://h:6379/0?password=secret&prefix=p", "redis://h:6379/0?password=***&prefix=p"),
        ("redis://h:6379/0?prefix=p", "redis://h:6379/0?prefix=p"),
    ],
)
def test_passwords_never_leave_in_urls(url: str, shown: str) -> None:
    """mask_url hides passwords, tokens and keys, and keeps everything else."""
    assert mask_url(url) == shown


@pytest.mark.parametrize(
    ("filename", "project"),
    [
        ("Demo_Pkg-1.0-py3-none-any.whl", "demo-pkg"),
        ("Demo_Pkg-1.0-py3-none-any.whl.metadata", "demo-pkg"),
        ("demo.pkg-2.0rc1.tar.gz", "demo-pkg"),
        ("Old-Style-Name-0.9.zip", "old-style-name"),
        ("legacy-1.0.tar.bz2", "legacy"),
        ("setup.exe", None),
        ("../escape-1.0.tar.gz", None),
        ("noversion.zip", None),
    ],
)
def test_the_project_of_a_cached_file_comes_from_its_name(
    filename: str, project: str | None
) -> None:
    assert project_of(filename) == project
