"""A twenty-first review: a malicious bidder or third party against the honest auctioneer, the honest
bidders and the CLI. Each test plays an attack and asserts the DEFENCE, so it fails while the hole is
open (the comment marked "(now:" says what happens without the defence)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_mutation_kills_service import local_run  # noqa: F401
from typer.testing import CliRunner

from zkauction.cli import app
from zkauction.protocol.audit import Auditor
from zkauction.protocol.log import SignedCheckpoint, SigningKey

ROOT = Path(__file__).resolve().parents[1]
CIRCUIT = ROOT / "circuits" / "ama_2x2_uniform"
DEEP = "[" * 100_000 + "]" * 100_000  # valid JSON, deeper than the C parser's recursion limit
BIG_INT = "1" * 5000  # valid JSON, longer than Python's 4,300-digit limit on int("...")


def _cli(args):
    r = CliRunner().invoke(app, [str(a) for a in args])
    crashed = r.exception is not None and not isinstance(r.exception, SystemExit)
    return r, crashed


def finished_honest_run(tmp):
    """A finished honest run (reveal mode, 2 rounds): its database, its newest signed checkpoint, the
    auction and the auctioneer's key."""
    run, fn = local_run(tmp / "run", rounds=2)
    try:
        run.play()
        run.answer_audit(run.reveal().rounds)
        run.auctioneer.checkpoint()
        assert Auditor(run.ledger, outcome=fn).audit().status == "valid"
        return Path(run.db), run.ledger.latest_checkpoint(), fn, run.auctioneer.key
    finally:
        run.close()


@pytest.fixture(scope="module")
def honest_log(tmp_path_factory):
    return finished_honest_run(tmp_path_factory.mktemp("honest"))[:3]


# ------------------------------------------------------------------------------------------------
# 1. (framing) `zkauction log verify --since THEIRS` with a checkpoint the auctioneer never signed.
#    The verdict "unconfirmed" (a bidder withheld its seed) tells the others to compare checkpoints
#    with it ("zkauction log verify --since THEIRS"). The withholding bidder hands over a made-up
#    checkpoint: garbage signature, another key's signature, or a size beyond the log. `log verify`
#    checks the log against it BEFORE checking who signed it (cli/log.py verify_log step 3:
#    check_log_extends, then since.verify) and prints "LOG INVALID" (exit 1) about the honest log,
#    while the Auditor given the same checkpoint refuses it as no evidence (valid).


def _forged(cp: SignedCheckpoint) -> dict[str, dict]:
    d = cp.to_dict()
    other = SigningKey.generate()
    return {
        "garbage signature, other root": {**d, "root": "ab" * 32, "signature": "00" * 64},
        "another key, other root": SignedCheckpoint.sign(other, cp.log_id, cp.size, "ab" * 32).to_dict(),
        "another key, smaller, other root": SignedCheckpoint.sign(other, cp.log_id, 3, "cd" * 32).to_dict(),
        "garbage signature, beyond the log": {**d, "size": d["size"] + 5, "signature": "00" * 64},
        "garbage signature, same root": {**d, "signature": "00" * 64},
    }


@pytest.mark.parametrize("forgery", list(_forged(SignedCheckpoint.sign(SigningKey.generate(), "00" * 32, 9, "11" * 32))))
def test_log_verify_since_a_checkpoint_nobody_signed_does_not_call_the_honest_log_invalid(tmp_path, honest_log, forgery):
    db, cp, fn = honest_log
    forged = _forged(cp)[forgery]
    theirs = tmp_path / "theirs.json"
    theirs.write_text(json.dumps(forged))
    # the Auditor: a checkpoint not the auctioneer's is no evidence (README: "refused as no evidence")
    from zkauction.protocol.log import Ledger

    from zkauction.protocol.checkpoint import CheckpointError

    with Ledger.open(db, writer=False) as led:
        try:
            assert Auditor(led, outcome=fn, checkpoints=[SignedCheckpoint.from_dict(forged)]).audit().status != "invalid"
        except CheckpointError:
            pass  # refused: not the auctioneer's checkpoint of this log
    r, crashed = _cli(["log", "verify", "--db", db, "--since", theirs])
    assert not crashed, r.exception
    # (now: "LOG INVALID: consistency: ... (fork or rewrite)" / "... signature does not verify" /
    # "... rolled back or truncated", exit 1: the honest auctioneer's log called invalid on a bidder's word)
    assert "LOG INVALID" not in r.output and r.exit_code != 1, r.output


