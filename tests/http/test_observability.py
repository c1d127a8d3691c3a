"""``/-/metrics`` and the server log: request metrics, JSON and text access lines, request ids."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ALICE, add_user
from ministry.version import version
from support.distributions import make_wheel
from support.inprocess import InProcessServer
from support.server import Server
from support.uploads import post_upload

Metrics = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def json_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of this module's own that logs JSON, with user alice."""
    instance = InProcessServer(
        tmp_path_factory.mktemp("observed") / "data", arguments=["--log-format", "json"]
    ).start()
    add_user(instance, *ALICE)
    yield instance
    instance.stop()


def scrape(server: Server) -> Metrics:
    """``/-/metrics`` as {(name, labels): value}."""
    with server.client() as client:
        response = client.get("/-/metrics")
    assert response.status_code == 200
    values = {}
    for line in response.text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if match and not line.startswith("#"):
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match[2] or ""))
            values[(match[1], labels)] = float(match[3])
    return values


def metric(values: Metrics, name: str, **labels: str) -> float:
    return values.get((name, frozenset(labels.items())), 0.0)


def log_records(server: Server) -> list[dict[str, Any]]:
    """Every line of the server log, each parsed as one JSON object."""
    records = []
    for line in server.log().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"a server log line is not JSON: {line!r}")
    return records


def access_record(server: Server, request_id: str) -> dict[str, Any]:
    """The one access record of the request with this id."""
    found = [r for r in log_records(server) if r.get("request_id") == request_id]
    assert len(found) == 1, found
    return found[0]


def upload(server: Server, tmp_path: Path, name: str, **options: Any) -> Path:
    """Publish a small wheel of ``name`` as alice; returns its path."""
    path = make_wheel(tmp_path, name, "1.0")
    with server.client() as client:
        response = post_upload(client, path, auth=ALICE, **options)
    assert response.status_code == 200, response.text
    return path


