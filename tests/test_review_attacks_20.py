"""A twenty-sixth review: tests/fuzz19.py's tamper operations against the read paths that read a log
by index lookups rather than a full replay (`log ls`, `log show --round R`, `show round R`, `log
checkpoint`, check_bundle_against_ledger, state.round_state, the web view's summary). No crash was
found; two framings were, each shrunk to a minimal deterministic test that asserts the DEFENCE (it
fails while the hole is open; "(now:" says what happens without it).

The honest log: a finished reveal-mode run (2 rounds, 1 audit, its final checkpoint stored). Statements
are signed without their place in the log, so anyone holding the file can append a re-linked copy of
one of them after the last entry (beyond every checkpoint), or delete an entry and re-link the rest:
the full replay (`log verify`, the Auditor) judges only what a checkpoint the auctioneer signed pins,
and says "log verified" / valid, or COPY DAMAGED. The lookup paths judge every row of the round."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zkauction.cli.log import round_summary, verify_log
from zkauction.protocol.audit import Auditor
from zkauction.protocol.log import GENESIS_HASH, Ledger, entry_hash
from zkauction.zk.bundle import VerificationError

COLS = "seq, round, kind, payload, prev_hash, hash, signer, signature"
AUCTION = {"name": "test-net", "manifest_sha256": "aa" * 32, "vk_sha256": "bb" * 32}


@pytest.fixture(scope="module")
def honest(tmp_path_factory):
    """(db, outcome function, {round: bundle built without proving, log proof under the final checkpoint})."""
    from test_protocol import make_run

    from zkauction.protocol.bundle_log import check_bundle_against_ledger, make_log_proof
    from zkauction.protocol.state import read_state
    from zkauction.zk.bundle import ProofBundle

    run = make_run(tmp_path_factory.mktemp("honest20"), rounds=2, audits=1, auction=AUCTION)
    fn = run.auctioneer.outcome
    try:
        run.play()
        run.answer_audit(run.reveal().rounds)
        run.auctioneer.checkpoint()
        assert Auditor(run.ledger, outcome=fn).audit().status == "valid"
        st, cp = read_state(run.ledger), run.ledger.latest_checkpoint()
        assert cp.size == len(run.ledger)
        bundles = {}
        for r in (1, 2):
            b = ProofBundle(proof={}, manifest_sha256="aa" * 32, vk_sha256="bb" * 32, commitments=tuple(st.commitments_of(r)),
                            outcome=st.outcome_of(r), ezkl_version="x", round_id=r, circuit_name="",
                            log=make_log_proof(run.ledger, r, cp))
            assert check_bundle_against_ledger(b, run.ledger, r) == r  # the honest round checks out
            bundles[r] = b
        db = Path(run.db)
    finally:
        run.close()
    return db, fn, bundles


def _copy(src: Path, dest: Path, edit) -> Path:
    shutil.copy(src, dest)
    for suf in ("-wal", "-shm"):
        if Path(str(src) + suf).exists():
            shutil.copy(Path(str(src) + suf), Path(str(dest) + suf))
    c = sqlite3.connect(dest)
    try:
        for (t,) in c.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            c.execute(f"DROP TRIGGER {t}")
        edit(c)
        c.commit()
    finally:
        c.close()
    return dest


def _append_copy_of(kind: str, r: int):
    """A re-linked copy of round ``r``'s ``kind`` entry (the auctioneer's statement, its signature intact)
    appended after the last entry: beyond every checkpoint, which all still pin the honest entries."""
    def edit(c):
        row = list(c.execute(f"SELECT {COLS} FROM entries WHERE kind = ? AND round = ? ORDER BY seq", (kind, r)).fetchone())
        last = c.execute("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
        row[0], row[4] = last[0] + 1, last[1]
        row[5] = entry_hash(row[0], row[1], row[2], row[3], row[4], row[6])
        c.execute(f"INSERT INTO entries ({COLS}) VALUES (?,?,?,?,?,?,?,?)", row)
    return edit


def _full_replay_clears(led, fn) -> None:
    rep = verify_log(led)
    assert rep["ok"] and rep.get("not_vouched_for") == 1, rep  # "log verified": the pinned entries hold no breach
    assert Auditor(led, outcome=fn).audit().status == "valid"


# ------------------------------------------------------------------------------------------------
# 1. (framing) `zkauction verify proof.json --db COPY`: check_bundle_against_ledger checks that the log
#    extends the bundle's checkpoint (it does: the copy is appended after it), then reads the round with
#    state.round_state(ledger, r) over EVERY row of the round, the unpinned appended copy included
#    (bundle_log.py:167), and raises the first of st.breaches (bundle_log.py:181-183): "ledger check
#    failed: ledger entry 13: a second outcome for round R" -- a breach of the rules by the auctioneer
#    (equivocation), printed as INVALID, where `log verify` of the same copy says "log verified" and the
#    Auditor valid. The same with a copy of the round's commitments_closed ("a second close").


@pytest.mark.parametrize("kind", ["outcome", "commitments_closed"])
def test_a_copy_of_the_rounds_statement_after_the_checkpoint_does_not_fail_the_honest_bundle(tmp_path, honest, kind):
    from zkauction.protocol.bundle_log import check_bundle_against_ledger

    db, fn, bundles = honest
    copy = _copy(db, tmp_path / "appended.db", _append_copy_of(kind, 2))
    with Ledger.open(copy, writer=False) as led:
        _full_replay_clears(led, fn)
        for b in (bundles[2], type(bundles[2])(**{**bundles[2].__dict__, "log": None})):
            try:
                got = check_bundle_against_ledger(b, led, 2)
            except VerificationError as e:
                # (now: "ledger check failed: ledger entry 13: a second outcome for round 2" / "a second close of
                #  round 2's commitments": a breach named on an honest log, from an entry no checkpoint pins)
                assert "a second" not in str(e), f"the honest round's bundle failed on an unpinned copy: {e}"
            else:
                assert got == 2


# ------------------------------------------------------------------------------------------------
# 2. (framing) `zkauction log show --round R` / `show round R` (cli/log.py round_summary, line 298:
#    round_state over every row of the round, then st.breaches + check_round) on the same copy lists
#    "public checks: ledger entry 13: a second outcome for round 2", while `log verify` of that file says
#    "log verified". round_summary knows no checkpoint: it judges what nothing pins.


def test_log_show_does_not_list_a_breach_for_a_copy_appended_after_the_checkpoint(tmp_path, honest):
    from zkauction.cli import app

    db, fn, _ = honest
    copy = _copy(db, tmp_path / "appended.db", _append_copy_of("outcome", 2))
    with Ledger.open(copy, writer=False) as led:
        _full_replay_clears(led, fn)
        # (now: ['ledger entry 13: a second outcome for round 2'])
        assert round_summary(led, 2)["public_checks"] == []
    r = CliRunner().invoke(app, ["log", "show", "--db", str(copy), "--round", "2"])
    assert r.exception is None or isinstance(r.exception, SystemExit)
    # (now: "public checks: ledger entry 13: a second outcome for round 2")
    assert "second outcome" not in r.output, r.output


# ------------------------------------------------------------------------------------------------
# 3. (framing) The same path on a copy with one entry deleted and the rest re-linked (fuzz19
#    op_delete_row; the review's fuzzer, seed 2 case 74, on a 3-round log): the reveal phase's close
#    deleted, `log show --round 1` (the audited round) says "ledger entry 11: openings for round 1 before
#    the reveal phase closed" (the audit answer now precedes any close). No checkpoint the auctioneer signed pins that copy: `log verify`
#    says COPY DAMAGED ("not evidence against it"), the Auditor pending; `log show` calls it a breach.


def _delete_and_relink(kind: str):
    def edit(c):
        rows = [list(x) for x in c.execute(f"SELECT {COLS} FROM entries ORDER BY seq")]
        s = next(i for i, x in enumerate(rows) if x[2] == kind)
        del rows[s]
        prev = rows[s - 1][5] if s else GENESIS_HASH
        for i in range(s, len(rows)):
            x = rows[i]
            x[0], x[4] = i, prev
            x[5] = prev = entry_hash(i, x[1], x[2], x[3], prev, x[6])
        c.execute("DELETE FROM entries")
        c.executemany(f"INSERT INTO entries ({COLS}) VALUES (?,?,?,?,?,?,?,?)", rows)
    return edit


def test_log_show_does_not_list_a_breach_for_a_re_placed_copy_nothing_pins(tmp_path, honest):
    db, fn, _ = honest
    copy = _copy(db, tmp_path / "deleted.db", _delete_and_relink("reveals_closed"))
    with Ledger.open(copy, writer=False) as led:
        rep = verify_log(led)
        assert not rep["ok"] and rep.get("damaged"), rep  # COPY DAMAGED: evidence of nothing
        assert Auditor(led, outcome=fn).audit().status != "invalid"
        shown = {r: round_summary(led, r)["public_checks"] for r in (1, 2)}
    # (now: {1: ['ledger entry 11: openings for round 1 before the reveal phase closed'], 2: []})
    assert all(not checks for checks in shown.values()), shown
