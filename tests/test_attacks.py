"""The cheating auctioneer, one test per attack class. Each attack is played through the public API
(and, where the log's host could do it, surgery on its own database), and must end in a named error
or the penalty; an honest run of the same size passes its audit in every one.

Threat model: the auctioneer hosts the log, controls any number of shill bidders, can roll its
database back, rewrite it or re-sign it under new keys, and sees every opening sent to it. Honest
bidders and outside verifiers keep their own state (keys, the last checkpoint they accepted)."""

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test_protocol import PARTICIPATION, SETTING, make_run, small_net

from zkauction.protocol.audit import Auditor, audit_draw, check_round, public_checks
from zkauction.protocol.checkpoint import ForkError, LogIdentityError, RollbackError, SignedCheckpoint, check_log_extends
from zkauction.protocol.local import LocalRun, private_dir
from zkauction.protocol.log import ChainError, DuplicateEntryError, Ledger, LogLockedError
from zkauction.protocol.auctioneer import net_outcome_function
from zkauction.protocol.bidder import Bidder
from zkauction.protocol.state import (
    BID_COMMITMENT,
    COMMITMENTS_CLOSED,
    OPENING_REJECTED,
    OUTCOME,
    ProtocolError,
    read_state,
)
from zkauction.zk.circuit import Outcome

ROOT = Path(__file__).resolve().parents[1]
CIRCUIT = ROOT / "circuits" / "ama_2x2_uniform"


def snapshot(run, dest: Path) -> Path:
    """The host copies its database (a consistent copy: SQLite's backup API)."""
    import sqlite3

    src = sqlite3.connect(run.db)
    dst = sqlite3.connect(dest)
    src.backup(dst)
    src.close()
    dst.close()
    return dest


def restore(run, copy: Path) -> LocalRun:
    """The host puts an old copy of its database back and reopens the run (the parties' own state,
    in the private folder, stays as it is: the host cannot touch it)."""
    outcome = run.outcome
    run.close()
    for suffix in ("-wal", "-shm"):
        Path(str(run.db) + suffix).unlink(missing_ok=True)
    shutil.copy(copy, run.db)
    return LocalRun(run.db, outcome)


def honest_passes(tmp_path, **kw):
    with make_run(tmp_path, name="honest.db", **kw) as run:
        run.play()
        report = run.audit()
    assert report.valid, report.to_dict()


# 1. Rollback and re-draw -----------------------------------------------------------------------------

def test_rollback_and_redraw_cannot_choose_the_audited_round(tmp_path):
    honest_passes(tmp_path, rounds=8, audits=1)
    run = make_run(tmp_path, rounds=8, audits=1)
    run.play()
    before_reveals = snapshot(run, tmp_path / "before_reveals.db")
    draw = run.reveal()
    for b in run.bidders:  # each bidder checks that its reveal is in the log (a checkpoint covers it)
        b.sync()
    # The host rolls back to before the reveals and appends entries of its choosing (a rejection
    # naming a bidder that does not exist, free text as a nonce), hoping for another draw.
    drawn = set()
    for nonce in range(20):
        run = restore(run, before_reveals)
        run.ledger.append(OPENING_REJECTED, {"bidder": 7, "reason": f"nonce {nonce}"}, run.auctioneer.key, round=8)
        run.ledger.checkpoint(run.auctioneer.key)
        # every honest bidder notices at its next contact: its kept checkpoint covers its reveal
        for b in run.bidders:
            with pytest.raises(RollbackError, match="fewer than the .* of the checkpoint kept"):
                b.sync()
        # and were the reveals replayed, the draw would be the same: only the seeds enter it
        for b in run.bidders:
            b._view = None
            b._view_path = None  # (a bidder that had lost its state)
            b.reveal()
        run.auctioneer.close_reveals()
        st = read_state(run.ledger)
        drawn.add(tuple(audit_draw(st).rounds))
        assert any("nonce" in b.reason or "bidder 7" in b.reason for b in public_checks(st))
    assert drawn == {tuple(draw.rounds)}
    run.close()


