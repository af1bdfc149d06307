"""A twentieth review (README, "A twentieth review"): a helper attacked the rule that only entries a
checkpoint the auctioneer signed vouches for are judged. A host serving an older checkpoint (or a
log cut at it) ended the monitor with "fork" or "rollback" and no verdict, and `log verify` still
called a damaged copy of the honest log invalid. Each test played the attack against the code before
the fix (comments marked "(before") and the defence now."""

from __future__ import annotations

import sqlite3

import pytest
from test_mutation_kills_service import LogServer, local_run, monitor_of  # noqa: F401
from test_review_attacks_11 import split_view
from test_review_attacks_12 import _placed

from zkauction.protocol.audit import Auditor
from zkauction.protocol.log import Ledger, SignedCheckpoint
from zkauction.protocol.state import ProtocolError
from zkauction.service.monitor import MonitorAlert


def _stored_checkpoints(db):
    c = sqlite3.connect(db)
    try:
        return [SignedCheckpoint.from_json(t) for (_, t) in c.execute("SELECT size, checkpoint FROM checkpoints ORDER BY size")]
    finally:
        c.close()


def _verdict_of(mon):
    """Where a monitor's run ends: the alert it raises, letting the announced deadlines pass (by its
    own clock) if it is still waiting (a no-answer it times)."""
    try:
        mon.follow(interval=0.0, timeout=3, retry_for=0.5)
        return None
    except MonitorAlert as e:
        return e
    except ProtocolError:  # still waiting: the announced deadlines pass
        pass
    mon._progress_since -= 10.0**7
    try:
        mon.follow(interval=0.0, timeout=3, retry_for=0.5)
    except MonitorAlert as e:
        return e
    except ProtocolError as e:
        return e
    return None


# ------------------------------------------------------------------------------------------------
# 1. (escape) The README's remedy for the split view, "theirs in a monitor's --state": the cheating
#    host serves its fork with the checkpoint it signed one batch earlier (or the fork cut there).
#    The monitor stops at once with "fork" / "rollback" and no verdict: no penalty. Before
#    e2da98e/5c9200b the fork was compared with the whole served log (invalid); now only the part
#    the served checkpoint vouches for, and that is the host's choice.


@pytest.mark.parametrize("served", ["fork with its previous checkpoint", "fork cut at its previous checkpoint"])
def test_a_monitor_holding_the_other_forks_checkpoint_is_not_dismissed_by_a_stale_checkpoint(tmp_path, served):
    forks, kept, fn, dbs = split_view(tmp_path)
    try:
        assert kept[0].log_id == kept[1].log_id and kept[0].root != kept[1].root  # two signed histories
        # the documented remedy works when the host serves its newest checkpoint (test_review_attacks_11)
        stale = max((c for c in _stored_checkpoints(dbs[0]) if c.size < kept[1].size), key=lambda c: c.size)
        assert forks[0].root(stale.size) == stale.root  # a real checkpoint of fork 0, signed by the auctioneer
        size = None if served.startswith("fork with") else stale.size
        state = tmp_path / "monitor-state"
        state.mkdir(mode=0o700)
        (state / "monitor.checkpoint.json").write_text(kept[1].to_json())  # bidder 1's checkpoint
        mon = monitor_of(LogServer(forks[0], size=size, checkpoint=stale), state=state, outcome=fn)
        alert = _verdict_of(mon)
        verdict = mon.report.verdict
        # (before: MonitorAlert "fork: ..." / "rollback: ...", report.verdict None: no penalty, the monitor is done)
        assert alert is not None and (
            "the auctioneer is silent" in str(alert)
            or (verdict is not None and verdict["status"] == "invalid" and verdict["penalty_due"] > 0)
        ), (str(alert), verdict)
    finally:
        for f in forks:
            f.close()


