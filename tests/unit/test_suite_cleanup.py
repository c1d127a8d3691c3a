"""A test run that is interrupted, timed out or killed leaves no server behind.

Each case runs a tiny pytest session in a process of its own, with this suite's
fixtures (tests/conftest.py, loaded as a plugin): its test starts a redis-server
through the ``redis_url`` fixture and one more with a temporary directory of its own,
then waits. The session is stopped the way a user, CI or pytest-timeout stops one, and
no redis-server of it may remain (support/children.py says how).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from support.server import wait_for

pytestmark = pytest.mark.slow

_TESTS = Path(__file__).resolve().parents[1]

_SESSION = """
import json, os, time
from pathlib import Path
from support.backends import RedisServer

def test_holds_two_redis_servers(redis_url):
    own = RedisServer().start()  # stopped by nobody here: the session's end must
    ports = [int(redis_url.rsplit(":", 1)[1].split("/")[0]), own.port]
    ready = Path(os.environ["CLEANUP_READY"])
    ready.with_suffix(".tmp").write_text(json.dumps({"ports": ports, "own": str(own.directory)}))
    ready.with_suffix(".tmp").rename(ready)
    time.sleep(600)
"""


def _redis_servers(ports: list[int]) -> list[int]:
    """The redis-server processes listening on any of ``ports`` (by their command line,
    which redis rewrites to ``redis-server 127.0.0.1:PORT``)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = entry.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "redis-server" in command and any(f":{port}" in command for port in ports):
            found.append(int(entry.parent.name))
    return found


@pytest.mark.parametrize(
    ("stop", "workers"),
    [("SIGTERM", 0), ("SIGINT", 0), ("SIGTERM", 1), ("timeout", 0), ("SIGKILL", 0)],
    ids=["sigterm", "sigint", "sigterm-xdist", "pytest-timeout", "sigkill"],
)
def test_no_server_outlives_its_session(tmp_path: Path, stop: str, workers: int) -> None:
    """SIGTERM, SIGINT (also to an xdist controller) and a test timing out: both servers
    stop and the temporary directory goes. SIGKILL, which no code of the session
    survives to act on: the kernel stops them (the directory is left)."""
    (tmp_path / "test_hold.py").write_text(_SESSION)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    slow: slow\ntimeout = 300\n")
    (tmp_path / "tmp").mkdir()
    ready = tmp_path / "ready.json"
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(_TESTS), os.environ.get("PYTHONPATH")])),
        "TMPDIR": str(tmp_path / "tmp"),
        "CLEANUP_READY": str(ready),
    }
    command = [
        sys.executable, "-m", "pytest", str(tmp_path / "test_hold.py"), "-p", "conftest",
        "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "base"), "-n", str(workers),
        *(["-o", "timeout=5"] if stop == "timeout" else []),
    ]  # fmt: skip
    log = tmp_path / "session.log"
    with log.open("wb") as output:
        session = subprocess.Popen(
            command, cwd=tmp_path, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    try:

        def started() -> bool:
            assert session.poll() is None or ready.exists(), log.read_text()
            return ready.exists()

        wait_for(started, 120, "the session's redis servers")
        state = json.loads(ready.read_text())
        assert len(_redis_servers(state["ports"])) == 2  # what is looked for can be found
        if stop != "timeout":
            session.send_signal(getattr(signal, stop))
        session.wait(timeout=120)
    finally:
        if session.poll() is None:
            session.kill()
            session.wait()
    try:
        wait_for(lambda: not _redis_servers(state["ports"]), 60, "the redis servers to stop")
    finally:
        for pid in _redis_servers(state["ports"]):  # this test leaves nothing either
            os.kill(pid, signal.SIGKILL)
    if stop != "SIGKILL":
        assert not Path(state["own"]).exists(), log.read_text()