# 2. Re-keying ----------------------------------------------------------------------------------------

def test_a_log_rebuilt_under_new_keys_is_another_log(tmp_path):
    honest_passes(tmp_path, rounds=4, audits=1)
    run = make_run(tmp_path, rounds=4, audits=1)
    run.play()
    kept = [b.view.kept for b in run.bidders]
    # The host rebuilds the whole log under new keys (its own and new "bidder" keys it controls),
    # plays honestly there, and presents that log for the audit.
    fake = make_run(tmp_path, rounds=4, audits=1, name="fake.db")
    fake.play()
    assert fake.audit().valid  # on its own, the rebuilt log is flawless
    fake.close()
    run.close()
    shutil.copy(tmp_path / "fake.db", tmp_path / "a.db")
    with Ledger.open(tmp_path / "a.db", writer=False) as ledger:
        for cp in kept:
            with pytest.raises(LogIdentityError, match="not the log .* of the checkpoint kept"):
                check_log_extends(ledger, cp)
        # an honest bidder's key is not in the rebuilt announcement: it never registered there
        keys = private_dir(tmp_path / "a.db")
        from zkauction.protocol.log import SigningKey

        b0 = Bidder(0, SigningKey.load(keys / "bidder_0.pem"), ledger)
        with pytest.raises(ProtocolError, match="does not name this bidder's key"):
            b0.register()
    res = subprocess.run([sys.executable, "-m", "zkauction.cli", "log", "verify", "--db", str(tmp_path / "a.db"),
                          "--since", str(keys / "bidder_0.checkpoint.json")], capture_output=True, text=True)
    assert res.returncode == 1 and "FAIL consistency" in res.stdout and "not the log" in res.stdout, res.stdout


# 3. Chosen participants --------------------------------------------------------------------------------

def test_no_round_without_every_bidders_registration(tmp_path):
    honest_passes(tmp_path, rounds=3, audits=1)
    fn = net_outcome_function(small_net())
    # A bidder registers only for the auction it was told about (here: a circuit hash).
    run = LocalRun.create(tmp_path / "c.db", fn, setting=SETTING, participation=PARTICIPATION, input_scale=12,
                          auction={"name": "x", "manifest_sha256": "aa" * 32}, rounds=3, audits=1, mode="reveal")
    run.close()
    cfg = json.loads((private_dir(tmp_path / "c.db") / "run.json").read_text())
    assert cfg["expected"]["manifest_sha256"] == "aa" * 32 and cfg["expected"]["rounds"] == 3
    # The host announces with a bidder key of its choosing and nobody's consent: before every bidder
    # signs the announcement, no round can start, and entries forced in are breaches.
    run = make_run(tmp_path, rounds=3, audits=1, name="d.db")
    led = Ledger.in_memory()
    from zkauction.protocol.auctioneer import Auctioneer

    a = Auctioneer(run.auctioneer.key, led, fn)
    a.announce(n=2, m=2, support=SETTING.support, input_scale=12, auction={"name": "x"}, rounds=3, audits=1,
               penalty=10.0, mode="reveal", bidders=[b.key.public_hex for b in run.bidders])
    with pytest.raises(ProtocolError, match="before every bidder has registered"):
        a.close_commitments(1)
    led.append(COMMITMENTS_CLOSED, {"commitments": [None, None]}, a.key, round=1)
    led.append("reveal_missing", {"bidder": 1}, a.key)  # a "bidder missing" verdict at any time
    st = read_state(led)
    reasons = [b.reason for b in public_checks(st)]
    assert any("before every bidder registered" in r for r in reasons)
    assert any("unknown entry kind 'reveal_missing'" in r or "before every bidder registered" in r for r in reasons[1:])
    with pytest.raises(ProtocolError, match="the announcement's manifest_sha256"):
        Bidder(0, run.bidders[0].key, led, expected={"manifest_sha256": "bb" * 32}).register()
    run.close()


