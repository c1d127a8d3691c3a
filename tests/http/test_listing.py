"""``/packages/``: a directory listing a person can browse and a script can parse."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from conftest import ALICE
from support.distributions import make_wheel
from support.server import Server
from support.uploads import post_upload


def test_listing_of_projects_and_files(server: Server, tmp_path: Path, unique: str) -> None:
    """Each project links to its files; each file row has size, upload time and sha256."""
    wheel = make_wheel(tmp_path, unique.upper(), "3.1")
    data = wheel.read_bytes()
    with server.client() as client:
        assert post_upload(client, wheel, auth=ALICE).status_code == 200
        projects = client.get("/packages/")
        files = client.get(f"/packages/{unique}/")
        link = re.search(rf'<a href="({re.escape(wheel.name)})">', files.text)
        assert link is not None
        download = client.get(f"/packages/{unique}/{link[1]}")
        assert client.get("/packages").headers["Location"] == "/packages/"
        assert client.get(f"/packages/{unique.upper()}/").status_code == 301
        assert client.get("/packages/no-such-project/").status_code == 404
    assert projects.status_code == 200
    assert f'<a href="{unique}/">{unique.upper()}</a>' in projects.text
    assert files.status_code == 200
    assert hashlib.sha256(data).hexdigest() in files.text
    assert f'data-bytes="{len(data)}"' in files.text
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z">', files.text)
    assert download.content == data
