"""``ministry serve --processes N``: workers sharing one port, on one machine's stores."""

from __future__ import annotations

import hashlib
import os
import re
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from conftest import ALICE, add_user
from support.distributions import make_wheel
from support.server import MinistryServer, wait_for
from support.uploads import post_upload

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def workers_answering(server: MinistryServer, marker: str) -> set[int]:
    """The process ids that logged a request whose URL contains ``marker``."""
    pattern = re.compile(rf"\[(\d+)\] ministry\.access: .*{re.escape(marker)}")
    return {int(pid) for pid in pattern.findall(server.log())}


def ask_until_every_worker_answered(
    server: MinistryServer, path: str, tag: str, check: Callable[[httpx.Response], None]
) -> set[int]:
    """Ask ``path?tag=N`` on new connections until both workers answered; check each answer.

    The kernel gives each new connection to whichever worker accepts first, so a
    few dozen connections reach them all. Returns the workers that answered.
    """
    marker = f"{path}?{tag}="
    for attempt in range(400):
        with server.client() as client:  # a new connection each time
            check(client.get(f"{marker}{attempt}", headers=JSON))
        if attempt % 10 == 9 and len(workers_answering(server, marker)) >= 2:
            break
    return workers_answering(server, marker)


def healthy(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text


@pytest.fixture(params=["sqlite-files", "redis-s3"])
def workers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MinistryServer]:
    """A server with two worker processes, on each kind of stores, with user alice."""
    environment: dict[str, str] = {}
    if request.param == "redis-s3":
        make: Callable[[], dict[str, str]] = request.getfixturevalue("shared_stores")
        environment = make()
    server = MinistryServer(
        tmp_path / "data", arguments=["--processes", "2"], environment=environment
    ).start()
    add_user(server, *ALICE)
    yield server
    server.stop()


def test_an_upload_through_one_worker_is_served_by_every_worker(
    workers: MinistryServer, tmp_path: Path, unique: str
) -> None:
    """Each worker has the page in its own cache before the upload; none may serve it stale."""
    first, second = (make_wheel(tmp_path, unique, v) for v in ("1.0", "2.0"))
    with workers.client() as client:
        assert post_upload(client, first, auth=ALICE).status_code == 200
    path = f"/simple/{unique}/"

    def lists(*wheels: Path) -> Callable[[httpx.Response], None]:
        def check(response: httpx.Response) -> None:
            assert response.status_code == 200
            assert {f["filename"] for f in response.json()["files"]} == {w.name for w in wheels}

        return check

    before = ask_until_every_worker_answered(workers, path, "before", lists(first))
    assert len(before) == 2
    with workers.client() as client:
        assert post_upload(client, second, auth=ALICE).status_code == 200
    after = ask_until_every_worker_answered(workers, path, "after", lists(first, second))
    assert after == before  # the same two workers, each with the page it had cached


def test_a_worker_that_dies_is_replaced(workers: MinistryServer) -> None:
    victim, _ = ask_until_every_worker_answered(workers, "/-/health", "before", healthy)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: "starting another" in workers.log(), 20, "the supervisor to notice")
    survivors = ask_until_every_worker_answered(workers, "/-/health", "after", healthy)
    assert victim not in survivors
    assert len(survivors) == 2


def test_sigterm_stops_every_worker_cleanly(workers: MinistryServer) -> None:
    pids = ask_until_every_worker_answered(workers, "/-/health", "probe", healthy)
    assert len(pids) == 2
    assert workers.stop(signal.SIGTERM) == 0
    assert [pid for pid in pids if Path(f"/proc/{pid}").exists()] == []
    log = workers.log()
    assert log.count("finishing requests in flight") == 2
    assert "Traceback" not in log


def test_concurrent_uploads_to_one_project_are_all_listed_and_one_filename_has_one_winner(
    workers: MinistryServer, tmp_path: Path, unique: str
) -> None:
    """docs/security.md, "Hostile uploads", on both kinds of stores: 24 clients upload
    24 versions of one project at once and every one is listed; then 6 clients race for
    one filename with other bytes each, and exactly one wins while the others get the
    duplicate error."""
    versions = [make_wheel(tmp_path, unique, f"1.{n}") for n in range(24)]
    answers = upload_at_once(workers, versions)
    assert [a.status_code for a in answers] == [200] * len(versions), [a.text for a in answers]
    with workers.client() as client:
        page = client.get(f"/simple/{unique}/", headers=JSON)
    listed = {f["filename"]: f["hashes"]["sha256"] for f in page.json()["files"]}
    assert listed == {w.name: hashlib.sha256(w.read_bytes()).hexdigest() for w in versions}

    rivals = []
    for n in range(6):
        directory = tmp_path / f"rival-{n}"
        directory.mkdir()
        rivals.append(make_wheel(directory, unique, "2.0", summary=f"rival {n}"))
    answers = upload_at_once(workers, rivals)
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [400] * 5, [a.text for a in answers]
    assert all("File already exists" in a.text for a in answers if a.status_code == 400)
    winner = rivals[[a.status_code for a in answers].index(200)]
    with workers.client() as client:
        assert client.get(f"/packages/{unique}/{winner.name}").content == winner.read_bytes()


def upload_at_once(server: MinistryServer, wheels: list[Path]) -> list[httpx.Response]:
    """Upload every wheel at the same moment, each on a connection of its own."""
    clients = [server.client() for _ in wheels]
    try:
        with ThreadPoolExecutor(max_workers=len(wheels)) as pool:
            return list(pool.map(lambda c, w: post_upload(c, w, auth=ALICE), clients, wheels))
    finally:
        for client in clients:
            client.close()