# 4. Informed shill --------------------------------------------------------------------------------------

def test_informed_shill_cannot_commit_after_an_opening(tmp_path):
    honest_passes(tmp_path, rounds=3, audits=1)
    run = make_run(tmp_path, rounds=3, audits=1)
    honest, shill = run.bidders[0], run.bidders[1]  # the host controls bidder 1's key
    honest.commit(1, [0.5, 0.75])
    before_close = snapshot(run, tmp_path / "before_close.db")
    # (a) it asks for the honest opening before closing the commitments: refused
    with pytest.raises(ProtocolError, match="not closed in a checkpoint bidder 0 holds"):
        honest.open(1)
    # (b) it closes, reads the opening, then logs the shill's commitment tuned to it: a breach
    run.auctioneer.close_commitments(1)
    signed = honest.open(1)
    run.auctioneer.receive_opening(1, 0, signed)
    opening = signed.opening
    with pytest.raises(ProtocolError, match="the commitments are closed"):  # an honest client would not
        shill.commit(1, [b - 2**-12 for b in opening.bids])
    from zkauction.zk.commitments import make_commitment

    late = make_commitment([b - 2**-12 for b in opening.bids], 12, salt=shill.salt(1))[0]
    run.ledger.append(BID_COMMITMENT, {"bidder": 1, "commitment": late}, shill.key, round=1)  # the host's shill signs it
    st = read_state(run.ledger)
    assert 1 not in st.commitments[1]  # not counted: the checkpointed close is what counts
    assert any("logged after the round's commitments were closed" in n for n in st.notes)
    # and an outcome that uses it is a breach
    out = run.auctioneer.outcome([list(opening.bids), [b - 2**-12 for b in opening.bids]], [opening.salt, shill.salt(1)])
    close = st.closes[1].data["commitments"]
    run.ledger.append(OUTCOME, {"participants": [1, 1], "commitments": [close[0], late], **out.to_dict()},
                      run.auctioneer.key, round=1)
    assert any("bidder 1 must be absent" in str(b) for b in check_round(read_state(run.ledger), 1))
    # (c) it rolls back to before the close, has the shill commit there and closes again: the
    #     honest bidder's kept checkpoint covers the first close, so this history is a fork to it
    run = restore(run, before_close)
    run.bidders[1].commit(1, [b - 2**-12 for b in opening.bids])
    run.auctioneer.close_commitments(1)
    with pytest.raises(ForkError):
        run.bidders[0].sync()
    run.close()


# 5. Exclusion at will -------------------------------------------------------------------------------------