# ------------------------------------------------------------------------------------------------
# 2. (CLI crash) User files read with plain json.loads: nesting deeper than the parser's recursion
#    limit raises RecursionError, an integer longer than 4,300 digits a plain ValueError; neither is
#    caught, so the command ends in a traceback (exit 1, "a failed check") instead of "error: ..."
#    (exit 2). The log's own payloads and checkpoints go through storage.parse_json (the twelfth and
#    sixteenth reviews); these files do not: a bids file (service/bids.py parse_bids), a proof bundle
#    (zk/bundle.py ProofBundle.load), a circuit manifest (zk/circuit.py Circuit.load).


@pytest.mark.parametrize("line", [
    '{"round": 1, "bids": ' + DEEP + "}",
    '{"round": 1, "bids": [' + BIG_INT + ", 0.5]}",
    '{"round": ' + BIG_INT + ', "bids": [0.5, 0.5]}',
], ids=["deep", "long bid", "long round"])
def test_a_bids_file_the_json_parser_cannot_read_is_a_usage_error_not_a_traceback(tmp_path, line):
    from zkauction.service.bids import BidsFileError, parse_bids
    from zkauction.service.client import init_state

    with pytest.raises(BidsFileError, match="line 1"):  # (now: RecursionError / ValueError)
        parse_bids(line + "\n")
    init_state(tmp_path / "b")
    (tmp_path / "bids.jsonl").write_text(line + "\n")
    r, crashed = _cli(["bidder", "run", "--url", "http://127.0.0.1:9", "--state", tmp_path / "b",
                       "--bids", tmp_path / "bids.jsonl"])
    assert not crashed and r.exit_code == 2, (r.exit_code, repr(r.exception))


@pytest.mark.parametrize("text", [DEEP], ids=["deep"])  # (a 5,000-digit integer is caught: verify_cmd catches ValueError)
def test_a_proof_bundle_the_json_parser_cannot_read_is_a_usage_error_not_a_traceback(tmp_path, text):
    (tmp_path / "proof.json").write_text(text)
    r, crashed = _cli(["verify", tmp_path / "proof.json", "--circuit", CIRCUIT])
    assert not crashed and r.exit_code == 2, (r.exit_code, repr(r.exception))  # (now: RecursionError, exit 1)


@pytest.mark.parametrize("text", [DEEP, '{"format": ' + BIG_INT + "}"], ids=["deep", "long int"])
@pytest.mark.parametrize("command", ["verify", "monitor", "bidder run"])
def test_a_circuit_manifest_the_json_parser_cannot_read_is_a_usage_error_not_a_traceback(tmp_path, text, command):
    import shutil

    from zkauction.service.client import init_state

    circ = tmp_path / "circ"
    shutil.copytree(CIRCUIT, circ, ignore=shutil.ignore_patterns("*.pk", "pk.key"))
    (circ / "manifest.json").write_text(text)
    if command == "verify":
        args = ["verify", CIRCUIT / "example_proof.json", "--circuit", circ]
    elif command == "monitor":
        args = ["monitor", "http://127.0.0.1:9", "--circuit", circ, "--timeout", "1"]
    else:
        init_state(tmp_path / "b")
        (tmp_path / "bids.csv").write_text("1,0.5,0.5\n")
        args = ["bidder", "run", "--url", "http://127.0.0.1:9", "--state", tmp_path / "b", "--bids", tmp_path / "bids.csv",
                "--circuit", circ]
    r, crashed = _cli(args)
    assert not crashed, repr(r.exception)  # (was: RecursionError / ValueError, a traceback)
    if command == "verify":  # the verifier's folder that is not a circuit is a failed manifest check (load_public_circuit)
        assert r.exit_code == 1 and "manifest check failed" in r.output and "not valid JSON" in r.output, r.output
    else:
        assert r.exit_code == 2, (r.exit_code, r.output)


