"""``zkauction demo --network``: the server, each bidder and the monitor in their own processes over
HTTP on 127.0.0.1; a few rounds, the audit proved in zk (real ezkl: marked slow, still runs in CI)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_network_runs_audits_and_verifies(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    env = {**os.environ, "EZKL_REPO_PATH": os.environ.get("EZKL_REPO_PATH", str(ROOT / ".ezkl"))}
    res = subprocess.run([sys.executable, "-m", "zkauction.cli", "demo", "--network", "--rounds", "6", "--audits", "1",
                          "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    text = res.stdout
    assert "summary (network)" in text and "audit passed" in text and "all valid" in text
    assert "2 bidder processes" in text and "6 rounds checked" in text
    summary = json.loads((out / "network" / "summary.json").read_text())
    assert summary["network"] and summary["audit_valid"] and summary["verified"]
    assert summary["rounds"] == 6 and summary["bidder_processes"] == 2
    assert summary["url"].startswith("http://127.0.0.1:")
    assert summary["monitor"]["rounds_checked"] == 6 and summary["monitor"]["verdict"]["valid"]
    for b in summary["bidders"]:  # each bidder process verified the audited round's proof itself
        assert b["outcomes_checked"] + b["rounds_passed"] == 6
        assert b["proofs_verified"] == summary["audited_rounds"]