def test_exclusion_at_will_is_a_breach(tmp_path):
    honest_passes(tmp_path, rounds=4, audits=1)
    from zkauction.protocol.local import play_round
    from zkauction.zk.commitments import CommitmentError

    # (a) a valid opening rejected with a listed reason, its own signed opening as "evidence"
    run = make_run(tmp_path, rounds=4, audits=1)
    real = run.auctioneer.receive_opening

    def exclude(round, bidder, signed):
        if round == 2 and bidder == 0:
            evidence = {"bids": list(signed.opening.bids), "salt": signed.opening.salt, "signature": signed.signature}
            run.ledger.append(OPENING_REJECTED, {"bidder": 0, "reason": "opening_mismatch", "evidence": evidence},
                              run.auctioneer.key, round=2)
            raise CommitmentError("rejected")
        return real(round, bidder, signed)

    run.auctioneer.receive_opening = exclude
    play_round(run.auctioneer, run.bidders, 1, run.bids_of_round(1))
    play_round(run.auctioneer, run.bidders, 2, [[0.75, 0.5], [0.25, 0.5]])
    run.play()
    report = run.audit()
    assert report.status == "invalid" and report.penalty_due > 0
    assert any("round 2: bidder 0's rejection: opening_mismatch, but the evidence is bidder 0's valid opening: a false rejection"
               in str(b) for b in report.breaches), report.to_dict()
    run.close()

    # (b) "no opening received" although it was: the honest client publishes its opening on the log;
    #     an outcome without it (or without the bidder's abstention) is a breach
    run = make_run(tmp_path, rounds=4, audits=1, name="b.db")
    play_round(run.auctioneer, run.bidders, 1, run.bids_of_round(1))
    for b in run.bidders:
        b.commit(2, [[0.75, 0.5], [0.25, 0.5]][b.index])
    run.auctioneer.close_commitments(2)
    run.bidders[0].open(2)  # sent; the host drops it
    run.auctioneer.receive_opening(2, 1, run.bidders[1].open(2))
    assert run.auctioneer.reject_missing(2) == [0]
    run.bidders[0].dispute(2)  # the honest client publishes its opening before the outcome
    # the host logs an outcome without bidder 0 all the same
    shill = run.bidders[1]._openings[2]
    out = run.auctioneer.outcome([[0.0, 0.0], list(shill.bids)], ["00" * 32, shill.salt])
    from zkauction.protocol.state import absent_commitment

    close = run.ledger.entries(kind=COMMITMENTS_CLOSED, round=2)[0].data["commitments"]
    run.ledger.append(OUTCOME, {"participants": [0, 1], "commitments": [absent_commitment(2, 12), close[1]], **out.to_dict()},
                      run.auctioneer.key, round=2)
    run.auctioneer.store.put_round(2, {1: shill})
    run.auctioneer.checkpoint()
    run.play()
    report = run.audit()
    assert report.status == "invalid"
    assert any("round 2: the outcome does not use bidder 0's logged commitment" in str(b) for b in report.breaches)
    run.close()
    # and without the bidder's published opening or abstention: the honest auctioneer waits for them
    # until its dispute deadline, then leaves them out and the round is void (nothing sold, so the
    # exclusion never pays and its own clock is enough); an outcome that sells anything is a breach
    run = make_run(tmp_path, rounds=2, audits=1, name="d.db")
    for b in run.bidders:
        b.commit(1, [0.5, 0.5])
    run.auctioneer.close_commitments(1)
    run.auctioneer.receive_opening(1, 1, run.bidders[1].open(1))
    assert run.auctioneer.reject_missing(1) == [0]
    with pytest.raises(ProtocolError, match="the round waits for them"):
        run.auctioneer.close_round(1)  # the honest auctioneer does not exclude on its own word before its deadline
    real_ann = run.auctioneer.announcement
    run.auctioneer.announcement = lambda: dataclasses.replace(real_ann(), exclusion="drop")  # an old announcement
    with pytest.raises(ProtocolError, match="the round waits for them"):
        run.auctioneer.close_round(1, give_up=True)  # under "drop" it never gives up: leaving 0 out would sell
    run.auctioneer.announcement = real_ann
    shill = run.bidders[1]._openings[1]
    alone = run.auctioneer.outcome([[0.0, 0.0], list(shill.bids)], ["00" * 32, shill.salt])
    assert sum(alone.payment) > 0  # what going on without bidder 0 would have sold
    out = run.auctioneer.close_round(1, give_up=True)
    assert out.data["participants"] == [0, 0] and out.data["payment"] == [0.0, 0.0]
    assert check_round(read_state(run.ledger), 1) == [] and run.bidders[1].check_outcome(1) == "void"
    run.close()
    run = make_run(tmp_path, rounds=2, audits=1, name="e.db")
    for b in run.bidders:
        b.commit(1, [0.5, 0.5])
    close = run.auctioneer.close_commitments(1).data["commitments"]
    run.auctioneer.receive_opening(1, 1, run.bidders[1].open(1))
    run.auctioneer.reject_missing(1)
    run.ledger.append(OUTCOME, {"participants": [0, 1], "commitments": [absent_commitment(2, 12), close[1]], **alone.to_dict()},
                      run.auctioneer.key, round=1)
    assert [str(b.reason) for b in check_round(read_state(run.ledger), 1)] == [
        "round 1: bidder 1 must be absent from the outcome (the round is void: bidder 0's commitment was closed in it and left out)"]
    # under an announcement from before void rounds ("drop"), the exclusion itself is the breach
    st = read_state(run.ledger)
    st.announcement = dataclasses.replace(st.announcement, exclusion="drop")
    assert any("bidder 0 was rejected for no_opening, but neither published a valid opening nor abstained" in str(b)
               for b in check_round(st, 1))
    run.close()

    # (c) a rejection without evidence, or with free text as its reason, is a breach by itself
    run = make_run(tmp_path, rounds=2, audits=1, name="c.db")
    run.bidders[0].commit(1, [0.5, 0.5])
    run.bidders[1].commit(1, [0.5, 0.5])
    run.auctioneer.close_commitments(1)
    run.ledger.append(OPENING_REJECTED, {"bidder": 0, "reason": "outside_support"}, run.auctioneer.key, round=1)
    run.ledger.append(OPENING_REJECTED, {"bidder": 1, "reason": "we did not like it"}, run.auctioneer.key, round=1)
    reasons = [b.reason for b in read_state(run.ledger).breaches]
    assert any("(outside_support) carries no evidence" in r for r in reasons)
    assert any("'we did not like it', not one of" in r for r in reasons)
    run.close()