def test_verify_db_since_a_checkpoint_nobody_signed_does_not_fail_the_honest_rounds_bundle(tmp_path):
    """The same hole in `zkauction verify proof.json --db LOG --since THEIRS`: bundle_log.py
    check_bundle_against_ledger checks that the log extends ``kept`` and never who signed ``kept``,
    so a made-up checkpoint turns the honest round's bundle into "INVALID: ledger: ... fork" (exit 1).
    (A bundle that passes every check of the log itself, built here without proving: the proof is
    verify_bundle's job, which the CLI runs first.)"""
    from zkauction.protocol.bundle_log import check_bundle_against_ledger
    from zkauction.protocol.checkpoint import CheckpointError
    from zkauction.protocol.state import read_state
    from zkauction.zk.bundle import ProofBundle, VerificationError

    auction = {"name": "test-net", "manifest_sha256": "aa" * 32, "vk_sha256": "bb" * 32}
    run, fn = local_run(tmp_path / "run", rounds=2, auction=auction)
    try:
        run.play()
        run.answer_audit(run.reveal().rounds)
        run.auctioneer.checkpoint()
        st = read_state(run.ledger)
        bundle = ProofBundle(proof={}, manifest_sha256="aa" * 32, vk_sha256="bb" * 32,
                             commitments=tuple(st.commitments_of(1)), outcome=st.outcome_of(1), ezkl_version="x",
                             round_id=1, circuit_name="", log=None)
        assert check_bundle_against_ledger(bundle, run.ledger) == 1  # the honest round checks out
        cp = run.ledger.latest_checkpoint()
        forged = SignedCheckpoint.sign(SigningKey.generate(), cp.log_id, cp.size, "ab" * 32)
        try:
            check_bundle_against_ledger(bundle, run.ledger, kept=forged)
        except CheckpointError:
            pass  # refused as not the auctioneer's checkpoint: a usage error, no verdict on the log
        except VerificationError as e:
            # (now: VerificationError('ledger', "the log's first N entries are not the ones of the checkpoint
            # kept (fork or rewrite)"): the CLI prints INVALID, exit 1)
            pytest.fail(f"a checkpoint the auctioneer never signed failed the honest round: {e}")
    finally:
        run.close()


# ------------------------------------------------------------------------------------------------
# 3. (framing) `zkauction log verify` of a copy of the honest log that anyone holding the file can
#    make: the last entry deleted, or two bidders' registrations swapped and the chain re-linked
#    (statements are signed without their place, so every hash, link and signature verifies). The
#    copy is not what the auctioneer's stored checkpoint vouches for, so it is evidence of nothing
#    (the Auditor: "pending: no checkpoint the auctioneer signed vouches for the log given"); the
#    twentieth review made a damaged chain "COPY DAMAGED", but `log verify` step 2 (cli/log.py
#    verify_log: check_log_extends(ledger, cp) on the stored checkpoint) still prints "LOG INVALID".


def _damaged_copy(src, dest, how):
    import sqlite3

    from zkauction.protocol.log import entry_hash

    s, t = sqlite3.connect(src), sqlite3.connect(dest)
    s.backup(t)
    s.close()
    for (trigger,) in t.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        t.execute(f"DROP TRIGGER {trigger}")
    rows = [list(r) for r in t.execute("SELECT seq, round, kind, payload, prev_hash, hash, signer, signature "
                                       "FROM entries ORDER BY seq")]
    if how == "the last entry deleted":
        rows = rows[:-1]
    else:  # two bidders' registrations swapped, the chain re-linked
        i = next(k for k in range(1, len(rows) - 1) if rows[k][2] == rows[k + 1][2] == "registration")
        rows[i], rows[i + 1] = rows[i + 1], rows[i]
        prev = rows[0][5]
        for k in range(1, len(rows)):
            rows[k][0], rows[k][4] = k, prev
            rows[k][5] = prev = entry_hash(k, rows[k][1], rows[k][2], rows[k][3], prev, rows[k][6])
    t.execute("DELETE FROM entries")
    t.executemany("INSERT INTO entries (seq, round, kind, payload, prev_hash, hash, signer, signature) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    t.commit()
    t.close()


@pytest.mark.parametrize("how", ["the last entry deleted", "two registrations swapped and re-chained"])
def test_log_verify_does_not_call_a_truncated_or_re_placed_copy_of_the_honest_log_invalid(tmp_path, honest_log, how):
    from zkauction.protocol.log import Ledger

    db, _, fn = honest_log
    copy = tmp_path / "copy.db"
    _damaged_copy(db, copy, how)
    with Ledger.open(copy, writer=False) as led:
        led.verify_chain()  # every hash, link and signature of the copy verifies
        assert Auditor(led, outcome=fn).audit().status == "pending"  # the Auditor: no evidence
    r, crashed = _cli(["log", "verify", "--db", copy])
    assert not crashed, r.exception
    # (now: "LOG INVALID: checkpoint: the log has 12 entries, fewer than the 13 of the checkpoint kept:
    # rolled back or truncated" / "... not the ones of the checkpoint kept (fork or rewrite)", exit 1)
    assert "LOG INVALID" not in r.output, r.output
