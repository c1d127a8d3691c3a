"""Short runs of bench/chaos.py: faults under upload load lose no acknowledged upload.

Two nodes on Redis (appendonly yes, appendfsync always) and SeaweedFS S3; uploads
go through both nodes while redis-server is killed with SIGKILL and restarted on
its append-only file, then while one node is killed and restarted, then while Redis
comes back empty and ``ministry rebuild --from-storage`` puts the
metadata back beside the running nodes. The script checks that every upload
acknowledged with 200 is listed on both nodes and downloads with its sha256, and
its readers check each page against the store; these tests hold it to zero lost
and zero stale. The full run and its figures: docs/benchmarks.md, "Faults".
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "chaos.py"


@pytest.fixture(scope="module")
def chaos(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, dict[str, Any]], str]:
    """One short run of the script (one cluster for every scenario): each scenario's
    results by name, and the script's output."""
    out = tmp_path_factory.mktemp("chaos") / "chaos.json"
    scenarios = "redis-kill,node-kill,redis-empty"
    arguments = ["--seconds", "5", "--uploaders", "2", "--scenarios", scenarios]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *arguments, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = f"exit status {result.returncode}\n{result.stdout}{result.stderr}"
    assert out.exists(), output
    found = {s["scenario"]: s for s in json.loads(out.read_text())["scenarios"]}
    assert list(found) == scenarios.split(","), output
    return found, output


@pytest.mark.slow
def test_no_acknowledged_upload_is_lost_when_redis_or_a_node_is_killed(
    chaos: tuple[dict[str, dict[str, Any]], str],
) -> None:
    found, output = chaos
    for scenario in (found["redis-kill"], found["node-kill"]):
        assert scenario["acknowledged"] > 0, scenario
        assert scenario["lost"] == 0, scenario
        assert scenario["lost_earlier"] == 0, scenario
        # The fault happened: some requests failed, and both nodes came back.
        assert scenario["errors"], scenario
        assert scenario["recovery_s"] is not None, scenario
        assert scenario["serial_went_back"] == 0, scenario
    assert output.startswith("exit status 0"), output


@pytest.mark.slow
def test_a_redis_that_came_back_empty_is_rebuilt_under_load_without_loss_or_stale_pages(
    chaos: tuple[dict[str, dict[str, Any]], str],
) -> None:
    found, output = chaos
    scenario = found["redis-empty"]
    assert scenario["acknowledged"] > 0, scenario
    assert scenario["rebuild_status"] == 0, scenario
    # Everything acknowledged before Redis lost it is back, on both nodes, with its sha256.
    assert scenario["lost"] == 0, scenario
    assert scenario["lost_earlier"] == 0, scenario
    assert scenario["rebuild_files"] >= scenario["acknowledged_before_loss"] > 0, scenario
    # Both nodes noticed; the readers checked pages against the store meanwhile and
    # found none listing a file it did not have, nor a serial going back.
    assert all(count >= 1 for count in scenario["rollbacks_noticed"]), scenario
    assert scenario["pages_checked"] > 0, scenario
    assert scenario["stale_pages"] == 0, scenario
    assert scenario["serial_went_back_after_notice"] == 0, scenario
    # The token lived in Redis too: uploads were refused until the rebuild put it back,
    # and then accepted again (the failed logins counted meanwhile were forgotten).
    assert scenario["errors"].get("401"), scenario
    assert scenario["recovery_s"] is not None, scenario
    assert output.startswith("exit status 0"), output