# ------------------------------------------------------------------------------------------------
# 2. (framing) `zkauction log verify` still replays the chain of the whole file given before applying
#    the attestation rule: a copy of the honest log with one signature damaged (the entry hash, the
#    Merkle leaf, does not cover it), or with junk appended after its last checkpoint, prints
#    "LOG INVALID" (exit 1), while the Auditor on the same copy says "pending: a damaged copy".


@pytest.mark.parametrize("damage", ["a signature inside the checkpointed log", "an entry appended after the checkpoint"])
def test_log_verify_does_not_call_a_damaged_copy_of_the_honest_log_invalid(tmp_path, damage):
    from typer.testing import CliRunner

    from zkauction.cli import app
    from zkauction.protocol.log import entry_hash

    run, fn = local_run(tmp_path / "run", rounds=2)
    try:
        run.play()
        run.answer_audit(run.reveal().rounds)
        run.auctioneer.checkpoint()
        assert Auditor(run.ledger, outcome=fn).audit().status == "valid"
        src = run.db
        copy = tmp_path / "copy.db"
        s, t = sqlite3.connect(src), sqlite3.connect(copy)
        s.backup(t), s.close()
        t.execute("DROP TRIGGER entries_no_update")
        if damage.startswith("a signature"):
            t.execute("UPDATE entries SET signature = ? WHERE seq = 1", ("00" * 64,))
        else:  # anyone holding the file can append a row after the last checkpoint
            (seq, h) = t.execute("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
            junk = entry_hash(seq + 1, None, "note", "{}", h, "11" * 32)
            t.execute("INSERT INTO entries (seq, round, kind, payload, prev_hash, hash, signer, signature) "
                      "VALUES (?, NULL, 'note', '{}', ?, ?, ?, ?)", (seq + 1, h, junk, "11" * 32, "00" * 64))
        t.commit()
        t.close()
        led = Ledger.open(copy, writer=False)
        try:
            assert led.root(led.latest_checkpoint().size) == led.latest_checkpoint().root  # the checkpoint still vouches
            assert Auditor(led, outcome=fn).audit().status in ("pending", "valid")  # the Auditor: no evidence
        finally:
            led.close()
        r = CliRunner().invoke(app, ["log", "verify", "--db", str(copy)])
        # (before: "FAIL chain: ledger entry 1: signature by ... does not verify" / "entry N: ...",
        # "LOG INVALID", exit 1: the honest auctioneer's log called invalid from a copy anyone damaged)
        assert "LOG INVALID" not in r.output, r.output
    finally:
        run.close()


# ------------------------------------------------------------------------------------------------
# 3. (escape) A live monitor is dismissed by one stale checkpoint: the host answers one request for
#    its checkpoint with the one it signed a batch earlier (real, signed, consistent with the
#    monitor's replica). The monitor stops at once with "rollback", report.verdict None: no penalty,
#    whatever the host does next (e.g. withholds the proof of a drawn round it lied in). The
#    nineteenth review's commit says rolled-back checkpoints are no answer to the monitor (timed).


def test_a_live_monitor_is_not_dismissed_by_one_stale_checkpoint(tmp_path):
    run, fn = local_run(tmp_path, rounds=3)
    try:
        run.play()
        cps = _stored_checkpoints(run.db)
        mon = monitor_of(LogServer(run.ledger), outcome=fn)
        assert mon.poll() is False and mon._view.kept.size == len(run.ledger)
        mon.remote = LogServer(run.ledger, checkpoint=cps[-2]).remote()  # the host's previous checkpoint, served
        alert = _verdict_of(mon)
        verdict = mon.report.verdict
        # (before: MonitorAlert "rollback: the server's newest checkpoint covers 11 entries, this monitor holds
        # one of 12", report.verdict None)
        assert alert is not None and (
            "the auctioneer is silent" in str(alert)
            or (verdict is not None and verdict["status"] == "invalid" and verdict["penalty_due"] > 0)
        ), (str(alert), verdict)
    finally:
        run.close()
