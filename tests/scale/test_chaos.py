"""A short run of bench/chaos.py: faults under upload load lose no acknowledged upload.

Two nodes on Redis (appendonly yes, appendfsync always) and SeaweedFS S3; uploads
go through both nodes while redis-server is killed with SIGKILL and restarted on
its append-only file, then while one node is killed and restarted. The script
checks that every upload acknowledged with 200 is listed on both nodes and
downloads with its sha256; this test holds it to zero lost. The full run and its
figures: docs/benchmarks.md, "Faults".
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "chaos.py"


@pytest.mark.slow
def test_no_acknowledged_upload_is_lost_when_redis_or_a_node_is_killed(tmp_path: Path) -> None:
    out = tmp_path / "chaos.json"
    arguments = ["--seconds", "6", "--uploaders", "2", "--scenarios", "redis-kill,node-kill"]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *arguments, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.exists(), result.stdout + result.stderr
    scenarios = json.loads(out.read_text())["scenarios"]
    assert [s["scenario"] for s in scenarios] == ["redis-kill", "node-kill"]
    for scenario in scenarios:
        assert scenario["acknowledged"] > 0, scenario
        assert scenario["lost"] == 0, scenario
        assert scenario["lost_earlier"] == 0, scenario
        # The fault happened: some requests failed, and both nodes came back.
        assert scenario["errors"], scenario
        assert scenario["recovery_s"] is not None, scenario
    assert result.returncode == 0, result.stdout + result.stderr
