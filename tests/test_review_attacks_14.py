"""A twenty-first review: the cheating auctioneer against the protocol core. Each test plays an attack
and asserts the DEFENCE: it fails while the hole is open."""

from __future__ import annotations

import sqlite3

import pytest
from test_protocol import make_run

from zkauction.protocol.audit import Auditor
from zkauction.protocol.log import Ledger
from zkauction.protocol.state import ProtocolError
from zkauction.zk.circuit import Outcome


def _overcharge(fn, round_of_lie):
    """The announced outcome, except in the chosen round: every present bidder pays 0.75 more than
    its allocation is worth at the top of the support (a public-check breach anyone sees)."""
    calls = {"n": 0}

    def f(bids, salts):
        out = fn(bids, salts)
        calls["n"] += 1
        if calls["n"] != round_of_lie:
            return out
        pay = tuple((sum(out.allocation[i]) + 0.75) if any(bids[i]) else 0.0 for i in range(len(bids)))
        return Outcome(out.allocation, pay)

    return f


def _drop_checkpoints_above(db, size):
    """The host deletes the checkpoint rows it signed above ``size`` from its own database (no trigger
    guards that table; the entries stay, so nobody's kept checkpoint sees a rollback)."""
    c = sqlite3.connect(db)
    try:
        c.execute("DELETE FROM checkpoints WHERE size > ?", (size,))
        c.commit()
    finally:
        c.close()


# ------------------------------------------------------------------------------------------------
# 1. `log verify --since KEPT` judges only the entries the log's OWN stored checkpoint vouches for,
#    never the (larger, auctioneer-signed, consistent) checkpoint the caller brought. The host drops
#    its newer checkpoint rows: the breach that the caller's checkpoint covers is "not judged", and
#    the verdict is "log verified" (exit 0).


def test_log_verify_since_judges_what_the_callers_checkpoint_vouches_for(tmp_path):
    from zkauction.cli.log import verify_log

    run = make_run(tmp_path, rounds=4, audits=1)
    fn = run.auctioneer.outcome
    run.auctioneer.outcome = _overcharge(fn, 3)  # round 3 (third outcome computed) overcharges
    with pytest.raises(ProtocolError):
        run.play()  # a bidder's own check stops the run: it pins the checkpoint covering the breach first
    db = run.db
    d = run.dir
    run.close()
    from zkauction.protocol.log import SignedCheckpoint

    # the checkpoint the bidder that stopped pinned on its own disk (the newest of the parties')
    kept = max((SignedCheckpoint.load(d / f"bidder_{i}.checkpoint.json") for i in range(2)), key=lambda c: c.size)
    with Ledger.open(db, writer=False) as ledger:
        rep = verify_log(ledger, since=kept)
        assert not rep["ok"], rep  # the breach, as anyone sees it
        from zkauction.protocol.state import OUTCOME
        bad = [e for e in ledger.entries(kind=OUTCOME) if e.round == 3][0]
        assert bad.seq < kept.size
    # the host drops the checkpoint rows that cover round 3's outcome (keeps every entry)
    _drop_checkpoints_above(db, bad.seq)
    with Ledger.open(db, writer=False) as ledger:
        assert ledger.latest_checkpoint().size <= bad.seq < kept.size <= len(ledger)
        # (the Auditor given the same checkpoint judges what it vouches for: invalid)
        assert Auditor(ledger, checkpoints=[kept]).audit().status == "invalid"
        rep = verify_log(ledger, since=kept)
        # (the hole: ok True, "N entries after the checkpoint not judged", though KEPT, signed by the
        #  auctioneer and consistent with the log, vouches for them)
        assert not rep["ok"], rep


def test_log_verify_since_cli_is_not_log_verified_after_the_host_drops_its_newer_checkpoints(tmp_path):
    """The same through the command line: `zkauction log verify --db D --since KEPT` exits 0,
    "log verified", on a log whose round 3 overcharges inside what KEPT vouches for."""
    import subprocess
    import sys

    from zkauction.protocol.log import SignedCheckpoint
    from zkauction.protocol.state import OUTCOME

    run = make_run(tmp_path, rounds=4, audits=1)
    run.auctioneer.outcome = _overcharge(run.auctioneer.outcome, 3)
    with pytest.raises(ProtocolError):
        run.play()
    db, d = run.db, run.dir
    run.close()
    kept_path = max((d / f"bidder_{i}.checkpoint.json" for i in range(2)), key=lambda p: SignedCheckpoint.load(p).size)
    with Ledger.open(db, writer=False) as ledger:
        bad = [e for e in ledger.entries(kind=OUTCOME) if e.round == 3][0]
    _drop_checkpoints_above(db, bad.seq)
    res = subprocess.run([sys.executable, "-m", "zkauction.cli", "log", "verify", "--db", str(db), "--since", str(kept_path)],
                         capture_output=True, text=True, timeout=120)
    # (the hole: exit 0, "log verified; ... entries after the checkpoint not judged")
    assert res.returncode == 1 and "round 3" in res.stdout, res.stdout + res.stderr