# 6. Unaudited lies the log already shows ------------------------------------------------------------------

def test_every_round_is_checked_not_only_the_audited_ones(tmp_path):
    honest_passes(tmp_path, rounds=6, audits=1)
    from zkauction.zk.commitments import make_commitment

    # (a) an outcome naming a commitment nobody logged, in whichever round: the public check of that
    #     round fails, audited or not
    run = make_run(tmp_path, rounds=6, audits=1)
    honest = run.auctioneer.outcome
    fake_com = make_commitment([0.9, 0.9], 12)[0]
    real_append = run.ledger.append_many

    def substitute(items, **kw):
        out = []
        for kind, payload, key, rnd, unique in items:
            if kind == OUTCOME and rnd == 4:
                payload = dict(payload, commitments=[fake_com] + payload["commitments"][1:],
                               participants=[1] + payload["participants"][1:])
            out.append((kind, payload, key, rnd, unique))
        return real_append(out, **kw)

    run.ledger.append_many = substitute
    run.play()
    draw = run.reveal()
    try:
        run.answer_audit(draw.rounds)
    except ProtocolError:
        pass  # if round 4 is drawn, the auctioneer cannot even open what it claimed
    report = run.verdict()
    assert report.status == "invalid", report.to_dict()
    assert any("round 4: the outcome does not use bidder 0's logged commitment" in str(b)
               or "round 4: bidder 0 must be absent" in str(b) for b in report.breaches)
    assert 4 not in report.rounds or True  # whatever the draw: the breach alone carries the penalty
    run.close()
    del honest
    # (b) a round with two outcomes
    run = make_run(tmp_path, rounds=6, audits=1, name="b.db")
    run.play()
    second = dict(run.ledger.entries(kind=OUTCOME, round=3)[0].data, payment=[0.0, 0.0])
    run.ledger.append(OUTCOME, second, run.auctioneer.key, round=3)  # no uniqueness key: the host's own doing
    run.auctioneer.checkpoint()
    report = run.audit()
    assert report.status == "invalid" and any("a second outcome for round 3" in str(b) for b in report.breaches)
    run.close()


# 7. Truncation and forks ----------------------------------------------------------------------------------

