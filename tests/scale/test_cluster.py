"""Two ``ministry serve`` nodes sharing one Redis and one S3 bucket, as behind a load balancer.

Each node is a separate process with a scratch directory of its own; the only
things they share are the stores. Whatever one node accepts, the other must
serve at once, with the same bytes and the same serials.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from conftest import ALICE, BOB, add_user
from support.distributions import make_wheel
from support.server import MinistryServer
from support.uploads import post_upload

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def page(node: MinistryServer, project: str, **headers: str) -> httpx.Response:
    with node.client() as client:
        return client.get(f"/simple/{project}/", headers={**JSON, **headers})


def listed(node: MinistryServer, project: str) -> dict[str, str]:
    """Filename → sha256 of every file the node lists for the project."""
    response = page(node, project)
    assert response.status_code == 200, response.text
    return {f["filename"]: f["hashes"]["sha256"] for f in response.json()["files"]}


def test_concurrent_uploads_through_both_nodes_are_all_served_by_both(
    nodes: list[MinistryServer], tmp_path: Path, unique: str
) -> None:
    """50 uploads at once, alternating between the nodes, to 5 projects (10 versions each).

    Uploads to one project race on the same records, on different nodes; every
    one must land exactly once, and each node must list and serve all of them.
    """
    projects = [f"{unique}-p{n % 5}" for n in range(50)]
    wheels = [make_wheel(tmp_path, projects[n], f"1.{n // 5}") for n in range(50)]
    clients = [node.client() for node in nodes]

    def upload(n: int) -> int:
        return post_upload(clients[n % 2], wheels[n], auth=ALICE).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(upload, range(50)))
    for client in clients:
        client.close()
    assert statuses == [200] * 50

    expected: dict[str, dict[str, str]] = {}
    for project, wheel in zip(projects, wheels, strict=True):
        expected.setdefault(project, {})[wheel.name] = sha256(wheel)
    for node in nodes:
        for project, files in expected.items():
            assert listed(node, project) == files
    for n, (project, wheel) in enumerate(zip(projects, wheels, strict=True)):
        with nodes[(n + 1) % 2].client() as client:  # the node that did not take the upload
            response = client.get(f"/packages/{project}/{wheel.name}")
        assert response.status_code == 200
        assert response.content == wheel.read_bytes()

    serials = set()
    for node in nodes:
        with node.client() as client:
            serials.add(client.get("/simple/", headers=JSON).headers["X-PyPI-Last-Serial"])
    assert len(serials) == 1  # both nodes see the same, latest change


def test_an_upload_through_one_node_changes_the_other_nodes_page_at_once(
    nodes: list[MinistryServer], tmp_path: Path, unique: str
) -> None:
    """Node B has the page in its cache; node A's upload must not be hidden by it."""
    first, second = (make_wheel(tmp_path, unique, v) for v in ("1.0", "2.0"))
    a, b = nodes
    with a.client() as client:
        assert post_upload(client, first, auth=ALICE).status_code == 200
    before = page(b, unique)
    assert page(b, unique).headers["ETag"] == before.headers["ETag"]  # warm and stable
    assert list(listed(b, unique)) == [first.name]

    with a.client() as client:
        assert post_upload(client, second, auth=ALICE).status_code == 200
    assert sorted(listed(b, unique)) == [first.name, second.name]
    revalidated = page(b, unique, **{"If-None-Match": before.headers["ETag"]})
    assert revalidated.status_code == 200
    assert revalidated.headers["ETag"] != before.headers["ETag"]


def test_administration_through_one_node_applies_to_both(
    nodes: list[MinistryServer], tmp_path: Path, unique: str
) -> None:
    """Users and yanks live in the shared stores, whichever node's CLI made them."""
    a, b = nodes
    add_user(b, *BOB)
    wheel = make_wheel(tmp_path, unique, "1.0")
    with a.client() as client:
        assert post_upload(client, wheel, auth=BOB).status_code == 200

    result = a.cli("yank", unique, "1.0", "--reason", "broken")
    assert result.returncode == 0, result.stderr
    for node in nodes:
        (entry,) = page(node, unique).json()["files"]
        assert entry["yanked"] == "broken"


def test_nodes_keep_nothing_of_their_own(
    nodes: list[MinistryServer], tmp_path: Path, unique: str
) -> None:
    """No database and no files in a node's directory: a node can be replaced at any time."""
    wheel = make_wheel(tmp_path, unique, "1.0")
    with nodes[0].client() as client:
        assert post_upload(client, wheel, auth=ALICE).status_code == 200
    nodes[0].stop()
    replacement = MinistryServer(tmp_path / "node-3", environment=nodes[0].environment).start()
    try:
        assert listed(replacement, unique) == {wheel.name: sha256(wheel)}
    finally:
        replacement.stop()
    for node in (*nodes, replacement):  # only empty scratch space for uploads in progress
        assert [p for p in node.data.rglob("*") if not p.is_dir()] == []


def test_one_filename_uploaded_with_other_bytes_to_both_nodes_has_one_winner(
    nodes: list[MinistryServer], tmp_path: Path, unique: str
) -> None:
    """Ten rounds of the same filename with different contents, sent to both nodes at once."""
    for round_ in range(10):
        version = f"1.{round_}"
        rivals = []
        for n in (0, 1):
            directory = tmp_path / f"r{round_}-{n}"
            directory.mkdir()
            rivals.append(make_wheel(directory, unique, version, summary=f"rival {n}"))
        assert rivals[0].read_bytes() != rivals[1].read_bytes()
        answers = upload_at_once(nodes, rivals)
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200, 400], [a.text for a in answers]
        winner = rivals[[a.status_code for a in answers].index(200)]
        for node in nodes:
            assert listed(node, unique)[winner.name] == sha256(winner)
            with node.client() as client:
                served = client.get(f"/packages/{unique}/{winner.name}").content
            assert served == winner.read_bytes()


def upload_at_once(nodes: list[MinistryServer], wheels: list[Path]) -> list[httpx.Response]:
    """Send ``wheels[n]`` to ``nodes[n]``, all at the same moment."""
    clients = [node.client() for node in nodes]
    try:
        with ThreadPoolExecutor(max_workers=len(wheels)) as pool:
            return list(pool.map(lambda c, w: post_upload(c, w, auth=ALICE), clients, wheels))
    finally:
        for client in clients:
            client.close()
