"""A ``ministry serve`` node on a Redis that comes back empty (``services.rollback``).

FLUSHDB stands for a Redis restarted without its data: the serial starts again at
0 and the generation key is gone. The node must notice at its next request, say
so in its log and in ``/-/ready``, and go on handing out serials above those it
had already handed out, so that a mirror never sees one serial twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from conftest import ALICE, add_user
from support.backends import RedisServer
from support.distributions import make_wheel
from support.server import MinistryServer
from support.uploads import post_upload

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[MinistryServer, str]]:
    """A node on a Redis server of its own (this test empties the whole database)."""
    with RedisServer(tmp_path / "redis") as server:
        node = MinistryServer(tmp_path / "data", environment={"MINISTRY_DB": server.url})
        node.start()
        try:
            add_user(node, *ALICE)
            yield node, server.url
        finally:
            node.stop()


def upload(node: MinistryServer, directory: Path, version: str) -> int:
    """Upload a wheel; returns the serial of the page that then lists it."""
    directory.mkdir()
    path = make_wheel(directory, "rollback-demo", version)
    with node.client() as client:
        assert post_upload(client, path, auth=ALICE).status_code == 200
        page = client.get("/simple/rollback-demo/", headers=JSON)
    assert page.status_code == 200
    return int(page.headers["X-PyPI-Last-Serial"])


def test_a_redis_that_came_back_empty_is_noticed_and_serials_stay_increasing(
    node: tuple[MinistryServer, str], tmp_path: Path
) -> None:
    server, url = node
    before = upload(server, tmp_path / "a", "1.0")
    with server.client() as client:
        assert "rollback" not in client.get("/-/ready").json()
    with redis.Redis.from_url(url) as connection:
        connection.flushdb()

    with server.client() as client:
        # The next request notices; the page is not served from a cache: ``main`` is gone
        # with the rest of the data (an index that does not exist answers 401).
        assert client.get("/simple/rollback-demo/", headers=JSON).status_code == 401
        ready = client.get("/-/ready")
        metrics = client.get("/-/metrics").text
    assert ready.status_code == 200
    (rollback,) = ready.json()["rollback"]
    assert rollback["seen_serial"] == before > rollback["found_serial"]
    assert rollback["seen_generation"] != rollback["found_generation"]
    assert "ministry_metadata_rollbacks_total 1.0" in metrics
    log = server.log()
    assert "ERROR" in log and f"had seen serial {before}" in log
    assert rollback["found_generation"] in log

    # The operator puts back what was lost (here: the user; the CLI makes ``main`` again).
    add_user(server, *ALICE)
    after = upload(server, tmp_path / "b", "1.1")
    assert after > before