def test_truncation_and_forks_are_named(tmp_path):
    honest_passes(tmp_path, rounds=6, audits=1)
    run = make_run(tmp_path, rounds=6, audits=1)
    run.play(on_round=lambda r: r == 3 and snapshot(run, tmp_path / "at3.db"))
    kept = run.bidders[0].view.kept
    # truncation: the tail is cut
    run = restore(run, tmp_path / "at3.db")
    with pytest.raises(RollbackError):
        run.bidders[0].sync()
    res = subprocess.run([sys.executable, "-m", "zkauction.cli", "log", "verify", "--db", str(run.db), "--since",
                          str(private_dir(run.db) / "bidder_0.checkpoint.json")], capture_output=True, text=True)
    assert res.returncode == 1 and "rolled back or truncated" in res.stdout
    # fork: from round 4 on, the host shows this bidder another history than the one it checkpointed
    run.close()
    fork = LocalRun(run.db, net_outcome_function(small_net()))
    fork.seed = 99  # other bids from round 4 on
    for b in fork.bidders:  # played with bidders that kept no state (the host's shills, say)
        b._view_path, b._view = None, None
        b.sync()  # (a bidder without any checkpoint of a log it registered in refuses to go on: Bidder.register)
    fork.play()
    with pytest.raises(ForkError, match="not the ones of the checkpoint kept"):
        check_log_extends(fork.ledger, kept)
    fork.close()


# 8. Honest operator never penalised by its own tools ------------------------------------------------------

def test_two_writers_and_a_broken_chain_cannot_hurt_an_honest_operator(tmp_path):
    honest_passes(tmp_path, rounds=4, audits=1)
    run = make_run(tmp_path, rounds=4, audits=1)
    run.play()
    # a second process resuming the same run: refused at once, nothing written
    res = subprocess.run([sys.executable, "-c", f"from zkauction.protocol.log import Ledger; Ledger.open({str(run.db)!r})"],
                         capture_output=True, text=True)
    assert res.returncode != 0 and "LogLockedError" in res.stderr
    with pytest.raises(LogLockedError, match="another process is writing"):
        Ledger.open(run.db)
    # check-and-append in one transaction: a second outcome for a round is refused by the store
    size = len(run.ledger)
    with pytest.raises(DuplicateEntryError):
        run.ledger.append(OUTCOME, run.ledger.entries(kind=OUTCOME, round=2)[0].data, run.auctioneer.key, round=2,
                          unique="outcome/2")
    assert len(run.ledger) == size and run.ledger.storage.last().seq == size - 1
    run.close()
    # a log whose chain does not verify: no writer opens it, so `audit` writes nothing onto it
    import sqlite3

    db = sqlite3.connect(run.db)
    db.execute("DROP TRIGGER entries_no_update")
    db.execute("UPDATE entries SET payload = '{}' WHERE seq = 5")
    db.commit()
    db.close()
    with pytest.raises(ChainError, match="ledger entry 5"):
        LocalRun(run.db, net_outcome_function(small_net()))
    with Ledger.open(run.db, writer=False) as led:
        assert len(led) == size


# 9. Self-declared SRS safety ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_the_verifier_labels_the_srs_not_the_manifest(tmp_path):
    from zkauction.zk.bundle import verify_bundle
    from zkauction.zk.circuit import Circuit
    from zkauction.zk.commitments import new_salt
    from zkauction.zk.prove import prove_round
    from zkauction.zk.circuit import sha256_file

    c = tmp_path / "circuit"
    shutil.copytree(CIRCUIT, c, ignore=shutil.ignore_patterns("example_proof.json"))
    mf = json.loads((c / "manifest.json").read_text())
    mf["srs"]["insecure"] = False  # the compiler writes whatever it likes here
    (c / "manifest.json").write_text(json.dumps(mf))
    circuit = Circuit.load(c)
    assert not circuit.srs_insecure
    bundle = prove_round(circuit, [[0.5, 0.25], [0.75, 0.5]], [new_salt(), new_salt()], round_id=1)
    res = verify_bundle(bundle, c)
    assert not res.srs.trusted and res.srs.source == "untrusted" and res.srs_insecure
    pin = sha256_file(circuit.check_srs())
    assert verify_bundle(bundle, c, trusted_srs=[pin]).srs.source == "pinned"


