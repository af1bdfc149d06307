"""End to end: the demo (shipped circuit or compile, dev SRS, 20 rounds, zk audit, verification) and a dishonest
auctioneer caught in zk mode. Real ezkl proving: marked slow (still runs in CI)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from zkauction.zk.circuit import Outcome
from zkauction.protocol.demo import auction_info, default_demo_auction, run_demo
from zkauction.protocol.local import LocalRun
from zkauction.protocol.auctioneer import circuit_outcome_function
from zkauction.protocol.state import OUTCOME, ProtocolError
from zkauction.zk.prove import prove_round

from test_protocol import within_bids

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    shipped = ROOT / "trained" / "ama_2x2_uniform"
    if (shipped / "config.json").is_file():
        auction = default_demo_auction()
        assert auction.name == "ama_2x2_uniform"
    else:  # nothing shipped: a briefly trained 2x2 AMA (small circuit, fast proofs)
        auction = out / "ama"
        cfg = out / "ama.toml"
        cfg.write_text(f'base = "{ROOT / "configs" / "ama_2x2_uniform.toml"}"\nname = "ama_test"\n'
                       "[train]\nsteps = 20\neval_every = 10\neval_size = 2000\n")
        subprocess.run([sys.executable, "-m", "zkauction.cli", "train", str(cfg), "--out", str(auction),
                        "--no-eval", "--no-progress"], check=True, cwd=ROOT)
    summary = run_demo(out, auction=auction, rounds=20, audits=1, seed=3, echo=lambda *a: None)
    return out, summary


@pytest.mark.slow
def test_demo_end_to_end(demo):
    out, summary = demo
    assert summary["audit_valid"] and summary["verified"]
    if summary["auction"].endswith("ama_2x2_uniform") and (ROOT / "circuits" / "ama_2x2_uniform").is_dir():
        # The shipped circuit was compiled from the shipped weights: no compile step.
        assert summary["circuit_source"].startswith("shipped") and summary["logrows"] == 8
    assert summary["rounds"] == 20 and len(summary["audited_rounds"]) == 1
    assert json.loads((out / "summary.json").read_text())["ledger_entries"] == summary["ledger_entries"]
    # every bidder kept a checkpoint of the whole log and checked consistency at every contact
    kept = summary["bidder_checkpoints"]
    assert len(kept) == 2 and all(k["size"] >= summary["ledger_entries"] - 2 and k["consistency_checks"] >= 20 for k in kept)
    proofs = list((out / "proofs").glob("round_*.json"))
    assert len(proofs) == 1
    # The CLI's proof file verifies against the ledger; a tampered copy does not.
    from zkauction.zk.bundle import ProofBundle, VerificationError
    from zkauction.protocol.log import Ledger
    from zkauction.protocol.bundle_log import check_bundle_against_ledger

    bundle = ProofBundle.load(proofs[0])
    assert bundle.log is not None  # self-contained: the log proof binds round and commitments
    with Ledger.open(out / "auction.db", writer=False) as ledger:
        assert check_bundle_against_ledger(bundle, ledger) == bundle.round_id
        pay = list(bundle.outcome.payment)
        pay[0] += 0.5
        import dataclasses

        lie = dataclasses.replace(bundle, outcome=Outcome(bundle.outcome.allocation, tuple(pay)))
        with pytest.raises(VerificationError, match=f"round {bundle.round_id}: the proven outcome is not the published one"):
            check_bundle_against_ledger(lie, ledger)
        with pytest.raises(VerificationError, match=f"round {bundle.round_id}: the proven outcome is not the published one"):
            check_bundle_against_ledger(dataclasses.replace(lie, log=None), ledger)


@pytest.mark.slow
def test_dishonest_auctioneer_is_caught_in_zk_mode(demo, tmp_path, monkeypatch):
    out, _ = demo
    from zkauction.zk.circuit import Circuit
    from zkauction.protocol.log import Ledger

    circuit = Circuit.load(out / "circuit")
    honest = circuit_outcome_function(circuit)
    run = LocalRun.create(
        tmp_path / "z.db", honest, setting=_setting(circuit), participation=_participation(circuit),
        input_scale=circuit.input_scale,
        auction=auction_info(circuit),
        rounds=3, audits=3, mode="zk", seed=11, circuit=circuit,
    )
    with run:
        def dishonest(bids, salts):
            o = honest(bids, salts)
            if run.ledger.entries(kind=OUTCOME, round=1) and not run.ledger.entries(kind=OUTCOME, round=2):
                return within_bids(honest)(bids, salts)  # winners pay halfway up to their bids' worth
            return o

        run.auctioneer.outcome = dishonest
        run.play()
        run.reveal()
        # one proof keeps the test short; the auditor checks round 2
        bundle = prove_round(circuit, *run.auctioneer.round_inputs(2), round_id=2)
        with pytest.raises(ProtocolError, match=r"round 2: the proof does not verify \(outcome check failed"):
            run.auctioneer.log_proof(2, bundle, circuit)  # the server checks a proof before it logs it...
        with monkeypatch.context() as m:  # ...a dishonest one logs it all the same
            m.setattr("zkauction.zk.bundle.verify_bundle", lambda *a, **k: None)
            run.auctioneer.log_proof(2, bundle, circuit)
        st = run.state
        verdict = run.auditor().check_audited_round(st, 2)
        honest_round = run.auditor().check_audited_round(st, 1)
    assert not verdict.valid and verdict.round == 2
    assert verdict.reason.startswith("round 2:") and "payment" in verdict.reason
    assert not honest_round.valid and "no proof" in honest_round.reason  # round 1 was not proven here
    with Ledger.open(tmp_path / "z.db", writer=False) as ledger:
        ledger.verify_chain()  # the chain is fine: the lie is in the content


def _setting(circuit):
    from zkauction.learn.setting import AuctionSetting

    return AuctionSetting.from_dict(circuit.manifest["setting"])


def _participation(circuit):
    return circuit.participation_model()


@pytest.mark.slow
def test_cli_run_audit_prove_verify(demo, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from zkauction.cli import app

    out, _ = demo
    monkeypatch.chdir(tmp_path)
    cli = CliRunner()
    res = cli.invoke(app, ["run", "--circuit", str(out / "circuit"), "--rounds", "5", "--db", "a.db", "--mode", "reveal",
                           "--audits", "2", "--seed", "4"])
    assert res.exit_code == 0, res.output
    assert "played 5 rounds" in res.output and "UNTRUSTED" in res.output
    res = cli.invoke(app, ["run", "--db", "a.db"])
    assert res.exit_code == 0 and "nothing to play" in res.output
    res = cli.invoke(app, ["audit", "--db", "a.db"])
    assert res.exit_code == 0, res.output
    assert "audit passed" in res.output
    res = cli.invoke(app, ["prove", "--db", "a.db", "--round", "2", "--out", "p.json"])
    assert res.exit_code == 0, res.output
    res = cli.invoke(app, ["verify", "p.json", "--circuit", str(out / "circuit"), "--db", "a.db"])
    assert res.exit_code == 0, res.output
    assert "valid: round 2 of log" in res.output and "matches the log a.db" in res.output
    res = cli.invoke(app, ["verify", "p.json", "--circuit", str(out / "circuit"), "--db", "a.db", "--round", "3"])
    assert res.exit_code == 1 and "round 2, not round 3" in res.output
    res = cli.invoke(app, ["log", "checkpoint", "--db", "a.db"])
    assert res.exit_code == 0, res.output
    Path("cp.json").write_text(res.output)
    res = cli.invoke(app, ["log", "verify", "--db", "a.db", "--since", "cp.json"])
    assert res.exit_code == 0 and "log verified" in res.output, res.output
    # user errors: one line, exit 2
    res = cli.invoke(app, ["run", "--db", "new.db", "--rounds", "3"])
    assert res.exit_code == 2 and "give --circuit" in res.output
    res = cli.invoke(app, ["run", "--db", "a.db", "--rounds", "7"])
    assert res.exit_code == 2 and "announces T = 5 rounds" in res.output
    res = cli.invoke(app, ["prove", "--db", "a.db", "--round", "9", "--out", "q.json"])
    assert res.exit_code == 2 and "round 9" in res.output


@pytest.mark.slow
def test_cli_demo_reuses_the_compiled_circuit(demo):
    from typer.testing import CliRunner

    from zkauction.cli import app

    out, summary = demo
    res = CliRunner().invoke(app, ["demo", "--out", str(out), "--auction", summary["auction"], "--rounds", "4",
                                   "--audits", "1", "--seed", "5"])
    assert res.exit_code == 0, res.output
    assert "reusing the compiled circuit" in res.output and "INSECURE" in res.output
    assert "bidder 0 kept" in res.output and "consistency checks made" in res.output
    assert "audited rounds" in res.output and "all valid" in res.output
    assert json.loads((out / "summary.json").read_text())["rounds"] == 4


@pytest.mark.slow
def test_cli_run_killed_mid_run_resumes(demo, tmp_path):
    import os
    import signal
    import sqlite3
    import time

    from zkauction.protocol.log import Ledger

    out, _ = demo
    T = 80
    db = tmp_path / "k.db"
    cmd = [sys.executable, "-m", "zkauction.cli", "run", "--circuit", str(out / "circuit"), "--rounds", str(T),
           "--db", str(db), "--mode", "reveal", "--audits", "2"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            if db.is_file():
                try:
                    with sqlite3.connect(db) as c:
                        (n,) = c.execute("SELECT COUNT(*) FROM entries WHERE kind = 'outcome'").fetchone()
                    if n >= 8:
                        break
                except sqlite3.DatabaseError:
                    pass
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.2)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with Ledger.open(db) as ledger:
        ledger.verify_chain()
        done = len(ledger.entries(kind="outcome"))
    assert 8 <= done < T
    res = subprocess.run([sys.executable, "-m", "zkauction.cli", "run", "--db", str(db)], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "resuming" in res.stdout and f"played {T - done} rounds" in res.stdout
    res = subprocess.run([sys.executable, "-m", "zkauction.cli", "audit", "--db", str(db)], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "audit passed" in res.stdout
