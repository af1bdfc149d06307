"""A twenty-second review: the cheating auctioneer and the malicious bidder or third party against the
twenty-first review's defences (log verify's pinned prefix, COPY DAMAGED, the third party's
outcome_sha256, the auctioneer's fields). Each test plays an attack and asserts the DEFENCE: it fails
while the hole is open (the comment marked "(now:" says what happens without the defence)."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from test_protocol import make_run
from test_review_attacks_14 import _overcharge

from zkauction.cli.log import verify_log
from zkauction.protocol.audit import Auditor
from zkauction.protocol.log import Ledger, SignedCheckpoint
from zkauction.protocol.state import OUTCOME, ProtocolError


# ------------------------------------------------------------------------------------------------
# The breach every test of the cheating host hides: round 3 overcharges (a public-check breach), the
# bidder that saw it stopped and pinned the checkpoint covering it (KEPT, signed by the auctioneer).


@pytest.fixture(scope="module")
def caught(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("caught")
    run = make_run(tmp, rounds=4, audits=1)
    run.auctioneer.outcome = _overcharge(run.auctioneer.outcome, 3)
    with pytest.raises(ProtocolError):
        run.play()
    db, d = Path(run.db), run.dir
    run.close()
    kept_path = max((d / f"bidder_{i}.checkpoint.json" for i in range(2)), key=lambda p: SignedCheckpoint.load(p).size)
    kept = SignedCheckpoint.load(kept_path)
    with Ledger.open(db, writer=False) as led:
        bad = [e for e in led.entries(kind=OUTCOME) if e.round == 3][0].seq
        assert bad < kept.size <= len(led)
        assert Auditor(led, checkpoints=[kept]).audit().status == "invalid"  # the breach, as anyone sees it
        assert not verify_log(led, since=kept)["ok"]
    return db, kept, kept_path, bad


def _doctored(src: Path, dest: Path, *sql: str | tuple) -> Path:
    """The host's (or any holder's) copy of the database with the triggers dropped and ``sql`` run."""
    shutil.copy(src, dest)
    c = sqlite3.connect(dest)
    try:
        for (t,) in c.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            c.execute(f"DROP TRIGGER {t}")
        for s in sql:
            c.execute(*(s if isinstance(s, tuple) else (s,)))
        c.commit()
    finally:
        c.close()
    return dest


def _junk_tail(db: Path) -> tuple:
    """An extra row after the last entry whose stored hash is not its content's (beyond every checkpoint)."""
    c = sqlite3.connect(db)
    try:
        row = list(c.execute("SELECT seq, round, kind, payload, prev_hash, hash, signer, signature FROM entries "
                             "ORDER BY seq DESC LIMIT 1").fetchone())
    finally:
        c.close()
    row[0], row[4], row[5] = row[0] + 1, row[5], "ab" * 32
    return ("INSERT INTO entries (seq, round, kind, payload, prev_hash, hash, signer, signature) VALUES (?,?,?,?,?,?,?,?)", row)


def _breach_named(rep) -> bool:
    return not rep["ok"] and not rep.get("damaged") and any("round 3" in b for b in rep.get("breaches", []))


# ------------------------------------------------------------------------------------------------
# 1. (cheating host) One junk entry appended after every checkpoint turns the breach KEPT pins into
#    "COPY DAMAGED". verify_log step 1 returns on any chain failure that no checkpoint pins BEFORE
#    judging the pinned prefix (cli/log.py verify_log, "except ChainError" branch), although the
#    README says a damaged copy is named "after the pinned prefix is judged". The Auditor, given the
#    same file and KEPT, judges the pinned prefix (vouched_prefix) and says invalid.


def test_log_verify_since_judges_the_pinned_prefix_before_calling_a_damaged_tail_a_damaged_copy(tmp_path, caught):
    db, kept, kept_path, _ = caught
    copy = _doctored(db, tmp_path / "tail.db", _junk_tail(db))
    with Ledger.open(copy, writer=False) as led:
        assert Auditor(led, checkpoints=[kept]).audit().status == "invalid"  # (the Auditor: round 3 named)
        rep = verify_log(led, since=kept)
    # (now: ok False, damaged True, "chain: ledger entry 12: hash mismatch ... (a damaged copy ...)": the
    #  round-3 overcharge that KEPT, signed by the auctioneer, pins is never judged)
    assert _breach_named(rep), rep
    res = subprocess.run([sys.executable, "-m", "zkauction.cli", "log", "verify", "--db", str(copy), "--since", str(kept_path)],
                         capture_output=True, text=True, timeout=120)
    assert "LOG INVALID" in res.stdout and "round 3" in res.stdout, res.stdout + res.stderr


