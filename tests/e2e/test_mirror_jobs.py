"""``[[mirror]]`` jobs in the config file: run on a schedule, shown in metrics and the UI."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from conftest import ALICE
from support.distributions import make_wheel
from support.inprocess import InProcessServer, call_cli
from support.server import ministry_command, wait_for
from support.uploads import post_upload

# The jobs are under test, not a server process: the servers run in the test process.
pytestmark = pytest.mark.in_process


def publish(server: InProcessServer, path: Path) -> None:
    with server.client() as client:
        response = post_upload(client, path, auth=ALICE)
        assert response.status_code == 200, response.text


def fetched(upstream: InProcessServer, filename: str) -> int:
    pattern = re.compile(rf'"GET \S*/{re.escape(filename)} HTTP/1\.1" 200 ')
    return len(pattern.findall(upstream.log()))


def metric(server: InProcessServer, name: str, job: str) -> float | None:
    with server.client() as client:
        text = client.get("/-/metrics").text
    match = re.search(rf'^{name}\{{index="upstream",job="{job}"\}} (\S+)$', text, re.MULTILINE)
    return float(match[1]) if match else None


def test_a_scheduled_job_keeps_the_mirror_current_and_reports(
    fresh_server: InProcessServer, tmp_path: Path, unique: str
) -> None:
    upstream = fresh_server
    made = tmp_path / "made"
    made.mkdir()
    first = make_wheel(made, unique, "1.0")
    publish(upstream, first)
    (tmp_path / "requirements.txt").write_text(f"{unique}\n")
    config = tmp_path / "ministry.toml"
    config.write_text(
        "[[mirror]]\n"
        'name = "nightly"\n'
        'requirements = ["requirements.txt"]\n'  # relative to the config file
        'python_versions = ["3.11"]\n'
        "only_binary = true\n"
        'every = "1s"\n'
    )
    server = InProcessServer(
        tmp_path / "mirror",
        arguments=["--upstream", f"{upstream.url}/simple/", "--config", str(config)],
    ).start()
    try:
        wait_for(lambda: metric(server, "ministry_mirror_last_run_success", "nightly") == 1.0,
                 what="the first run of the job")  # fmt: skip
        assert fetched(upstream, first.name) == 1

        second = make_wheel(made, unique, "2.0")
        publish(upstream, second)
        wait_for(lambda: fetched(upstream, second.name) == 1, what="a later run of the job")
        assert fetched(upstream, first.name) == 1
        finished = metric(server, "ministry_mirror_last_run_finished_seconds", "nightly")
        assert finished is not None and finished > 0

        with server.client() as client:
            page = client.get("/-/indexes/upstream/", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert "nightly" in page.text
        assert 'class="mirror-run"' in page.text
        assert ">ok<" in page.text

        # The files are cached: the server serves them with the upstream gone.
        upstream.stop()
        with server.client() as client:
            download = client.get(f"/upstream/packages/{unique}/{second.name}")
        assert download.status_code == 200
        assert download.content == second.read_bytes()
        # Runs against a stopped upstream fail, and say so.
        wait_for(lambda: metric(server, "ministry_mirror_last_run_success", "nightly") == 0.0,
                 what="a failed run")  # fmt: skip
    finally:
        server.stop()


def _start_fails(tmp_path: Path, config_text: str, *arguments: str) -> str:
    config = tmp_path / "ministry.toml"
    config.write_text(config_text)
    result = subprocess.run(
        ministry_command(
            "serve", "--port", "0", "--data", str(tmp_path / "data"), "--config", str(config),
            *arguments,
        ),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    return result.stderr


def test_mistakes_in_mirror_jobs_stop_the_start(tmp_path: Path) -> None:
    unknown = _start_fails(tmp_path, '[[mirror]]\nname = "a"\nprojects = ["x"]\nevry = "1h"\n')
    assert "unknown key 'evry'" in unknown
    assert "ministry.toml" in unknown
    kind = _start_fails(tmp_path, '[[mirror]]\nname = "a"\nprojects = ["x"]\nnewest = "two"\n')
    assert "'newest' must be a int" in kind
    nothing = _start_fails(tmp_path, '[[mirror]]\nname = "a"\n')
    assert "give 'projects' or 'requirements'" in nothing
    hosted = _start_fails(tmp_path, '[[mirror]]\nname = "a"\nindex = "main"\nprojects = ["x"]\n')
    assert "not a proxy index" in hosted
    broken = _start_fails(tmp_path, "[[mirror]\n")
    assert "not valid TOML" in broken


def test_a_job_runs_now_from_the_command_line(
    fresh_server: InProcessServer, tmp_path: Path, unique: str
) -> None:
    upstream = fresh_server
    made = tmp_path / "made"
    made.mkdir()
    wheel = make_wheel(made, unique, "1.0")
    publish(upstream, wheel)
    config = tmp_path / "ministry.toml"
    config.write_text(f'[[mirror]]\nname = "now"\nprojects = ["{unique}"]\nevery = "1d"\n')
    data = tmp_path / "mirror"
    source = ["--data", str(data), "--upstream", f"{upstream.url}/simple/", "--config", str(config)]
    result = call_cli("mirror", *source, "--job", "now")
    assert result.returncode == 0, result.stderr
    assert "job 'now': ok: fetched 1 files" in result.stdout
    assert fetched(upstream, wheel.name) == 1
    unknown = call_cli("mirror", *source, "--job", "later")
    assert unknown.returncode == 2
    assert "No [[mirror]] job 'later'" in unknown.stderr
    assert "(jobs: now)" in unknown.stderr

    # The server shows the run, made by the command, as its own jobs' runs.
    server = InProcessServer(data).start()
    try:
        assert metric(server, "ministry_mirror_last_run_success", "now") == 1.0
        assert metric(server, "ministry_mirror_last_run_files", "now") == 1.0
    finally:
        server.stop()