# ------------------------------------------------------------------------------------------------
# 2. ttp mode: the third party's signed verdict names the log and the round, never the outcome it
#    judged. The host shows the third party a copy of its log (same log id) whose round r holds the
#    honest outcome, gets "valid", and places that signed statement in the real log, whose round r
#    overcharges inside every public bound (no winner's own check sees it). Every verifier: valid.


def _lie_in_round(fn, lie_round, share=0.9):
    from test_protocol import within_bids

    lying = within_bids(fn, share)
    calls = {"n": 0}

    def f(bids, salts):
        calls["n"] += 1
        return lying(bids, salts) if calls["n"] == lie_round else fn(bids, salts)

    return f


def test_a_third_party_verdict_is_bound_to_the_outcome_it_judged(tmp_path):
    from zkauction.protocol.auctioneer import TrustedThirdParty
    from zkauction.protocol.log import Statement
    from zkauction.protocol.state import OUTCOME, TTP_VERDICT, first_entry

    run = make_run(tmp_path, mode="ttp", rounds=2, audits=2)  # k = T: every round is audited
    honest_fn = run.auctioneer.outcome
    ann = run.auctioneer.announcement()
    # which round has a winner whose payment the lie moves
    lie = next(r for r in (1, 2) if any(any(b) for b in run.bids_of_round(r)))
    run.auctioneer.outcome = _lie_in_round(honest_fn, lie)
    run.play()  # the winner's own check passes: still individually rational at its bids
    real = run.ledger
    bids, salts = run.auctioneer.round_inputs(lie)
    logged = first_entry(real, OUTCOME, lie, ann.auctioneer)
    honest = honest_fn(bids, salts)
    assert tuple(logged.data["payment"]) != tuple(honest.payment)  # round `lie` overcharges
    draw = run.reveal()
    assert lie in draw.rounds
    # the honest rounds: the third party audits the real log
    for r in draw.rounds:
        if r != lie:
            run.answer_audit([r])
    # the lying round: the third party is served a copy whose round `lie` holds the honest outcome
    fork = Ledger.in_memory()
    fork.replicate(e for e in real.entries() if e.seq < logged.seq)
    fork.append(OUTCOME, {"participants": logged.data["participants"], "commitments": logged.data["commitments"],
                          **honest.to_dict()}, run.auctioneer.key, round=lie)
    ttp = TrustedThirdParty(run.third_party.key, fork, honest_fn)
    assert ttp.audit_round(lie, bids, salts).valid
    v = first_entry(fork, TTP_VERDICT, lie, ann.third_party)
    # the host places the third party's signed statement in the real log
    real.append_signed([Statement(v.kind, v.round, v.payload, v.signer, v.signature)])
    run.auctioneer.checkpoint()
    report = run.auditor().audit()
    # (the hole: "valid", every audited round "verified (ttp)", the overcharge in round `lie` unseen)
    assert report.status == "invalid", report.to_dict()
    run.close()


# ------------------------------------------------------------------------------------------------
# 3. (privacy, around the sixteenth review's fix) "Openings of a round the audit did not draw, or in
#    zk or ttp mode (where no bid is ever published), are the auctioneer's breach" -- but only in an
#    `openings` entry. The same bids and salts in an extra field of the auctioneer's own outcome entry
#    (or of a close, or of a no_opening rejection) are read by nobody and flagged by nobody: every round's
#    bids on the signed log, at no cost, with a `valid` verdict.


def test_bids_published_in_an_extra_field_of_the_outcome_are_a_breach(tmp_path):
    from zkauction.protocol.state import OUTCOME

    class Leaky(Outcome):
        def __init__(self, out, bids, salts):
            object.__setattr__(self, "allocation", out.allocation)
            object.__setattr__(self, "payment", out.payment)
            object.__setattr__(self, "_leak", {"bids": [list(b) for b in bids], "salts": list(salts)})

        def to_dict(self):
            return {**super().to_dict(), "note": self._leak}

    run = make_run(tmp_path, mode="ttp", rounds=3, audits=1)
    fn = run.auctioneer.outcome
    run.auctioneer.outcome = lambda bids, salts: Leaky(fn(bids, salts), bids, salts)
    report = run.audit() if run.play() is not None else None
    leaked = [e.data["note"]["bids"] for e in run.ledger.entries(kind=OUTCOME)]
    assert any(any(any(x) for x in b) for b in leaked)  # the bids of every round, on the signed log
    # (the hole: "valid"; an `openings` entry with the same content would be the auctioneer's breach)
    assert report.status == "invalid", report.to_dict()
    run.close()


