"""The protocol's commands (run, audit, prove, penalty, demo, log, show, verify --db) with bad
arguments and files: each one a clean exit 2 (1 for a failed check), one line naming what is wrong,
no traceback, and the log unchanged."""

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zkauction.cli import app

ROOT = Path(__file__).resolve().parents[1]
CIRCUIT = ROOT / "circuits" / "ama_2x2_uniform"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A finished 3-round reveal-mode run and an unfinished one (its T larger than what was played)."""
    d = tmp_path_factory.mktemp("runs")
    cli = CliRunner()
    res = cli.invoke(app, ["run", "--circuit", str(CIRCUIT), "--rounds", "3", "--db", str(d / "done.db"), "--mode", "reveal"])
    assert res.exit_code == 0, res.output
    res = cli.invoke(app, ["run", "--circuit", str(CIRCUIT), "--rounds", "3", "--db", str(d / "open.db"), "--mode", "reveal"])
    assert res.exit_code == 0, res.output
    (d / "garbage.json").write_text("{not json")
    (d / "notalog.db").write_text("this is not sqlite\n" * 50)
    return d


def bad_cases(d: Path) -> list[tuple[list[str], int, str]]:
    C = str(CIRCUIT)
    return [
        (["run", "--db", str(d / "new.db"), "--rounds", "3"], 2, "give --circuit"),
        (["run", "--circuit", C, "--db", str(d / "a.db"), "--rounds", "0"], 2, "need 1 <= k <= T"),
        (["run", "--circuit", C, "--db", str(d / "a.db"), "--rounds", "3", "--audits", "5"], 2, "--audits 5"),
        (["run", "--circuit", C, "--db", str(d / "a.db"), "--rounds", "3", "--penalty", "-1"], 2, "--penalty -1"),
        (["run", "--circuit", C, "--db", str(d / "a.db"), "--rounds", "3", "--penalty", "6"], 2,
         "--penalty 6 is not above 6.03516 (T x aRgt*, with the public checks' rounding)"),
        (["run", "--circuit", C, "--db", str(d / "a.db"), "--rounds", "3", "--penalty", "6.03"], 2,
         "--penalty 6.03 is not above 6.03516"),  # above T x aRgt* = 6, inside the rounding
        (["run", "--circuit", C, "--db", str(d / "a.db"), "--rounds", "3", "--mode", "foo"], 2, "--mode 'foo'"),
        (["run", "--circuit", str(d / "nope"), "--db", str(d / "a.db"), "--rounds", "3"], 2, "nope"),
        (["run", "--circuit", C, "--db", str(d / "a.db"), "--rounds", "3", "--trusted-srs", "zz"], 2, "--trusted-srs 'zz'"),
        (["run", "--db", str(d / "notalog.db")], 2, "not a local run"),
        (["run", "--db", str(d / "done.db"), "--rounds", "7"], 2, "announces T = 3 rounds"),
        (["run", "--circuit", C, "--db", str(d / "a.db"), "--rounds", "3", "--block", "0"], 2, "--block 0: need 1 <= block <= T = 3"),
        (["run", "--circuit", C, "--db", str(d / "a.db"), "--rounds", "3", "--block", "4"], 2, "--block 4"),
        (["run", "--db", str(d / "done.db"), "--block", "2"], 2, "announces blocks of 1 rounds, not 2"),
        (["audit", "--db", str(d / "missing.db")], 2, "missing.db"),
        (["audit", "--db", str(d / "done.db"), "--withhold", "5"], 2, "--withhold 5"),
        (["prove", "--db", str(d / "done.db"), "--round", "9"], 2, "--round 9"),
        (["prove", "--db", str(d / "missing.db"), "--round", "1"], 2, "missing.db"),
        (["penalty", C, "--rounds", "200", "--accounting", "foo"], 2, "--accounting 'foo'"),
        (["penalty", C, "--rounds", "0"], 2, "--rounds 0"),
        (["penalty", C, "--rounds", "20000000"], 2, "--rounds 20000000: too many rounds to simulate"),
        (["penalty", C, "--rounds", "100000", "--trials", "1000"], 2, "give --trials 250 or fewer"),
        (["penalty", C, "--rounds", "10", "--trials", "1"], 2, "--trials 1: must be at least 2"),
        (["penalty", C, "--rounds", "10", "--penalty", "-3"], 2, "--penalty -3"),
        (["penalty", str(d / "nothing"), "--rounds", "10"], 2, "nothing"),
        (["demo", "--rounds", "0", "--out", str(d / "demo")], 2, "--rounds 0"),
        (["demo", "--out", str(ROOT / "README.md")], 2, "not a folder"),
        (["demo", "--auction", str(d), "--out", str(d / "demo")], 2, "not a trained auction folder"),
        (["log", "verify", "--db", str(d / "notalog.db")], 2, "not a zkauction log database"),
        (["log", "verify", "--db", str(d / "missing.db")], 2, "no such log file"),
        (["log", "verify", "--db", str(d / "done.db"), "--since", str(d / "garbage.json")], 2, "--since"),
        (["log", "checkpoint", "--db", str(d / "missing.db")], 2, "no such log file"),
        (["log", "show", "--db", str(d / "done.db"), "--round", "0"], 2, "--round 0"),
        (["log", "ls", "--db", str(d / "done.db"), "--limit", "-1"], 2, "--limit -1"),
        (["show", "thing", "1", "--db", str(d / "done.db")], 2, "only 'show round R'"),
        (["verify", str(CIRCUIT / "example_proof.json"), "--db", str(d / "missing.db")], 2, "no such log file"),
        (["verify", str(CIRCUIT / "example_proof.json"), "--since", str(d / "garbage.json")], 2, "--since needs --db"),
        (["verify", str(CIRCUIT / "example_proof.json"), "--round", "1"], 2, "--round needs a bundle with a log proof"),
    ]


def test_bad_arguments_exit_cleanly(runs):
    cli = CliRunner()
    before = (runs / "done.db").read_bytes()
    failures = []
    for args, code, needle in bad_cases(runs):
        res = cli.invoke(app, args)
        out = res.output
        if res.exit_code != code or needle not in out or "Traceback" in out:
            failures.append(f"{' '.join(args)} -> exit {res.exit_code}: {out.strip()[:300]}")
    assert not failures, "\n".join(failures)
    assert len(bad_cases(runs)) >= 25
    assert (runs / "done.db").read_bytes() == before  # nothing logged was lost or changed


def test_audit_of_an_unfinished_run_says_how_far_it_got(runs, tmp_path):
    # an unfinished run: created with T = 3, then its third round never played (copy of the log cut
    # by starting a fresh run with T = 5 and playing nothing is not possible from the CLI, so: a run
    # made from Python and left after one round)
    from zkauction.learn.setting import AuctionSetting, ParticipationModel
    from zkauction.protocol.demo import auction_info, load_circuit
    from zkauction.protocol.local import LocalRun, run_rounds
    from zkauction.protocol.auctioneer import circuit_outcome_function

    circuit = load_circuit(CIRCUIT)
    s = AuctionSetting.from_dict(circuit.manifest["setting"])
    run = LocalRun.create(tmp_path / "u.db", circuit_outcome_function(circuit), setting=s,
                          participation=ParticipationModel.fixed(2), input_scale=circuit.input_scale,
                          auction=auction_info(circuit), rounds=4, audits=1, mode="reveal")
    run_rounds(run.auctioneer, run.bidders, run.bids_of_round, [1])
    run.close()
    res = CliRunner().invoke(app, ["audit", "--db", str(tmp_path / "u.db")])
    # made from Python, no circuit folder recorded: the message says what to give
    assert res.exit_code == 2 and "records no circuit folder" in res.output
    cfg = tmp_path / "u.db.private" / "run.json"
    d = json.loads(cfg.read_text())
    d["circuit"] = str(CIRCUIT)
    cfg.write_text(json.dumps(d))
    res = CliRunner().invoke(app, ["audit", "--db", str(tmp_path / "u.db")])
    assert res.exit_code == 2 and "1 of 4 rounds played; resume with `zkauction run`" in res.output
    cfg.write_text('{"seed": ')  # a truncated run.json
    res = CliRunner().invoke(app, ["audit", "--db", str(tmp_path / "u.db")])
    assert res.exit_code == 2 and "run.json: not valid JSON" in res.output and "Traceback" not in res.output
    cfg.write_text(json.dumps(d))
    (tmp_path / "u.db.private" / "openings.db").write_bytes(b"garbage" * 100)  # a garbage openings store
    res = CliRunner().invoke(app, ["audit", "--db", str(tmp_path / "u.db")])
    assert res.exit_code == 2 and "openings store" in res.output


def test_run_and_prove_in_the_design_cards_forms_from_another_folder(runs, tmp_path, monkeypatch):
    """`zkauction prove --round r` (the log found as ./auction.db) and `zkauction verify proof.json`
    (the circuit found from the bundle's manifest hash), run outside the repository."""
    monkeypatch.chdir(tmp_path)
    cli = CliRunner()
    res = cli.invoke(app, ["run", "--circuit", str(CIRCUIT), "--rounds", "2", "--db", "auction.db", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["rounds"] == 2 and out["rounds_per_s"] > 0 and out["seconds"] > 0
    res = cli.invoke(app, ["prove", "--round", "2"])
    assert res.exit_code == 0, res.output
    assert Path("proof_round_2.json").is_file()
    res = cli.invoke(app, ["verify", "proof_round_2.json"])
    assert res.exit_code == 0 and "valid: round 2 of log" in res.output, res.output
    res = cli.invoke(app, ["verify", "proof_round_2.json", "--db", "auction.db"])
    assert res.exit_code == 0 and "matches the log auction.db" in res.output, res.output
    res = cli.invoke(app, ["show", "round", "2", "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["round"] == 2


def test_run_in_blocks_from_the_command_line_resumes_and_audits(tmp_path):
    """`zkauction run --block B`: the announcement carries the block size, a resumed run keeps it (no
    --block needed), the last block may be shorter, and the audit computed from the log is valid."""
    cli = CliRunner()
    db = str(tmp_path / "b.db")
    res = cli.invoke(app, ["run", "--circuit", str(CIRCUIT), "--rounds", "10", "--block", "4", "--db", db,
                           "--mode", "reveal", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    assert out["rounds"] == 10 and out["rounds_per_s"] > 0 and out["log_entries"] >= 10
    from zkauction.protocol.log import Ledger
    from zkauction.protocol.state import read_state

    with Ledger.open(db, writer=False) as ledger:
        st = read_state(ledger)
        assert st.announcement.block == 4 and st.rounds_done == 10 and st.breaches == []
    res = cli.invoke(app, ["run", "--db", db])  # resumed: nothing left, the block size from the log
    assert res.exit_code == 0 and "nothing to play" in res.output, res.output
    res = cli.invoke(app, ["audit", "--db", db])
    assert res.exit_code == 0 and "audit passed" in res.output, res.output