def test_requests_are_counted_by_route_and_status(json_server: Server) -> None:
    before = scrape(json_server)
    with json_server.client() as client:
        assert client.get("/simple/").status_code == 200
        assert client.head("/simple/").status_code == 200
        assert client.get("/simple/no-such-project-here/").status_code == 404
    after = scrape(json_server)

    def grew(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    requests = "ministry_http_requests_total"
    assert grew(requests, route="SimpleIndexHandler", method="GET", status="200") == 1
    assert grew(requests, route="SimpleIndexHandler", method="HEAD", status="200") == 1
    assert grew(requests, route="ProjectPageHandler", method="GET", status="404") == 1
    histogram = "ministry_http_request_duration_seconds_count"
    assert grew(histogram, route="SimpleIndexHandler", status="200") == 2
    assert grew(histogram, route="ProjectPageHandler", status="404") == 1
    # Labels name routes, never the paths clients chose.
    assert not any("no-such-project" in value for _, labels in after for _, value in labels)


def test_uploads_downloads_connections_and_store_time(json_server: Server, tmp_path: Path) -> None:
    before = scrape(json_server)
    wheel = upload(json_server, tmp_path, "metered-demo")
    with json_server.client() as client:
        other = make_wheel(tmp_path, "metered-other", "1.0")
        anonymous = post_upload(client, other, auth=None)
        assert anonymous.status_code == 401
        download = client.get(f"/packages/metered-demo/{wheel.name}")
        assert download.content == wheel.read_bytes()
        assert client.head(f"/packages/metered-demo/{wheel.name}").status_code == 200
    after = scrape(json_server)

    def grew(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert grew("ministry_uploads_total", outcome="published") == 1
    assert grew("ministry_uploads_total", outcome="unauthorized") == 1
    # The GET sent the file's bytes; the HEAD sent none.
    assert grew("ministry_download_bytes_total", index="main") == wheel.stat().st_size
    # The scrape itself holds a connection open.
    assert metric(after, "ministry_open_connections") >= 1
    store_calls = [
        value
        for (name, _), value in after.items()
        if name == "ministry_store_operation_seconds_count"
    ]
    assert sum(store_calls) > 0
    assert metric(after, "ministry_build_info", version=version()) == 1


def test_json_log_has_one_object_per_line_with_access_fields(
    json_server: Server, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, "logged-demo", "1.0")
    with json_server.client() as client:
        published = post_upload(
            client, wheel, auth=ALICE, url="/main/legacy/", headers={"X-Request-ID": "upload-1.a"}
        )
        download = client.get(
            f"/packages/logged-demo/{wheel.name}", headers={"X-Request-ID": "download:1"}
        )
    assert published.status_code == 200, published.text
    assert published.headers["X-Request-ID"] == "upload-1.a"
    assert download.headers["X-Request-ID"] == "download:1"

    record = access_record(json_server, "upload-1.a")
    assert record["method"] == "POST"
    assert record["path"] == "/main/legacy/"
    assert record["status"] == 200
    assert record["user"] == "alice"
    assert record["index"] == "main"
    assert record["address"] == "127.0.0.1"
    assert record["level"] == "INFO"
    assert record["bytes"] == len(published.content)
    assert isinstance(record["duration_ms"], float)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", record["time"])

    record = access_record(json_server, "download:1")
    assert (record["status"], record["bytes"], record["user"]) == (200, wheel.stat().st_size, None)
    assert record["index"] == "main"

    others = [r for r in log_records(json_server) if "request_id" not in r]
    assert any("serving http://127.0.0.1:" in r["message"] for r in others)
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in others)


@pytest.mark.parametrize(
    "incoming", ["", "has space", "x" * 129, "semi;colon", 'quote"d', "new%0Aline"]
)
def test_unusable_request_ids_are_replaced(json_server: Server, incoming: str) -> None:
    with json_server.client() as client:
        response = client.get("/-/health", headers={"X-Request-ID": incoming})
    request_id = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert access_record(json_server, request_id)["path"] == "/-/health"


def test_every_response_has_a_request_id(json_server: Server) -> None:
    with json_server.client() as client:
        ids = {client.get(path).headers.get("X-Request-ID") for path in ("/", "/nope/x", "/-/x")}
    assert None not in ids and len(ids) == 3


def test_server_error_body_has_no_traceback(json_server: Server, tmp_path: Path) -> None:
    """A failure shows the client a message; the traceback goes to the server log only."""
    wheel = upload(json_server, tmp_path, "broken-blob")
    sha256 = hashlib.sha256(wheel.read_bytes()).hexdigest()
    (blob,) = (p for p in (json_server.data / "blobs").rglob(sha256) if p.is_file())
    # A symbolic link in the store is refused (O_NOFOLLOW): an unexpected storage failure.
    blob.unlink()
    blob.symlink_to(tmp_path / "elsewhere")
    with json_server.client() as client:
        response = client.get(
            f"/packages/broken-blob/{wheel.name}", headers={"X-Request-ID": "fails-1"}
        )
    assert response.status_code == 500
    assert "Traceback" not in response.text and ".py" not in response.text
    assert "storage" in response.text
    assert access_record(json_server, "fails-1")["level"] == "ERROR"
    failures = [r for r in log_records(json_server) if "Traceback" in r.get("exc_info", "")]
    assert any("broken-blob" in r["message"] for r in failures)


def test_text_access_line_by_default(server: Server) -> None:
    with server.client() as client:
        response = client.get("/simple/?probe=text-log", headers={"X-Request-ID": "text-1"})
    assert response.status_code == 200
    lines = [line for line in server.log().splitlines() if "probe=text-log" in line]
    assert len(lines) == 1
    assert re.search(
        r' INFO \[\d+\] ministry\.access: 127\.0\.0\.1 - - "GET /simple/\?probe=text-log '
        r'HTTP/1\.1" 200 \d+ [\d.]+ms index=main id=text-1$',
        lines[0],
    ), lines[0]