@pytest.mark.parametrize("kind", ["commitments_closed", "outcome", "reveals_closed", "openings", "opening_rejected"])
def test_every_entry_the_auctioneer_writes_after_the_bids_has_only_the_protocols_fields(tmp_path, kind):
    """The same channel in each kind the auctioneer writes once bids are in: an honest log re-signed with
    one extra field in one entry of that kind (statements are signed without their place, so every
    other entry is the honest one) is the auctioneer's breach, named; a rejection for a reason that
    takes no evidence carries none, and evidence holds only the bidder's signed opening."""
    from zkauction.protocol.log import Statement
    from zkauction.protocol.state import read_state

    run = make_run(tmp_path, mode="reveal", rounds=3, audits=1)
    run.play()
    run.answer_audit(run.reveal().rounds)
    key = run.auctioneer.key
    entries = run.ledger.entries()
    assert not read_state(run.ledger).breaches
    if kind == "opening_rejected":  # none in an honest run: a no_opening rejection placed after round 1's close
        at = next(e.seq for e in entries if e.kind == "commitments_closed" and e.round == 1)
        extra = [(at, "opening_rejected", 1, {"bidder": 0, "reason": "no_opening", "evidence": {"bids": [[0.5, 0.5]]}})]
        target = None
    else:
        target = next(e.seq for e in entries if e.kind == kind)
        extra = []
    copy = Ledger.in_memory()
    for e in entries:
        if e.seq == 0:
            copy.replicate([e])
        elif e.seq == target:
            copy.append(e.kind, {**e.data, "note": {"bids": [[0.25, 0.5]]}}, key, round=e.round)
        else:
            copy.append_signed([Statement(e.kind, e.round, e.payload, e.signer, e.signature)])
        for at, k, r, payload in extra:
            if at == e.seq:
                copy.append(k, payload, key, round=r)
    breaches = [str(b) for b in read_state(copy).breaches]
    assert any("fields the protocol does not define" in b and ("note" in b or "evidence" in b) for b in breaches), breaches
    run.close()


# ------------------------------------------------------------------------------------------------
# 4. (escape by crash) The reader took any finite non-negative int as the penalty, and bidders took
#    10^400 gladly (it is above the least credible penalty). Once the auctioneer was caught,
#    `zkauction audit`'s report (demo.print_report: f"{penalty_due:g}") and `log verify --since`'s
#    equivocation message raised OverflowError: a traceback, no verdict printed. Now the reader refuses
#    a penalty no float holds (at most 1e300), so no bidder registers under it.


def test_a_penalty_no_float_holds_is_refused_so_no_report_of_it_can_crash(tmp_path):
    from test_protocol import SETTING

    from zkauction.protocol.announcement import DEFAULT_DEADLINES, Announcement
    from zkauction.protocol.bidder import Bidder
    from zkauction.protocol.demo import print_report
    from zkauction.protocol.log import SigningKey
    from zkauction.protocol.state import ANNOUNCEMENT

    def announce(penalty):
        led = Ledger.in_memory()
        akey, keys = SigningKey.generate(), [SigningKey.generate() for _ in range(2)]
        ann = Announcement(rounds=2, audits=1, penalty=penalty, mode="reveal", n=2, m=2, input_scale=12,
                           support=[[list(map(float, p)) for p in row] for row in SETTING.support], auction={"name": "x"},
                           auctioneer=akey.public_hex, bidders=[k.public_hex for k in keys], third_party=None,
                           deadlines=dict(DEFAULT_DEADLINES), exclusion="void", nonce="ab" * 16)
        led.append(ANNOUNCEMENT, ann.to_dict(), akey, unique=ANNOUNCEMENT, checkpoint_key=akey)
        return Bidder(0, keys[0], led), led

    b, _ = announce(10**400)
    with pytest.raises(ProtocolError, match="penalty .* below 1e300"):
        b.register()  # (was: accepted, far above the least credible penalty)
    b, led = announce(10**299)  # the largest kind accepted: every report of it prints
    b.register()
    report = Auditor(led).audit()
    lines: list[str] = []
    print_report(report, lines.append)
    assert lines