# 10. Unbound bundle fields -----------------------------------------------------------------------------------

@pytest.mark.slow
def test_bundle_fields_are_bound_by_the_log_proof(tmp_path):
    from zkauction.protocol.bundle_log import check_log_proof
    from test_protocol import zk_run

    from zkauction.zk.bundle import VerificationError, verify_bundle

    run, circuit = zk_run(tmp_path, rounds=3)
    run.play()
    run.reveal()
    bundle = run.auctioneer.prove(2, circuit)
    binding = check_log_proof(bundle)
    assert binding.round == 2 and binding.checkpoint.size > binding.outcome_seq
    # the round number is bound: edit it and the log proof fails
    with pytest.raises(VerificationError, match="the bundle says round 3, its logged outcome is round 2"):
        check_log_proof(dataclasses.replace(bundle, round_id=3))
    # the outcome and commitments are bound
    lie = Outcome(bundle.outcome.allocation, (bundle.outcome.payment[0] + 0.5,) + bundle.outcome.payment[1:])
    with pytest.raises(VerificationError, match="round 2: the proven outcome is not the published one"):
        check_log_proof(dataclasses.replace(bundle, outcome=lie))
    # a forged checkpoint (signed by another key) is refused
    lp = json.loads(json.dumps(bundle.log))
    from zkauction.protocol.log import SigningKey

    other = SigningKey.generate()
    cp = SignedCheckpoint.sign(other, lp["checkpoint"]["log_id"], lp["checkpoint"]["size"], lp["checkpoint"]["root"])
    lp["checkpoint"] = cp.to_dict()
    with pytest.raises(VerificationError, match="not by the announced auctioneer"):
        check_log_proof(dataclasses.replace(bundle, log=lp))
    # a manifest handed over with the bundle is not trusted: the folder must be the announced circuit
    c = tmp_path / "other"
    shutil.copytree(CIRCUIT, c, ignore=shutil.ignore_patterns("example_proof.json"))
    mf = json.loads((c / "manifest.json").read_text())
    mf["output_scales"] = {k: v + 1 for k, v in mf["output_scales"].items()}
    (c / "manifest.json").write_text(json.dumps(mf))
    with pytest.raises(VerificationError, match="not the announced"):
        verify_bundle(bundle, c, expected_manifest_sha256=binding.announcement.auction["manifest_sha256"])
    # without a log proof the CLI says plainly what it could not check
    unbound = tmp_path / "unbound.json"
    dataclasses.replace(bundle, log=None, round_id=7).save(unbound)
    res = subprocess.run([sys.executable, "-m", "zkauction.cli", "verify", str(unbound), "--circuit", str(CIRCUIT)],
                         capture_output=True, text=True)
    assert res.returncode == 0 and "NOT BOUND" in res.stdout and "(7)" in res.stdout
    res = subprocess.run([sys.executable, "-m", "zkauction.cli", "verify", str(unbound), "--circuit", str(CIRCUIT),
                          "--round", "7"], capture_output=True, text=True)
    assert res.returncode == 2 and "--round needs a bundle with a log proof or --db" in res.stderr
    # with a log proof but no log of one's own, it says what it could not check: the log it belongs to
    bound = tmp_path / "bound.json"
    bundle.save(bound)
    res = subprocess.run([sys.executable, "-m", "zkauction.cli", "verify", str(bound), "--circuit", str(CIRCUIT)],
                         capture_output=True, text=True)
    assert res.returncode == 0 and "valid: round 2 of log" in res.stdout, res.stdout + res.stderr
    assert "NOT CHECKED AGAINST A LOG YOU HOLD" in res.stdout
    assert "the round's other entries (its close, rejections) and the audit: `zkauction audit`" in res.stdout
    assert Auditor(run.ledger, circuit=circuit).audit().status in ("pending", "valid")
    run.close()