# ------------------------------------------------------------------------------------------------
# 2. (cheating host) The same with one signature: the entry hash (the Merkle leaf) does not cover the
#    signature, so the host overwrites the signature of any entry (here a bidder's registration, entry
#    1) without moving a root. entries.pinned_failure calls every signature failure unpinned, so
#    `log verify --since KEPT` says COPY DAMAGED and the Auditor "pending: a damaged copy" -- even with
#    overdue=True (audit.py Auditor._audit: the ChainError branch ignores `overdue`). A host that
#    serves only this file is never silent and never invalid: the penalty escapes for ever, while
#    round 3's outcome (content, hash, signature intact) is pinned by the auctioneer's own checkpoint.


@pytest.mark.parametrize("who", ["log verify", "auditor, overdue"])
def test_a_host_that_spoils_one_signature_does_not_escape_the_breach_its_checkpoint_pins(tmp_path, caught, who):
    db, kept, _, bad = caught
    copy = _doctored(db, tmp_path / "sig.db", ("UPDATE entries SET signature = ? WHERE seq = 1", ("00" * 64,)))
    with Ledger.open(copy, writer=False) as led:
        assert led.root(kept.size) == kept.root  # every root the auctioneer signed still holds
        if who == "log verify":
            # (now: "COPY DAMAGED: chain: ledger entry 1: signature ... does not verify", round 3 never judged)
            assert _breach_named(verify_log(led, since=kept))
        else:
            # (now: "pending: the log given is a damaged copy", overdue or not: never silent, never invalid)
            assert Auditor(led, checkpoints=[kept]).audit(overdue=True).status == "invalid"


# ------------------------------------------------------------------------------------------------
# 3. (cheating host / crash) One unreadable row in the host's checkpoints table. Ledger.latest_checkpoint
#    returns the row with the largest `size` COLUMN (storage.py: ORDER BY size DESC) and parses it:
#    text that is not a checkpoint raises CheckpointError out of verify_log and Auditor.audit (neither
#    catches it). `log verify --since KEPT` prints "error: checkpoint is not valid JSON" (no verdict),
#    the Auditor raises: the breach KEPT pins is never named. (Deleting the rows does not help the host
#    since the twenty-first review; adding one does.)


@pytest.mark.parametrize("text", ["garbage", '{"a": 1}'], ids=["not JSON", "not a checkpoint"])
def test_an_unreadable_checkpoint_row_does_not_hide_the_breach_the_callers_checkpoint_pins(tmp_path, caught, text):
    db, kept, kept_path, _ = caught
    copy = _doctored(db, tmp_path / "cp.db", ("INSERT INTO checkpoints VALUES (?, ?)", (10**9, text)))
    with Ledger.open(copy, writer=False) as led:
        # (now: CheckpointError("checkpoint is not valid JSON ...") from both)
        assert Auditor(led, checkpoints=[kept]).audit().status == "invalid"
        assert _breach_named(verify_log(led, since=kept))
    res = subprocess.run([sys.executable, "-m", "zkauction.cli", "log", "verify", "--db", str(copy), "--since", str(kept_path)],
                         capture_output=True, text=True, timeout=120)
    assert "LOG INVALID" in res.stdout and "round 3" in res.stdout, res.stdout + res.stderr


# ------------------------------------------------------------------------------------------------
# 4. (framing) A copy of the honest log with its checkpoint rows deleted (or the table dropped):
#    `log verify` prints "LOG INVALID: checkpoint: the log has no signed checkpoint" (cli/log.py
#    verify_log: `if cp is None and since is None: return failed(...)`, no "damaged"), exit 1, where
#    the Auditor says pending ("no checkpoint the auctioneer signed vouches for the log given") and a
#    copy short of or off its checkpoints is COPY DAMAGED. Anyone holding the file can do it.


@pytest.fixture(scope="module")
def honest(tmp_path_factory):
    from test_review_attacks_15 import finished_honest_run

    return finished_honest_run(tmp_path_factory.mktemp("honest"))


@pytest.mark.parametrize("sql", ["DELETE FROM checkpoints", "DROP TABLE checkpoints"])
def test_log_verify_does_not_call_a_copy_without_checkpoints_of_the_honest_log_invalid(tmp_path, honest, sql):
    db, _, fn, _ = honest
    copy = _doctored(db, tmp_path / "nocp.db", sql)
    with Ledger.open(copy, writer=False) as led:
        assert Auditor(led, outcome=fn).audit().status == "pending"  # the Auditor: no evidence either way
    res = subprocess.run([sys.executable, "-m", "zkauction.cli", "log", "verify", "--db", str(copy)],
                         capture_output=True, text=True, timeout=120)
    # (now: "LOG INVALID: checkpoint: the log has no signed checkpoint", exit 1)
    assert "LOG INVALID" not in res.stdout, res.stdout + res.stderr


# ------------------------------------------------------------------------------------------------
# 5. (consistency) The log's own stored checkpoint over another history of the pinned prefix: the
#    auctioneer's equivocation. `log verify --since KEPT` names it (the penalty due); the Auditor
#    given the same file and KEPT checks only the checkpoints passed in (audit.py Auditor._audit:
#    `for cp in self.checkpoints`, never `own`) and says valid.


def test_the_auditor_and_log_verify_agree_on_an_equivocating_stored_checkpoint(tmp_path, honest):
    db, real, fn, akey = honest
    other = SignedCheckpoint.sign(akey, real.log_id, 5, "ab" * 32)  # the auctioneer signed another first 5 entries
    copy = _doctored(db, tmp_path / "eq.db", ("INSERT INTO checkpoints VALUES (?, ?)", (real.size + 1, other.to_json())))
    with Ledger.open(copy, writer=False) as led:
        assert led.latest_checkpoint() == other
        rep = verify_log(led, since=real)
        assert not rep["ok"] and rep.get("penalty_due"), rep  # log verify: LOG INVALID, the penalty due
        # (now: "valid": the equivocation in the stored checkpoint is never compared)
        assert Auditor(led, outcome=fn, checkpoints=[real]).audit().status == "invalid"


# ------------------------------------------------------------------------------------------------
# 6. (privacy, around the twenty-first review's AUCTIONEER_FIELDS) `proof` entries are the auctioneer's
#    too, but not in AUCTIONEER_FIELDS, and the reader takes them in every mode for any round once its
#    outcome is logged ("a proof reveals nothing"), checking nothing of a round the audit did not draw
#    (state.py _Reader.proof; audit.py checks proofs of audited rounds in zk mode only). So every
#    round's bids and salts in a `proof` entry (ttp mode, where no bid is ever published): valid.


def test_bids_published_in_proof_entries_are_a_breach(tmp_path):
    from zkauction.protocol.state import PROOF, read_state

    run = make_run(tmp_path, mode="ttp", rounds=3, audits=1)
    run.play()
    key = run.auctioneer.key
    for r in (1, 2, 3):  # after each outcome (the reader's only condition)
        bids, salts = run.auctioneer.round_inputs(r)
        run.ledger.append(PROOF, {"bids": [list(b) for b in bids], "salts": list(salts)}, key, round=r, checkpoint_key=key)
    report = run.audit()
    st = read_state(run.ledger)
    assert any(any(any(x) for x in e.data["bids"]) for e in run.ledger.entries(kind=PROOF))  # the bids, on the signed log
    # (now: "valid", no breach: `openings` with the same content would be the auctioneer's breach)
    assert report.status == "invalid" and st.breaches, report.to_dict()
    run.close()


# ------------------------------------------------------------------------------------------------
# 7. (left, inherent) A shill's own entries can carry the honest bids: not only in an extra field, but
#    in the values the protocol gives every bidder to choose freely (its commitment, any 254-bit field
#    element nobody can tell from a real one; its audit seed), so no field rule closes that channel. The
#    auctioneer sees every opening and can leak them off the log as well (README, the twenty-second review).


# ------------------------------------------------------------------------------------------------
# 8. (honest auctioneer blamed) A ttp-mode log written before the twenty-first review (the same protocol
#    format, zkauction-protocol/3): its third party's verdicts carry no outcome_sha256. The Auditor now
#    requires one (audit.py Auditor._check_ttp) and calls the honest log invalid, the penalty due,
#    where the exclusion rule kept old logs' verdicts "byte for byte as it was" (a missing field reads
#    as the old rule).


def test_an_honest_ttp_log_written_before_outcome_sha256_is_not_invalid(tmp_path):
    from zkauction.protocol.audit import Verdict
    from zkauction.protocol.state import TTP_VERDICT, unique_key

    run = make_run(tmp_path, mode="ttp", rounds=3, audits=1)
    run.play()
    draw = run.reveal()
    for r in draw.rounds:  # the third party's verdict as it was logged before (Verdict.to_dict, nothing more)
        v = Verdict(r, "ttp", True, f"round {r}: outcome verified (ttp)")
        run.ledger.append(TTP_VERDICT, v.to_dict(), run.third_party.key, round=r, unique=unique_key(TTP_VERDICT, r))
    run.auctioneer.checkpoint()
    report = run.auditor().audit()
    # (now: "invalid", penalty due: "the trusted third party's verdict is not on the logged outcome")
    assert report.status != "invalid", report.to_dict()
    run.close()
